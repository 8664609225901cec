// Host launchers of every GPU kernel, callable from C. Each launcher checks its launch and returns
// 0 / -1 with one line in err naming the kernel. Pointers are device pointers; "bf16" pointers hold
// raw bfloat16 bit patterns (uint16_t), exactly the checkpoint's bytes. Matrices are row-major
// [out_features][in_features] as in the checkpoint; activations are fp32 row-major [n_tokens][width].
//
// KV cache layout (one buffer each for K and V per layer): [n_kv_heads][max_context][head_dim],
// bf16 (kv_bf16 = 1, values rounded to nearest even) or fp32 (kv_bf16 = 0). Positions live in device
// memory (*d_position = position of the first token of the launch) so one captured CUDA graph serves
// every decode step.
#ifndef FUSECHECK_KERNELS_H
#define FUSECHECK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../model/error.h"
#include "fused_options.h"

typedef struct {
    int hidden;        // d_model
    int intermediate;  // MLP width
    int n_heads;       // query heads
    int n_kv_heads;    // key/value heads, divides n_heads
    int head_dim;      // even
    int vocab;
    float eps;         // RMSNorm epsilon
} ModelDims;

static inline int dims_q_width(const ModelDims *d) { return d->n_heads * d->head_dim; }
static inline int dims_kv_width(const ModelDims *d) { return d->n_kv_heads * d->head_dim; }
static inline int dims_qkv_width(const ModelDims *d) { return (d->n_heads + 2 * d->n_kv_heads) * d->head_dim; }

// ---- decode launch options ----------------------------------------------------------------------
// The decode launchers (1, 2b, 3, 4, 5) take `options` (fused_options.h: programmatic dependent
// launch), the engine's own; NULL gives the defaults.

// ---- 1. rmsnorm_qkv.cu (decode, 1 token) --------------------------------------------------------
// attn_norm = rmsnorm(x, norm_w); qkv_raw = W_qkv · attn_norm with W_qkv = [Wq; Wk; Wv] stacked by rows
// ([qkv_width][hidden] bf16). Outputs: attn_norm [hidden], qkv_raw [qkv_width] = [q | k | v] before
// the per-head norm and RoPE, which the decode attention kernel (2b) applies. One launch.
int launch_rmsnorm_qkv(const ModelDims *dims, const float *x, const float *norm_w, const uint16_t *w_qkv,
                       float *attn_norm, float *qkv_raw, const FusedOptions *options, cudaStream_t stream,
                       ErrorMessage *err);

// ---- 2. attention_decode.cu (decode and prefill) -----------------------------------------------
// For each token t of n_tokens (context = *d_position + t + 1, causal): attn[t] = softmax(q_t·Kᵀ /
// sqrt(head_dim)) · V over cache positions [0, context), GQA (q head h reads kv head h / (n_heads /
// n_kv_heads)). Split-K: the cache is cut into ATTENTION_CHUNK-position chunks, one block per
// (kv head, chunk, token) computes an online-softmax partial for all q heads of its group, then a
// combine kernel merges the chunks in a fixed order (deterministic). n_chunk_blocks: chunks launched
// (>= ceil(largest context / ATTENTION_CHUNK); blocks past a token's context exit at once).
// Scratch: partial_o [n_tokens][n_heads][n_chunk_blocks][head_dim], partial_ml [..][2]. Two launches.
#define ATTENTION_CHUNK 64
int launch_attention(const ModelDims *dims, const float *q, const void *k_cache, const void *v_cache, int kv_bf16,
                     int max_context, const int *d_position, int n_tokens, int n_chunk_blocks, float *partial_o,
                     float *partial_ml, float *attn, cudaStream_t stream, ErrorMessage *err);

// ---- 2b. attention_decode.cu: the fused decode path's attention (one token, one launch) ----------
// The token at p = *d_position, from kernel 1's qkv_raw ([q | k | v], fp32): q, k = RoPE at p of
// rmsnorm_per_head(raw q | raw k, q_norm_w | k_norm_w) (rope_cos/sin: the shared RopeTable,
// [positions][head_dim/2]), v = raw v; written to q [q_width], k, v [kv_width] (fp32, before cache
// rounding) and to cache row p (bf16 rounded to nearest even when kv_bf16). Then attn = softmax(q·Kᵀ
// / sqrt(head_dim)) · V over cache positions [0, p], GQA (q head h reads kv head h / (n_heads /
// n_kv_heads)), row p taken as stored. newest_from_cache (storage forcing): row p already holds the
// K/V to attend to; it is read and not written (q, k, v are still written).
// Grid (kv head, n_splits); the context is cut into at most n_splits chunks of a length that follows
// the context (so one captured graph serves every position), each block keeps an online softmax for
// all q heads of its kv head, and the last block of each kv head (atomic ticket) merges the splits
// in split order: deterministic, one launch. Instances: head_dim 64 or 128, 1, 2, 4 or 8 q heads
// per kv head (attention_decode_supported says; otherwise use kernel 1, launch_qk_norm_rope_rows and
// launch_attention). n_splits from attention_decode_splits (<= ATTENTION_DECODE_MAX_SPLITS). Scratch:
// partial_o [n_heads][n_splits][head_dim], partial_ml [n_heads][n_splits][2]; counters: n_kv_heads
// zeroed unsigned (left zeroed).
#define ATTENTION_DECODE_MAX_SPLITS 128
int attention_decode_supported(const ModelDims *dims, int kv_bf16);
int attention_decode_splits(const ModelDims *dims, int *n_splits, ErrorMessage *err);
int launch_attention_decode(const ModelDims *dims, const float *qkv_raw, const float *q_norm_w, const float *k_norm_w,
                            const float *rope_cos, const float *rope_sin, const int *d_position, void *k_cache,
                            void *v_cache, int kv_bf16, int max_context, int newest_from_cache, int n_splits,
                            float *partial_o, float *partial_ml, unsigned *counters, float *q, float *k, float *v,
                            float *attn, const FusedOptions *options, cudaStream_t stream, ErrorMessage *err);

// ---- 3. output_projection_residual.cu (decode) ---------------------------------------------------
// attn_out = W_o · attn ([hidden][q_width] bf16), resid = x + attn_out. One launch.
int launch_output_projection_residual(const ModelDims *dims, const float *attn, const uint16_t *w_o,
                                      const float *x, float *attn_out, float *resid, const FusedOptions *options,
                                      cudaStream_t stream, ErrorMessage *err);

// ---- 4. mlp_fused.cu (decode) --------------------------------------------------------------------
// mlp_norm = rmsnorm(resid_attn, norm_w); gate = Wg·mlp_norm, up = Wu·mlp_norm (w_gate_up = [Wg; Wu],
// [2*intermediate][hidden] bf16); act = silu(gate)*up; mlp_out = Wd·act ([hidden][intermediate]);
// resid_mlp = resid_attn + mlp_out. One launch of a persistent grid (grid_blocks from
// mlp_fused_grid_blocks, all co-resident) with one grid-wide barrier between the act phase and the
// down projection. Each down-projection output is a sum of a few column slices' warp dot products,
// added in slice order: no atomics, so it is deterministic (bit-identical run to run for one grid
// size; another grid size may cut the slices differently).
// barrier: one zeroed unsigned long long that only ever increases (safe across graph replays of one grid
// size; zero it again before launching with a different grid_blocks).
int mlp_fused_grid_blocks(const ModelDims *dims, int *grid_blocks, ErrorMessage *err);
int launch_mlp_fused(const ModelDims *dims, const float *resid_attn, const float *norm_w, const uint16_t *w_gate_up,
                     const uint16_t *w_down, float *mlp_norm, float *gate, float *up, float *act, float *mlp_out,
                     float *resid_mlp, unsigned long long *barrier, int grid_blocks, const FusedOptions *options,
                     cudaStream_t stream, ErrorMessage *err);

// ---- 5. lm_head_argmax.cu ------------------------------------------------------------------------
// final_norm = rmsnorm(x, norm_w) (x: one row [hidden]); logits = W_lm · final_norm ([vocab][hidden]
// bf16); *next_token = argmax(logits), lowest index on ties. One launch of a persistent grid (at most
// lm_head_argmax_blocks(vocab) blocks, fewer when fewer are resident at once): each block reduces its
// rows to a (max, index) partial, the last block to finish (atomic ticket) reduces the partials in
// block order, so the result is deterministic. Scratch: lm_head_argmax_blocks(vocab) floats and ints;
// the counter is one zeroed unsigned (left zeroed).
int lm_head_argmax_blocks(int vocab);
int launch_lm_head_argmax(const ModelDims *dims, const float *x, const float *norm_w, const uint16_t *w_lm,
                          float *final_norm, float *logits, float *partial_max, int *partial_index,
                          unsigned *counter, int *next_token, const FusedOptions *options, cudaStream_t stream,
                          ErrorMessage *err);

// ---- ops_unfused.cu: one plain kernel per op (prefill and the cublas engine) ---------------------
// out[t] = embed[tokens[t]] expanded from bf16 ([vocab][hidden]); tokens in device memory, checked on
// the host before upload.
int launch_embed(const uint16_t *embed, const int *d_tokens, int n_tokens, int hidden, float *out,
                 cudaStream_t stream, ErrorMessage *err);
// out[r] = rmsnorm(x[r], w) for rows r in [0, rows), width n.
int launch_rmsnorm_rows(const float *x, const float *w, int rows, int n, float eps, float *out,
                        cudaStream_t stream, ErrorMessage *err);
// Per token t (position *d_position + t): from qkv_raw [n_tokens][qkv_width] (= [q | k | v]) writes
// q (per-head RMSNorm + RoPE), k (same), v (copy) and the cache. Same math as the decode attention's
// head epilogue (2b).
int launch_qk_norm_rope_rows(const ModelDims *dims, const float *qkv_raw, const float *q_norm_w,
                             const float *k_norm_w, const float *rope_cos, const float *rope_sin,
                             const int *d_position, int n_tokens, float *q, float *k, float *v, void *k_cache,
                             void *v_cache, int kv_bf16, int max_context, cudaStream_t stream, ErrorMessage *err);
int launch_add(const float *a, const float *b, float *out, size_t n, cudaStream_t stream, ErrorMessage *err);
// gate_up [rows][2*width] (= [gate | up] per row) -> gate, up, act = silu(gate)*up, each [rows][width].
int launch_silu_mul(const float *gate_up, int rows, int width, float *gate, float *up, float *act,
                    cudaStream_t stream, ErrorMessage *err);
// dst[i] = bf16 src[i] expanded to fp32 (exact).
int launch_expand_bf16(const uint16_t *src, float *dst, size_t n, cudaStream_t stream, ErrorMessage *err);
// buffer[0..n) = pseudo-random values in [-1, 1) from seed (bf16 or fp32): synthetic KV for benchmarks.
int launch_fill_pseudorandom(void *buffer, size_t n, int bf16, unsigned seed, cudaStream_t stream, ErrorMessage *err);
// *out = argmax(x[0..n)), lowest index on ties; one block.
int launch_argmax(const float *x, int n, int *out, cudaStream_t stream, ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
