// Device helpers shared by the kernels: warp/block reductions, bf16 row · fp32 vector dot products
// with 16-byte weight loads, RMSNorm into shared memory, the RoPE/qk-norm head epilogue.
#ifndef FUSECHECK_DEVICE_COMMON_CUH
#define FUSECHECK_DEVICE_COMMON_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#define WARP 32

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = WARP / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = WARP / 2; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the block in a fixed order (deterministic). scratch: 32 floats of shared memory. Every
// thread of the block must call it; every thread gets the total.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, n_warps = (blockDim.x + WARP - 1) / WARP;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < n_warps; w++) total += scratch[w];
    return total;
}

__device__ __forceinline__ float block_max(float v, float *scratch) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, n_warps = (blockDim.x + WARP - 1) / WARP;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float m = -INFINITY;
    for (int w = 0; w < n_warps; w++) m = fmaxf(m, scratch[w]);
    return m;
}

__device__ __forceinline__ float bf16_bits_to_float(uint16_t bits) { return __uint_as_float((uint32_t)bits << 16); }

// One warp: dot(row[0..n), x[0..n)) with row bf16 in global memory and x fp32 in shared memory.
// When n is a multiple of 8 each lane reads 16 bytes (8 weights) per load, several loads in flight;
// otherwise a plain strided loop. Result in every lane. Fixed summation order (deterministic).
__device__ __forceinline__ float warp_dot_bf16(const uint16_t *row, const float *x, int n, int lane) {
    float acc = 0.0f;
    if ((n & 7) == 0) {
        const uint4 *row8 = (const uint4 *)row;
        const float4 *x4 = (const float4 *)x;
        int n8 = n >> 3;
#pragma unroll 4
        for (int k = lane; k < n8; k += WARP) {
            uint4 w = __ldg(row8 + k);
            float4 a = x4[2 * k], b = x4[2 * k + 1];
            acc = fmaf(__uint_as_float(w.x << 16), a.x, acc);
            acc = fmaf(__uint_as_float(w.x & 0xffff0000u), a.y, acc);
            acc = fmaf(__uint_as_float(w.y << 16), a.z, acc);
            acc = fmaf(__uint_as_float(w.y & 0xffff0000u), a.w, acc);
            acc = fmaf(__uint_as_float(w.z << 16), b.x, acc);
            acc = fmaf(__uint_as_float(w.z & 0xffff0000u), b.y, acc);
            acc = fmaf(__uint_as_float(w.w << 16), b.z, acc);
            acc = fmaf(__uint_as_float(w.w & 0xffff0000u), b.w, acc);
        }
    } else {
        for (int k = lane; k < n; k += WARP) acc = fmaf(bf16_bits_to_float(row[k]), x[k], acc);
    }
    return warp_sum(acc);
}

// out_sh[i] = x[i] * rsqrt(mean(x^2) + eps) * w[i], for the whole block; x global, out_sh shared.
__device__ __forceinline__ void block_rmsnorm_to_shared(const float *x, const float *w, int n, float eps,
                                                        float *out_sh, float *scratch) {
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = x[i];
        out_sh[i] = v;
        ss = fmaf(v, v, ss);
    }
    float total = block_sum(ss, scratch);
    float inv = rsqrtf(total / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) out_sh[i] = out_sh[i] * inv * w[i];
    __syncthreads();
}

__device__ __forceinline__ void cache_store(void *cache, int kv_bf16, size_t index, float value) {
    if (kv_bf16) ((__nv_bfloat16 *)cache)[index] = __float2bfloat16_rn(value);
    else ((float *)cache)[index] = value;
}

__device__ __forceinline__ float cache_load(const void *cache, int kv_bf16, size_t index) {
    if (kv_bf16) return __bfloat162float(((const __nv_bfloat16 *)cache)[index]);
    return ((const float *)cache)[index];
}

// The epilogue of one head, for a whole block: raw (head_dim values, any memory) -> for q/k heads
// per-head RMSNorm with norm_w then rotate-half RoPE at `position`; v heads copied. Writes out[0..hd)
// and, for k/v heads, the cache row. tmp_sh: head_dim floats of shared memory; scratch: 32 floats.
// kind: 0 q, 1 k, 2 v. Raw values are read with __ldcg (L2) because other blocks of the same launch
// may have written them.
__device__ __forceinline__ void head_epilogue(const float *raw, int kind, const float *norm_w, int hd, float eps,
                                              const float *rope_cos, const float *rope_sin, int position,
                                              float *out, void *cache, int kv_bf16, size_t cache_row,
                                              float *tmp_sh, float *scratch) {
    float ss = 0.0f;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        float v = __ldcg(raw + i);
        tmp_sh[i] = v;
        ss = fmaf(v, v, ss);
    }
    float total = block_sum(ss, scratch);  // also orders the tmp_sh writes before the reads below
    if (kind == 2) {
        for (int i = threadIdx.x; i < hd; i += blockDim.x) {
            out[i] = tmp_sh[i];
            cache_store(cache, kv_bf16, cache_row + i, tmp_sh[i]);
        }
        return;
    }
    float inv = rsqrtf(total / (float)hd + eps);
    int half = hd / 2;
    const float *c = rope_cos + (size_t)position * half, *s = rope_sin + (size_t)position * half;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float a = tmp_sh[i] * inv * norm_w[i];
        float b = tmp_sh[i + half] * inv * norm_w[i + half];
        float ra = a * c[i] - b * s[i];
        float rb = b * c[i] + a * s[i];
        out[i] = ra;
        out[i + half] = rb;
        if (kind == 1) {
            cache_store(cache, kv_bf16, cache_row + i, ra);
            cache_store(cache, kv_bf16, cache_row + i + half, rb);
        }
    }
}

#endif
