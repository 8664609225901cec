#include "engine.h"

#include <stdlib.h>

Engine *engine_create(const EngineKind *kind, const Checkpoint *checkpoint, EngineProfile profile, int max_context,
                      ErrorMessage *err) {
    unsigned needed = profile.kv_dtype == KV_BF16 ? ENGINE_KV_BF16 : ENGINE_KV_F32;
    if (!(kind->capabilities & needed)) {
        fail(err, "engine %s cannot keep its KV cache in %s", kind->name, kv_dtype_name(profile.kv_dtype));
        return NULL;
    }
    Engine *engine = malloc(sizeof *engine);
    if (!engine) {
        fail(err, "out of memory creating engine %s", kind->name);
        return NULL;
    }
    engine->kind = kind;
    engine->profile = profile;
    if (!(engine->state = kind->create(checkpoint, profile, max_context, err))) {
        free(engine);
        return NULL;
    }
    return engine;
}

void engine_destroy(Engine *engine) {
    if (!engine) return;
    engine->kind->destroy(engine->state);
    free(engine);
}

int engine_forward(Engine *engine, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                   int32_t *next_token, ErrorMessage *err) {
    return engine->kind->forward(engine->state, tokens, n_tokens, position, tap, next_token, err);
}

int engine_force_kv(Engine *engine, int layer, const float *k, const float *v, int n_tokens, ErrorMessage *err) {
    if (!engine->kind->force_kv || !engine_can(engine, ENGINE_CAN_FORCE_KV))
        return fail(err, "engine %s cannot force its KV cache", engine->kind->name);
    return engine->kind->force_kv(engine->state, layer, k, v, n_tokens, err);
}

int engine_launches_per_token(const Engine *engine) {
    return engine->kind->launches_per_token ? engine->kind->launches_per_token(engine->state) : 0;
}

int engine_bench_prepare(Engine *engine, int context, int32_t token, unsigned seed, ErrorMessage *err) {
    if (!engine_kind_has_bench_hooks(engine->kind))
        return fail(err, "engine %s has no benchmark hooks", engine->kind->name);
    return engine->kind->bench_prepare(engine->state, context, token, seed, err);
}

int engine_bench_time_decode(Engine *engine, int n_steps, double *ms, ErrorMessage *err) {
    if (!engine_kind_has_bench_hooks(engine->kind))
        return fail(err, "engine %s has no benchmark hooks", engine->kind->name);
    return engine->kind->bench_time_decode(engine->state, n_steps, ms, err);
}

int engine_bench_profile(Engine *engine, BenchKernelTime *kernels, int max_kernels, int *n_kernels, ErrorMessage *err) {
    *n_kernels = 0;
    if (!engine->kind->bench_profile)
        return fail(err, "engine %s has no per-kernel profile", engine->kind->name);
    return engine->kind->bench_profile(engine->state, kernels, max_kernels, n_kernels, err);
}
