// The recorded history of the engines (reports/benchmarks.jsonl): one JSON line per measurement, of
// two kinds. Throughput rows (no "kind", or "kind":"throughput") hold the tok/s of one engine at one
// context on one GPU (or, for an engine that runs on the CPU, the CPU model); accuracy rows
// ("kind":"accuracy") hold the worst rel_l2 and norm_max of one engine against the reference for one
// model and profile (matched, pure-fp32, unforced); a row without "engine" is the fused engine's (the
// only engine the gate ran before `gate --engine`). Every row
// names the commit it was measured at. `bench --record` and `gate --record` append rows; the gate's
// --baseline compares a run with the last row of the same kind and key.
#ifndef FUSECHECK_BENCH_HISTORY_H
#define FUSECHECK_BENCH_HISTORY_H

#include "../model/error.h"

typedef enum { HISTORY_THROUGHPUT, HISTORY_ACCURACY } HistoryKind;

typedef struct {
    HistoryKind kind;
    char date[32], commit[64], gpu[256], model[256];
    char engine[64];             // EngineKind.name (a plugin's is at most 31 characters)
    // throughput
    int context;
    double tok_s, ms_per_token, bandwidth_fraction;
    // accuracy
    char profile[16];            // "matched", "pure-fp32", "unforced"
    double worst_rel_l2, worst_norm_max;
} HistoryRow;

typedef struct {
    HistoryRow *rows;            // in recorded order (oldest first)
    int n;
} History;

// Reads every line of `path`. A missing file is an error (callers that start a history treat it as
// empty: see history_append); so is a line that is not a JSON object with the fields of its kind,
// named by file and line number.
int history_read(const char *path, History *history, ErrorMessage *err);
void history_free(History *history);

// Appends rows to `path` (created if missing), one JSON line each.
int history_append(const char *path, const HistoryRow *rows, int n, ErrorMessage *err);

// The last throughput row of this GPU, engine, model and context, or NULL.
const HistoryRow *history_last_throughput(const History *history, const char *gpu, const char *engine,
                                          const char *model, int context);
// The last accuracy row of this engine, model and profile (any GPU: the engine's error does not depend
// on it by design, and a 10x growth is a bug wherever it appears), or NULL.
const HistoryRow *history_last_accuracy(const History *history, const char *engine, const char *model,
                                        const char *profile);

typedef struct {
    int found;                   // 0: no recorded row to compare with (message says so; not a failure)
    int failed;                  // 1: a regression beyond the allowed one
    char message[400];           // one line either way
} BaselineVerdict;

// Speed: fails when tok_s is more than max_slowdown_pct percent below the last recorded figure.
void baseline_check_speed(const History *history, const char *gpu, const char *engine, const char *model,
                          int context, double tok_s, double max_slowdown_pct, BaselineVerdict *out);

// Accuracy: fails when the worst rel_l2 or norm_max grew more than `max_growth` times over the last
// recorded figure. Recorded figures below FLT_EPSILON count as FLT_EPSILON (below fp32 resolution a
// ratio measures noise, and a recorded 0 would make any error an infinite growth).
void baseline_check_accuracy(const History *history, const char *engine, const char *model, const char *profile,
                             double worst_rel_l2, double worst_norm_max, double max_growth, BaselineVerdict *out);

// Rewrites BENCHMARKS.md (tables, newest first) and throughput_history.svg (history_svg.h) in the
// directory of `jsonl_path`, from that history.
int history_render(const char *jsonl_path, ErrorMessage *err);

#endif
