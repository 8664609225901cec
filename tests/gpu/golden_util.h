// GPU tests' golden helpers: making a reference golden in-process (the same stepping as `fusecheck
// golden`: step 0 the prompt, then one teacher-forced token per step), running a GPU engine over a
// golden's tokens into a trace, and comparing two traces tensor by tensor.
#ifndef FUSECHECK_GOLDEN_UTIL_H
#define FUSECHECK_GOLDEN_UTIL_H

#include <stdio.h>
#include <string.h>

#include "../../model/checkpoint.h"
#include "../../reference/reference.h"
#include "gpu_test_util.h"

static inline void fill_meta(TraceMeta *meta, const Checkpoint *ck, const char *producer, KvDtype kv, int prompt_length) {
    memset(meta, 0, sizeof *meta);
    snprintf(meta->producer, sizeof meta->producer, "%s", producer);
    snprintf(meta->kv_dtype, sizeof meta->kv_dtype, "%s", kv_dtype_name(kv));
    snprintf(meta->weights_dtype, sizeof meta->weights_dtype, "bf16");
    snprintf(meta->weights_fingerprint, sizeof meta->weights_fingerprint, "%s", ck->fingerprint);
    snprintf(meta->tool_version, sizeof meta->tool_version, "gpu-test");
    meta->prompt_length = prompt_length;
    meta->model_config = config_to_json(&ck->config);
    cr_assert_not_null(meta->model_config);
}

typedef int (*StepForward)(void *engine, const int32_t *tokens, int n_tokens, int position, TraceWriter *trace,
                           int32_t *next_token, ErrorMessage *err);

static inline int reference_step(void *e, const int32_t *t, int n, int p, TraceWriter *tr, int32_t *next, ErrorMessage *err) {
    return reference_forward(e, t, n, p, tr, next, err);
}
static inline int gpu_step(void *e, const int32_t *t, int n, int p, TraceWriter *tr, int32_t *next, ErrorMessage *err) {
    return gpu_engine_forward(e, t, n, p, tr, next, err);
}

// Runs steps over tokens (prompt_length + n_decode entries; when greedy, the continuation is written
// into tokens) and writes a trace at path.
static inline void traced_run(void *engine, StepForward forward, const Checkpoint *ck, const char *producer, KvDtype kv,
                              int32_t *tokens, int prompt_length, int n_decode, int greedy, const char *path) {
    TraceMeta meta;
    fill_meta(&meta, ck, producer, kv, prompt_length);
    ErrorMessage err;
    TraceWriter *w = trace_writer_open(path, &meta, &err);
    free(meta.model_config);
    cr_assert_not_null(w, "%s", err.text);
    for (int step = 0; step <= n_decode; step++) {
        int first = step == 0 ? 0 : prompt_length + step - 1, n = step == 0 ? prompt_length : 1;
        int32_t next;
        cr_assert_eq(trace_begin_step(w, step, first, n, &err), 0, "%s", err.text);
        cr_assert_eq(forward(engine, tokens + first, n, first, w, &next, &err), 0, "%s step %d: %s", producer, step, err.text);
        cr_assert_eq(trace_write_next_token(w, next, &err), 0, "%s", err.text);
        if (greedy && step < n_decode) tokens[prompt_length + step] = next;
    }
    cr_assert_eq(trace_write_tokens(w, tokens, prompt_length + n_decode, &err), 0, "%s", err.text);
    cr_assert_eq(trace_writer_close(w, &err), 0, "%s", err.text);
}

// The reference's golden for `ck`: seeded prompt, greedy continuation. tokens: prompt_length + n_decode.
static inline void make_reference_golden(const Checkpoint *ck, KvDtype kv, int32_t *tokens, int prompt_length,
                                         int n_decode, const char *path) {
    ErrorMessage err;
    uint64_t state = 12345;
    for (int i = 0; i < prompt_length; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((state >> 33) % (uint64_t)ck->config.vocab_size);
    }
    Reference *ref = reference_create(ck, kv, prompt_length + n_decode, 0, &err);
    cr_assert_not_null(ref, "%s", err.text);
    traced_run(ref, reference_step, ck, "reference", kv, tokens, prompt_length, n_decode, 1, path);
    reference_destroy(ref);
}

typedef struct {
    double worst_rel_l2, worst_norm_max;
    char worst_where[160];
    int n_compared;
} TraceDiff;

static inline void compare_one(const TraceReader *a, const TraceReader *b, int step, int layer, const char *name,
                               TraceDiff *diff, double tol) {
    float *fa, *fb;
    int ra, ca, rb, cb;
    ErrorMessage err;
    cr_assert_eq(trace_read_tensor(a, step, layer, name, &fa, &ra, &ca, &err), 0, "%s", err.text);
    cr_assert_eq(trace_read_tensor(b, step, layer, name, &fb, &rb, &cb, &err), 0, "%s", err.text);
    cr_assert(ra == rb && ca == cb, "step %d layer %d %s: shapes [%d,%d] vs [%d,%d]", step, layer, name, ra, ca, rb, cb);
    size_t n = (size_t)ra * ca;
    double *ref = malloc(n * sizeof(double));
    cr_assert_not_null(ref);
    for (size_t i = 0; i < n; i++) ref[i] = fb[i];
    ErrorStats s = error_stats(fa, ref, n);
    cr_assert_eq(s.non_finite, 0, "step %d layer %d %s: %ld non-finite values", step, layer, name, s.non_finite);
    if (s.rel_l2 > diff->worst_rel_l2 || s.norm_max > diff->worst_norm_max) {
        if (s.rel_l2 > diff->worst_rel_l2) diff->worst_rel_l2 = s.rel_l2;
        if (s.norm_max > diff->worst_norm_max) diff->worst_norm_max = s.norm_max;
        snprintf(diff->worst_where, sizeof diff->worst_where, "step %d layer %d %s (rel_l2 %.3g norm_max %.3g)", step,
                 layer, name, s.rel_l2, s.norm_max);
    }
    if (tol > 0)
        cr_assert(s.rel_l2 <= tol && s.norm_max <= tol, "step %d layer %d %s: rel_l2 %.3g norm_max %.3g > %.1g", step,
                  layer, name, s.rel_l2, s.norm_max, tol);
    diff->n_compared++;
    free(fa); free(fb); free(ref);
}

// Compares every tensor of trace a (the engine) with trace b (the golden). tol <= 0: measure only.
static inline TraceDiff compare_traces(const char *path_a, const char *path_b, double tol) {
    ErrorMessage err;
    TraceReader *a = trace_open(path_a, &err);
    cr_assert_not_null(a, "%s", err.text);
    TraceReader *b = trace_open(path_b, &err);
    cr_assert_not_null(b, "%s", err.text);
    TraceDiff diff = {0, 0, "", 0};
    cr_assert_eq(trace_n_steps(a), trace_n_steps(b));
    for (int s = 0; s < trace_n_steps(b); s++) {
        compare_one(a, b, s, -1, "embed", &diff, tol);
        for (int l = 0; l < trace_n_layers(b, s); l++)
            for (int i = 0; i < TRACE_N_LAYER_TENSORS; i++) compare_one(a, b, s, l, TRACE_LAYER_TENSORS[i], &diff, tol);
        compare_one(a, b, s, -1, "final_norm", &diff, tol);
        compare_one(a, b, s, -1, "logits", &diff, tol);
    }
    trace_close(a);
    trace_close(b);
    return diff;
}

#endif
