// The GPU engine API in a build without CUDA: every entry point fails with one clear line, so the
// CLI's GPU subcommands exit non-zero saying why instead of being absent.
#include <stddef.h>

#include "gpu_engine.h"

#define NO_CUDA_MESSAGE "no CUDA device found: fusecheck was built without CUDA (nvcc was not found at configure time)"

int gpu_device_available(ErrorMessage *err) { return fail(err, NO_CUDA_MESSAGE); }

GpuEngine *gpu_engine_create(const Checkpoint *checkpoint, GpuEngineKind kind, KvDtype kv_dtype,
                             int max_context, ErrorMessage *err) {
    (void)checkpoint; (void)kind; (void)kv_dtype; (void)max_context;
    fail(err, NO_CUDA_MESSAGE);
    return NULL;
}

void gpu_engine_destroy(GpuEngine *engine) { (void)engine; }

int gpu_engine_forward(GpuEngine *engine, const int32_t *tokens, int n_tokens, int position,
                       const EngineTap *tap, int32_t *next_token, ErrorMessage *err) {
    (void)engine; (void)tokens; (void)n_tokens; (void)position; (void)tap; (void)next_token;
    return fail(err, NO_CUDA_MESSAGE);
}

int gpu_engine_force_kv(GpuEngine *engine, int layer, const float *k, const float *v, int n_tokens,
                        ErrorMessage *err) {
    (void)engine; (void)layer; (void)k; (void)v; (void)n_tokens;
    return fail(err, NO_CUDA_MESSAGE);
}

int gpu_engine_logits(GpuEngine *engine, float *out, ErrorMessage *err) {
    (void)engine; (void)out;
    return fail(err, NO_CUDA_MESSAGE);
}

int gpu_engine_launches_per_token(const GpuEngine *engine) { (void)engine; return 0; }

// ---- gpu_bench.h without CUDA ----
#include "gpu_bench.h"

int bench_copy_bandwidth(double *gb_per_s, ErrorMessage *err) { (void)gb_per_s; return fail(err, NO_CUDA_MESSAGE); }
int bench_gpu_name(char *out, size_t size, ErrorMessage *err) { (void)out; (void)size; return fail(err, NO_CUDA_MESSAGE); }
int gpu_engine_bench_prepare(GpuEngine *engine, int context, int token, unsigned seed, ErrorMessage *err) {
    (void)engine; (void)context; (void)token; (void)seed;
    return fail(err, NO_CUDA_MESSAGE);
}
int gpu_engine_bench_time(GpuEngine *engine, int n_steps, double *ms, ErrorMessage *err) {
    (void)engine; (void)n_steps; (void)ms;
    return fail(err, NO_CUDA_MESSAGE);
}
int gpu_engine_bench_profile(GpuEngine *engine, BenchKernelTime *kernels, int max_kernels, int *n_kernels,
                             ErrorMessage *err) {
    (void)engine; (void)kernels; (void)max_kernels; (void)n_kernels;
    return fail(err, NO_CUDA_MESSAGE);
}
