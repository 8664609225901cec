// The dataflow engine behind the engine interface (model/engine.h). Its state is a GpuEngine of kind
// GPU_ENGINE_DATAFLOW: the weights, KV cache, prefill (the unfused path, as the fused engine's) and
// traces are the GPU engine's; only the decode step is its own (dataflow_decode.h). Built without
// CUDA, gpu_engine_create fails with the no-device line, as for the other GPU engines.
#include "../gpu_engine.h"

static void *create(const Checkpoint *checkpoint, EngineProfile profile, int max_context, ErrorMessage *err) {
    return gpu_engine_create(checkpoint, GPU_ENGINE_DATAFLOW, profile.kv_dtype, max_context, err);
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

const EngineKind dataflow_engine_kind = {
    .name = "dataflow",
    .summary = "one persistent kernel per decode token, tiles waiting on counters (bf16 KV only)",
    .capabilities = ENGINE_NEEDS_GPU | ENGINE_CAN_FORCE_KV | ENGINE_KV_BF16,
    .default_kv_dtype = KV_BF16,
    .available = gpu_device_available,
    .create = create,
    .forward = forward,
    .force_kv = force_kv,
    .launches_per_token = launches_per_token,
    .destroy = destroy,
};
