// The GPU engines behind the engine interface (model/engine.h): each function forwards to
// gpu_engine.h (and the benchmark hooks to gpu_bench.h), so the CUDA build and the no-CUDA stub
// (gpu_engine_stub.c) both serve it.
#include "gpu_bench.h"
#include "gpu_engine.h"

static void *create(GpuEngineKind kind, const Checkpoint *checkpoint, EngineProfile profile, int max_context,
                    ErrorMessage *err) {
    return gpu_engine_create(checkpoint, kind, profile.kv_dtype, max_context, err);
}

static void *create_fused(const Checkpoint *checkpoint, EngineProfile profile, int max_context, ErrorMessage *err) {
    return create(GPU_ENGINE_FUSED, checkpoint, profile, max_context, err);
}

static void *create_cublas(const Checkpoint *checkpoint, EngineProfile profile, int max_context, ErrorMessage *err) {
    return create(GPU_ENGINE_CUBLAS, checkpoint, profile, max_context, err);
}

static void *create_dataflow(const Checkpoint *checkpoint, EngineProfile profile, int max_context, ErrorMessage *err) {
    return create(GPU_ENGINE_DATAFLOW, checkpoint, profile, max_context, err);
}

static int forward(void *state, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                   int32_t *next_token, ErrorMessage *err) {
    return gpu_engine_forward(state, tokens, n_tokens, position, tap, next_token, err);
}

static int force_kv(void *state, int layer, const float *k, const float *v, int n_tokens, ErrorMessage *err) {
    return gpu_engine_force_kv(state, layer, k, v, n_tokens, err);
}

static int launches_per_token(const void *state) { return gpu_engine_launches_per_token(state); }

static void destroy(void *state) { gpu_engine_destroy(state); }

// The benchmark hooks: a synthetic cache fill and CUDA-event timing of back-to-back decode steps
// (graph replays for the fused engine), and the fused engine's per-kernel profile.
static int bench_prepare(void *state, int context, int32_t token, unsigned seed, ErrorMessage *err) {
    return gpu_engine_bench_prepare(state, context, token, seed, err);
}

static int bench_time_decode(void *state, int n_steps, double *ms, ErrorMessage *err) {
    return gpu_engine_bench_time(state, n_steps, ms, err);
}

static int bench_profile(void *state, BenchKernelTime *kernels, int max_kernels, int *n_kernels, ErrorMessage *err) {
    return gpu_engine_bench_profile(state, kernels, max_kernels, n_kernels, err);
}

#define GPU_CAPABILITIES (ENGINE_NEEDS_GPU | ENGINE_CAN_FORCE_KV | ENGINE_KV_F32 | ENGINE_KV_BF16)

const EngineKind fused_engine_kind = {
    .name = "fused",
    .summary = "fused CUDA kernels, one CUDA graph per decode token",
    .capabilities = GPU_CAPABILITIES,
    .default_kv_dtype = KV_BF16,
    .available = gpu_device_available,
    .create = create_fused,
    .forward = forward,
    .force_kv = force_kv,
    .launches_per_token = launches_per_token,
    .destroy = destroy,
    .bench_prepare = bench_prepare,
    .bench_time_decode = bench_time_decode,
    .bench_profile = bench_profile,
};

const EngineKind cublas_engine_kind = {
    .name = "cublas",
    .summary = "the unfused baseline: every projection through cuBLAS, no graph",
    .capabilities = GPU_CAPABILITIES,
    .default_kv_dtype = KV_BF16,
    .available = gpu_device_available,
    .create = create_cublas,
    .forward = forward,
    .force_kv = force_kv,
    .launches_per_token = launches_per_token,
    .destroy = destroy,
    .bench_prepare = bench_prepare,
    .bench_time_decode = bench_time_decode,
    .bench_profile = NULL,  // the per-kernel profile is the fused engine's only
};

// The dataflow engine (fused/dataflow/): a GpuEngine whose decode step is one persistent kernel; its
// prefill, weights, cache and traces are the GPU engine's. bf16 KV only.
const EngineKind dataflow_engine_kind = {
    .name = "dataflow",
    .summary = "one persistent kernel per decode token, tiles waiting on counters (bf16 KV only)",
    .capabilities = ENGINE_NEEDS_GPU | ENGINE_CAN_FORCE_KV | ENGINE_KV_BF16,
    .default_kv_dtype = KV_BF16,
    .available = gpu_device_available,
    .create = create_dataflow,
    .forward = forward,
    .force_kv = force_kv,
    .launches_per_token = launches_per_token,
    .destroy = destroy,
    .bench_prepare = bench_prepare,
    .bench_time_decode = bench_time_decode,
    .bench_profile = NULL,
};

const EngineKind *gpu_engine_kind_engine(GpuEngineKind kind) {
    if (kind == GPU_ENGINE_DATAFLOW) return &dataflow_engine_kind;
    return kind == GPU_ENGINE_CUBLAS ? &cublas_engine_kind : &fused_engine_kind;
}
