// The two GPU engines behind gpu_engine.h: weights upload, buffers, the fused decode step captured as
// one CUDA graph, the unfused (cuBLAS) path used by prefill and by the `cublas` engine, traces.
// Which tensors each engine writes and how prefill computes: engine_internal.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/bf16.h"
#include "../model/rope_table.h"
#include "cuda_check.h"
#include "dataflow/dataflow_decode.h"
#include "engine_internal.h"
#include "gpu_bench.h"
#include "kernels.h"

typedef struct {
    uint16_t *w_qkv;      // [qkv_width][hidden]  = [Wq; Wk; Wv]
    uint16_t *w_o;        // [hidden][q_width]
    uint16_t *w_gate_up;  // [2*intermediate][hidden] = [Wg; Wu]
    uint16_t *w_down;     // [hidden][intermediate]
    float *f_qkv, *f_o, *f_gate_up, *f_down;  // fp32 expansions, `cublas` engine only
    float *attn_norm_w, *q_norm_w, *k_norm_w, *mlp_norm_w;
    void *k_cache, *v_cache;  // [n_kv_heads][max_context][head_dim]
} GpuLayer;

// Activations of one layer for up to `capacity` tokens.
typedef struct {
    int capacity;
    float *attn_norm, *qkv_raw, *q, *k, *v, *attn, *attn_out, *resid_attn, *mlp_norm, *gate_up, *gate, *up, *act,
        *mlp_out, *resid_mlp;
} GpuActs;

struct GpuEngine {
    GpuEngineKind kind;
    KvDtype kv_dtype;
    ModelDims dims;
    int n_layers, max_context;
    GpuLayer *layers;
    uint16_t *embed, *lm_head;
    float *f_lm_head;  // `cublas` engine only
    float *final_norm_w, *rope_cos, *rope_sin;
    cudaStream_t stream;
    cublasHandle_t cublas;
    int *d_io;             // [0] position of the first token, [1..] tokens
    int *d_next_token;
    int *h_io;             // pinned staging for d_io and the next token
    float *embed_out;      // [capacity][hidden]
    int embed_capacity;
    GpuActs *decode_acts;  // fused engine: one per layer, 1 token, so a graph replay keeps every layer's tensors
    GpuActs work_acts;     // unfused path: shared by the layers, grown on demand
    float *final_norm, *logits;
    float *lm_partial_max;
    int *lm_partial_index;
    unsigned *lm_counter;
    unsigned long long *mlp_barrier;
    int mlp_blocks;
    float *partial_o, *partial_ml;  // unfused path, grown on demand
    size_t partial_o_floats;
    // The decode graph's own buffers: never reallocated, since the captured graph holds their addresses.
    float *decode_embed, *decode_partial_o, *decode_partial_ml;
    int decode_chunks;
    float *weight_scratch;  // fused prefill: one bf16 matrix expanded to fp32
    cudaGraphExec_t graph;
    int graph_ready;
    // Fused decode attention (kernels.h 2b): one launch per layer when the shape has an instance.
    int decode_attention, attn_splits;
    unsigned *attn_counters;
    float *attn_partial_o, *attn_partial_ml;
    struct DecodeProfile *profile;  // bench: events between the kernels of an ungraphed decode step
    // Storage-point forcing (gpu_engine_force_kv): host copies per layer, armed for one forward.
    float **forced_k, **forced_v;  // [n_layers] -> [forced_tokens][kv_width] or NULL
    int forced_tokens;
    int forcing;
    // Tuning options (fused_options.h), filled once from the environment at create time and passed
    // to the decode launchers. options.sync_kernels (FUSECHECK_SYNC_KERNELS=1): the fused decode step
    // runs without its graph and waits after every kernel, so a fault is reported with the kernel's
    // name and layer (slow; for locating a fault).
    FusedOptions options;
    DataflowDecode *dataflow;  // the dataflow engine's decode step (kind GPU_ENGINE_DATAFLOW)
};

static int device_alloc(void **ptr, size_t bytes, const char *what, ErrorMessage *err) {
    *ptr = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t status = cudaMalloc(ptr, bytes);
    if (status != cudaSuccess) {
        *ptr = NULL;
        return fail(err, "cudaMalloc of %zu bytes for %s: %s", bytes, what, cudaGetErrorString(status));
    }
    return 0;
}
#define DALLOC(ptr, bytes, what) \
    if (device_alloc((void **)&(ptr), (bytes), (what), err)) return -1

// Uploads a 2-D tensor into dst (bf16 on the device): BF16 bytes as they are, F32/F16 rounded.
static int upload_matrix(const TensorInfo *tensor, uint16_t *dst, ErrorMessage *err) {
    size_t n = (size_t)tensor->numel;
    if (tensor->dtype == DTYPE_BF16) {
        CUDA_CHECK(cudaMemcpy(dst, tensor->data, n * sizeof(uint16_t), cudaMemcpyHostToDevice), tensor->name);
        return 0;
    }
    uint16_t *host = malloc(n * sizeof(uint16_t));
    float *row = malloc((size_t)tensor->shape[tensor->ndim - 1] * sizeof(float));
    if (!host || !row) {
        free(host);
        free(row);
        return fail(err, "%s: out of memory converting to bf16", tensor->name);
    }
    int64_t cols = tensor->shape[tensor->ndim - 1], rows = cols ? (int64_t)n / cols : 0;
    for (int64_t r = 0; r < rows; r++) {
        tensor_rows_to_float(tensor, r, 1, row);
        for (int64_t c = 0; c < cols; c++) host[r * cols + c] = float_to_bf16(row[c]);
    }
    cudaError_t status = cudaMemcpy(dst, host, n * sizeof(uint16_t), cudaMemcpyHostToDevice);
    free(host);
    free(row);
    if (status != cudaSuccess) return fail(err, "cudaMemcpy of %s: %s", tensor->name, cudaGetErrorString(status));
    return 0;
}

static int upload_vector(const TensorInfo *tensor, float **dst, ErrorMessage *err) {
    size_t n = (size_t)tensor->numel;
    float *host = malloc(n * sizeof(float));
    if (!host) return fail(err, "%s: out of memory", tensor->name);
    tensor_to_float(tensor, host);
    int rc = device_alloc((void **)dst, n * sizeof(float), tensor->name, err);
    if (rc == 0) {
        cudaError_t status = cudaMemcpy(*dst, host, n * sizeof(float), cudaMemcpyHostToDevice);
        if (status != cudaSuccess) rc = fail(err, "cudaMemcpy of %s: %s", tensor->name, cudaGetErrorString(status));
    }
    free(host);
    return rc;
}

static int expand_copy(const uint16_t *src, size_t n, float **dst, cudaStream_t stream, const char *what,
                       ErrorMessage *err) {
    DALLOC(*dst, n * sizeof(float), what);
    return launch_expand_bf16(src, *dst, n, stream, err);
}

static void acts_free(GpuActs *a) {
    float **fields[] = {&a->attn_norm, &a->qkv_raw, &a->q, &a->k, &a->v, &a->attn, &a->attn_out, &a->resid_attn,
                        &a->mlp_norm, &a->gate_up, &a->gate, &a->up, &a->act, &a->mlp_out, &a->resid_mlp};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        cudaFree(*fields[i]);
        *fields[i] = NULL;
    }
    a->capacity = 0;
}

static int acts_alloc(GpuActs *a, const ModelDims *d, int capacity, ErrorMessage *err) {
    size_t n = (size_t)capacity, h = (size_t)d->hidden * n, I = (size_t)d->intermediate * n;
    a->capacity = capacity;
    DALLOC(a->attn_norm, h * 4, "attn_norm");
    DALLOC(a->qkv_raw, (size_t)dims_qkv_width(d) * n * 4, "qkv_raw");
    DALLOC(a->q, (size_t)dims_q_width(d) * n * 4, "q");
    DALLOC(a->k, (size_t)dims_kv_width(d) * n * 4, "k");
    DALLOC(a->v, (size_t)dims_kv_width(d) * n * 4, "v");
    DALLOC(a->attn, (size_t)dims_q_width(d) * n * 4, "attn");
    DALLOC(a->attn_out, h * 4, "attn_out");
    DALLOC(a->resid_attn, h * 4, "resid_attn");
    DALLOC(a->mlp_norm, h * 4, "mlp_norm");
    DALLOC(a->gate_up, 2 * I * 4, "gate_up");
    DALLOC(a->gate, I * 4, "gate");
    DALLOC(a->up, I * 4, "up");
    DALLOC(a->act, I * 4, "act");
    DALLOC(a->mlp_out, h * 4, "mlp_out");
    DALLOC(a->resid_mlp, h * 4, "resid_mlp");
    return 0;
}

static float *acts_tensor(const GpuActs *a, const char *name) {
    if (!strcmp(name, "attn_norm")) return a->attn_norm;
    if (!strcmp(name, "q")) return a->q;
    if (!strcmp(name, "k")) return a->k;
    if (!strcmp(name, "v")) return a->v;
    if (!strcmp(name, "attn")) return a->attn;
    if (!strcmp(name, "attn_out")) return a->attn_out;
    if (!strcmp(name, "resid_attn")) return a->resid_attn;
    if (!strcmp(name, "mlp_norm")) return a->mlp_norm;
    if (!strcmp(name, "gate")) return a->gate;
    if (!strcmp(name, "up")) return a->up;
    if (!strcmp(name, "act")) return a->act;
    if (!strcmp(name, "mlp_out")) return a->mlp_out;
    if (!strcmp(name, "resid_mlp")) return a->resid_mlp;
    return NULL;
}

static int dims_tensor_width(const ModelDims *d, const char *name) {
    if (!strcmp(name, "q") || !strcmp(name, "attn")) return dims_q_width(d);
    if (!strcmp(name, "k") || !strcmp(name, "v")) return dims_kv_width(d);
    if (!strcmp(name, "gate") || !strcmp(name, "up") || !strcmp(name, "act")) return d->intermediate;
    if (!strcmp(name, "attn_norm") || !strcmp(name, "attn_out") || !strcmp(name, "resid_attn") ||
        !strcmp(name, "mlp_norm") || !strcmp(name, "mlp_out") || !strcmp(name, "resid_mlp"))
        return d->hidden;
    return -1;
}

int gpu_engine_layer_tensor_width(const GpuEngine *engine, const char *name) {
    return dims_tensor_width(&engine->dims, name);
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

// engine_init's steps, in the order it runs them; each returns 0 or -1 with err set.

// The model's shape from its config.
static void init_dims(GpuEngine *e, const ModelConfig *c) {
    ModelDims *d = &e->dims;
    d->hidden = c->hidden_size;
    d->intermediate = c->intermediate_size;
    d->n_heads = c->num_attention_heads;
    d->n_kv_heads = c->num_key_value_heads;
    d->head_dim = c->head_dim;
    d->vocab = c->vocab_size;
    d->eps = c->rms_norm_eps;
    e->n_layers = c->num_hidden_layers;
}

// The engine's stream and its cuBLAS handle.
static int init_stream_and_cublas(GpuEngine *e, ErrorMessage *err) {
    // A blocking stream: it orders after the legacy default stream, where cudaMemcpy uploads run.
    CUDA_CHECK(cudaStreamCreate(&e->stream), "engine stream");
    CUBLAS_CHECK(cublasCreate(&e->cublas), "engine cuBLAS handle");
    CUBLAS_CHECK(cublasSetStream(e->cublas, e->stream), "engine cuBLAS handle");
    // Plain fp32 arithmetic: no TF32 (it would add an 11-bit-mantissa rounding of every operand).
    CUBLAS_CHECK(cublasSetMathMode(e->cublas, CUBLAS_PEDANTIC_MATH), "engine cuBLAS handle");
    return 0;
}

// Each layer's weights (bf16; fp32 copies for the cublas engine) and its KV cache.
static int init_layers(GpuEngine *e, const Checkpoint *ck, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    int kv_bf16 = e->kv_dtype == KV_BF16;
    size_t H = (size_t)d->hidden, I = (size_t)d->intermediate, Q = (size_t)dims_q_width(d),
           KV = (size_t)dims_kv_width(d), QKV = (size_t)dims_qkv_width(d);
    e->layers = calloc((size_t)e->n_layers, sizeof *e->layers);
    if (!e->layers) return fail(err, "%s: out of memory for %d layers", ck->dir, e->n_layers);
    size_t cache_elems = KV * (size_t)e->max_context;
    for (int l = 0; l < e->n_layers; l++) {
        const LayerWeights *w = &ck->layers[l];
        GpuLayer *g = &e->layers[l];
        DALLOC(g->w_qkv, QKV * H * 2, "w_qkv");
        if (upload_matrix(w->q_proj, g->w_qkv, err) || upload_matrix(w->k_proj, g->w_qkv + Q * H, err) ||
            upload_matrix(w->v_proj, g->w_qkv + (Q + KV) * H, err))
            return -1;
        DALLOC(g->w_o, H * Q * 2, "w_o");
        if (upload_matrix(w->o_proj, g->w_o, err)) return -1;
        DALLOC(g->w_gate_up, 2 * I * H * 2, "w_gate_up");
        if (upload_matrix(w->gate_proj, g->w_gate_up, err) || upload_matrix(w->up_proj, g->w_gate_up + I * H, err))
            return -1;
        DALLOC(g->w_down, H * I * 2, "w_down");
        if (upload_matrix(w->down_proj, g->w_down, err)) return -1;
        if (upload_vector(w->input_layernorm, &g->attn_norm_w, err) || upload_vector(w->q_norm, &g->q_norm_w, err) ||
            upload_vector(w->k_norm, &g->k_norm_w, err) ||
            upload_vector(w->post_attention_layernorm, &g->mlp_norm_w, err))
            return -1;
        DALLOC(g->k_cache, cache_elems * (kv_bf16 ? 2 : 4), "k cache");
        DALLOC(g->v_cache, cache_elems * (kv_bf16 ? 2 : 4), "v cache");
        if (e->kind == GPU_ENGINE_CUBLAS) {
            if (expand_copy(g->w_qkv, QKV * H, &g->f_qkv, e->stream, "fp32 w_qkv", err) ||
                expand_copy(g->w_o, H * Q, &g->f_o, e->stream, "fp32 w_o", err) ||
                expand_copy(g->w_gate_up, 2 * I * H, &g->f_gate_up, e->stream, "fp32 w_gate_up", err) ||
                expand_copy(g->w_down, H * I, &g->f_down, e->stream, "fp32 w_down", err))
                return -1;
        }
    }
    return 0;
}

// The weights outside the layers: embedding, lm head (the embedding when tied), final norm.
static int init_model_weights(GpuEngine *e, const Checkpoint *ck, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    size_t H = (size_t)d->hidden;
    DALLOC(e->embed, (size_t)d->vocab * H * 2, "embed_tokens");
    if (upload_matrix(ck->embed_tokens, e->embed, err)) return -1;
    if (ck->lm_head == ck->embed_tokens || ck->config.tie_word_embeddings) {
        e->lm_head = e->embed;
    } else {
        DALLOC(e->lm_head, (size_t)d->vocab * H * 2, "lm_head");
        if (upload_matrix(ck->lm_head, e->lm_head, err)) return -1;
    }
    if (e->kind == GPU_ENGINE_CUBLAS &&
        expand_copy(e->lm_head, (size_t)d->vocab * H, &e->f_lm_head, e->stream, "fp32 lm_head", err))
        return -1;
    if (upload_vector(ck->final_norm, &e->final_norm_w, err)) return -1;
    return 0;
}

// The RoPE cos/sin tables for every position up to max_context.
static int init_rope(GpuEngine *e, const ModelConfig *c, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    RopeTable rope;
    if (rope_table_init(&rope, d->head_dim, c->rope_theta, e->max_context, err)) return -1;
    size_t rope_bytes = (size_t)e->max_context * (d->head_dim / 2) * sizeof(float);
    int rc = device_alloc((void **)&e->rope_cos, rope_bytes, "rope cos", err);
    if (!rc) rc = device_alloc((void **)&e->rope_sin, rope_bytes, "rope sin", err);
    if (!rc && cudaMemcpy(e->rope_cos, rope.cos, rope_bytes, cudaMemcpyHostToDevice) != cudaSuccess)
        rc = fail(err, "cudaMemcpy of the RoPE cos table failed");
    if (!rc && cudaMemcpy(e->rope_sin, rope.sin, rope_bytes, cudaMemcpyHostToDevice) != cudaSuccess)
        rc = fail(err, "cudaMemcpy of the RoPE sin table failed");
    rope_table_free(&rope);
    return rc ? -1 : 0;
}

// Token staging, the head's buffers (final norm, logits, the argmax partials and counter) and the
// fused MLP's grid barrier.
static int init_io_and_head(GpuEngine *e, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    size_t H = (size_t)d->hidden;
    DALLOC(e->d_io, ((size_t)e->max_context + 1) * sizeof(int), "token staging");
    DALLOC(e->d_next_token, sizeof(int), "next token");
    CUDA_CHECK(cudaMallocHost((void **)&e->h_io, ((size_t)e->max_context + 2) * sizeof(int)), "pinned token staging");
    DALLOC(e->final_norm, H * 4, "final_norm");
    DALLOC(e->logits, (size_t)d->vocab * 4, "logits");
    int lm_blocks = lm_head_argmax_blocks(d->vocab);
    DALLOC(e->lm_partial_max, (size_t)lm_blocks * 4, "lm head partials");
    DALLOC(e->lm_partial_index, (size_t)lm_blocks * 4, "lm head partials");
    DALLOC(e->lm_counter, sizeof(unsigned), "lm head counter");
    CUDA_CHECK(cudaMemset(e->lm_counter, 0, sizeof(unsigned)), "lm head counter");
    DALLOC(e->mlp_barrier, sizeof(unsigned long long), "mlp grid barrier");
    CUDA_CHECK(cudaMemset(e->mlp_barrier, 0, sizeof(unsigned long long)), "mlp grid barrier");
    if (mlp_fused_grid_blocks(d, &e->mlp_blocks, err)) return -1;
    return 0;
}

// The attention partials: per chunk (prefill and the unfused decode) and, where the split decode
// kernel has an instance, per split with its counters.
static int init_attention(GpuEngine *e, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    size_t H = (size_t)d->hidden;
    int kv_bf16 = e->kv_dtype == KV_BF16;
    e->decode_chunks = (e->max_context + ATTENTION_CHUNK - 1) / ATTENTION_CHUNK;
    e->partial_o_floats = (size_t)d->n_heads * e->decode_chunks * d->head_dim;
    DALLOC(e->partial_o, e->partial_o_floats * 4, "attention partials");
    DALLOC(e->partial_ml, (size_t)d->n_heads * e->decode_chunks * 2 * 4, "attention partials");
    DALLOC(e->decode_partial_o, e->partial_o_floats * 4, "decode attention partials");
    DALLOC(e->decode_partial_ml, (size_t)d->n_heads * e->decode_chunks * 2 * 4, "decode attention partials");
    DALLOC(e->decode_embed, H * 4, "decode embed");
    e->decode_attention = attention_decode_supported(d, kv_bf16);
    if (e->decode_attention) {
        if (attention_decode_splits(d, &e->attn_splits, err)) return -1;
        // For measuring split policies (PERFORMANCE_NOTES.md): the captured grid's split count.
        if (e->options.attention_splits) e->attn_splits = e->options.attention_splits;
        size_t slots = (size_t)d->n_heads * e->attn_splits;
        DALLOC(e->attn_partial_o, slots * d->head_dim * 4, "decode attention split partials");
        DALLOC(e->attn_partial_ml, slots * 2 * 4, "decode attention split partials");
        DALLOC(e->attn_counters, (size_t)d->n_kv_heads * sizeof(unsigned), "decode attention counters");
        CUDA_CHECK(cudaMemset(e->attn_counters, 0, (size_t)d->n_kv_heads * sizeof(unsigned)), "decode attention counters");
    }
    return 0;
}

// The embedding output and, for the fused engine, the per-layer decode activations (the captured
// graph's buffers) and the prefill weight scratch.
static int init_activations(GpuEngine *e, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    size_t H = (size_t)d->hidden, I = (size_t)d->intermediate, Q = (size_t)dims_q_width(d),
           QKV = (size_t)dims_qkv_width(d);
    e->embed_capacity = 1;
    DALLOC(e->embed_out, H * 4, "embed");
    if (e->kind != GPU_ENGINE_CUBLAS) {
        e->decode_acts = calloc((size_t)e->n_layers, sizeof *e->decode_acts);
        if (!e->decode_acts) return fail(err, "out of memory for per-layer activations");
        for (int l = 0; l < e->n_layers; l++)
            if (acts_alloc(&e->decode_acts[l], d, 1, err)) return -1;
        size_t scratch = max_size(max_size(QKV * H, H * Q), max_size(2 * I * H, H * I));
        DALLOC(e->weight_scratch, scratch * 4, "prefill weight scratch");
    }
    return 0;
}

// The dataflow engine's program and its state, over the engine's weights, cache and per-layer buffers.
static int init_dataflow(GpuEngine *e, ErrorMessage *err) {
    if (e->kind != GPU_ENGINE_DATAFLOW) return 0;
    const ModelDims *d = &e->dims;
    DataflowLayer *layers = calloc((size_t)e->n_layers, sizeof *layers);
    if (!layers) return fail(err, "out of memory for the dataflow layer table");
    for (int l = 0; l < e->n_layers; l++) {
        const GpuLayer *g = &e->layers[l];
        const GpuActs *a = &e->decode_acts[l];
        DataflowLayer x = {g->w_qkv, g->w_o, g->w_gate_up, g->w_down, g->attn_norm_w, g->q_norm_w, g->k_norm_w,
                           g->mlp_norm_w, g->k_cache, g->v_cache, a->attn_norm, a->qkv_raw, a->q, a->k, a->v,
                           a->attn, a->attn_out, a->resid_attn, a->mlp_norm, a->gate, a->up, a->act, a->mlp_out,
                           a->resid_mlp, NULL, NULL, NULL, NULL, NULL};  // the tagged buffers: dataflow_decode_create
        layers[l] = x;
    }
    DataflowBuffers buffers = {d->hidden, d->intermediate, d->n_heads, d->n_kv_heads, d->head_dim, d->vocab,
                               e->n_layers, e->max_context, d->eps, layers, e->embed, e->lm_head, e->final_norm_w,
                               e->rope_cos, e->rope_sin, e->d_io, e->decode_embed, e->final_norm, e->logits,
                               e->d_next_token, e->options.dataflow_skeleton, e->options.dataflow_timeline,
                               e->options.dataflow_tile_kb, e->options.dataflow_pages,
                               e->options.dataflow_splits,
                               e->options.dataflow_epoch_limit};
    e->dataflow = dataflow_decode_create(&buffers, err);
    free(layers);
    return e->dataflow ? 0 : -1;
}

static int engine_init(GpuEngine *e, const Checkpoint *ck, ErrorMessage *err) {
    if (fused_options_from_env(&e->options, err)) return -1;
    init_dims(e, &ck->config);
    if (init_stream_and_cublas(e, err) || init_layers(e, ck, err) || init_model_weights(e, ck, err) ||
        init_rope(e, &ck->config, err) || init_io_and_head(e, err) || init_attention(e, err) ||
        init_activations(e, err) || init_dataflow(e, err))
        return -1;
    CUDA_CHECK(cudaStreamSynchronize(e->stream), "engine upload");
    return 0;
}

GpuEngine *gpu_engine_create(const Checkpoint *checkpoint, GpuEngineKind kind, KvDtype kv_dtype, int max_context,
                             ErrorMessage *err) {
    if (gpu_device_available(err)) return NULL;
    const ModelConfig *c = &checkpoint->config;
    if (max_context < 1 || max_context > c->max_position_embeddings) {
        fail(err, "%s: max context %d is outside [1, max_position_embeddings = %d]", checkpoint->dir, max_context,
             c->max_position_embeddings);
        return NULL;
    }
    // Refuse a model that cannot fit before any allocation or kernel: the weights as the engine keeps
    // them (bf16; the cublas engine also keeps fp32 copies of every matrix) plus the KV cache. The
    // activations and scratch are small next to these, so this is a floor, not an estimate.
    size_t weight_bytes = checkpoint_weight_bytes(checkpoint);
    size_t kv_bytes = (size_t)2 * c->num_hidden_layers * max_context * c->num_key_value_heads * c->head_dim *
                      (kv_dtype == KV_BF16 ? 2 : 4);
    size_t needed = weight_bytes * (kind == GPU_ENGINE_CUBLAS ? 3 : 1) + kv_bytes;
    size_t free_bytes = 0, total_bytes = 0;
    cudaError_t status = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (status != cudaSuccess) {
        fail(err, "cudaMemGetInfo: %s", cudaGetErrorString(status));
        return NULL;
    }
    if (needed > free_bytes) {
        fail(err, "%s: the %s engine needs at least %.2f GB of device memory (weights %.2f GB, KV cache %.2f GB for "
                  "%d positions), the GPU has %.2f GB free",
             checkpoint->dir, gpu_engine_kind_name(kind), needed / 1e9, weight_bytes / 1e9, kv_bytes / 1e9,
             max_context, free_bytes / 1e9);
        return NULL;
    }
    if (kind == GPU_ENGINE_DATAFLOW && kv_dtype != KV_BF16) {
        fail(err, "%s: the dataflow engine keeps its KV cache in bf16 only (asked: %s)", checkpoint->dir,
             kv_dtype_name(kv_dtype));
        return NULL;
    }
    GpuEngine *e = calloc(1, sizeof *e);
    if (!e) {
        fail(err, "out of memory for the GPU engine");
        return NULL;
    }
    e->kind = kind;
    e->kv_dtype = kv_dtype;
    e->max_context = max_context;
    if (engine_init(e, checkpoint, err)) {
        gpu_engine_destroy(e);
        return NULL;
    }
    return e;
}

void gpu_engine_destroy(GpuEngine *e) {
    if (!e) return;
    if (e->graph_ready) cudaGraphExecDestroy(e->graph);
    dataflow_decode_destroy(e->dataflow);
    if (e->layers) {
        for (int l = 0; l < e->n_layers; l++) {
            GpuLayer *g = &e->layers[l];
            void *ptrs[] = {g->w_qkv, g->w_o, g->w_gate_up, g->w_down, g->f_qkv, g->f_o, g->f_gate_up, g->f_down,
                            g->attn_norm_w, g->q_norm_w, g->k_norm_w, g->mlp_norm_w, g->k_cache, g->v_cache};
            for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) cudaFree(ptrs[i]);
        }
        free(e->layers);
    }
    if (e->decode_acts) {
        for (int l = 0; l < e->n_layers; l++) acts_free(&e->decode_acts[l]);
        free(e->decode_acts);
    }
    acts_free(&e->work_acts);
    if (e->lm_head != e->embed) cudaFree(e->lm_head);
    void *ptrs[] = {e->embed, e->f_lm_head, e->final_norm_w, e->rope_cos, e->rope_sin, e->d_io, e->d_next_token,
                    e->embed_out, e->final_norm, e->logits, e->lm_partial_max, e->lm_partial_index, e->lm_counter,
                    e->mlp_barrier, e->partial_o, e->partial_ml, e->weight_scratch,
                    e->decode_embed, e->decode_partial_o, e->decode_partial_ml, e->attn_partial_o,
                    e->attn_partial_ml, e->attn_counters};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) cudaFree(ptrs[i]);
    if (e->forced_k) {
        for (int l = 0; l < e->n_layers; l++) { free(e->forced_k[l]); free(e->forced_v[l]); }
    }
    free(e->forced_k);
    free(e->forced_v);
    if (e->h_io) cudaFreeHost(e->h_io);
    if (e->cublas) cublasDestroy(e->cublas);
    if (e->stream) cudaStreamDestroy(e->stream);
    free(e);
}

void gpu_engine_break_output_projection_for_test(GpuEngine *e, int layer) {
    if (layer >= 0 && layer < e->n_layers) e->layers[layer].w_o = (uint16_t *)(uintptr_t)0x10;
}

int gpu_engine_logits(GpuEngine *e, float *out, ErrorMessage *err) {
    CUDA_CHECK(cudaStreamSynchronize(e->stream), "logits download");
    CUDA_CHECK(cudaMemcpy(out, e->logits, (size_t)e->dims.vocab * sizeof(float), cudaMemcpyDeviceToHost),
               "logits download");
    return 0;
}

int gpu_engine_launches_per_token(const GpuEngine *e) {
    if (!e) return 0;
    // fused: embed, then per layer qkv+rope, attention (one launch, or split + combine where the
    // decode kernel has no instance for the shape), o_proj+residual, MLP; lm head+argmax.
    if (e->kind == GPU_ENGINE_FUSED) return 2 + (e->decode_attention ? 4 : 5) * e->n_layers;
    if (e->kind == GPU_ENGINE_DATAFLOW) return 1;
    // cublas: embed; per layer rmsnorm, qkv GEMM, qk-norm/rope, split, combine, o GEMM, add, rmsnorm,
    // gate/up GEMM, silu*up, down GEMM, add; final rmsnorm, lm-head GEMV, argmax (cuBLAS calls counted once).
    return 4 + 12 * e->n_layers;
}

// ---- the unfused path: prefill of both engines, every step of the cublas engine -------------------

// y[T][out] = x[T][in] · Wᵀ, W [out][in] row-major: in cuBLAS's column-major terms Yᵀ = op(W)·Xᵀ.
static int project(GpuEngine *e, const uint16_t *w_bf16, const float *w_f32, int out, int in, const float *x, int T,
                   float *y, const char *what, ErrorMessage *err) {
    const float *w = w_f32;
    if (!w) {
        if (launch_expand_bf16(w_bf16, e->weight_scratch, (size_t)out * in, e->stream, err)) return -1;
        w = e->weight_scratch;
    }
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(e->cublas, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, &one, w, in, x, in, &zero, y, out), what);
    return 0;
}

static int ensure_work_capacity(GpuEngine *e, int n_tokens, ErrorMessage *err) {
    if (e->work_acts.capacity < n_tokens) {
        acts_free(&e->work_acts);
        if (acts_alloc(&e->work_acts, &e->dims, n_tokens, err)) return -1;
    }
    if (e->embed_capacity < n_tokens) {
        cudaFree(e->embed_out);
        e->embed_out = NULL;
        e->embed_capacity = 0;
        DALLOC(e->embed_out, (size_t)n_tokens * e->dims.hidden * 4, "embed");
        e->embed_capacity = n_tokens;
    }
    return 0;
}

static int ensure_partials(GpuEngine *e, int n_tokens, int n_chunks, ErrorMessage *err) {
    size_t need = (size_t)n_tokens * e->dims.n_heads * n_chunks * e->dims.head_dim;
    if (need <= e->partial_o_floats) return 0;
    cudaFree(e->partial_o);
    cudaFree(e->partial_ml);
    e->partial_o = e->partial_ml = NULL;
    e->partial_o_floats = 0;
    DALLOC(e->partial_o, need * 4, "attention partials");
    DALLOC(e->partial_ml, (size_t)n_tokens * e->dims.n_heads * n_chunks * 2 * 4, "attention partials");
    e->partial_o_floats = need;
    return 0;
}

// When forcing is armed, overwrites the cache entries layer l just wrote for positions [position,
// position + n_tokens) with the forced K and V (see gpu_engine_force_kv). Never armed while a graph is
// captured: a forced step runs without the graph.
static int store_forced_kv(GpuEngine *e, int l, int position, int n_tokens, ErrorMessage *err);

// Layer l over T tokens at *d_position; x [T][hidden] on the device (may alias a->resid_mlp).
static int run_layer_unfused(GpuEngine *e, int l, const float *x, GpuActs *a, int T, int position, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    GpuLayer *g = &e->layers[l];
    int blas = e->kind == GPU_ENGINE_CUBLAS, kv_bf16 = e->kv_dtype == KV_BF16;
    int H = d->hidden, I = d->intermediate;
    int n_chunks = (position + T + ATTENTION_CHUNK - 1) / ATTENTION_CHUNK;
    if (ensure_partials(e, T, n_chunks, err)) return -1;
    if (launch_rmsnorm_rows(x, g->attn_norm_w, T, H, d->eps, a->attn_norm, e->stream, err)) return -1;
    if (project(e, g->w_qkv, blas ? g->f_qkv : NULL, dims_qkv_width(d), H, a->attn_norm, T, a->qkv_raw, "qkv projection", err))
        return -1;
    if (launch_qk_norm_rope_rows(d, a->qkv_raw, g->q_norm_w, g->k_norm_w, e->rope_cos, e->rope_sin, e->d_io, T, a->q,
                                 a->k, a->v, g->k_cache, g->v_cache, kv_bf16, e->max_context, e->stream, err))
        return -1;
    if (store_forced_kv(e, l, position, T, err)) return -1;
    if (launch_attention(d, a->q, g->k_cache, g->v_cache, kv_bf16, e->max_context, e->d_io, T, n_chunks, e->partial_o,
                         e->partial_ml, a->attn, e->stream, err))
        return -1;
    if (project(e, g->w_o, blas ? g->f_o : NULL, H, dims_q_width(d), a->attn, T, a->attn_out, "o projection", err))
        return -1;
    if (launch_add(x, a->attn_out, a->resid_attn, (size_t)T * H, e->stream, err)) return -1;
    if (launch_rmsnorm_rows(a->resid_attn, g->mlp_norm_w, T, H, d->eps, a->mlp_norm, e->stream, err)) return -1;
    if (project(e, g->w_gate_up, blas ? g->f_gate_up : NULL, 2 * I, H, a->mlp_norm, T, a->gate_up, "gate/up projection", err))
        return -1;
    if (launch_silu_mul(a->gate_up, T, I, a->gate, a->up, a->act, e->stream, err)) return -1;
    if (project(e, g->w_down, blas ? g->f_down : NULL, H, I, a->act, T, a->mlp_out, "down projection", err)) return -1;
    return launch_add(a->resid_attn, a->mlp_out, a->resid_mlp, (size_t)T * H, e->stream, err);
}

// ---- the fused decode step ---------------------------------------------------------------------

// Bench profiling (gpu_bench.h): when e->profile is set, an event is recorded after every kernel of
// an ungraphed decode step, named after the kernel, so the time between marks is that kernel's.
#define PROFILE_MAX_MARKS 1024
typedef struct DecodeProfile {
    int n;
    const char *names[PROFILE_MAX_MARKS];
    cudaEvent_t events[PROFILE_MAX_MARKS];
} DecodeProfile;

static int profile_mark(GpuEngine *e, const char *name, ErrorMessage *err) {
    DecodeProfile *p = e->profile;
    if (!p) return 0;
    if (p->n >= PROFILE_MAX_MARKS) return fail(err, "decode profile: more than %d kernels in one step", PROFILE_MAX_MARKS);
    CUDA_CHECK(cudaEventRecord(p->events[p->n], e->stream), name);
    p->names[p->n++] = name;
    return 0;
}

// After each kernel of an ungraphed fused decode step (layer -1: outside the layers): the profile
// mark, and with sync_kernels a wait that turns a fault into one line naming the kernel.
static int kernel_finished(GpuEngine *e, const char *name, int layer, ErrorMessage *err) {
    if (profile_mark(e, name, err)) return -1;
    if (!e->options.sync_kernels) return 0;
    cudaError_t status = cudaStreamSynchronize(e->stream);
    if (status == cudaSuccess) return 0;
    if (layer >= 0)
        return fail(err, "fused decode: kernel %s of layer %d failed: %s", name, layer, cudaGetErrorString(status));
    return fail(err, "fused decode: kernel %s failed: %s", name, cudaGetErrorString(status));
}

static int run_layer_fused_decode(GpuEngine *e, int l, const float *x, GpuActs *a, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    GpuLayer *g = &e->layers[l];
    int kv_bf16 = e->kv_dtype == KV_BF16;
    if (launch_rmsnorm_qkv(d, x, g->attn_norm_w, g->w_qkv, a->attn_norm, a->qkv_raw, &e->options, e->stream, err) ||
        kernel_finished(e, "rmsnorm_qkv", l, err))
        return -1;
    if (e->decode_attention) {
        // With storage forcing, the host writes cache row `position` first and attention reads it.
        int forced = e->forcing && e->forced_k[l];
        if (store_forced_kv(e, l, e->h_io[0], 1, err) ||
            launch_attention_decode(d, a->qkv_raw, g->q_norm_w, g->k_norm_w, e->rope_cos, e->rope_sin, e->d_io,
                                    g->k_cache, g->v_cache, kv_bf16, e->max_context, forced, e->attn_splits,
                                    e->attn_partial_o, e->attn_partial_ml, e->attn_counters, a->q, a->k, a->v, a->attn,
                                    &e->options, e->stream, err) ||
            kernel_finished(e, "attention_decode", l, err))
            return -1;
    } else if (launch_qk_norm_rope_rows(d, a->qkv_raw, g->q_norm_w, g->k_norm_w, e->rope_cos, e->rope_sin, e->d_io, 1,
                                        a->q, a->k, a->v, g->k_cache, g->v_cache, kv_bf16, e->max_context, e->stream,
                                        err) ||
               kernel_finished(e, "qk_norm_rope_rows", l, err) || store_forced_kv(e, l, e->h_io[0], 1, err) ||
               launch_attention(d, a->q, g->k_cache, g->v_cache, kv_bf16, e->max_context, e->d_io, 1, e->decode_chunks,
                                e->decode_partial_o, e->decode_partial_ml, a->attn, e->stream, err) ||
               kernel_finished(e, "attention_split+combine", l, err))
        return -1;
    if (launch_output_projection_residual(d, a->attn, g->w_o, x, a->attn_out, a->resid_attn, &e->options, e->stream,
                                          err) ||
        kernel_finished(e, "output_projection_residual", l, err))
        return -1;
    if (launch_mlp_fused(d, a->resid_attn, g->mlp_norm_w, g->w_gate_up, g->w_down, a->mlp_norm, a->gate, a->up,
                         a->act, a->mlp_out, a->resid_mlp, e->mlp_barrier, e->mlp_blocks, &e->options,
                         e->stream, err))
        return -1;
    return kernel_finished(e, "mlp_fused", l, err);
}

static int enqueue_fused_decode(GpuEngine *e, ErrorMessage *err) {
    if (launch_embed(e->embed, e->d_io + 1, 1, e->dims.hidden, e->decode_embed, e->stream, err) ||
        kernel_finished(e, "embed", -1, err))
        return -1;
    for (int l = 0; l < e->n_layers; l++) {
        const float *x = l == 0 ? e->decode_embed : e->decode_acts[l - 1].resid_mlp;
        if (run_layer_fused_decode(e, l, x, &e->decode_acts[l], err)) return -1;
    }
    if (launch_lm_head_argmax(&e->dims, e->decode_acts[e->n_layers - 1].resid_mlp, e->final_norm_w, e->lm_head,
                              e->final_norm, e->logits, e->lm_partial_max, e->lm_partial_index, e->lm_counter,
                              e->d_next_token, &e->options, e->stream, err))
        return -1;
    return kernel_finished(e, "lm_head_argmax", -1, err);
}

// Captures one decode step (embed .. argmax) into a graph once; token and position are read from d_io.
static int ensure_graph(GpuEngine *e, ErrorMessage *err) {
    if (e->graph_ready) return 0;
    cudaGraph_t graph = NULL;
    CUDA_CHECK(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal), "decode graph capture");
    int rc = e->kind == GPU_ENGINE_DATAFLOW ? dataflow_decode_enqueue(e->dataflow, e->stream, err)
                                            : enqueue_fused_decode(e, err);
    cudaError_t status = cudaStreamEndCapture(e->stream, &graph);
    if (rc) {
        if (graph) cudaGraphDestroy(graph);
        return -1;
    }
    if (status != cudaSuccess) return fail(err, "cudaStreamEndCapture [decode graph]: %s", cudaGetErrorString(status));
    status = cudaGraphInstantiate(&e->graph, graph, 0);
    cudaGraphDestroy(graph);
    if (status != cudaSuccess) return fail(err, "cudaGraphInstantiate [decode graph]: %s", cudaGetErrorString(status));
    e->graph_ready = 1;
    return 0;
}

// ---- traces ------------------------------------------------------------------------------------

static int write_device_tensor(const EngineTap *trace, int layer, const char *name, const float *device, int rows,
                               int cols, ErrorMessage *err) {
    size_t n = (size_t)rows * cols;
    float *host = malloc(n * sizeof(float) + 1);
    if (!host) return fail(err, "out of memory copying %s for the trace", name);
    cudaError_t status = cudaMemcpy(host, device, n * sizeof(float), cudaMemcpyDeviceToHost);
    int rc = status == cudaSuccess ? engine_tap_tensor(trace, layer, name, host, rows, cols, err)
                                   : fail(err, "cudaMemcpy of %s for the trace: %s", name, cudaGetErrorString(status));
    free(host);
    return rc;
}

// Every one of TRACE_LAYER_TENSORS, in both engines, every step: the fused decode kernels store each
// intermediate to global memory (rmsnorm_qkv attn_norm, attention_decode q/k/v/attn, the MLP kernel
// mlp_norm/gate/up/act), so a GPU trace declares nothing omitted (engine_write_trace in golden/trace_run.c).
static int write_layer_trace(GpuEngine *e, const EngineTap *trace, int layer, const GpuActs *a, int T, ErrorMessage *err) {
    CUDA_CHECK(cudaStreamSynchronize(e->stream), "layer before trace copy");
    for (int i = 0; i < TRACE_N_LAYER_TENSORS; i++) {
        const char *name = TRACE_LAYER_TENSORS[i];
        const float *src = acts_tensor(a, name);
        int width = dims_tensor_width(&e->dims, name);
        if (!src || width < 0) return fail(err, "trace tensor '%s' is unknown to the GPU engine", name);
        if (write_device_tensor(trace, layer, name, src, T, width, err)) return -1;
    }
    return 0;
}

// One forward step through the unfused path: every prefill, and every step of the cublas engine (traced
// by forward, timed by the bench: the same sequence). Layer tensors go to `trace` as each layer ends
// (a sync per layer); untraced, nothing waits. The fused engine's head is its fused LM head + argmax,
// the cublas engine's an fp32 GEMV and a separate argmax.
static int enqueue_unfused_step(GpuEngine *e, int n_tokens, int position, const EngineTap *trace, ErrorMessage *err) {
    const ModelDims *d = &e->dims;
    if (ensure_work_capacity(e, n_tokens, err)) return -1;
    GpuActs *a = &e->work_acts;
    if (launch_embed(e->embed, e->d_io + 1, n_tokens, d->hidden, e->embed_out, e->stream, err)) return -1;
    if (trace) {
        CUDA_CHECK(cudaStreamSynchronize(e->stream), "embed_kernel");
        if (write_device_tensor(trace, -1, "embed", e->embed_out, n_tokens, d->hidden, err)) return -1;
    }
    for (int l = 0; l < e->n_layers; l++) {
        if (run_layer_unfused(e, l, l == 0 ? e->embed_out : a->resid_mlp, a, n_tokens, position, err)) return -1;
        if (trace && write_layer_trace(e, trace, l, a, n_tokens, err)) return -1;
    }
    const float *last = a->resid_mlp + (size_t)(n_tokens - 1) * d->hidden;  // the last token's output row
    if (e->kind != GPU_ENGINE_CUBLAS)
        return launch_lm_head_argmax(d, last, e->final_norm_w, e->lm_head, e->final_norm, e->logits, e->lm_partial_max,
                                     e->lm_partial_index, e->lm_counter, e->d_next_token, &e->options, e->stream, err);
    if (launch_rmsnorm_rows(last, e->final_norm_w, 1, d->hidden, d->eps, e->final_norm, e->stream, err)) return -1;
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemv(e->cublas, CUBLAS_OP_T, d->hidden, d->vocab, &one, e->f_lm_head, d->hidden, e->final_norm,
                             1, &zero, e->logits, 1),
                 "lm head");
    return launch_argmax(e->logits, d->vocab, e->d_next_token, e->stream, err);
}

// ---- the entry points --------------------------------------------------------------------------

static int stage_tokens(GpuEngine *e, const int32_t *tokens, int n_tokens, int position, ErrorMessage *err) {
    if (n_tokens < 1) return fail(err, "gpu engine: n_tokens %d must be at least 1", n_tokens);
    if (position < 0 || position + n_tokens > e->max_context)
        return fail(err, "gpu engine: positions [%d, %d) exceed the context of %d", position, position + n_tokens,
                    e->max_context);
    for (int t = 0; t < n_tokens; t++)
        if (tokens && (tokens[t] < 0 || tokens[t] >= e->dims.vocab))
            return fail(err, "gpu engine: token %d at position %d is outside the vocabulary [0, %d)", tokens[t],
                        position + t, e->dims.vocab);
    e->h_io[0] = position;
    if (tokens) memcpy(e->h_io + 1, tokens, (size_t)n_tokens * sizeof(int));
    CUDA_CHECK(cudaMemcpyAsync(e->d_io, e->h_io, (size_t)(tokens ? n_tokens + 1 : 1) * sizeof(int),
                               cudaMemcpyHostToDevice, e->stream),
               "token upload");
    return 0;
}

// Waits for the step's work. A fault inside the decode graph surfaces here without the kernel's name:
// the line says which position's graph it was and how to get the name.
static int wait_for_step(GpuEngine *e, int graphed, int position, ErrorMessage *err) {
    if (!graphed) {
        CUDA_CHECK(cudaStreamSynchronize(e->stream), "forward step");
        return 0;
    }
    cudaError_t status = cudaStreamSynchronize(e->stream);
    if (status != cudaSuccess)
        return fail(err, "fused decode graph at position %d: %s (run again with FUSECHECK_SYNC_KERNELS=1 to name "
                         "the kernel)", position, cudaGetErrorString(status));
    return 0;
}

int gpu_engine_forward(GpuEngine *e, const int32_t *tokens, int n_tokens, int position, const EngineTap *trace,
                       int32_t *next_token, ErrorMessage *err) {
    if (stage_tokens(e, tokens, n_tokens, position, err)) return -1;
    const ModelDims *d = &e->dims;
    if (e->forcing && e->forced_tokens != n_tokens) {
        e->forcing = 0;
        return fail(err, "gpu engine: kv forced for %d tokens, but the forward runs %d", e->forced_tokens, n_tokens);
    }
    int graphed = 0;  // the step ran as the decode graph: a fault can only be named as the graph's
    if (e->kind == GPU_ENGINE_FUSED && n_tokens == 1) {
        if (e->forcing || e->options.sync_kernels) {
            if (enqueue_fused_decode(e, err)) return -1;  // the graph's kernels, launched one by one
        } else {
            if (ensure_graph(e, err)) return -1;
            CUDA_CHECK(cudaGraphLaunch(e->graph, e->stream), "decode graph");
            graphed = 1;
        }
        if (trace) {
            if (wait_for_step(e, graphed, position, err)) return -1;
            if (write_device_tensor(trace, -1, "embed", e->decode_embed, 1, d->hidden, err)) return -1;
            for (int l = 0; l < e->n_layers; l++)
                if (write_layer_trace(e, trace, l, &e->decode_acts[l], 1, err)) return -1;
        }
    } else if (e->kind == GPU_ENGINE_DATAFLOW && n_tokens == 1) {
        // Storage forcing writes this token's K/V rows before the launch; the kernel then reads them.
        int forced = e->forcing;
        for (int l = 0; forced && l < e->n_layers; l++)
            if (store_forced_kv(e, l, position, 1, err)) return -1;
        if (dataflow_decode_set_control(e->dataflow, trace != NULL, forced, e->stream, err)) return -1;
        // The graph holds the kernel without the trace's stores (dataflow_decode_enqueue).
        if (e->options.sync_kernels || trace) {
            if (dataflow_decode_prepare_launch(e->dataflow, e->stream, err) ||
                dataflow_decode_enqueue(e->dataflow, e->stream, err))
                return -1;
        } else {
            if (ensure_graph(e, err) || dataflow_decode_prepare_launch(e->dataflow, e->stream, err)) return -1;
            CUDA_CHECK(cudaGraphLaunch(e->graph, e->stream), "decode graph");
            graphed = 1;
        }
        if (trace) {
            if (wait_for_step(e, graphed, position, err)) return -1;
            if (write_device_tensor(trace, -1, "embed", e->decode_embed, 1, d->hidden, err)) return -1;
            for (int l = 0; l < e->n_layers; l++)
                if (write_layer_trace(e, trace, l, &e->decode_acts[l], 1, err)) return -1;
        }
    } else if (enqueue_unfused_step(e, n_tokens, position, trace, err)) {
        return -1;
    }
    CUDA_CHECK(cudaMemcpyAsync(e->h_io + e->max_context + 1, e->d_next_token, sizeof(int), cudaMemcpyDeviceToHost,
                               e->stream),
               "next token download");
    if (wait_for_step(e, graphed, position, err)) return -1;
    e->forcing = 0;
    int32_t token = e->h_io[e->max_context + 1];
    // Every logit NaN leaves no argmax. Traced, that is a result the comparison fails on, naming the first
    // NaN tensor (token -1 in the trace); untraced (generate, bench) there is nothing to compare, so it is an error.
    if (token < 0 || token >= d->vocab) {
        if (!trace) return fail(err, "gpu engine: every logit is NaN at position %d", position + n_tokens - 1);
        token = -1;
    }
    *next_token = token;
    if (trace) {
        if (write_device_tensor(trace, -1, "final_norm", e->final_norm, 1, d->hidden, err)) return -1;
        if (write_device_tensor(trace, -1, "logits", e->logits, 1, d->vocab, err)) return -1;
        // next_token is recorded by the caller (run_traced_steps in golden/trace_run.c), as for the reference.
    }
    return 0;
}

int gpu_engine_set_kv(GpuEngine *e, int layer, int first_position, int n_positions, const float *k, const float *v,
                      ErrorMessage *err) {
    if (layer < 0 || layer >= e->n_layers) return fail(err, "gpu engine: layer %d out of range", layer);
    if (first_position < 0 || n_positions < 0 || first_position + n_positions > e->max_context)
        return fail(err, "gpu engine: kv positions [%d, %d) exceed the context of %d", first_position,
                    first_position + n_positions, e->max_context);
    int kv_bf16 = e->kv_dtype == KV_BF16, hd = e->dims.head_dim, n_kv = e->dims.n_kv_heads;
    size_t elem = kv_bf16 ? 2 : 4, row_bytes = (size_t)hd * elem;
    unsigned char *row = malloc(row_bytes);
    if (!row) return fail(err, "out of memory");
    const float *src[2] = {k, v};
    void *dst[2] = {e->layers[layer].k_cache, e->layers[layer].v_cache};
    for (int which = 0; which < 2; which++)
        for (int p = 0; p < n_positions; p++)
            for (int h = 0; h < n_kv; h++) {
                const float *values = src[which] + ((size_t)p * n_kv + h) * hd;
                for (int i = 0; i < hd; i++) {
                    if (kv_bf16) ((uint16_t *)row)[i] = float_to_bf16(values[i]);
                    else ((float *)row)[i] = values[i];
                }
                size_t offset = (((size_t)h * e->max_context) + first_position + p) * row_bytes;
                cudaError_t status = cudaMemcpy((unsigned char *)dst[which] + offset, row, row_bytes, cudaMemcpyHostToDevice);
                if (status != cudaSuccess) {
                    free(row);
                    return fail(err, "cudaMemcpy into the kv cache: %s", cudaGetErrorString(status));
                }
            }
    free(row);
    return 0;
}

static int store_forced_kv(GpuEngine *e, int l, int position, int n_tokens, ErrorMessage *err) {
    if (!e->forcing || !e->forced_k[l]) return 0;
    if (n_tokens != e->forced_tokens)
        return fail(err, "gpu engine: kv forced for %d tokens, but layer %d runs %d", e->forced_tokens, l, n_tokens);
    // The kernels that wrote the cache must finish before the host copies over their output.
    CUDA_CHECK(cudaStreamSynchronize(e->stream), "kv cache write before forcing");
    return gpu_engine_set_kv(e, l, position, n_tokens, e->forced_k[l], e->forced_v[l], err);
}

int gpu_engine_force_kv(GpuEngine *e, int layer, const float *k, const float *v, int n_tokens, ErrorMessage *err) {
    if (layer < 0 || layer >= e->n_layers) return fail(err, "gpu engine: layer %d out of range", layer);
    if (n_tokens < 1 || n_tokens > e->max_context)
        return fail(err, "gpu engine: %d forced kv rows are outside 1..%d", n_tokens, e->max_context);
    if (!e->forced_k) {
        e->forced_k = calloc(e->n_layers, sizeof *e->forced_k);
        e->forced_v = calloc(e->n_layers, sizeof *e->forced_v);
        if (!e->forced_k || !e->forced_v) return fail(err, "gpu engine: out of memory for forced kv");
    }
    if (!e->forcing) {  // a new forward's set: forget the previous one's rows
        for (int l = 0; l < e->n_layers; l++) {
            free(e->forced_k[l]); free(e->forced_v[l]);
            e->forced_k[l] = e->forced_v[l] = NULL;
        }
    } else if (n_tokens != e->forced_tokens) {
        return fail(err, "gpu engine: forced kv of %d tokens for layer %d, but %d for the others", n_tokens, layer,
                    e->forced_tokens);
    }
    size_t bytes = (size_t)n_tokens * dims_kv_width(&e->dims) * sizeof(float);
    free(e->forced_k[layer]); free(e->forced_v[layer]);
    e->forced_k[layer] = malloc(bytes);
    e->forced_v[layer] = malloc(bytes);
    if (!e->forced_k[layer] || !e->forced_v[layer]) return fail(err, "gpu engine: out of memory for forced kv");
    memcpy(e->forced_k[layer], k, bytes);
    memcpy(e->forced_v[layer], v, bytes);
    e->forced_tokens = n_tokens;
    e->forcing = 1;
    return 0;
}

int gpu_engine_run_layer(GpuEngine *e, int layer, const float *x, int n_tokens, int position,
                         float *const outputs[TRACE_N_LAYER_TENSORS], ErrorMessage *err) {
    if (layer < 0 || layer >= e->n_layers) return fail(err, "gpu engine: layer %d out of range", layer);
    if (stage_tokens(e, NULL, n_tokens, position, err)) return -1;
    if (ensure_work_capacity(e, n_tokens, err)) return -1;
    const ModelDims *d = &e->dims;
    CUDA_CHECK(cudaMemcpyAsync(e->embed_out, x, (size_t)n_tokens * d->hidden * 4, cudaMemcpyHostToDevice, e->stream),
               "layer input upload");
    GpuActs *a;
    if (e->kind == GPU_ENGINE_FUSED && n_tokens == 1) {
        a = &e->decode_acts[layer];
        if (run_layer_fused_decode(e, layer, e->embed_out, a, err)) return -1;
    } else {
        a = &e->work_acts;
        if (run_layer_unfused(e, layer, e->embed_out, a, n_tokens, position, err)) return -1;
    }
    e->forcing = 0;
    CUDA_CHECK(cudaStreamSynchronize(e->stream), "layer run");
    for (int i = 0; i < TRACE_N_LAYER_TENSORS; i++) {
        const char *name = TRACE_LAYER_TENSORS[i];
        const float *src = acts_tensor(a, name);
        int width = dims_tensor_width(d, name);
        if (!src || width < 0) return fail(err, "trace tensor '%s' is unknown to the GPU engine", name);
        CUDA_CHECK(cudaMemcpy(outputs[i], src, (size_t)n_tokens * width * 4, cudaMemcpyDeviceToHost), name);
    }
    return 0;
}

// ---- bench hooks (gpu_bench.h) -----------------------------------------------------------------

int gpu_engine_bench_prepare(GpuEngine *e, int context, int token, unsigned seed, ErrorMessage *err) {
    if (context < 1 || context >= e->max_context)
        return fail(err, "bench: context %d outside [1, %d)", context, e->max_context);
    int kv_bf16 = e->kv_dtype == KV_BF16;
    size_t n = (size_t)dims_kv_width(&e->dims) * e->max_context;
    for (int l = 0; l < e->n_layers; l++)
        if (launch_fill_pseudorandom(e->layers[l].k_cache, n, kv_bf16, seed + 2u * l, e->stream, err) ||
            launch_fill_pseudorandom(e->layers[l].v_cache, n, kv_bf16, seed + 2u * l + 1u, e->stream, err))
            return -1;
    int32_t t = token;
    if (stage_tokens(e, &t, 1, context, err)) return -1;
    if (e->kind != GPU_ENGINE_CUBLAS) {
        if (e->dataflow && dataflow_decode_set_control(e->dataflow, 0, 0, e->stream, err)) return -1;
        if (ensure_graph(e, err)) return -1;
    } else {
        int n_chunks = (context + 1 + ATTENTION_CHUNK - 1) / ATTENTION_CHUNK;
        if (ensure_work_capacity(e, 1, err) || ensure_partials(e, 1, n_chunks, err)) return -1;
    }
    CUDA_CHECK(cudaStreamSynchronize(e->stream), "bench prepare");
    return 0;
}

int gpu_engine_bench_time(GpuEngine *e, int n_steps, double *ms, ErrorMessage *err) {
    cudaEvent_t start = NULL, stop = NULL;
    int rc = -1;
    if (cudaEventCreate(&start) != cudaSuccess || cudaEventCreate(&stop) != cudaSuccess) {
        fail(err, "bench: cudaEventCreate failed");
        goto done;
    }
    if (cudaEventRecord(start, e->stream) != cudaSuccess) { fail(err, "bench: cudaEventRecord failed"); goto done; }
    for (int s = 0; s < n_steps; s++) {
        if (e->kind != GPU_ENGINE_CUBLAS) {
            if (e->dataflow && dataflow_decode_prepare_launch(e->dataflow, e->stream, err)) goto done;
            cudaError_t status = cudaGraphLaunch(e->graph, e->stream);
            if (status != cudaSuccess) { fail(err, "bench: cudaGraphLaunch: %s", cudaGetErrorString(status)); goto done; }
        } else if (enqueue_unfused_step(e, 1, e->h_io[0], NULL, err)) {
            goto done;
        }
    }
    cudaError_t status = cudaEventRecord(stop, e->stream);
    if (status == cudaSuccess) status = cudaEventSynchronize(stop);
    float elapsed = 0.0f;
    if (status == cudaSuccess) status = cudaEventElapsedTime(&elapsed, start, stop);
    if (status != cudaSuccess) { fail(err, "bench: timing decode steps: %s", cudaGetErrorString(status)); goto done; }
    *ms = elapsed;
    rc = 0;
done:
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    return rc;
}

int gpu_engine_bench_profile(GpuEngine *e, BenchKernelTime *kernels, int max_kernels, int *n_kernels,
                             ErrorMessage *err) {
    *n_kernels = 0;
    if (e->kind != GPU_ENGINE_FUSED) return fail(err, "bench: the per-kernel profile is taken for the fused engine only");
    DecodeProfile *p = calloc(1, sizeof *p);
    cudaEvent_t start = NULL;
    int rc = -1, created = 0;
    if (!p) return fail(err, "bench: out of memory for the decode profile");
    if (cudaEventCreate(&start) != cudaSuccess) { fail(err, "bench: cudaEventCreate failed"); goto done; }
    for (; created < PROFILE_MAX_MARKS; created++)
        if (cudaEventCreate(&p->events[created]) != cudaSuccess) { fail(err, "bench: cudaEventCreate failed"); goto done; }
    if (cudaEventRecord(start, e->stream) != cudaSuccess) { fail(err, "bench: cudaEventRecord failed"); goto done; }
    e->profile = p;
    int enqueue_rc = enqueue_fused_decode(e, err);
    e->profile = NULL;
    if (enqueue_rc) goto done;
    cudaError_t status = cudaStreamSynchronize(e->stream);
    if (status != cudaSuccess) { fail(err, "bench: profiled decode step: %s", cudaGetErrorString(status)); goto done; }
    for (int i = 0; i < p->n; i++) {
        float ms = 0.0f;
        status = cudaEventElapsedTime(&ms, i == 0 ? start : p->events[i - 1], p->events[i]);
        if (status != cudaSuccess) { fail(err, "bench: cudaEventElapsedTime: %s", cudaGetErrorString(status)); goto done; }
        int k = 0;
        while (k < *n_kernels && strcmp(kernels[k].name, p->names[i])) k++;
        if (k == *n_kernels) {
            if (k == max_kernels) { fail(err, "bench: more than %d distinct kernels", max_kernels); goto done; }
            snprintf(kernels[k].name, sizeof kernels[k].name, "%s", p->names[i]);
            kernels[k].calls_per_token = 0;
            kernels[k].us_per_token = 0.0;
            (*n_kernels)++;
        }
        kernels[k].calls_per_token++;
        kernels[k].us_per_token += 1000.0 * ms;
    }
    rc = 0;
done:
    e->profile = NULL;
    for (int i = 0; i < created; i++) cudaEventDestroy(p->events[i]);
    if (start) cudaEventDestroy(start);
    free(p);
    return rc;
}
