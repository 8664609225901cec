/* A Qwen3 engine for fusecheck's engine ABI, in plain C with libm only: the example of
 * docs/ENGINE_ABI.md. It computes in fp32 (sums in wider types where cheap), keeps its KV cache in
 * fp32 or bf16, can be storage-forced, and taps every tensor of golden/FORMAT.md.
 *
 * Build (see CMakeLists.txt beside it, or by hand):
 *   cc -std=c11 -O2 -fPIC -shared -I../../include qwen3_cpu_engine.c -o libqwen3_cpu_engine.so -lm
 * Run:
 *   fusecheck run --engine plugin:./libqwen3_cpu_engine.so --model DIR --golden G.h5 --out T.h5
 *
 * -DPLANT_BUG=1 builds a broken variant on purpose: from layer 1 on, a decode step (one token)
 * rotates q and k by RoPE at position + 1, as an engine whose decode path passes a position counter
 * that was already advanced would. Prefill is right, so the first failure is at step 1, layer 1,
 * tensor q: what fusecheck's gate must find.
 *
 * Options (`plugin:PATH:verbose=1`): verbose=0|1 prints what create copied to stderr. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusecheck/engine.h"

#ifndef PLANT_BUG
#define PLANT_BUG 0
#endif

/* ---- errors: one line per failed call, read through fusecheck_engine_last_error -------------- */

static char create_error[512]; /* the last failed create (there is no engine to hold it) */

static int set_error(char *buffer, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(buffer, 512, format, args);
    va_end(args);
    return -1;
}

/* ---- the engine's state ----------------------------------------------------------------------- */

typedef struct {
    float *input_layernorm, *q_proj, *k_proj, *v_proj, *q_norm, *k_norm, *o_proj;
    float *post_attention_layernorm, *gate_proj, *up_proj, *down_proj;
} Layer;

struct fusecheck_engine {
    int hidden, inner, n_layers, n_heads, n_kv_heads, head_dim, vocab, max_context;
    float eps;
    int kv_bf16;               /* 1: K and V are rounded to bf16 when they enter the cache */
    Layer *layers;
    float *embed, *final_norm, *lm_head; /* lm_head == embed when tied */
    float *rope_cos, *rope_sin;          /* [max_context + 1][head_dim / 2] */
    float *k_cache, *v_cache;            /* [n_layers][max_context][n_kv_heads * head_dim] */
    float **forced_k, **forced_v;        /* per layer: K/V to store at the next forward, or NULL */
    int *forced_rows;
    /* activations for up to `capacity` tokens */
    int capacity;
    float *x, *h, *q, *k, *v, *attn, *proj, *gate, *up, *scores, *last_norm, *logits;
    char error[512];
};

/* ---- numbers ---------------------------------------------------------------------------------- */

static float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float f16_to_float(uint16_t h) {
    int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    float magnitude = exponent == 0    ? ldexpf((float)mantissa, -24)
                      : exponent == 31 ? (mantissa ? NAN : INFINITY)
                                       : ldexpf((float)(mantissa | 0x400), exponent - 25);
    return (h & 0x8000) ? -magnitude : magnitude;
}

/* Round to the nearest bf16, ties to even: the value a bf16 cache holds. */
static float round_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return f; /* NaN stays NaN */
    bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float dot(const float *a, const float *b, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)a[i] * b[i];
    return (float)sum;
}

/* out[r][o] = x[r] . w[o] for a Linear weight w [out_dim][in_dim]. */
static void linear(float *out, const float *x, const float *w, int rows, int in_dim, int out_dim) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out_dim; o++) out[(size_t)r * out_dim + o] = dot(x + (size_t)r * in_dim, w + (size_t)o * in_dim, in_dim);
}

/* Each of `rows` rows of `dim` scaled by 1/rms (eps inside the root) and by weight. */
static void rmsnorm(float *out, const float *x, const float *weight, int rows, int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * dim;
        double squares = 0.0;
        for (int i = 0; i < dim; i++) squares += (double)row[i] * row[i];
        float inverse_rms = (float)(1.0 / sqrt(squares / dim + eps));
        for (int i = 0; i < dim; i++) out[(size_t)r * dim + i] = row[i] * inverse_rms * weight[i];
    }
}

/* Rotate-half RoPE of one head at `position`: dimension i pairs with i + head_dim/2. */
static void rope_head(const struct fusecheck_engine *e, float *head, int position) {
    int half = e->head_dim / 2;
    const float *c = e->rope_cos + (size_t)position * half, *s = e->rope_sin + (size_t)position * half;
    for (int i = 0; i < half; i++) {
        float x1 = head[i], x2 = head[i + half];
        head[i] = x1 * c[i] - x2 * s[i];
        head[i + half] = x2 * c[i] + x1 * s[i];
    }
}

/* ---- create: copy the weights as fp32 --------------------------------------------------------- */

/* The tensor `name` as fp32 [rows] (cols 0) or [rows][cols], malloc'd; NULL with the reason. */
static float *load_tensor(const fusecheck_create_params *p, const char *name, int64_t rows, int64_t cols) {
    const fusecheck_tensor *t = NULL;
    for (int i = 0; i < p->n_tensors && !t; i++)
        if (!strcmp(p->tensors[i].name, name)) t = &p->tensors[i];
    if (!t) {
        set_error(create_error, "checkpoint has no tensor '%s'", name);
        return NULL;
    }
    int ndim = cols ? 2 : 1;
    if (t->ndim != ndim || t->shape[0] != rows || (cols && t->shape[1] != cols)) {
        set_error(create_error, "tensor '%s' has %d dims [%lld, ...], expected [%lld%s%lld]", name, (int)t->ndim,
                  (long long)t->shape[0], (long long)rows, cols ? ", " : "", (long long)(cols ? cols : 0));
        return NULL;
    }
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    float *out = malloc(n * sizeof *out);
    if (!out) {
        set_error(create_error, "out of memory for '%s'", name);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == FUSECHECK_DTYPE_F32) {
            memcpy(&out[i], (const char *)t->data + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, (const char *)t->data + 2 * i, 2);
            out[i] = t->dtype == FUSECHECK_DTYPE_BF16 ? bf16_to_float(h) : f16_to_float(h);
        }
    }
    return out;
}

static int load_layer(struct fusecheck_engine *e, const fusecheck_create_params *p, int l) {
    Layer *w = &e->layers[l];
    int64_t d = e->hidden, q = (int64_t)e->n_heads * e->head_dim, kv = (int64_t)e->n_kv_heads * e->head_dim;
    struct { float **slot; const char *suffix; int64_t rows, cols; } wanted[] = {
        {&w->input_layernorm, "input_layernorm.weight", d, 0},
        {&w->q_proj, "self_attn.q_proj.weight", q, d},
        {&w->k_proj, "self_attn.k_proj.weight", kv, d},
        {&w->v_proj, "self_attn.v_proj.weight", kv, d},
        {&w->q_norm, "self_attn.q_norm.weight", e->head_dim, 0},
        {&w->k_norm, "self_attn.k_norm.weight", e->head_dim, 0},
        {&w->o_proj, "self_attn.o_proj.weight", d, q},
        {&w->post_attention_layernorm, "post_attention_layernorm.weight", d, 0},
        {&w->gate_proj, "mlp.gate_proj.weight", e->inner, d},
        {&w->up_proj, "mlp.up_proj.weight", e->inner, d},
        {&w->down_proj, "mlp.down_proj.weight", d, e->inner},
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.%s", l, wanted[i].suffix);
        if (!(*wanted[i].slot = load_tensor(p, name, wanted[i].rows, wanted[i].cols))) return -1;
    }
    return 0;
}

/* Activation buffers for n tokens at once. */
static int reserve(struct fusecheck_engine *e, int n) {
    if (n <= e->capacity) return 0;
    float **buffers[] = {&e->x, &e->h, &e->q, &e->k, &e->v, &e->attn, &e->proj, &e->gate, &e->up};
    size_t q = (size_t)e->n_heads * e->head_dim, kv = (size_t)e->n_kv_heads * e->head_dim;
    size_t widths[] = {e->hidden, e->hidden, q, kv, kv, q, e->hidden, e->inner, e->inner};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) {
        free(*buffers[i]);
        if (!(*buffers[i] = malloc((size_t)n * widths[i] * sizeof(float))))
            return set_error(e->error, "out of memory for %d tokens of activations", n);
    }
    e->capacity = n;
    return 0;
}

FUSECHECK_ENGINE_EXPORT void fusecheck_engine_destroy(fusecheck_engine *e) {
    if (!e) return;
    for (int l = 0; e->layers && l < e->n_layers; l++) {
        Layer *w = &e->layers[l];
        float *all[] = {w->input_layernorm, w->q_proj, w->k_proj, w->v_proj, w->q_norm, w->k_norm,
                        w->o_proj, w->post_attention_layernorm, w->gate_proj, w->up_proj, w->down_proj};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
        if (e->forced_k) free(e->forced_k[l]);
        if (e->forced_v) free(e->forced_v[l]);
    }
    if (e->lm_head != e->embed) free(e->lm_head);
    float *rest[] = {e->embed, e->final_norm, e->rope_cos, e->rope_sin, e->k_cache, e->v_cache, e->x, e->h, e->q,
                     e->k, e->v, e->attn, e->proj, e->gate, e->up, e->scores, e->last_norm, e->logits};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) free(rest[i]);
    free(e->layers);
    free(e->forced_k);
    free(e->forced_v);
    free(e->forced_rows);
    free(e);
}

FUSECHECK_ENGINE_EXPORT fusecheck_engine *fusecheck_engine_create(const fusecheck_create_params *p) {
    const fusecheck_model_config *c = p->config;
    int verbose = 0;
    for (int i = 0; i < p->n_options; i++) {
        if (!strcmp(p->options[i].key, "verbose") && (!strcmp(p->options[i].value, "0") || !strcmp(p->options[i].value, "1"))) {
            verbose = p->options[i].value[0] == '1';
        } else {
            set_error(create_error, "unknown option '%s=%s' (this engine knows verbose=0|1)", p->options[i].key,
                      p->options[i].value);
            return NULL;
        }
    }
    struct fusecheck_engine *e = calloc(1, sizeof *e);
    if (!e) {
        set_error(create_error, "out of memory");
        return NULL;
    }
    e->hidden = c->hidden_size;
    e->inner = c->intermediate_size;
    e->n_layers = c->num_hidden_layers;
    e->n_heads = c->num_attention_heads;
    e->n_kv_heads = c->num_key_value_heads;
    e->head_dim = c->head_dim;
    e->vocab = c->vocab_size;
    e->eps = c->rms_norm_eps;
    e->max_context = p->max_context;
    e->kv_bf16 = p->profile.kv_dtype == FUSECHECK_KV_BF16;

    size_t kv_width = (size_t)e->n_kv_heads * e->head_dim, half = (size_t)e->head_dim / 2;
    size_t cache = (size_t)e->n_layers * e->max_context * kv_width;
    /* One position more than the context: the planted bug rotates at position + 1. */
    size_t n_angles = ((size_t)e->max_context + 1) * half;
    e->layers = calloc((size_t)e->n_layers, sizeof *e->layers);
    e->forced_k = calloc((size_t)e->n_layers, sizeof *e->forced_k);
    e->forced_v = calloc((size_t)e->n_layers, sizeof *e->forced_v);
    e->forced_rows = calloc((size_t)e->n_layers, sizeof *e->forced_rows);
    e->rope_cos = malloc(n_angles * sizeof(float));
    e->rope_sin = malloc(n_angles * sizeof(float));
    e->k_cache = malloc(cache * sizeof(float));
    e->v_cache = malloc(cache * sizeof(float));
    e->scores = malloc((size_t)e->max_context * sizeof(float));
    e->last_norm = malloc((size_t)e->hidden * sizeof(float));
    e->logits = malloc((size_t)e->vocab * sizeof(float));
    if (!e->layers || !e->forced_k || !e->forced_v || !e->forced_rows || !e->rope_cos || !e->rope_sin ||
        !e->k_cache || !e->v_cache || !e->scores || !e->last_norm || !e->logits) {
        set_error(create_error, "out of memory for a context of %d", e->max_context);
        goto failed;
    }
    /* Angles in double, rounded to fp32 once: as fusecheck's reference does. */
    for (size_t pos = 0; pos <= (size_t)e->max_context; pos++)
        for (size_t i = 0; i < half; i++) {
            double angle = (double)pos * pow(c->rope_theta, -2.0 * (double)i / e->head_dim);
            e->rope_cos[pos * half + i] = (float)cos(angle);
            e->rope_sin[pos * half + i] = (float)sin(angle);
        }
    if (!(e->embed = load_tensor(p, "model.embed_tokens.weight", e->vocab, e->hidden)) ||
        !(e->final_norm = load_tensor(p, "model.norm.weight", e->hidden, 0)))
        goto failed;
    e->lm_head = c->tie_word_embeddings ? e->embed : load_tensor(p, "lm_head.weight", e->vocab, e->hidden);
    if (!e->lm_head) goto failed;
    for (int l = 0; l < e->n_layers; l++)
        if (load_layer(e, p, l)) goto failed;
    if (verbose)
        fprintf(stderr, "qwen3_cpu_engine: %d layers copied as fp32, KV cache %s for %d positions%s\n", e->n_layers,
                e->kv_bf16 ? "bf16" : "f32", e->max_context, PLANT_BUG ? " (PLANT_BUG build)" : "");
    return e;
failed:
    fusecheck_engine_destroy(e);
    return NULL;
}

/* ---- forward ---------------------------------------------------------------------------------- */

#define TAP(layer, name, data, rows, cols)                                                          \
    do {                                                                                            \
        if (tap && tap->tensor(tap->context, (layer), (name), (data), (rows), (cols)))             \
            return set_error(e->error, "the host refused tensor '%s' of layer %d", (name), (layer)); \
    } while (0)

/* Causal attention of n rows (positions position..position+n-1) over the cache of one layer. */
static void attention(struct fusecheck_engine *e, int layer, int n, int position) {
    int hd = e->head_dim, group = e->n_heads / e->n_kv_heads, kv_width = e->n_kv_heads * hd;
    const float *keys = e->k_cache + (size_t)layer * e->max_context * kv_width;
    const float *values = e->v_cache + (size_t)layer * e->max_context * kv_width;
    float scale = 1.0f / sqrtf((float)hd);
    for (int r = 0; r < n; r++) {
        int visible = position + r + 1;
        for (int h = 0; h < e->n_heads; h++) {
            const float *query = e->q + ((size_t)r * e->n_heads + h) * hd;
            int kv_head = h / group;
            float best = -INFINITY;
            for (int j = 0; j < visible; j++) {
                e->scores[j] = dot(query, keys + (size_t)j * kv_width + (size_t)kv_head * hd, hd) * scale;
                if (e->scores[j] > best) best = e->scores[j];
            }
            double total = 0.0;
            for (int j = 0; j < visible; j++) total += e->scores[j] = expf(e->scores[j] - best);
            float *out = e->attn + ((size_t)r * e->n_heads + h) * hd;
            for (int d = 0; d < hd; d++) {
                double sum = 0.0;
                for (int j = 0; j < visible; j++) sum += (double)e->scores[j] * values[(size_t)j * kv_width + (size_t)kv_head * hd + d];
                out[d] = (float)(sum / total);
            }
        }
    }
}

static int layer_forward(struct fusecheck_engine *e, int l, int n, int position, const fusecheck_tap *tap) {
    const Layer *w = &e->layers[l];
    int d = e->hidden, hd = e->head_dim, q_width = e->n_heads * hd, kv_width = e->n_kv_heads * hd;

    rmsnorm(e->h, e->x, w->input_layernorm, n, d, e->eps);
    TAP(l, "attn_norm", e->h, n, d);
    linear(e->q, e->h, w->q_proj, n, d, q_width);
    linear(e->k, e->h, w->k_proj, n, d, kv_width);
    linear(e->v, e->h, w->v_proj, n, d, kv_width);
    rmsnorm(e->q, e->q, w->q_norm, n * e->n_heads, hd, e->eps); /* per head: a head is a row of hd */
    rmsnorm(e->k, e->k, w->k_norm, n * e->n_kv_heads, hd, e->eps);
    int shift = PLANT_BUG && n == 1 && l >= 1; /* the planted bug (see the top of this file) */
    for (int r = 0; r < n; r++) {
        for (int h = 0; h < e->n_heads; h++) rope_head(e, e->q + ((size_t)r * e->n_heads + h) * hd, position + r + shift);
        for (int h = 0; h < e->n_kv_heads; h++) rope_head(e, e->k + ((size_t)r * e->n_kv_heads + h) * hd, position + r + shift);
    }
    TAP(l, "q", e->q, n, q_width);
    TAP(l, "k", e->k, n, kv_width);
    TAP(l, "v", e->v, n, kv_width);

    /* The cache holds the forced K/V when the host armed them, else ours, rounded as configured. */
    const float *k_in = e->forced_rows[l] ? e->forced_k[l] : e->k;
    const float *v_in = e->forced_rows[l] ? e->forced_v[l] : e->v;
    if (e->forced_rows[l] && e->forced_rows[l] != n)
        return set_error(e->error, "layer %d was forced with %d rows for a forward of %d tokens", l, e->forced_rows[l], n);
    size_t offset = ((size_t)l * e->max_context + position) * kv_width;
    for (size_t i = 0; i < (size_t)n * kv_width; i++) {
        e->k_cache[offset + i] = e->kv_bf16 ? round_to_bf16(k_in[i]) : k_in[i];
        e->v_cache[offset + i] = e->kv_bf16 ? round_to_bf16(v_in[i]) : v_in[i];
    }
    e->forced_rows[l] = 0;

    attention(e, l, n, position);
    TAP(l, "attn", e->attn, n, q_width);
    linear(e->proj, e->attn, w->o_proj, n, q_width, d);
    TAP(l, "attn_out", e->proj, n, d);
    for (size_t i = 0; i < (size_t)n * d; i++) e->x[i] += e->proj[i];
    TAP(l, "resid_attn", e->x, n, d);

    rmsnorm(e->h, e->x, w->post_attention_layernorm, n, d, e->eps);
    TAP(l, "mlp_norm", e->h, n, d);
    linear(e->gate, e->h, w->gate_proj, n, d, e->inner);
    linear(e->up, e->h, w->up_proj, n, d, e->inner);
    TAP(l, "gate", e->gate, n, e->inner);
    TAP(l, "up", e->up, n, e->inner);
    for (size_t i = 0; i < (size_t)n * e->inner; i++) e->gate[i] = e->gate[i] / (1.0f + expf(-e->gate[i])) * e->up[i];
    TAP(l, "act", e->gate, n, e->inner);
    linear(e->proj, e->gate, w->down_proj, n, e->inner, d);
    TAP(l, "mlp_out", e->proj, n, d);
    for (size_t i = 0; i < (size_t)n * d; i++) e->x[i] += e->proj[i];
    TAP(l, "resid_mlp", e->x, n, d);
    return 0;
}

FUSECHECK_ENGINE_EXPORT int fusecheck_engine_forward(fusecheck_engine *e, const int32_t *tokens, int32_t n,
                                                     int32_t position, const fusecheck_tap *tap, int32_t *next_token) {
    if (reserve(e, n)) return -1;
    int d = e->hidden;
    for (int i = 0; i < n; i++) memcpy(e->x + (size_t)i * d, e->embed + (size_t)tokens[i] * d, (size_t)d * sizeof(float));
    TAP(-1, "embed", e->x, n, d);
    for (int l = 0; l < e->n_layers; l++)
        if (layer_forward(e, l, n, position, tap)) return -1;

    /* Only the last row predicts the next token. */
    rmsnorm(e->last_norm, e->x + (size_t)(n - 1) * d, e->final_norm, 1, d, e->eps);
    linear(e->logits, e->last_norm, e->lm_head, 1, d, e->vocab);
    TAP(-1, "final_norm", e->last_norm, 1, d);
    TAP(-1, "logits", e->logits, 1, e->vocab);
    int best = -1; /* NaN never wins; the lowest index wins a tie */
    for (int i = 0; i < e->vocab; i++)
        if (e->logits[i] == e->logits[i] && (best < 0 || e->logits[i] > e->logits[best])) best = i;
    *next_token = best;
    return 0;
}

/* ---- storage-point forcing -------------------------------------------------------------------- */

FUSECHECK_ENGINE_EXPORT int fusecheck_engine_force_kv(fusecheck_engine *e, int32_t layer, const float *k,
                                                      const float *v, int32_t n_tokens) {
    if (layer < 0 || layer >= e->n_layers || n_tokens < 1 || n_tokens > e->max_context)
        return set_error(e->error, "force_kv: layer %d or %d tokens out of range", layer, n_tokens);
    size_t n = (size_t)n_tokens * e->n_kv_heads * e->head_dim;
    float *new_k = realloc(e->forced_k[layer], n * sizeof(float));
    if (new_k) e->forced_k[layer] = new_k;
    float *new_v = realloc(e->forced_v[layer], n * sizeof(float));
    if (new_v) e->forced_v[layer] = new_v;
    if (!new_k || !new_v) return set_error(e->error, "force_kv: out of memory");
    memcpy(e->forced_k[layer], k, n * sizeof(float));
    memcpy(e->forced_v[layer], v, n * sizeof(float));
    e->forced_rows[layer] = n_tokens;
    return 0;
}

/* ---- what fusecheck asks first ---------------------------------------------------------------- */

FUSECHECK_ENGINE_EXPORT uint32_t fusecheck_engine_abi_version(void) { return FUSECHECK_ENGINE_ABI_VERSION; }

FUSECHECK_ENGINE_EXPORT const fusecheck_engine_info *fusecheck_engine_describe(void) {
    static const fusecheck_engine_info info = {
        .name = PLANT_BUG ? "qwen3-cpu-buggy" : "qwen3-cpu",
        .summary = PLANT_BUG ? "the example CPU engine with a planted RoPE bug (decode, layers >= 1)"
                             : "the example CPU engine (examples/engine-plugin), plain C",
        .capabilities = FUSECHECK_ENGINE_KV_F32 | FUSECHECK_ENGINE_KV_BF16 | FUSECHECK_ENGINE_CAN_FORCE_KV,
        .default_kv_dtype = FUSECHECK_KV_F32,
        .omitted = "",
    };
    return &info;
}

FUSECHECK_ENGINE_EXPORT const char *fusecheck_engine_last_error(const fusecheck_engine *e) {
    return e ? e->error : create_error;
}
