// Presenting benchmark results: a llama-bench style markdown table and JSON, shared by `fusecheck
// bench` and `fusecheck gate` so both report the same numbers the same way.
#ifndef FUSECHECK_BENCH_REPORT_H
#define FUSECHECK_BENCH_REPORT_H

#include <stdio.h>

#include "gpu_bench.h"

typedef struct {
    const char *gpu_name;
    const char *model;       // preset name or checkpoint directory
    const char *fingerprint;
    const char *commit;
    const char *date;        // YYYY-MM-DD
    double copy_gb_s;        // device-to-device copy bandwidth measured in the same run
} BenchContext;

// One table row per (engine, context); then the fused/cublas speedup per context where both ran,
// and the per-kernel breakdown of each result that has one.
void bench_write_markdown(FILE *out, const BenchContext *context, const BenchResult *results, int n_results);

// The same as JSON text (malloc'd; NULL on out of memory): {gpu, model, fingerprint, commit, date,
// copy_gb_s, results: [...], speedup: [{context, fused_over_cublas}]}.
char *bench_json_text(const BenchContext *context, const BenchResult *results, int n_results);

// fused tok/s over cublas tok/s at `context` (medians), or 0 when either is missing.
double bench_speedup(const BenchResult *results, int n_results, int context);

#endif
