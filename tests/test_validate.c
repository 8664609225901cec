// `fusecheck validate TRACE` (issue 17): the committed goldens and a fresh C-written trace are valid
// (exit 0); copies of a valid trace broken one way each by HDF5 edits (a wrong shape, a missing
// attribute, bad step numbering, a bad first_position, 'k' declared omitted or absent, a wrong dtype,
// next_token not the argmax, an unknown object, a corrupt object header) are invalid (exit 1) with a
// line naming the object; several problems at once are all listed; a file that is not HDF5 or does
// not exist is unreadable (exit 2).
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../golden/trace.h"
#include "../golden/trace_validate.h"
#include "test_support.h"

typedef struct {
    char *dir, *model, *good;
} Fixture;

// A version-2 trace from the C writer: the tiny preset (2 layers, hidden 64, q 64, kv 32), a 3-token
// prompt and 2 decode steps.
static Fixture make_fixture(void) {
    Fixture f;
    f.dir = test_make_temp_dir("validate");
    f.model = test_synth_checkpoint("tiny", 7);
    f.good = test_path_join(f.dir, "good.h5");
    char args[2048], *output;
    snprintf(args, sizeof args, "golden --model '%s' --prompt-tokens 3,1,4 --steps 2 --out '%s'", f.model, f.good);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, 0, "%s", output);
    free(output);
    return f;
}

static void free_fixture(Fixture *f) {
    free(f->good);
    free(f->model);
    free(f->dir);
}

// A copy of the good trace, opened read-write for editing.
static hid_t edit_copy(const Fixture *f, const char *name, char **path) {
    *path = test_path_join(f->dir, name);
    size_t size = 0;
    char *bytes = test_read_file(f->good, &size);
    test_write_file(*path, bytes, size);
    free(bytes);
    hid_t file = H5Fopen(*path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(file, 0, "%s", *path);
    return file;
}

// Replaces dataset `object` by one of `type` and shape [rows, cols] (cols 0: 1-D [rows]), zero-filled.
static void replace_dataset(hid_t file, const char *object, hid_t type, hsize_t rows, hsize_t cols) {
    if (H5Lexists(file, object, H5P_DEFAULT) > 0) cr_assert_geq(H5Ldelete(file, object, H5P_DEFAULT), 0, "%s", object);
    hsize_t dims[2] = {rows, cols};
    hid_t space = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t dataset = H5Dcreate2(file, object, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(dataset, 0, "%s", object);
    size_t bytes = (size_t)rows * (cols ? cols : 1) * H5Tget_size(type);
    void *zeros = calloc(1, bytes);
    cr_assert_geq(H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros), 0);
    free(zeros);
    H5Dclose(dataset);
    H5Sclose(space);
}

// Replaces dataset `object` by a deflate-compressed float32 [rows, cols] one (chunked, as HDF5 requires).
static void replace_with_compressed(hid_t file, const char *object, hsize_t rows, hsize_t cols) {
    cr_assert_geq(H5Ldelete(file, object, H5P_DEFAULT), 0, "%s", object);
    hsize_t dims[2] = {rows, cols};
    hid_t space = H5Screate_simple(2, dims, NULL), properties = H5Pcreate(H5P_DATASET_CREATE);
    cr_assert_geq(H5Pset_chunk(properties, 2, dims), 0);
    cr_assert_geq(H5Pset_deflate(properties, 6), 0);
    hid_t dataset = H5Dcreate2(file, object, H5T_IEEE_F32LE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
    cr_assert_geq(dataset, 0, "%s", object);
    float *zeros = calloc(rows * cols, sizeof *zeros);
    cr_assert_geq(H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros), 0);
    free(zeros);
    H5Dclose(dataset);
    H5Pclose(properties);
    H5Sclose(space);
}

static void set_int_attribute(hid_t file, const char *object, const char *name, int value) {
    if (H5Aexists_by_name(file, object, name, H5P_DEFAULT) > 0) H5Adelete_by_name(file, object, name, H5P_DEFAULT);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = H5Acreate_by_name(file, object, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attribute, 0, "%s %s", object, name);
    cr_assert_geq(H5Awrite(attribute, H5T_NATIVE_INT, &value), 0);
    H5Aclose(attribute);
    H5Sclose(space);
}

static void set_string_attribute(hid_t file, const char *name, const char *value) {
    if (H5Aexists(file, name) > 0) H5Adelete(file, name);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attribute, 0, "%s", name);
    cr_assert_geq(H5Awrite(attribute, type, &value), 0);
    H5Aclose(attribute);
    H5Sclose(space);
    H5Tclose(type);
}

static int32_t read_next_token(hid_t file, const char *object) {
    int32_t token = -1;
    hid_t dataset = H5Dopen2(file, object, H5P_DEFAULT);
    cr_assert_geq(dataset, 0, "%s", object);
    cr_assert_geq(H5Dread(dataset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, &token), 0);
    H5Dclose(dataset);
    return token;
}

static void write_next_token(hid_t file, const char *object, int32_t token) {
    hid_t dataset = H5Dopen2(file, object, H5P_DEFAULT);
    cr_assert_geq(dataset, 0, "%s", object);
    cr_assert_geq(H5Dwrite(dataset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, &token), 0);
    H5Dclose(dataset);
}

static int count_lines(const char *text) {
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    return lines;
}

// Runs `fusecheck validate PATH`, expects `want_status`, and returns its output (caller frees).
static char *validate(const char *path, int want_status) {
    char args[2048], *output;
    snprintf(args, sizeof args, "validate '%s'", path);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, want_status, "%s: exit %d, expected %d:\n%s", args, status, want_status, output);
    return output;
}

// The output holds `line` as a whole line's start ("OBJECT: message...").
static void expect_problem(const char *output, const char *line) {
    const char *at = strstr(output, line);
    cr_expect(at && (at == output || at[-1] == '\n'), "no line starting '%s' in:\n%s", line, output);
}

Test(validate, committed_goldens_and_a_fresh_trace_are_valid) {
    const char *goldens[] = {"golden/tiny-kv-f32.h5",      "golden/tiny-kv-bf16.h5",      "golden/tiny-eps-kv-f32.h5",
                             "golden/tiny-eps-kv-bf16.h5", "golden/small-kv-f32.h5",      "golden/small-kv-bf16.h5",
                             "golden/tiny-hf-oracle.h5",   "golden/tiny-eps-hf-oracle.h5", "golden/small-hf-oracle.h5"};
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
        char *output = validate(goldens[i], 0);
        cr_expect_not_null(strstr(output, ": valid: 0 problems (format version 1"), "%s", output);
        cr_expect_eq(count_lines(output), 1, "%s", output);
        free(output);
    }
    Fixture f = make_fixture();
    char *output = validate(f.good, 0);
    // 1 /tokens + 3 steps x (embed, final_norm, logits, next_token + 2 layers x 13)
    cr_expect_not_null(strstr(output, "valid: 0 problems (format version 2, producer reference, 3 steps, 2 layers, "
                                      "91 datasets checked)"), "%s", output);
    free(output);
    free_fixture(&f);
}

Test(validate, each_broken_trace_is_invalid_naming_the_object) {
    Fixture f = make_fixture();
    typedef struct {
        const char *name, *expected;
    } Case;
    const Case cases[] = {
        {"wrong-shape", "/step_0001/layer_00/q: shape [1, 7], expected [1, 64] ([n_tokens, num_attention_heads*head_dim])"},
        {"missing-attribute", "/: no attribute 'producer' (required: a scalar string)"},
        {"step-numbering", "/step_0005: step 5 beyond n_steps 3"},
        {"first-position", "/step_0001: first_position 7, expected 3 (prompt_length + step - 1)"},
        {"omitted-k", "/: attribute 'omitted' ('gate,k'): 'k' is a contract checkpoint"},
        {"absent-k", "/step_0002/layer_01: no tensor 'k' (a contract checkpoint: never omitted)"},
        {"wrong-dtype", "/step_0000/embed: dtype float64, expected float32 little-endian"},
        {"not-argmax", "/step_0001/next_token: "},
        {"unknown-object", "/step_0000/layer_00/attn_scores: not a layer tensor of FORMAT.md"},
        {"int-as-string", "/: attribute 'prompt_length' is a scalar string, expected a scalar integer"},
        {"n-tokens", "/step_0000: n_tokens 2, expected 3 (prompt_length)"},
        {"short-tokens", "/tokens: 4 tokens, 3 steps after a 3-token prompt need 5"},
        {"rank", "/step_0000/logits: rank 1, expected 2 ([1, vocab_size]: the last row only)"},
        {"compressed", "/step_0001/layer_00/up: stored chunked with filters (compression), expected contiguous and uncompressed"},
        {"huge-prompt", "/step_0002: first_position 4, expected 2147483648 (prompt_length + step - 1)"},
        {"big-endian", "/step_0002/final_norm: dtype float32 big-endian, expected float32 little-endian"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = NULL, name[64];
        snprintf(name, sizeof name, "%s.h5", cases[i].name);
        hid_t file = edit_copy(&f, name, &path);
        const char *kind = cases[i].name;
        if (!strcmp(kind, "wrong-shape")) replace_dataset(file, "/step_0001/layer_00/q", H5T_IEEE_F32LE, 1, 7);
        else if (!strcmp(kind, "missing-attribute")) cr_assert_geq(H5Adelete(file, "producer"), 0);
        else if (!strcmp(kind, "step-numbering")) cr_assert_geq(H5Lmove(file, "/step_0002", file, "/step_0005", H5P_DEFAULT, H5P_DEFAULT), 0);
        else if (!strcmp(kind, "first-position")) set_int_attribute(file, "/step_0001", "first_position", 7);
        else if (!strcmp(kind, "omitted-k")) set_string_attribute(file, "omitted", "gate,k");
        else if (!strcmp(kind, "absent-k")) cr_assert_geq(H5Ldelete(file, "/step_0002/layer_01/k", H5P_DEFAULT), 0);
        else if (!strcmp(kind, "wrong-dtype")) replace_dataset(file, "/step_0000/embed", H5T_IEEE_F64LE, 3, 64);
        else if (!strcmp(kind, "not-argmax")) {
            // The logits row stays; next_token moves off its argmax (the tiny vocabulary has 256 ids).
            int32_t token = read_next_token(file, "/step_0001/next_token");
            write_next_token(file, "/step_0001/next_token", (token + 1) % 256);
        } else if (!strcmp(kind, "unknown-object")) replace_dataset(file, "/step_0000/layer_00/attn_scores", H5T_IEEE_F32LE, 3, 3);
        else if (!strcmp(kind, "int-as-string")) {
            H5Adelete(file, "prompt_length");
            set_string_attribute(file, "prompt_length", "3");
        } else if (!strcmp(kind, "n-tokens")) set_int_attribute(file, "/step_0000", "n_tokens", 2);
        else if (!strcmp(kind, "short-tokens")) replace_dataset(file, "/tokens", H5T_STD_I32LE, 4, 0);
        else if (!strcmp(kind, "rank")) replace_dataset(file, "/step_0000/logits", H5T_IEEE_F32LE, 256, 0);
        else if (!strcmp(kind, "compressed")) replace_with_compressed(file, "/step_0001/layer_00/up", 1, 192);
        else if (!strcmp(kind, "huge-prompt")) set_int_attribute(file, "/", "prompt_length", 2147483647);
        else if (!strcmp(kind, "big-endian")) replace_dataset(file, "/step_0002/final_norm", H5T_IEEE_F32BE, 1, 64);
        H5Fclose(file);

        char *output = validate(path, 1);
        expect_problem(output, cases[i].expected);
        if (!strcmp(kind, "not-argmax"))
            cr_expect_not_null(strstr(output, "is not the argmax of logits"), "%s", output);
        if (!strcmp(kind, "step-numbering"))
            expect_problem(output, "/: no group 'step_0002' (n_steps is 3: step_0000..step_0002)");
        cr_expect_not_null(strstr(output, ": INVALID: "), "%s: %s", kind, output);
        free(output);
        free(path);
    }
    free_fixture(&f);
}

Test(validate, several_problems_are_all_listed_then_the_summary) {
    Fixture f = make_fixture();
    char *path = NULL;
    hid_t file = edit_copy(&f, "several.h5", &path);
    replace_dataset(file, "/step_0001/layer_01/k", H5T_IEEE_F32LE, 1, 16);
    set_int_attribute(file, "/step_0002", "first_position", 0);
    cr_assert_geq(H5Adelete(file, "tool_version"), 0);
    cr_assert_geq(H5Ldelete(file, "/step_0000/layer_00/gate", H5P_DEFAULT), 0);
    H5Fclose(file);
    char *output = validate(path, 1);
    expect_problem(output, "/: no attribute 'tool_version'");
    expect_problem(output, "/step_0001/layer_01/k: shape [1, 16], expected [1, 32]");
    expect_problem(output, "/step_0002: first_position 0, expected 4");
    expect_problem(output, "/step_0000/layer_00: no tensor 'gate' (and not declared in 'omitted')");
    cr_expect_not_null(strstr(output, ": INVALID: 4 problems ("), "%s", output);
    cr_expect_eq(count_lines(output), 5, "4 problems and the summary:\n%s", output);
    free(output);
    free(path);
    free_fixture(&f);
}

// Where the object header of `object_path` starts in the file (no user block: base address 0).
static long object_header_offset(const char *path, const char *object_path) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "%s", path);
    haddr_t address = HADDR_UNDEF;
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    cr_assert_geq(H5Oget_info_by_name3(file, object_path, &info, H5O_INFO_BASIC, H5P_DEFAULT), 0, "%s", object_path);
    cr_assert_geq(H5VLnative_token_to_addr(file, info.token, &address), 0);
#else
    H5O_info_t info;
    cr_assert_geq(H5Oget_info_by_name2(file, object_path, &info, H5O_INFO_BASIC, H5P_DEFAULT), 0, "%s", object_path);
    address = info.addr;
#endif
    H5Fclose(file);
    cr_assert_neq(address, HADDR_UNDEF);
    return (long)address;
}

// 32 overwritten bytes in a layer group's object header: the file is still HDF5, the group cannot be
// opened. Validate names it (exit 1) and still checks the rest; it never crashes.
Test(validate, a_corrupt_object_is_named_and_the_rest_still_checked) {
    Fixture f = make_fixture();
    char *path = NULL;
    hid_t file = edit_copy(&f, "corrupt.h5", &path);
    cr_assert_geq(H5Adelete(file, "weights_dtype"), 0);
    H5Fclose(file);
    long offset = object_header_offset(path, "/step_0001/layer_01");
    size_t size = 0;
    char *bytes = test_read_file(path, &size);
    memset(bytes + offset, 0xA5, 32);
    test_write_file(path, bytes, size);
    free(bytes);
    char *output = validate(path, 1);
    expect_problem(output, "/step_0001/layer_01: cannot be opened (corrupt or unreadable HDF5 object)");
    expect_problem(output, "/: no attribute 'weights_dtype'");
    free(output);
    free(path);
    free_fixture(&f);
}

Test(validate, unreadable_files_exit_2_with_one_line) {
    Fixture f = make_fixture();
    char *text = test_path_join(f.dir, "notes.h5"), *missing = test_path_join(f.dir, "missing.h5");
    test_write_file(text, "not hdf5\n", 9);
    const char *paths[] = {text, missing};
    const char *why[] = {"not an HDF5 file or truncated", "cannot open: No such file or directory"};
    for (int i = 0; i < 2; i++) {
        char *output = validate(paths[i], 2);
        cr_expect_not_null(strstr(output, "fusecheck validate: "), "%s", output);
        cr_expect_not_null(strstr(output, paths[i]), "%s", output);
        cr_expect_not_null(strstr(output, why[i]), "%s", output);
        cr_expect_eq(count_lines(output), 1, "%s", output);
        free(output);
    }
    // The library says the same: -1, one line, nothing collected.
    TraceValidation result;
    ErrorMessage err;
    cr_expect_eq(trace_validate(text, &result, &err), -1);
    cr_expect_eq(result.n_problems, 0);
    cr_expect_not_null(strstr(err.text, "not an HDF5 file"), "%s", err.text);
    free(text);
    free(missing);
    free_fixture(&f);
}

// The text of string attribute `name` of the root, malloc'd.
static char *get_string_attribute(hid_t file, const char *name) {
    hid_t attribute = H5Aopen(file, name, H5P_DEFAULT), type = H5Tcopy(H5T_C_S1);
    cr_assert_geq(attribute, 0, "%s", name);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    char *raw = NULL;
    cr_assert_geq(H5Aread(attribute, type, &raw), 0);
    char *copy = strdup(raw);
    H5free_memory(raw);
    H5Tclose(type);
    H5Aclose(attribute);
    return copy;
}

// A hostile header (n_steps near INT_MAX, a million layers in model_config, an empty producer) costs a
// few lines and milliseconds: missing groups are reported as runs, and nothing is allocated per
// declared step or layer.
Test(validate, a_hostile_header_costs_a_line_per_run_not_millions) {
    Fixture f = make_fixture();
    char *path = NULL;
    hid_t file = edit_copy(&f, "hostile.h5", &path);
    set_int_attribute(file, "/", "n_steps", 2147483647);
    set_string_attribute(file, "producer", "");
    char *config = get_string_attribute(file, "model_config");
    char *layers = strstr(config, "\"num_hidden_layers\": 2,");
    cr_assert_not_null(layers, "%s", config);
    char *edited = malloc(strlen(config) + 16);
    snprintf(edited, strlen(config) + 16, "%.*s\"num_hidden_layers\": 1000000,%s", (int)(layers - config), config,
             layers + strlen("\"num_hidden_layers\": 2,"));
    set_string_attribute(file, "model_config", edited);
    free(edited);
    free(config);
    H5Fclose(file);
    char *output = validate(path, 1);
    expect_problem(output, "/: attribute 'producer' is 0 characters long, expected 1 to 31");
    expect_problem(output, "/tokens: 5 tokens, 2147483647 steps after a 3-token prompt need 2147483649");
    expect_problem(output, "/: no groups 'step_0003' to 'step_2147483646' (n_steps is 2147483647: step_0000..step_2147483646)");
    expect_problem(output, "/step_0001: no groups 'layer_02' to 'layer_999999' (model_config has num_hidden_layers 1000000)");
    cr_expect_not_null(strstr(output, ": INVALID: 6 problems (format version 2, producer unreadable, 3 steps, "
                                      "1000000 layers"), "%s", output);
    free(output);
    free(path);
    free_fixture(&f);
}
