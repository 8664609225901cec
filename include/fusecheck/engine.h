/* fusecheck engine ABI, version 1: a Qwen3 engine in a shared library that fusecheck loads at run
 * time (`fusecheck run --engine plugin:./libmyengine.so ...`) and checks layer by layer against its
 * fp32 reference. docs/ENGINE_ABI.md is the full contract; this header is all an engine includes.
 *
 * Plain C (C99 or later, or C++ through extern "C"), fixed-width integers only, no fusecheck types.
 * Every exported function is looked up by name with dlsym; the ones marked "optional" may be absent.
 *
 * Lifecycle (all calls from one host thread, never two at once):
 *   fusecheck_engine_abi_version()          must equal FUSECHECK_ENGINE_ABI_VERSION of the host
 *   fusecheck_engine_describe()             name, capabilities, declared omissions
 *   fusecheck_engine_available()            optional: can it run on this machine (a GPU present)?
 *   fusecheck_engine_create(params)         copies what it needs of the weights; returns the engine
 *   fusecheck_engine_force_kv(...)          optional, before a forward: store given K/V in the cache
 *   fusecheck_engine_forward(...)           prefill (n_tokens > 1) or one decode step (n_tokens == 1)
 *   fusecheck_engine_bench_prepare/_time_decode   optional: the engine's own benchmark timer
 *   fusecheck_engine_destroy(engine)
 * A function that fails returns non-zero (or NULL) and leaves one line of text for
 * fusecheck_engine_last_error(engine) (engine NULL: the last failed create or available call). */
#ifndef FUSECHECK_ENGINE_ABI_H
#define FUSECHECK_ENGINE_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Bumped on any change to this header's types or functions; the host refuses any other version. */
#define FUSECHECK_ENGINE_ABI_VERSION 1u

#if defined(__GNUC__) || defined(__clang__)
#define FUSECHECK_ENGINE_EXPORT __attribute__((visibility("default")))
#else
#define FUSECHECK_ENGINE_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- constants ------------------------------------------------------------------------------ */

/* Capability bits (fusecheck_engine_info.capabilities). At least one KV bit must be set. */
#define FUSECHECK_ENGINE_NEEDS_GPU (1u << 0)    /* needs a GPU; without it the host runs the engine on CPU machines */
#define FUSECHECK_ENGINE_KV_F32 (1u << 1)       /* can keep its KV cache in fp32 */
#define FUSECHECK_ENGINE_KV_BF16 (1u << 2)      /* can keep it in bf16 (round to nearest even at the store) */
#define FUSECHECK_ENGINE_CAN_FORCE_KV (1u << 3) /* exports fusecheck_engine_force_kv */

/* KV cache storage (fusecheck_profile.kv_dtype, fusecheck_engine_info.default_kv_dtype). */
#define FUSECHECK_KV_F32 0
#define FUSECHECK_KV_BF16 1

/* Element types of checkpoint tensors (fusecheck_tensor.dtype), as safetensors names them. */
#define FUSECHECK_DTYPE_F32 0  /* IEEE binary32 */
#define FUSECHECK_DTYPE_F16 1  /* IEEE binary16 */
#define FUSECHECK_DTYPE_BF16 2 /* bfloat16: the top 16 bits of a binary32 */

/* ---- what the host gives the engine ----------------------------------------------------------- */

/* The model's config.json (transformers' Qwen3Config), validated by the host: every size > 0,
 * num_attention_heads % num_key_value_heads == 0, head_dim even, 0 < rms_norm_eps < 1, rope_theta > 0. */
typedef struct fusecheck_model_config {
    int32_t hidden_size;
    int32_t intermediate_size;
    int32_t num_hidden_layers;
    int32_t num_attention_heads;
    int32_t num_key_value_heads;
    int32_t head_dim;                /* q width is num_attention_heads * head_dim (may differ from hidden) */
    int32_t vocab_size;
    int32_t max_position_embeddings;
    int32_t tie_word_embeddings;     /* 1: the LM head is model.embed_tokens.weight */
    float rms_norm_eps;
    double rope_theta;
    const char *config_json;         /* the same config as JSON text with transformers' key names */
} fusecheck_model_config;

/* One tensor of the checkpoint, by its transformers name ("model.layers.0.self_attn.q_proj.weight").
 * Row-major, contiguous, little-endian; a Linear weight is [out_features, in_features]. `data` is
 * host memory owned by the host, read-only, valid only during fusecheck_engine_create: copy what you
 * need. */
typedef struct fusecheck_tensor {
    const char *name;
    int32_t dtype;          /* FUSECHECK_DTYPE_* */
    int32_t ndim;           /* 0..4 (Qwen3's are 1 or 2) */
    int64_t shape[4];       /* the first ndim entries */
    const void *data;
    uint64_t nbytes;        /* product of shape * element size */
} fusecheck_tensor;

/* The precision profile: the storage points the engine must honour. */
typedef struct fusecheck_profile {
    int32_t kv_dtype;       /* FUSECHECK_KV_*: how K and V are stored in the cache */
    int32_t weights_dtype;  /* FUSECHECK_DTYPE_BF16 in version 1: compute with the bf16 values as given */
} fusecheck_profile;

/* A `key=value` option from the command line (`--engine plugin:PATH:key=value,...`), passed through. */
typedef struct fusecheck_option {
    const char *key;
    const char *value;
} fusecheck_option;

typedef struct fusecheck_create_params {
    const fusecheck_model_config *config;
    const fusecheck_tensor *tensors;     /* every tensor of the checkpoint, sorted by name */
    int32_t n_tensors;
    fusecheck_profile profile;
    int32_t max_context;                 /* positions the KV cache must hold, 1..max_position_embeddings */
    const fusecheck_option *options;     /* n_options entries, in command-line order, keys distinct */
    int32_t n_options;
} fusecheck_create_params;

/* Where the engine sends each traced tensor during a forward call. Call
 * tap->tensor(tap->context, layer, name, data, rows, cols) with:
 *   name    a tensor name of golden/FORMAT.md: per layer (layer 0..num_hidden_layers-1) attn_norm q k v
 *           attn attn_out resid_attn mlp_norm gate up act mlp_out resid_mlp; per step (layer -1)
 *           embed, final_norm, logits. next_token is the forward's result, not tapped.
 *   data    host fp32 [rows][cols], row-major; read during the call only (the host copies it).
 *   rows    n_tokens for embed and every layer tensor; 1 for final_norm and logits (last row only).
 *   cols    hidden_size, num_attention_heads*head_dim (q, attn), num_key_value_heads*head_dim (k, v),
 *           intermediate_size (gate, up, act), vocab_size (logits).
 * Tap each tensor once per forward, in the order above, from the thread that called forward (the
 * host's tap is not thread-safe; an engine's own threads must hand their results back first). A
 * non-zero return means the host refused it (wrong name or shape, a write error): stop the forward
 * and return non-zero; the host keeps its own message. `tap` is NULL when the call is not traced (generate, benchmarks): tap nothing. */
typedef struct fusecheck_tap {
    void *context;
    int (*tensor)(void *context, int32_t layer, const char *name, const float *data, int32_t rows, int32_t cols);
} fusecheck_tap;

/* ---- what the engine tells the host ----------------------------------------------------------- */

typedef struct fusecheck_engine_info {
    const char *name;         /* 1..31 of [A-Za-z0-9._-]: the trace's producer; not reference/fused/cublas */
    const char *summary;      /* one line for humans */
    uint32_t capabilities;    /* FUSECHECK_ENGINE_* bits */
    int32_t default_kv_dtype; /* FUSECHECK_KV_*, one the capabilities allow */
    const char *omitted;      /* tensor names this engine never taps, comma-separated ("gate,up,act"),
                                 "" for none; never resid_mlp, k, v, logits, next_token or embed */
} fusecheck_engine_info;

typedef struct fusecheck_engine fusecheck_engine; /* the engine's own state, opaque to the host */

/* ---- the functions an engine exports ---------------------------------------------------------- */

/* FUSECHECK_ENGINE_ABI_VERSION as the engine was compiled. */
FUSECHECK_ENGINE_EXPORT uint32_t fusecheck_engine_abi_version(void);

/* A pointer to static information, valid as long as the library is loaded. Never NULL. */
FUSECHECK_ENGINE_EXPORT const fusecheck_engine_info *fusecheck_engine_describe(void);

/* Optional. 0 when the engine can run here; non-zero with the reason in last_error(NULL) (e.g. "no
 * CUDA device"). Absent: always available. */
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_available(void);

/* A new engine over the checkpoint in params (copy the weights you need; the tensors' data are valid
 * only during this call) with a KV cache of params->max_context positions in params->profile.kv_dtype.
 * Refuse options you do not know. NULL on failure, with the reason in last_error(NULL). */
FUSECHECK_ENGINE_EXPORT fusecheck_engine *fusecheck_engine_create(const fusecheck_create_params *params);

/* Consumes tokens[0..n_tokens) (ids in [0, vocab_size), given by the host: prefill, then the host's
 * teacher-forced tokens one at a time) at positions [position, position + n_tokens), appending their
 * K and V to the cache (positions before `position` hold earlier calls' K and V). Writes the argmax of
 * the last row's logits to *next_token (the lowest index among equal maxima; -1 only when every logit
 * is NaN) and, when tap is not NULL, every tensor it computes to the tap. The host guarantees
 * n_tokens >= 1, position + n_tokens <= max_context and ids in range. 0 on success. */
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_forward(fusecheck_engine *engine, const int32_t *tokens,
                                                     int32_t n_tokens, int32_t position, const fusecheck_tap *tap,
                                                     int32_t *next_token);

/* Optional; required with FUSECHECK_ENGINE_CAN_FORCE_KV. Storage-point forcing: for the next forward
 * call only, store k and v (host fp32 [n_tokens][num_key_value_heads * head_dim], read during this
 * call, as the trace holds them: after k_norm and RoPE, before any rounding) into `layer`'s cache at
 * that forward's positions, rounded as the engine rounds, in place of the K and V it computes. The
 * engine still taps its own k and v. Called for each layer before the forward it applies to. */
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_force_kv(fusecheck_engine *engine, int32_t layer, const float *k,
                                                      const float *v, int32_t n_tokens);

/* Optional: kernel launches one decode step makes (reports only). */
FUSECHECK_ENGINE_EXPORT int32_t fusecheck_engine_launches_per_token(const fusecheck_engine *engine);

/* Optional, both or neither: the engine's own benchmark timer (a GPU engine's device events, more
 * exact than the host's clock around each call). Without them `bench` fills the cache with a real
 * prefill and times forward calls with the wall clock.
 * bench_prepare: fill KV positions [0, context) of every layer with synthetic values from `seed` (not
 * all zeros) and stage `token` at position `context`; the host guarantees 1 <= context < max_context
 * and a token in range.
 * bench_time_decode: run n_steps >= 1 untraced decode steps of the staged token at the staged position
 * back to back (the context stays context + 1) and write their total elapsed milliseconds (> 0). */
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_bench_prepare(fusecheck_engine *engine, int32_t context, int32_t token,
                                                           uint32_t seed);
FUSECHECK_ENGINE_EXPORT int fusecheck_engine_bench_time_decode(fusecheck_engine *engine, int32_t n_steps,
                                                               double *milliseconds);

/* The reason the last failed call on `engine` failed (NULL: the last failed create or available),
 * one line, no newline; owned by the engine, valid until its next call. Never NULL (may be ""). */
FUSECHECK_ENGINE_EXPORT const char *fusecheck_engine_last_error(const fusecheck_engine *engine);

/* Frees the engine and everything it owns. NULL is a no-op. */
FUSECHECK_ENGINE_EXPORT void fusecheck_engine_destroy(fusecheck_engine *engine);

/* The same functions as pointer types, for hosts that dlsym them. */
typedef uint32_t (*fusecheck_engine_abi_version_fn)(void);
typedef const fusecheck_engine_info *(*fusecheck_engine_describe_fn)(void);
typedef int (*fusecheck_engine_available_fn)(void);
typedef fusecheck_engine *(*fusecheck_engine_create_fn)(const fusecheck_create_params *params);
typedef int (*fusecheck_engine_forward_fn)(fusecheck_engine *engine, const int32_t *tokens, int32_t n_tokens,
                                           int32_t position, const fusecheck_tap *tap, int32_t *next_token);
typedef int (*fusecheck_engine_force_kv_fn)(fusecheck_engine *engine, int32_t layer, const float *k, const float *v,
                                            int32_t n_tokens);
typedef int32_t (*fusecheck_engine_launches_per_token_fn)(const fusecheck_engine *engine);
typedef int (*fusecheck_engine_bench_prepare_fn)(fusecheck_engine *engine, int32_t context, int32_t token,
                                                 uint32_t seed);
typedef int (*fusecheck_engine_bench_time_decode_fn)(fusecheck_engine *engine, int32_t n_steps, double *milliseconds);
typedef const char *(*fusecheck_engine_last_error_fn)(const fusecheck_engine *engine);
typedef void (*fusecheck_engine_destroy_fn)(fusecheck_engine *engine);

#ifdef __cplusplus
}
#endif

#endif
