// Kernel 1 (decode, one token): RMSNorm + Q/K/V projections + per-head q/k RMSNorm + RoPE + KV-cache
// write, one launch. Contract in kernels.h.
//
// Work split: the qkv_width = (n_heads + 2*n_kv_heads) * head_dim output rows are cut per head into
// slices of QKV_ROWS_PER_BLOCK rows, one block per slice (0.6B: 256 blocks, 2 per SM, every SM
// streams weights). Each warp computes QKV_ROWS_PER_WARP rows at once with all their 16-byte loads in
// flight (warp_dot_rows_bf16). Prologue (programmatic dependent launch): before waiting on the kernel
// that wrote x, the block asks L2 for its weight slice, so the weight stream starts while the
// previous kernel drains. Each block recomputes the input RMSNorm into shared memory (hidden floats
// from L2: cheap next to its weight slice). The per-head norm and RoPE need the whole head, so the
// last block to finish a head (atomic ticket per head, threadfence before it) runs the head epilogue.
// Deterministic: each output is one warp's fixed-order sum, and the epilogue is the same whichever
// block runs it.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define QKV_THREADS 256
#define QKV_ROWS_PER_WARP 2
#define QKV_ROWS_PER_BLOCK ((QKV_THREADS / WARP) * QKV_ROWS_PER_WARP)

__global__ void rmsnorm_qkv_rope_kernel(ModelDims dims, const float *x, const float *norm_w, const uint16_t *w_qkv,
                                        const float *q_norm_w, const float *k_norm_w, const float *rope_cos,
                                        const float *rope_sin, const int *d_position, float *attn_norm,
                                        float *qkv_raw, float *q, float *k, float *v, void *k_cache, void *v_cache,
                                        int kv_bf16, int max_context, unsigned *head_counters, int prefetch) {
    extern __shared__ float shared[];
    float *h = shared;                   // [hidden]
    float *tmp = shared + dims.hidden;   // [head_dim]
    float *head_constants = tmp + dims.head_dim;  // [head_dim] norm weights, [head_dim/2] cos, [head_dim/2] sin
    __shared__ float scratch[32];
    __shared__ int is_last;

    int hd = dims.head_dim;
    int blocks_per_head = (hd + QKV_ROWS_PER_BLOCK - 1) / QKV_ROWS_PER_BLOCK;
    int head = blockIdx.x / blocks_per_head, part = blockIdx.x % blocks_per_head;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;

    if (prefetch && threadIdx.x == 0) {
        int rows = min(QKV_ROWS_PER_BLOCK, hd - part * QKV_ROWS_PER_BLOCK);
        size_t row = (size_t)head * hd + part * QKV_ROWS_PER_BLOCK;
        prefetch_l2(w_qkv + row * dims.hidden, (size_t)rows * dims.hidden * sizeof(uint16_t));
    }
    // The head epilogue's constants (this head's norm weights, the RoPE row at the position the host
    // wrote before the graph ran) depend on no kernel: their load is issued now and lands during the
    // norm and the projection, instead of adding a trip to the last block's epilogue.
    int position = *d_position;
    int kind = head < dims.n_heads ? 0 : head < dims.n_heads + dims.n_kv_heads ? 1 : 2;
    int half = hd / 2;
    int position_ok = position >= 0 && position < max_context;
    // Constant i of [norm weights | cos row | sin row], 2 * head_dim in all.
    auto head_constant = [&](int i) {
        return i < hd         ? (kind == 0 ? q_norm_w : k_norm_w)[i]
               : i < hd + half ? rope_cos[(size_t)position * half + (i - hd)]
                               : rope_sin[(size_t)position * half + (i - hd - half)];
    };
    float constant = kind < 2 && position_ok && (int)threadIdx.x < 2 * hd ? head_constant(threadIdx.x) : 0.0f;
    // Warp w owns rows row_begin + w*QKV_ROWS_PER_WARP + [0, QKV_ROWS_PER_WARP) of this head; their
    // first step of weight loads is issued before the wait (weights depend on no kernel).
    int first = part * QKV_ROWS_PER_BLOCK + warp * QKV_ROWS_PER_WARP;
    int n_valid = min(QKV_ROWS_PER_WARP, hd - first);
    size_t row = (size_t)head * hd + first;
    uint4 first_w[4][QKV_ROWS_PER_WARP];
    warp_rows_first_loads<QKV_ROWS_PER_WARP, 4>(w_qkv + row * dims.hidden, dims.hidden, max(n_valid, 0), dims.hidden,
                                                lane, first_w);
    pdl_launch_dependents();
    pdl_wait();

    block_rmsnorm_to_shared(x, norm_w, dims.hidden, dims.eps, h, scratch);
    if (kind < 2 && (int)threadIdx.x < 2 * hd) head_constants[threadIdx.x] = constant;
    for (int i = QKV_THREADS + threadIdx.x; kind < 2 && position_ok && i < 2 * hd; i += QKV_THREADS)  // head_dim > 128
        head_constants[i] = head_constant(i);
    if (blockIdx.x == 0)
        for (int i = threadIdx.x; i < dims.hidden; i += blockDim.x) attn_norm[i] = h[i];

    if (n_valid > 0) {
        float dots[QKV_ROWS_PER_WARP];
        warp_dot_rows_bf16<QKV_ROWS_PER_WARP, 4>(w_qkv + row * dims.hidden, dims.hidden, n_valid, h, dims.hidden,
                                                 lane, dots, first_w);
#pragma unroll
        for (int r = 0; r < QKV_ROWS_PER_WARP; r++)
            if (lane == 0 && r < n_valid) qkv_raw[row + r] = dots[r];
    }

    // Last block of this head runs the epilogue (the threadFenceReduction pattern).
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        unsigned ticket = atomicAdd(&head_counters[head], 1u);
        is_last = (ticket == (unsigned)blocks_per_head - 1);
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    if (threadIdx.x == 0) head_counters[head] = 0;  // every block of this head has counted: ready for the next launch

    if (!position_ok) return;  // the host checks; never write out of bounds
    int index = kind == 0 ? head : kind == 1 ? head - dims.n_heads : head - dims.n_heads - dims.n_kv_heads;
    float *out = kind == 0 ? q + (size_t)index * hd : (kind == 1 ? k : v) + (size_t)index * hd;
    void *cache = kind == 1 ? k_cache : v_cache;
    size_t cache_row = ((size_t)index * max_context + position) * hd;
    // The constants staged in the prologue: norm weights, then the RoPE row at `position` (row 0 of
    // the staged table).
    head_epilogue(qkv_raw + (size_t)head * hd, kind, head_constants, hd, dims.eps, head_constants + hd,
                  head_constants + hd + half, 0, out, cache, kv_bf16, cache_row, tmp, scratch);
}

extern "C" int launch_rmsnorm_qkv_rope(const ModelDims *dims, const float *x, const float *norm_w,
                                       const uint16_t *w_qkv, const float *q_norm_w, const float *k_norm_w,
                                       const float *rope_cos, const float *rope_sin, const int *d_position,
                                       float *attn_norm, float *qkv_raw, float *q, float *k, float *v, void *k_cache,
                                       void *v_cache, int kv_bf16, int max_context, unsigned *head_counters,
                                       cudaStream_t stream, ErrorMessage *err) {
    int n_total_heads = dims->n_heads + 2 * dims->n_kv_heads;
    int blocks_per_head = (dims->head_dim + QKV_ROWS_PER_BLOCK - 1) / QKV_ROWS_PER_BLOCK;
    size_t shared_bytes = (size_t)(dims->hidden + 3 * dims->head_dim) * sizeof(float);  // h, tmp, head constants
    if (shared_bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(rmsnorm_qkv_rope_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)shared_bytes), "rmsnorm_qkv_rope_kernel");
    int pdl, prefetch;
    kernels_get_decode_options(&pdl, &prefetch);
    CUDA_CHECK(launch_maybe_pdl(rmsnorm_qkv_rope_kernel, dim3(n_total_heads * blocks_per_head), dim3(QKV_THREADS),
                                shared_bytes, stream, pdl, *dims, x, norm_w, w_qkv, q_norm_w, k_norm_w, rope_cos,
                                rope_sin, d_position, attn_norm, qkv_raw, q, k, v, k_cache, v_cache, kv_bf16,
                                max_context, head_counters, prefetch),
               "launch of rmsnorm_qkv_rope_kernel");
    return 0;
}
