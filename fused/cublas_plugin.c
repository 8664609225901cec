// The cublas baseline engine as an engine plugin: the C ABI of include/fusecheck/engine.h over
// gpu_engine.h (GPU_ENGINE_CUBLAS), built as plugins/libfusecheck_cublas_plugin.so when CUDA is on.
// It proves the ABI carries a real GPU engine: `fusecheck gate --engine plugin:PATH` must judge it as
// it judges the built-in `cublas` (the same kernels, so the same numbers).
//
// The host's tensors are valid only during create; gpu_engine_create uploads every weight to the
// device before it returns, so a Checkpoint whose TensorInfo point at them, made and freed inside
// create, is all it needs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/fusecheck/engine.h"
#include "gpu_bench.h"
#include "gpu_engine.h"

struct fusecheck_engine {
    GpuEngine *gpu;
    ErrorMessage error;
};

static ErrorMessage create_error;  // the last failed create or available

// ---- the host's tensors as a Checkpoint --------------------------------------------------------

static DType checkpoint_dtype(int32_t dtype) {
    return dtype == FUSECHECK_DTYPE_BF16 ? DTYPE_BF16 : dtype == FUSECHECK_DTYPE_F16 ? DTYPE_F16 : DTYPE_F32;
}

// The tensor `name` with shape [rows] (cols 0) or [rows, cols] among the n infos, or NULL with why.
static const TensorInfo *require(const TensorInfo *infos, int n, const char *name, int64_t rows, int64_t cols,
                                 ErrorMessage *err) {
    for (int i = 0; i < n; i++) {
        if (strcmp(infos[i].name, name)) continue;
        int ndim = cols ? 2 : 1;
        if (infos[i].ndim != ndim || infos[i].shape[0] != rows || (cols && infos[i].shape[1] != cols)) {
            char got[64];
            format_shape(got, sizeof got, infos[i].ndim, infos[i].shape);
            fail(err, "tensor '%s': shape %s, expected [%lld%s%lld]", name, got, (long long)rows, cols ? ", " : "",
                 (long long)(cols ? cols : rows));
            return NULL;
        }
        return &infos[i];
    }
    fail(err, "tensor '%s' is missing", name);
    return NULL;
}

static int find_layer(Checkpoint *ck, const TensorInfo *infos, int n, int layer, ErrorMessage *err) {
    const ModelConfig *c = &ck->config;
    int64_t d = c->hidden_size, q = (int64_t)c->num_attention_heads * c->head_dim,
            kv = (int64_t)c->num_key_value_heads * c->head_dim, f = c->intermediate_size;
    LayerWeights *w = &ck->layers[layer];
    struct {
        const TensorInfo **slot;
        const char *suffix;
        int64_t rows, cols;
    } wanted[] = {
        {&w->input_layernorm, "input_layernorm.weight", d, 0}, {&w->q_proj, "self_attn.q_proj.weight", q, d},
        {&w->k_proj, "self_attn.k_proj.weight", kv, d},        {&w->v_proj, "self_attn.v_proj.weight", kv, d},
        {&w->q_norm, "self_attn.q_norm.weight", c->head_dim, 0}, {&w->k_norm, "self_attn.k_norm.weight", c->head_dim, 0},
        {&w->o_proj, "self_attn.o_proj.weight", d, q},         {&w->post_attention_layernorm, "post_attention_layernorm.weight", d, 0},
        {&w->gate_proj, "mlp.gate_proj.weight", f, d},         {&w->up_proj, "mlp.up_proj.weight", f, d},
        {&w->down_proj, "mlp.down_proj.weight", d, f},
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "model.layers.%d.%s", layer, wanted[i].suffix);
        if (!(*wanted[i].slot = require(infos, n, name, wanted[i].rows, wanted[i].cols, err))) return -1;
    }
    return 0;
}

static GpuEngine *create_over_tensors(const fusecheck_create_params *p, ErrorMessage *err) {
    const fusecheck_model_config *cfg = p->config;
    Checkpoint ck;
    memset(&ck, 0, sizeof ck);
    static char host_checkpoint[] = "the host's checkpoint";
    ck.dir = host_checkpoint;  // only messages read it
    ck.config = (ModelConfig){
        .hidden_size = cfg->hidden_size,
        .intermediate_size = cfg->intermediate_size,
        .num_hidden_layers = cfg->num_hidden_layers,
        .num_attention_heads = cfg->num_attention_heads,
        .num_key_value_heads = cfg->num_key_value_heads,
        .head_dim = cfg->head_dim,
        .vocab_size = cfg->vocab_size,
        .max_position_embeddings = cfg->max_position_embeddings,
        .rms_norm_eps = cfg->rms_norm_eps,
        .rope_theta = cfg->rope_theta,
        .tie_word_embeddings = cfg->tie_word_embeddings,
    };
    int n = p->n_tensors;
    TensorInfo *infos = calloc(n > 0 ? (size_t)n : 1, sizeof *infos);
    ck.layers = calloc(cfg->num_hidden_layers > 0 ? (size_t)cfg->num_hidden_layers : 1, sizeof *ck.layers);
    GpuEngine *gpu = NULL;
    if (!infos || !ck.layers) {
        fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const fusecheck_tensor *t = &p->tensors[i];
        TensorInfo *info = &infos[i];
        info->name = (char *)t->name;  // read only, never freed here
        info->dtype = checkpoint_dtype(t->dtype);
        info->ndim = t->ndim < 0 ? 0 : t->ndim > TENSOR_MAX_DIMS ? TENSOR_MAX_DIMS : t->ndim;
        info->numel = 1;
        for (int d = 0; d < info->ndim; d++) info->numel *= info->shape[d] = t->shape[d];
        info->data = t->data;
        info->nbytes = (size_t)t->nbytes;
        if (info->nbytes != (size_t)info->numel * dtype_size(info->dtype)) {
            fail(err, "tensor '%s': %llu bytes for %lld elements of %s", t->name, (unsigned long long)t->nbytes,
                 (long long)info->numel, dtype_name(info->dtype));
            goto done;
        }
    }
    const ModelConfig *c = &ck.config;
    if (!(ck.embed_tokens = require(infos, n, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, err)) ||
        !(ck.final_norm = require(infos, n, "model.norm.weight", c->hidden_size, 0, err)))
        goto done;
    ck.lm_head = c->tie_word_embeddings ? ck.embed_tokens
                                        : require(infos, n, "lm_head.weight", c->vocab_size, c->hidden_size, err);
    if (!ck.lm_head) goto done;
    for (int layer = 0; layer < c->num_hidden_layers; layer++)
        if (find_layer(&ck, infos, n, layer, err)) goto done;
    KvDtype kv = p->profile.kv_dtype == FUSECHECK_KV_BF16 ? KV_BF16 : KV_F32;
    gpu = gpu_engine_create(&ck, GPU_ENGINE_CUBLAS, kv, p->max_context, err);
done:
    free(infos);
    free(ck.layers);
    return gpu;
}

// ---- the ABI -----------------------------------------------------------------------------------

FUSECHECK_ENGINE_EXPORT uint32_t fusecheck_engine_abi_version(void) { return FUSECHECK_ENGINE_ABI_VERSION; }

FUSECHECK_ENGINE_EXPORT const fusecheck_engine_info *fusecheck_engine_describe(void) {
    static const fusecheck_engine_info info = {
        .name = "cublas-plugin",
        .summary = "the cublas baseline (every projection through cuBLAS, no graph) through the engine ABI",
        .capabilities = FUSECHECK_ENGINE_NEEDS_GPU | FUSECHECK_ENGINE_KV_F32 | FUSECHECK_ENGINE_KV_BF16 |
                        FUSECHECK_ENGINE_CAN_FORCE_KV,
        .default_kv_dtype = FUSECHECK_KV_BF16,
        .omitted = "",
    };
    return &info;
}

FUSECHECK_ENGINE_EXPORT int fusecheck_engine_available(void) { return gpu_device_available(&create_error); }

FUSECHECK_ENGINE_EXPORT fusecheck_engine *fusecheck_engine_create(const fusecheck_create_params *params) {
    if (params->n_options > 0) {
        fail(&create_error, "unknown option '%s' (this engine takes none)", params->options[0].key);
        return NULL;
    }
    fusecheck_engine *engine = calloc(1, sizeof *engine);
    if (!engine) {
        fail(&create_error, "out of memory");
        return NULL;
    }
    if (!(engine->gpu = create_over_tensors(params, &create_error))) {
        free(engine);
        return NULL;
    }
    return engine;
}

// The ABI's tap seen as an EngineTap (what gpu_engine_forward writes to).
static int to_abi_tap(void *context, int layer, const char *name, const float *data, int rows, int cols,
                      ErrorMessage *err) {
    const fusecheck_tap *tap = context;
    if (tap->tensor(tap->context, layer, name, data, rows, cols))
        return fail(err, "the host refused tensor '%s' of layer %d", name, layer);
    return 0;
}

FUSECHECK_ENGINE_EXPORT int fusecheck_engine_forward(fusecheck_engine *engine, const int32_t *tokens, int32_t n_tokens,
                                                     int32_t position, const fusecheck_tap *tap, int32_t *next_token) {
    EngineTap engine_tap = {(void *)tap, to_abi_tap};
    return gpu_engine_forward(engine->gpu, tokens, n_tokens, position, tap ? &engine_tap : NULL, next_token,
                              &engine->error);
}

FUSECHECK_ENGINE_EXPORT int fusecheck_engine_force_kv(fusecheck_engine *engine, int32_t layer, const float *k,
                                                      const float *v, int32_t n_tokens) {
    return gpu_engine_force_kv(engine->gpu, layer, k, v, n_tokens, &engine->error);
}

FUSECHECK_ENGINE_EXPORT int32_t fusecheck_engine_launches_per_token(const fusecheck_engine *engine) {
    return gpu_engine_launches_per_token(engine->gpu);
}

// The built-in engine's benchmark hooks (CUDA events around back-to-back steps), so that the plugin's
// tok/s is measured as the built-in cublas engine's is.
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_bench_prepare(fusecheck_engine *engine, int32_t context, int32_t token,
                                                           uint32_t seed) {
    return gpu_engine_bench_prepare(engine->gpu, context, token, seed, &engine->error);
}

FUSECHECK_ENGINE_EXPORT int fusecheck_engine_bench_time_decode(fusecheck_engine *engine, int32_t n_steps,
                                                               double *milliseconds) {
    return gpu_engine_bench_time(engine->gpu, n_steps, milliseconds, &engine->error);
}

FUSECHECK_ENGINE_EXPORT const char *fusecheck_engine_last_error(const fusecheck_engine *engine) {
    return engine ? engine->error.text : create_error.text;
}

FUSECHECK_ENGINE_EXPORT void fusecheck_engine_destroy(fusecheck_engine *engine) {
    if (!engine) return;
    gpu_engine_destroy(engine->gpu);
    free(engine);
}
