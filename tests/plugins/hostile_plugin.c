/* A deliberately broken engine plugin, one way per build (tests/plugins/CMakeLists.txt defines one
 * HOSTILE_* per library), for tests/test_plugin_hostile.c. Without a HOSTILE_* it is a well-formed
 * engine that taps embed and layer 0's attn_norm (zeros) and predicts token 0. It ignores the tap's
 * return value on purpose: the host must fail the call anyway.
 *
 * Options make the well-formed build misbehave one tensor at a time: tap_name=NAME, tap_layer=L,
 * tap_rows=R, tap_cols=C tap one more tensor (zeros) after embed, with tap_data=null passing no data;
 * next_token=N returns N. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "fusecheck/engine.h"

struct fusecheck_engine {
    int hidden, q_width, vocab;
    const char *tap_name; /* options, copied */
    char tap_name_storage[64];
    int tap_layer, tap_rows, tap_cols, tap_null, next_token;
    char error[256];
};
static char create_error[256];

FUSECHECK_ENGINE_EXPORT uint32_t fusecheck_engine_abi_version(void) {
#ifdef HOSTILE_WRONG_ABI
    return FUSECHECK_ENGINE_ABI_VERSION + 1;
#else
    return FUSECHECK_ENGINE_ABI_VERSION;
#endif
}

FUSECHECK_ENGINE_EXPORT const fusecheck_engine_info *fusecheck_engine_describe(void) {
    static const fusecheck_engine_info info = {
#ifdef HOSTILE_BUILTIN_NAME
        .name = "fused",
#else
        .name = "hostile",
#endif
        .summary = "a broken plugin for the tests",
        .capabilities = FUSECHECK_ENGINE_KV_F32 | FUSECHECK_ENGINE_KV_BF16,
        .default_kv_dtype = FUSECHECK_KV_F32,
#if defined(HOSTILE_OMITS_K)
        .omitted = "gate,k",
#elif defined(HOSTILE_OMITS_MLP) /* not hostile: a fused MLP's declaration */
        .omitted = "gate,up,act",
#else
        .omitted = "",
#endif
    };
    return &info;
}

FUSECHECK_ENGINE_EXPORT fusecheck_engine *fusecheck_engine_create(const fusecheck_create_params *params) {
#ifdef HOSTILE_ABORT_IN_CREATE
    abort();
#endif
#ifdef HOSTILE_FAILS_CREATE
    strcpy(create_error, "weights rejected:\nline two of the reason");
    (void)params;
    return NULL;
#else
    fusecheck_engine *engine = calloc(1, sizeof *engine);
    if (!engine) return NULL;
    engine->hidden = params->config->hidden_size;
    engine->q_width = params->config->num_attention_heads * params->config->head_dim;
    engine->vocab = params->config->vocab_size;
    for (int i = 0; i < params->n_options; i++) {
        const char *key = params->options[i].key, *value = params->options[i].value;
        if (!strcmp(key, "tap_name")) {
            strncpy(engine->tap_name_storage, value, sizeof engine->tap_name_storage - 1);
            engine->tap_name = engine->tap_name_storage;
        } else if (!strcmp(key, "tap_layer")) engine->tap_layer = atoi(value);
        else if (!strcmp(key, "tap_rows")) engine->tap_rows = atoi(value);
        else if (!strcmp(key, "tap_cols")) engine->tap_cols = atoi(value);
        else if (!strcmp(key, "tap_data")) engine->tap_null = !strcmp(value, "null");
        else if (!strcmp(key, "next_token")) engine->next_token = atoi(value);
        else {
            strcpy(create_error, "unknown option");
            free(engine);
            return NULL;
        }
    }
    return engine;
#endif
}

#ifdef HOSTILE_STACK_OVERFLOW_IN_FORWARD
/* A recursion as deep as asked, each frame 4 KiB: asked for a billion, it overflows the stack. */
static int deep(int depth) {
    volatile char frame[4096];
    frame[0] = (char)depth;
    return depth > 0 ? deep(depth - 1) + frame[0] : frame[0];
}
#endif

#ifndef HOSTILE_MISSING_SYMBOL
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_forward(fusecheck_engine *engine, const int32_t *tokens, int32_t n_tokens,
                                                     int32_t position, const fusecheck_tap *tap, int32_t *next_token) {
    (void)tokens;
    (void)position;
    int widest = engine->hidden > engine->q_width ? engine->hidden : engine->q_width;
    if (engine->tap_rows * engine->tap_cols > n_tokens * widest) widest = engine->tap_rows * engine->tap_cols;
    float *zeros = calloc((size_t)n_tokens * (size_t)widest, sizeof *zeros);
    if (!zeros) return -1;
    if (tap) tap->tensor(tap->context, -1, "embed", zeros, n_tokens, engine->hidden);
    if (tap && engine->tap_name)
        tap->tensor(tap->context, engine->tap_layer, engine->tap_name, engine->tap_null ? NULL : zeros,
                    engine->tap_rows, engine->tap_cols);
#ifdef HOSTILE_SEGFAULT_IN_FORWARD
    volatile int *nowhere = NULL;
    *nowhere = 1;
#endif
#ifdef HOSTILE_STACK_OVERFLOW_IN_FORWARD
    *next_token = deep(1 << 30);
#endif
#ifdef HOSTILE_WRONG_TAP_SHAPE
    if (tap) tap->tensor(tap->context, 0, "q", zeros, n_tokens, engine->q_width - 1);
#endif
#ifdef HOSTILE_UNKNOWN_TAP_NAME
    if (tap) tap->tensor(tap->context, 0, "attn_scores", zeros, n_tokens, engine->hidden);
#endif
    if (tap) tap->tensor(tap->context, 0, "attn_norm", zeros, n_tokens, engine->hidden);
    free(zeros);
#ifdef HOSTILE_BAD_TOKEN
    *next_token = engine->vocab;
#else
    *next_token = engine->next_token;
#endif
    return 0;
}
#endif

#if defined(HOSTILE_BENCH_HOOKS) || defined(HOSTILE_BENCH_HALF)
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_bench_prepare(fusecheck_engine *engine, int32_t context, int32_t token,
                                                           uint32_t seed) {
    (void)engine;
    (void)context;
    (void)token;
    (void)seed;
    return 0;
}
#endif
#ifdef HOSTILE_BENCH_HOOKS /* not hostile: a timer that says every decode step takes 0.5 ms */
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_bench_time_decode(fusecheck_engine *engine, int32_t n_steps,
                                                               double *milliseconds) {
    (void)engine;
    *milliseconds = 0.5 * n_steps;
    return 0;
}
#endif

FUSECHECK_ENGINE_EXPORT const char *fusecheck_engine_last_error(const fusecheck_engine *engine) {
    return engine ? engine->error : create_error;
}

FUSECHECK_ENGINE_EXPORT void fusecheck_engine_destroy(fusecheck_engine *engine) { free(engine); }
