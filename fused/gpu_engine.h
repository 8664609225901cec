// The GPU engines, seen from host C: `fused` (fused kernels, one CUDA graph per decode token),
// `cublas` (every projection through cuBLAS, one plain kernel per op, no graph) and `dataflow` (one
// persistent kernel per decode token, fused/dataflow/; bf16 KV cache only). Both load the
// checkpoint through the shared loader as bf16, keep activations fp32 and use the shared RoPE table.
//
// When fusecheck is built without CUDA, these functions exist and fail with one line saying so
// (gpu_engine_stub.c), so the CLI needs no #ifdefs.
#ifndef FUSECHECK_GPU_ENGINE_H
#define FUSECHECK_GPU_ENGINE_H

#include <stdint.h>

#include "../golden/trace.h"
#include "../model/checkpoint.h"
#include "../model/config.h"
#include "../model/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { GPU_ENGINE_FUSED = 0, GPU_ENGINE_CUBLAS = 1, GPU_ENGINE_DATAFLOW = 2 } GpuEngineKind;
int gpu_engine_kind_parse(const char *name, GpuEngineKind *out);  // "fused" / "cublas" / "dataflow"; -1 otherwise
const char *gpu_engine_kind_name(GpuEngineKind kind);

// 0 when a CUDA device is usable; otherwise -1 and "no CUDA device found (...)" in err.
int gpu_device_available(ErrorMessage *err);

typedef struct GpuEngine GpuEngine;

// Uploads the weights (bf16, bit-identical to the checkpoint's bf16 values) and allocates a KV cache
// for `max_context` positions (<= max_position_embeddings). The checkpoint must outlive the engine.
GpuEngine *gpu_engine_create(const Checkpoint *checkpoint, GpuEngineKind kind, KvDtype kv_dtype,
                             int max_context, ErrorMessage *err);
void gpu_engine_destroy(GpuEngine *engine);

// Runs n_tokens tokens at positions [position, position + n_tokens) (n_tokens > 1: prefill through
// cuBLAS GEMMs; n_tokens == 1: one decode step, the fused engine replaying its CUDA graph), writes
// the greedy argmax of the last row's logits to *next_token and, when tap is not NULL, the tensors
// this engine produces to the tap (copied to host first; EngineTap in model/engine.h).
int gpu_engine_forward(GpuEngine *engine, const int32_t *tokens, int n_tokens, int position,
                       const EngineTap *tap, int32_t *next_token, ErrorMessage *err);

// The GPU engines behind the engine interface (gpu_engine_adapter.c): "fused" and "cublas", KV f32 or
// bf16, KV forcing, ENGINE_NEEDS_GPU. Their state is a GpuEngine (engine_wrap one to borrow it).
extern const EngineKind fused_engine_kind;
extern const EngineKind cublas_engine_kind;
extern const EngineKind dataflow_engine_kind;
const EngineKind *gpu_engine_kind_engine(GpuEngineKind kind);

// Storage-point forcing: the KV cache's analogue of teacher forcing. Two correct engines compute K
// and V that differ by an ulp of fp32 (different summation orders); where such a pair straddles a bf16
// rounding boundary the cached values differ by a whole bf16 step (2^-8 relative), and one flipped
// element can put a row of attention 1e-3 away from the golden although no kernel is wrong. Forcing
// stores the golden's K and V (fp32 host [n_tokens][n_kv_heads * head_dim], as a trace holds them,
// rounded exactly as this engine rounds) into the cache of `layer` for the positions of the next
// gpu_engine_forward (or layer run), in place of the engine's own. The engine still computes and
// traces its own k and v, so they are compared as before, and the bf16 write itself is checked
// bit-exactly by the kernel tests. Armed for one forward call, for every layer that was set; a forced
// decode step runs the graph's kernels without the graph.
int gpu_engine_force_kv(GpuEngine *engine, int layer, const float *k, const float *v, int n_tokens,
                        ErrorMessage *err);

// Copies the last forward's logits (its last row, [vocab] fp32) to host memory `out`.
int gpu_engine_logits(GpuEngine *engine, float *out, ErrorMessage *err);

// Kernel launches one decode step makes (for reports).
int gpu_engine_launches_per_token(const GpuEngine *engine);

#ifdef __cplusplus
}
#endif

#endif
