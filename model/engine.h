// One engine interface: what every engine that computes the Qwen3 forward pass implements (the
// reference, the fused and cublas GPU engines, and the engines to come). An engine is an EngineKind
// (a name, a capability set and a table of functions) plus its own opaque state; callers hold an
// Engine (the kind, the profile it was created with, the state) and call engine_forward & co.
//
// Errors follow model/error.h: a function that can fail takes an ErrorMessage* last, returns 0 (or a
// non-NULL pointer) on success and -1 (NULL) on failure with one line in the message. That message is
// the engine's "last error"; there is no other error state.
//
// Adding an engine: one source file that defines a `const EngineKind` (see reference/reference_engine.c
// and fused/gpu_engine_adapter.c), and one line in the registry (cli/engine_registry.c).
#ifndef FUSECHECK_ENGINE_H
#define FUSECHECK_ENGINE_H

#include <stdint.h>

#include "checkpoint.h"
#include "config.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Where an engine sends each traced tensor during a forward call. `name` is the tensor's name in
// golden/FORMAT.md; layer >= 0 for a layer tensor, layer < 0 for a step-level one (embed,
// final_norm, logits). `data` is host fp32, row-major [rows][cols], owned by the engine and valid only
// during the call (the tap copies what it keeps). Engines emit tensors in FORMAT.md order: embed, then
// per layer every layer tensor, then final_norm and logits. A tap that fails (returns -1 with its
// message in err) stops the forward call, which returns -1 with that message.
typedef struct EngineTap {
    void *context;
    int (*tensor)(void *context, int layer, const char *name, const float *data, int rows, int cols,
                  ErrorMessage *err);
} EngineTap;

// Sends one tensor to `tap`; a NULL tap (an untraced call) takes nothing and succeeds.
static inline int engine_tap_tensor(const EngineTap *tap, int layer, const char *name, const float *data, int rows,
                                    int cols, ErrorMessage *err) {
    return tap ? tap->tensor(tap->context, layer, name, data, rows, cols, err) : 0;
}

// Capabilities (bit flags in EngineKind.capabilities).
enum {
    ENGINE_CAN_FORCE_KV = 1u << 0,  // force_kv is implemented (storage-point forcing, fused/gpu_engine.h)
    ENGINE_NEEDS_GPU = 1u << 1,     // needs a CUDA device; `available` says whether one is usable
    ENGINE_KV_F32 = 1u << 2,        // can keep its KV cache in fp32
    ENGINE_KV_BF16 = 1u << 3,       // can keep its KV cache in bf16 (round to nearest even at the store)
};

// One kernel's share of a decode step, for a benchmark's per-kernel breakdown (bench_profile below).
#define BENCH_MAX_KERNELS 16
typedef struct {
    char name[48];
    int calls_per_token;  // launches of this kernel in one decode step
    double us_per_token;  // summed over those launches
} BenchKernelTime;

// The precision profile an engine is created with. Weights are always the checkpoint's bf16 values.
typedef struct {
    KvDtype kv_dtype;
} EngineProfile;

typedef struct EngineKind {
    const char *name;         // as `--engine` spells it and as traces record it (producer)
    const char *summary;      // one line for usage texts
    unsigned capabilities;    // ENGINE_* flags
    KvDtype default_kv_dtype; // what `generate` uses when --kv-dtype is not given
    // 0 when the engine can run on this machine, else -1 with why (e.g. no CUDA device). NULL: always.
    int (*available)(ErrorMessage *err);
    // New engine state over `checkpoint` (which must outlive it) with a KV cache of max_context
    // positions in profile.kv_dtype. NULL on failure.
    void *(*create)(const Checkpoint *checkpoint, EngineProfile profile, int max_context, ErrorMessage *err);
    // n_tokens >= 1 tokens (ids in [0, vocab)) at positions [position, position + n_tokens): a prefill
    // when n_tokens > 1, one decode step when 1. Teacher forcing is the caller's: it passes the tokens
    // to consume. Writes the greedy argmax of the last row's logits to *next_token (-1 allowed only
    // when traced and every logit is NaN) and, when tap is not NULL, every traced tensor to it.
    // Fails on a token out of range or a context past max_context.
    int (*forward)(void *state, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                   int32_t *next_token, ErrorMessage *err);
    // Optional (NULL unless ENGINE_CAN_FORCE_KV): stores k and v (host fp32 [n_tokens][n_kv_heads *
    // head_dim], as a trace holds them, read during the call) into layer's cache for the positions of
    // the next forward, rounded as the engine rounds, in place of its own. Armed for one forward call.
    int (*force_kv)(void *state, int layer, const float *k, const float *v, int n_tokens, ErrorMessage *err);
    // Optional (NULL: not meaningful): kernel launches one decode step makes, for reports.
    int (*launches_per_token)(const void *state);
    // Frees the state; NULL is a no-op.
    void (*destroy)(void *state);
    // The tensors this engine never sends to the tap, comma-separated ("gate,up,act"; NULL or "" for
    // none): its traces declare them omitted (golden/FORMAT.md). Never a contract checkpoint.
    const char *omitted;

    // ---- Optional benchmark hooks (`fusecheck bench`, the gate's benchmark: cli/engine_bench.h) ----
    // An engine without them (bench_prepare NULL) is benchmarked through forward: a real prefill of
    // synthetic tokens fills its cache, then decode steps timed by the wall clock. An engine whose
    // own timer is better (a GPU engine: device events around back-to-back steps, no host sync per
    // step) sets bench_prepare and bench_time_decode, both or neither.
    // Fills KV positions [0, context) of every layer with synthetic values from `seed` (not all
    // zeros) and stages `token` at position `context` (1 <= context < the engine's max_context).
    int (*bench_prepare)(void *state, int context, int32_t token, unsigned seed, ErrorMessage *err);
    // Runs n_steps decode steps of the staged token at the staged position back to back (the context
    // stays context + 1), timed by the engine; *ms: elapsed milliseconds for all n_steps.
    int (*bench_time_decode)(void *state, int n_steps, double *ms, ErrorMessage *err);
    // Optional (NULL: no breakdown): one decode step at the staged position with its time per kernel
    // name into kernels[0, *n_kernels), at most max_kernels names.
    int (*bench_profile)(void *state, BenchKernelTime *kernels, int max_kernels, int *n_kernels, ErrorMessage *err);
} EngineKind;

// An engine instance. engine_create makes one that owns its state (engine_destroy frees it);
// engine_wrap makes a borrowed one around state the caller created and will free itself.
typedef struct Engine {
    const EngineKind *kind;
    EngineProfile profile;
    void *state;
} Engine;

// Checks kind->capabilities for the profile's KV dtype, then kind->create. NULL on failure.
Engine *engine_create(const EngineKind *kind, const Checkpoint *checkpoint, EngineProfile profile, int max_context,
                      ErrorMessage *err);
void engine_destroy(Engine *engine);  // frees the state and the Engine; NULL is a no-op

// A borrowed Engine over `state` made by kind's own API (e.g. a GpuEngine from gpu_engine_create):
// never engine_destroy it.
static inline Engine engine_wrap(const EngineKind *kind, void *state, KvDtype kv_dtype) {
    Engine engine = {kind, {kv_dtype}, state};
    return engine;
}

static inline const char *engine_name(const Engine *engine) { return engine->kind->name; }
static inline int engine_can(const Engine *engine, unsigned capability) {
    return (engine->kind->capabilities & capability) == capability;
}

// kind->forward on the engine's state (contract above).
int engine_forward(Engine *engine, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                   int32_t *next_token, ErrorMessage *err);
// kind->force_kv; fails with one line naming the engine when it cannot force.
int engine_force_kv(Engine *engine, int layer, const float *k, const float *v, int n_tokens, ErrorMessage *err);
// kind->launches_per_token, or 0 when the engine does not count launches.
int engine_launches_per_token(const Engine *engine);

// Whether the kind has the benchmark hooks (bench_prepare and bench_time_decode) / a profile hook.
static inline int engine_kind_has_bench_hooks(const EngineKind *kind) {
    return kind->bench_prepare && kind->bench_time_decode;
}
// The hooks on the engine's state; each fails with one line naming the engine when it lacks the hook.
int engine_bench_prepare(Engine *engine, int context, int32_t token, unsigned seed, ErrorMessage *err);
int engine_bench_time_decode(Engine *engine, int n_steps, double *ms, ErrorMessage *err);
int engine_bench_profile(Engine *engine, BenchKernelTime *kernels, int max_kernels, int *n_kernels, ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
