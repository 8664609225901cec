// Golden trace format: write/read round trip, atomic replacement, and refusal of bad files.
#include <criterion/criterion.h>
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../golden/trace.h"
#include "../golden/trace_internal.h"
#include "test_support.h"

#define HIDDEN 8
#define Q_WIDTH 16
#define VOCAB 10
#define PROMPT 3
#define N_STEPS 2
#define N_LAYERS 2

static const char *CONFIG_JSON = "{\"hidden_size\": 8, \"num_hidden_layers\": 2}";

static TraceMeta make_meta(void) {
    TraceMeta meta;
    memset(&meta, 0, sizeof meta);
    strcpy(meta.producer, "reference");
    strcpy(meta.kv_dtype, "bf16");
    strcpy(meta.weights_dtype, "bf16");
    strcpy(meta.weights_fingerprint, "0123456789abcdef");
    strcpy(meta.tool_version, "fusecheck 0.1.0");
    meta.model_config = (char *)CONFIG_JSON;
    meta.prompt_length = PROMPT;
    return meta;
}

// Deterministic values for tensor (step, layer, name index), with the awkward floats mixed in so
// the round trip proves bit-exactness, not just closeness.
static float *make_tensor(int rows, int cols, uint64_t seed) {
    float *x = malloc((size_t)rows * cols * sizeof *x);
    cr_assert_not_null(x);
    test_fill_random(x, (size_t)rows * cols, seed, 3.0f);
    x[0] = -0.0f;
    if (rows * cols > 3) {
        x[1] = 1e-40f;  // subnormal
        x[2] = INFINITY;
        x[3] = NAN;
    }
    return x;
}

static int step_rows(int step) { return step == 0 ? PROMPT : 1; }

static const int32_t TOKENS[PROMPT + N_STEPS - 1] = {11, 22, 33, 44};

// Writes the 2-step, 2-layer trace the round-trip test reads back.
static void write_sample_trace(const char *path) {
    ErrorMessage err;
    TraceMeta meta = make_meta();
    TraceWriter *writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    for (int step = 0; step < N_STEPS; step++) {
        int rows = step_rows(step);
        cr_assert_eq(trace_begin_step(writer, step, step == 0 ? 0 : PROMPT + step - 1, rows, &err), 0, "%s", err.text);
        float *embed = make_tensor(rows, HIDDEN, 100 + step);
        cr_assert_eq(trace_write_tensor(writer, -1, "embed", embed, rows, HIDDEN, &err), 0, "%s", err.text);
        free(embed);
        for (int layer = 0; layer < N_LAYERS; layer++) {
            float *attn_norm = make_tensor(rows, HIDDEN, 1000 * step + 10 * layer + 1);
            float *q = make_tensor(rows, Q_WIDTH, 1000 * step + 10 * layer + 2);
            cr_assert_eq(trace_write_tensor(writer, layer, "attn_norm", attn_norm, rows, HIDDEN, &err), 0, "%s",
                         err.text);
            cr_assert_eq(trace_write_tensor(writer, layer, "q", q, rows, Q_WIDTH, &err), 0, "%s", err.text);
            free(attn_norm);
            free(q);
        }
        float *final_norm = make_tensor(1, HIDDEN, 200 + step);
        float *logits = make_tensor(1, VOCAB, 300 + step);
        cr_assert_eq(trace_write_tensor(writer, -1, "final_norm", final_norm, 1, HIDDEN, &err), 0, "%s", err.text);
        cr_assert_eq(trace_write_tensor(writer, -1, "logits", logits, 1, VOCAB, &err), 0, "%s", err.text);
        free(final_norm);
        free(logits);
        cr_assert_eq(trace_write_next_token(writer, 40 + step, &err), 0, "%s", err.text);
    }
    // Tokens last, as a greedy run learns its continuation only while it runs.
    cr_assert_eq(trace_write_tokens(writer, TOKENS, PROMPT + N_STEPS - 1, &err), 0, "%s", err.text);
    cr_assert_eq(trace_writer_close(writer, &err), 0, "%s", err.text);
}

static void assert_tensor_equals(const TraceReader *reader, int step, int layer, const char *name, int rows, int cols,
                                 uint64_t seed) {
    ErrorMessage err;
    float *data = NULL;
    int got_rows = 0, got_cols = 0;
    cr_assert_eq(trace_read_tensor(reader, step, layer, name, &data, &got_rows, &got_cols, &err), 0, "%s", err.text);
    cr_assert_eq(got_rows, rows, "step %d layer %d %s rows", step, layer, name);
    cr_assert_eq(got_cols, cols, "step %d layer %d %s cols", step, layer, name);
    float *expected = make_tensor(rows, cols, seed);
    cr_assert_eq(memcmp(data, expected, (size_t)rows * cols * sizeof(float)), 0, "step %d layer %d %s differs", step,
                 layer, name);
    free(expected);
    free(data);
}

static int count_dir_entries(const char *dir) {
    DIR *handle = opendir(dir);
    cr_assert_not_null(handle);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(handle)))
        if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) count++;
    closedir(handle);
    return count;
}

static int file_exists(const char *path) {
    struct stat info;
    return stat(path, &info) == 0;
}

// trace_open must refuse `path` with a message naming the file and containing `needle`.
static void assert_open_refused(const char *path, const char *needle) {
    ErrorMessage err;
    err.text[0] = '\0';
    TraceReader *reader = trace_open(path, &err);
    cr_assert_null(reader, "%s: opened, expected refusal with '%s'", path, needle);
    cr_assert_not_null(strstr(err.text, path), "message does not name the file: %s", err.text);
    cr_assert_not_null(strstr(err.text, needle), "message lacks '%s': %s", needle, err.text);
    cr_assert_null(strchr(err.text, '\n'), "message is not one line: %s", err.text);
}

Test(trace, round_trip) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "round.h5");
    write_sample_trace(path);
    cr_assert_eq(count_dir_entries(dir), 1, "temporary file left behind");

    ErrorMessage err;
    TraceReader *reader = trace_open(path, &err);
    cr_assert_not_null(reader, "%s", err.text);
    const TraceMeta *meta = trace_meta(reader);
    cr_assert_str_eq(meta->producer, "reference");
    cr_assert_str_eq(meta->kv_dtype, "bf16");
    cr_assert_str_eq(meta->weights_dtype, "bf16");
    cr_assert_str_eq(meta->weights_fingerprint, "0123456789abcdef");
    cr_assert_str_eq(meta->tool_version, "fusecheck 0.1.0");
    cr_assert_str_eq(meta->model_config, CONFIG_JSON);
    cr_assert_eq(meta->prompt_length, PROMPT);
    cr_assert_eq(meta->n_steps, N_STEPS);
    cr_assert_eq(trace_n_steps(reader), N_STEPS);
    cr_assert_str_eq(trace_path(reader), path);

    int n_tokens = 0;
    const int32_t *tokens = trace_tokens(reader, &n_tokens);
    cr_assert_eq(n_tokens, PROMPT + N_STEPS - 1);
    cr_assert_eq(memcmp(tokens, TOKENS, sizeof TOKENS), 0);

    for (int step = 0; step < N_STEPS; step++) {
        int rows = step_rows(step), first_position = -1, step_tokens = -1;
        cr_assert_eq(trace_step_info(reader, step, &first_position, &step_tokens, &err), 0, "%s", err.text);
        cr_assert_eq(first_position, step == 0 ? 0 : PROMPT + step - 1);
        cr_assert_eq(step_tokens, rows);
        cr_assert_eq(trace_n_layers(reader, step), N_LAYERS);
        assert_tensor_equals(reader, step, -1, "embed", rows, HIDDEN, 100 + step);
        assert_tensor_equals(reader, step, -1, "final_norm", 1, HIDDEN, 200 + step);
        assert_tensor_equals(reader, step, -1, "logits", 1, VOCAB, 300 + step);
        for (int layer = 0; layer < N_LAYERS; layer++) {
            assert_tensor_equals(reader, step, layer, "attn_norm", rows, HIDDEN, 1000 * step + 10 * layer + 1);
            assert_tensor_equals(reader, step, layer, "q", rows, Q_WIDTH, 1000 * step + 10 * layer + 2);
        }
        int32_t next_token = -1;
        cr_assert_eq(trace_read_next_token(reader, step, &next_token, &err), 0, "%s", err.text);
        cr_assert_eq(next_token, 40 + step);
    }

    // Listings: datasets only (layer groups skipped), sorted.
    char **names = NULL;
    int n_names = 0;
    cr_assert_eq(trace_list_tensors(reader, 0, -1, &names, &n_names, &err), 0, "%s", err.text);
    cr_assert_eq(n_names, 4);
    cr_assert_str_eq(names[0], "embed");
    cr_assert_str_eq(names[1], "final_norm");
    cr_assert_str_eq(names[2], "logits");
    cr_assert_str_eq(names[3], "next_token");
    trace_free_names(names, n_names);
    cr_assert_eq(trace_list_tensors(reader, 1, 1, &names, &n_names, &err), 0, "%s", err.text);
    cr_assert_eq(n_names, 2);
    cr_assert_str_eq(names[0], "attn_norm");
    cr_assert_str_eq(names[1], "q");
    trace_free_names(names, n_names);
    // A layer the producer never wrote lists as empty: engines omit what they do not compute.
    cr_assert_eq(trace_list_tensors(reader, 0, 7, &names, &n_names, &err), 0, "%s", err.text);
    cr_assert_eq(n_names, 0);
    cr_assert_null(names);

    cr_assert_eq(trace_has_tensor(reader, 0, 0, "q"), 1);
    cr_assert_eq(trace_has_tensor(reader, 1, -1, "logits"), 1);
    cr_assert_eq(trace_has_tensor(reader, 0, 0, "v"), 0);
    cr_assert_eq(trace_has_tensor(reader, 0, 5, "q"), 0);
    cr_assert_eq(trace_has_tensor(reader, 0, -1, "layer_00"), 0, "a group is not a tensor");
    cr_assert_eq(trace_has_tensor(reader, 9, 0, "q"), 0);
    cr_assert_eq(trace_has_tensor(reader, -1, 0, "q"), 0);
    trace_close(reader);
    free(path);
    free(dir);
}

Test(trace, missing_tensor_names_file_and_dataset) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "missing.h5");
    write_sample_trace(path);
    ErrorMessage err;
    TraceReader *reader = trace_open(path, &err);
    cr_assert_not_null(reader, "%s", err.text);
    float *data = (float *)1;
    int rows = 0, cols = 0;
    cr_assert_eq(trace_read_tensor(reader, 1, 0, "v", &data, &rows, &cols, &err), -1);
    cr_assert_null(data);
    cr_assert_not_null(strstr(err.text, path), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "/step_0001/layer_00/v"), "%s", err.text);
    cr_assert_eq(trace_read_tensor(reader, 5, 0, "q", &data, &rows, &cols, &err), -1);
    cr_assert_not_null(strstr(err.text, "step 5 out of range"), "%s", err.text);
    cr_assert_eq(trace_read_tensor(reader, 0, -1, "layer_00", &data, &rows, &cols, &err), -1);
    cr_assert_not_null(strstr(err.text, "is not a dataset"), "%s", err.text);
    cr_assert_eq(trace_step_info(reader, 2, NULL, NULL, &err), -1);
    cr_assert_not_null(strstr(err.text, path), "%s", err.text);
    trace_close(reader);
    free(path);
    free(dir);
}

Test(trace, abort_leaves_no_file) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "aborted.h5");
    ErrorMessage err;
    TraceMeta meta = make_meta();
    TraceWriter *writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    cr_assert_eq(trace_begin_step(writer, 0, 0, PROMPT, &err), 0, "%s", err.text);
    float *embed = make_tensor(PROMPT, HIDDEN, 1);
    cr_assert_eq(trace_write_tensor(writer, -1, "embed", embed, PROMPT, HIDDEN, &err), 0, "%s", err.text);
    free(embed);
    cr_assert_eq(count_dir_entries(dir), 1, "the temporary file should exist while writing");
    cr_assert(!file_exists(path), "the trace must not appear before close");
    trace_writer_abort(writer);
    cr_assert_eq(count_dir_entries(dir), 0, "abort left a file behind");
    free(path);
    free(dir);
}

Test(trace, abort_keeps_existing_file) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "keep.h5");
    write_sample_trace(path);
    size_t size_before = 0;
    char *before = test_read_file(path, &size_before);

    ErrorMessage err;
    TraceMeta meta = make_meta();
    strcpy(meta.producer, "fused");
    TraceWriter *writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    cr_assert_eq(trace_begin_step(writer, 0, 0, PROMPT, &err), 0, "%s", err.text);
    trace_writer_abort(writer);

    size_t size_after = 0;
    char *after = test_read_file(path, &size_after);
    cr_assert_eq(size_after, size_before);
    cr_assert_eq(memcmp(before, after, size_before), 0, "abort changed the existing trace");
    cr_assert_eq(count_dir_entries(dir), 1, "abort left a temporary file behind");
    TraceReader *reader = trace_open(path, &err);
    cr_assert_not_null(reader, "%s", err.text);
    cr_assert_str_eq(trace_meta(reader)->producer, "reference");
    trace_close(reader);
    free(before);
    free(after);
    free(path);
    free(dir);
}

Test(trace, failed_close_keeps_existing_file) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "keep.h5");
    write_sample_trace(path);
    size_t size_before = 0;
    char *before = test_read_file(path, &size_before);

    // A run that never writes /tokens cannot produce a valid trace: close refuses and cleans up.
    ErrorMessage err;
    TraceMeta meta = make_meta();
    TraceWriter *writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    cr_assert_eq(trace_begin_step(writer, 0, 0, PROMPT, &err), 0, "%s", err.text);
    cr_assert_eq(trace_writer_close(writer, &err), -1);
    cr_assert_not_null(strstr(err.text, "/tokens was never written"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, path), "%s", err.text);

    size_t size_after = 0;
    char *after = test_read_file(path, &size_after);
    cr_assert_eq(size_after, size_before);
    cr_assert_eq(memcmp(before, after, size_before), 0, "a failed close changed the existing trace");
    cr_assert_eq(count_dir_entries(dir), 1, "a failed close left a temporary file behind");
    free(before);
    free(after);
    free(path);
    free(dir);
}

Test(trace, writer_refuses_misuse) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "misuse.h5");
    ErrorMessage err;
    TraceMeta meta = make_meta();
    float row[Q_WIDTH * PROMPT] = {0};

    TraceWriter *writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    cr_assert_eq(trace_write_tensor(writer, 0, "q", row, 1, Q_WIDTH, &err), -1);
    cr_assert_not_null(strstr(err.text, "before trace_begin_step"), "%s", err.text);
    cr_assert_eq(trace_write_next_token(writer, 1, &err), -1);
    cr_assert_not_null(strstr(err.text, "before trace_begin_step"), "%s", err.text);
    trace_writer_abort(writer);

    writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    cr_assert_eq(trace_begin_step(writer, 1, PROMPT, 1, &err), -1);
    cr_assert_not_null(strstr(err.text, "out of order"), "%s", err.text);
    trace_writer_abort(writer);

    writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    cr_assert_eq(trace_begin_step(writer, 0, 0, PROMPT + 1, &err), -1, "step 0 must consume the prompt");
    cr_assert_not_null(strstr(err.text, path), "%s", err.text);
    trace_writer_abort(writer);

    writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    cr_assert_eq(trace_begin_step(writer, 0, 0, PROMPT, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_tensor(writer, 0, "q", row, PROMPT, Q_WIDTH, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_tensor(writer, 0, "q", row, PROMPT, Q_WIDTH, &err), -1);
    cr_assert_not_null(strstr(err.text, "/step_0000/layer_00/q written twice"), "%s", err.text);
    cr_assert_eq(trace_write_tensor(writer, 1, "k", row, PROMPT - 1, Q_WIDTH, &err), -1);
    cr_assert_not_null(strstr(err.text, "rows, expected 3"), "%s", err.text);
    cr_assert_eq(trace_write_tensor(writer, -1, "logits", row, PROMPT, Q_WIDTH, &err), -1, "logits keep the last row");
    cr_assert_eq(trace_write_tensor(writer, 0, "bad/name", row, PROMPT, Q_WIDTH, &err), -1);
    cr_assert_not_null(strstr(err.text, "bad tensor name"), "%s", err.text);
    cr_assert_eq(trace_write_next_token(writer, 1, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_next_token(writer, 1, &err), -1);
    cr_assert_not_null(strstr(err.text, "written twice"), "%s", err.text);
    cr_assert_eq(trace_write_tokens(writer, TOKENS, PROMPT, &err), 0, "%s", err.text);
    // Any earlier failure poisons the file: close refuses and leaves nothing.
    cr_assert_eq(trace_writer_close(writer, &err), -1);
    cr_assert_not_null(strstr(err.text, "earlier trace write failed"), "%s", err.text);
    cr_assert_eq(count_dir_entries(dir), 0);

    // Too few tokens for the steps written.
    writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    cr_assert_eq(trace_begin_step(writer, 0, 0, PROMPT, &err), 0, "%s", err.text);
    cr_assert_eq(trace_begin_step(writer, 1, PROMPT, 1, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_tokens(writer, TOKENS, PROMPT, &err), 0, "%s", err.text);
    cr_assert_eq(trace_writer_close(writer, &err), -1);
    cr_assert_not_null(strstr(err.text, "need 4"), "%s", err.text);
    cr_assert_eq(count_dir_entries(dir), 0);

    char *nowhere = test_path_join(dir, "no/such/dir/x.h5");
    cr_assert_null(trace_writer_open(nowhere, &meta, &err));
    cr_assert_not_null(strstr(err.text, nowhere), "%s", err.text);
    free(nowhere);
    meta.model_config = NULL;
    cr_assert_null(trace_writer_open(path, &meta, &err));
    cr_assert_not_null(strstr(err.text, "model_config"), "%s", err.text);
    free(path);
    free(dir);
}

Test(trace, refuses_truncated_copies) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "good.h5");
    write_sample_trace(path);
    size_t size = 0;
    char *bytes = test_read_file(path, &size);
    size_t cuts[] = {0, 4, 100, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "truncated_%zu.h5", cuts[i]);
        char *truncated = test_path_join(dir, name);
        test_write_file(truncated, bytes, cuts[i]);
        assert_open_refused(truncated, "not an HDF5 file or truncated");
        free(truncated);
    }
    free(bytes);
    free(path);
    free(dir);
}

Test(trace, refuses_non_hdf5_and_missing_files) {
    char *dir = test_make_temp_dir("trace");
    char *text = test_path_join(dir, "notes.h5");
    const char *content = "this is not an HDF5 file, just some text that is long enough to look like one\n";
    test_write_file(text, content, strlen(content));
    assert_open_refused(text, "not an HDF5 file or truncated");
    char *missing = test_path_join(dir, "absent.h5");
    assert_open_refused(missing, "no such trace file");
    assert_open_refused(dir, "not a regular file");
    free(text);
    free(missing);
    free(dir);
}

// Creates an HDF5 file with raw calls: a dataset, optionally a format_version attribute.
static void write_foreign_hdf5(const char *path, int format_version) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(file, 0);
    hsize_t dims[1] = {3};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dataset = H5Dcreate2(file, "/data", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(dataset, 0);
    double values[3] = {1, 2, 3};
    cr_assert_geq(H5Dwrite(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
    if (format_version >= 0) {
        hid_t scalar = H5Screate(H5S_SCALAR);
        hid_t attribute = H5Acreate2(file, "format_version", H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
        long long version = format_version;
        cr_assert_geq(H5Awrite(attribute, H5T_NATIVE_LLONG, &version), 0);
        H5Aclose(attribute);
        H5Sclose(scalar);
    }
    H5Dclose(dataset);
    H5Sclose(space);
    cr_assert_geq(H5Fclose(file), 0);
}

Test(trace, refuses_hdf5_without_trace_attributes) {
    char *dir = test_make_temp_dir("trace");
    char *bare = test_path_join(dir, "bare.h5");
    write_foreign_hdf5(bare, -1);
    assert_open_refused(bare, "format_version");
    char *future = test_path_join(dir, "future.h5");
    write_foreign_hdf5(future, 99);
    assert_open_refused(future, "format_version 99");
    char *partial = test_path_join(dir, "partial.h5");
    write_foreign_hdf5(partial, TRACE_FORMAT_VERSION);  // right version, nothing else
    assert_open_refused(partial, "producer");
    free(bare);
    free(future);
    free(partial);
    free(dir);
}

// Copies the sample trace to `name` in `dir` and opens the copy for editing with raw HDF5 calls.
static hid_t edit_copy(const char *dir, const char *name, char **copy_path) {
    char *good = test_path_join(dir, "good.h5");
    write_sample_trace(good);
    size_t size = 0;
    char *bytes = test_read_file(good, &size);
    *copy_path = test_path_join(dir, name);
    test_write_file(*copy_path, bytes, size);
    free(bytes);
    free(good);
    hid_t file = H5Fopen(*copy_path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(file, 0);
    return file;
}

Test(trace, refuses_misnumbered_steps) {
    char *dir = test_make_temp_dir("trace");
    char *path = NULL;
    hid_t file = edit_copy(dir, "renumbered.h5", &path);
    cr_assert_geq(H5Lmove(file, "/step_0001", file, "/step_0005", H5P_DEFAULT, H5P_DEFAULT), 0);
    cr_assert_geq(H5Fclose(file), 0);
    assert_open_refused(path, "/step_0001 is missing");
    free(path);

    file = edit_copy(dir, "extra.h5", &path);
    hid_t group = H5Gcreate2(file, "/step_0002", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(group, 0);
    H5Gclose(group);
    cr_assert_geq(H5Fclose(file), 0);
    assert_open_refused(path, "unexpected group /step_0002");
    free(path);

    file = edit_copy(dir, "no_tokens.h5", &path);
    cr_assert_geq(H5Ldelete(file, "/tokens", H5P_DEFAULT), 0);
    cr_assert_geq(H5Fclose(file), 0);
    assert_open_refused(path, "no dataset /tokens");
    free(path);

    file = edit_copy(dir, "no_fingerprint.h5", &path);
    cr_assert_geq(H5Adelete(file, "weights_fingerprint"), 0);
    cr_assert_geq(H5Fclose(file), 0);
    assert_open_refused(path, "weights_fingerprint");
    free(path);
    free(dir);
}

Test(trace, refuses_wrong_dtypes) {
    char *dir = test_make_temp_dir("trace");
    char *path = NULL;
    hid_t file = edit_copy(dir, "float_tokens.h5", &path);
    cr_assert_geq(H5Ldelete(file, "/tokens", H5P_DEFAULT), 0);
    hsize_t dims[1] = {4};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dataset = H5Dcreate2(file, "/tokens", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(dataset, 0);
    float values[4] = {1, 2, 3, 4};
    cr_assert_geq(H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
    H5Dclose(dataset);
    cr_assert_geq(H5Fclose(file), 0);
    assert_open_refused(path, "/tokens is not int32");
    free(path);

    // A float64 tensor opens (the file is fine) but reading it names the dataset.
    file = edit_copy(dir, "double_tensor.h5", &path);
    hsize_t dims2[2] = {1, 4};
    hid_t space2 = H5Screate_simple(2, dims2, NULL);
    dataset = H5Dcreate2(file, "/step_0001/layer_00/v", H5T_IEEE_F64LE, space2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(dataset, 0);
    double doubles[4] = {1, 2, 3, 4};
    cr_assert_geq(H5Dwrite(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, doubles), 0);
    H5Dclose(dataset);
    H5Sclose(space2);
    cr_assert_geq(H5Fclose(file), 0);
    ErrorMessage err;
    TraceReader *reader = trace_open(path, &err);
    cr_assert_not_null(reader, "%s", err.text);
    float *data = NULL;
    int rows = 0, cols = 0;
    cr_assert_eq(trace_read_tensor(reader, 1, 0, "v", &data, &rows, &cols, &err), -1);
    cr_assert_not_null(strstr(err.text, path), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "/step_0001/layer_00/v is not float32"), "%s", err.text);
    trace_close(reader);
    H5Sclose(space);
    free(path);
    free(dir);
}

// ----- format version 2: the declaration of what a producer never materialises -----------------------

// Writes a one-step trace whose metadata declares `omitted` (already in meta), with only embed,
// layer 0's resid_mlp and the head, so the declaration is what differs between callers.
static void write_declared_trace(const char *path, const TraceMeta *meta) {
    ErrorMessage err;
    TraceWriter *writer = trace_writer_open(path, meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    float *x = make_tensor(PROMPT, HIDDEN, 5);
    cr_assert_eq(trace_begin_step(writer, 0, 0, PROMPT, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_tensor(writer, -1, "embed", x, PROMPT, HIDDEN, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_tensor(writer, 0, "resid_mlp", x, PROMPT, HIDDEN, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_tensor(writer, -1, "logits", x, 1, HIDDEN, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_next_token(writer, 1, &err), 0, "%s", err.text);
    cr_assert_eq(trace_write_tokens(writer, TOKENS, PROMPT, &err), 0, "%s", err.text);
    cr_assert_eq(trace_writer_close(writer, &err), 0, "%s", err.text);
    free(x);
}

// Reads string attribute `name` of the root with raw HDF5 calls (as h5py or h5dump would see it).
static char *raw_string_attribute(const char *path, const char *name) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0);
    hid_t attribute = H5Aopen(file, name, H5P_DEFAULT);
    cr_assert_geq(attribute, 0, "no attribute %s", name);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    char *raw = NULL;
    cr_assert_geq(H5Aread(attribute, type, &raw), 0);
    char *copy = strdup(raw ? raw : "");
    H5free_memory(raw);
    H5Tclose(type);
    H5Aclose(attribute);
    H5Fclose(file);
    return copy;
}

static int raw_int_attribute(const char *path, const char *name) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0);
    hid_t attribute = H5Aopen(file, name, H5P_DEFAULT);
    int value = -1;
    cr_assert_geq(H5Aread(attribute, H5T_NATIVE_INT, &value), 0);
    H5Aclose(attribute);
    H5Fclose(file);
    return value;
}

// Replaces root attribute `name` of `path` by a scalar variable-length string (or deletes it: NULL).
static void set_string_attribute(const char *path, const char *name, const char *value) {
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(file, 0);
    if (H5Aexists(file, name) > 0) cr_assert_geq(H5Adelete(file, name), 0);
    if (value) {
        hid_t type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, H5T_VARIABLE);
        H5Tset_cset(type, H5T_CSET_UTF8);
        hid_t space = H5Screate(H5S_SCALAR);
        hid_t attribute = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        cr_assert_geq(attribute, 0);
        cr_assert_geq(H5Awrite(attribute, type, &value), 0);
        H5Aclose(attribute);
        H5Sclose(space);
        H5Tclose(type);
    }
    cr_assert_geq(H5Fclose(file), 0);
}

static void set_int_attribute(const char *path, const char *name, int value) {
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(file, 0);
    hid_t attribute = H5Aopen(file, name, H5P_DEFAULT);
    cr_assert_geq(attribute, 0);
    cr_assert_geq(H5Awrite(attribute, H5T_NATIVE_INT, &value), 0);
    H5Aclose(attribute);
    cr_assert_geq(H5Fclose(file), 0);
}

Test(trace, declared_omissions_round_trip_as_version_2) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "declared.h5");
    TraceMeta meta = make_meta();
    char why[256];
    cr_assert_eq(trace_meta_set_omitted(&meta, " gate, up ,act,final_norm", why, sizeof why), 0, "%s", why);
    cr_assert_eq(meta.n_omitted, 4);
    write_declared_trace(path, &meta);
    // As any HDF5 reader sees it: version 2, one comma-separated string.
    cr_assert_eq(raw_int_attribute(path, "format_version"), 2);
    char *raw = raw_string_attribute(path, "omitted");
    cr_assert_str_eq(raw, "gate,up,act,final_norm");
    free(raw);
    ErrorMessage err;
    TraceReader *reader = trace_open(path, &err);
    cr_assert_not_null(reader, "%s", err.text);
    const TraceMeta *read = trace_meta(reader);
    cr_assert_eq(read->format_version, 2);
    cr_assert_eq(read->n_omitted, 4);
    const char *expected[] = {"gate", "up", "act", "final_norm"};
    for (int i = 0; i < 4; i++) cr_assert_str_eq(read->omitted[i], expected[i]);
    cr_assert(trace_meta_omits(read, "up") && !trace_meta_omits(read, "q"));
    trace_close(reader);

    // Nothing declared: the attribute is there, empty.
    TraceMeta plain = make_meta();
    char *plain_path = test_path_join(dir, "plain.h5");
    write_declared_trace(plain_path, &plain);
    raw = raw_string_attribute(plain_path, "omitted");
    cr_assert_str_eq(raw, "");
    free(raw);
    reader = trace_open(plain_path, &err);
    cr_assert_not_null(reader, "%s", err.text);
    cr_assert_eq(trace_meta(reader)->n_omitted, 0);
    trace_close(reader);
    free(plain_path);
    free(path);
    free(dir);
}

Test(trace, writer_refuses_to_declare_checkpoints_or_unknown_names) {
    char why[256];
    TraceMeta meta = make_meta();
    const char *checkpoints[] = {"resid_mlp", "k", "v", "logits", "next_token", "embed"};
    for (int i = 0; i < 6; i++) {
        char list[64];
        snprintf(list, sizeof list, "gate,%s", checkpoints[i]);
        cr_assert_eq(trace_meta_set_omitted(&meta, list, why, sizeof why), -1, "%s accepted", list);
        cr_assert(strstr(why, "is a contract checkpoint (resid_mlp, k, v, logits, next_token, embed)") != NULL, "%s", why);
        cr_assert_eq(meta.n_omitted, 0, "a refused list leaves the metadata unchanged");
    }
    cr_assert_eq(trace_meta_set_omitted(&meta, "gate,bogus", why, sizeof why), -1);
    cr_assert(strstr(why, "'bogus' is not a trace tensor name") != NULL, "%s", why);
    cr_assert_eq(trace_meta_set_omitted(&meta, "gate,,up", why, sizeof why), -1);
    cr_assert(strstr(why, "empty name") != NULL, "%s", why);
    cr_assert_eq(trace_meta_set_omitted(&meta, "gate,", why, sizeof why), -1);
    cr_assert_eq(trace_meta_set_omitted(&meta, "up,up", why, sizeof why), -1);
    cr_assert(strstr(why, "'up' is declared twice") != NULL, "%s", why);
    cr_assert_eq(trace_meta_set_omitted(&meta, "", why, sizeof why), 0);
    cr_assert_eq(meta.n_omitted, 0);

    // Metadata filled by hand is checked by the writer itself.
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "refused.h5");
    ErrorMessage err;
    meta.n_omitted = 1;
    strcpy(meta.omitted[0], "v");
    cr_assert_null(trace_writer_open(path, &meta, &err));
    cr_assert(strstr(err.text, "cannot declare 'v' omitted: 'v' is a contract checkpoint") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, path) != NULL, "%s", err.text);
    strcpy(meta.omitted[0], "qkv_raw");
    cr_assert_null(trace_writer_open(path, &meta, &err));
    cr_assert(strstr(err.text, "'qkv_raw' is not a trace tensor name") != NULL, "%s", err.text);
    meta.n_omitted = 2;
    strcpy(meta.omitted[0], "gate");
    strcpy(meta.omitted[1], "gate");
    cr_assert_null(trace_writer_open(path, &meta, &err));
    cr_assert(strstr(err.text, "cannot declare 'gate,gate' omitted: 'gate' is declared twice") != NULL, "%s", err.text);
    meta.n_omitted = 1;
    strcpy(meta.omitted[0], "gate,up");  // one name that would read back as two
    cr_assert_null(trace_writer_open(path, &meta, &err));
    cr_assert(strstr(err.text, "a name holds a comma") != NULL, "%s", err.text);
    cr_assert_eq(count_dir_entries(dir), 0, "a refused writer leaves nothing");
    free(path);
    free(dir);
}

Test(trace, readers_refuse_a_bad_declaration_and_accept_version_1) {
    char *dir = test_make_temp_dir("trace");
    char *path = test_path_join(dir, "edited.h5");
    TraceMeta meta = make_meta();
    write_declared_trace(path, &meta);

    set_string_attribute(path, "omitted", "gate,k");  // another producer declaring a checkpoint
    assert_open_refused(path, "attribute 'omitted': 'k' is a contract checkpoint");
    set_string_attribute(path, "omitted", "gate,nonsense");
    assert_open_refused(path, "attribute 'omitted': 'nonsense' is not a trace tensor name");
    set_string_attribute(path, "omitted", NULL);  // version 2 must say, even if nothing
    assert_open_refused(path, "has no attribute 'omitted'");

    // Version 1 (the committed goldens): no declaration, reads as nothing omitted.
    set_int_attribute(path, "format_version", 1);
    ErrorMessage err;
    TraceReader *reader = trace_open(path, &err);
    cr_assert_not_null(reader, "%s", err.text);
    cr_assert_eq(trace_meta(reader)->format_version, 1);
    cr_assert_eq(trace_meta(reader)->n_omitted, 0);
    trace_close(reader);
    const char *committed[] = {"golden/tiny-kv-f32.h5", "golden/small-kv-bf16.h5", "golden/tiny-hf-oracle.h5"};
    for (int i = 0; i < 3; i++) {
        reader = trace_open(committed[i], &err);
        cr_assert_not_null(reader, "%s", err.text);
        cr_assert_eq(trace_meta(reader)->format_version, 1, "%s", committed[i]);
        cr_assert_eq(trace_meta(reader)->n_omitted, 0);
        trace_close(reader);
    }
    set_int_attribute(path, "format_version", 3);
    assert_open_refused(path, "format_version 3, this fusecheck reads versions 1 to 2");
    set_int_attribute(path, "format_version", 0);
    assert_open_refused(path, "format_version 0");
    free(path);
    free(dir);
}

// Group names are steps and layers only in the spelling trace_build_path makes: a reader or validator
// that took "step_00001" for step 1 would read a group the writer never made.
Test(trace, step_and_layer_names_in_their_canonical_spelling_only) {
    cr_expect_eq(trace_parse_step_name("step_0003"), 3);
    cr_expect_eq(trace_parse_step_name("step_123456"), 123456);
    cr_expect_eq(trace_parse_layer_name("layer_07"), 7);
    cr_expect_eq(trace_parse_layer_name("layer_100"), 100);
    const char *not_steps[] = {"step_003", "step_00003", "step_0003x", "step_-001", "step_1234567", "step_", "Step_0003",
                               "layer_07"};
    for (size_t i = 0; i < sizeof not_steps / sizeof not_steps[0]; i++)
        cr_expect_eq(trace_parse_step_name(not_steps[i]), -1, "%s", not_steps[i]);
    const char *not_layers[] = {"layer_7", "layer_007", "layer_0a", "layer_", "layer_+1", "step_0001"};
    for (size_t i = 0; i < sizeof not_layers / sizeof not_layers[0]; i++)
        cr_expect_eq(trace_parse_layer_name(not_layers[i]), -1, "%s", not_layers[i]);
}
