// What decode benchmarking needs from the GPU (`fusecheck bench` and `fusecheck gate`; the
// engine-generic measurement is cli/engine_bench.h): the device's name, the device-to-device copy
// bandwidth that achieved bandwidth is compared with, and the GPU engines' benchmark hooks, which
// gpu_engine_adapter.c offers as EngineKind.bench_prepare / bench_time_decode / bench_profile.
//
// What one GPU measurement is: the engine's KV cache filled to `context` positions with synthetic
// values (pseudo-random in [-1, 1), never zeros) and the position set to `context`, then n decode
// steps enqueued back to back (the fused engine: its captured CUDA graph; the cublas engine: its plain
// kernel/cuBLAS sequence, as it runs) and timed with CUDA events; every step decodes at the same
// position, so the context stays `context` + 1. The per-kernel breakdown comes from one extra
// ungraphed step with a CUDA event after every kernel (fused engine only; launch gaps land in the
// kernel after).
//
// Without CUDA the functions exist and fail with "no CUDA device found ..." (gpu_engine_stub.c).
#ifndef FUSECHECK_GPU_BENCH_H
#define FUSECHECK_GPU_BENCH_H

#include <stddef.h>

#include "gpu_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

// Device-to-device cudaMemcpy bandwidth in GB/s (bytes read + bytes written, 1e9), the median of
// several copies of a 1 GiB buffer after a warm-up.
int bench_copy_bandwidth(double *gb_per_s, ErrorMessage *err);

// Name of device 0, e.g. "NVIDIA H100 80GB HBM3".
int bench_gpu_name(char *out, size_t size, ErrorMessage *err);

// ---- the GPU engines' benchmark hooks (implemented in gpu_engine.c) ------------------------------
// Fills the KV cache positions [0, context) of every layer with synthetic values from `seed` and
// stages one token at position `context` (context < the engine's max context).
int gpu_engine_bench_prepare(GpuEngine *engine, int context, int token, unsigned seed, ErrorMessage *err);
// Enqueues n_steps decode steps at the staged position back to back, times them with CUDA events
// and returns the elapsed milliseconds (the fused engine replays its graph).
int gpu_engine_bench_time(GpuEngine *engine, int n_steps, double *ms, ErrorMessage *err);
// One ungraphed fused decode step with an event after every kernel: per kernel name, launches and
// summed microseconds (BenchKernelTime, model/engine.h). -1 for the cublas engine.
int gpu_engine_bench_profile(GpuEngine *engine, BenchKernelTime *kernels, int max_kernels, int *n_kernels,
                             ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
