// compare/ on traces written here with the trace writer: identical traces pass, a perturbed tensor is
// the first failure at its exact step/layer/name, traces that cannot be compared are refused, tensors
// and steps the trace under test lacks fail as missing unless declared omitted or allowed missing,
// names only it has are listed; and `fusecheck compare` exits 0/1/2 accordingly.
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../compare/compare.h"
#include "../compare/report.h"
#include "../golden/trace.h"
#include "../model/config.h"
#include "../model/synth.h"
#include "test_support.h"

#define WIDTH 16   // every activation in these synthetic traces is [rows, 16]
#define VOCAB 32

typedef struct {
    const char *producer;
    const char *kv_dtype;
    const char *fingerprint;
    int config_layers;           // written into model_config (a different value makes another model)
    int n_steps;
    int n_layers;
    int prompt_length;
    int omit_mlp_intermediates;  // an engine that never writes gate, up, act
    const char *omitted;         // the declaration (trace_meta_set_omitted), NULL for none
    const char *extra_name;      // a layer tensor only this trace writes (in every layer), NULL for none
    int token_change_at;         // position whose token differs, -1 for none
    // one tensor changed by adding `delta` to every element
    int perturb_step, perturb_layer;
    const char *perturb_name;
    float delta;
    // a second change, later in forward order
    int perturb2_step, perturb2_layer;
    const char *perturb2_name;
    int wide_tensor_step;        // step whose layer 0 'q' is written [rows, WIDTH + 1]; -1 for none
    int nan_step;                // step whose embed gets a NaN; -1 for none
    // logits of the last step: 0 random, else the top-2 values at tokens 3 and 7
    int craft_logits;
    float logit3, logit7;
    int forced_token;            // >= 0: next_token of the last step written as this, whatever the logits say
} TraceSpec;

static TraceSpec spec_default(void) {
    TraceSpec spec = {.producer = "reference", .kv_dtype = "f32", .fingerprint = "0123456789abcdef",
                      .config_layers = 2, .n_steps = 3, .n_layers = 2, .prompt_length = 4, .token_change_at = -1,
                      .perturb_step = -1, .perturb2_step = -1, .wide_tensor_step = -1, .nan_step = -1,
                      .forced_token = -1};
    return spec;
}

static int matches(int step, int layer, const char *name, int want_step, int want_layer, const char *want_name) {
    return want_name && step == want_step && layer == want_layer && !strcmp(name, want_name);
}

// Deterministic values from (step, layer, name) only, so two traces of the same spec are identical.
static void fill_tensor(float *x, int n, int step, int layer, const char *name) {
    uint64_t seed = 1000003u * (uint64_t)(step + 1) + 7919u * (uint64_t)(layer + 2);
    for (const char *c = name; *c; c++) seed = seed * 31 + (uint64_t)*c;
    test_fill_random(x, (size_t)n, seed, 1.0f);
}

static void write_one(TraceWriter *writer, const TraceSpec *spec, int step, int layer, const char *name, int rows) {
    int cols = !strcmp(name, "logits") ? VOCAB : WIDTH;
    if (step == spec->wide_tensor_step && layer == 0 && !strcmp(name, "q")) cols = WIDTH + 1;
    int n = rows * cols;
    float *x = malloc(sizeof(float) * (size_t)n);
    cr_assert_not_null(x);
    fill_tensor(x, n, step, layer, name);
    if (matches(step, layer, name, spec->perturb_step, spec->perturb_layer, spec->perturb_name) ||
        matches(step, layer, name, spec->perturb2_step, spec->perturb2_layer, spec->perturb2_name))
        for (int i = 0; i < n; i++) x[i] += spec->delta;
    if (step == spec->nan_step && layer < 0 && !strcmp(name, "embed")) x[1] = NAN;
    ErrorMessage err;
    cr_assert_eq(trace_write_tensor(writer, layer, name, x, rows, cols, &err), 0, "%s", err.text);
    free(x);
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void write_trace(const char *path, const TraceSpec *spec) {
    ModelConfig config;
    ErrorMessage err;
    cr_assert_eq(synth_preset("tiny", &config, &err), 0, "%s", err.text);
    config.num_hidden_layers = spec->config_layers;
    char *config_json = config_to_json(&config);
    cr_assert_not_null(config_json);

    TraceMeta meta = {0};
    snprintf(meta.producer, sizeof meta.producer, "%s", spec->producer);
    snprintf(meta.kv_dtype, sizeof meta.kv_dtype, "%s", spec->kv_dtype);
    snprintf(meta.weights_dtype, sizeof meta.weights_dtype, "bf16");
    snprintf(meta.weights_fingerprint, sizeof meta.weights_fingerprint, "%s", spec->fingerprint);
    snprintf(meta.tool_version, sizeof meta.tool_version, "test");
    meta.model_config = config_json;
    meta.prompt_length = spec->prompt_length;
    char why[256];
    cr_assert_eq(trace_meta_set_omitted(&meta, spec->omitted, why, sizeof why), 0, "%s", why);
    TraceWriter *writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);

    int n_tokens = spec->prompt_length + spec->n_steps - 1;
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)n_tokens);
    cr_assert_not_null(tokens);
    for (int i = 0; i < n_tokens; i++) tokens[i] = (i * 7 + 3) % VOCAB;
    if (spec->token_change_at >= 0) tokens[spec->token_change_at] = (tokens[spec->token_change_at] + 1) % VOCAB;
    cr_assert_eq(trace_write_tokens(writer, tokens, n_tokens, &err), 0, "%s", err.text);
    free(tokens);

    for (int step = 0; step < spec->n_steps; step++) {
        int first = step == 0 ? 0 : spec->prompt_length + step - 1;
        int rows = step == 0 ? spec->prompt_length : 1;
        cr_assert_eq(trace_begin_step(writer, step, first, rows, &err), 0, "%s", err.text);
        write_one(writer, spec, step, -1, "embed", rows);
        for (int layer = 0; layer < spec->n_layers; layer++)
            for (int t = 0; t < TRACE_N_LAYER_TENSORS; t++) {
                const char *name = TRACE_LAYER_TENSORS[t];
                int intermediate = !strcmp(name, "gate") || !strcmp(name, "up") || !strcmp(name, "act");
                if (spec->omit_mlp_intermediates && intermediate) continue;
                write_one(writer, spec, step, layer, name, rows);
            }
        for (int layer = 0; layer < spec->n_layers && spec->extra_name; layer++)
            write_one(writer, spec, step, layer, spec->extra_name, rows);
        write_one(writer, spec, step, -1, "final_norm", 1);
        float logits[VOCAB];
        fill_tensor(logits, VOCAB, step, -1, "logits");
        if (matches(step, -1, "logits", spec->perturb_step, spec->perturb_layer, spec->perturb_name))
            for (int i = 0; i < VOCAB; i++) logits[i] += spec->delta;
        if (spec->craft_logits && step == spec->n_steps - 1) {
            for (int i = 0; i < VOCAB; i++) logits[i] *= 0.25f;  // all below 0.25
            logits[3] = spec->logit3;
            logits[7] = spec->logit7;
        }
        cr_assert_eq(trace_write_tensor(writer, -1, "logits", logits, 1, VOCAB, &err), 0, "%s", err.text);
        int32_t token = spec->forced_token >= 0 && step == spec->n_steps - 1 ? spec->forced_token : argmax(logits, VOCAB);
        cr_assert_eq(trace_write_next_token(writer, token, &err), 0, "%s", err.text);
    }
    cr_assert_eq(trace_writer_close(writer, &err), 0, "%s", err.text);
    free(config_json);
}

// Writes traces A and B from specs into a fresh directory; returns their paths.
static void write_pair(const TraceSpec *a, const TraceSpec *b, char **path_a, char **path_b) {
    char *dir = test_make_temp_dir("compare");
    *path_a = test_path_join(dir, "a.h5");
    *path_b = test_path_join(dir, "b.h5");
    write_trace(*path_a, a);
    write_trace(*path_b, b);
    free(dir);
}

static char *table_of(const CompareResult *result, int verbose) {
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_not_null(out);
    report_print_table(out, result, verbose);
    cr_assert_eq(fclose(out), 0);
    return text;
}

// steps x (embed + layers x 13 + final_norm + logits + next_token)
static size_t expected_results(int steps, int layers, int per_layer) { return (size_t)steps * (1 + layers * per_layer + 3); }

Test(compare, identical_traces_pass_with_zero_error) {
    TraceSpec spec = spec_default();
    char *a, *b;
    write_pair(&spec, &spec, &a, &b);
    Tolerances tol = tolerances_default();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 1);
    cr_assert_eq(result.n_failures, 0);
    cr_assert_eq(result.first_failure, -1);
    cr_assert_eq(result.n_steps, 3);
    cr_assert_eq(result.n_layers, 2);
    cr_assert_eq(result.n_results, expected_results(3, 2, TRACE_N_LAYER_TENSORS));
    cr_assert_eq(result.n_only_a + result.n_only_b, 0);
    cr_assert_eq(result.profiles_differ, 0);
    for (size_t i = 0; i < result.n_results; i++) {
        const TensorResult *t = &result.results[i];
        if (t->is_token) {
            cr_assert_eq(t->token_a, t->token_b);
            continue;
        }
        cr_assert_eq(t->metrics.rel_l2, 0.0, "%s", t->name);
        cr_assert_eq(t->metrics.max_abs, 0.0, "%s", t->name);
        cr_assert_float_eq(t->metrics.cosine, 1.0, 1e-12, "%s", t->name);
    }
    // Forward order: step 0 starts with embed, then layer 0's attn_norm.
    cr_assert_str_eq(result.results[0].name, "embed");
    cr_assert_eq(result.results[1].layer, 0);
    cr_assert_str_eq(result.results[1].name, "attn_norm");
    cr_assert_str_eq(result.results[1 + 2 * TRACE_N_LAYER_TENSORS].name, "final_norm");
    cr_assert_str_eq(result.results[3 + 2 * TRACE_N_LAYER_TENSORS].name, "next_token");

    char *table = table_of(&result, 0);
    cr_assert(strstr(table, "A (under test): ") != NULL, "%s", table);
    cr_assert(strstr(table, "B (reference) ") != NULL, "%s", table);
    cr_assert(strstr(table, "no failure") != NULL, "%s", table);
    cr_assert(strstr(table, "— PASS") != NULL, "%s", table);
    free(table);
    compare_result_free(&result);
}

Test(compare, perturbed_tensor_is_the_first_failure_at_its_exact_place) {
    TraceSpec reference = spec_default();
    TraceSpec under_test = spec_default();
    under_test.perturb_step = 1, under_test.perturb_layer = 1, under_test.perturb_name = "mlp_out";
    under_test.perturb2_step = 2, under_test.perturb2_layer = 0, under_test.perturb2_name = "attn";
    under_test.delta = 0.05f;
    char *a, *b;
    write_pair(&under_test, &reference, &a, &b);
    Tolerances tol = tolerances_default();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 0);
    cr_assert_eq(result.n_failures, 2);
    cr_assert_geq(result.first_failure, 0);
    const TensorResult *first = &result.results[result.first_failure];
    cr_assert_eq(first->step, 1);
    cr_assert_eq(first->layer, 1);
    cr_assert_str_eq(first->name, "mlp_out");
    cr_assert(!strncmp(first->why, "rel_l2 ", 7), "why: %s", first->why);
    // Every result before it passes (what makes it a bisection point).
    for (long i = 0; i < result.first_failure; i++) cr_assert(result.results[i].pass);
    // The metric is what the perturbation makes it: max_abs is the added delta (up to float rounding).
    cr_assert_float_eq(first->metrics.max_abs, 0.05, 1e-6);

    char *table = table_of(&result, 0);
    cr_assert(strstr(table, "first failure: step 1 layer 1 tensor mlp_out rel_l2 ") != NULL, "%s", table);
    cr_assert(strstr(table, "everything before it passes") != NULL, "%s", table);
    cr_assert(strstr(table, "2 failures") != NULL, "%s", table);
    cr_assert(strstr(table, "— FAIL") != NULL, "%s", table);
    free(table);
    compare_result_free(&result);
}

Test(compare, perturbation_within_tolerance_passes) {
    TraceSpec reference = spec_default();
    TraceSpec under_test = spec_default();
    under_test.perturb_step = 0, under_test.perturb_layer = 0, under_test.perturb_name = "q";
    under_test.delta = 1e-6f;  // rel_l2 ~ 1e-6 / 0.58 ~ 2e-6 << 1e-3
    char *a, *b;
    write_pair(&under_test, &reference, &a, &b);
    Tolerances tol = tolerances_default();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 1);
    cr_assert_geq(result.worst, 0);
    cr_assert_str_eq(result.results[result.worst].name, "q");
    cr_assert_gt(result.results[result.worst].metrics.rel_l2, 0.0);
    compare_result_free(&result);
}

static void expect_refused(const TraceSpec *a_spec, const TraceSpec *b_spec, const char *phrase) {
    char *a, *b;
    write_pair(a_spec, b_spec, &a, &b);
    Tolerances tol = tolerances_default();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), -1);
    cr_assert(strstr(err.text, phrase) != NULL, "message: %s", err.text);
    cr_assert(strstr(err.text, a) != NULL, "message names the files: %s", err.text);
    cr_assert_null(strchr(err.text, '\n'), "one line: %s", err.text);
    compare_result_free(&result);
}

Test(compare, different_fingerprints_are_refused) {
    TraceSpec a = spec_default(), b = spec_default();
    b.fingerprint = "fedcba9876543210";
    expect_refused(&a, &b, "weights fingerprints differ");
}

Test(compare, different_model_configs_are_refused) {
    TraceSpec a = spec_default(), b = spec_default();
    b.config_layers = 3;
    expect_refused(&a, &b, "model_config differs");
}

Test(compare, different_tokens_are_refused) {
    TraceSpec a = spec_default(), b = spec_default();
    b.token_change_at = 5;
    expect_refused(&a, &b, "tokens differ at position 5");
}

static CompareOptions all_steps(void) { return compare_options_default(); }

// Every tensor the reference has and the trace under test lacks, undeclared, fails: one result per
// tensor, step and layer, in forward order. The names are still listed as only in the reference.
Test(compare, tensors_the_trace_under_test_lacks_fail_as_missing) {
    TraceSpec fused = spec_default(), reference = spec_default();
    fused.producer = "fused";
    fused.omit_mlp_intermediates = 1;
    char *a, *b;
    write_pair(&fused, &reference, &a, &b);
    CompareOptions options = all_steps();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 0);
    cr_assert_eq(result.n_results, expected_results(3, 2, TRACE_N_LAYER_TENSORS));
    cr_assert_eq(result.n_missing, 3 * 2 * 3, "3 steps x 2 layers x gate, up, act");
    cr_assert_eq(result.n_failures, result.n_missing);
    cr_assert_eq(result.n_only_a, 0);
    cr_assert_eq(result.n_only_b, 3);
    cr_assert_str_eq(result.only_b[0], "gate");  // forward order
    cr_assert_str_eq(result.only_b[1], "up");
    cr_assert_str_eq(result.only_b[2], "act");
    const char *names[3] = {"gate", "up", "act"};
    size_t seen = 0;
    for (size_t i = 0; i < result.n_results; i++) {
        const TensorResult *t = &result.results[i];
        if (!t->missing) {
            cr_assert_eq(t->pass, 1, "step %d layer %d %s", t->step, t->layer, t->name);
            continue;
        }
        cr_assert_eq(t->pass, 0);
        cr_assert_str_eq(t->name, names[seen % 3]);
        cr_assert_eq(t->layer, (int)(seen / 3) % 2);
        cr_assert_eq(t->step, (int)(seen / 6));
        cr_assert_str_eq(t->why, "missing in the trace under test");
        seen++;
    }
    cr_assert_eq(seen, 18);
    const TensorResult *first = &result.results[result.first_failure];
    cr_assert(first->missing && first->step == 0 && first->layer == 0 && !strcmp(first->name, "gate"));
    cr_assert_neq(result.worst, -1);
    cr_assert_eq(result.results[result.worst].missing, 0, "a missing tensor has no metrics to rank");
    cr_assert_eq(result.n_notes, 1);
    cr_assert(strstr(result.notes[0], "missing evidence: 18 reference tensors are missing in the trace under test and fail "
                                      "(first: step 0 layer 0 tensor gate)") != NULL, "%s", result.notes[0]);
    compare_result_free(&result);
}

// Names only the trace under test has are listed, not failed: it may record more than the reference.
Test(compare, names_only_the_trace_under_test_has_are_listed_not_failed) {
    TraceSpec under_test = spec_default(), reference = spec_default();
    under_test.extra_name = "qkv_raw";
    char *a, *b;
    write_pair(&under_test, &reference, &a, &b);
    CompareOptions options = all_steps();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 1);
    cr_assert_eq(result.n_only_a, 1);
    cr_assert_str_eq(result.only_a[0], "qkv_raw");
    cr_assert_eq(result.n_only_b, 0);
    cr_assert_eq(result.n_missing, 0);
    cr_assert_eq(result.n_results, expected_results(3, 2, TRACE_N_LAYER_TENSORS));
    compare_result_free(&result);
}

// A producer that declares what it never materialises passes without it; the declaration is recorded
// and said. A declared name the trace does hold is compared like any other.
Test(compare, declared_omissions_pass_and_are_listed) {
    TraceSpec fused = spec_default(), reference = spec_default();
    fused.producer = "fused";
    fused.omit_mlp_intermediates = 1;
    fused.omitted = "gate,up,act,attn_norm";  // attn_norm declared but written anyway
    fused.perturb_step = 1, fused.perturb_layer = 1, fused.perturb_name = "attn_norm", fused.delta = 0.5f;
    char *a, *b;
    write_pair(&fused, &reference, &a, &b);
    CompareOptions options = all_steps();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.n_missing, 0);
    cr_assert_eq(result.n_declared_omitted, 4);
    cr_assert_str_eq(result.declared_omitted[0], "gate");
    cr_assert_str_eq(result.declared_omitted[3], "attn_norm");
    cr_assert_eq(result.n_results, expected_results(3, 2, TRACE_N_LAYER_TENSORS - 3));
    cr_assert_eq(result.n_failures, 1, "the declared but present attn_norm is compared");
    const TensorResult *first = &result.results[result.first_failure];
    cr_assert(first->step == 1 && first->layer == 1 && !strcmp(first->name, "attn_norm") && !first->missing);
    cr_assert_eq(result.n_notes, 1);
    cr_assert(strstr(result.notes[0], "declared omitted by the trace under test (it never materialises them): gate, "
                                      "up, act, attn_norm; 18 reference tensors it lacks are not compared") != NULL,
              "%s", result.notes[0]);
    compare_result_free(&result);
}

// --allow-missing excuses the names it gives, on purpose and said so; the checkpoints are refused.
Test(compare, allow_missing_narrows_on_purpose_and_refuses_checkpoints) {
    TraceSpec fused = spec_default(), reference = spec_default();
    fused.omit_mlp_intermediates = 1;
    char *a, *b;
    write_pair(&fused, &reference, &a, &b);
    const char *allowed[] = {"gate", "up", "act"};
    CompareOptions options = all_steps();
    options.allow_missing = allowed;
    options.n_allow_missing = 3;
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 1);
    cr_assert_eq(result.n_missing, 0);
    cr_assert_eq(result.n_allowed_missing, 3);
    cr_assert_str_eq(result.allowed_missing[1], "up");
    cr_assert_eq(result.n_notes, 1);
    cr_assert(strstr(result.notes[0], "narrowed on purpose: --allow-missing gate, up, act; 18 reference tensors the trace "
                                      "under test lacks are not compared") != NULL, "%s", result.notes[0]);
    compare_result_free(&result);

    options.n_allow_missing = 2;  // act is still missing
    cr_assert_eq(compare_traces(a, b, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 0);
    cr_assert_eq(result.n_missing, 6);
    cr_assert_str_eq(result.results[result.first_failure].name, "act");
    compare_result_free(&result);

    const char *checkpoints[] = {"resid_mlp", "k", "v", "logits", "next_token", "embed"};
    for (int i = 0; i < 6; i++) {
        options.allow_missing = &checkpoints[i];
        options.n_allow_missing = 1;
        cr_assert_eq(compare_traces(a, b, &options, &result, &err), -1, "%s allowed missing", checkpoints[i]);
        cr_assert(strstr(err.text, "is a contract checkpoint (resid_mlp, k, v, logits, next_token, embed)") != NULL, "%s",
                  err.text);
        compare_result_free(&result);
    }
    const char *unknown[] = {"gates"};
    options.allow_missing = unknown;
    cr_assert_eq(compare_traces(a, b, &options, &result, &err), -1);
    cr_assert(strstr(err.text, "'gates' is not a trace tensor name") != NULL, "%s", err.text);
    compare_result_free(&result);
}

// Steps only the reference holds are missing evidence: every tensor of them fails. --steps narrows on
// purpose to steps both hold.
Test(compare, a_trace_with_fewer_steps_fails_unless_steps_narrows_it) {
    TraceSpec a = spec_default(), b = spec_default();
    b.n_steps = 5;
    char *pa, *pb;
    write_pair(&a, &b, &pa, &pb);
    CompareOptions options = all_steps();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(pa, pb, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 0);
    cr_assert_eq(result.first_step, 0);
    cr_assert_eq(result.n_steps, 5);
    cr_assert_eq(result.n_results, expected_results(5, 2, TRACE_N_LAYER_TENSORS));
    cr_assert_eq(result.n_missing, expected_results(2, 2, TRACE_N_LAYER_TENSORS), "every tensor of steps 3 and 4");
    cr_assert_eq(result.n_failures, result.n_missing);
    const TensorResult *first = &result.results[result.first_failure];
    cr_assert(first->step == 3 && first->layer == COMPARE_STEP_LEVEL && !strcmp(first->name, "embed"));
    cr_assert_str_eq(first->why, "missing in the trace under test (it holds 3 steps, no step_0003)");
    const TensorResult *last = &result.results[result.n_results - 1];
    cr_assert(last->step == 4 && last->missing && !strcmp(last->name, "next_token"));
    cr_assert_eq(result.step_first_position[4], 4 + 3, "step 4 is at position P + 3");
    cr_assert_eq(result.n_only_b, 2);
    cr_assert_str_eq(result.only_b[0], "step_0003");
    cr_assert(strstr(result.notes[0], "step counts differ (under test 3, reference 5): steps 3..4 are missing in the trace "
                                      "under test and fail; --steps 0..2 compares the common steps on purpose") != NULL,
              "%s", result.notes[0]);
    compare_result_free(&result);

    options.first_step = 0, options.last_step = 2;
    cr_assert_eq(compare_traces(pa, pb, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 1);
    cr_assert_eq(result.n_steps, 3);
    cr_assert_eq(result.n_results, expected_results(3, 2, TRACE_N_LAYER_TENSORS));
    cr_assert_eq(result.n_notes, 1);
    cr_assert(strstr(result.notes[0], "narrowed on purpose: --steps 0..2 compares steps 0..2 only (under test holds steps "
                                      "0..2, reference 0..4)") != NULL, "%s", result.notes[0]);
    compare_result_free(&result);

    options.first_step = options.last_step = 1;  // --steps 1
    cr_assert_eq(compare_traces(pa, pb, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 1);
    cr_assert_eq(result.first_step, 1);
    cr_assert_eq(result.n_steps, 1);
    cr_assert_eq(result.step_first_position[0], 4, "step 1 is at position P");
    cr_assert_eq(result.n_results, expected_results(1, 2, TRACE_N_LAYER_TENSORS));
    for (size_t i = 0; i < result.n_results; i++) cr_assert_eq(result.results[i].step, 1);
    compare_result_free(&result);

    options.first_step = 2, options.last_step = 4;  // steps 3, 4 asked for and absent: missing
    cr_assert_eq(compare_traces(pa, pb, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 0);
    cr_assert_eq(result.n_missing, expected_results(2, 2, TRACE_N_LAYER_TENSORS));
    compare_result_free(&result);

    options.first_step = 0, options.last_step = 5;  // the reference must hold the range
    cr_assert_eq(compare_traces(pa, pb, &options, &result, &err), -1);
    cr_assert(strstr(err.text, "--steps 0..5 asks for step 5, but the reference holds steps 0..4") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, pb) != NULL, "%s", err.text);
    compare_result_free(&result);
    options.first_step = 3, options.last_step = 2;
    cr_assert_eq(compare_traces(pa, pb, &options, &result, &err), -1);
    cr_assert(strstr(err.text, "--steps 3..2") != NULL, "%s", err.text);
    compare_result_free(&result);
}

// Steps only the trace under test holds cannot be checked: each fails as one result.
Test(compare, a_trace_with_more_steps_fails_for_the_unchecked_ones) {
    TraceSpec a = spec_default(), b = spec_default();
    a.n_steps = 5;
    char *pa, *pb;
    write_pair(&a, &b, &pa, &pb);
    CompareOptions options = all_steps();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(pa, pb, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 0);
    cr_assert_eq(result.n_steps, 5);
    cr_assert_eq(result.n_missing, 0);
    cr_assert_eq(result.n_failures, 2);
    cr_assert_eq(result.n_results, expected_results(3, 2, TRACE_N_LAYER_TENSORS) + 2);
    const TensorResult *first = &result.results[result.first_failure];
    cr_assert(first->step == 3 && !strcmp(first->name, "step_0003") && !first->pass);
    cr_assert(strstr(first->why, "only in the trace under test: the reference holds 3 steps") != NULL, "%s", first->why);
    cr_assert_eq(result.results[result.worst].step, 0, "an unchecked step has no metrics to rank");
    cr_assert_eq(result.n_only_a, 2);
    cr_assert(strstr(result.notes[0], "step counts differ (under test 5, reference 3): steps 3..4 have no reference") !=
              NULL, "%s", result.notes[0]);
    compare_result_free(&result);
    options.first_step = 0, options.last_step = 2;
    cr_assert_eq(compare_traces(pa, pb, &options, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 1);
    compare_result_free(&result);
}

Test(compare, differing_precision_profiles_are_allowed_and_said) {
    TraceSpec a = spec_default(), b = spec_default();
    a.kv_dtype = "bf16";
    char *pa, *pb;
    write_pair(&a, &b, &pa, &pb);
    Tolerances tol = tolerances_default();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(pa, pb, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.profiles_differ, 1);
    cr_assert_eq(result.n_notes, 1);
    cr_assert(strstr(result.notes[0], "precision profiles differ (under test kv bf16") != NULL, "%s", result.notes[0]);
    compare_result_free(&result);
}

Test(compare, shape_mismatch_is_a_failure_not_a_crash) {
    TraceSpec a = spec_default(), b = spec_default();
    a.wide_tensor_step = 2;
    char *pa, *pb;
    write_pair(&a, &b, &pa, &pb);
    Tolerances tol = tolerances_default();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(pa, pb, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 0);
    cr_assert_eq(result.n_failures, 1);
    const TensorResult *t = &result.results[result.first_failure];
    cr_assert_eq(t->step, 2);
    cr_assert_eq(t->layer, 0);
    cr_assert_str_eq(t->name, "q");
    cr_assert_eq(t->shape_mismatch, 1);
    cr_assert_str_eq(t->why, "shape [1, 17] vs reference [1, 16]");
    cr_assert_eq(result.worst, result.first_failure);
    compare_result_free(&result);
}

Test(compare, nan_fails_and_ranks_worst) {
    TraceSpec a = spec_default(), b = spec_default();
    a.nan_step = 1;
    a.perturb_step = 0, a.perturb_layer = 1, a.perturb_name = "v", a.delta = 1e-5f;  // small, passing error
    char *pa, *pb;
    write_pair(&a, &b, &pa, &pb);
    Tolerances tol = tolerances_default();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(pa, pb, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), 0, "%s", err.text);
    cr_assert_eq(result.pass, 0);
    const TensorResult *t = &result.results[result.first_failure];
    cr_assert_eq(t->step, 1);
    cr_assert_str_eq(t->name, "embed");
    cr_assert_eq(t->metrics.nan_f, 1);
    cr_assert_eq(result.worst, result.first_failure);
    compare_result_free(&result);
}

static void compare_crafted_logits_within(float under_test_3, float under_test_7, Tolerances tol, int forced_token,
                                         CompareResult *result) {
    TraceSpec a = spec_default(), b = spec_default();
    b.craft_logits = 1, b.logit3 = 1.0f, b.logit7 = 0.6f;  // reference: token 3 by a margin of 0.4
    a.craft_logits = 1, a.logit3 = under_test_3, a.logit7 = under_test_7;
    a.forced_token = forced_token;
    char *pa, *pb;
    write_pair(&a, &b, &pa, &pb);
    ErrorMessage err;
    cr_assert_eq(compare_traces(pa, pb, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, result, &err), 0, "%s", err.text);
}

static void compare_crafted_logits(float under_test_3, float under_test_7, CompareResult *result) {
    Tolerances loose = {.max_rel_l2 = 10.0, .max_norm_max = 10.0};  // loose: isolate the top-1 rule
    compare_crafted_logits_within(under_test_3, under_test_7, loose, -1, result);
}

Test(compare, next_token_differing_in_a_near_tie_passes_with_a_note) {
    CompareResult result;
    compare_crafted_logits(0.5f, 0.75f, &result);  // max_abs 0.5 >= margin 0.4: near-tie
    cr_assert_eq(result.pass, 1);
    const TensorResult *token = &result.results[result.n_results - 1];
    cr_assert_str_eq(token->name, "next_token");
    cr_assert_eq(token->token_a, 7);
    cr_assert_eq(token->token_b, 3);
    cr_assert(strstr(token->why, "near-tie") != NULL, "%s", token->why);
    const TensorResult *logits = &result.results[result.n_results - 2];
    cr_assert_eq(logits->metrics.top1_mismatches, 1);
    cr_assert_eq(logits->metrics.top1_disagreements, 0);
    cr_assert_float_eq(logits->metrics.top1_margin, 0.4, 1e-6);
    compare_result_free(&result);
}

// A flip needs margin <= |e_3| + |e_7| <= 2*max_abs, so with max_abs from the same logits a flip is
// never a disagreement by itself: the logits' own tolerances judge it, and the token fails with them.
Test(compare, next_token_differing_with_logits_beyond_the_tolerance_fails) {
    CompareResult result;
    compare_crafted_logits_within(0.8f, 0.9f, tolerances_default(), -1, &result);  // logits off by 0.3
    cr_assert_eq(result.pass, 0);
    const TensorResult *first = &result.results[result.first_failure];
    cr_assert_str_eq(first->name, "logits");
    cr_assert_eq(first->step, 2);
    cr_assert(!strncmp(first->why, "rel_l2 ", 7) || !strncmp(first->why, "norm_max ", 9), "%s", first->why);
    const TensorResult *token = &result.results[result.n_results - 1];
    cr_assert_str_eq(token->name, "next_token");
    cr_assert_eq(token->pass, 0);
    cr_assert(strstr(token->why, "token 7 vs reference 3 (the logits fail too)") != NULL, "%s", token->why);
    compare_result_free(&result);
}

// An argmax kernel that returns a token other than the argmax of the logits it wrote fails, even when
// logits and tokens would otherwise pass.
Test(compare, next_token_that_is_not_the_argmax_of_its_own_logits_fails) {
    CompareResult result;
    compare_crafted_logits_within(1.0f, 0.6f, tolerances_default(), 7, &result);  // logits equal, token 7
    cr_assert_eq(result.pass, 0);
    const TensorResult *token = &result.results[result.first_failure];
    cr_assert_str_eq(token->name, "next_token");
    cr_assert_eq(token->step, 2);
    cr_assert(strstr(token->why, "token 7 is not the argmax of its own logits") != NULL, "%s", token->why);
    compare_result_free(&result);
}

Test(compare, report_directory_gets_json_markdown_and_svg) {
    TraceSpec reference = spec_default(), under_test = spec_default();
    under_test.perturb_step = 1, under_test.perturb_layer = 0, under_test.perturb_name = "resid_mlp";
    under_test.delta = 0.01f;
    char *a, *b;
    write_pair(&under_test, &reference, &a, &b);
    Tolerances tol = tolerances_default();
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(a, b, &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), 0, "%s", err.text);
    char *base = test_make_temp_dir("report");
    char *dir = test_path_join(base, "nested/report");  // created, parents included
    cr_assert_eq(report_write(&result, dir, &err), 0, "%s", err.text);

    char *json_path = test_path_join(dir, "accuracy.json");
    char *json_text = test_read_file(json_path, NULL);
    cJSON *json = cJSON_Parse(json_text);
    cr_assert_not_null(json, "accuracy.json does not parse");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(json, "pass")));
    cJSON *first = cJSON_GetObjectItem(json, "first_failure");
    cr_assert_eq(cJSON_GetObjectItem(first, "step")->valueint, 1);
    cr_assert_eq(cJSON_GetObjectItem(first, "layer")->valueint, 0);
    cr_assert_str_eq(cJSON_GetObjectItem(first, "tensor")->valuestring, "resid_mlp");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "tensors")), (int)result.n_results);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "by_layer")), 2 + 2);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "by_step")), 3);
    cJSON *files = cJSON_GetObjectItem(json, "files");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(files, "under_test"), "path")->valuestring, a);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(files, "reference"), "path")->valuestring, b);
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "tolerances"), "max_rel_l2")->valuedouble, 1e-3);
    cJSON_Delete(json);

    char *md = test_read_file(test_path_join(dir, "accuracy.md"), NULL);
    cr_assert(strstr(md, "# Accuracy: FAIL") != NULL, "%s", md);
    cr_assert(strstr(md, "first failure: step 1 layer 0 tensor resid_mlp") != NULL, "%s", md);
    cr_assert(strstr(md, "| layer | tensor |") != NULL, "%s", md);
    char *svg = test_read_file(test_path_join(dir, "error_by_layer.svg"), NULL);
    cr_assert(!strncmp(svg, "<svg ", 5));
    cr_assert(strstr(svg, "stroke-dasharray") != NULL, "the tolerance line is dashed");
    cr_assert(strstr(svg, "tolerance 1e-03") != NULL);
    cr_assert(strstr(svg, "</svg>") != NULL);
    // No temporary file is left behind.
    char *leftover = test_path_join(dir, "accuracy.json.tmp");
    struct stat info;
    cr_assert_neq(stat(leftover, &info), 0);
    free(json_text);
    free(md);
    free(svg);
    compare_result_free(&result);
}

// ----- the CLI: exit 0 pass, 1 tolerance failure, 2 bad input or usage -------------------------------

static void cli_pair(int perturbed, char **a, char **b) {
    TraceSpec reference = spec_default(), under_test = spec_default();
    if (perturbed) {
        under_test.perturb_step = 2, under_test.perturb_layer = 1, under_test.perturb_name = "attn_out";
        under_test.delta = 0.02f;
    }
    write_pair(&under_test, &reference, a, b);
}

Test(compare_cli, identical_exits_0) {
    char *a, *b, *output, args[4096];
    cli_pair(0, &a, &b);
    snprintf(args, sizeof args, "compare '%s' '%s'", a, b);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_assert(strstr(output, "summary: ") != NULL, "%s", output);
    cr_assert(strstr(output, "worst tensor per layer") != NULL, "%s", output);
    cr_assert(strstr(output, "worst tensor per step") != NULL, "%s", output);
}

Test(compare_cli, tolerance_failure_exits_1_and_names_the_first_failure) {
    char *a, *b, *output, args[4096];
    cli_pair(1, &a, &b);
    snprintf(args, sizeof args, "compare '%s' '%s' --verbose", a, b);
    cr_assert_eq(test_run_cli(args, &output), 1, "%s", output);
    cr_assert(strstr(output, "first failure: step 2 layer 1 tensor attn_out") != NULL, "%s", output);
    cr_assert(strstr(output, "every tensor") != NULL, "--verbose lists every tensor: %s", output);
    // The same files pass under a looser bound given on the command line.
    snprintf(args, sizeof args, "compare '%s' '%s' --max-rel-l2 1 --max-norm-max 1", a, b);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    // allclose, when asked for, fails them again.
    snprintf(args, sizeof args, "compare '%s' '%s' --max-rel-l2 1 --max-norm-max 1 --atol 1e-3 --rtol 1e-3", a, b);
    cr_assert_eq(test_run_cli(args, &output), 1, "%s", output);
    cr_assert(strstr(output, "allclose") != NULL, "%s", output);
}

Test(compare_cli, json_output_parses) {
    char *a, *b, *output, args[4096];
    cli_pair(1, &a, &b);
    snprintf(args, sizeof args, "compare '%s' '%s' --json", a, b);
    cr_assert_eq(test_run_cli(args, &output), 1, "%s", output);
    cJSON *json = cJSON_Parse(output);
    cr_assert_not_null(json, "--json output does not parse: %s", output);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(json, "pass")));
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "first_failure"), "tensor")->valuestring, "attn_out");
    cJSON_Delete(json);
}

Test(compare_cli, report_flag_writes_the_files) {
    char *a, *b, *output, args[4096];
    cli_pair(0, &a, &b);
    char *base = test_make_temp_dir("cli-report");
    char *dir = test_path_join(base, "out");
    snprintf(args, sizeof args, "compare '%s' '%s' --report '%s'", a, b, dir);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    const char *names[] = {"accuracy.json", "accuracy.md", "error_by_layer.svg"};
    for (int i = 0; i < 3; i++) {
        struct stat info;
        char *path = test_path_join(dir, names[i]);
        cr_assert_eq(stat(path, &info), 0, "%s missing", path);
        cr_assert_gt(info.st_size, 0);
    }
}

static int line_count(const char *text) {
    int lines = 0;
    for (; *text; text++) lines += *text == '\n';
    return lines;
}

Test(compare_cli, bad_input_and_usage_exit_2_with_one_line) {
    char *a, *b, *output, args[4096];
    TraceSpec spec = spec_default(), other = spec_default();
    other.fingerprint = "fedcba9876543210";
    write_pair(&spec, &other, &a, &b);

    snprintf(args, sizeof args, "compare '%s' '%s'", a, b);
    cr_assert_eq(test_run_cli(args, &output), 2, "%s", output);
    cr_assert(strstr(output, "fingerprints differ") != NULL, "%s", output);
    cr_assert_eq(line_count(output), 1, "%s", output);

    snprintf(args, sizeof args, "compare '%s' /nonexistent/trace.h5", a);
    cr_assert_eq(test_run_cli(args, &output), 2, "%s", output);
    cr_assert(strstr(output, "/nonexistent/trace.h5") != NULL, "%s", output);
    cr_assert_eq(line_count(output), 1, "%s", output);

    char *not_hdf5 = test_path_join(test_make_temp_dir("not-hdf5"), "x.h5");
    test_write_file(not_hdf5, "hello", 5);
    snprintf(args, sizeof args, "compare '%s' '%s'", not_hdf5, a);
    cr_assert_eq(test_run_cli(args, &output), 2, "%s", output);
    cr_assert(strstr(output, not_hdf5) != NULL, "%s", output);

    snprintf(args, sizeof args, "compare '%s'", a);
    cr_assert_eq(test_run_cli(args, &output), 2, "%s", output);
    snprintf(args, sizeof args, "compare '%s' '%s' --max-rel-l2 abc", a, a);
    cr_assert_eq(test_run_cli(args, &output), 2, "%s", output);
    cr_assert(strstr(output, "--max-rel-l2") != NULL, "%s", output);
    snprintf(args, sizeof args, "compare '%s' '%s' --max-rel-l2", a, a);
    cr_assert_eq(test_run_cli(args, &output), 2, "%s", output);
    snprintf(args, sizeof args, "compare '%s' '%s' --frobnicate", a, a);
    cr_assert_eq(test_run_cli(args, &output), 2, "%s", output);
    cr_assert(strstr(output, "--frobnicate") != NULL, "%s", output);
    cr_assert_eq(test_run_cli("compare --help", &output), 0, "%s", output);
}
