// Presenting benchmark results: a llama-bench style markdown table and JSON, shared by `fusecheck
// bench` and `fusecheck gate` so both report the same numbers the same way.
#ifndef FUSECHECK_BENCH_REPORT_H
#define FUSECHECK_BENCH_REPORT_H

#include <stdio.h>

#include "engine_bench.h"

typedef struct {
    const char *gpu_name;    // NULL when no engine needed a GPU (no GPU call was made)
    const char *cpu_name;    // bench_cpu_name: named in the header when some engine ran on the CPU
    const char *model;       // preset name or checkpoint directory
    const char *fingerprint;
    const char *commit;
    const char *date;        // YYYY-MM-DD
    double copy_gb_s;        // device-to-device copy bandwidth measured in the same run (GPU only)
} BenchContext;

// One table row per (engine, context), "n/a" in the bytes and bandwidth columns of a CPU engine and
// in launches/token of an engine that does not count them; then, per GPU engine other than cublas, its
// speedup over cublas per context where both ran; the per-kernel breakdown of each result that has
// one; and, when some engine was timed by the wall clock, how each engine was timed.
void bench_write_markdown(FILE *out, const BenchContext *context, const BenchResult *results, int n_results);

// The same as JSON text (malloc'd; NULL on out of memory): {gpu, [cpu,] model, fingerprint, commit,
// date, copy_gb_s, results: [{engine, timing, ...}], speedup: [{engine, context, over_cublas,
// [fused_over_cublas]}]}; the bytes, bandwidth and launches of a row are null where they are "n/a".
char *bench_json_text(const BenchContext *context, const BenchResult *results, int n_results);

// `engine` tok/s over cublas tok/s at `context` (medians), or 0 when either is missing, when `engine`
// is cublas itself, or when it is not a GPU engine (its wall-clock figure is not comparable).
double bench_speedup(const BenchResult *results, int n_results, const char *engine, int context);

#endif
