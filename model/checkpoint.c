// A Qwen3 checkpoint directory: config.json + safetensors, every tensor found by its transformers
// name and its shape checked against the config, plus a fingerprint of exactly these weights.
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------------------------
// fingerprint: a fast 64-bit hash of everything that defines the model's numbers
//
// h = hash_bytes(0, config_to_json text); then for each tensor in name order:
//   h = hash_bytes(h, name with its NUL); h = hash_bytes(h, int64[6] {dtype, ndim, shape..., 0...});
//   h = hash_bytes(h, the tensor's raw bytes).
// Printed as 16 lowercase hex digits. Not cryptographic: it tells weights apart, it does not
// defend against someone forging a collision.

#define MIX_PRIME_1 0x9E3779B97F4A7C15ull
#define MIX_PRIME_2 0xD6E8FEB86659FD93ull

static uint64_t mix64(uint64_t x) {  // a bijective finalizer: every input bit reaches every output bit
    x ^= x >> 32;
    x *= MIX_PRIME_2;
    x ^= x >> 32;
    x *= MIX_PRIME_2;
    x ^= x >> 32;
    return x;
}

static uint64_t load64(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);  // safetensors data is little-endian and so is every host we build for
    return word;
}

// Folds `length` bytes into `state`. Four independent lanes over 32-byte blocks keep several
// multiplies in flight, so this runs at memory speed rather than at one multiply's latency per word.
static uint64_t hash_bytes(uint64_t state, const void *data, size_t length) {
    const uint8_t *p = data;
    uint64_t lane[4] = {state ^ MIX_PRIME_1, state ^ (2 * MIX_PRIME_1), state ^ (3 * MIX_PRIME_1),
                        state ^ (4 * MIX_PRIME_1)};
    size_t n_blocks = length / 32;
    for (size_t b = 0; b < n_blocks; b++, p += 32) {
        for (int i = 0; i < 4; i++) {
            lane[i] = (lane[i] ^ load64(p + 8 * i)) * MIX_PRIME_2;
            lane[i] ^= lane[i] >> 29;
        }
    }
    uint64_t h = state;
    for (int i = 0; i < 4; i++) h = mix64(h ^ lane[i]) * MIX_PRIME_1;
    size_t rest = length % 32;
    for (; rest >= 8; rest -= 8, p += 8) h = mix64(h ^ load64(p)) * MIX_PRIME_1;
    uint64_t tail = 0;
    for (size_t i = 0; i < rest; i++) tail |= (uint64_t)p[i] << (8 * i);
    return mix64(h ^ tail ^ ((uint64_t)length * MIX_PRIME_2));
}

static int fingerprint(Checkpoint *checkpoint, ErrorMessage *err) {
    char *config_text = config_to_json(&checkpoint->config);
    if (!config_text) return fail(err, "%s: out of memory", checkpoint->dir);
    uint64_t h = hash_bytes(0, config_text, strlen(config_text));
    free(config_text);
    // Sorted by name, so a sharded checkpoint and its single-file twin hash alike.
    const SafetensorsSet *files = &checkpoint->files;
    for (int t = 0; t < files->n_tensors; t++) {
        const TensorInfo *tensor = &files->tensors[t];
        int64_t header[1 + 1 + TENSOR_MAX_DIMS] = {tensor->dtype, tensor->ndim};
        for (int d = 0; d < tensor->ndim; d++) header[2 + d] = tensor->shape[d];
        h = hash_bytes(h, tensor->name, strlen(tensor->name) + 1);
        h = hash_bytes(h, header, sizeof header);
        h = hash_bytes(h, tensor->data, tensor->nbytes);
    }
    snprintf(checkpoint->fingerprint, sizeof checkpoint->fingerprint, "%016llx", (unsigned long long)h);
    return 0;
}

// ----------------------------------------------------------------------------------------------
// finding tensors

// The tensor `name` with shape [rows] (cols == 0) or [rows, cols].
static const TensorInfo *require(const Checkpoint *checkpoint, const char *name, int64_t rows, int64_t cols,
                                 ErrorMessage *err) {
    const TensorInfo *tensor = safetensors_find(&checkpoint->files, name);
    if (!tensor) {
        fail(err, "%s: tensor '%s' is missing", checkpoint->dir, name);
        return NULL;
    }
    int64_t expected[2] = {rows, cols};
    int expected_ndim = cols ? 2 : 1;
    int match = tensor->ndim == expected_ndim;
    for (int d = 0; match && d < expected_ndim; d++) match = tensor->shape[d] == expected[d];
    if (!match) {
        char got[128], want[64];
        format_shape(got, sizeof got, tensor->ndim, tensor->shape);
        format_shape(want, sizeof want, expected_ndim, expected);
        fail(err, "%s: tensor '%s': shape %s, expected %s", checkpoint->files.paths[tensor->file_index], name, got,
             want);
        return NULL;
    }
    return tensor;
}

static int find_layer(Checkpoint *checkpoint, int layer, ErrorMessage *err) {
    const ModelConfig *c = &checkpoint->config;
    const int64_t hidden = c->hidden_size, q_width = (int64_t)c->num_attention_heads * c->head_dim,
                  kv_width = (int64_t)c->num_key_value_heads * c->head_dim, inner = c->intermediate_size;
    LayerWeights *w = &checkpoint->layers[layer];
    struct {
        const TensorInfo **slot;
        const char *suffix;
        int64_t rows, cols;
    } wanted[] = {
        {&w->input_layernorm, "input_layernorm.weight", hidden, 0},
        {&w->q_proj, "self_attn.q_proj.weight", q_width, hidden},
        {&w->k_proj, "self_attn.k_proj.weight", kv_width, hidden},
        {&w->v_proj, "self_attn.v_proj.weight", kv_width, hidden},
        {&w->q_norm, "self_attn.q_norm.weight", c->head_dim, 0},
        {&w->k_norm, "self_attn.k_norm.weight", c->head_dim, 0},
        {&w->o_proj, "self_attn.o_proj.weight", hidden, q_width},
        {&w->post_attention_layernorm, "post_attention_layernorm.weight", hidden, 0},
        {&w->gate_proj, "mlp.gate_proj.weight", inner, hidden},
        {&w->up_proj, "mlp.up_proj.weight", inner, hidden},
        {&w->down_proj, "mlp.down_proj.weight", hidden, inner},
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "model.layers.%d.%s", layer, wanted[i].suffix);
        *wanted[i].slot = require(checkpoint, name, wanted[i].rows, wanted[i].cols, err);
        if (!*wanted[i].slot) return -1;
    }
    return 0;
}

static int open_checkpoint(const char *dir, Checkpoint *out, ErrorMessage *err) {
    out->dir = strdup(dir);
    if (!out->dir) return fail(err, "%s: out of memory", dir);
    size_t length = strlen(dir) + sizeof "/config.json";
    char *config_path = malloc(length);
    if (!config_path) return fail(err, "%s: out of memory", dir);
    snprintf(config_path, length, "%s/config.json", dir);
    int status = config_load(config_path, &out->config, err);
    free(config_path);
    if (status) return -1;
    if (safetensors_open_dir(dir, &out->files, err)) return -1;

    const ModelConfig *c = &out->config;
    out->embed_tokens = require(out, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, err);
    if (!out->embed_tokens) return -1;
    out->final_norm = require(out, "model.norm.weight", c->hidden_size, 0, err);
    if (!out->final_norm) return -1;
    // Tied: the model multiplies by embed_tokens, whatever an lm_head.weight in the files says,
    // exactly as transformers ties them.
    if (c->tie_word_embeddings) {
        out->lm_head = out->embed_tokens;
    } else {
        out->lm_head = require(out, "lm_head.weight", c->vocab_size, c->hidden_size, err);
        if (!out->lm_head) return -1;
    }
    out->layers = calloc((size_t)c->num_hidden_layers, sizeof *out->layers);
    if (!out->layers) return fail(err, "%s: out of memory for %d layers", dir, c->num_hidden_layers);
    for (int layer = 0; layer < c->num_hidden_layers; layer++)
        if (find_layer(out, layer, err)) return -1;
    return fingerprint(out, err);
}

int checkpoint_open(const char *dir, Checkpoint *out, ErrorMessage *err) {
    memset(out, 0, sizeof *out);
    if (open_checkpoint(dir, out, err)) {
        checkpoint_close(out);
        return -1;
    }
    return 0;
}

void checkpoint_close(Checkpoint *checkpoint) {
    if (!checkpoint) return;
    safetensors_close(&checkpoint->files);
    free(checkpoint->layers);
    free(checkpoint->dir);
    memset(checkpoint, 0, sizeof *checkpoint);
}

size_t checkpoint_weight_bytes(const Checkpoint *checkpoint) {
    size_t total = checkpoint->embed_tokens->nbytes + checkpoint->final_norm->nbytes;
    if (checkpoint->lm_head != checkpoint->embed_tokens) total += checkpoint->lm_head->nbytes;
    for (int layer = 0; layer < checkpoint->config.num_hidden_layers; layer++) {
        const LayerWeights *w = &checkpoint->layers[layer];
        const TensorInfo *tensors[] = {w->input_layernorm, w->q_proj,  w->k_proj,
                                       w->v_proj,          w->q_norm,  w->k_norm,
                                       w->o_proj,          w->post_attention_layernorm,
                                       w->gate_proj,       w->up_proj, w->down_proj};
        for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) total += tensors[i]->nbytes;
    }
    return total;
}
