// Kernel 5: final RMSNorm + LM head + greedy argmax, one launch. Contract in kernels.h.
// The grid is persistent (as many blocks as are resident at once, 2 per SM): every block recomputes
// final_norm into shared memory once, then each warp streams tasks of LM_ROWS_PER_WARP vocabulary rows
// (all their 16-byte loads in flight; the first task's before the programmatic-dependent-launch wait
// for the last layer, each later task's while the warp finishes the one before; 311 MB for 0.6B, far
// beyond L2, so no prefetch). A block per 32 rows, as before, paid its norm, its reduction and its
// ticket every 64 KB, with its registers held through the ticket's round trip; the persistent grid pays
// them once. Each block reduces its rows to (max, lowest index), and the last block to take an atomic
// ticket reduces the per-block partials in block order. Ties and order: a later index wins only when
// strictly greater, so the lowest index of the maximum is chosen, as numpy does.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"
#include "launch_shapes.h"

// (value, index) pair ordering: larger value first, then lower index. NaN never wins over a number.
__device__ __forceinline__ int better(float v, int i, float best_v, int best_i) {
    if (isnan(v)) return 0;
    if (best_i < 0 || isnan(best_v)) return 1;
    return v > best_v || (v == best_v && i < best_i);
}

// Block-wide argmax of (v, i), result in thread 0. sh_v/sh_i: 32 entries each.
__device__ void block_argmax(float v, int i, float *sh_v, int *sh_i, float *out_v, int *out_i) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    for (int offset = WARP / 2; offset > 0; offset >>= 1) {
        float ov = __shfl_down_sync(0xffffffffu, v, offset);
        int oi = __shfl_down_sync(0xffffffffu, i, offset);
        if (oi >= 0 && better(ov, oi, v, i)) { v = ov; i = oi; }
    }
    __syncthreads();
    if (lane == 0) { sh_v[warp] = v; sh_i[warp] = i; }
    __syncthreads();
    if (threadIdx.x == 0) {
        float bv = sh_v[0];
        int bi = sh_i[0];
        for (int w = 1; w < (int)(blockDim.x / WARP); w++)
            if (sh_i[w] >= 0 && better(sh_v[w], sh_i[w], bv, bi)) { bv = sh_v[w]; bi = sh_i[w]; }
        *out_v = bv;
        *out_i = bi;
    }
}

__global__ void __launch_bounds__(LM_THREADS, 2) lm_head_argmax_kernel(
    ModelDims dims, const float *x, const float *norm_w, const uint16_t *w_lm, float *final_norm, float *logits,
    float *partial_max, int *partial_index, unsigned *counter, int *next_token) {
    extern __shared__ float h[];  // [hidden]
    __shared__ float scratch[32];
    __shared__ float sh_v[32];
    __shared__ int sh_i[32];
    __shared__ int is_last;
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = LM_THREADS / WARP;
    // Tasks of LM_ROWS_PER_WARP consecutive rows; warp g of the grid takes tasks g, g + G, g + 2G, ...
    // (G warps in the grid), so at any moment the grid streams one contiguous window of W_lm.
    const int n_tasks = (dims.vocab + LM_ROWS_PER_WARP - 1) / LM_ROWS_PER_WARP;
    const int grid_warps = gridDim.x * warps;
    int task = blockIdx.x * warps + warp;
    auto task_rows = [&](int t) { return w_lm + (size_t)t * LM_ROWS_PER_WARP * dims.hidden; };
    auto task_valid = [&](int t) { return t < n_tasks ? min(LM_ROWS_PER_WARP, dims.vocab - t * LM_ROWS_PER_WARP) : 0; };
    // The first step of the first task's rows (0.6B: all of them), before the wait: weights depend on
    // no kernel, so the grid starts streaming while the last layer drains.
    uint4 step_w[4][LM_ROWS_PER_WARP];
    warp_rows_first_loads<LM_ROWS_PER_WARP, 4>(task_rows(min(task, n_tasks - 1)), dims.hidden, task_valid(task),
                                               dims.hidden, lane, step_w);

    pdl_launch_dependents();
    pdl_wait();
    block_rmsnorm_to_shared(x, norm_w, dims.hidden, dims.eps, h, scratch);
    if (blockIdx.x == 0)
        for (int i = threadIdx.x; i < dims.hidden; i += blockDim.x) final_norm[i] = h[i];

    float best_v = -INFINITY;
    int best_i = -1;
    for (; task < n_tasks; task += grid_warps) {
        const int first = task * LM_ROWS_PER_WARP, n_valid = task_valid(task);
        float dots[LM_ROWS_PER_WARP];
        warp_dot_rows_bf16<LM_ROWS_PER_WARP, 4>(task_rows(task), dims.hidden, n_valid, h, dims.hidden, lane, dots,
                                                step_w);
        // The next task's first step goes out before this task's bookkeeping, so the warp's loads stay
        // in flight while it writes logits and compares.
        const int next = task + grid_warps;
        warp_rows_first_loads<LM_ROWS_PER_WARP, 4>(task_rows(min(next, n_tasks - 1)), dims.hidden, task_valid(next),
                                                   dims.hidden, lane, step_w);
#pragma unroll
        for (int k = 0; k < LM_ROWS_PER_WARP; k++) {
            if (k >= n_valid) break;
            if (lane == 0) logits[first + k] = dots[k];
            if (better(dots[k], first + k, best_v, best_i)) { best_v = dots[k]; best_i = first + k; }
        }
    }
    // Only lane 0 of each warp holds its warp's candidates meaningfully; all lanes computed the same dot.
    if (lane != 0) best_i = -1;
    float block_v;
    int block_i;
    block_argmax(best_v, best_i, sh_v, sh_i, &block_v, &block_i);
    if (threadIdx.x == 0) {
        partial_max[blockIdx.x] = block_v;
        partial_index[blockIdx.x] = block_i;
        __threadfence();
        unsigned ticket = atomicAdd(counter, 1u);
        is_last = (ticket == gridDim.x - 1);
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    best_v = -INFINITY;
    best_i = -1;
    for (int b = threadIdx.x; b < (int)gridDim.x; b += blockDim.x) {
        float v = __ldcg(partial_max + b);
        int i = __ldcg(partial_index + b);
        if (i >= 0 && better(v, i, best_v, best_i)) { best_v = v; best_i = i; }
    }
    block_argmax(best_v, best_i, sh_v, sh_i, &block_v, &block_i);
    if (threadIdx.x == 0) {
        *next_token = block_i;  // -1 only when every logit is NaN: the host reports it
        *counter = 0;
    }
}

extern "C" int lm_head_argmax_blocks(int vocab) { return (vocab + LM_ROWS_PER_BLOCK - 1) / LM_ROWS_PER_BLOCK; }

extern "C" int launch_lm_head_argmax(const ModelDims *dims, const float *x, const float *norm_w, const uint16_t *w_lm,
                                     float *final_norm, float *logits, float *partial_max, int *partial_index,
                                     unsigned *counter, int *next_token, const FusedOptions *options,
                                     cudaStream_t stream, ErrorMessage *err) {
    size_t shared_bytes = (size_t)dims->hidden * sizeof(float);
    if (shared_bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(lm_head_argmax_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)shared_bytes), "lm_head_argmax_kernel");
    int n_sms, per_sm;
    if (device_multiprocessors(&n_sms, "lm_head_argmax_kernel", err) ||
        blocks_per_multiprocessor(lm_head_argmax_kernel, LM_THREADS, shared_bytes, "lm_head_argmax_kernel", &per_sm, err))
        return -1;
    int blocks = lm_head_argmax_blocks(dims->vocab);
    if (blocks > n_sms * per_sm) blocks = n_sms * per_sm;
    int pdl = fused_options_or_defaults(options).pdl;
    CUDA_CHECK(launch_maybe_pdl(lm_head_argmax_kernel, dim3(blocks), dim3(LM_THREADS),
                                shared_bytes, stream, pdl, *dims, x, norm_w, w_lm, final_norm, logits, partial_max,
                                partial_index, counter, next_token),
               "launch of lm_head_argmax_kernel");
    return 0;
}
