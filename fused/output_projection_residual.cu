// Kernel 3 (decode, one token): attn_out = W_o · attn, resid = x + attn_out, one launch. Contract in
// kernels.h. The attention vector (q_width floats) is staged in shared memory by every block, then one
// warp per output row streams its bf16 weight row with 16-byte loads. OPROJ_ROWS_PER_BLOCK rows per
// block gives 0.6B 128 blocks. The post-attention RMSNorm needs the whole residual row, which no
// block has here; it is fused into the head of the MLP kernel instead (every MLP block recomputes it
// from L2), which saves the same launch without a grid-wide dependency here.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define OPROJ_THREADS 256
#define OPROJ_ROWS_PER_BLOCK 8

__global__ void output_projection_residual_kernel(ModelDims dims, const float *attn, const uint16_t *w_o,
                                                  const float *x, float *attn_out, float *resid) {
    extern __shared__ float a_sh[];  // [q_width]
    int width = dims.n_heads * dims.head_dim;
    for (int i = threadIdx.x; i < width; i += blockDim.x) a_sh[i] = attn[i];
    __syncthreads();
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int row_begin = blockIdx.x * OPROJ_ROWS_PER_BLOCK;
    for (int r = row_begin + warp; r < row_begin + OPROJ_ROWS_PER_BLOCK && r < dims.hidden; r += OPROJ_THREADS / WARP) {
        float dot = warp_dot_bf16(w_o + (size_t)r * width, a_sh, width, lane);
        if (lane == 0) {
            attn_out[r] = dot;
            resid[r] = x[r] + dot;
        }
    }
}

extern "C" int launch_output_projection_residual(const ModelDims *dims, const float *attn, const uint16_t *w_o,
                                                 const float *x, float *attn_out, float *resid, cudaStream_t stream,
                                                 ErrorMessage *err) {
    size_t shared_bytes = (size_t)dims->n_heads * dims->head_dim * sizeof(float);
    if (shared_bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(output_projection_residual_kernel,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared_bytes),
                   "output_projection_residual_kernel");
    int blocks = (dims->hidden + OPROJ_ROWS_PER_BLOCK - 1) / OPROJ_ROWS_PER_BLOCK;
    output_projection_residual_kernel<<<blocks, OPROJ_THREADS, shared_bytes, stream>>>(*dims, attn, w_o, x,
                                                                                        attn_out, resid);
    LAUNCH_CHECK("output_projection_residual_kernel");
    return 0;
}
