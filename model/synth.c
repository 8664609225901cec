// Synthetic Qwen3 checkpoints: config.json + one bf16 model.safetensors, tensor names as
// transformers writes them, values from a generator that is exact on every machine.
//
// The generator, per tensor: state = seed XOR fnv1a64(tensor name), advanced by SplitMix64. Each
// value takes one 64-bit output r, sums its four 16-bit fields as integers S (Irwin-Hall of 4
// uniforms), and maps it to z = (S / 65536 - 2) * sqrt(3), which has mean ~0 and unit variance.
// Only integer arithmetic and exactly rounded IEEE double operations are involved (no libm), so every
// machine produces the same bits. Linear weights and embeddings are 0.02 * z, like a trained model's
// scale; norm weights (input/post-attention/final/q_norm/k_norm) are 1 + 0.1 * z. Values are rounded
// to bf16 with float_to_bf16.
#include "synth.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "file_util.h"

// ----------------------------------------------------------------------------------------------
// presets

typedef struct {
    const char *name;
    int hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, tied;
    float rms_norm_eps;
    double rope_theta;
} Preset;

// Qwen3's own eps and theta, except tiny-eps: with Qwen3's 1e-6 and 1e6 everywhere, a reference that
// hard-coded either, or dropped eps, would pass every test. Its eps 1e-3 is of the order of the
// synthetic residual stream's mean square (4e-4..1e-3 on tiny: 0.02-scale embeddings), so it changes
// every norm's output by tens of percent (q/k, whose mean square is ~0.03, by ~2%); theta 20000 is
// neither Qwen3's 1e6 nor transformers' default 10000, so an oracle that ignored the config would
// not agree by accident.
static const Preset PRESETS[] = {
    {"tiny", 64, 192, 2, 4, 2, 16, 256, 1, 1e-6f, 1e6},
    {"tiny-eps", 64, 192, 2, 4, 2, 16, 256, 1, 1e-3f, 20000},
    {"small", 256, 768, 4, 8, 2, 64, 4096, 0, 1e-6f, 1e6},  // untied, so the committed goldens cover both kinds
    {"qwen3-0.6b", 1024, 3072, 28, 16, 8, 128, 151936, 1, 1e-6f, 1e6},
    {"qwen3-1.7b", 2048, 6144, 28, 16, 8, 128, 151936, 1, 1e-6f, 1e6},
    {"qwen3-4b", 2560, 9728, 36, 32, 8, 128, 151936, 1, 1e-6f, 1e6},
    {"qwen3-8b", 4096, 12288, 36, 32, 8, 128, 151936, 0, 1e-6f, 1e6},
};
#define N_PRESETS (sizeof PRESETS / sizeof PRESETS[0])

const char *synth_preset_names(void) {
    return "tiny, tiny-eps, small, qwen3-0.6b, qwen3-1.7b, qwen3-4b, qwen3-8b (suffix -tied or -untied to override)";
}

static int ends_with(const char *text, const char *suffix, size_t *stem_length) {
    size_t n = strlen(text), m = strlen(suffix);
    if (n <= m || strcmp(text + n - m, suffix) != 0) return 0;
    *stem_length = n - m;
    return 1;
}

int synth_preset(const char *name, ModelConfig *out, ErrorMessage *err) {
    size_t stem_length = strlen(name);
    int tied_override = -1;
    if (ends_with(name, "-untied", &stem_length)) tied_override = 0;
    else if (ends_with(name, "-tied", &stem_length)) tied_override = 1;
    for (size_t i = 0; i < N_PRESETS; i++) {
        const Preset *p = &PRESETS[i];
        if (strlen(p->name) != stem_length || strncmp(p->name, name, stem_length) != 0) continue;
        memset(out, 0, sizeof *out);
        out->hidden_size = p->hidden;
        out->intermediate_size = p->intermediate;
        out->num_hidden_layers = p->layers;
        out->num_attention_heads = p->heads;
        out->num_key_value_heads = p->kv_heads;
        out->head_dim = p->head_dim;
        out->vocab_size = p->vocab;
        out->max_position_embeddings = 40960;
        out->rms_norm_eps = p->rms_norm_eps;
        out->rope_theta = p->rope_theta;
        out->tie_word_embeddings = tied_override >= 0 ? tied_override : p->tied;
        return 0;
    }
    return fail(err, "unknown preset '%s' (presets: %s)", name, synth_preset_names());
}

// ----------------------------------------------------------------------------------------------
// the generator

static uint64_t fnv1a64(const char *text) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

#define SPLITMIX_GAMMA 0x9E3779B97F4A7C15ull

// The SplitMix64 output for a state already advanced by one gamma. The state after i steps is
// start + i * gamma, so any element of a tensor can be drawn directly, in any order, on any thread.
static uint64_t splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Unit-variance Irwin-Hall(4) from one 64-bit draw.
static double unit_normalish(uint64_t r) {
    uint64_t sum = (r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48);
    // Through int64: the same value (sum < 2^18), but x86 converts signed integers in one instruction.
    return ((double)(int64_t)sum / 65536.0 - 2.0) * 1.7320508075688772;
}

// ----------------------------------------------------------------------------------------------
// the tensor list

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    int is_norm;  // 1 + 0.1 z instead of 0.02 z
} SynthTensor;

static int compare_synth_tensors(const void *a, const void *b) {
    return strcmp(((const SynthTensor *)a)->name, ((const SynthTensor *)b)->name);
}

static int64_t synth_numel(const SynthTensor *t) { return t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1]; }

// Every tensor transformers' Qwen3ForCausalLM stores, sorted by name. Returns the count, or -1.
static int list_tensors(const ModelConfig *c, SynthTensor **out) {
    int n_max = 3 + 11 * c->num_hidden_layers;
    SynthTensor *list = calloc((size_t)n_max, sizeof *list);
    if (!list) return -1;
    int n = 0;
    const int64_t hidden = c->hidden_size, q_width = (int64_t)c->num_attention_heads * c->head_dim,
                  kv_width = (int64_t)c->num_key_value_heads * c->head_dim, inner = c->intermediate_size;
#define ADD_TENSOR(norm, rows, cols, ...)                                         \
    do {                                                                          \
        snprintf(list[n].name, sizeof list[n].name, __VA_ARGS__);                 \
        list[n].is_norm = (norm);                                                 \
        list[n].ndim = (cols) ? 2 : 1;                                            \
        list[n].shape[0] = (rows);                                                \
        list[n].shape[1] = (cols);                                                \
        n++;                                                                      \
    } while (0)
    ADD_TENSOR(0, c->vocab_size, hidden, "model.embed_tokens.weight");
    ADD_TENSOR(1, hidden, 0, "model.norm.weight");
    if (!c->tie_word_embeddings) ADD_TENSOR(0, c->vocab_size, hidden, "lm_head.weight");
    for (int l = 0; l < c->num_hidden_layers; l++) {
        ADD_TENSOR(1, hidden, 0, "model.layers.%d.input_layernorm.weight", l);
        ADD_TENSOR(0, q_width, hidden, "model.layers.%d.self_attn.q_proj.weight", l);
        ADD_TENSOR(0, kv_width, hidden, "model.layers.%d.self_attn.k_proj.weight", l);
        ADD_TENSOR(0, kv_width, hidden, "model.layers.%d.self_attn.v_proj.weight", l);
        ADD_TENSOR(1, c->head_dim, 0, "model.layers.%d.self_attn.q_norm.weight", l);
        ADD_TENSOR(1, c->head_dim, 0, "model.layers.%d.self_attn.k_norm.weight", l);
        ADD_TENSOR(0, hidden, q_width, "model.layers.%d.self_attn.o_proj.weight", l);
        ADD_TENSOR(1, hidden, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD_TENSOR(0, inner, hidden, "model.layers.%d.mlp.gate_proj.weight", l);
        ADD_TENSOR(0, inner, hidden, "model.layers.%d.mlp.up_proj.weight", l);
        ADD_TENSOR(0, hidden, inner, "model.layers.%d.mlp.down_proj.weight", l);
    }
#undef ADD_TENSOR
    qsort(list, (size_t)n, sizeof *list, compare_synth_tensors);
    *out = list;
    return n;
}

// ----------------------------------------------------------------------------------------------
// writing

// The safetensors header: sorted names, tensors packed back to back (the reference safetensors
// library rejects gaps), padded with spaces to a multiple of 8 so the data section is aligned.
static char *build_header(const SynthTensor *tensors, int n, size_t *length_out) {
    size_t capacity = 256 + (size_t)n * 256, length = 0;
    char *text = malloc(capacity);
    if (!text) return NULL;
    length += (size_t)snprintf(text + length, capacity - length, "{\"__metadata__\":{\"format\":\"pt\"}");
    int64_t offset = 0;
    for (int t = 0; t < n; t++) {
        int64_t nbytes = synth_numel(&tensors[t]) * 2;
        length += (size_t)snprintf(text + length, capacity - length, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" PRId64,
                                   tensors[t].name, tensors[t].shape[0]);
        if (tensors[t].ndim == 2)
            length += (size_t)snprintf(text + length, capacity - length, ",%" PRId64, tensors[t].shape[1]);
        length += (size_t)snprintf(text + length, capacity - length,
                                   "],\"data_offsets\":[%" PRId64 ",%" PRId64 "]}", offset, offset + nbytes);
        offset += nbytes;
    }
    text[length++] = '}';
    while (length % 8 != 0) text[length++] = ' ';
    *length_out = length;
    return text;
}

// Values [first, first + count) of one tensor: element i is draw i + 1 of its SplitMix64 stream.
typedef struct {
    const SynthTensor *tensor;
    uint64_t seed;
    int64_t first;
    size_t count;
    uint16_t *out;
} Chunk;

static void *generate_chunk(void *argument) {
    const Chunk *chunk = argument;
    uint64_t state = (chunk->seed ^ fnv1a64(chunk->tensor->name)) + (uint64_t)chunk->first * SPLITMIX_GAMMA;
    if (chunk->tensor->is_norm) {
        for (size_t i = 0; i < chunk->count; i++)
            chunk->out[i] = float_to_bf16((float)(1.0 + 0.1 * unit_normalish(splitmix64_mix(state += SPLITMIX_GAMMA))));
    } else {
        for (size_t i = 0; i < chunk->count; i++)
            chunk->out[i] = float_to_bf16((float)(0.02 * unit_normalish(splitmix64_mix(state += SPLITMIX_GAMMA))));
    }
    return NULL;
}

enum { CHUNK_VALUES = 1 << 20 };

// The chunk after `chunk` in file order (tensors sorted, each cut into CHUNK_VALUES pieces); 0 at the end.
static int next_chunk(const SynthTensor *tensors, int n, Chunk *chunk) {
    int64_t first = chunk->first + (int64_t)chunk->count;
    const SynthTensor *tensor = chunk->tensor;
    while (first >= synth_numel(tensor)) {  // this tensor is done (or empty): move to the next
        if (++tensor == tensors + n) return 0;
        first = 0;
    }
    int64_t left = synth_numel(tensor) - first;
    chunk->tensor = tensor;
    chunk->first = first;
    chunk->count = left < CHUNK_VALUES ? (size_t)left : CHUNK_VALUES;
    return 1;
}

// Streams every tensor's values through two fixed buffers (qwen3-8b is 16 GB and never all in
// memory): a worker thread draws the next chunk while this one writes the current, so generation
// and the kernel's copy into the page cache overlap.
static int write_tensor_data(FILE *file, const SynthTensor *tensors, int n, uint64_t seed, uint16_t *buffers[2]) {
    if (n == 0) return 0;
    Chunk current = {tensors, seed, 0, 0, buffers[0]};
    if (!next_chunk(tensors, n, &current)) return 0;
    generate_chunk(&current);
    for (int which = 0;; which ^= 1) {
        Chunk upcoming = current;
        upcoming.out = buffers[which ^ 1];
        int more = next_chunk(tensors, n, &upcoming);
        pthread_t worker;
        int threaded = more && pthread_create(&worker, NULL, generate_chunk, &upcoming) == 0;
        int ok = fwrite(current.out, sizeof *current.out, current.count, file) == current.count;
        if (threaded) pthread_join(worker, NULL);
        else if (more) generate_chunk(&upcoming);  // no thread to be had: same values, just serial
        if (!ok) return -1;
        if (!more) return 0;
        current = upcoming;
    }
}

// Streams the safetensors file into `out`; on failure the caller abandons it.
static int write_safetensors(AtomicFile *out, const SynthTensor *tensors, int n, uint64_t seed, ErrorMessage *err) {
    size_t header_length;
    char *header = build_header(tensors, n, &header_length);
    uint16_t *buffers[2] = {malloc(CHUNK_VALUES * sizeof(uint16_t)), malloc(CHUNK_VALUES * sizeof(uint16_t))};
    if (!header || !buffers[0] || !buffers[1]) {
        free(header);
        free(buffers[0]);
        free(buffers[1]);
        return fail(err, "%s: out of memory", out->temp);
    }
    uint8_t length_bytes[8];
    for (int i = 0; i < 8; i++) length_bytes[i] = (uint8_t)((uint64_t)header_length >> (8 * i));
    int status = fwrite(length_bytes, 1, 8, out->file) == 8 && fwrite(header, 1, header_length, out->file) == header_length
                     ? 0
                     : -1;
    if (status == 0) status = write_tensor_data(out->file, tensors, n, seed, buffers);
    int write_errno = errno;
    free(header);
    free(buffers[0]);
    free(buffers[1]);
    if (status) return fail(err, "%s: write failed: %s", out->temp, strerror(write_errno));
    return 0;
}

// dir/name written whole or not at all: the config text when given, else the safetensors file.
static int write_then_rename(const char *dir, const char *name, const char *config_text, const SynthTensor *tensors,
                             int n, uint64_t seed, ErrorMessage *err) {
    char path[FILE_PATH_BYTES];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return fail(err, "%s: path too long", dir);
    if (config_text) return write_file_atomically(path, config_text, strlen(config_text), err);
    AtomicFile out;
    if (atomic_file_open(&out, path, err)) return -1;
    if (write_safetensors(&out, tensors, n, seed, err)) {
        atomic_file_abandon(&out);
        return -1;
    }
    return atomic_file_commit(&out, err);
}

int synth_write(const ModelConfig *config, uint64_t seed, const char *dir, ErrorMessage *err) {
    // Write only what config_load would accept back.
    char *config_text = config_to_json(config);
    if (!config_text) return fail(err, "%s: out of memory", dir);
    ModelConfig check;
    if (config_parse(config_text, "synthetic config", &check, err) || make_directories(dir, err)) {
        free(config_text);
        return -1;
    }
    SynthTensor *tensors = NULL;
    int n = list_tensors(config, &tensors);
    int status = n < 0 ? fail(err, "%s: out of memory", dir) : 0;
    // Weights first, config last: a directory with a config.json is a finished checkpoint.
    if (status == 0) status = write_then_rename(dir, "model.safetensors", NULL, tensors, n, seed, err);
    if (status == 0) status = write_then_rename(dir, "config.json", config_text, NULL, 0, seed, err);
    free(tensors);
    free(config_text);
    return status;
}
