// compare/report on CompareResults built by hand, so every rendering rule is tested without traces:
// missing tensors, declared and allowed omissions, the numpy-style failure detail, plurals, the SVG.
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compare/report.h"
#include "test_support.h"

// One step, one layer, one token: every count is 1, so a missing plural shows. Results in forward order:
//   0 embed (passes)   1 layer 0 q (missing, undeclared)   2 layer 0 k [2 x 4] (a spike at row 1 col 2)
//   3 final_norm       4 logits                             5 next_token
typedef struct {
    CompareResult result;
    TensorResult results[6];
    int first_position[1], n_tokens[1];
    char *declared[3], *allowed[1];
} Fixture;

static void pass_metrics(TensorResult *t, int rows, int cols) {
    float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    t->rows_a = t->rows_b = rows;
    t->cols_a = t->cols_b = cols;
    metrics_compute(values, values, (size_t)rows * cols, NULL, &t->metrics);
    t->pass = 1;
}

// q_missing 0 makes q a passing tensor, so k is the first failure.
static void fixture_init(Fixture *fx, int q_missing) {
    memset(fx, 0, sizeof *fx);
    CompareResult *r = &fx->result;
    TraceSummary *sides[2] = {&r->a, &r->b};
    for (int i = 0; i < 2; i++) {
        snprintf(sides[i]->path, sizeof sides[i]->path, "%s", i ? "reference.h5" : "under_test.h5");
        snprintf(sides[i]->meta.producer, sizeof sides[i]->meta.producer, "%s", i ? "reference" : "fused");
        snprintf(sides[i]->meta.kv_dtype, sizeof sides[i]->meta.kv_dtype, "f32");
        snprintf(sides[i]->meta.weights_dtype, sizeof sides[i]->meta.weights_dtype, "bf16");
        snprintf(sides[i]->meta.weights_fingerprint, sizeof sides[i]->meta.weights_fingerprint, "0123456789abcdef");
        sides[i]->meta.model_config = "{}";
        sides[i]->n_steps = 1;
        sides[i]->n_tokens = 1;
        sides[i]->n_layers = 1;
    }
    r->tol = tolerances_default();
    r->n_steps = 1;
    r->n_layers = 1;
    r->n_tokens = 1;
    fx->first_position[0] = 0;
    fx->n_tokens[0] = 1;
    r->step_first_position = fx->first_position;
    r->step_n_tokens = fx->n_tokens;

    const char *names[6] = {"embed", "q", "k", "final_norm", "logits", "next_token"};
    for (int i = 0; i < 6; i++) {
        TensorResult *t = &fx->results[i];
        t->step = 0;
        t->layer = (i == 1 || i == 2) ? 0 : COMPARE_STEP_LEVEL;
        snprintf(t->name, sizeof t->name, "%s", names[i]);
        pass_metrics(t, 1, 4);
    }
    TensorResult *q = &fx->results[1];
    if (q_missing) {
        memset(&q->metrics, 0, sizeof q->metrics);  // what compare leaves: no metrics at all
        q->missing = 1;
        q->pass = 0;
        q->rows_a = q->cols_a = 0;
        q->rows_b = 1, q->cols_b = 4;
    }
    // k: ones, with 1.5 at row 1, col 2 (index 6): rel_l2 0.5 / sqrt(8), norm_max 0.5, one element beyond.
    TensorResult *k = &fx->results[2];
    float reference[8], under_test[8];
    for (int i = 0; i < 8; i++) reference[i] = under_test[i] = 1.0f;
    under_test[6] = 1.5f;
    k->rows_a = k->rows_b = 2;
    k->cols_a = k->cols_b = 4;
    metrics_compute(under_test, reference, 8, &r->tol, &k->metrics);
    k->pass = metrics_pass(&k->metrics, &r->tol, k->why, sizeof k->why);
    cr_assert_eq(k->pass, 0);
    TensorResult *token = &fx->results[5];
    token->is_token = 1;
    token->rows_a = token->cols_a = token->rows_b = token->cols_b = 1;
    token->token_a = token->token_b = 7;

    r->results = fx->results;
    r->n_results = 6;
    fx->declared[0] = "gate", fx->declared[1] = "up", fx->declared[2] = "act";
    r->declared_omitted = fx->declared;
    r->n_declared_omitted = 3;
    r->n_missing = q_missing ? 1 : 0;
    r->n_failures = q_missing ? 2 : 1;
    r->first_failure = q_missing ? 1 : 2;
    r->worst = r->first_failure;
    r->pass = 0;
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

// The line of `text` that contains `needle`, as a malloc'd string (the test fails when there is none).
static char *line_with(const char *text, const char *needle) {
    const char *hit = strstr(text, needle);
    cr_assert_not_null(hit, "no line with '%s' in:\n%s", needle, text);
    if (needle[0] == '\n') hit++;  // a needle may start at a line's beginning
    const char *start = hit, *end = strchr(hit, '\n');
    while (start > text && start[-1] != '\n') start--;
    if (!end) end = hit + strlen(hit);
    return strndup(start, (size_t)(end - start));
}

// No count of 1 with a plural noun, anywhere.
static void expect_no_wrong_plural(const char *text) {
    const char *nouns[] = {"steps", "layers", "tokens", "tensors", "failures", "elements"};
    for (size_t i = 0; i < sizeof nouns / sizeof nouns[0]; i++) {
        char wrong[32];
        snprintf(wrong, sizeof wrong, " 1 %s", nouns[i]);
        cr_assert_null(strstr(text, wrong), "'%s' in:\n%s", wrong, text);
        snprintf(wrong, sizeof wrong, "(1 %s", nouns[i]);
        cr_assert_null(strstr(text, wrong), "'%s' in:\n%s", wrong, text);
    }
}

Test(report, missing_tensor_is_a_failure_never_a_zero_metric_row) {
    Fixture fx;
    fixture_init(&fx, 1);
    char *table = table_of(&fx.result, 1);
    cr_assert(strstr(table, "first failure: step 0 layer 0 tensor q missing from the trace under test") != NULL,
              "%s", table);
    // The per-tensor row: says missing, shows no number that could pass for a perfect match.
    char *row = line_with(table, "   0     0 q ");
    cr_assert(strstr(row, "missing") != NULL && strstr(row, "MISSING") != NULL, "%s", row);
    cr_assert_null(strstr(row, "0.00e+00"), "%s", row);
    // The worst tensor of layer 0 is the missing one, not the spike in k.
    char *layer_row = line_with(table, "\n0      ");
    cr_assert(strstr(layer_row, "q ") && strstr(layer_row, "missing"), "%s", layer_row);
    cr_assert(strstr(table, "summary: 5 tensors compared, 1 missing, 2 failures, worst rel_l2 missing at step 0 "
                            "layer 0 tensor q — FAIL") != NULL, "%s", table);
    free(row);
    free(layer_row);
    free(table);
}

Test(report, declared_and_allowed_omissions_are_listed_in_every_report) {
    Fixture fx;
    fixture_init(&fx, 1);
    char *table = table_of(&fx.result, 0);
    cr_assert(strstr(table, "declared omitted by the trace under test: gate, up, act\n") != NULL, "%s", table);
    cr_assert(strstr(table, "allowed missing (--allow-missing): none\n") != NULL, "%s", table);
    free(table);

    fx.allowed[0] = "attn";
    fx.result.allowed_missing = fx.allowed;
    fx.result.n_allowed_missing = 1;
    fx.result.n_declared_omitted = 0;
    table = table_of(&fx.result, 0);
    cr_assert(strstr(table, "declared omitted by the trace under test: none\n") != NULL, "%s", table);
    cr_assert(strstr(table, "allowed missing (--allow-missing): attn\n") != NULL, "%s", table);
    free(table);

    char *json_text = report_json_text(&fx.result);
    cr_assert_not_null(json_text);
    cJSON *json = cJSON_Parse(json_text);
    cr_assert_not_null(json, "%s", json_text);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "declared_omitted")), 0);
    cJSON *allowed = cJSON_GetObjectItem(json, "allowed_missing");
    cr_assert_eq(cJSON_GetArraySize(allowed), 1);
    cr_assert_str_eq(cJSON_GetArrayItem(allowed, 0)->valuestring, "attn");
    cJSON_Delete(json);
    free(json_text);
}

Test(report, guesses_about_why_names_are_absent_are_not_printed) {
    Fixture fx;
    fixture_init(&fx, 1);
    char *only[3] = {"gate", "up", "act"};
    fx.result.only_b = only;
    fx.result.n_only_b = 3;
    char *table = table_of(&fx.result, 0);
    cr_assert(strstr(table, "only in reference: gate, up, act\n") != NULL, "%s", table);
    cr_assert_null(strstr(table, "on chip"), "%s", table);
    free(table);
}

Test(report, a_failing_tensor_says_how_many_elements_and_where_the_worst_is) {
    Fixture fx;
    fixture_init(&fx, 0);
    char *table = table_of(&fx.result, 0);
    cr_assert(strstr(table, "first failure: step 0 layer 0 tensor k rel_l2 1.8e-01 > 1e-03") != NULL, "%s", table);
    cr_assert(strstr(table, "  1 of 8 elements (12.5%) beyond 1e-03*max|r| = 1.000e-03; worst at (step 0, layer 0, "
                            "k, row 1, col 2): 1.5 under test vs 1 reference (|f-r| 5.000e-01)\n") != NULL,
              "%s", table);
    free(table);
    // Step-level tensors have no layer: "-".
    TensorResult *logits = &fx.result.results[4];
    float reference[4] = {1, 2, 3, 4}, under_test[4] = {1, 2, 3, 5};
    metrics_compute(under_test, reference, 4, &fx.result.tol, &logits->metrics);
    logits->pass = 0;
    fx.result.first_failure = 4;
    fx.result.results[2].pass = 1;
    table = table_of(&fx.result, 0);
    cr_assert(strstr(table, "worst at (step 0, layer -, logits, row 0, col 3): 5 under test vs 4 reference") != NULL,
              "%s", table);
    free(table);
}

Test(report, json_and_markdown_carry_the_missing_tensor_and_the_failure_detail) {
    Fixture fx;
    fixture_init(&fx, 1);
    char *json_text = report_json_text(&fx.result);
    cJSON *json = cJSON_Parse(json_text);
    cr_assert_not_null(json, "%s", json_text);
    cJSON *compared = cJSON_GetObjectItem(json, "compared");
    cr_assert_eq(cJSON_GetObjectItem(compared, "missing")->valueint, 1);
    cr_assert_eq(cJSON_GetObjectItem(compared, "tensors")->valueint, 5);
    cr_assert_eq(cJSON_GetObjectItem(compared, "failures")->valueint, 2);
    cJSON *tensors = cJSON_GetObjectItem(json, "tensors");
    cJSON *q = cJSON_GetArrayItem(tensors, 1);
    cr_assert_str_eq(cJSON_GetObjectItem(q, "tensor")->valuestring, "q");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(q, "missing")));
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(q, "pass")));
    cr_assert_null(cJSON_GetObjectItem(q, "rel_l2"), "a missing tensor has no metrics, not zeros");
    cr_assert_null(cJSON_GetObjectItem(q, "max_abs"));
    cJSON *k = cJSON_GetArrayItem(tensors, 2);
    cr_assert_eq(cJSON_GetObjectItem(k, "elements_beyond_norm_max")->valueint, 1);
    cr_assert_eq(cJSON_GetObjectItem(k, "elements")->valueint, 8);
    cJSON *worst = cJSON_GetObjectItem(k, "worst_element");
    cr_assert_eq(cJSON_GetObjectItem(worst, "row")->valueint, 1);
    cr_assert_eq(cJSON_GetObjectItem(worst, "col")->valueint, 2);
    cr_assert_eq(cJSON_GetObjectItem(worst, "value")->valuedouble, 1.5);
    cr_assert_eq(cJSON_GetObjectItem(worst, "reference_value")->valuedouble, 1.0);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "declared_omitted")), 3);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "allowed_missing")), 0);
    cJSON_Delete(json);
    free(json_text);

    char *dir = test_make_temp_dir("report-md");
    ErrorMessage err;
    cr_assert_eq(report_write(&fx.result, dir, &err), 0, "%s", err.text);
    char *md = test_read_file(test_path_join(dir, "accuracy.md"), NULL);
    cr_assert(strstr(md, "- Declared omitted by the trace under test: gate, up, act\n") != NULL, "%s", md);
    cr_assert(strstr(md, "- Allowed missing (`--allow-missing`): none\n") != NULL, "%s", md);
    cr_assert(strstr(md, "| 0 | 0 | q | missing from the trace under test (not declared) | - |\n") != NULL, "%s", md);
    cr_assert(strstr(md, "| 0 | 0 | k | rel_l2 1.8e-01 > 1e-03 | 1 of 8 elements (12.5%) beyond") != NULL, "%s", md);
    cr_assert(strstr(md, "row 1, col 2): 1.5 under test vs 1 reference") != NULL, "%s", md);
    // A '|' inside a cell (max|r|, |f-r|) is escaped, so each failure row has exactly five cells.
    char *k_row = line_with(md, "| 0 | 0 | k |");
    int unescaped_bars = 0;
    for (const char *c = k_row; *c; c++) unescaped_bars += *c == '|' && (c == k_row || c[-1] != '\\');
    cr_assert_eq(unescaped_bars, 6, "%s", k_row);
    cr_assert(strstr(k_row, "max\\|r\\|") != NULL, "%s", k_row);
    free(k_row);
    cr_assert(strstr(md, "1 missing, 2 failures") != NULL, "%s", md);
    cr_assert_null(strstr(md, "| q | 0 | 0.00e+00"), "%s", md);
    free(md);
}

Test(report, counts_of_one_are_singular_in_every_report) {
    Fixture fx;
    fixture_init(&fx, 0);
    char *table = table_of(&fx.result, 1);
    cr_assert(strstr(table, "compared 1 step (step 0 = prefill of 1 token), 1 layer, 1 token\n") != NULL, "%s", table);
    cr_assert(strstr(table, "[producer fused, kv f32, weights bf16, 1 step]") != NULL, "%s", table);
    cr_assert(strstr(table, "summary: 6 tensors compared, 0 missing, 1 failure,") != NULL, "%s", table);
    expect_no_wrong_plural(table);
    free(table);

    char *dir = test_make_temp_dir("report-plural");
    ErrorMessage err;
    cr_assert_eq(report_write(&fx.result, dir, &err), 0, "%s", err.text);
    const char *files[] = {"accuracy.md", "error_by_layer.svg"};
    for (int i = 0; i < 2; i++) {
        char *text = test_read_file(test_path_join(dir, files[i]), NULL);
        expect_no_wrong_plural(text);
        free(text);
    }
    char *svg = test_read_file(test_path_join(dir, "error_by_layer.svg"), NULL);
    cr_assert(strstr(svg, "max over 1 step:") != NULL, "%s", svg);
    free(svg);

    // And plural when they are not one.
    fx.result.n_steps = 2, fx.result.n_layers = 2, fx.result.n_tokens = 3, fx.n_tokens[0] = 2;
    int positions[2] = {0, 2}, counts[2] = {2, 1};
    fx.result.step_first_position = positions, fx.result.step_n_tokens = counts;
    table = table_of(&fx.result, 0);
    cr_assert(strstr(table, "compared 2 steps (step 0 = prefill of 2 tokens), 2 layers, 3 tokens\n") != NULL, "%s",
              table);
    free(table);
    // --steps 3..4: the steps are named, not "step 0 = prefill".
    fx.result.first_step = 3;
    table = table_of(&fx.result, 0);
    cr_assert(strstr(table, "compared 2 steps (steps 3..4), 2 layers, 3 tokens\n") != NULL, "%s", table);
    free(table);
}

// Well-formed XML, checked by python3's parser when there is one (the SVG is hand-written text).
static void expect_well_formed_xml(const char *path) {
    if (system("python3 -c 'import xml.etree.ElementTree' 2>/dev/null") != 0) {
        cr_log_warn("python3 not available: %s not parsed", path);
        return;
    }
    char command[4200];
    snprintf(command, sizeof command,
             "python3 -c 'import sys, xml.etree.ElementTree as E; "
             "root = E.parse(sys.argv[1]).getroot(); sys.exit(0 if root.tag.endswith(\"svg\") else 3)' '%s'",
             path);
    cr_assert_eq(system(command), 0, "%s is not a well-formed SVG", path);
}

// Reads the numbers of attribute `name` in element text `element` (e.g. x="12.5").
static double attribute(const char *element, const char *name) {
    char key[32];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *at = strstr(element, key);
    cr_assert_not_null(at, "no %s in %.200s", name, element);
    return strtod(at + strlen(key), NULL);
}

Test(report, svg_is_well_formed_draws_norm_max_and_keeps_labels_apart) {
    Fixture fx;
    fixture_init(&fx, 1);
    // Different bounds: two tolerance lines, both in the legend.
    fx.result.tol.max_norm_max = 1e-2;
    char *dir = test_make_temp_dir("report-svg");
    ErrorMessage err;
    cr_assert_eq(report_write(&fx.result, dir, &err), 0, "%s", err.text);
    char *path = test_path_join(dir, "error_by_layer.svg");
    expect_well_formed_xml(path);
    char *svg = test_read_file(path, NULL);
    cr_assert(strstr(svg, ">tolerance 1e-03 (rel_l2)<") != NULL, "%s", svg);
    cr_assert(strstr(svg, ">tolerance 1e-02 (norm_max)<") != NULL, "%s", svg);
    cr_assert(strstr(svg, ">worst tensor, rel_l2<") != NULL, "%s", svg);
    cr_assert(strstr(svg, ">worst tensor, norm_max<") != NULL, "%s", svg);
    cr_assert(strstr(svg, "NaN/Inf/shape/missing") != NULL, "the missing q is drawn on the top axis: %s", svg);
    // No two text labels in the right margin (legend) share a row: their baselines are >= 14 px apart.
    double legend_y[32];
    int n = 0;
    double plot_right = 0;
    const char *frame = strstr(svg, "<rect x=\"");
    cr_assert_not_null(frame);
    plot_right = attribute(frame, "x") + attribute(frame, "width");
    for (const char *at = strstr(svg, "<text "); at; at = strstr(at + 1, "<text ")) {
        if (!strncmp(at, "<text transform", 15) || attribute(at, "x") <= plot_right) continue;
        cr_assert_lt(n, 32);
        legend_y[n++] = attribute(at, "y");
    }
    cr_assert_geq(n, 7, "2 tolerances + 5 series in the legend, found %d", n);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            cr_assert(legend_y[i] - legend_y[j] >= 14 || legend_y[j] - legend_y[i] >= 14,
                      "legend labels at y %.1f and %.1f overlap", legend_y[i], legend_y[j]);
    free(svg);

    // Equal bounds: one tolerance entry naming both metrics (what the default tolerances give).
    fx.result.tol = tolerances_default();
    cr_assert_eq(report_write(&fx.result, dir, &err), 0, "%s", err.text);
    expect_well_formed_xml(path);
    svg = test_read_file(path, NULL);
    cr_assert(strstr(svg, ">tolerance 1e-03 (rel_l2 and norm_max)<") != NULL, "%s", svg);
    free(svg);
}

Test(report, svg_escapes_producer_names) {
    Fixture fx;
    fixture_init(&fx, 0);
    snprintf(fx.result.a.meta.producer, sizeof fx.result.a.meta.producer, "a<b&\"c\"");
    char *dir = test_make_temp_dir("report-svg-escape");
    ErrorMessage err;
    cr_assert_eq(report_write(&fx.result, dir, &err), 0, "%s", err.text);
    char *path = test_path_join(dir, "error_by_layer.svg");
    expect_well_formed_xml(path);
    char *svg = test_read_file(path, NULL);
    cr_assert(strstr(svg, "a&lt;b&amp;&quot;c&quot;") != NULL, "%s", svg);
    free(svg);
}

// Numbers in accuracy.json keep 9 significant digits: enough for every float value to round-trip, and
// half the size of a full double's 17 (a gate's JSON is committed with its report).
Test(report, json_numbers_keep_nine_significant_digits) {
    Fixture fx;
    fixture_init(&fx, 0);
    fx.result.results[2].metrics.rel_l2 = 1.0 / 3.0;
    fx.result.results[2].metrics.value_f = 0.1f;  // a float: 9 digits bring back the same float
    char *json_text = report_json_text(&fx.result);
    cr_assert_not_null(json_text);
    cr_assert(strstr(json_text, "0.333333333,") || strstr(json_text, "0.333333333\n"), "%s", json_text);
    cr_assert_null(strstr(json_text, "0.3333333333"), "%s", json_text);
    cJSON *json = cJSON_Parse(json_text);
    cr_assert_not_null(json);
    cJSON *tensor = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "tensors"), 2);
    cJSON *worst = cJSON_GetObjectItem(tensor, "worst_element");
    cr_assert_eq((float)cJSON_GetObjectItem(worst, "value")->valuedouble, 0.1f);
    cJSON_Delete(json);
    free(json_text);
}
