// Kernel 1 (decode, one token): RMSNorm + Q/K/V projections, one launch. Contract in kernels.h.
//
// Work split: the qkv_width = (n_heads + 2*n_kv_heads) * head_dim output rows are cut into slices of
// QKV_ROWS_PER_BLOCK rows, one block per slice (0.6B: 256 blocks, 2 per SM, every SM streams
// weights). Each warp computes QKV_ROWS_PER_WARP rows at once with all their 16-byte loads in flight
// (warp_dot_rows_bf16), the first (for 0.6B the only) step of them issued before the programmatic-
// dependent-launch wait, since weights depend on no kernel. Each block recomputes the input RMSNorm
// into shared memory (hidden floats from L2: cheap next to its weight slice). The per-head q/k norm,
// RoPE and the cache write need whole heads; they run in the attention kernel's prologue, which reads
// these raw rows anyway, so this kernel ends without a ticket or a serial tail. Deterministic: each
// output is one warp's fixed-order sum.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"
#include "launch_shapes.h"

__global__ void __launch_bounds__(QKV_THREADS) rmsnorm_qkv_kernel(ModelDims dims, const float *x, const float *norm_w,
                                                                  const uint16_t *w_qkv, float *attn_norm,
                                                                  float *qkv_raw) {
    extern __shared__ float h[];  // [hidden]
    __shared__ float scratch[32];
    int qkv_width = (dims.n_heads + 2 * dims.n_kv_heads) * dims.head_dim;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int block_row = blockIdx.x * QKV_ROWS_PER_BLOCK;
    // Warp w owns rows first + [0, QKV_ROWS_PER_WARP); their first step of weight loads is issued
    // before the wait.
    int first = block_row + warp * QKV_ROWS_PER_WARP;
    int n_valid = min(QKV_ROWS_PER_WARP, qkv_width - first);
    uint4 first_w[4][QKV_ROWS_PER_WARP];
    warp_rows_first_loads<QKV_ROWS_PER_WARP, 4>(w_qkv + (size_t)max(min(first, qkv_width - 1), 0) * dims.hidden,
                                                dims.hidden, max(n_valid, 0), dims.hidden, lane, first_w);
    pdl_launch_dependents();
    pdl_wait();

    block_rmsnorm_to_shared(x, norm_w, dims.hidden, dims.eps, h, scratch);
    if (blockIdx.x == 0)
        for (int i = threadIdx.x; i < dims.hidden; i += blockDim.x) attn_norm[i] = h[i];
    if (n_valid <= 0) return;
    float dots[QKV_ROWS_PER_WARP];
    warp_dot_rows_bf16<QKV_ROWS_PER_WARP, 4>(w_qkv + (size_t)first * dims.hidden, dims.hidden, n_valid, h,
                                             dims.hidden, lane, dots, first_w);
#pragma unroll
    for (int r = 0; r < QKV_ROWS_PER_WARP; r++)
        if (lane == 0 && r < n_valid) qkv_raw[first + r] = dots[r];
}

extern "C" int launch_rmsnorm_qkv(const ModelDims *dims, const float *x, const float *norm_w, const uint16_t *w_qkv,
                                  float *attn_norm, float *qkv_raw, const FusedOptions *options, cudaStream_t stream,
                                  ErrorMessage *err) {
    int blocks = (dims_qkv_width(dims) + QKV_ROWS_PER_BLOCK - 1) / QKV_ROWS_PER_BLOCK;
    size_t shared_bytes = (size_t)dims->hidden * sizeof(float);
    if (shared_bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(rmsnorm_qkv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)shared_bytes), "rmsnorm_qkv_kernel");
    FusedOptions opt = fused_options_or_defaults(options);
    CUDA_CHECK(launch_maybe_pdl(rmsnorm_qkv_kernel, dim3(blocks), dim3(QKV_THREADS), shared_bytes, stream, opt.pdl,
                                *dims, x, norm_w, w_qkv, attn_norm, qkv_raw),
               "launch of rmsnorm_qkv_kernel");
    return 0;
}
