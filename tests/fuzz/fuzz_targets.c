// Shared by the libFuzzer harnesses and the regression test (see fuzz_targets.h).
#include "fuzz_targets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../golden/trace.h"
#include "../../golden/trace_internal.h"
#include "../../model/config.h"
#include "../../model/safetensors.h"

static int write_bytes(const char *path, const void *data, size_t size, ErrorMessage *err) {
    FILE *file = fopen(path, "wb");
    if (!file) return fail(err, "%s: cannot create: %s", path, strerror(errno));
    size_t written = size ? fwrite(data, 1, size, file) : 0;
    int close_status = fclose(file);
    if (written != size || close_status != 0) return fail(err, "%s: write failed", path);
    return 0;
}

// Every tensor of an opened set, touched the way the engines touch it: found by name, expanded.
static void touch_tensors(const SafetensorsSet *set) {
    for (int i = 0; i < set->n_tensors; i++) {
        const TensorInfo *tensor = &set->tensors[i];
        if (safetensors_find(set, tensor->name) != tensor) abort();  // sorted, unique names
        if (tensor->numel < 0 || (size_t)tensor->numel * dtype_size(tensor->dtype) != tensor->nbytes) abort();
        float *values = malloc((size_t)tensor->numel * sizeof *values + 1);
        if (!values) abort();
        tensor_to_float(tensor, values);
        if (tensor->ndim == 2 && tensor->shape[0] > 0) tensor_rows_to_float(tensor, tensor->shape[0] - 1, 1, values);
        free(values);
    }
}

int fuzz_safetensors(const uint8_t *data, size_t size, const char *scratch_dir, ErrorMessage *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", scratch_dir);
    if (write_bytes(path, data, size, err)) return -1;
    SafetensorsSet set;
    if (safetensors_open_file(path, &set, err)) return -1;
    touch_tensors(&set);
    safetensors_close(&set);
    return 0;
}

// A valid safetensors file of BF16 tensors, each of `numel` elements with value i.
static int write_safetensors(const char *path, const char *const *names, int n, int numel, ErrorMessage *err) {
    char header[1024];
    size_t used = (size_t)snprintf(header, sizeof header, "{");
    for (int t = 0; t < n; t++)
        used += (size_t)snprintf(header + used, sizeof header - used,
                                 "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[%d,%d]}", t ? "," : "",
                                 names[t], numel, 2 * numel * t, 2 * numel * (t + 1));
    used += (size_t)snprintf(header + used, sizeof header - used, "}");
    size_t data_bytes = (size_t)(2 * numel * n), total = 8 + used + data_bytes;
    uint8_t *file = calloc(total, 1);
    if (!file) return fail(err, "%s: out of memory", path);
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)used >> (8 * i));
    memcpy(file + 8, header, used);
    for (size_t i = 0; i < data_bytes / 2; i++) file[8 + used + 2 * i + 1] = 0x3f;  // bf16 0x3f00 = 0.5
    int status = write_bytes(path, file, total, err);
    free(file);
    return status;
}

int fuzz_write_shards(const char *dir, ErrorMessage *err) {
    char path[4096];
    const char *first[] = {"a.weight", "b.weight"}, *second[] = {"c.weight"};
    snprintf(path, sizeof path, "%s/shard-1.safetensors", dir);
    if (write_safetensors(path, first, 2, 4, err)) return -1;
    snprintf(path, sizeof path, "%s/shard-2.safetensors", dir);
    return write_safetensors(path, second, 1, 3, err);
}

int fuzz_index(const uint8_t *data, size_t size, const char *scratch_dir, ErrorMessage *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", scratch_dir);
    if (write_bytes(path, data, size, err)) return -1;
    SafetensorsSet set;
    if (safetensors_open_dir(scratch_dir, &set, err)) return -1;
    touch_tensors(&set);
    safetensors_close(&set);
    return 0;
}

int fuzz_config(const uint8_t *data, size_t size, const char *scratch_dir, ErrorMessage *err) {
    char origin[4096];
    snprintf(origin, sizeof origin, "%s/config.json", scratch_dir);
    char *text = malloc(size + 1);
    if (!text) return fail(err, "%s: out of memory", origin);
    memcpy(text, data, size);
    text[size] = '\0';
    ModelConfig config;
    int status = config_parse(text, origin, &config, err);
    free(text);
    if (status) return -1;
    // What we accept we must also write back as the same config (traces store it this way).
    char *canonical = config_to_json(&config);
    if (!canonical) abort();
    ModelConfig again;
    ErrorMessage again_err;
    if (config_parse(canonical, "canonical", &again, &again_err) || !config_equal(&config, &again)) {
        fprintf(stderr, "config round trip failed: %s\n%s", again_err.text, canonical);
        abort();
    }
    free(canonical);
    return 0;
}

// Reads every dataset `names` lists in (step, layer); the first failure fills err.
static int read_listed(TraceReader *reader, int step, int layer, ErrorMessage *err) {
    char **names = NULL;
    int n_names = 0;
    if (trace_list_tensors(reader, step, layer, &names, &n_names, err)) return -1;
    int status = 0;
    for (int i = 0; i < n_names && status == 0; i++) {
        if (!strcmp(names[i], "next_token") && layer < 0) {
            int32_t token;
            status = trace_read_next_token(reader, step, &token, err);
            continue;
        }
        if (!trace_has_tensor(reader, step, layer, names[i])) continue;  // a name trace_valid_name refuses
        float *values = NULL;
        int rows = 0, cols = 0;
        status = trace_read_tensor(reader, step, layer, names[i], &values, &rows, &cols, err);
        if (status == 0 && (rows < 1 || cols < 1)) abort();
        free(values);
    }
    trace_free_names(names, n_names);
    return status;
}

int fuzz_trace(const uint8_t *data, size_t size, const char *scratch_dir, int guarded, ErrorMessage *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/trace.h5", scratch_dir);
    if (write_bytes(path, data, size, err)) return -1;
    TraceReader *reader = guarded ? trace_open(path, err) : trace_open_unguarded(path, err);
    if (!reader) return -1;
    int n_tokens = 0;
    const int32_t *tokens = trace_tokens(reader, &n_tokens);
    if (!tokens || n_tokens < 1 || !trace_meta(reader)->model_config) abort();
    int status = 0;
    for (int step = 0; step < trace_n_steps(reader) && status == 0; step++) {
        int first_position = 0, step_tokens = 0;
        status = trace_step_info(reader, step, &first_position, &step_tokens, err);
        if (status == 0) status = read_listed(reader, step, -1, err);
        int n_layers = trace_n_layers(reader, step);
        if (n_layers > FUZZ_TRACE_MAX_LAYERS) n_layers = FUZZ_TRACE_MAX_LAYERS;
        for (int layer = 0; layer < n_layers && status == 0; layer++) status = read_listed(reader, step, layer, err);
    }
    trace_close(reader);
    return status;
}
