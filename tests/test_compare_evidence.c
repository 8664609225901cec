// Missing evidence is a failure, never a pass (issue 14), through `fusecheck compare` on real traces:
// a reference golden of 17 steps, and copies of it that lack a tensor, every layer group or steps,
// as a hostile or broken engine would write them. Each fails (exit 1) naming every missing tensor by
// step and layer; a producer's declared omissions and --allow-missing excuse names on purpose and are
// said; neither may excuse a contract checkpoint (exit 2); --steps narrows the steps on purpose.
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../golden/trace.h"
#include "test_support.h"

#define N_STEPS 17  // prefill + 16 decode steps
#define N_LAYERS 2  // the tiny preset
#define STEP_TENSORS 4  // embed, final_norm, logits, next_token

typedef struct {
    char *dir, *model, *reference;
} Fixture;

static char *make_golden(const Fixture *f, const char *name, int decode_steps) {
    char *path = test_path_join(f->dir, name);
    char args[4096], *output;
    snprintf(args, sizeof args, "golden --model '%s' --prompt-tokens 3,1,4 --steps %d --out '%s'", f->model,
             decode_steps, path);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, 0, "%s", output);
    free(output);
    return path;
}

static Fixture make_fixture(void) {
    Fixture f;
    f.dir = test_make_temp_dir("evidence");
    f.model = test_synth_checkpoint("tiny", 7);
    f.reference = make_golden(&f, "reference.h5", N_STEPS - 1);
    return f;
}

static void free_fixture(Fixture *f) {
    free(f->reference);
    free(f->model);
    free(f->dir);
}

// A copy of the reference named `name` in the fixture's directory.
static char *copy_reference(const Fixture *f, const char *name) {
    char *path = test_path_join(f->dir, name);
    size_t size = 0;
    char *bytes = test_read_file(f->reference, &size);
    test_write_file(path, bytes, size);
    free(bytes);
    return path;
}

// Deletes /step_SSSS/<name> (layer < 0) or /step_SSSS/layer_LL/<name> in every step and layer; with
// name NULL, the layer groups themselves.
static void delete_everywhere(const char *path, int layer_level, const char *name) {
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(file, 0, "%s", path);
    for (int step = 0; step < N_STEPS; step++) {
        for (int layer = 0; layer < (layer_level ? N_LAYERS : 1); layer++) {
            char link[128];
            if (!layer_level) snprintf(link, sizeof link, "/step_%04d/%s", step, name);
            else if (name) snprintf(link, sizeof link, "/step_%04d/layer_%02d/%s", step, layer, name);
            else snprintf(link, sizeof link, "/step_%04d/layer_%02d", step, layer);
            cr_assert_geq(H5Ldelete(file, link, H5P_DEFAULT), 0, "%s", link);
        }
    }
    cr_assert_geq(H5Fclose(file), 0);
}

// Rewrites the root attribute `omitted` (the producer's declaration) as a variable-length string.
static void declare_omitted(const char *path, const char *value) {
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(file, 0);
    cr_assert_geq(H5Adelete(file, "omitted"), 0);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = H5Acreate2(file, "omitted", type, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attribute, 0);
    cr_assert_geq(H5Awrite(attribute, type, &value), 0);
    H5Aclose(attribute);
    H5Sclose(space);
    H5Tclose(type);
    cr_assert_geq(H5Fclose(file), 0);
}

static int count_lines(const char *text) {
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    return lines;
}

// Runs `compare A reference [extra] --json`, expects `status`, returns the parsed report.
static cJSON *compare_json(const char *a, const char *b, const char *extra, int status) {
    char args[4096], *output;
    snprintf(args, sizeof args, "compare '%s' '%s' %s --json", a, b, extra);
    int got = test_run_cli(args, &output);
    cr_assert_eq(got, status, "%s: exit %d, expected %d:\n%s", args, got, status, output);
    cJSON *json = cJSON_Parse(output);
    cr_assert_not_null(json, "%s: --json output does not parse:\n%s", args, output);
    free(output);
    return json;
}

// Runs `compare A B [extra]` (the table), expects `status`, returns the output.
static char *compare_table(const char *a, const char *b, const char *extra, int status) {
    char args[4096], *output;
    snprintf(args, sizeof args, "compare '%s' '%s' %s", a, b, extra);
    int got = test_run_cli(args, &output);
    cr_assert_eq(got, status, "%s: exit %d, expected %d:\n%s", args, got, status, output);
    return output;
}

static void expect_usage_error(const char *a, const char *b, const char *extra, const char *needle) {
    char *output = compare_table(a, b, extra, 2);
    cr_expect_not_null(strstr(output, needle), "compare %s: output lacks '%s':\n%s", extra, needle, output);
    cr_expect_eq(strncmp(output, "fusecheck compare: ", 19), 0, "%s", output);
    cr_expect_eq(count_lines(output), 1, "compare %s: expected one line:\n%s", extra, output);
    free(output);
}

// Every failing tensor of the report is missing, named one of `names` (n_names of them), and each
// (step in [first_step, last_step], layer in 0..N_LAYERS-1 or step level, name) appears exactly once.
static void expect_missing_exactly(cJSON *json, const char *const *names, int n_names, int layer_level,
                                   int first_step, int last_step) {
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(json, "pass")));
    int seen[N_STEPS][N_LAYERS + 1][TRACE_N_LAYER_TENSORS + STEP_TENSORS];
    memset(seen, 0, sizeof seen);
    int n_failing = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(json, "tensors")) {
        if (cJSON_IsTrue(cJSON_GetObjectItem(item, "pass"))) continue;
        n_failing++;
        const char *name = cJSON_GetObjectItem(item, "tensor")->valuestring;
        int step = cJSON_GetObjectItem(item, "step")->valueint;
        cJSON *layer_item = cJSON_GetObjectItem(item, "layer");
        int layer = cJSON_IsNull(layer_item) ? N_LAYERS : layer_item->valueint;
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(item, "missing")), "step %d layer %d %s fails but is not missing",
                  step, layer, name);
        int index = -1;
        for (int i = 0; i < n_names; i++)
            if (!strcmp(names[i], name)) index = i;
        cr_assert_geq(index, 0, "unexpected missing tensor step %d layer %d %s", step, layer, name);
        cr_assert(step >= first_step && step <= last_step, "missing tensor %s at step %d", name, step);
        cr_assert_eq(layer == N_LAYERS, !layer_level, "%s at layer %d", name, layer);
        cr_assert_eq(seen[step][layer][index]++, 0, "step %d layer %d %s reported twice", step, layer, name);
    }
    int expected = (last_step - first_step + 1) * n_names * (layer_level ? N_LAYERS : 1);
    cr_assert_eq(n_failing, expected, "%d failing tensors, expected %d", n_failing, expected);
    cJSON *compared = cJSON_GetObjectItem(json, "compared");
    cr_assert_eq(cJSON_GetObjectItem(compared, "missing")->valueint, expected);
    cr_assert_eq(cJSON_GetObjectItem(compared, "failures")->valueint, expected);
}

// A trace lacking one tensor, in every step (and layer), undeclared: every one of them fails, by name.
Test(compare_evidence, a_trace_lacking_attn_resid_mlp_embed_or_logits_fails_naming_each) {
    Fixture f = make_fixture();
    const struct {
        const char *name;
        int layer_level;
        const char *first;
    } cases[] = {
        {"attn", 1, "step 0 layer 0 tensor attn"},
        {"resid_mlp", 1, "step 0 layer 0 tensor resid_mlp"},
        {"embed", 0, "step 0 tensor embed"},
        {"logits", 0, "step 0 tensor logits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char file[64];
        snprintf(file, sizeof file, "no-%s.h5", cases[i].name);
        char *lacking = copy_reference(&f, file);
        delete_everywhere(lacking, cases[i].layer_level, cases[i].name);
        cJSON *json = compare_json(lacking, f.reference, "", 1);
        expect_missing_exactly(json, &cases[i].name, 1, cases[i].layer_level, 0, N_STEPS - 1);
        cJSON *first = cJSON_GetObjectItem(json, "first_failure");
        cr_expect_str_eq(cJSON_GetObjectItem(first, "tensor")->valuestring, cases[i].name);
        cr_expect_eq(cJSON_GetObjectItem(first, "step")->valueint, 0);
        cJSON_Delete(json);

        char *table = compare_table(lacking, f.reference, "", 1);
        char note[256];
        snprintf(note, sizeof note, "missing evidence: %d reference tensors are missing in the trace under test and fail "
                 "(first: %s)", N_STEPS * (cases[i].layer_level ? N_LAYERS : 1), cases[i].first);
        cr_expect_not_null(strstr(table, note), "lacks '%s':\n%s", note, table);
        cr_expect_not_null(strstr(table, "FAIL"), "%s", table);
        free(table);
        free(lacking);
    }
    free_fixture(&f);
}

// Every layer group gone: each tensor the reference has in each of them fails, step by step, layer by layer.
Test(compare_evidence, a_trace_lacking_every_layer_group_fails_for_every_layer_tensor) {
    Fixture f = make_fixture();
    char *lacking = copy_reference(&f, "no-layers.h5");
    delete_everywhere(lacking, 1, NULL);
    cJSON *json = compare_json(lacking, f.reference, "", 1);
    expect_missing_exactly(json, TRACE_LAYER_TENSORS, TRACE_N_LAYER_TENSORS, 1, 0, N_STEPS - 1);
    cJSON *first = cJSON_GetObjectItem(json, "first_failure");
    cr_expect_str_eq(cJSON_GetObjectItem(first, "tensor")->valuestring, "attn_norm");
    cr_expect_str_eq(cJSON_GetObjectItem(first, "why")->valuestring, "missing in the trace under test (no group layer_00 in the step)");
    cJSON *only_reference = cJSON_GetObjectItem(json, "only_in_reference");
    cr_expect_eq(cJSON_GetArraySize(only_reference), N_LAYERS);
    cr_expect_str_eq(cJSON_GetArrayItem(only_reference, 1)->valuestring, "layer_01");
    cJSON_Delete(json);
    free(lacking);
    free_fixture(&f);
}

// Every tensor of the steps only the reference holds, as missing, each at its step and layer.
static void expect_missing_steps(cJSON *json, int first_missing) {
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(json, "pass")));
    int n_missing = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(json, "tensors")) {
        int step = cJSON_GetObjectItem(item, "step")->valueint;
        int missing = cJSON_IsTrue(cJSON_GetObjectItem(item, "missing"));
        cr_assert_eq(missing, step >= first_missing, "step %d %s", step, cJSON_GetObjectItem(item, "tensor")->valuestring);
        cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(item, "pass")), !missing);
        n_missing += missing;
    }
    int per_step = 1 + N_LAYERS * TRACE_N_LAYER_TENSORS + 3;
    cr_assert_eq(n_missing, (N_STEPS - first_missing) * per_step);
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "compared"), "steps")->valueint, N_STEPS);
}

Test(compare_evidence, two_steps_against_seventeen_fail_unless_steps_narrows_on_purpose) {
    Fixture f = make_fixture();
    char *short_trace = make_golden(&f, "two-steps.h5", 1);
    cJSON *json = compare_json(short_trace, f.reference, "", 1);
    expect_missing_steps(json, 2);
    cJSON *first = cJSON_GetObjectItem(json, "first_failure");
    cr_expect_eq(cJSON_GetObjectItem(first, "step")->valueint, 2);
    cr_expect_str_eq(cJSON_GetObjectItem(first, "tensor")->valuestring, "embed");
    cJSON_Delete(json);
    char *table = compare_table(short_trace, f.reference, "", 1);
    cr_expect_not_null(strstr(table, "step counts differ (under test 2, reference 17): steps 2..16 are missing in the trace "
                                     "under test and fail; --steps 0..1 compares the common steps on purpose"), "%s", table);
    free(table);

    // Narrowed on purpose: passes, and says so.
    table = compare_table(short_trace, f.reference, "--steps 0..1", 0);
    cr_expect_not_null(strstr(table, "narrowed on purpose: --steps 0..1 compares steps 0..1 only (under test holds steps "
                                     "0..1, reference 0..16)"), "%s", table);
    free(table);
    json = compare_json(short_trace, f.reference, "--steps 1", 0);
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(json, "tensors")) cr_expect_eq(cJSON_GetObjectItem(item, "step")->valueint, 1);
    cr_expect_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "compared"), "first_step")->valueint, 1);
    cJSON_Delete(json);
    // Asking for steps the trace under test lacks is missing evidence again; past the reference, bad input.
    json = compare_json(short_trace, f.reference, "--steps 1..3", 1);
    cr_expect_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "compared"), "missing")->valueint,
                 2 * (1 + N_LAYERS * TRACE_N_LAYER_TENSORS + 3));
    cJSON_Delete(json);
    expect_usage_error(short_trace, f.reference, "--steps 0..17", "--steps 0..17 asks for step 17, but the reference holds steps 0..16");

    // The other way round: steps only the trace under test holds are unchecked, and fail.
    table = compare_table(f.reference, short_trace, "", 1);
    cr_expect_not_null(strstr(table, "steps 2..16 have no reference to check them and fail"), "%s", table);
    free(table);
    table = compare_table(f.reference, short_trace, "--steps 0..1", 0);
    free(table);
    free(short_trace);
    free_fixture(&f);
}

Test(compare_evidence, a_trace_with_no_decode_step_fails) {
    Fixture f = make_fixture();
    char *prefill_only = make_golden(&f, "prefill-only.h5", 0);
    cJSON *json = compare_json(prefill_only, f.reference, "", 1);
    expect_missing_steps(json, 1);
    cJSON_Delete(json);
    free(prefill_only);
    free_fixture(&f);
}

// A producer that never materialises gate, up and act and says so passes without them; the report
// lists the declaration. The same file without the declaration fails for each of them.
Test(compare_evidence, declared_omissions_pass_and_are_listed_undeclared_ones_fail) {
    Fixture f = make_fixture();
    char *fused_like = copy_reference(&f, "declared.h5");
    const char *intermediates[] = {"gate", "up", "act"};
    for (int i = 0; i < 3; i++) delete_everywhere(fused_like, 1, intermediates[i]);
    declare_omitted(fused_like, "gate,up,act");
    char *table = compare_table(fused_like, f.reference, "", 0);
    const char *note = "declared omitted by the trace under test (it never materialises them): gate, up, act; 102 reference "
                       "tensors it lacks are not compared";
    cr_expect_not_null(strstr(table, note), "lacks '%s':\n%s", note, table);
    free(table);
    cJSON *json = compare_json(fused_like, f.reference, "", 0);
    cr_expect_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "compared"), "missing")->valueint, 0);
    cJSON_Delete(json);

    declare_omitted(fused_like, "gate,up");  // act no longer declared
    json = compare_json(fused_like, f.reference, "", 1);
    expect_missing_exactly(json, &intermediates[2], 1, 1, 0, N_STEPS - 1);
    cJSON_Delete(json);
    declare_omitted(fused_like, "");
    json = compare_json(fused_like, f.reference, "", 1);
    expect_missing_exactly(json, intermediates, 3, 1, 0, N_STEPS - 1);
    cJSON_Delete(json);
    free(fused_like);
    free_fixture(&f);
}

// A trace that declares a contract checkpoint omitted is bad input, in either position.
Test(compare_evidence, declaring_a_checkpoint_omitted_is_bad_input) {
    Fixture f = make_fixture();
    char *bad = copy_reference(&f, "declares-resid_mlp.h5");
    delete_everywhere(bad, 1, "resid_mlp");
    declare_omitted(bad, "gate,resid_mlp");
    char needle[1200];
    snprintf(needle, sizeof needle, "%s: attribute 'omitted': 'resid_mlp' is a contract checkpoint (resid_mlp, k, v, "
             "logits, next_token, embed): it may never be omitted or allowed missing", bad);
    expect_usage_error(bad, f.reference, "", needle);
    expect_usage_error(f.reference, bad, "", needle);
    free(bad);
    free_fixture(&f);
}

Test(compare_evidence, allow_missing_excuses_on_purpose_and_refuses_checkpoints) {
    Fixture f = make_fixture();
    char *lacking = copy_reference(&f, "no-attn.h5");
    delete_everywhere(lacking, 1, "attn");
    char *table = compare_table(lacking, f.reference, "--allow-missing attn", 0);
    cr_expect_not_null(strstr(table, "narrowed on purpose: --allow-missing attn; 34 reference tensors the trace under test "
                                     "lacks are not compared"), "%s", table);
    free(table);
    cJSON *json = compare_json(lacking, f.reference, "--allow-missing gate --allow-missing ' up,attn '", 0);
    cJSON_Delete(json);
    json = compare_json(lacking, f.reference, "--allow-missing gate,up", 1);  // attn is still missing
    expect_missing_exactly(json, (const char *[]){"attn"}, 1, 1, 0, N_STEPS - 1);
    cJSON_Delete(json);

    const char *checkpoints[] = {"resid_mlp", "k", "v", "logits", "next_token", "embed"};
    for (int i = 0; i < 6; i++) {
        char extra[64], needle[256];
        snprintf(extra, sizeof extra, "--allow-missing attn,%s", checkpoints[i]);
        snprintf(needle, sizeof needle, "fusecheck compare: --allow-missing: '%s' is a contract checkpoint (resid_mlp, k, "
                 "v, logits, next_token, embed)", checkpoints[i]);
        expect_usage_error(lacking, f.reference, extra, needle);
    }
    expect_usage_error(lacking, f.reference, "--allow-missing attention", "'attention' is not a trace tensor name");
    expect_usage_error(lacking, f.reference, "--allow-missing attn,,up", "an empty name");
    expect_usage_error(lacking, f.reference, "--allow-missing ''", "--allow-missing needs a comma-separated list");
    free(lacking);
    free_fixture(&f);
}

Test(compare_evidence, bad_step_ranges_are_usage_errors) {
    Fixture f = make_fixture();
    const char *bad[] = {"--steps 5..2", "--steps x", "--steps 1..", "--steps ..3", "--steps -1", "--steps 1..2..3",
                         "--steps ''", "--steps"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_usage_error(f.reference, f.reference, bad[i], "fusecheck compare: --steps");
    char *table = compare_table(f.reference, f.reference, "--steps 16", 0);
    cr_expect_not_null(strstr(table, "compares steps 16..16 only"), "%s", table);
    free(table);
    free_fixture(&f);
}
