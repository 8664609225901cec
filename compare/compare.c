// Compares two traces: refuses what cannot be compared, then walks both in forward order. Everything
// the reference holds in the compared steps is evidence the trace under test must hold too: a tensor,
// a layer group or a step it lacks fails as missing, unless it declares the name omitted (format
// version 2) or --allow-missing excuses it, and neither may excuse a contract checkpoint.
#include "compare.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/config.h"

// ---------------------------------------------------------------------------------------------------
// small helpers

static char *copy_string(const char *s) {
    if (!s) s = "";
    size_t length = strlen(s) + 1;
    char *copy = malloc(length);
    if (copy) memcpy(copy, s, length);
    return copy;
}

static int contains_name(char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

static int contains_list(const char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

// Adds name to a set of distinct names (kept in first-seen order, which is forward order).
static int add_distinct_name(char ***names, int *n, const char *name, ErrorMessage *err) {
    if (contains_name(*names, *n, name)) return 0;
    char **grown = realloc(*names, (size_t)(*n + 1) * sizeof **names);
    if (!grown) return fail(err, "compare: out of memory");
    *names = grown;
    if (!(grown[*n] = copy_string(name))) return fail(err, "compare: out of memory");
    (*n)++;
    return 0;
}

// "gate, up, act" into out.
static void join_names(char *const *names, int n, char *out, size_t size) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", names[i]);
}

static void add_note(CompareResult *result, const char *format, ...) {
    if (result->n_notes >= COMPARE_MAX_NOTES) return;
    va_list args;
    va_start(args, format);
    vsnprintf(result->notes[result->n_notes++], sizeof result->notes[0], format, args);
    va_end(args);
}

static TensorResult *append_result(CompareResult *result, size_t *capacity, ErrorMessage *err) {
    if (result->n_results == *capacity) {
        size_t grown_capacity = *capacity ? 2 * *capacity : 256;
        TensorResult *grown = realloc(result->results, grown_capacity * sizeof *grown);
        if (!grown) {
            fail(err, "compare: out of memory for %zu results", grown_capacity);
            return NULL;
        }
        result->results = grown;
        *capacity = grown_capacity;
    }
    TensorResult *t = &result->results[result->n_results++];
    memset(t, 0, sizeof *t);
    return t;
}

void compare_describe_location(const TensorResult *t, char *out, size_t size) {
    if (t->layer == COMPARE_STEP_LEVEL) snprintf(out, size, "step %d tensor %s", t->step, t->name);
    else snprintf(out, size, "step %d layer %d tensor %s", t->step, t->layer, t->name);
}

// ---------------------------------------------------------------------------------------------------
// options

// --allow-missing names (the policy refuses the contract's checkpoints and unknown names) and the
// --steps range, checked before any file is opened. The allowed names are copied into the result.
static int take_options(const CompareOptions *options, CompareResult *result, ErrorMessage *err) {
    if (options->n_allow_missing < 0 || (options->n_allow_missing > 0 && !options->allow_missing))
        return fail(err, "compare: bad allow_missing list");
    for (int i = 0; i < options->n_allow_missing; i++) {
        char why[256];
        if (trace_check_omittable(options->allow_missing[i], why, sizeof why) < 0)
            return fail(err, "--allow-missing: %s", why);
        if (add_distinct_name(&result->allowed_missing, &result->n_allowed_missing, options->allow_missing[i], err))
            return -1;
    }
    int first = options->first_step, last = options->last_step;
    if ((first == COMPARE_ALL_STEPS) != (last == COMPARE_ALL_STEPS) ||
        (first != COMPARE_ALL_STEPS && (first < 0 || last < first)))
        return fail(err, "--steps %d..%d: expected A..B with 0 <= A <= B", first, last);
    return 0;
}

static int allowed_missing(const CompareResult *result, const char *name) {
    return contains_name(result->allowed_missing, result->n_allowed_missing, name);
}

// ---------------------------------------------------------------------------------------------------
// refusing what cannot be compared

static int summarize(const TraceReader *reader, TraceSummary *summary, ErrorMessage *err) {
    snprintf(summary->path, sizeof summary->path, "%s", trace_path(reader));
    summary->meta = *trace_meta(reader);
    summary->meta.model_config = copy_string(trace_meta(reader)->model_config);
    if (!summary->meta.model_config) return fail(err, "%s: out of memory", summary->path);
    summary->n_steps = trace_n_steps(reader);
    trace_tokens(reader, &summary->n_tokens);
    summary->n_layers = summary->n_steps > 0 ? trace_n_layers(reader, 0) : 0;
    return 0;
}

// Two configs are the same model when they parse to equal ModelConfigs (formatting and key order may
// differ between producers, e.g. h5py's oracle); text that does not parse must then match exactly.
static int same_model_config(const char *a, const char *b) {
    ModelConfig config_a, config_b;
    ErrorMessage ignored;
    if (config_parse(a, "A", &config_a, &ignored) == 0 && config_parse(b, "B", &config_b, &ignored) == 0)
        return config_equal(&config_a, &config_b);
    return !strcmp(a, b);
}

// Which steps are compared: --steps A..B (the reference must hold them all; steps the trace under test
// lacks are missing evidence), or every step either trace holds. Different step counts without --steps
// fail: steps only the reference holds are missing, steps only the trace under test holds are unchecked.
static int choose_steps(const CompareOptions *options, CompareResult *result, ErrorMessage *err) {
    int n_a = result->a.n_steps, n_b = result->b.n_steps;
    if (options->first_step != COMPARE_ALL_STEPS) {
        if (options->last_step >= n_b)
            return fail(err, "%s: --steps %d..%d asks for step %d, but the reference holds steps 0..%d", result->b.path,
                        options->first_step, options->last_step, options->last_step, n_b - 1);
        result->first_step = options->first_step;
        result->n_steps = options->last_step - options->first_step + 1;
        add_note(result, "narrowed on purpose: --steps %d..%d compares steps %d..%d only (under test holds steps 0..%d, "
                 "reference 0..%d)", options->first_step, options->last_step, options->first_step, options->last_step,
                 n_a - 1, n_b - 1);
        return 0;
    }
    result->first_step = 0;
    result->n_steps = n_a > n_b ? n_a : n_b;
    int common = n_a < n_b ? n_a : n_b;
    if (n_a < n_b)
        add_note(result, "step counts differ (under test %d, reference %d): steps %d..%d are missing in the trace under "
                 "test and fail; --steps 0..%d compares the common steps on purpose", n_a, n_b, common, n_b - 1,
                 common - 1);
    else if (n_a > n_b)
        add_note(result, "step counts differ (under test %d, reference %d): steps %d..%d have no reference to check them "
                 "and fail; --steps 0..%d compares the common steps on purpose", n_a, n_b, common, n_a - 1, common - 1);
    return 0;
}

static int check_comparable(const TraceReader *ra, const TraceReader *rb, const CompareOptions *options,
                            CompareResult *result, ErrorMessage *err) {
    const char *pa = result->a.path, *pb = result->b.path;
    const TraceMeta *ma = &result->a.meta, *mb = &result->b.meta;
    if (strcmp(ma->weights_fingerprint, mb->weights_fingerprint))
        return fail(err, "%s vs %s: weights fingerprints differ (%s vs %s): traces of different weights cannot be compared",
                    pa, pb, ma->weights_fingerprint, mb->weights_fingerprint);
    if (!same_model_config(ma->model_config, mb->model_config))
        return fail(err, "%s vs %s: model_config differs: traces of different models cannot be compared", pa, pb);

    int n_tokens_a, n_tokens_b;
    const int32_t *tokens_a = trace_tokens(ra, &n_tokens_a);
    const int32_t *tokens_b = trace_tokens(rb, &n_tokens_b);
    result->n_tokens = n_tokens_a < n_tokens_b ? n_tokens_a : n_tokens_b;
    for (int i = 0; i < result->n_tokens; i++)
        if (tokens_a[i] != tokens_b[i])
            return fail(err, "%s vs %s: tokens differ at position %d (%d vs %d): the teacher-forced sequences must match",
                        pa, pb, i, (int)tokens_a[i], (int)tokens_b[i]);
    if (ma->prompt_length != mb->prompt_length)
        return fail(err, "%s vs %s: prompt lengths differ (%d vs %d): step 0 covers different tokens", pa, pb,
                    ma->prompt_length, mb->prompt_length);

    if (choose_steps(options, result, err)) return -1;
    result->step_first_position = calloc((size_t)result->n_steps + 1, sizeof(int));
    result->step_n_tokens = calloc((size_t)result->n_steps + 1, sizeof(int));
    if (!result->step_first_position || !result->step_n_tokens) return fail(err, "compare: out of memory");
    for (int i = 0; i < result->n_steps; i++) {
        int step = result->first_step + i;
        int in_a = step < result->a.n_steps, in_b = step < result->b.n_steps;
        int first_a = 0, n_a = 0, first_b = 0, n_b = 0;
        if (in_a && trace_step_info(ra, step, &first_a, &n_a, err)) return -1;
        if (in_b && trace_step_info(rb, step, &first_b, &n_b, err)) return -1;
        if (in_a && in_b && (first_a != first_b || n_a != n_b))
            return fail(err, "%s vs %s: step %d covers positions %d..%d vs %d..%d: the step layouts must match", pa, pb,
                        step, first_a, first_a + n_a - 1, first_b, first_b + n_b - 1);
        result->step_first_position[i] = in_b ? first_b : first_a;
        result->step_n_tokens[i] = in_b ? n_b : n_a;
    }

    if (strcmp(ma->kv_dtype, mb->kv_dtype) || strcmp(ma->weights_dtype, mb->weights_dtype)) {
        result->profiles_differ = 1;
        add_note(result, "precision profiles differ (under test kv %s, weights %s; reference kv %s, weights %s): errors "
                 "include the storage points' cost", ma->kv_dtype, ma->weights_dtype, mb->kv_dtype, mb->weights_dtype);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------------
// comparing one tensor

static int compare_tensor(const TraceReader *ra, const TraceReader *rb, TensorResult *t, const Tolerances *tol,
                          ErrorMessage *err) {
    float *fa = NULL, *fb = NULL;
    if (trace_read_tensor(ra, t->step, t->layer, t->name, &fa, &t->rows_a, &t->cols_a, err)) return -1;
    if (trace_read_tensor(rb, t->step, t->layer, t->name, &fb, &t->rows_b, &t->cols_b, err)) {
        free(fa);
        return -1;
    }
    if (t->rows_a != t->rows_b || t->cols_a != t->cols_b) {
        t->shape_mismatch = 1;
        t->pass = 0;
        snprintf(t->why, sizeof t->why, "shape [%d, %d] vs reference [%d, %d]", t->rows_a, t->cols_a, t->rows_b,
                 t->cols_b);
    } else {
        size_t n = (size_t)t->rows_a * (size_t)t->cols_a;
        metrics_compute(fa, fb, n, tol, &t->metrics);
        if (!strcmp(t->name, "logits") && t->layer == COMPARE_STEP_LEVEL && n > 0)
            metrics_top1(fa, fb, t->rows_a, t->cols_a, &t->metrics);
        t->pass = metrics_pass(&t->metrics, tol, t->why, sizeof t->why);
        if (t->pass && t->metrics.has_top1 && t->metrics.top1_mismatches)
            snprintf(t->why, sizeof t->why, "top-1 %ld vs reference %ld is a near-tie (margin %.2e <= 2*max_abs %.2e)",
                     t->metrics.top1_f, t->metrics.top1_r, t->metrics.top1_margin, 2.0 * t->metrics.max_abs);
    }
    free(fa);
    free(fb);
    return 0;
}

// The under-test token must be an argmax of its own logits (FORMAT.md: next_token is the argmax of
// logits): an engine whose argmax kernel is wrong would otherwise hide behind logits that are right.
// Checked by value, not index, so an exact tie between two logits never fails.
static int token_is_own_argmax(const TraceReader *ra, int step, int32_t token, char *why, size_t why_size,
                               ErrorMessage *err) {
    if (!trace_has_tensor(ra, step, COMPARE_STEP_LEVEL, "logits")) return 1;  // declared omitted: nothing to check
    float *logits = NULL;
    int rows, cols;
    if (trace_read_tensor(ra, step, COMPARE_STEP_LEVEL, "logits", &logits, &rows, &cols, err)) return -1;
    int ok = 1;
    if (rows == 1 && cols > 0) {
        float best = logits[0];
        for (int i = 1; i < cols; i++)
            if (logits[i] > best) best = logits[i];
        if (token < 0 || token >= cols) {
            ok = 0;
            snprintf(why, why_size, "token %d is outside its own logits [0, %d)", (int)token, cols);
        } else if (!(logits[token] >= best)) {
            ok = 0;
            snprintf(why, why_size, "token %d is not the argmax of its own logits (logit %.6g < max %.6g)",
                     (int)token, (double)logits[token], (double)best);
        }
    }
    free(logits);
    return ok;
}

// next_token is the argmax of logits. The under-test token must be the argmax of its own logits. A
// token differing from the reference's passes only as a near-tie: the logits are within tolerance and
// the reference's top-2 margin is within the flip those errors allow (2*max_abs); otherwise it fails.
static int compare_next_token(const TraceReader *ra, const TraceReader *rb, TensorResult *t,
                              const TensorResult *logits, ErrorMessage *err) {
    t->is_token = 1;
    t->rows_a = t->cols_a = t->rows_b = t->cols_b = 1;
    if (trace_read_next_token(ra, t->step, &t->token_a, err)) return -1;
    if (trace_read_next_token(rb, t->step, &t->token_b, err)) return -1;
    int own = token_is_own_argmax(ra, t->step, t->token_a, t->why, sizeof t->why, err);
    if (own < 0) return -1;
    if (!own) {
        t->pass = 0;
    } else if (t->token_a == t->token_b) {
        t->pass = 1;
    } else if (logits && logits->pass && !logits->shape_mismatch && !logits->missing && logits->metrics.has_top1 &&
               !logits->metrics.top1_disagreements) {
        t->pass = 1;
        snprintf(t->why, sizeof t->why, "token %d vs reference %d: near-tie in logits (margin %.2e <= 2*max_abs %.2e)",
                 (int)t->token_a, (int)t->token_b, logits->metrics.top1_margin, 2.0 * logits->metrics.max_abs);
    } else {
        t->pass = 0;
        snprintf(t->why, sizeof t->why, "token %d vs reference %d%s", (int)t->token_a, (int)t->token_b,
                 logits && !logits->pass ? " (the logits fail too)" : "");
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------------
// walking the traces in forward order

typedef struct {
    TraceReader *ra, *rb;
    CompareResult *result;
    size_t capacity;           // of result->results
    size_t n_declared_skipped; // reference tensors the trace under test lacks and declares omitted
    size_t n_allowed_skipped;  // ... and --allow-missing excuses
} Walk;

typedef struct {
    char **names;
    int n;
} NameList;

static void free_name_list(NameList *list) {
    if (list->names) trace_free_names(list->names, list->n);
    list->names = NULL;
    list->n = 0;
}

static int in_list(const NameList *list, const char *name) { return contains_name(list->names, list->n, name); }

static int is_layer_group_name(const char *name) { return !strncmp(name, "layer_", 6); }

// A reference tensor the trace under test lacks: excused when declared omitted or allowed missing,
// otherwise a failing result. `context` says why it is absent (a whole group or step), or "".
static int visit_missing(Walk *walk, int step, int layer, const char *name, const char *context, ErrorMessage *err) {
    CompareResult *result = walk->result;
    if (trace_meta_omits(&result->a.meta, name)) {
        walk->n_declared_skipped++;
        return 0;
    }
    if (allowed_missing(result, name)) {
        walk->n_allowed_skipped++;
        return 0;
    }
    TensorResult *t = append_result(result, &walk->capacity, err);
    if (!t) return -1;
    t->step = step;
    t->layer = layer;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->missing = 1;
    t->pass = 0;
    snprintf(t->why, sizeof t->why, "missing in the trace under test%s", context);
    return 0;
}

// Compares one named tensor if both sides have it; one the reference has and the trace under test
// lacks is missing; one only the trace under test has is listed. `context` is non-empty when the
// trace under test lacks the whole layer group or step (then listed as such, not name by name).
static int visit_name(Walk *walk, int step, int layer, const char *name, int in_a, int in_b, const char *context,
                      ErrorMessage *err) {
    CompareResult *result = walk->result;
    if (!in_a && !in_b) return 0;
    if (!in_b) return add_distinct_name(&result->only_a, &result->n_only_a, name, err);
    if (!in_a) {
        if (!*context && add_distinct_name(&result->only_b, &result->n_only_b, name, err)) return -1;
        return visit_missing(walk, step, layer, name, context, err);
    }

    // The logits of this step, if compared already (next_token's near-tie rule needs them). An index,
    // not a pointer: append_result may move the results.
    long logits_index = -1;
    if (!strcmp(name, "next_token"))
        for (size_t i = result->n_results; i-- > 0 && result->results[i].step == step && logits_index < 0;)
            if (result->results[i].layer == COMPARE_STEP_LEVEL && !strcmp(result->results[i].name, "logits"))
                logits_index = (long)i;

    TensorResult *t = append_result(result, &walk->capacity, err);
    if (!t) return -1;
    t->step = step;
    t->layer = layer;
    snprintf(t->name, sizeof t->name, "%s", name);
    if (layer == COMPARE_STEP_LEVEL && !strcmp(name, "next_token"))
        return compare_next_token(walk->ra, walk->rb, t, logits_index >= 0 ? &result->results[logits_index] : NULL, err);
    return compare_tensor(walk->ra, walk->rb, t, &result->tol, err);
}

// Visits names in forward order: first those of `order`, then any other name either side has, sorted
// (trace_list_tensors sorts), skipping layer groups and the names in `skip` (visited elsewhere).
static int visit_group(Walk *walk, int step, int layer, const char *const *order, int n_order, const char *const *skip,
                       int n_skip, const NameList *list_a, const NameList *list_b, const char *context,
                       ErrorMessage *err) {
    for (int i = 0; i < n_order; i++)
        if (visit_name(walk, step, layer, order[i], in_list(list_a, order[i]), in_list(list_b, order[i]), context, err))
            return -1;
    const NameList *lists[2] = {list_a, list_b};
    for (int side = 0; side < 2; side++) {
        for (int i = 0; i < lists[side]->n; i++) {
            const char *name = lists[side]->names[i];
            if (is_layer_group_name(name)) continue;
            if (contains_list(order, n_order, name) || contains_list(skip, n_skip, name)) continue;
            // A name both sides have is visited once, from A's list.
            if (side == 1 && contains_name(list_a->names, list_a->n, name)) continue;
            if (visit_name(walk, step, layer, name, in_list(list_a, name), in_list(list_b, name), context, err))
                return -1;
        }
    }
    return 0;
}

// A step only the trace under test holds: nothing can check it, so it fails (one result for the step).
static int visit_unchecked_step(Walk *walk, int step, ErrorMessage *err) {
    CompareResult *result = walk->result;
    char group[32];
    snprintf(group, sizeof group, "step_%04d", step);
    if (add_distinct_name(&result->only_a, &result->n_only_a, group, err)) return -1;
    TensorResult *t = append_result(result, &walk->capacity, err);
    if (!t) return -1;
    t->step = step;
    t->layer = COMPARE_STEP_LEVEL;
    snprintf(t->name, sizeof t->name, "%s", group);
    t->pass = 0;
    snprintf(t->why, sizeof t->why, "only in the trace under test: the reference holds %d steps, nothing checks this one",
             result->b.n_steps);
    return 0;
}

static int compare_step(Walk *walk, int step, ErrorMessage *err) {
    static const char *const head[] = {"embed", "next_token"};  // [1]: visited last, with its own reader
    static const char *const tail[] = {"final_norm", "logits"};
    CompareResult *result = walk->result;
    const TraceReader *ra = walk->ra, *rb = walk->rb;
    int in_a = step < result->a.n_steps;
    if (step >= result->b.n_steps) return visit_unchecked_step(walk, step, err);

    // The context of what the trace under test lacks wholesale: the step, or (below) a layer group.
    char step_context[96] = "";
    if (!in_a) {
        snprintf(step_context, sizeof step_context, " (it holds %d steps, no step_%04d)", result->a.n_steps, step);
        char group[32];
        snprintf(group, sizeof group, "step_%04d", step);
        if (add_distinct_name(&result->only_b, &result->n_only_b, group, err)) return -1;
    }
    NameList step_a = {0}, step_b = {0}, layer_a = {0}, layer_b = {0};
    int status = -1;
    if (in_a && trace_list_tensors(ra, step, COMPARE_STEP_LEVEL, &step_a.names, &step_a.n, err)) goto done;
    if (trace_list_tensors(rb, step, COMPARE_STEP_LEVEL, &step_b.names, &step_b.n, err)) goto done;

    if (visit_name(walk, step, COMPARE_STEP_LEVEL, head[0], in_list(&step_a, head[0]), in_list(&step_b, head[0]),
                   step_context, err))
        goto done;

    int n_layers_a = in_a ? trace_n_layers(ra, step) : 0, n_layers_b = trace_n_layers(rb, step);
    int n_layers = n_layers_a > n_layers_b ? n_layers_a : n_layers_b;
    for (int layer = 0; layer < n_layers; layer++) {
        char group[32];
        snprintf(group, sizeof group, "layer_%02d", layer);
        if (layer >= n_layers_b) {  // a whole layer only the trace under test has
            if (add_distinct_name(&result->only_a, &result->n_only_a, group, err)) goto done;
            continue;
        }
        char layer_context[96];
        snprintf(layer_context, sizeof layer_context, "%s", step_context);
        if (in_a && layer >= n_layers_a) {  // a whole layer group the trace under test lacks
            snprintf(layer_context, sizeof layer_context, " (no group %s in the step)", group);
            if (add_distinct_name(&result->only_b, &result->n_only_b, group, err)) goto done;
        }
        if (in_a && layer < n_layers_a && trace_list_tensors(ra, step, layer, &layer_a.names, &layer_a.n, err)) goto done;
        if (trace_list_tensors(rb, step, layer, &layer_b.names, &layer_b.n, err)) goto done;
        if (visit_group(walk, step, layer, TRACE_LAYER_TENSORS, TRACE_N_LAYER_TENSORS, NULL, 0, &layer_a, &layer_b,
                        layer_context, err))
            goto done;
        free_name_list(&layer_a);
        free_name_list(&layer_b);
    }

    if (visit_group(walk, step, COMPARE_STEP_LEVEL, tail, 2, head, 2, &step_a, &step_b, step_context, err)) goto done;
    // next_token is an int32 with its own reader; trace_list_tensors lists float tensors only.
    if (visit_name(walk, step, COMPARE_STEP_LEVEL, "next_token", trace_has_tensor(ra, step, COMPARE_STEP_LEVEL, "next_token"),
                   trace_has_tensor(rb, step, COMPARE_STEP_LEVEL, "next_token"), step_context, err))
        goto done;
    status = 0;
done:
    free_name_list(&step_a);
    free_name_list(&step_b);
    free_name_list(&layer_a);
    free_name_list(&layer_b);
    return status;
}

// First failure in forward order, worst tensor by rank (tokens and missing tensors have no metrics),
// counts, the layers the results span, verdict.
static void summarize_results(CompareResult *result) {
    result->first_failure = -1;
    result->worst = -1;
    result->n_failures = 0;
    result->n_missing = 0;
    result->n_layers = 0;
    double worst_rank = -1.0;
    for (size_t i = 0; i < result->n_results; i++) {
        const TensorResult *t = &result->results[i];
        if (!t->pass) {
            result->n_failures++;
            if (result->first_failure < 0) result->first_failure = (long)i;
        }
        if (t->missing) result->n_missing++;
        if (t->layer + 1 > result->n_layers) result->n_layers = t->layer + 1;
        if (t->is_token || t->missing) continue;
        if (!t->shape_mismatch && t->metrics.n == 0) continue;  // a step nothing checks (visit_unchecked_step)
        double rank = t->shape_mismatch ? INFINITY : metrics_rank(&t->metrics);
        if (rank > worst_rank) {
            worst_rank = rank;
            result->worst = (long)i;
        }
    }
    result->pass = result->n_failures == 0;
}

// What the reader must know about evidence: what was declared or allowed missing, and what is missing.
static int note_evidence(const Walk *walk, ErrorMessage *err) {
    CompareResult *result = walk->result;
    const TraceMeta *ma = &result->a.meta;
    for (int i = 0; i < ma->n_omitted; i++)
        if (add_distinct_name(&result->declared_omitted, &result->n_declared_omitted, ma->omitted[i], err)) return -1;
    char names[512];
    if (result->n_declared_omitted) {
        join_names(result->declared_omitted, result->n_declared_omitted, names, sizeof names);
        add_note(result, "declared omitted by the trace under test (it never materialises them): %s; %zu reference "
                 "%s it lacks %s not compared", names, walk->n_declared_skipped,
                 walk->n_declared_skipped == 1 ? "tensor" : "tensors", walk->n_declared_skipped == 1 ? "is" : "are");
    }
    if (result->n_allowed_missing) {
        join_names(result->allowed_missing, result->n_allowed_missing, names, sizeof names);
        add_note(result, "narrowed on purpose: --allow-missing %s; %zu reference %s the trace under test lacks %s "
                 "not compared", names, walk->n_allowed_skipped, walk->n_allowed_skipped == 1 ? "tensor" : "tensors",
                 walk->n_allowed_skipped == 1 ? "is" : "are");
    }
    if (result->n_missing) {
        char first[160] = "";
        for (size_t i = 0; i < result->n_results && !first[0]; i++)
            if (result->results[i].missing) compare_describe_location(&result->results[i], first, sizeof first);
        add_note(result, "missing evidence: %zu reference %s missing in the trace under test and fail (first: %s)",
                 result->n_missing, result->n_missing == 1 ? "tensor is" : "tensors are", first);
    }
    return 0;
}

CompareOptions compare_options_default(void) {
    CompareOptions options = {0};
    options.tol = tolerances_default();
    options.first_step = options.last_step = COMPARE_ALL_STEPS;
    return options;
}

int compare_traces(const char *path_a, const char *path_b, const CompareOptions *options, CompareResult *result,
                   ErrorMessage *err) {
    memset(result, 0, sizeof *result);
    result->tol = options->tol;
    result->first_failure = result->worst = -1;
    Walk walk = {.result = result};
    int status = -1;
    if (take_options(options, result, err)) goto done;
    if (!(walk.ra = trace_open(path_a, err))) goto done;
    if (!(walk.rb = trace_open(path_b, err))) goto done;
    if (summarize(walk.ra, &result->a, err) || summarize(walk.rb, &result->b, err)) goto done;
    if (check_comparable(walk.ra, walk.rb, options, result, err)) goto done;
    for (int i = 0; i < result->n_steps; i++)
        if (compare_step(&walk, result->first_step + i, err)) goto done;
    if (result->n_results == 0) {
        fail(err, "%s vs %s: no tensor in common to compare", path_a, path_b);
        goto done;
    }
    summarize_results(result);
    if (note_evidence(&walk, err)) goto done;
    status = 0;
done:
    trace_close(walk.ra);
    trace_close(walk.rb);
    return status;
}

void compare_result_free(CompareResult *result) {
    free(result->a.meta.model_config);
    free(result->b.meta.model_config);
    free(result->results);
    free(result->step_first_position);
    free(result->step_n_tokens);
    free_names(result->only_a, result->n_only_a);
    free_names(result->only_b, result->n_only_b);
    free_names(result->declared_omitted, result->n_declared_omitted);
    free_names(result->allowed_missing, result->n_allowed_missing);
    memset(result, 0, sizeof *result);
}
