// Decode throughput of any engine (model/engine.h), for `fusecheck bench` and the gate's benchmark.
//
// What one measurement is: an engine created with its default KV dtype, its KV cache holding
// `context` positions, and `tokens` decode steps of one token at position `context`, back to back,
// `repeat` times after a warm-up of min(tokens, 8) steps (median, min and max over the repeats); every step decodes at the
// same position, so the context stays `context` + 1. How the cache is filled and the steps are timed
// depends on the engine:
//   - an engine with the benchmark hooks (EngineKind.bench_prepare/bench_time_decode: the GPU
//     engines) fills its cache with synthetic values and times the steps itself (CUDA events around
//     graph replays): BENCH_TIMING_DEVICE;
//   - any other engine (the reference, a CPU plugin) gets a real prefill of synthetic tokens, in
//     chunks, through engine_forward, and its decode steps (engine_forward of one token) are timed
//     with the wall clock (CLOCK_MONOTONIC): BENCH_TIMING_WALL_CLOCK.
// Bytes per token (the checkpoint's weight bytes + the K and V bytes of `context` positions in every
// layer) and the achieved bandwidth against a device-to-device copy are computed for engines that
// need a GPU (ENGINE_NEEDS_GPU) only: for a CPU engine they mean nothing and stay empty ("n/a").
#ifndef FUSECHECK_ENGINE_BENCH_H
#define FUSECHECK_ENGINE_BENCH_H

#include <stddef.h>
#include <stdio.h>

#include "../model/checkpoint.h"
#include "../model/engine.h"

typedef enum {
    BENCH_TIMING_DEVICE = 0,      // the engine's own timer (bench hooks), synthetic cache fill
    BENCH_TIMING_WALL_CLOCK = 1,  // CLOCK_MONOTONIC around engine_forward, real prefill
} BenchTiming;

// "device" / "wall-clock" (JSON), and one phrase saying what was timed (reports).
const char *bench_timing_name(BenchTiming timing);
const char *bench_timing_description(BenchTiming timing);

typedef struct {
    char engine[64];            // EngineKind.name (as long as a history row keeps it)
    BenchTiming timing;
    int on_gpu;                 // the engine needs a GPU: the bytes and bandwidth fields are meaningful
    int context, tokens, repeat;
    double tok_s_median, tok_s_min, tok_s_max;
    double ms_per_token_median, ms_per_token_min, ms_per_token_max;
    // on_gpu only (0 otherwise):
    double weight_bytes, kv_bytes, bytes_per_token;
    double achieved_gb_s;       // bytes_per_token x tok_s_median / 1e9
    double copy_gb_s;           // the device-to-device copy bandwidth it is compared with
    double bandwidth_fraction;  // achieved_gb_s / copy_gb_s
    int launches_per_token;     // -1: the engine does not count its launches
    int n_kernels;              // 0 when no breakdown was taken
    BenchKernelTime kernels[BENCH_MAX_KERNELS];
} BenchResult;

typedef struct {
    const int *contexts;        // each >= 1 and < max_position_embeddings
    int n_contexts;
    int tokens, repeat;         // decode steps per timed run, timed runs per context (each >= 1)
    double copy_gb_s;           // from bench_copy_bandwidth (fused/gpu_bench.h); 0 when none was measured
    int breakdown;              // also take the per-kernel profile, when the engine has one
    FILE *progress;             // when not NULL, one line per measurement is printed there
} BenchOptions;

// Benchmarks `kind` on `checkpoint` at each context, writing results[i] for contexts[i]. One engine
// is created for all of them (max context = the largest + 1, the kind's default KV dtype). The
// caller checks kind->available first (a GPU engine without a device fails in its create).
int bench_engine(const EngineKind *kind, const Checkpoint *checkpoint, const BenchOptions *options,
                 BenchResult *results, ErrorMessage *err);

// The CPU's model name from /proc/cpuinfo (e.g. "AMD EPYC 9654 96-Core Processor"), else "CPU": the
// machine a CPU engine's figures belong to, as a GPU's name is for a GPU engine.
const char *bench_cpu_name(char *out, size_t size);

#endif
