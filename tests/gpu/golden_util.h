// GPU tests' golden helpers, built on the project's own pieces: golden/trace_run.h steps every engine
// the same way, fused/golden_run.h storage-forces a GPU run from a golden, compare/compare.h judges.
#ifndef FUSECHECK_GOLDEN_UTIL_H
#define FUSECHECK_GOLDEN_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../compare/compare.h"
#include "../../fused/golden_run.h"
#include "../../golden/trace_run.h"
#include "../../model/checkpoint.h"
#include "../../reference/reference.h"
#include "gpu_test_util.h"

// Runs `engine` over tokens (prompt_length + n_decode entries; when greedy, the continuation is
// written into tokens) and writes a trace at path, as `fusecheck golden` / `fusecheck run` do.
static inline void traced_run(Engine *engine, const Checkpoint *ck, const char *producer,
                              KvDtype kv, int kv_forced, int32_t *tokens, int prompt_length, int n_decode, int greedy,
                              const char *path) {
    TraceMeta meta;
    ErrorMessage err;
    cr_assert_eq(trace_meta_for_checkpoint(&meta, ck, producer, kv, prompt_length, &err), 0, "%s", err.text);
    meta.kv_forced = kv_forced;
    TraceWriter *w = trace_writer_open(path, &meta, &err);
    free(meta.model_config);
    cr_assert_not_null(w, "%s", err.text);
    int rc = run_traced_steps(engine, tokens, prompt_length, n_decode, !greedy, NULL, w, NULL, &err);
    if (rc) trace_writer_abort(w);
    cr_assert_eq(rc, 0, "%s: %s", producer, err.text);
    cr_assert_eq(trace_writer_close(w, &err), 0, "%s", err.text);
}

// The reference's golden for `ck`: a prompt from seed 1 (as `fusecheck golden --seed 1`), greedy
// continuation written into tokens (prompt_length + n_decode entries).
static inline void make_reference_golden(const Checkpoint *ck, KvDtype kv, int32_t *tokens, int prompt_length,
                                         int n_decode, const char *path) {
    ErrorMessage err;
    random_prompt(tokens, prompt_length, ck->config.vocab_size, 1);
    Reference *ref = reference_create(ck, kv, prompt_length + n_decode, 0, &err);
    cr_assert_not_null(ref, "%s", err.text);
    Engine engine = engine_wrap(&reference_engine_kind, ref, kv);
    traced_run(&engine, ck, "reference", kv, 0, tokens, prompt_length, n_decode, 1, path);
    reference_destroy(ref);
}

// A GPU engine teacher-forced on `golden_path`'s tokens into a trace at path; KV storage-forced from
// the golden when `force` (as `fusecheck run` does in the matched profile).
static inline void gpu_traced_run(GpuEngine *engine, const Checkpoint *ck, GpuEngineKind kind, KvDtype kv,
                                  const char *golden_path, int force, const char *path) {
    ErrorMessage err;
    TraceReader *golden = trace_open(golden_path, &err);
    cr_assert_not_null(golden, "%s", err.text);
    int forced;
    cr_assert_eq(gpu_write_trace(engine, ck, kind, kv, golden, force, path, &forced, &err), 0, "%s", err.text);
    cr_assert_eq(forced, force && kv == KV_BF16 && !strcmp(trace_meta(golden)->kv_dtype, "bf16"));
    trace_close(golden);
}

// compare A (under test) with B (golden) under `tol` (the library `fusecheck compare` uses), prints a
// one-line summary labelled `what`, and returns whether everything passed.
static inline int compare_and_report(const char *what, const char *path_a, const char *path_b, double tol) {
    Tolerances tolerances = tolerances_default();
    tolerances.max_rel_l2 = tolerances.max_norm_max = tol;
    CompareResult result;
    ErrorMessage err;
    cr_assert_eq(compare_traces(path_a, path_b, &(CompareOptions){.tol = tolerances, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err), 0, "%s", err.text);
    char worst[128] = "none", first[512] = "none", worst_rel_l2[32] = "0";
    double worst_norm_max = 0;
    for (size_t i = 0; i < result.n_results; i++)
        if (!result.results[i].is_token && result.results[i].metrics.norm_max > worst_norm_max)
            worst_norm_max = result.results[i].metrics.norm_max;
    if (result.worst >= 0) {
        const TensorMetrics *m = &result.results[result.worst].metrics;
        compare_describe_location(&result.results[result.worst], worst, sizeof worst);
        // The worst tensor is one with NaN or Inf where there is one (metrics_rank); its rel_l2 field
        // then means nothing, so it is named, as `fusecheck compare` names it.
        if (metrics_has_nonfinite(m)) snprintf(worst_rel_l2, sizeof worst_rel_l2, "NaN/Inf");
        else snprintf(worst_rel_l2, sizeof worst_rel_l2, "%.3g", m->rel_l2);
    }
    if (result.first_failure >= 0) {
        const TensorResult *f = &result.results[result.first_failure];
        compare_describe_location(f, first, sizeof first);
        snprintf(first + strlen(first), sizeof first - strlen(first), " (%s)", f->why);
    }
    fprintf(stderr, "%s: %zu tensors, %zu failures at %.0e, worst rel_l2 %s at %s, worst norm_max %.3g; first failure: %s\n",
            what, result.n_results, result.n_failures, tol, worst_rel_l2, worst, worst_norm_max, first);
    int pass = result.pass;
    compare_result_free(&result);
    return pass;
}

#endif
