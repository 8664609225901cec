// Device helpers shared by the kernels: warp/block reductions, bf16 row · fp32 vector dot products
// with 16-byte weight loads, RMSNorm into shared memory, the RoPE/qk-norm head epilogue.
#ifndef FUSECHECK_DEVICE_COMMON_CUH
#define FUSECHECK_DEVICE_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda_check.h"

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

// ---- programmatic dependent launch (decode kernels) ---------------------------------------------
// A decode kernel launched with cudaLaunchAttributeProgrammaticStreamSerialization may start while
// the kernel before it still runs. Its prologue may then only do work that reads nothing the earlier
// kernel writes (loading its first weights into registers), then pdl_launch_dependents() lets the next
// kernel start its own prologue, and pdl_wait() blocks until every earlier kernel has completed and
// its writes are visible. Every block calls pdl_wait() before touching activations, so a kernel never
// completes before its predecessor (completion stays transitive down the chain). Both are no-ops when
// the kernel was launched without the attribute.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Weights are read once per token: 16-byte loads that skip L1 (they are never reused by the block).
__device__ __forceinline__ uint4 load_weights_16(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

__device__ __forceinline__ float dot8_bf16(uint4 w, float4 a, float4 b, float acc) {
    acc = fmaf(__uint_as_float(w.x << 16), a.x, acc);
    acc = fmaf(__uint_as_float(w.x & 0xffff0000u), a.y, acc);
    acc = fmaf(__uint_as_float(w.y << 16), a.z, acc);
    acc = fmaf(__uint_as_float(w.y & 0xffff0000u), a.w, acc);
    acc = fmaf(__uint_as_float(w.z << 16), b.x, acc);
    acc = fmaf(__uint_as_float(w.z & 0xffff0000u), b.y, acc);
    acc = fmaf(__uint_as_float(w.w << 16), b.z, acc);
    acc = fmaf(__uint_as_float(w.w & 0xffff0000u), b.w, acc);
    return acc;
}

// One warp, R dot products at once: out[r] = row_r · x for rows row_r = rows + r * row_stride
// (elements), n columns, x fp32 in shared memory. Memory-bound GEMV lives on bytes in flight, so for
// every step of U column blocks all U x R 16-byte loads are issued before the first is used (U x R
// x 16 bytes per lane outstanding). Rows past n_valid (< R) are not read; their out is 0. Needs
// n % 8 == 0 and 16-byte aligned rows; otherwise a plain strided loop. Each lane's partial sum runs
// over its columns in a fixed order, then a fixed xor-shuffle tree: deterministic. Result in every lane.
// The loads of one step (columns from k0, in 16-byte units) of warp_dot_rows_bf16 into w.
template <int R, int U>
__device__ __forceinline__ void warp_rows_step_loads(const uint16_t *rows, size_t row_stride, int n_valid, int n8,
                                                     int k0, uint4 (&w)[U][R]) {
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
        for (int r = 0; r < R; r++) {
            int k = k0 + u * WARP;
            w[u][r] = (k < n8 && r < n_valid) ? load_weights_16((const uint4 *)(rows + r * row_stride) + k)
                                              : make_uint4(0u, 0u, 0u, 0u);
        }
}

// Weights depend on no kernel, so a decode kernel issues its first step of weight loads before its
// programmatic-dependent-launch wait and passes them as `first` (warp_rows_first_loads; all zero when
// n % 8 != 0, where the strided loop ignores them). NULL: warp_dot_rows_bf16 loads step 0 itself.
template <int R, int U>
__device__ __forceinline__ void warp_rows_first_loads(const uint16_t *rows, size_t row_stride, int n_valid, int n,
                                                      int lane, uint4 (&first)[U][R]) {
    warp_rows_step_loads<R, U>(rows, row_stride, (n & 7) == 0 ? n_valid : 0, n >> 3, lane, first);
}

template <int R, int U>
__device__ __forceinline__ void warp_dot_rows_step(const uint4 (&w)[U][R], const float4 *x4, int n8, int k0,
                                                   float (&acc)[R]) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        int k = k0 + u * WARP;
        if (k < n8) {
            float4 a = x4[2 * k], b = x4[2 * k + 1];
#pragma unroll
            for (int r = 0; r < R; r++) acc[r] = dot8_bf16(w[u][r], a, b, acc[r]);
        }
    }
}

template <int R, int U>
__device__ __forceinline__ void warp_dot_rows_bf16(const uint16_t *rows, size_t row_stride, int n_valid,
                                                   const float *x, int n, int lane, float out[R],
                                                   const uint4 (*first)[R] = NULL) {
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;
    if ((n & 7) == 0) {
        const float4 *x4 = (const float4 *)x;
        int n8 = n >> 3, k0 = lane;
        // The preloaded first step on its own, so its registers are free before the loop's loads.
        if (first) {
            warp_dot_rows_step<R, U>(*(const uint4(*)[U][R])first, x4, n8, k0, acc);
            k0 += WARP * U;
        }
        for (; k0 < n8; k0 += WARP * U) {
            uint4 w[U][R];
            warp_rows_step_loads<R, U>(rows, row_stride, n_valid, n8, k0, w);
            warp_dot_rows_step<R, U>(w, x4, n8, k0, acc);
        }
    } else {
        for (int r = 0; r < R && r < n_valid; r++)
            for (int k = lane; k < n; k += WARP) acc[r] = fmaf(bf16_bits_to_float(rows[r * row_stride + k]), x[k], acc[r]);
    }
#pragma unroll
    for (int r = 0; r < R; r++) out[r] = warp_sum(acc[r]);
}

// Host side: the current device's multiprocessor count (what = the kernel it is for, for the error).
static inline int device_multiprocessors(int *n_sms, const char *what, ErrorMessage *err) {
    int device;
    CUDA_CHECK(cudaGetDevice(&device), what);
    CUDA_CHECK(cudaDeviceGetAttribute(n_sms, cudaDevAttrMultiProcessorCount, device), what);
    return 0;
}

// Host side: how many blocks of `kernel` (threads, shared_bytes of dynamic shared memory) fit on one
// multiprocessor at once, the bound of a persistent grid's size per SM. None fitting is an error.
template <typename Kernel>
static int blocks_per_multiprocessor(Kernel kernel, int threads, size_t shared_bytes, const char *what, int *per_sm,
                                     ErrorMessage *err) {
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(per_sm, kernel, threads, shared_bytes), what);
    if (*per_sm < 1)
        return fail(err, "%s: no block fits on a multiprocessor (%zu bytes of shared memory)", what, shared_bytes);
    return 0;
}

// Host side: launches `kernel` with programmatic stream serialization when pdl is set (the kernel
// must call pdl_wait() before reading what earlier kernels write), a plain launch otherwise.
template <typename... KernelArgs, typename... Args>
static cudaError_t launch_maybe_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t shared_bytes,
                                    cudaStream_t stream, int pdl, Args... args) {
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = shared_bytes;
    config.stream = stream;
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attribute;
    config.numAttrs = pdl ? 1 : 0;
    return cudaLaunchKernelEx(&config, kernel, ((KernelArgs)args)...);
}

// dst_sh[0, n) = src[0, n) for the whole block, read through L2 (src may have been written by other
// blocks of the same launch). Why not a plain strided loop: each iteration's store waits for its load,
// so a 2048-float vector over 128 threads cost ~4 dependent trips to memory (ncu: o_proj spent 77% of
// its cycles there). Here every thread issues up to four 16-byte loads before its first store, so a
// vector of up to 16 x blockDim floats costs one trip. Falls back to the strided loop when src, dst_sh
// or n are not 16-byte multiples. The caller synchronizes before reading other threads' elements.
__device__ __forceinline__ void block_load_to_shared(const float *src, float *dst_sh, int n) {
    if ((((uintptr_t)src | (uintptr_t)dst_sh) & 15) == 0 && (n & 3) == 0) {
        const float4 *src4 = (const float4 *)src;
        float4 *dst4 = (float4 *)dst_sh;
        int n4 = n >> 2;
        for (int base = threadIdx.x; base < n4; base += 4 * blockDim.x) {
            float4 v[4];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                int i = base + k * blockDim.x;
                v[k] = i < n4 ? __ldcg(src4 + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
            for (int k = 0; k < 4; k++) {
                int i = base + k * blockDim.x;
                if (i < n4) dst4[i] = v[k];
            }
        }
    } else {
        for (int i = threadIdx.x; i < n; i += blockDim.x) dst_sh[i] = __ldcg(src + i);
    }
}

// out_sh[i] = x[i] * rsqrt(mean(x^2) + eps) * w[i], for the whole block; x global (read through L2),
// out_sh shared. When x, w and out_sh are 16-byte aligned and n <= 16 x blockDim (every hidden size
// here), each thread loads its x and w elements as float4s in one go and keeps them in registers: one
// trip to memory for the whole norm. Otherwise x is staged first and w read in a second pass. Fixed
// summation order either way (deterministic).
__device__ __forceinline__ void block_rmsnorm_to_shared(const float *x, const float *w, int n, float eps,
                                                        float *out_sh, float *scratch) {
    int n4 = n >> 2;
    if ((((uintptr_t)x | (uintptr_t)w | (uintptr_t)out_sh) & 15) == 0 && (n & 3) == 0 && n4 <= 4 * (int)blockDim.x) {
        float4 xv[4], wv[4];
        float ss = 0.0f;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            int i = threadIdx.x + k * blockDim.x;
            xv[k] = i < n4 ? __ldcg((const float4 *)x + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            wv[k] = i < n4 ? __ldg((const float4 *)w + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int k = 0; k < 4; k++) {
            ss = fmaf(xv[k].x, xv[k].x, ss);
            ss = fmaf(xv[k].y, xv[k].y, ss);
            ss = fmaf(xv[k].z, xv[k].z, ss);
            ss = fmaf(xv[k].w, xv[k].w, ss);
        }
        float total = block_sum(ss, scratch);
        float inv = rsqrtf(total / (float)n + eps);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            int i = threadIdx.x + k * blockDim.x;
            if (i < n4)
                ((float4 *)out_sh)[i] = make_float4(xv[k].x * inv * wv[k].x, xv[k].y * inv * wv[k].y,
                                                    xv[k].z * inv * wv[k].z, xv[k].w * inv * wv[k].w);
        }
        __syncthreads();
        return;
    }
    block_load_to_shared(x, out_sh, n);
    __syncthreads();
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = out_sh[i];
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

// Per-head RMSNorm with norm_w, then rotate-half RoPE (cos_row/sin_row: the table's rows at the
// token's position, hd/2 each), in place on vec (hd floats of shared memory), by one warp. The one
// implementation of the q/k head epilogue on the GPU: the decode attention prologue and the prefill
// rows kernel (ops_unfused.cu) both call it, so they agree bit for bit.
__device__ __forceinline__ void warp_head_norm_rope(float *vec, const float *norm_w, const float *cos_row,
                                                    const float *sin_row, int hd, float eps, int lane) {
    float ss = 0.0f;
    for (int i = lane; i < hd; i += WARP) ss = fmaf(vec[i], vec[i], ss);
    float inv = rsqrtf(warp_sum(ss) / (float)hd + eps);
    __syncwarp();  // every lane has read vec before any lane rewrites it
    int half = hd / 2;
    for (int i = lane; i < half; i += WARP) {
        float a = vec[i] * inv * norm_w[i], b = vec[i + half] * inv * norm_w[i + half];
        float c = cos_row[i], s = sin_row[i];
        vec[i] = a * c - b * s;
        vec[i + half] = b * c + a * s;
    }
    __syncwarp();
}

#endif
