// The safetensors loader: every malformed header gives its own specific one-line error; valid
// single-file and sharded checkpoints load the same tensors; F16/F32/BF16 expand exactly.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../model/bf16.h"
#include "../model/checkpoint.h"
#include "../model/safetensors.h"
#include "test_support.h"

// A safetensors file from header text and a data section.
static void write_safetensors(const char *path, const char *header, const void *data, size_t data_size) {
    size_t header_length = strlen(header);
    size_t total = 8 + header_length + data_size;
    unsigned char *bytes = malloc(total);
    cr_assert_not_null(bytes);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)header_length >> (8 * i));
    memcpy(bytes + 8, header, header_length);
    if (data_size) memcpy(bytes + 8 + header_length, data, data_size);
    test_write_file(path, bytes, total);
    free(bytes);
}

// Opens a file made of `header` and `data_size` zero bytes; expects failure whose message
// contains `expected`.
static void expect_open_error(const char *header, size_t data_size, const char *expected) {
    char *dir = test_make_temp_dir("st-bad");
    char *path = test_path_join(dir, "model.safetensors");
    void *data = calloc(data_size + 1, 1);
    write_safetensors(path, header, data, data_size);
    SafetensorsSet set;
    ErrorMessage err = {{0}};
    cr_assert_eq(safetensors_open_file(path, &set, &err), -1, "opened a bad file: %s", header);
    cr_assert_not_null(strstr(err.text, expected), "message '%s' lacks '%s'", err.text, expected);
    cr_assert_not_null(strstr(err.text, path), "message '%s' does not name the file", err.text);
    cr_assert_null(strchr(err.text, '\n'), "message is not one line: '%s'", err.text);
    safetensors_close(&set);  // harmless after a failed open
    free(data);
    free(path);
    free(dir);
}

Test(safetensors, truncated_file) {
    char *dir = test_make_temp_dir("st-trunc");
    char *path = test_path_join(dir, "model.safetensors");
    test_write_file(path, "\x10\x00\x00", 3);
    SafetensorsSet set;
    ErrorMessage err;
    cr_assert_eq(safetensors_open_file(path, &set, &err), -1);
    cr_assert_not_null(strstr(err.text, "truncated: 3 bytes, shorter than the 8-byte header length"), "%s", err.text);
    free(path);
    free(dir);
}

Test(safetensors, header_length_larger_than_file) {
    char *dir = test_make_temp_dir("st-long");
    char *path = test_path_join(dir, "model.safetensors");
    unsigned char bytes[16] = {0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, '{', '}'};
    test_write_file(path, bytes, sizeof bytes);
    SafetensorsSet set;
    ErrorMessage err;
    cr_assert_eq(safetensors_open_file(path, &set, &err), -1);
    cr_assert_not_null(strstr(err.text, "header length 255 exceeds the 8 bytes after it"), "%s", err.text);
    // An absurd length (2^63) must not wrap around any size arithmetic.
    unsigned char absurd[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    test_write_file(path, absurd, sizeof absurd);
    cr_assert_eq(safetensors_open_file(path, &set, &err), -1);
    cr_assert_not_null(strstr(err.text, "exceeds"), "%s", err.text);
    free(path);
    free(dir);
}

Test(safetensors, bad_json) { expect_open_error("{\"a\": {\"dtype\": ", 0, "header is not valid JSON"); }

Test(safetensors, header_not_an_object) { expect_open_error("[1, 2, 3]", 0, "header is not a JSON object"); }

Test(safetensors, unknown_dtype) {
    expect_open_error("{\"w\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
                      "tensor 'w': unknown dtype 'I8' (expected F32, F16 or BF16)");
}

Test(safetensors, reversed_offsets) {
    expect_open_error("{\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[10,4]}}", 16,
                      "tensor 'model.norm.weight': data_offsets [10, 4] are reversed");
}

Test(safetensors, out_of_range_offsets) {
    expect_open_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 16,
                      "tensor 'w': data_offsets [8, 24] run past the data section (16 bytes)");
}

Test(safetensors, size_disagrees_with_shape) {
    expect_open_error("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,6]}}", 8,
                      "tensor 'w': data_offsets [0, 6] hold 6 bytes, but shape [2, 2] of BF16 needs 8");
}

Test(safetensors, overlapping_offsets) {
    expect_open_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                      16, "tensors 'a' [0, 16] and 'b' [8, 16] overlap");
}

Test(safetensors, duplicate_names) {
    expect_open_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                      8, "tensor 'a' appears twice in the header");
}

Test(safetensors, bad_shapes) {
    expect_open_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                      "tensor 'w': shape dim 0 is not a non-negative integer");
    expect_open_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                      "tensor 'w': shape dim 0 is not a non-negative integer");
    expect_open_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                      "tensor 'w': shape has 5 dims (at most 4 supported)");
    // A product of dims that would overflow 64 bits must be caught, not wrapped.
    expect_open_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 4,
                      "tensor 'w': shape [4294967296, 4294967296, 16] is larger than the data section");
    expect_open_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                      "tensor 'w': data_offsets is not a pair of non-negative integers");
    expect_open_error("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': 'dtype' is missing");
    expect_open_error("{\"w\":[1,2]}", 4, "tensor 'w': entry is not a JSON object");
}

Test(safetensors, metadata_skipped_and_lookup) {
    char *dir = test_make_temp_dir("st-ok");
    char *path = test_path_join(dir, "x.safetensors");
    float f32[3] = {1.5f, -2.25f, 3.0e-38f};
    unsigned char data[32] = {0};
    memcpy(data, f32, sizeof f32);
    write_safetensors(path,
                      "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"zeta\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                      "\"alpha\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[12,20]},"
                      "\"empty\":{\"dtype\":\"F16\",\"shape\":[0,7],\"data_offsets\":[20,20]},"
                      "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[20,24]}}",
                      data, sizeof data);
    SafetensorsSet set;
    ErrorMessage err;
    cr_assert_eq(safetensors_open_file(path, &set, &err), 0, "%s", err.text);
    cr_assert_eq(set.n_tensors, 4);
    cr_assert_str_eq(set.tensors[0].name, "alpha");  // sorted by name
    cr_assert_str_eq(set.tensors[3].name, "zeta");
    cr_assert_null(safetensors_find(&set, "__metadata__"));
    cr_assert_null(safetensors_find(&set, "missing"));
    const TensorInfo *zeta = safetensors_find(&set, "zeta");
    cr_assert_not_null(zeta);
    cr_assert_eq(zeta->ndim, 1);
    cr_assert_eq(zeta->shape[0], 3);
    cr_assert_eq(zeta->nbytes, 12);
    float out[3];
    tensor_to_float(zeta, out);
    cr_assert_eq(memcmp(out, f32, sizeof f32), 0);
    const TensorInfo *empty = safetensors_find(&set, "empty");
    cr_assert_eq(empty->numel, 0);
    const TensorInfo *scalar = safetensors_find(&set, "scalar");
    cr_assert_eq(scalar->ndim, 0);
    cr_assert_eq(scalar->numel, 1);
    safetensors_close(&set);
    cr_assert_eq(set.n_tensors, 0);
    safetensors_close(&set);  // twice is harmless
    free(path);
    free(dir);
}

// Every F16 and BF16 bit pattern expands to the value the format defines, exactly.
Test(safetensors, f16_bf16_f32_expand_exactly) {
    enum { N = 65536 };
    uint16_t *bits = malloc(N * sizeof *bits);
    cr_assert_not_null(bits);
    for (int i = 0; i < N; i++) bits[i] = (uint16_t)i;
    char *dir = test_make_temp_dir("st-dtypes");
    char *path = test_path_join(dir, "x.safetensors");
    size_t data_size = 2 * N * sizeof(uint16_t) + 8 * sizeof(float);
    unsigned char *data = malloc(data_size);
    cr_assert_not_null(data);
    memcpy(data, bits, N * 2);
    memcpy(data + N * 2, bits, N * 2);
    float f32[8] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-45f, 3.4028235e38f, 0.1f, -7.25f};
    memcpy(data + 4 * N, f32, sizeof f32);
    char header[512];
    snprintf(header, sizeof header,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,%d]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[65536],\"data_offsets\":[%d,%d]},"
             "\"f\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[%d,%d]}}",
             2 * N, 2 * N, 4 * N, 4 * N, 4 * N + 32);
    write_safetensors(path, header, data, data_size);
    SafetensorsSet set;
    ErrorMessage err;
    cr_assert_eq(safetensors_open_file(path, &set, &err), 0, "%s", err.text);
    float *out = malloc(N * sizeof(float));
    cr_assert_not_null(out);

    tensor_to_float(safetensors_find(&set, "h"), out);
    for (int i = 0; i < N; i++) {
        // The IEEE half value computed independently: sign * 2^(e-15) * (1 + m/1024), or subnormal.
        int sign = i >> 15, exponent = (i >> 10) & 31, mantissa = i & 1023;
        if (exponent == 31) {
            if (mantissa == 0) cr_assert(out[i] == (sign ? -1.0f : 1.0f) * __builtin_inff(), "f16 %04x", i);
            else cr_assert(out[i] != out[i], "f16 %04x should be NaN", i);
            continue;
        }
        double magnitude = exponent == 0 ? mantissa / 1024.0 / 16384.0
                                         : (1.0 + mantissa / 1024.0) * (double)(1 << exponent) / 32768.0;
        double expected = sign ? -magnitude : magnitude;
        cr_assert(out[i] == (float)expected && (double)out[i] == expected, "f16 %04x: %.9g vs %.9g", i, out[i],
                  expected);
        if (i == 0x8000) cr_assert(__builtin_signbit(out[i]), "f16 -0 lost its sign");
    }
    tensor_to_float(safetensors_find(&set, "b"), out);
    for (int i = 0; i < N; i++) {
        uint32_t expected_bits = (uint32_t)i << 16, got_bits;
        memcpy(&got_bits, &out[i], 4);
        cr_assert_eq(got_bits, expected_bits, "bf16 %04x", i);
    }
    // Row slices give the same values as the full expansion.
    const TensorInfo *h = safetensors_find(&set, "h");
    float rows[3 * 256], full_values[256 * 256];
    tensor_to_float(h, full_values);
    tensor_rows_to_float(h, 100, 3, rows);
    cr_assert_eq(memcmp(rows, full_values + 100 * 256, sizeof rows), 0);

    float f32_out[8];
    tensor_to_float(safetensors_find(&set, "f"), f32_out);
    cr_assert_eq(memcmp(f32_out, f32, sizeof f32), 0);
    safetensors_close(&set);
    free(out);
    free(data);
    free(bits);
    free(path);
    free(dir);
}

// ----------------------------------------------------------------------------------------------
// sharded checkpoints, written by hand from a synthetic single-file one

// Writes the tensors of `set` whose index has parity `parity` (or all when parity < 0) to `path`.
static void write_subset(const char *path, const SafetensorsSet *set, int parity) {
    size_t capacity = 1 << 20, length = 0, data_size = 0;
    char *header = malloc(capacity);
    cr_assert_not_null(header);
    length += (size_t)snprintf(header, capacity, "{");
    for (int t = 0; t < set->n_tensors; t++) {
        if (parity >= 0 && t % 2 != parity) continue;
        const TensorInfo *tensor = &set->tensors[t];
        length += (size_t)snprintf(header + length, capacity - length, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld",
                                   length > 1 ? "," : "", tensor->name, dtype_name(tensor->dtype),
                                   (long long)tensor->shape[0]);
        for (int d = 1; d < tensor->ndim; d++)
            length += (size_t)snprintf(header + length, capacity - length, ",%lld", (long long)tensor->shape[d]);
        length += (size_t)snprintf(header + length, capacity - length, "],\"data_offsets\":[%zu,%zu]}", data_size,
                                   data_size + tensor->nbytes);
        data_size += tensor->nbytes;
    }
    snprintf(header + length, capacity - length, "}");
    unsigned char *data = malloc(data_size + 1);
    cr_assert_not_null(data);
    size_t offset = 0;
    for (int t = 0; t < set->n_tensors; t++) {
        if (parity >= 0 && t % 2 != parity) continue;
        memcpy(data + offset, set->tensors[t].data, set->tensors[t].nbytes);
        offset += set->tensors[t].nbytes;
    }
    write_safetensors(path, header, data, data_size);
    free(data);
    free(header);
}

static const char *SHARD_1 = "model-00001-of-00002.safetensors";
static const char *SHARD_2 = "model-00002-of-00002.safetensors";

// A two-shard copy of the synthetic tiny checkpoint in `single_dir`; returns the new dir.
static char *make_sharded_copy(const char *single_dir, SafetensorsSet *single) {
    ErrorMessage err;
    cr_assert_eq(safetensors_open_dir(single_dir, single, &err), 0, "%s", err.text);
    char *dir = test_make_temp_dir("st-sharded");
    char *shard_paths[2] = {test_path_join(dir, SHARD_1), test_path_join(dir, SHARD_2)};
    write_subset(shard_paths[0], single, 0);
    write_subset(shard_paths[1], single, 1);
    size_t capacity = 1 << 20, length = 0;
    char *index = malloc(capacity);
    cr_assert_not_null(index);
    length += (size_t)snprintf(index, capacity, "{\"metadata\":{\"total_size\":0},\"weight_map\":{");
    for (int t = 0; t < single->n_tensors; t++)
        length += (size_t)snprintf(index + length, capacity - length, "%s\"%s\":\"%s\"", t ? "," : "",
                                   single->tensors[t].name, t % 2 ? SHARD_2 : SHARD_1);
    snprintf(index + length, capacity - length, "}}");
    char *index_path = test_path_join(dir, "model.safetensors.index.json");
    test_write_file(index_path, index, strlen(index));
    char *config_from = test_path_join(single_dir, "config.json");
    char *config_to = test_path_join(dir, "config.json");
    size_t config_size;
    char *config = test_read_file(config_from, &config_size);
    test_write_file(config_to, config, config_size);
    free(config);
    free(config_from);
    free(config_to);
    free(index_path);
    free(index);
    free(shard_paths[0]);
    free(shard_paths[1]);
    return dir;
}

Test(safetensors, sharded_equals_single_file) {
    char *single_dir = test_synth_checkpoint("tiny", 7);
    SafetensorsSet single, sharded;
    char *dir = make_sharded_copy(single_dir, &single);
    ErrorMessage err;
    cr_assert_eq(safetensors_open_dir(dir, &sharded, &err), 0, "%s", err.text);
    cr_assert_eq(sharded.n_files, 2);
    cr_assert_eq(sharded.n_tensors, single.n_tensors);
    for (int t = 0; t < single.n_tensors; t++) {
        const TensorInfo *a = &single.tensors[t], *b = &sharded.tensors[t];
        cr_assert_str_eq(a->name, b->name);
        cr_assert_eq(a->dtype, b->dtype);
        cr_assert_eq(a->ndim, b->ndim);
        for (int d = 0; d < a->ndim; d++) cr_assert_eq(a->shape[d], b->shape[d]);
        cr_assert_eq(a->nbytes, b->nbytes);
        cr_assert_eq(memcmp(a->data, b->data, a->nbytes), 0, "tensor %s differs", a->name);
        cr_assert_eq(b->file_index, t % 2, "tensor %s in the wrong shard", b->name);
    }
    safetensors_close(&sharded);

    // Through the checkpoint: same weights, same fingerprint, whatever the file layout.
    Checkpoint one, two;
    cr_assert_eq(checkpoint_open(single_dir, &one, &err), 0, "%s", err.text);
    cr_assert_eq(checkpoint_open(dir, &two, &err), 0, "%s", err.text);
    cr_assert_str_eq(one.fingerprint, two.fingerprint);
    float a[64], b[64];
    tensor_to_float(one.layers[1].k_norm, a);
    tensor_to_float(two.layers[1].k_norm, b);
    cr_assert_eq(memcmp(a, b, 16 * sizeof(float)), 0);
    checkpoint_close(&one);
    checkpoint_close(&two);
    safetensors_close(&single);
    free(dir);
    free(single_dir);
}

Test(safetensors, missing_shard) {
    char *single_dir = test_synth_checkpoint("tiny", 0);
    SafetensorsSet single, sharded;
    char *dir = make_sharded_copy(single_dir, &single);
    char *shard = test_path_join(dir, SHARD_2);
    cr_assert_eq(unlink(shard), 0);
    ErrorMessage err;
    cr_assert_eq(safetensors_open_dir(dir, &sharded, &err), -1);
    char expected[512];
    snprintf(expected, sizeof expected, "%s/model.safetensors.index.json: shard '%s' is missing", dir, SHARD_2);
    cr_assert_not_null(strstr(err.text, expected), "'%s' lacks '%s'", err.text, expected);
    // The same failure through checkpoint_open.
    Checkpoint checkpoint;
    cr_assert_eq(checkpoint_open(dir, &checkpoint, &err), -1);
    cr_assert_not_null(strstr(err.text, expected), "%s", err.text);
    safetensors_close(&single);
    free(shard);
    free(dir);
    free(single_dir);
}

Test(safetensors, tensor_missing_from_its_shard) {
    char *single_dir = test_synth_checkpoint("tiny", 0);
    SafetensorsSet single, sharded;
    char *dir = make_sharded_copy(single_dir, &single);
    // Shard 2 still exists but holds no tensors, while the index puts half of them there.
    char *shard = test_path_join(dir, SHARD_2);
    write_safetensors(shard, "{}", NULL, 0);
    ErrorMessage err;
    cr_assert_eq(safetensors_open_dir(dir, &sharded, &err), -1);
    char expected[512];
    snprintf(expected, sizeof expected, "tensor '%s' is listed in shard '%s', which does not contain it",
             single.tensors[1].name, SHARD_2);
    cr_assert_not_null(strstr(err.text, expected), "'%s' lacks '%s'", err.text, expected);
    cr_assert_not_null(strstr(err.text, "model.safetensors.index.json"), "%s", err.text);
    safetensors_close(&single);
    free(shard);
    free(dir);
    free(single_dir);
}

Test(safetensors, tensor_in_two_shards) {
    char *single_dir = test_synth_checkpoint("tiny", 0);
    SafetensorsSet single, sharded;
    char *dir = make_sharded_copy(single_dir, &single);
    char *shard = test_path_join(dir, SHARD_2);
    write_subset(shard, &single, -1);  // shard 2 now holds everything, shard 1's tensors too
    ErrorMessage err;
    cr_assert_eq(safetensors_open_dir(dir, &sharded, &err), -1);
    cr_assert_not_null(strstr(err.text, "appears in both"), "%s", err.text);
    safetensors_close(&single);
    free(shard);
    free(dir);
    free(single_dir);
}

Test(safetensors, bad_index_and_empty_dir) {
    char *dir = test_make_temp_dir("st-empty");
    SafetensorsSet set;
    ErrorMessage err;
    cr_assert_eq(safetensors_open_dir(dir, &set, &err), -1);
    cr_assert_not_null(strstr(err.text, "no model.safetensors or model.safetensors.index.json"), "%s", err.text);
    char *index = test_path_join(dir, "model.safetensors.index.json");
    test_write_file(index, "{\"weight_map\": {\"a\": \"../elsewhere.safetensors\"}}", 49);
    cr_assert_eq(safetensors_open_dir(dir, &set, &err), -1);
    cr_assert_not_null(strstr(err.text, "tensor 'a': shard is not a plain file name"), "%s", err.text);
    test_write_file(index, "{\"weight_map\": 3}", 17);
    cr_assert_eq(safetensors_open_dir(dir, &set, &err), -1);
    cr_assert_not_null(strstr(err.text, "'weight_map' is missing or not an object"), "%s", err.text);
    test_write_file(index, "{\"weight_map\": ", 15);
    cr_assert_eq(safetensors_open_dir(dir, &set, &err), -1);
    cr_assert_not_null(strstr(err.text, "model.safetensors.index.json: invalid JSON"), "%s", err.text);
    free(index);
    free(dir);
}
