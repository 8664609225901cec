// The reference forward pass. One function per stage, in the order of docs/DESIGN.md; each stage writes
// its tensor to the tap (model/engine.h) under the name FORMAT.md gives it.
#include "reference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/bf16.h"
#include "../model/rope_table.h"
#include "ops.h"

typedef struct {
    float *input_layernorm, *q_proj, *k_proj, *v_proj, *q_norm, *k_norm, *o_proj;
    float *post_attention_layernorm, *gate_proj, *up_proj, *down_proj;
} LayerFloats;

// Activations for up to `capacity_rows` tokens at once.
typedef struct {
    int capacity_rows;
    float *x, *h, *q, *k, *v, *attn, *projected, *gate, *up;
    float *final_norm, *logits, *scores;
} Activations;

struct Reference {
    const Checkpoint *checkpoint;
    ModelConfig config;
    KvDtype kv_dtype;
    int max_context;
    RopeTable rope;
    int streaming;             // 1: layers expanded one at a time per forward (large models)
    LayerFloats *layers;       // n_layers expanded layers, or one reused slot when streaming
    float *final_norm;         // [hidden]
    float *lm_head;            // [vocab, hidden] when not streaming; NULL when streaming
    float *k_cache, *v_cache;  // [n_layers][max_context][n_kv_heads * head_dim]
    Activations act;
};

#define LM_HEAD_CHUNK_ROWS 8192  // rows of the LM head expanded at a time when streaming

static float *allocate_floats(size_t n, const char *what, ErrorMessage *err) {
    float *p = malloc(n * sizeof(float));
    if (!p) fail(err, "reference: out of memory allocating %s (%zu floats)", what, n);
    return p;
}

static size_t layer_floats(const ModelConfig *c) {
    size_t q = (size_t)c->num_attention_heads * c->head_dim, kv = (size_t)c->num_key_value_heads * c->head_dim;
    size_t d = c->hidden_size, f = c->intermediate_size;
    return 2 * d + 2 * (size_t)c->head_dim + q * d + 2 * kv * d + d * q + 3 * f * d;
}

static int allocate_layer(LayerFloats *l, const ModelConfig *c, ErrorMessage *err) {
    float *block = allocate_floats(layer_floats(c), "a layer's weights", err);
    if (!block) return -1;
    size_t q = (size_t)c->num_attention_heads * c->head_dim, kv = (size_t)c->num_key_value_heads * c->head_dim;
    size_t d = c->hidden_size, f = c->intermediate_size;
    l->input_layernorm = block;            block += d;
    l->post_attention_layernorm = block;   block += d;
    l->q_norm = block;                     block += c->head_dim;
    l->k_norm = block;                     block += c->head_dim;
    l->q_proj = block;                     block += q * d;
    l->k_proj = block;                     block += kv * d;
    l->v_proj = block;                     block += kv * d;
    l->o_proj = block;                     block += d * q;
    l->gate_proj = block;                  block += f * d;
    l->up_proj = block;                    block += f * d;
    l->down_proj = block;
    return 0;
}

// Exact bf16 -> fp32 expansion of one layer's weights.
static void expand_layer(LayerFloats *l, const LayerWeights *w) {
    tensor_to_float(w->input_layernorm, l->input_layernorm);
    tensor_to_float(w->post_attention_layernorm, l->post_attention_layernorm);
    tensor_to_float(w->q_norm, l->q_norm);
    tensor_to_float(w->k_norm, l->k_norm);
    tensor_to_float(w->q_proj, l->q_proj);
    tensor_to_float(w->k_proj, l->k_proj);
    tensor_to_float(w->v_proj, l->v_proj);
    tensor_to_float(w->o_proj, l->o_proj);
    tensor_to_float(w->gate_proj, l->gate_proj);
    tensor_to_float(w->up_proj, l->up_proj);
    tensor_to_float(w->down_proj, l->down_proj);
}

static void free_activations(Activations *a) {
    float **all[] = {&a->x, &a->h, &a->q, &a->k, &a->v, &a->attn, &a->projected, &a->gate, &a->up,
                     &a->final_norm, &a->logits, &a->scores};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) { free(*all[i]); *all[i] = NULL; }
    a->capacity_rows = 0;
}

static int ensure_activations(Reference *ref, int n_rows, ErrorMessage *err) {
    Activations *a = &ref->act;
    if (n_rows <= a->capacity_rows) return 0;
    free_activations(a);
    const ModelConfig *c = &ref->config;
    size_t n = n_rows, q = (size_t)c->num_attention_heads * c->head_dim;
    size_t kv = (size_t)c->num_key_value_heads * c->head_dim;
    if (!(a->x = allocate_floats(n * c->hidden_size, "x", err)) ||
        !(a->h = allocate_floats(n * c->hidden_size, "h", err)) ||
        !(a->q = allocate_floats(n * q, "q", err)) || !(a->k = allocate_floats(n * kv, "k", err)) ||
        !(a->v = allocate_floats(n * kv, "v", err)) || !(a->attn = allocate_floats(n * q, "attn", err)) ||
        !(a->projected = allocate_floats(n * c->hidden_size, "projected", err)) ||
        !(a->gate = allocate_floats(n * c->intermediate_size, "gate", err)) ||
        !(a->up = allocate_floats(n * c->intermediate_size, "up", err)) ||
        !(a->final_norm = allocate_floats(c->hidden_size, "final_norm", err)) ||
        !(a->logits = allocate_floats(c->vocab_size, "logits", err)) ||
        !(a->scores = allocate_floats(n * ref->max_context, "attention scores", err))) {
        free_activations(a);
        return -1;
    }
    a->capacity_rows = n_rows;
    return 0;
}

Reference *reference_create(const Checkpoint *checkpoint, KvDtype kv_dtype, int max_context,
                            size_t max_weight_bytes, ErrorMessage *err) {
    const ModelConfig *c = &checkpoint->config;
    if (max_context <= 0 || max_context > c->max_position_embeddings) {
        fail(err, "%s: context %d is outside 1..max_position_embeddings (%d)", checkpoint->dir, max_context,
             c->max_position_embeddings);
        return NULL;
    }
    Reference *ref = calloc(1, sizeof *ref);
    if (!ref) { fail(err, "reference: out of memory"); return NULL; }
    ref->checkpoint = checkpoint;
    ref->config = *c;
    ref->kv_dtype = kv_dtype;
    ref->max_context = max_context;
    if (rope_table_init(&ref->rope, c->head_dim, c->rope_theta, max_context, err)) goto failed;

    if (max_weight_bytes == 0) max_weight_bytes = (size_t)8 << 30;
    size_t all_floats = layer_floats(c) * c->num_hidden_layers + (size_t)c->vocab_size * c->hidden_size;
    ref->streaming = all_floats * sizeof(float) > max_weight_bytes;
    int n_slots = ref->streaming ? 1 : c->num_hidden_layers;
    ref->layers = calloc(n_slots, sizeof(LayerFloats));
    if (!ref->layers) { fail(err, "reference: out of memory"); goto failed; }
    for (int l = 0; l < n_slots; l++) {
        if (allocate_layer(&ref->layers[l], c, err)) goto failed;
        if (!ref->streaming) expand_layer(&ref->layers[l], &checkpoint->layers[l]);
    }
    if (!(ref->final_norm = allocate_floats(c->hidden_size, "final norm", err))) goto failed;
    tensor_to_float(checkpoint->final_norm, ref->final_norm);
    size_t lm_rows = ref->streaming ? LM_HEAD_CHUNK_ROWS : (size_t)c->vocab_size;
    if (!(ref->lm_head = allocate_floats(lm_rows * c->hidden_size, "lm head", err))) goto failed;
    if (!ref->streaming) tensor_to_float(checkpoint->lm_head, ref->lm_head);

    size_t cache = (size_t)c->num_hidden_layers * max_context * c->num_key_value_heads * c->head_dim;
    if (!(ref->k_cache = allocate_floats(cache, "K cache", err))) goto failed;
    if (!(ref->v_cache = allocate_floats(cache, "V cache", err))) goto failed;
    return ref;
failed:
    reference_destroy(ref);
    return NULL;
}

void reference_destroy(Reference *ref) {
    if (!ref) return;
    if (ref->layers) {
        int n_slots = ref->streaming ? 1 : ref->config.num_hidden_layers;
        // Each slot is one block starting at input_layernorm.
        for (int l = 0; l < n_slots; l++) free(ref->layers[l].input_layernorm);
        free(ref->layers);
    }
    free(ref->final_norm);
    free(ref->lm_head);
    free(ref->k_cache);
    free(ref->v_cache);
    rope_table_free(&ref->rope);
    free_activations(&ref->act);
    free(ref);
}

static int trace_layer(const EngineTap *trace, int layer, const char *name, const float *data, int rows, int cols,
                       ErrorMessage *err) {
    return engine_tap_tensor(trace, layer, name, data, rows, cols, err);
}

// K and V enter the cache here; with a bf16 cache they are rounded exactly as the GPU stores them.
static void write_kv_cache(Reference *ref, int layer, const float *k, const float *v, int n_rows, int position) {
    const ModelConfig *c = &ref->config;
    long kv_width = (long)c->num_key_value_heads * c->head_dim;
    long offset = ((long)layer * ref->max_context + position) * kv_width;
    float *k_dst = ref->k_cache + offset, *v_dst = ref->v_cache + offset;
    for (long i = 0; i < n_rows * kv_width; i++) {
        k_dst[i] = ref->kv_dtype == KV_BF16 ? round_to_bf16(k[i]) : k[i];
        v_dst[i] = ref->kv_dtype == KV_BF16 ? round_to_bf16(v[i]) : v[i];
    }
}

// One decoder layer on the residual stream act->x [n_rows, hidden], in place.
static int layer_forward(Reference *ref, int layer, const LayerFloats *w, int n_rows, int position,
                         const EngineTap *trace, ErrorMessage *err) {
    const ModelConfig *c = &ref->config;
    Activations *a = &ref->act;
    int d = c->hidden_size, hd = c->head_dim, f = c->intermediate_size;
    int q_width = c->num_attention_heads * hd, kv_width = c->num_key_value_heads * hd;
    long kv_offset = (long)layer * ref->max_context * kv_width;

    // Attention block.
    rmsnorm(a->h, a->x, w->input_layernorm, n_rows, d, c->rms_norm_eps);
    if (trace_layer(trace, layer, "attn_norm", a->h, n_rows, d, err)) return -1;
    linear(a->q, a->h, w->q_proj, n_rows, d, q_width);
    linear(a->k, a->h, w->k_proj, n_rows, d, kv_width);
    linear(a->v, a->h, w->v_proj, n_rows, d, kv_width);
    rmsnorm_per_head(a->q, a->q, w->q_norm, n_rows, c->num_attention_heads, hd, c->rms_norm_eps);
    rmsnorm_per_head(a->k, a->k, w->k_norm, n_rows, c->num_key_value_heads, hd, c->rms_norm_eps);
    rope(a->q, n_rows, c->num_attention_heads, hd, position, &ref->rope);
    rope(a->k, n_rows, c->num_key_value_heads, hd, position, &ref->rope);
    if (trace_layer(trace, layer, "q", a->q, n_rows, q_width, err) ||
        trace_layer(trace, layer, "k", a->k, n_rows, kv_width, err) ||
        trace_layer(trace, layer, "v", a->v, n_rows, kv_width, err))
        return -1;
    write_kv_cache(ref, layer, a->k, a->v, n_rows, position);
    attention(a->attn, a->q, ref->k_cache + kv_offset, ref->v_cache + kv_offset, n_rows, position,
              c->num_attention_heads, c->num_key_value_heads, hd, a->scores);
    if (trace_layer(trace, layer, "attn", a->attn, n_rows, q_width, err)) return -1;
    linear(a->projected, a->attn, w->o_proj, n_rows, q_width, d);
    if (trace_layer(trace, layer, "attn_out", a->projected, n_rows, d, err)) return -1;
    add_inplace(a->x, a->projected, (long)n_rows * d);
    if (trace_layer(trace, layer, "resid_attn", a->x, n_rows, d, err)) return -1;

    // MLP block.
    rmsnorm(a->h, a->x, w->post_attention_layernorm, n_rows, d, c->rms_norm_eps);
    if (trace_layer(trace, layer, "mlp_norm", a->h, n_rows, d, err)) return -1;
    linear(a->gate, a->h, w->gate_proj, n_rows, d, f);
    linear(a->up, a->h, w->up_proj, n_rows, d, f);
    if (trace_layer(trace, layer, "gate", a->gate, n_rows, f, err) ||
        trace_layer(trace, layer, "up", a->up, n_rows, f, err))
        return -1;
    silu_mul(a->gate, a->gate, a->up, (long)n_rows * f);
    if (trace_layer(trace, layer, "act", a->gate, n_rows, f, err)) return -1;
    linear(a->projected, a->gate, w->down_proj, n_rows, f, d);
    if (trace_layer(trace, layer, "mlp_out", a->projected, n_rows, d, err)) return -1;
    add_inplace(a->x, a->projected, (long)n_rows * d);
    return trace_layer(trace, layer, "resid_mlp", a->x, n_rows, d, err);
}

// logits = final_norm(x_last) . lm_head^T, the LM head expanded in chunks of rows when streaming.
static void lm_head_forward(Reference *ref, const float *normed, float *logits) {
    const ModelConfig *c = &ref->config;
    if (!ref->streaming) {
        linear(logits, normed, ref->lm_head, 1, c->hidden_size, c->vocab_size);
        return;
    }
    for (int row = 0; row < c->vocab_size; row += LM_HEAD_CHUNK_ROWS) {
        int n = c->vocab_size - row < LM_HEAD_CHUNK_ROWS ? c->vocab_size - row : LM_HEAD_CHUNK_ROWS;
        tensor_rows_to_float(ref->checkpoint->lm_head, row, n, ref->lm_head);
        linear(logits + row, normed, ref->lm_head, 1, c->hidden_size, n);
    }
}

int reference_forward(Reference *ref, const int32_t *tokens, int n_tokens, int position,
                      const EngineTap *trace, int32_t *next_token, ErrorMessage *err) {
    const ModelConfig *c = &ref->config;
    if (n_tokens <= 0) return fail(err, "reference: forward needs at least one token");
    if (position < 0 || position + n_tokens > ref->max_context)
        return fail(err, "reference: positions %d..%d exceed the context of %d", position,
                    position + n_tokens - 1, ref->max_context);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return fail(err, "reference: token id %d at position %d is outside the vocabulary [0, %d)", tokens[i],
                        position + i, c->vocab_size);
    if (ensure_activations(ref, n_tokens, err)) return -1;
    Activations *a = &ref->act;
    int d = c->hidden_size;

    for (int i = 0; i < n_tokens; i++)
        tensor_rows_to_float(ref->checkpoint->embed_tokens, tokens[i], 1, a->x + (long)i * d);
    if (trace_layer(trace, -1, "embed", a->x, n_tokens, d, err)) return -1;

    for (int layer = 0; layer < c->num_hidden_layers; layer++) {
        LayerFloats *w = &ref->layers[ref->streaming ? 0 : layer];
        if (ref->streaming) expand_layer(w, &ref->checkpoint->layers[layer]);
        if (layer_forward(ref, layer, w, n_tokens, position, trace, err)) return -1;
    }

    // Only the last row's logits matter for the next token.
    rmsnorm(a->final_norm, a->x + (long)(n_tokens - 1) * d, ref->final_norm, 1, d, c->rms_norm_eps);
    lm_head_forward(ref, a->final_norm, a->logits);
    *next_token = argmax(a->logits, c->vocab_size);
    if (trace_layer(trace, -1, "final_norm", a->final_norm, 1, d, err) ||
        trace_layer(trace, -1, "logits", a->logits, 1, c->vocab_size, err))
        return -1;
    return 0;
}

const float *reference_logits(const Reference *ref) { return ref->act.logits; }

int reference_kv_cache(const Reference *ref, int layer, const float **k, const float **v, ErrorMessage *err) {
    const ModelConfig *c = &ref->config;
    if (layer < 0 || layer >= c->num_hidden_layers)
        return fail(err, "reference: layer %d is outside [0, %d)", layer, c->num_hidden_layers);
    long offset = (long)layer * ref->max_context * c->num_key_value_heads * c->head_dim;
    *k = ref->k_cache + offset;
    *v = ref->v_cache + offset;
    return 0;
}
