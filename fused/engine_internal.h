// Internals of the GPU engines shared by gpu_engine.c and the GPU tests: the layer-level entry point
// used by the per-layer isolation tests, and which trace tensors each engine writes.
//
// Trace tensors written (both engines, every step, prefill and decode): embed; per layer all 13 of
// TRACE_LAYER_TENSORS (attn_norm q k v attn attn_out resid_attn mlp_norm gate up act mlp_out
// resid_mlp: the fused MLP kernel writes gate/up/act to global memory anyway, 3 x intermediate
// floats per token, so nothing is skipped); final_norm, logits and next_token for the last row.
// k and v are the fp32 values before the bf16 cache rounding, as the format asks.
//
// Weights on the GPU: matrices bf16, bit-identical to the checkpoint's bf16 (an F32/F16 checkpoint is
// rounded to bf16 on upload, nearest even: the trace's weights_dtype stays "bf16" and the reference
// must be given the same rounded weights to match); norm weights expanded to fp32 (exact).
// The `cublas` engine also keeps fp32 copies of every matrix (exact expansions of the bf16 values), so
// its cublasSgemm/Sgemv projections see the same numbers with no new storage point.
//
// Prefill (n_tokens > 1) in both engines: cuBLAS SGEMM in fp32. The fused engine expands each bf16
// weight matrix to fp32 into a scratch buffer right before its GEMM (exact, so no storage point is
// added; cuBLAS has no bf16-weight x fp32-activation GEMM, and rounding activations to bf16 would add
// one). Norms, RoPE, the KV write and attention are the same kernels as decode.
#ifndef FUSECHECK_ENGINE_INTERNAL_H
#define FUSECHECK_ENGINE_INTERNAL_H

#include "gpu_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

// Width (columns) of layer tensor `name` (one of TRACE_LAYER_TENSORS) for this engine's model; -1 if unknown.
int gpu_engine_layer_tensor_width(const GpuEngine *engine, const char *name);

// Writes K and V history of `layer` for positions [first_position, first_position + n_positions)
// into the cache (k, v: fp32 host [n_positions][n_kv_heads*head_dim], rounded to bf16 when the cache
// is bf16, exactly as the engine itself stores them).
int gpu_engine_set_kv(GpuEngine *engine, int layer, int first_position, int n_positions, const float *k,
                      const float *v, ErrorMessage *err);

// Runs only `layer` on input x (host fp32 [n_tokens][hidden]) at positions [position, position +
// n_tokens), with the cache holding positions [0, position) (see gpu_engine_set_kv), and copies every
// tensor of TRACE_LAYER_TENSORS into outputs[i] (host, caller-allocated, n_tokens x width floats).
// n_tokens == 1 on the fused engine runs the fused decode kernels (not the graph); otherwise the
// prefill/unfused path of that engine.
int gpu_engine_run_layer(GpuEngine *engine, int layer, const float *x, int n_tokens, int position,
                         float *const outputs[TRACE_N_LAYER_TENSORS], ErrorMessage *err);

// Tests only: points layer `layer`'s W_o at an address no kernel may read, so the next fused decode
// step faults in output_projection_residual (the graph, if not yet captured, captures the bad pointer).
// After the fault the process's CUDA context is lost: destroy the engine and end the process.
void gpu_engine_break_output_projection_for_test(GpuEngine *engine, int layer);

#ifdef __cplusplus
}
#endif

#endif
