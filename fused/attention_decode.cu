// Kernel 2: GQA attention over the KV cache, split over the sequence (split-K), then a combine
// kernel. Serves decode (1 token) and prefill (n tokens, causal: token t sees positions
// [0, *d_position + t]). Contract in kernels.h.
//
// Split: block (kv head, chunk, token) takes ATTENTION_CHUNK cache positions and all group = n_heads /
// n_kv_heads query heads that share that kv head, so each K/V row is read once per block. Scores go
// to shared memory; the block writes, per q head, the chunk's max m, sum l = sum exp(s - m) and the
// unnormalised o = sum exp(s - m) v. The grid is fixed by the largest context the launch may see
// (for the captured decode graph, max_context), blocks past a token's context exit at once.
// Combine: block (q head, token) merges the valid chunks in chunk order: M = max m_c,
// L = sum l_c e^(m_c - M), out = sum o_c e^(m_c - M) / L. Fixed order everywhere: deterministic.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define ATTENTION_THREADS 128
#define COMBINE_THREADS 128
#define COMBINE_PAD 4

__global__ void attention_split_kernel(ModelDims dims, const float *q, const void *k_cache, const void *v_cache,
                                       int kv_bf16, int max_context, const int *d_position, int n_chunk_blocks,
                                       float *partial_o, float *partial_ml) {
    extern __shared__ float shared[];
    int hd = dims.head_dim, group = dims.n_heads / dims.n_kv_heads;
    float *q_sh = shared;                      // [group][hd]
    float *scores = shared + group * hd;       // [group][ATTENTION_CHUNK]

    int kv_head = blockIdx.x, chunk = blockIdx.y, token = blockIdx.z;
    int context = *d_position + token + 1;
    int begin = chunk * ATTENTION_CHUNK;
    if (context > max_context || begin >= context) return;
    int end = min(begin + ATTENTION_CHUNK, context), n = end - begin;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, n_warps = ATTENTION_THREADS / WARP;
    float scale = rsqrtf((float)hd);

    const float *q_token = q + (size_t)token * dims.n_heads * hd + (size_t)kv_head * group * hd;
    for (int i = threadIdx.x; i < group * hd; i += ATTENTION_THREADS) q_sh[i] = q_token[i];
    __syncthreads();

    // Scores: one warp per cache position, lanes over head_dim pairs.
    size_t head_base = (size_t)kv_head * max_context * hd;
    for (int p = warp; p < n; p += n_warps) {
        size_t row = head_base + (size_t)(begin + p) * hd;
        for (int j = 0; j < group; j++) {
            float acc = 0.0f;
            for (int d = lane; d < hd; d += WARP) acc = fmaf(q_sh[j * hd + d], cache_load(k_cache, kv_bf16, row + d), acc);
            acc = warp_sum(acc);
            if (lane == 0) scores[j * ATTENTION_CHUNK + p] = acc * scale;
        }
    }
    __syncthreads();

    // Per q head: chunk max and exp-sum (one warp per head), probabilities written back in place.
    for (int j = warp; j < group; j += n_warps) {
        float m = -INFINITY;
        for (int p = lane; p < n; p += WARP) m = fmaxf(m, scores[j * ATTENTION_CHUNK + p]);
        m = warp_max(m);
        float l = 0.0f;
        for (int p = lane; p < n; p += WARP) {
            float e = expf(scores[j * ATTENTION_CHUNK + p] - m);
            scores[j * ATTENTION_CHUNK + p] = e;
            l += e;
        }
        l = warp_sum(l);
        if (lane == 0) {
            size_t slot = ((size_t)token * dims.n_heads + kv_head * group + j) * n_chunk_blocks + chunk;
            partial_ml[2 * slot] = m;
            partial_ml[2 * slot + 1] = l;
        }
    }
    __syncthreads();

    // o[j][d] = sum_p e[j][p] v[p][d]: threads over (head, dim), consecutive threads read consecutive dims.
    for (int i = threadIdx.x; i < group * hd; i += ATTENTION_THREADS) {
        int j = i / hd, d = i % hd;
        float acc = 0.0f;
        for (int p = 0; p < n; p++)
            acc = fmaf(scores[j * ATTENTION_CHUNK + p], cache_load(v_cache, kv_bf16, head_base + (size_t)(begin + p) * hd + d), acc);
        size_t slot = ((size_t)token * dims.n_heads + kv_head * group + j) * n_chunk_blocks + chunk;
        partial_o[slot * hd + d] = acc;
    }
}

__global__ void attention_combine_kernel(ModelDims dims, const int *d_position, int max_context, int n_chunk_blocks,
                                         const float *partial_o, const float *partial_ml, float *attn) {
    extern __shared__ float weights[];  // [n_chunk_blocks + COMBINE_PAD]
    __shared__ float scratch[32];
    int head = blockIdx.x, token = blockIdx.y, hd = dims.head_dim;
    int context = *d_position + token + 1;
    if (context > max_context) return;
    int n_chunks = (context + ATTENTION_CHUNK - 1) / ATTENTION_CHUNK;
    size_t slot0 = ((size_t)token * dims.n_heads + head) * n_chunk_blocks;

    float m = -INFINITY;
    for (int c = threadIdx.x; c < n_chunks; c += blockDim.x) m = fmaxf(m, partial_ml[2 * (slot0 + c)]);
    m = block_max(m, scratch);
    float l = 0.0f;
    for (int c = threadIdx.x; c < n_chunks; c += blockDim.x) {
        float w = expf(partial_ml[2 * (slot0 + c)] - m);
        weights[c] = w;
        l += partial_ml[2 * (slot0 + c) + 1] * w;
    }
    // Zero padding past the last chunk: the unrolled loop below may load a few weights beyond n_chunks
    // in one vector access (compute-sanitizer saw 12-byte reads); they must be in bounds and harmless.
    if (threadIdx.x < COMBINE_PAD) weights[n_chunks + threadIdx.x] = 0.0f;
    l = block_sum(l, scratch);  // its barriers also publish weights[]
    float inv_l = 1.0f / l;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int c = 0; c < n_chunks; c++) acc = fmaf(partial_o[(slot0 + c) * hd + d], weights[c], acc);
        attn[((size_t)token * dims.n_heads + head) * hd + d] = acc * inv_l;
    }
}

extern "C" int launch_attention(const ModelDims *dims, const float *q, const void *k_cache, const void *v_cache,
                                int kv_bf16, int max_context, const int *d_position, int n_tokens,
                                int n_chunk_blocks, float *partial_o, float *partial_ml, float *attn,
                                cudaStream_t stream, ErrorMessage *err) {
    int group = dims->n_heads / dims->n_kv_heads;
    size_t split_shared = (size_t)group * (dims->head_dim + ATTENTION_CHUNK) * sizeof(float);
    if (split_shared > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(attention_split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)split_shared), "attention_split_kernel");
    dim3 split_grid(dims->n_kv_heads, n_chunk_blocks, n_tokens);
    attention_split_kernel<<<split_grid, ATTENTION_THREADS, split_shared, stream>>>(
        *dims, q, k_cache, v_cache, kv_bf16, max_context, d_position, n_chunk_blocks, partial_o, partial_ml);
    LAUNCH_CHECK("attention_split_kernel");
    size_t combine_shared = (size_t)(n_chunk_blocks + COMBINE_PAD) * sizeof(float);
    if (combine_shared > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(attention_combine_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)combine_shared), "attention_combine_kernel");
    dim3 combine_grid(dims->n_heads, n_tokens);
    attention_combine_kernel<<<combine_grid, COMBINE_THREADS, combine_shared, stream>>>(
        *dims, d_position, max_context, n_chunk_blocks, partial_o, partial_ml, attn);
    LAUNCH_CHECK("attention_combine_kernel");
    return 0;
}
