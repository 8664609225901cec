// Presenting a comparison: terminal table, JSON, Markdown, and an SVG plot of error by layer.
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../model/file_util.h"

#ifndef FUSECHECK_VERSION
#define FUSECHECK_VERSION "unknown"
#endif

// ---------------------------------------------------------------------------------------------------
// aggregation: the worst tensor of a group (a layer over all steps, a step over all layers)

typedef struct {
    long worst;         // index into results, -1 when the group has no ranked tensor
    size_t n_tensors;
    size_t n_failures;
} Group;

// Tokens are never the worst tensor (they have no metrics); a missing tensor or a shape mismatch always is.
static double result_rank(const TensorResult *t) {
    if (t->is_token) return -1.0;
    if (t->missing || t->shape_mismatch) return INFINITY;
    return metrics_rank(&t->metrics);
}

static void group_add(Group *group, const CompareResult *result, size_t i) {
    const TensorResult *t = &result->results[i];
    group->n_tensors++;
    if (!t->pass) group->n_failures++;
    if (t->is_token) return;
    if (group->worst < 0 || result_rank(t) > result_rank(&result->results[group->worst])) group->worst = (long)i;
}

// Per-layer rows: slot 0 = embed, 1..L = layers, L+1 = head (final_norm, logits, next_token, ...).
static int layer_slot(const CompareResult *result, const TensorResult *t) {
    if (t->layer != COMPARE_STEP_LEVEL) return t->layer + 1;
    return strcmp(t->name, "embed") ? result->n_layers + 1 : 0;
}

static void slot_label(const CompareResult *result, int slot, char *out, size_t size) {
    if (slot == 0) snprintf(out, size, "embed");
    else if (slot == result->n_layers + 1) snprintf(out, size, "head");
    else snprintf(out, size, "%d", slot - 1);
}

// Returns calloc'd groups (n_layers + 2 by layer, or n_steps by step), NULL on out of memory.
static Group *groups_by_layer(const CompareResult *result) {
    int n = result->n_layers + 2;
    Group *groups = calloc((size_t)n, sizeof *groups);
    if (!groups) return NULL;
    for (int i = 0; i < n; i++) groups[i].worst = -1;
    for (size_t i = 0; i < result->n_results; i++) group_add(&groups[layer_slot(result, &result->results[i])], result, i);
    return groups;
}

static Group *groups_by_step(const CompareResult *result) {
    int n = result->n_steps > 0 ? result->n_steps : 1;
    Group *groups = calloc((size_t)n, sizeof *groups);
    if (!groups) return NULL;
    for (int i = 0; i < n; i++) groups[i].worst = -1;
    // Steps are numbered as in the traces; --steps A..B makes the first compared one A.
    for (size_t i = 0; i < result->n_results; i++) {
        int slot = result->results[i].step - result->first_step;
        if (slot >= 0 && slot < n) group_add(&groups[slot], result, i);
    }
    return groups;
}

// ---------------------------------------------------------------------------------------------------
// text formatting shared by the table and the Markdown

// "1 step", "2 steps": the noun that goes with a count.
static const char *plural(long n, const char *one, const char *many) { return n == 1 ? one : many; }

static const char *format_number(char *out, size_t size, const char *format, double x) {
    if (isnan(x)) snprintf(out, size, "nan");
    else if (isinf(x)) snprintf(out, size, x > 0 ? "inf" : "-inf");
    else snprintf(out, size, format, x);
    return out;
}

// The four metric columns of a result: rel_l2, norm_max, max_abs, cosine.
typedef struct {
    char rel_l2[24], norm_max[24], max_abs[24], cosine[24];
} MetricText;

static MetricText metric_text(const TensorResult *t) {
    MetricText text;
    if (t->is_token || t->shape_mismatch || t->missing) {
        // A missing tensor has no metrics: never show zeros that would read as a perfect match.
        const char *dash = t->missing ? "missing" : t->shape_mismatch ? "shape" : "-";
        snprintf(text.rel_l2, sizeof text.rel_l2, "%s", dash);
        snprintf(text.norm_max, sizeof text.norm_max, "-");
        snprintf(text.max_abs, sizeof text.max_abs, "-");
        snprintf(text.cosine, sizeof text.cosine, "-");
        return text;
    }
    const TensorMetrics *m = &t->metrics;
    if (metrics_has_nonfinite(m)) snprintf(text.rel_l2, sizeof text.rel_l2, "NaN/Inf");
    else format_number(text.rel_l2, sizeof text.rel_l2, "%.2e", m->rel_l2);
    format_number(text.norm_max, sizeof text.norm_max, "%.2e", m->norm_max);
    format_number(text.max_abs, sizeof text.max_abs, "%.2e", m->max_abs);
    format_number(text.cosine, sizeof text.cosine, "%.8f", m->cosine);
    return text;
}

static void format_bound(char *out, size_t size, double bound) {
    snprintf(out, size, "%.0e", bound);
    if (strtod(out, NULL) != bound) snprintf(out, size, "%.3e", bound);
}

static void tolerance_text(const Tolerances *tol, char *out, size_t size) {
    char rel[32], nm[32], atol[32], rtol[32];
    format_bound(rel, sizeof rel, tol->max_rel_l2);
    format_bound(nm, sizeof nm, tol->max_norm_max);
    if (tol->check_allclose) {
        format_bound(atol, sizeof atol, tol->atol);
        format_bound(rtol, sizeof rtol, tol->rtol);
        snprintf(out, size, "rel_l2 <= %s, norm_max <= %s, allclose |f-r| <= %s + %s|r|", rel, nm, atol, rtol);
    } else {
        snprintf(out, size, "rel_l2 <= %s, norm_max <= %s (allclose not checked: no --atol/--rtol)", rel, nm);
    }
}

// Names, comma separated, or "none". No reason is made up for why a side lacks them: the trace's own
// declaration (declared_omitted) is the only evidence of that.
static void names_text(char *const *names, int n, char *out, size_t size) {
    size_t used = 0;
    out[0] = '\0';
    if (n == 0) snprintf(out, size, "none");
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", names[i]);
}

// Why a result failed: its reason, or for a missing tensor that compare left without one, what is true.
static const char *failure_reason(const TensorResult *t) {
    if (t->why[0]) return t->why;
    return t->missing ? "missing from the trace under test (not declared)" : "";
}

static void first_failure_text(const CompareResult *result, char *out, size_t size) {
    if (result->first_failure < 0) {
        snprintf(out, size, "no failure: every compared tensor is within tolerance");
        return;
    }
    const TensorResult *t = &result->results[result->first_failure];
    char where[160];
    compare_describe_location(t, where, sizeof where);
    snprintf(out, size, "first failure: %s %s — everything before it passes", where, failure_reason(t));
}

// What numpy's assert_allclose says of a failing tensor: how many elements are beyond the bound (and what
// share of the tensor), and the worst element with both values, located as (step, layer, tensor, row, col).
// Returns 0 (and writes "") for results without element metrics: passes, tokens, shape mismatches, missing.
static int failure_detail_text(const CompareResult *result, const TensorResult *t, char *out, size_t size) {
    out[0] = '\0';
    if (t->pass || t->is_token || t->shape_mismatch || t->missing) return 0;
    const TensorMetrics *m = &t->metrics;
    char bound[32], layer[16];
    format_bound(bound, sizeof bound, result->tol.max_norm_max);
    if (t->layer == COMPARE_STEP_LEVEL) snprintf(layer, sizeof layer, "-");
    else snprintf(layer, sizeof layer, "%d", t->layer);
    double percent = m->n ? 100.0 * (double)m->n_beyond / (double)m->n : 0.0;
    int used = snprintf(out, size, "%zu of %zu %s (%.3g%%) beyond %s*max|r| = %.3e", m->n_beyond, m->n,
                        plural((long)m->n, "element", "elements"), percent, bound, result->tol.max_norm_max * m->max_abs_r);
    if (result->tol.check_allclose && used >= 0 && (size_t)used < size) {
        double share = m->n ? 100.0 * (double)m->allclose_violations / (double)m->n : 0.0;
        used += snprintf(out + used, size - (size_t)used, ", %zu (%.3g%%) not allclose", m->allclose_violations, share);
    }
    if (m->max_abs > 0.0 && t->cols_a > 0 && used >= 0 && (size_t)used < size) {
        size_t row = m->max_abs_index / (size_t)t->cols_a, col = m->max_abs_index % (size_t)t->cols_a;
        snprintf(out + used, size - (size_t)used,
                 "; worst at (step %d, layer %s, %s, row %zu, col %zu): %.9g under test vs %.9g reference (|f-r| %.3e)",
                 t->step, layer, t->name, row, col, m->value_f, m->value_r, m->max_abs);
    }
    return 1;
}

static void summary_text(const CompareResult *result, char *out, size_t size) {
    char worst[256] = "none";
    if (result->worst >= 0) {
        const TensorResult *t = &result->results[result->worst];
        char where[160];
        compare_describe_location(t, where, sizeof where);
        MetricText text = metric_text(t);
        snprintf(worst, sizeof worst, "%s at %s", text.rel_l2, where);
    }
    // Missing tensors are results but were not compared: counted apart, never as compared.
    size_t compared = result->n_results - result->n_missing;
    snprintf(out, size, "summary: %zu %s compared, %zu missing, %zu %s, worst rel_l2 %s — %s", compared,
             plural((long)compared, "tensor", "tensors"), result->n_missing, result->n_failures,
             plural((long)result->n_failures, "failure", "failures"), worst, result->pass ? "PASS" : "FAIL");
}

// "compared 3 steps (step 0 = prefill of 16 tokens), 2 layers, 18 tokens"
static void compared_text(const CompareResult *result, char *out, size_t size) {
    char steps[128];
    int prompt = result->n_steps ? result->step_n_tokens[0] : 0;
    if (result->n_steps && result->first_step == 0)
        snprintf(steps, sizeof steps, "%d %s (step 0 = prefill of %d %s)", result->n_steps,
                 plural(result->n_steps, "step", "steps"), prompt, plural(prompt, "token", "tokens"));
    else if (result->n_steps)
        snprintf(steps, sizeof steps, "%d %s (steps %d..%d)", result->n_steps, plural(result->n_steps, "step", "steps"),
                 result->first_step, result->first_step + result->n_steps - 1);
    else
        snprintf(steps, sizeof steps, "0 steps");
    snprintf(out, size, "compared %s, %d %s, %d %s", steps, result->n_layers, plural(result->n_layers, "layer", "layers"),
             result->n_tokens, plural(result->n_tokens, "token", "tokens"));
}

// The omissions a reader must see in every report: what the trace under test says it never materialises,
// and what --allow-missing let it lack.
static void omissions_text(const CompareResult *result, char *declared, char *allowed, size_t size) {
    names_text(result->declared_omitted, result->n_declared_omitted, declared, size);
    names_text(result->allowed_missing, result->n_allowed_missing, allowed, size);
}

static void profile_text(const TraceMeta *meta, char *out, size_t size) {
    snprintf(out, size, "kv %s%s, weights %s", meta->kv_dtype, meta->kv_forced ? " (storage-forced)" : "",
             meta->weights_dtype);
}

// ---------------------------------------------------------------------------------------------------
// the terminal table

static void print_header(FILE *out, const CompareResult *result) {
    const TraceSummary *sides[2] = {&result->a, &result->b};
    const char *roles[2] = {"A (under test)", "B (reference) "};
    for (int i = 0; i < 2; i++) {
        char profile[96];
        profile_text(&sides[i]->meta, profile, sizeof profile);
        fprintf(out, "%s: %s  [producer %s, %s, %d %s]\n", roles[i], sides[i]->path, sides[i]->meta.producer,
                profile, sides[i]->n_steps, plural(sides[i]->n_steps, "step", "steps"));
    }
    char profile[96], tolerance[160], compared[256], declared[1200], allowed[1200];
    profile_text(&result->a.meta, profile, sizeof profile);
    if (!result->profiles_differ) fprintf(out, "precision profiles: same (%s)\n", profile);
    compared_text(result, compared, sizeof compared);
    fprintf(out, "weights %s; %s\n", result->a.meta.weights_fingerprint, compared);
    tolerance_text(&result->tol, tolerance, sizeof tolerance);
    fprintf(out, "tolerances: %s\n", tolerance);
    omissions_text(result, declared, allowed, sizeof declared);
    fprintf(out, "declared omitted by the trace under test: %s\n", declared);
    fprintf(out, "allowed missing (--allow-missing): %s\n", allowed);
    for (int i = 0; i < result->n_notes; i++) fprintf(out, "note: %s\n", result->notes[i]);
}

static void print_verbose(FILE *out, const CompareResult *result) {
    fprintf(out, "\nevery tensor (forward order)\n");
    fprintf(out, "%4s %5s %-11s %-12s %-9s %-9s %-9s %-10s %s\n", "step", "layer", "tensor", "shape", "rel_l2",
            "norm_max", "max_abs", "cosine", "status");
    for (size_t i = 0; i < result->n_results; i++) {
        const TensorResult *t = &result->results[i];
        char layer[16], shape[32];
        if (t->layer == COMPARE_STEP_LEVEL) snprintf(layer, sizeof layer, "-");
        else snprintf(layer, sizeof layer, "%d", t->layer);
        snprintf(shape, sizeof shape, "%dx%d", t->rows_a, t->cols_a);
        MetricText text = metric_text(t);
        const char *why = t->pass ? t->why : failure_reason(t);
        fprintf(out, "%4d %5s %-11s %-12s %-9s %-9s %-9s %-10s %s%s%s\n", t->step, layer, t->name, shape, text.rel_l2,
                text.norm_max, text.max_abs, text.cosine, t->pass ? "ok" : t->missing ? "MISSING" : "FAIL",
                why[0] ? "  " : "", why);
        char detail[512];
        if (failure_detail_text(result, t, detail, sizeof detail)) fprintf(out, "%28s%s\n", "", detail);
    }
}

// A group row's third column: the worst tensor's step in a per-layer row, its layer in a per-step one
// ("-" for a step-level tensor).
static void group_row_where(const TensorResult *t, int by_layer, char *where, size_t size) {
    if (by_layer) snprintf(where, size, "%d", t->step);
    else if (t->layer == COMPARE_STEP_LEVEL) snprintf(where, size, "-");
    else snprintf(where, size, "%d", t->layer);
}

static void print_group_row(FILE *out, const CompareResult *result, const char *label, const Group *group, int by_layer) {
    if (group->worst < 0) {
        fprintf(out, "%-6s %-11s %5s %-9s %-9s %-9s %-10s %zu/%zu\n", label, "-", "-", "-", "-", "-", "-",
                group->n_failures, group->n_tensors);
        return;
    }
    const TensorResult *t = &result->results[group->worst];
    MetricText text = metric_text(t);
    char where[16];
    group_row_where(t, by_layer, where, sizeof where);
    fprintf(out, "%-6s %-11s %5s %-9s %-9s %-9s %-10s %zu/%zu%s\n", label, t->name, where, text.rel_l2, text.norm_max,
            text.max_abs, text.cosine, group->n_failures, group->n_tensors, group->n_failures ? "  FAIL" : "");
}

void report_print_table(FILE *out, const CompareResult *result, int verbose) {
    print_header(out, result);
    Group *by_layer = groups_by_layer(result);
    Group *by_step = groups_by_step(result);
    if (!by_layer || !by_step) {
        fprintf(out, "(out of memory: tables left out)\n");
    } else {
        fprintf(out, "\nworst tensor per layer, over all steps\n");
        fprintf(out, "%-6s %-11s %5s %-9s %-9s %-9s %-10s %s\n", "layer", "tensor", "step", "rel_l2", "norm_max",
                "max_abs", "cosine", "fails/tensors");
        for (int slot = 0; slot < result->n_layers + 2; slot++) {
            char label[16];
            slot_label(result, slot, label, sizeof label);
            print_group_row(out, result, label, &by_layer[slot], 1);
        }
        fprintf(out, "\nworst tensor per step, over all layers\n");
        fprintf(out, "%-6s %-11s %5s %-9s %-9s %-9s %-10s %s\n", "step", "tensor", "layer", "rel_l2", "norm_max",
                "max_abs", "cosine", "fails/tensors");
        for (int step = 0; step < result->n_steps; step++) {
            char label[16];
            snprintf(label, sizeof label, "%d", result->first_step + step);
            print_group_row(out, result, label, &by_step[step], 0);
        }
    }
    free(by_layer);
    free(by_step);
    if (verbose) print_verbose(out, result);

    char line[1200];
    fprintf(out, "\n");
    if (result->n_only_a) {
        names_text(result->only_a, result->n_only_a, line, sizeof line);
        fprintf(out, "only in under test: %s\n", line);
    }
    if (result->n_only_b) {
        names_text(result->only_b, result->n_only_b, line, sizeof line);
        fprintf(out, "only in reference: %s\n", line);
    }
    first_failure_text(result, line, sizeof line);
    fprintf(out, "%s\n", line);
    if (result->first_failure >= 0 &&
        failure_detail_text(result, &result->results[result->first_failure], line, sizeof line))
        fprintf(out, "  %s\n", line);
    summary_text(result, line, sizeof line);
    fprintf(out, "%s\n", line);
}

// ---------------------------------------------------------------------------------------------------
// JSON

// JSON has no inf or nan: non-finite numbers become the strings "inf", "-inf", "nan". Finite ones keep 9
// significant digits: every float value (the traces' dtype) round-trips, an error metric needs no more,
// and the 17 digits of a full double made a gate's accuracy.json twice as large.
static cJSON *json_number(double x) {
    if (isfinite(x)) {
        char digits[32];
        snprintf(digits, sizeof digits, "%.9g", x);
        return cJSON_CreateNumber(strtod(digits, NULL));
    }
    return cJSON_CreateString(isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
}

static void add_number(cJSON *object, const char *key, double x) { cJSON_AddItemToObject(object, key, json_number(x)); }

static cJSON *json_names(char *const *names, int n) {
    cJSON *array = cJSON_CreateArray();
    for (int i = 0; array && i < n; i++) cJSON_AddItemToArray(array, cJSON_CreateString(names[i]));
    return array;
}

static cJSON *json_file(const TraceSummary *side) {
    cJSON *file = cJSON_CreateObject();
    cJSON_AddStringToObject(file, "path", side->path);
    cJSON_AddStringToObject(file, "producer", side->meta.producer);
    cJSON_AddStringToObject(file, "kv_dtype", side->meta.kv_dtype);
    cJSON_AddStringToObject(file, "weights_dtype", side->meta.weights_dtype);
    cJSON_AddStringToObject(file, "weights_fingerprint", side->meta.weights_fingerprint);
    cJSON_AddStringToObject(file, "tool_version", side->meta.tool_version);
    cJSON_AddNumberToObject(file, "prompt_length", side->meta.prompt_length);
    cJSON_AddNumberToObject(file, "n_steps", side->n_steps);
    cJSON_AddNumberToObject(file, "n_tokens", side->n_tokens);
    return file;
}

static cJSON *json_shape(int rows, int cols) {
    int shape[2] = {rows, cols};
    return cJSON_CreateIntArray(shape, 2);
}

static cJSON *json_tensor(const TensorResult *t) {
    cJSON *item = cJSON_CreateObject();
    cJSON_AddNumberToObject(item, "step", t->step);
    if (t->layer == COMPARE_STEP_LEVEL) cJSON_AddNullToObject(item, "layer");
    else cJSON_AddNumberToObject(item, "layer", t->layer);
    cJSON_AddStringToObject(item, "tensor", t->name);
    cJSON_AddBoolToObject(item, "pass", t->pass);
    if (t->missing) {
        // No metrics at all: a missing tensor must not read as a zero-error match.
        cJSON_AddBoolToObject(item, "missing", 1);
        cJSON_AddStringToObject(item, "why", failure_reason(t));
        cJSON_AddItemToObject(item, "reference_shape", json_shape(t->rows_b, t->cols_b));
        return item;
    }
    if (t->why[0]) cJSON_AddStringToObject(item, "why", t->why);
    cJSON_AddItemToObject(item, "shape", json_shape(t->rows_a, t->cols_a));
    if (t->shape_mismatch) cJSON_AddItemToObject(item, "reference_shape", json_shape(t->rows_b, t->cols_b));
    if (t->is_token) {
        cJSON_AddNumberToObject(item, "token", t->token_a);
        cJSON_AddNumberToObject(item, "reference_token", t->token_b);
        return item;
    }
    if (t->shape_mismatch) return item;
    const TensorMetrics *m = &t->metrics;
    add_number(item, "rel_l2", m->rel_l2);
    add_number(item, "norm_max", m->norm_max);
    add_number(item, "max_abs", m->max_abs);
    cJSON_AddNumberToObject(item, "max_abs_index", (double)m->max_abs_index);
    // The worst element located in the tensor, with both values (what a failure message quotes).
    cJSON *worst = cJSON_AddObjectToObject(item, "worst_element");
    if (worst && t->cols_a > 0) {
        cJSON_AddNumberToObject(worst, "row", (double)(m->max_abs_index / (size_t)t->cols_a));
        cJSON_AddNumberToObject(worst, "col", (double)(m->max_abs_index % (size_t)t->cols_a));
    }
    add_number(worst, "value", m->value_f);
    add_number(worst, "reference_value", m->value_r);
    add_number(item, "reference_max_abs", m->max_abs_r);
    cJSON_AddNumberToObject(item, "elements", (double)m->n);
    cJSON_AddNumberToObject(item, "elements_beyond_norm_max", (double)m->n_beyond);
    add_number(item, "cosine", m->cosine);
    cJSON_AddNumberToObject(item, "nan", (double)m->nan_f);
    cJSON_AddNumberToObject(item, "inf", (double)m->inf_f);
    cJSON_AddNumberToObject(item, "reference_nan", (double)m->nan_r);
    cJSON_AddNumberToObject(item, "reference_inf", (double)m->inf_r);
    cJSON_AddNumberToObject(item, "allclose_violations", (double)m->allclose_violations);
    cJSON_AddNumberToObject(item, "allclose_worst_index", (double)m->allclose_worst_index);
    if (m->has_top1) {
        cJSON_AddNumberToObject(item, "top1", (double)m->top1_f);
        cJSON_AddNumberToObject(item, "reference_top1", (double)m->top1_r);
        add_number(item, "reference_top2_margin", m->top1_margin);
        add_number(item, "near_tie_bound", 2.0 * m->max_abs);  // a flip with margin <= this is a near-tie
        cJSON_AddNumberToObject(item, "top1_mismatches", m->top1_mismatches);
        cJSON_AddNumberToObject(item, "top1_disagreements", m->top1_disagreements);
    }
    return item;
}

static cJSON *json_group(const CompareResult *result, const Group *group) {
    cJSON *item = group->worst >= 0 ? json_tensor(&result->results[group->worst]) : cJSON_CreateObject();
    cJSON_AddNumberToObject(item, "tensors", (double)group->n_tensors);
    cJSON_AddNumberToObject(item, "failures", (double)group->n_failures);
    return item;
}

static cJSON *json_location(const CompareResult *result, long index) {
    if (index < 0) return cJSON_CreateNull();
    return json_tensor(&result->results[index]);
}

static cJSON *build_json(const CompareResult *result) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "tool", "fusecheck compare " FUSECHECK_VERSION);
    cJSON_AddBoolToObject(root, "pass", result->pass);
    cJSON *files = cJSON_AddObjectToObject(root, "files");
    cJSON_AddItemToObject(files, "under_test", json_file(&result->a));
    cJSON_AddItemToObject(files, "reference", json_file(&result->b));
    cJSON_AddBoolToObject(root, "profiles_differ", result->profiles_differ);
    cJSON *config = cJSON_Parse(result->a.meta.model_config);
    cJSON_AddItemToObject(root, "model_config", config ? config : cJSON_CreateString(result->a.meta.model_config));

    cJSON *tolerances = cJSON_AddObjectToObject(root, "tolerances");
    add_number(tolerances, "max_rel_l2", result->tol.max_rel_l2);
    add_number(tolerances, "max_norm_max", result->tol.max_norm_max);
    if (result->tol.check_allclose) {
        add_number(tolerances, "atol", result->tol.atol);
        add_number(tolerances, "rtol", result->tol.rtol);
    } else {
        cJSON_AddNullToObject(tolerances, "atol");
        cJSON_AddNullToObject(tolerances, "rtol");
    }

    cJSON *compared = cJSON_AddObjectToObject(root, "compared");
    cJSON_AddNumberToObject(compared, "steps", result->n_steps);
    cJSON_AddNumberToObject(compared, "layers", result->n_layers);
    cJSON_AddNumberToObject(compared, "tokens", result->n_tokens);
    cJSON_AddNumberToObject(compared, "first_step", result->first_step);
    cJSON_AddNumberToObject(compared, "tensors", (double)(result->n_results - result->n_missing));
    cJSON_AddNumberToObject(compared, "missing", (double)result->n_missing);
    cJSON_AddNumberToObject(compared, "failures", (double)result->n_failures);

    cJSON *notes = cJSON_AddArrayToObject(root, "notes");
    for (int i = 0; i < result->n_notes; i++) cJSON_AddItemToArray(notes, cJSON_CreateString(result->notes[i]));
    cJSON_AddItemToObject(root, "only_in_under_test", json_names(result->only_a, result->n_only_a));
    cJSON_AddItemToObject(root, "only_in_reference", json_names(result->only_b, result->n_only_b));
    cJSON_AddItemToObject(root, "declared_omitted", json_names(result->declared_omitted, result->n_declared_omitted));
    cJSON_AddItemToObject(root, "allowed_missing", json_names(result->allowed_missing, result->n_allowed_missing));
    cJSON_AddItemToObject(root, "first_failure", json_location(result, result->first_failure));
    cJSON_AddItemToObject(root, "worst", json_location(result, result->worst));

    Group *by_layer = groups_by_layer(result);
    Group *by_step = groups_by_step(result);
    if (!by_layer || !by_step) {
        free(by_layer);
        free(by_step);
        cJSON_Delete(root);
        return NULL;
    }
    cJSON *layers = cJSON_AddArrayToObject(root, "by_layer");
    for (int slot = 0; slot < result->n_layers + 2; slot++) {
        char label[16];
        slot_label(result, slot, label, sizeof label);
        cJSON *item = json_group(result, &by_layer[slot]);
        cJSON_AddStringToObject(item, "row", label);  // "embed", "0".."L-1", "head"
        cJSON_AddItemToArray(layers, item);
    }
    cJSON *steps = cJSON_AddArrayToObject(root, "by_step");
    for (int step = 0; step < result->n_steps; step++) {
        cJSON *item = json_group(result, &by_step[step]);
        cJSON_AddNumberToObject(item, "row", result->first_step + step);
        cJSON_AddNumberToObject(item, "first_position", result->step_first_position[step]);
        cJSON_AddNumberToObject(item, "n_tokens", result->step_n_tokens[step]);
        cJSON_AddItemToArray(steps, item);
    }
    free(by_layer);
    free(by_step);

    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < result->n_results; i++) cJSON_AddItemToArray(tensors, json_tensor(&result->results[i]));
    return root;
}

char *report_json_text(const CompareResult *result) {
    cJSON *root = build_json(result);
    if (!root) return NULL;
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

// ---------------------------------------------------------------------------------------------------
// text built in memory, then written whole (model/file_util.h)

typedef struct {
    char *data;
    size_t length, capacity;
    int failed;  // out of memory
} Text;

static void text_append(Text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void text_append(Text *text, const char *format, ...) {
    if (text->failed) return;
    for (;;) {
        size_t room = text->capacity - text->length;
        va_list args;
        va_start(args, format);
        int n = vsnprintf(text->data ? text->data + text->length : NULL, text->data ? room : 0, format, args);
        va_end(args);
        if (n < 0) {
            text->failed = 1;
            return;
        }
        if (text->data && (size_t)n < room) {
            text->length += (size_t)n;
            return;
        }
        size_t capacity = text->capacity ? text->capacity : 4096;
        while (capacity < text->length + (size_t)n + 1) capacity *= 2;
        char *grown = realloc(text->data, capacity);
        if (!grown) {
            text->failed = 1;
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
}

// ---------------------------------------------------------------------------------------------------
// accuracy.md

static void markdown_group_row(Text *md, const CompareResult *result, const char *label, const Group *group, int by_layer) {
    if (group->worst < 0) {
        text_append(md, "| %s | - | - | - | - | - | - | %zu/%zu |\n", label, group->n_failures, group->n_tensors);
        return;
    }
    const TensorResult *t = &result->results[group->worst];
    MetricText text = metric_text(t);
    char where[16];
    group_row_where(t, by_layer, where, sizeof where);
    text_append(md, "| %s | %s | %s | %s | %s | %s | %s | %zu/%zu%s |\n", label, t->name, where, text.rel_l2,
                text.norm_max, text.max_abs, text.cosine, group->n_failures, group->n_tensors,
                group->n_failures ? " **FAIL**" : "");
}

// Table cell text: a '|' (as in |f-r|) would end the cell, so it is escaped.
static void markdown_cell(Text *md, const char *s) {
    for (; *s; s++) text_append(md, *s == '|' ? "\\|" : "%c", *s);
}

// Every failing tensor in forward order (the first MARKDOWN_MAX_FAILURES), each with its reason and,
// where it has element metrics, how many elements are beyond the bound and the worst one.
#define MARKDOWN_MAX_FAILURES 100
static void markdown_failures(Text *md, const CompareResult *result) {
    if (!result->n_failures) return;
    text_append(md, "\n## Failures, in forward order\n\n| step | layer | tensor | why | elements beyond, worst |\n");
    text_append(md, "|---|---|---|---|---|\n");
    size_t shown = 0;
    for (size_t i = 0; i < result->n_results && shown < MARKDOWN_MAX_FAILURES; i++) {
        const TensorResult *t = &result->results[i];
        if (t->pass) continue;
        char layer[16], detail[512];
        if (t->layer == COMPARE_STEP_LEVEL) snprintf(layer, sizeof layer, "-");
        else snprintf(layer, sizeof layer, "%d", t->layer);
        if (!failure_detail_text(result, t, detail, sizeof detail)) snprintf(detail, sizeof detail, "-");
        text_append(md, "| %d | %s | %s | ", t->step, layer, t->name);
        markdown_cell(md, failure_reason(t));
        text_append(md, " | ");
        markdown_cell(md, detail);
        text_append(md, " |\n");
        shown++;
    }
    if (result->n_failures > shown) text_append(md, "\n… and %zu more (accuracy.json lists them all).\n", result->n_failures - shown);
}

static int build_markdown(const CompareResult *result, Text *md) {
    Group *by_layer = groups_by_layer(result);
    Group *by_step = groups_by_step(result);
    if (!by_layer || !by_step) {
        free(by_layer);
        free(by_step);
        return -1;
    }
    char line[1200], profile[64];
    text_append(md, "# Accuracy: %s\n\n", result->pass ? "PASS" : "FAIL");
    text_append(md, "| | file | producer | precision profile | steps |\n|---|---|---|---|---|\n");
    profile_text(&result->a.meta, profile, sizeof profile);
    text_append(md, "| A (under test) | `%s` | %s | %s | %d |\n", result->a.path, result->a.meta.producer, profile,
                result->a.n_steps);
    profile_text(&result->b.meta, profile, sizeof profile);
    text_append(md, "| B (reference) | `%s` | %s | %s | %d |\n\n", result->b.path, result->b.meta.producer, profile,
                result->b.n_steps);
    compared_text(result, line, sizeof line);
    text_append(md, "Weights `%s`; %s.\n\n", result->a.meta.weights_fingerprint, line);
    tolerance_text(&result->tol, line, sizeof line);
    text_append(md, "Tolerances: %s.\n\n", line);
    char declared[1200], allowed[1200];
    omissions_text(result, declared, allowed, sizeof declared);
    text_append(md, "- Declared omitted by the trace under test: %s\n", declared);
    text_append(md, "- Allowed missing (`--allow-missing`): %s\n\n", allowed);
    for (int i = 0; i < result->n_notes; i++) text_append(md, "- Note: %s\n", result->notes[i]);
    if (result->n_notes) text_append(md, "\n");
    first_failure_text(result, line, sizeof line);
    text_append(md, "**%s**\n\n", line);
    if (result->first_failure >= 0 &&
        failure_detail_text(result, &result->results[result->first_failure], line, sizeof line))
        text_append(md, "%s\n\n", line);
    summary_text(result, line, sizeof line);
    text_append(md, "%s\n\n", line);
    if (result->n_only_a) {
        names_text(result->only_a, result->n_only_a, line, sizeof line);
        text_append(md, "Only in under test: %s\n\n", line);
    }
    if (result->n_only_b) {
        names_text(result->only_b, result->n_only_b, line, sizeof line);
        text_append(md, "Only in reference: %s\n\n", line);
    }

    text_append(md, "## Worst tensor per layer, over all steps\n\n![error by layer](error_by_layer.svg)\n\n");
    text_append(md, "| layer | tensor | step | rel_l2 | norm_max | max_abs | cosine | fails/tensors |\n");
    text_append(md, "|---|---|---|---|---|---|---|---|\n");
    for (int slot = 0; slot < result->n_layers + 2; slot++) {
        char label[16];
        slot_label(result, slot, label, sizeof label);
        markdown_group_row(md, result, label, &by_layer[slot], 1);
    }
    text_append(md, "\n## Worst tensor per step, over all layers\n\n");
    text_append(md, "| step | tensor | layer | rel_l2 | norm_max | max_abs | cosine | fails/tensors |\n");
    text_append(md, "|---|---|---|---|---|---|---|---|\n");
    for (int step = 0; step < result->n_steps; step++) {
        char label[16];
        snprintf(label, sizeof label, "%d", result->first_step + step);
        markdown_group_row(md, result, label, &by_step[step], 0);
    }
    free(by_layer);
    free(by_step);
    markdown_failures(md, result);
    return md->failed ? -1 : 0;
}

// ---------------------------------------------------------------------------------------------------
// error_by_layer.svg: log10 rel_l2 and norm_max per layer (max over steps): the worst of all tensors for
// both metrics, and rel_l2 of a few chosen tensors. The legend, tolerances included, sits in the right
// margin, one entry per row, so no label can overlap another.

static void svg_escaped(Text *svg, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': text_append(svg, "&amp;"); break;
        case '<': text_append(svg, "&lt;"); break;
        case '>': text_append(svg, "&gt;"); break;
        case '"': text_append(svg, "&quot;"); break;
        default: text_append(svg, "%c", *s);
        }
    }
}

typedef struct {
    const char *tensor;   // NULL: the worst of all tensors
    int norm_max;         // 1: norm_max, 0: rel_l2
    const char *label;
    const char *color;
    const char *dash;     // stroke-dasharray, "" for a solid line
    double width;
    int square;           // 1: square markers, 0: round ones
} SvgSeries;

#define SVG_SERIES 5
static const SvgSeries SVG[SVG_SERIES] = {
    {NULL, 0, "worst tensor, rel_l2", "#c0392b", "", 2.5, 0},
    {NULL, 1, "worst tensor, norm_max", "#e67e22", "5 3", 2.0, 1},
    {"attn", 0, "attn, rel_l2", "#2471a3", "", 1.5, 0},
    {"mlp_out", 0, "mlp_out, rel_l2", "#27ae60", "", 1.5, 0},
    {"resid_mlp", 0, "resid_mlp, rel_l2", "#7d3c98", "", 1.5, 0},
};

// A layer tensor's value for a series: +inf when it has no usable metrics (missing, shape, NaN/Inf).
static double svg_value(const TensorResult *t, int norm_max) {
    if (t->missing || t->shape_mismatch || metrics_has_nonfinite(&t->metrics)) return INFINITY;
    return norm_max ? t->metrics.norm_max : t->metrics.rel_l2;
}

// The canvas, in pixels: the plot area sits inside these margins, the legend in the right one.
#define SVG_WIDTH 960.0
#define SVG_HEIGHT 460.0
#define SVG_LEFT 80.0
#define SVG_RIGHT 290.0
#define SVG_TOP 50.0
#define SVG_BOTTOM 60.0
#define SVG_PLOT_W (SVG_WIDTH - SVG_LEFT - SVG_RIGHT)
#define SVG_PLOT_H (SVG_HEIGHT - SVG_TOP - SVG_BOTTOM)
#define SVG_LEGEND_X (SVG_LEFT + SVG_PLOT_W + 14)
#define SVG_LEGEND_ROW 20.0

typedef struct {
    int n_layers;
    const double *series;  // series[s * n_layers + layer]: max over steps; -1 = no data
    double lo, hi;         // the y range, in decades
    int has_zero, has_infinite;
    double legend_y;       // the next legend row
} SvgPlot;

static double svg_x(const SvgPlot *p, int layer) {
    return SVG_LEFT + (p->n_layers > 1 ? SVG_PLOT_W * layer / (p->n_layers - 1) : SVG_PLOT_W / 2);
}

static double svg_y(const SvgPlot *p, double log_value) {
    return SVG_TOP + SVG_PLOT_H * (p->hi - log_value) / (p->hi - p->lo);
}

// Each series' worst value per layer over all steps, malloc'd (NULL: out of memory).
static double *svg_collect_series(const CompareResult *result) {
    int n_layers = result->n_layers;
    double *series = malloc(sizeof(double) * SVG_SERIES * (size_t)(n_layers > 0 ? n_layers : 1));
    if (!series) return NULL;
    for (int i = 0; i < SVG_SERIES * n_layers; i++) series[i] = -1.0;
    for (size_t i = 0; i < result->n_results; i++) {
        const TensorResult *t = &result->results[i];
        if (t->layer == COMPARE_STEP_LEVEL || t->is_token || t->layer >= n_layers) continue;
        for (int s = 0; s < SVG_SERIES; s++) {
            if (SVG[s].tensor && strcmp(t->name, SVG[s].tensor)) continue;
            double value = svg_value(t, SVG[s].norm_max);
            double *slot = &series[s * n_layers + t->layer];
            if (value > *slot) *slot = value;
        }
    }
    return series;
}

// The y range in decades, covering the data and both tolerances; notes zeros and non-finite values.
static void svg_y_range(const CompareResult *result, SvgPlot *p) {
    double tol_rel = result->tol.max_rel_l2, tol_norm = result->tol.max_norm_max;
    double lo = fmin(log10(tol_rel), log10(tol_norm)), hi = fmax(log10(tol_rel), log10(tol_norm));
    for (int i = 0; i < SVG_SERIES * p->n_layers; i++) {
        double v = p->series[i];
        if (v < 0) continue;
        if (v == 0) p->has_zero = 1;
        else if (isinf(v)) p->has_infinite = 1;
        else {
            if (log10(v) < lo) lo = log10(v);
            if (log10(v) > hi) hi = log10(v);
        }
    }
    lo = floor(lo);
    hi = ceil(hi);
    double top_tolerance = fmax(log10(tol_rel), log10(tol_norm));
    if (hi < top_tolerance + 1) hi = ceil(top_tolerance + 1);  // room above the tolerance lines
    if (hi - lo < 3) lo = hi - 3;
    if (hi - lo > 16) lo = hi - 16;  // keep labels readable; smaller values sit on the axis
    p->lo = lo;
    p->hi = hi;
}

// The opening tag, the background and the title line.
static void svg_title(Text *svg, const CompareResult *result) {
    text_append(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                     "font-family=\"sans-serif\" font-size=\"12\">\n", SVG_WIDTH, SVG_HEIGHT, SVG_WIDTH, SVG_HEIGHT);
    text_append(svg, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    text_append(svg, "<text x=\"%.0f\" y=\"24\" font-size=\"15\" font-weight=\"bold\">rel_l2 and norm_max per layer, "
                     "max over %d %s: ", SVG_LEFT, result->n_steps, plural(result->n_steps, "step", "steps"));
    svg_escaped(svg, result->a.meta.producer);
    text_append(svg, " (kv ");
    svg_escaped(svg, result->a.meta.kv_dtype);
    text_append(svg, ") vs ");
    svg_escaped(svg, result->b.meta.producer);
    text_append(svg, " (kv ");
    svg_escaped(svg, result->b.meta.kv_dtype);
    text_append(svg, ") — %s</text>\n", result->pass ? "PASS" : "FAIL");
}

// The grid with one y label per decade (every other one when there are many), the x labels, the
// frame and the axis titles.
static void svg_axes(Text *svg, const SvgPlot *p) {
    int label_every = p->hi - p->lo > 10 ? 2 : 1;
    for (int decade = (int)p->lo; decade <= (int)p->hi; decade++) {
        double y = svg_y(p, decade);
        text_append(svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", SVG_LEFT, y,
                    SVG_LEFT + SVG_PLOT_W, y);
        if ((decade - (int)p->lo) % label_every == 0)
            text_append(svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", SVG_LEFT - 8, y + 4, decade);
    }
    int x_every = p->n_layers <= 32 ? 1 : (p->n_layers + 31) / 32;
    if (p->n_layers > 16 && x_every == 1) x_every = 2;
    for (int layer = 0; layer < p->n_layers; layer += x_every)
        text_append(svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", svg_x(p, layer),
                    SVG_TOP + SVG_PLOT_H + 18, layer);
    text_append(svg, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
                SVG_LEFT, SVG_TOP, SVG_PLOT_W, SVG_PLOT_H);
    text_append(svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">layer</text>\n", SVG_LEFT + SVG_PLOT_W / 2,
                SVG_HEIGHT - 16);
    text_append(svg, "<text transform=\"translate(22 %.1f) rotate(-90)\" text-anchor=\"middle\">error (log scale)</text>\n",
                SVG_TOP + SVG_PLOT_H / 2);
}

// The tolerances: dashed grey lines across the plot, labelled in the legend (one line when both are equal).
static void svg_tolerances(Text *svg, const CompareResult *result, SvgPlot *p) {
    double tol_rel = result->tol.max_rel_l2, tol_norm = result->tol.max_norm_max;
    char bound[32];
    int n_tolerances = tol_rel == tol_norm ? 1 : 2;
    for (int k = 0; k < n_tolerances; k++) {
        double tolerance = k == 0 ? tol_rel : tol_norm;
        const char *dash = k == 0 ? "6 4" : "2 3";
        const char *which = n_tolerances == 1 ? "rel_l2 and norm_max" : k == 0 ? "rel_l2" : "norm_max";
        double y_tol = svg_y(p, log10(tolerance));
        text_append(svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-width=\"1.5\" "
                         "stroke-dasharray=\"%s\"/>\n", SVG_LEFT, y_tol, SVG_LEFT + SVG_PLOT_W, y_tol, dash);
        format_bound(bound, sizeof bound, tolerance);
        text_append(svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-width=\"1.5\" "
                         "stroke-dasharray=\"%s\"/>\n", SVG_LEGEND_X, p->legend_y, SVG_LEGEND_X + 22, p->legend_y, dash);
        text_append(svg, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">tolerance %s (%s)</text>\n", SVG_LEGEND_X + 28,
                    p->legend_y + 4, bound, which);
        p->legend_y += SVG_LEGEND_ROW;
    }
}

// " stroke-dasharray=..." for a dashed series, "" for a solid one.
static void svg_dash_attribute(const SvgSeries *series, char *out, size_t size) {
    out[0] = '\0';
    if (series->dash[0]) snprintf(out, size, " stroke-dasharray=\"%s\"", series->dash);
}

// One series: a polyline and a marker per layer with data. Zero sits on the bottom axis,
// NaN/Inf/shape/missing on the top one.
static void svg_one_series(Text *svg, const SvgPlot *p, int s) {
    const double *values = &p->series[s * p->n_layers];
    int any = 0;
    for (int layer = 0; layer < p->n_layers; layer++) any |= values[layer] >= 0;
    if (!any) return;
    char dash[48];
    svg_dash_attribute(&SVG[s], dash, sizeof dash);
    text_append(svg, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s points=\"", SVG[s].color,
                SVG[s].width, dash);
    for (int layer = 0; layer < p->n_layers; layer++) {
        if (values[layer] < 0) continue;
        double v = values[layer];
        double log_value = v == 0 ? p->lo : isinf(v) ? p->hi : fmax(p->lo, log10(v));
        text_append(svg, "%.1f,%.1f ", svg_x(p, layer), svg_y(p, log_value));
    }
    text_append(svg, "\"/>\n");
    double r = SVG[s].tensor ? 2.0 : 3.0;
    for (int layer = 0; layer < p->n_layers; layer++) {
        if (values[layer] < 0) continue;
        double v = values[layer];
        double log_value = v == 0 ? p->lo : isinf(v) ? p->hi : fmax(p->lo, log10(v));
        if (SVG[s].square)
            text_append(svg, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                        svg_x(p, layer) - r, svg_y(p, log_value) - r, 2 * r, 2 * r, SVG[s].color);
        else
            text_append(svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", svg_x(p, layer),
                        svg_y(p, log_value), r, SVG[s].color);
    }
}

// The series legend rows in their fixed order (after the tolerance rows), then the notes on where
// zero and non-finite values are drawn, or that no layer was compared.
static void svg_legend(Text *svg, SvgPlot *p) {
    for (int s = 0; s < SVG_SERIES; s++) {
        char dash[48];
        svg_dash_attribute(&SVG[s], dash, sizeof dash);
        text_append(svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n",
                    SVG_LEGEND_X, p->legend_y, SVG_LEGEND_X + 22, p->legend_y, SVG[s].color, dash);
        text_append(svg, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", SVG_LEGEND_X + 28, p->legend_y + 4, SVG[s].label);
        p->legend_y += SVG_LEGEND_ROW;
    }
    p->legend_y += 6;
    if (p->has_zero) {
        text_append(svg, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">0 drawn on the bottom axis</text>\n", SVG_LEGEND_X,
                    p->legend_y);
        p->legend_y += SVG_LEGEND_ROW;
    }
    if (p->has_infinite)
        text_append(svg, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#c0392b\">NaN/Inf/shape/missing: top axis</text>\n",
                    SVG_LEGEND_X, p->legend_y);
    if (p->n_layers == 0)
        text_append(svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no layer tensors compared</text>\n",
                    SVG_LEFT + SVG_PLOT_W / 2, SVG_TOP + SVG_PLOT_H / 2);
}

static int build_svg(const CompareResult *result, Text *svg) {
    double *series = svg_collect_series(result);
    if (!series) return -1;
    SvgPlot plot = {.n_layers = result->n_layers, .series = series, .legend_y = SVG_TOP + 12};
    svg_y_range(result, &plot);
    svg_title(svg, result);
    svg_axes(svg, &plot);
    svg_tolerances(svg, result, &plot);
    // The chosen tensors first, the worst-tensor lines last so they are drawn on top of one they coincide with.
    for (int k = 0; k < SVG_SERIES; k++) svg_one_series(svg, &plot, (k + 2) % SVG_SERIES);
    svg_legend(svg, &plot);
    text_append(svg, "</svg>\n");
    free(series);
    return svg->failed ? -1 : 0;
}

static int write_report_file(const char *dir, const char *name, const char *data, size_t length, ErrorMessage *err) {
    char path[FILE_PATH_BYTES];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return fail(err, "%s: path too long", dir);
    return write_file_atomically(path, data, length, err);
}

// dir/name from a builder; `what` names the output in the out-of-memory message.
static int write_built(const CompareResult *result, const char *dir, const char *name,
                       int (*build)(const CompareResult *, Text *), const char *what, ErrorMessage *err) {
    Text text = {0};
    int status = build(result, &text) ? fail(err, "%s/%s: out of memory building the %s", dir, name, what)
                                      : write_report_file(dir, name, text.data, text.length, err);
    free(text.data);
    return status;
}

int report_write(const CompareResult *result, const char *dir, ErrorMessage *err) {
    if (make_directories(dir, err)) return -1;
    char *json = report_json_text(result);
    if (!json) return fail(err, "%s/accuracy.json: out of memory building the report", dir);
    int status = write_report_file(dir, "accuracy.json", json, strlen(json), err);
    free(json);
    if (status) return -1;
    if (write_built(result, dir, "accuracy.md", build_markdown, "report", err)) return -1;
    return write_built(result, dir, "error_by_layer.svg", build_svg, "plot", err);
}
