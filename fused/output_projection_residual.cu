// Kernel 3 (decode, one token): attn_out = W_o · attn, resid = x + attn_out, one launch. Contract in
// kernels.h. Prologue (programmatic dependent launch): the block asks L2 for its weight rows before
// waiting on the attention kernel, which is latency-bound, so W_o streams in while attention runs.
// Then the attention vector (q_width floats) is staged in shared memory and each warp computes
// OPROJ_ROWS_PER_WARP rows with all their 16-byte loads in flight. 4 rows per 128-thread block gives
// 0.6B 256 blocks (every SM busy). The post-attention RMSNorm needs the whole residual row, which no
// block has here; it is fused into the head of the MLP kernel instead (every MLP block recomputes it
// from L2), which saves the same launch without a grid-wide dependency here.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"
#include "launch_shapes.h"

__global__ void __launch_bounds__(OPROJ_THREADS) output_projection_residual_kernel(ModelDims dims, const float *attn,
                                                                                 const uint16_t *w_o, const float *x,
                                                                                 float *attn_out, float *resid) {
    extern __shared__ float a_sh[];  // [q_width]
    int width = dims.n_heads * dims.head_dim;
    int row_begin = blockIdx.x * OPROJ_ROWS_PER_BLOCK;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int first = row_begin + warp * OPROJ_ROWS_PER_WARP;
    int n_valid = min(OPROJ_ROWS_PER_WARP, dims.hidden - first);
    // The first step of this warp's weight loads, before the wait: weights depend on no kernel.
    uint4 first_w[8][OPROJ_ROWS_PER_WARP];
    warp_rows_first_loads<OPROJ_ROWS_PER_WARP, 8>(w_o + (size_t)max(first, 0) * width, width, max(n_valid, 0), width,
                                                  lane, first_w);
    pdl_launch_dependents();
    pdl_wait();

    // The residual input, loaded now so its trip overlaps the staging and the weight loads.
    float x_in[OPROJ_ROWS_PER_WARP];
#pragma unroll
    for (int r = 0; r < OPROJ_ROWS_PER_WARP; r++) x_in[r] = lane == 0 && r < n_valid ? x[first + r] : 0.0f;
    block_load_to_shared(attn, a_sh, width);
    __syncthreads();
    if (n_valid <= 0) return;
    float dots[OPROJ_ROWS_PER_WARP];
    warp_dot_rows_bf16<OPROJ_ROWS_PER_WARP, 8>(w_o + (size_t)first * width, width, n_valid, a_sh, width, lane, dots,
                                               first_w);
#pragma unroll
    for (int r = 0; r < OPROJ_ROWS_PER_WARP; r++)
        if (lane == 0 && r < n_valid) {
            attn_out[first + r] = dots[r];
            resid[first + r] = x_in[r] + dots[r];
        }
}

extern "C" int launch_output_projection_residual(const ModelDims *dims, const float *attn, const uint16_t *w_o,
                                                 const float *x, float *attn_out, float *resid,
                                                 const FusedOptions *options, cudaStream_t stream, ErrorMessage *err) {
    size_t shared_bytes = (size_t)dims->n_heads * dims->head_dim * sizeof(float);
    if (shared_bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(output_projection_residual_kernel,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared_bytes),
                   "output_projection_residual_kernel");
    int blocks = (dims->hidden + OPROJ_ROWS_PER_BLOCK - 1) / OPROJ_ROWS_PER_BLOCK;
    FusedOptions opt = fused_options_or_defaults(options);
    CUDA_CHECK(launch_maybe_pdl(output_projection_residual_kernel, dim3(blocks), dim3(OPROJ_THREADS), shared_bytes,
                                stream, opt.pdl, *dims, attn, w_o, x, attn_out, resid),
               "launch of output_projection_residual_kernel");
    return 0;
}
