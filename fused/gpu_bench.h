// Decode throughput measurement (`fusecheck bench`, and `fusecheck gate` through the same calls).
//
// What one measurement is: an engine holding a KV cache filled to `context` positions with synthetic
// values (pseudo-random in [-1, 1), never zeros) and the position set to `context`, then `tokens`
// decode steps replayed back to back (the fused engine: its captured CUDA graph; the cublas engine:
// its plain kernel/cuBLAS sequence, as it runs), timed with CUDA events, `repeat` times after a
// warm-up; every step decodes at the same position, so the context stays `context` + 1.
// Bytes per token = checkpoint_weight_bytes + the K and V bytes of `context` positions in every
// layer; achieved bandwidth = bytes per token x tok/s, and its fraction of the device-to-device copy
// bandwidth measured in the same process. The per-kernel breakdown comes from one extra ungraphed
// step with a CUDA event after every kernel (fused engine only; launch gaps land in the kernel after).
//
// Without CUDA the functions exist and fail with "no CUDA device found ..." (gpu_engine_stub.c).
#ifndef FUSECHECK_GPU_BENCH_H
#define FUSECHECK_GPU_BENCH_H

#include <stddef.h>
#include <stdio.h>

#include "gpu_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_MAX_KERNELS 16

typedef struct {
    char name[48];
    int calls_per_token;  // launches of this kernel in one decode step
    double us_per_token;  // summed over those launches
} BenchKernelTime;

typedef struct {
    GpuEngineKind engine;
    int context, tokens, repeat;
    double tok_s_median, tok_s_min, tok_s_max;
    double ms_per_token_median, ms_per_token_min, ms_per_token_max;
    double weight_bytes, kv_bytes, bytes_per_token;
    double achieved_gb_s;       // bytes_per_token x tok_s_median / 1e9
    double copy_gb_s;           // the device-to-device copy bandwidth it is compared with
    double bandwidth_fraction;  // achieved_gb_s / copy_gb_s
    int launches_per_token;
    int n_kernels;              // 0 when no breakdown was taken
    BenchKernelTime kernels[BENCH_MAX_KERNELS];
} BenchResult;

// Device-to-device cudaMemcpy bandwidth in GB/s (bytes read + bytes written, 1e9), the median of
// several copies of a 1 GiB buffer after a warm-up.
int bench_copy_bandwidth(double *gb_per_s, ErrorMessage *err);

// Name of device 0, e.g. "NVIDIA H100 80GB HBM3".
int bench_gpu_name(char *out, size_t size, ErrorMessage *err);

// Benchmarks one engine kind on `checkpoint` at each of contexts[0..n_contexts) (each >= 1 and
// < max_position_embeddings), writing results[i] for contexts[i]. One engine is created for all of
// them (max context = the largest + 1). copy_gb_s: from bench_copy_bandwidth. breakdown: also take
// the per-kernel profile. progress: when not NULL, one line per measurement is printed there.
int bench_engine(const Checkpoint *checkpoint, GpuEngineKind kind, const int *contexts, int n_contexts, int tokens,
                 int repeat, double copy_gb_s, int breakdown, FILE *progress, BenchResult *results,
                 ErrorMessage *err);

// ---- engine hooks used by bench_engine (implemented in gpu_engine.c) ----------------------------
// Fills the KV cache positions [0, context) of every layer with synthetic values from `seed` and
// stages one token at position `context` (context < the engine's max context).
int gpu_engine_bench_prepare(GpuEngine *engine, int context, int token, unsigned seed, ErrorMessage *err);
// Enqueues n_steps decode steps at the staged position back to back, times them with CUDA events
// and returns the elapsed milliseconds (the fused engine replays its graph).
int gpu_engine_bench_time(GpuEngine *engine, int n_steps, double *ms, ErrorMessage *err);
// One ungraphed fused decode step with an event after every kernel: per kernel name, launches and
// summed microseconds. -1 for the cublas engine.
int gpu_engine_bench_profile(GpuEngine *engine, BenchKernelTime *kernels, int max_kernels, int *n_kernels,
                             ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
