// The GPU engines behind the engine interface (model/engine.h): each function forwards to
// gpu_engine.h, so the CUDA build and the no-CUDA stub (gpu_engine_stub.c) both serve it.
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

static int forward(void *state, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                   int32_t *next_token, ErrorMessage *err) {
    return gpu_engine_forward(state, tokens, n_tokens, position, tap, next_token, err);
}

static int force_kv(void *state, int layer, const float *k, const float *v, int n_tokens, ErrorMessage *err) {
    return gpu_engine_force_kv(state, layer, k, v, n_tokens, err);
}

static int launches_per_token(const void *state) { return gpu_engine_launches_per_token(state); }

static void destroy(void *state) { gpu_engine_destroy(state); }

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
};

const EngineKind *gpu_engine_kind_engine(GpuEngineKind kind) {
    if (kind == GPU_ENGINE_DATAFLOW) return &dataflow_engine_kind;
    return kind == GPU_ENGINE_CUBLAS ? &cublas_engine_kind : &fused_engine_kind;
}
