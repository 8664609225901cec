// One plain kernel per op: the building blocks of prefill (between cuBLAS GEMMs) and of the `cublas`
// engine, the unfused baseline. Same math as the fused kernels (they share device_common.cuh).
// Contracts in kernels.h.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"
#include "launch_shapes.h"

// Synthetic cache contents for benchmarks: value i = a hash of (seed, i) mapped to [-1, 1), never 0
// everywhere (zeros would hide wrong indexing and can run faster than real data).
__global__ void fill_pseudorandom_kernel(void *buffer, size_t n, int bf16, unsigned seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 16; h *= 0x7feb352du; h ^= h >> 15; h *= 0x846ca68bu; h ^= h >> 16;
        float v = (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
        if (bf16) ((__nv_bfloat16 *)buffer)[i] = __float2bfloat16_rn(v);
        else ((float *)buffer)[i] = v;
    }
}

extern "C" int launch_fill_pseudorandom(void *buffer, size_t n, int bf16, unsigned seed, cudaStream_t stream,
                                        ErrorMessage *err) {
    fill_pseudorandom_kernel<<<1024, OPS_THREADS, 0, stream>>>(buffer, n, bf16, seed);
    LAUNCH_CHECK("fill_pseudorandom_kernel");
    return 0;
}

__global__ void embed_kernel(const uint16_t *embed, const int *tokens, int hidden, float *out) {
    int t = blockIdx.x;
    const uint16_t *row = embed + (size_t)tokens[t] * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[(size_t)t * hidden + i] = bf16_bits_to_float(row[i]);
}

extern "C" int launch_embed(const uint16_t *embed, const int *d_tokens, int n_tokens, int hidden, float *out,
                            cudaStream_t stream, ErrorMessage *err) {
    embed_kernel<<<n_tokens, OPS_THREADS, 0, stream>>>(embed, d_tokens, hidden, out);
    LAUNCH_CHECK("embed_kernel");
    return 0;
}

__global__ void rmsnorm_rows_kernel(const float *x, const float *w, int n, float eps, float *out) {
    extern __shared__ float row_sh[];
    __shared__ float scratch[32];
    size_t r = blockIdx.x;
    block_rmsnorm_to_shared(x + r * n, w, n, eps, row_sh, scratch);
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[r * n + i] = row_sh[i];
}

extern "C" int launch_rmsnorm_rows(const float *x, const float *w, int rows, int n, float eps, float *out,
                                   cudaStream_t stream, ErrorMessage *err) {
    size_t shared_bytes = (size_t)n * sizeof(float);
    if (shared_bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(rmsnorm_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)shared_bytes), "rmsnorm_rows_kernel");
    rmsnorm_rows_kernel<<<rows, OPS_THREADS, shared_bytes, stream>>>(x, w, n, eps, out);
    LAUNCH_CHECK("rmsnorm_rows_kernel");
    return 0;
}

// The epilogue of one head, for a whole block: raw (head_dim values, any memory) -> for q/k heads
// warp_head_norm_rope at `position`; v heads copied. Writes out[0..hd) and, for k/v heads, the cache
// row. tmp_sh: head_dim floats of shared memory. kind: 0 q, 1 k, 2 v. Raw values are read with
// __ldcg (L2) because other blocks may have written them.
__device__ __forceinline__ void head_epilogue(const float *raw, int kind, const float *norm_w, int hd, float eps,
                                              const float *rope_cos, const float *rope_sin, int position,
                                              float *out, void *cache, int kv_bf16, size_t cache_row,
                                              float *tmp_sh) {
    for (int i = threadIdx.x; i < hd; i += blockDim.x) tmp_sh[i] = __ldcg(raw + i);
    __syncthreads();
    if (kind != 2 && threadIdx.x < WARP) {
        int half = hd / 2;
        warp_head_norm_rope(tmp_sh, norm_w, rope_cos + (size_t)position * half, rope_sin + (size_t)position * half,
                            hd, eps, threadIdx.x);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        out[i] = tmp_sh[i];
        if (kind != 0) cache_store(cache, kv_bf16, cache_row + i, tmp_sh[i]);
    }
}


// Block (token, head): the head epilogue (warp_head_norm_rope, as in the decode attention's prologue) on
// a row of the GEMM's output.
__global__ void qk_norm_rope_rows_kernel(ModelDims dims, const float *qkv_raw, const float *q_norm_w,
                                         const float *k_norm_w, const float *rope_cos, const float *rope_sin,
                                         const int *d_position, float *q, float *k, float *v, void *k_cache,
                                         void *v_cache, int kv_bf16, int max_context) {
    extern __shared__ float tmp[];  // [head_dim]
    int t = blockIdx.x, head = blockIdx.y, hd = dims.head_dim;
    int position = *d_position + t;
    if (position < 0 || position >= max_context) return;  // the host checks; never write out of bounds
    int kind, index;
    if (head < dims.n_heads) { kind = 0; index = head; }
    else if (head < dims.n_heads + dims.n_kv_heads) { kind = 1; index = head - dims.n_heads; }
    else { kind = 2; index = head - dims.n_heads - dims.n_kv_heads; }
    size_t qkv_width = (size_t)(dims.n_heads + 2 * dims.n_kv_heads) * hd;
    size_t q_width = (size_t)dims.n_heads * hd, kv_width = (size_t)dims.n_kv_heads * hd;
    float *out = kind == 0 ? q + t * q_width + (size_t)index * hd
                           : (kind == 1 ? k : v) + t * kv_width + (size_t)index * hd;
    void *cache = kind == 1 ? k_cache : v_cache;
    size_t cache_row = ((size_t)index * max_context + position) * hd;
    head_epilogue(qkv_raw + t * qkv_width + (size_t)head * hd, kind, kind == 0 ? q_norm_w : k_norm_w, hd, dims.eps,
                  rope_cos, rope_sin, position, out, cache, kv_bf16, cache_row, tmp);
}

extern "C" int launch_qk_norm_rope_rows(const ModelDims *dims, const float *qkv_raw, const float *q_norm_w,
                                        const float *k_norm_w, const float *rope_cos, const float *rope_sin,
                                        const int *d_position, int n_tokens, float *q, float *k, float *v,
                                        void *k_cache, void *v_cache, int kv_bf16, int max_context,
                                        cudaStream_t stream, ErrorMessage *err) {
    dim3 grid(n_tokens, dims->n_heads + 2 * dims->n_kv_heads);
    qk_norm_rope_rows_kernel<<<grid, 128, dims->head_dim * sizeof(float), stream>>>(
        *dims, qkv_raw, q_norm_w, k_norm_w, rope_cos, rope_sin, d_position, q, k, v, k_cache, v_cache, kv_bf16,
        max_context);
    LAUNCH_CHECK("qk_norm_rope_rows_kernel");
    return 0;
}

__global__ void add_kernel(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

static int grid_for(size_t n) {
    size_t blocks = (n + OPS_THREADS - 1) / OPS_THREADS;
    return blocks > 4096 ? 4096 : (blocks < 1 ? 1 : (int)blocks);
}

extern "C" int launch_add(const float *a, const float *b, float *out, size_t n, cudaStream_t stream, ErrorMessage *err) {
    add_kernel<<<grid_for(n), OPS_THREADS, 0, stream>>>(a, b, out, n);
    LAUNCH_CHECK("add_kernel");
    return 0;
}

__global__ void silu_mul_kernel(const float *gate_up, size_t rows, int width, float *gate, float *up, float *act) {
    size_t n = rows * width;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / width, c = i % width;
        float g = gate_up[r * 2 * width + c], u = gate_up[r * 2 * width + width + c];
        gate[i] = g;
        up[i] = u;
        act[i] = g / (1.0f + expf(-g)) * u;
    }
}

extern "C" int launch_silu_mul(const float *gate_up, int rows, int width, float *gate, float *up, float *act,
                               cudaStream_t stream, ErrorMessage *err) {
    silu_mul_kernel<<<grid_for((size_t)rows * width), OPS_THREADS, 0, stream>>>(gate_up, rows, width, gate, up, act);
    LAUNCH_CHECK("silu_mul_kernel");
    return 0;
}

__global__ void expand_bf16_kernel(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = bf16_bits_to_float(src[i]);
}

extern "C" int launch_expand_bf16(const uint16_t *src, float *dst, size_t n, cudaStream_t stream, ErrorMessage *err) {
    expand_bf16_kernel<<<grid_for(n), OPS_THREADS, 0, stream>>>(src, dst, n);
    LAUNCH_CHECK("expand_bf16_kernel");
    return 0;
}

__global__ void argmax_kernel(const float *x, int n, int *out) {
    __shared__ float sh_v[OPS_THREADS];
    __shared__ int sh_i[OPS_THREADS];
    float best_v = -INFINITY;
    int best_i = -1;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = x[i];
        if (!isnan(v) && (best_i < 0 || v > best_v)) { best_v = v; best_i = i; }  // i increases: ties keep the lower
    }
    sh_v[threadIdx.x] = best_v;
    sh_i[threadIdx.x] = best_i;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if ((int)threadIdx.x < stride) {
            float v = sh_v[threadIdx.x + stride];
            int i = sh_i[threadIdx.x + stride];
            int mine = sh_i[threadIdx.x];
            if (i >= 0 && (mine < 0 || v > sh_v[threadIdx.x] || (v == sh_v[threadIdx.x] && i < mine))) {
                sh_v[threadIdx.x] = v;
                sh_i[threadIdx.x] = i;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = sh_i[0];
}

extern "C" int launch_argmax(const float *x, int n, int *out, cudaStream_t stream, ErrorMessage *err) {
    argmax_kernel<<<1, OPS_THREADS, 0, stream>>>(x, n, out);
    LAUNCH_CHECK("argmax_kernel");
    return 0;
}
