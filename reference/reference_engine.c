// The reference behind the engine interface (model/engine.h): each function forwards to reference.h.
#include "reference.h"

static void *create(const Checkpoint *checkpoint, EngineProfile profile, int max_context, ErrorMessage *err) {
    return reference_create(checkpoint, profile.kv_dtype, max_context, 0, err);
}

static int forward(void *state, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                   int32_t *next_token, ErrorMessage *err) {
    return reference_forward(state, tokens, n_tokens, position, tap, next_token, err);
}

static void destroy(void *state) { reference_destroy(state); }

const EngineKind reference_engine_kind = {
    .name = "reference",
    .summary = "the fp32 OpenBLAS reference (CPU)",
    .capabilities = ENGINE_KV_F32 | ENGINE_KV_BF16,
    .default_kv_dtype = KV_F32,
    .available = NULL,
    .create = create,
    .forward = forward,
    .force_kv = NULL,
    .launches_per_token = NULL,
    .destroy = destroy,
};
