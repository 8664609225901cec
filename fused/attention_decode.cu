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
#include "launch_shapes.h"
#include <cuda_bf16.h>


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

// ---- decode attention: one launch, splits merged by the last block (contract in kernels.h) -------
//
// The head epilogue comes first: every block reads its kv head's raw q heads, k and v (kernel 1's
// output) and applies the per-head RMSNorm and RoPE itself, the same way in every block, so kernel 1
// needs no ticket and no serial tail. The block whose chunk holds `position` also writes k, v and the
// cache row; split 0 writes q.
//
// Grid (kv head, split). The context is cut into `active` chunks of at least DECODE_MIN_CHUNK
// positions (2 x DECODE_MIN_CHUNK past DECODE_ONE_STEP_SPLITS chunks), active <= n_splits, so the
// grid is fixed for a captured graph while the chunk length follows the context read from
// *d_position (blocks past `active` exit at once). A block takes all
// GROUP q heads of its kv head, so each K/V row is read once. Each warp walks its positions
// DECODE_STEP at a time (all their K and V loads in flight, 8-byte loads for bf16 with head_dim 128),
// keeping an online softmax (m, l, o) per q head in registers; lane i owns dims [i*DPL, i*DPL+DPL).
// The block merges its warps in warp order, writes (m, l, o) per q head, takes a ticket, and the
// last block of the kv head merges the active splits in split order and writes attn. Fixed order
// everywhere, so the result is deterministic. Prologue (programmatic dependent launch): each warp's
// first DECODE_PRELOADED_STEPS steps of K/V history and the epilogue's constants are loaded before
// waiting on kernel 1 (the position is written by the host before the graph runs, so reading it
// early is safe).
// Launch shapes (DECODE_THREADS, DECODE_STEP, DECODE_PRELOADED_STEPS, DECODE_ONE_STEP_SPLITS, ...) and
// why: launch_shapes.h.

// One lane's DPL elements of a cache row as stored: bf16 bits (2 per register) or fp32, loaded with
// one 8- or 16-byte load (bf16 with head_dim 128: 8 bytes). Preloaded steps wait in this form across
// the programmatic-dependent-launch wait, at half the registers of floats for a bf16 cache, and are
// widened when their step comes.
template <int DPL, bool BF16>
struct LaneRow {
    static constexpr int WORDS = BF16 ? DPL / 2 : DPL;
    unsigned w[WORDS];
    __device__ __forceinline__ void load(const void *cache, size_t index) {
        if (BF16) {
            const __nv_bfloat16 *p = (const __nv_bfloat16 *)cache + index;
            if (DPL == 4) {
                uint2 v = __ldcg((const uint2 *)p);
                w[0] = v.x; w[WORDS - 1] = v.y;
            } else {
                w[0] = __ldcg((const unsigned *)p);
            }
        } else {
            const float *p = (const float *)cache + index;
            if (DPL == 4) {
                float4 v = __ldcg((const float4 *)p);
                w[0] = __float_as_uint(v.x); w[1 % WORDS] = __float_as_uint(v.y);
                w[2 % WORDS] = __float_as_uint(v.z); w[3 % WORDS] = __float_as_uint(v.w);
            } else {
                float2 v = __ldcg((const float2 *)p);
                w[0] = __float_as_uint(v.x); w[1 % WORDS] = __float_as_uint(v.y);
            }
        }
    }
    // Element i as a float (bf16: element 2k is the low half of word k).
    __device__ __forceinline__ float at(int i) const {
        if (BF16) return __uint_as_float(i & 1 ? w[i / 2] & 0xffff0000u : w[i / 2] << 16);
        return __uint_as_float(w[i]);
    }
    // From DPL floats that the cache holds exactly (bf16 values for a bf16 cache).
    __device__ __forceinline__ void set(const float *f) {
#pragma unroll
        for (int k = 0; k < WORDS; k++)
            w[k] = BF16 ? (__float_as_uint(f[2 * k]) >> 16) | (__float_as_uint(f[2 * k + 1]) & 0xffff0000u)
                        : __float_as_uint(f[k]);
    }
};

static __host__ __device__ __forceinline__ void decode_chunking(int context, int n_splits, int *chunk, int *active) {
    int c = (context + n_splits - 1) / n_splits;
    c = ((c + DECODE_MIN_CHUNK - 1) / DECODE_MIN_CHUNK) * DECODE_MIN_CHUNK;
    if (c < 2 * DECODE_MIN_CHUNK && context > DECODE_ONE_STEP_SPLITS * DECODE_MIN_CHUNK) c = 2 * DECODE_MIN_CHUNK;
    *chunk = c;
    *active = (context + c - 1) / c;
}

// The launch bound's minimum blocks per SM (0: none, ptxas's default). Its default heuristic gives
// one instance (head_dim 64, fp32 cache, 4 q heads per kv head) 80 registers and a spill; told that
// one block per SM is enough, it takes 96 and none. The others keep the default, which is lower (the
// 0.6B instance: 76), since extra registers would cost the room beside the QKV kernel.
template <int DPL, bool BF16, int GROUP>
constexpr int decode_min_blocks() { return DPL == 2 && !BF16 && GROUP == 4 ? 1 : 0; }

// ---- the decode kernel's steps (each inlined into attention_decode_kernel, which lists them) ----

template <int DPL, bool BF16>
using DecodeRows = LaneRow<DPL, BF16>[DECODE_STEP];

// The rows of the step at p: slot s holds cache position min(p + s, end - 1), so a short last step
// repeats its end (masked in decode_softmax_step).
template <int DPL, bool BF16>
__device__ __forceinline__ void decode_load_step(const void *k_cache, const void *v_cache, size_t head_base, int p,
                                                 int end, int lane, DecodeRows<DPL, BF16> &kp,
                                                 DecodeRows<DPL, BF16> &vp) {
    constexpr int HD = DPL * WARP;
#pragma unroll
    for (int s = 0; s < DECODE_STEP; s++) {
        size_t row = head_base + (size_t)min(p + s, end - 1) * HD + lane * DPL;
        kp[s].load(k_cache, row);
        vp[s].load(v_cache, row);
    }
}

// Step 1, before the PDL wait. The first DECODE_PRELOADED_STEPS steps' K/V rows are history (written
// by earlier tokens' graphs, complete before this one started), except row `position`, which this
// kernel computes: they are loaded before the wait, so their trips overlap the previous kernel's tail
// (0.6B: every step of a chunk of 64), and kept as stored (LaneRow) until their step; row `position`
// is replaced after the wait (the head epilogue, step 2). The head epilogue's constants depend on no
// kernel either (the position is written by the host).
template <int DPL, bool BF16>
__device__ __forceinline__ void decode_preload(const void *k_cache, const void *v_cache, size_t head_base,
                                               int first_step, int step_stride, int end, int lane,
                                               DecodeRows<DPL, BF16> (&k_pre)[DECODE_PRELOADED_STEPS],
                                               DecodeRows<DPL, BF16> (&v_pre)[DECODE_PRELOADED_STEPS],
                                               float (&constants)[3][DPL * WARP], const float *q_norm_w,
                                               const float *k_norm_w, const float *rope_cos, const float *rope_sin,
                                               int position) {
    constexpr int HD = DPL * WARP, HALF = HD / 2;
#pragma unroll
    for (int t = 0; t < DECODE_PRELOADED_STEPS; t++)
        if (first_step + t * step_stride < end)
            decode_load_step<DPL, BF16>(k_cache, v_cache, head_base, first_step + t * step_stride, end, lane,
                                        k_pre[t], v_pre[t]);
    for (int t = threadIdx.x; t < 3 * HD; t += DECODE_THREADS) {
        int row = t / HD, i = t % HD;
        constants[row][i] = row == 0   ? q_norm_w[i]
                            : row == 1 ? k_norm_w[i]
                                       : (i < HALF ? rope_cos : rope_sin)[(size_t)position * HALF + i % HALF];
    }
}

// Step 2, one step of the online softmax (m, l, o per q head, in registers) over the rows of the step
// at p0, widened as they are used.
template <int DPL, bool BF16, int GROUP>
__device__ __forceinline__ void decode_softmax_step(int p0, int end, float scale, const float (&qr)[GROUP][DPL],
                                                    float (&m)[GROUP], float (&l)[GROUP], float (&o)[GROUP][DPL],
                                                    const DecodeRows<DPL, BF16> &kp, const DecodeRows<DPL, BF16> &vp) {
#pragma unroll
    for (int j = 0; j < GROUP; j++) {
        float sc[DECODE_STEP];
#pragma unroll
        for (int s = 0; s < DECODE_STEP; s++) {
            float acc = 0.0f;
#pragma unroll
            for (int i = 0; i < DPL; i++) acc = fmaf(qr[j][i], kp[s].at(i), acc);
            sc[s] = warp_sum(acc) * scale;
            if (p0 + s >= end) sc[s] = -INFINITY;
        }
        float m_new = m[j];
#pragma unroll
        for (int s = 0; s < DECODE_STEP; s++) m_new = fmaxf(m_new, sc[s]);  // finite: p0 < end
        float alpha = expf(m[j] - m_new);  // 0 on the first step (m = -inf)
        l[j] *= alpha;
#pragma unroll
        for (int i = 0; i < DPL; i++) o[j][i] *= alpha;
#pragma unroll
        for (int s = 0; s < DECODE_STEP; s++) {
            float e = expf(sc[s] - m_new);
            l[j] += e;
#pragma unroll
            for (int i = 0; i < DPL; i++) o[j][i] = fmaf(e, vp[s].at(i), o[j][i]);
        }
        m[j] = m_new;
    }
}

// Step 3, the block's partial: merge the warps in warp order (a warp with no positions has m = -inf,
// l = 0, o = 0) and write (m, l, o) per q head for this split.
template <int DPL, int GROUP>
__device__ __forceinline__ void decode_merge_warps(const float (&m)[GROUP], const float (&l)[GROUP],
                                                   const float (&o)[GROUP][DPL], int kv_head, int split, int n_splits,
                                                   int lane, int warp, float (&warp_ml)[DECODE_WARPS][GROUP][2],
                                                   float (&warp_o)[DECODE_WARPS][GROUP][DPL * WARP], float *partial_o,
                                                   float *partial_ml) {
    constexpr int HD = DPL * WARP;
#pragma unroll
    for (int j = 0; j < GROUP; j++) {
        if (lane == 0) { warp_ml[warp][j][0] = m[j]; warp_ml[warp][j][1] = l[j]; }
#pragma unroll
        for (int i = 0; i < DPL; i++) warp_o[warp][j][lane * DPL + i] = o[j][i];
    }
    __syncthreads();
    for (int t = threadIdx.x; t < GROUP * HD; t += DECODE_THREADS) {
        int j = t / HD, d = t % HD;
        float bm = -INFINITY;
        for (int w = 0; w < DECODE_WARPS; w++) bm = fmaxf(bm, warp_ml[w][j][0]);
        float bl = 0.0f, bo = 0.0f;
        for (int w = 0; w < DECODE_WARPS; w++) {
            float wm = warp_ml[w][j][0];
            float f = wm == -INFINITY ? 0.0f : expf(wm - bm);
            bl = fmaf(warp_ml[w][j][1], f, bl);
            bo = fmaf(warp_o[w][j][d], f, bo);
        }
        size_t slot = (size_t)(kv_head * GROUP + j) * n_splits + split;
        partial_o[slot * HD + d] = bo;
        if (d == 0) { partial_ml[2 * slot] = bm; partial_ml[2 * slot + 1] = bl; }
    }
}

// Step 2b, the head epilogue's outputs: split 0 writes the q heads; the block whose chunk holds
// `position` (is_newest_split) writes k, v, the cache row (unless forced) and puts the row as stored
// into its preloaded steps.
template <int DPL, bool BF16, int GROUP>
__device__ __forceinline__ void decode_head_outputs(void *k_cache, void *v_cache, int newest_from_cache, int kv_head,
    int split, int is_newest_split, int position, size_t head_base, int first_step, int step_stride, int end, int lane,
    const float (&heads)[GROUP + 2][DPL * WARP], float (&newest)[2][DPL * WARP],
    DecodeRows<DPL, BF16> (&k_pre)[DECODE_PRELOADED_STEPS], DecodeRows<DPL, BF16> (&v_pre)[DECODE_PRELOADED_STEPS],
    float *q, float *k, float *v) {
    constexpr int HD = DPL * WARP;
    if (split == 0)
        for (int t = threadIdx.x; t < GROUP * HD; t += DECODE_THREADS)
            q[(size_t)kv_head * GROUP * HD + t] = heads[t / HD][t % HD];
    if (is_newest_split) {
        size_t cache_row = head_base + (size_t)position * HD;
        for (int t = threadIdx.x; t < 2 * HD; t += DECODE_THREADS) {
            int which = t / HD, i = t % HD;  // 0: k, 1: v
            float value = heads[GROUP + which][i];
            void *cache = which == 0 ? k_cache : v_cache;
            (which == 0 ? k : v)[(size_t)kv_head * HD + i] = value;
            if (newest_from_cache) {
                newest[which][i] = BF16 ? __bfloat162float(__ldcg((const __nv_bfloat16 *)cache + cache_row + i))
                                        : __ldcg((const float *)cache + cache_row + i);
            } else {
                cache_store(cache, BF16, cache_row + i, value);
                newest[which][i] = BF16 ? __bfloat162float(__float2bfloat16_rn(value)) : value;
            }
        }
        __syncthreads();
        // Slot s of a preloaded step, when it is row `position`: the row as stored, not the old bits
        // loaded before the wait. Later steps load it from the cache, which holds it by now (written
        // above, before the block's barrier, or forced by the host before the launch).
#pragma unroll
        for (int t = 0; t < DECODE_PRELOADED_STEPS; t++) {
            int p = first_step + t * step_stride;
#pragma unroll
            for (int s = 0; s < DECODE_STEP; s++)
                if (p < end && min(p + s, end - 1) == position) {
                    k_pre[t][s].set(&newest[0][lane * DPL]);
                    v_pre[t][s].set(&newest[1][lane * DPL]);
                }
        }
    }
}

template <int DPL, bool BF16, int GROUP>
__global__ void __launch_bounds__(DECODE_THREADS, decode_min_blocks<DPL, BF16, GROUP>()) attention_decode_kernel(
    ModelDims dims, const float *qkv_raw, const float *q_norm_w, const float *k_norm_w, const float *rope_cos,
    const float *rope_sin, const int *d_position, void *k_cache, void *v_cache, int max_context, int newest_from_cache,
    int n_splits, float *partial_o, float *partial_ml, unsigned *counters, float *q, float *k, float *v, float *attn) {
    constexpr int HD = DPL * WARP, HALF = HD / 2;
    __shared__ float heads[GROUP + 2][HD];  // this kv head's q heads, k, v: raw, then normed and rotated
    __shared__ float constants[3][HD];      // q norm weights, k norm weights, then [cos | sin] at position
    __shared__ float newest[2][HD];         // row `position` of K and V as the cache holds it
    __shared__ float warp_ml[DECODE_WARPS][GROUP][2];
    __shared__ float warp_o[DECODE_WARPS][GROUP][HD];
    __shared__ float split_w[GROUP][ATTENTION_DECODE_MAX_SPLITS];
    __shared__ float total_l[GROUP];
    __shared__ int is_last;
    int kv_head = blockIdx.x, split = blockIdx.y;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;

    int position = *d_position;
    int context = position + 1;
    int valid = position >= 0 && context <= max_context;
    int chunk, active;
    decode_chunking(context, n_splits, &chunk, &active);
    int begin = split * chunk, end = min(begin + chunk, context);
    size_t head_base = (size_t)kv_head * max_context * HD;
    // A split past the context has nothing to do and depends on nothing: it leaves before the wait,
    // so its slot on the SM goes to the next kernel's blocks at once.
    if (!valid || split >= active) {
        pdl_launch_dependents();
        return;
    }
    const int first_step = begin + warp * DECODE_STEP, step_stride = DECODE_WARPS * DECODE_STEP;

    // 1. History K/V rows and the epilogue's constants, before the wait.
    DecodeRows<DPL, BF16> k_pre[DECODE_PRELOADED_STEPS], v_pre[DECODE_PRELOADED_STEPS];
    decode_preload<DPL, BF16>(k_cache, v_cache, head_base, first_step, step_stride, end, lane, k_pre, v_pre,
                              constants, q_norm_w, k_norm_w, rope_cos, rope_sin, position);
    pdl_launch_dependents();
    pdl_wait();

    // 2. The head epilogue (kernels.h 2b), which every block of the kv head computes alike (the same
    // code in the same order, so the same bits): raw heads from kernel 1, through L2 (other blocks
    // wrote them), then one warp per q/k head: per-head RMSNorm, rotate-half RoPE. Kept inline: as a
    // __device__ function it compiles to other SASS in 3 instances (scheduling; registers 113 -> 111,
    // 118 -> 116, 104 -> 105). Then its outputs (decode_head_outputs).
    const int is_newest_split = split == active - 1;  // its chunk ends at `position`
    const float *raw_q = qkv_raw + (size_t)kv_head * GROUP * HD;
    const float *raw_k = qkv_raw + (size_t)dims.n_heads * HD + (size_t)kv_head * HD;
    const float *raw_v = raw_k + (size_t)dims.n_kv_heads * HD;
    for (int t = threadIdx.x; t < (GROUP + 2) * HD; t += DECODE_THREADS) {
        int j = t / HD, i = t % HD;
        heads[j][i] = __ldcg((j < GROUP ? raw_q + (size_t)j * HD : j == GROUP ? raw_k : raw_v) + i);
    }
    __syncthreads();
    for (int j = warp; j <= GROUP; j += DECODE_WARPS)
        warp_head_norm_rope(heads[j], constants[j < GROUP ? 0 : 1], constants[2], constants[2] + HALF, HD, dims.eps,
                            lane);
    __syncthreads();
    decode_head_outputs<DPL, BF16, GROUP>(k_cache, v_cache, newest_from_cache, kv_head, split, is_newest_split, position,
                                          head_base, first_step, step_stride, end, lane, heads, newest, k_pre, v_pre,
                                          q, k, v);

    // 3. The online softmax over this warp's steps: the preloaded ones, then load-and-step.
    const float scale = rsqrtf((float)HD);
    float qr[GROUP][DPL], m[GROUP], l[GROUP], o[GROUP][DPL];
#pragma unroll
    for (int j = 0; j < GROUP; j++) {
#pragma unroll
        for (int i = 0; i < DPL; i++) { qr[j][i] = heads[j][lane * DPL + i]; o[j][i] = 0.0f; }
        m[j] = -INFINITY;
        l[j] = 0.0f;
    }
#pragma unroll
    for (int t = 0; t < DECODE_PRELOADED_STEPS; t++)
        if (first_step + t * step_stride < end)
            decode_softmax_step<DPL, BF16, GROUP>(first_step + t * step_stride, end, scale, qr, m, l, o, k_pre[t],
                                                  v_pre[t]);
    for (int p0 = first_step + DECODE_PRELOADED_STEPS * step_stride; p0 < end; p0 += step_stride) {
        DecodeRows<DPL, BF16> kp, vp;
        decode_load_step<DPL, BF16>(k_cache, v_cache, head_base, p0, end, lane, kp, vp);
        decode_softmax_step<DPL, BF16, GROUP>(p0, end, scale, qr, m, l, o, kp, vp);
    }

    // 4. This split's partial (m, l, o) per q head.
    decode_merge_warps<DPL, GROUP>(m, l, o, kv_head, split, n_splits, lane, warp, warp_ml, warp_o, partial_o,
                                   partial_ml);

    // 5. The last of the kv head's active blocks merges the splits.
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        unsigned ticket = atomicAdd(&counters[kv_head], 1u);
        is_last = ticket == (unsigned)active - 1;
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    // The split merge. Kept inline: as a __device__ function it compiles to different SASS
    // (scheduling, in every instance). Every load of the merge is issued before any arithmetic waits on it: the first MERGE_BATCH split
    // outputs of this thread's (q head, dim) elements, and each lane's (m, l) pairs (ATTENTION_DECODE_MAX_SPLITS
    // / WARP per lane at most), so the merge costs one trip to L2 at contexts up to MERGE_BATCH splits.
    // MERGE_BATCH keeps those loads at 32 registers a thread (0.6B: 32 splits, one trip at context 1024).
    // The sums run in split order as before: deterministic.
    constexpr int ELEMENTS = (GROUP * HD + DECODE_THREADS - 1) / DECODE_THREADS;
    constexpr int MERGE_BATCH = 32 / ELEMENTS > 8 ? 32 / ELEMENTS : 8, ML_PER_LANE = ATTENTION_DECODE_MAX_SPLITS / WARP;
    float po[ELEMENTS][MERGE_BATCH];
#pragma unroll
    for (int u = 0; u < ELEMENTS; u++) {
        int t = threadIdx.x + u * DECODE_THREADS;
        size_t slot0 = (size_t)(kv_head * GROUP + t / HD) * n_splits;
#pragma unroll
        for (int k = 0; k < MERGE_BATCH; k++)
            po[u][k] = t < GROUP * HD && k < active ? __ldcg(partial_o + (slot0 + k) * HD + t % HD) : 0.0f;
    }
    if (warp < GROUP) {  // warp j: split weights and the total l of q head j
        int j = warp;
        size_t slot0 = (size_t)(kv_head * GROUP + j) * n_splits;
        float sm[ML_PER_LANE], sl[ML_PER_LANE];
#pragma unroll
        for (int k = 0; k < ML_PER_LANE; k++) {
            int s = lane + k * WARP;
            sm[k] = s < active ? __ldcg(partial_ml + 2 * (slot0 + s)) : -INFINITY;
            sl[k] = s < active ? __ldcg(partial_ml + 2 * (slot0 + s) + 1) : 0.0f;
        }
        float mm = -INFINITY;
#pragma unroll
        for (int k = 0; k < ML_PER_LANE; k++) mm = fmaxf(mm, sm[k]);
        mm = warp_max(mm);
        float ll = 0.0f;
#pragma unroll
        for (int k = 0; k < ML_PER_LANE; k++) {
            int s = lane + k * WARP;
            if (s < active) {
                float f = sm[k] == -INFINITY ? 0.0f : expf(sm[k] - mm);
                split_w[j][s] = f;
                ll = fmaf(sl[k], f, ll);
            }
        }
        ll = warp_sum(ll);
        if (lane == 0) total_l[j] = ll;
    }
    __syncthreads();
#pragma unroll
    for (int u = 0; u < ELEMENTS; u++) {
        int t = threadIdx.x + u * DECODE_THREADS;
        if (t >= GROUP * HD) break;
        int j = t / HD, d = t % HD;
        size_t slot0 = (size_t)(kv_head * GROUP + j) * n_splits;
        float acc = 0.0f;
#pragma unroll
        for (int k = 0; k < MERGE_BATCH; k++)
            if (k < active) acc = fmaf(po[u][k], split_w[j][k], acc);
        for (int s0 = MERGE_BATCH; s0 < active; s0 += MERGE_BATCH) {
            float batch[MERGE_BATCH];
#pragma unroll
            for (int k = 0; k < MERGE_BATCH; k++)
                batch[k] = s0 + k < active ? __ldcg(partial_o + (slot0 + s0 + k) * HD + d) : 0.0f;
#pragma unroll
            for (int k = 0; k < MERGE_BATCH; k++)
                if (s0 + k < active) acc = fmaf(batch[k], split_w[j][s0 + k], acc);
        }
        attn[(size_t)(kv_head * GROUP + j) * HD + d] = acc / total_l[j];
    }
    if (threadIdx.x == 0) counters[kv_head] = 0;  // every active block has counted: ready for the next launch
}

typedef void (*DecodeKernel)(ModelDims, const float *, const float *, const float *, const float *, const float *,
                             const int *, void *, void *, int, int, int, float *, float *, unsigned *, float *, float *,
                             float *, float *);

template <int DPL, bool BF16>
static DecodeKernel decode_kernel_for_group(int group) {
    switch (group) {
    case 1: return attention_decode_kernel<DPL, BF16, 1>;
    case 2: return attention_decode_kernel<DPL, BF16, 2>;
    case 4: return attention_decode_kernel<DPL, BF16, 4>;
    case 8: return attention_decode_kernel<DPL, BF16, 8>;
    default: return NULL;
    }
}

static DecodeKernel decode_kernel_for(const ModelDims *dims, int kv_bf16) {
    if (dims->n_kv_heads < 1 || dims->n_heads % dims->n_kv_heads) return NULL;
    int group = dims->n_heads / dims->n_kv_heads;
    if (dims->head_dim == 128) return kv_bf16 ? decode_kernel_for_group<4, true>(group) : decode_kernel_for_group<4, false>(group);
    if (dims->head_dim == 64) return kv_bf16 ? decode_kernel_for_group<2, true>(group) : decode_kernel_for_group<2, false>(group);
    return NULL;
}

extern "C" int attention_decode_supported(const ModelDims *dims, int kv_bf16) {
    return decode_kernel_for(dims, kv_bf16) != NULL;
}

extern "C" int attention_decode_splits(const ModelDims *dims, int *n_splits, ErrorMessage *err) {
    int n_sms;
    if (device_multiprocessors(&n_sms, "attention_decode_kernel", err)) return -1;
    // Two blocks' worth of splits per SM at long contexts (0.6B on 132 SMs: 33, so 32 active splits at
    // 4096 and 16384); short contexts use fewer (decode_chunking). Four blocks per SM (66 splits)
    // measured 5% slower at 4096 and 6% at 16384; one (17 splits) 8% and 26% slower there
    // (PERFORMANCE_NOTES.md, version 6).
    int splits = (2 * n_sms + dims->n_kv_heads - 1) / dims->n_kv_heads;
    *n_splits = splits < 1 ? 1 : (splits > ATTENTION_DECODE_MAX_SPLITS ? ATTENTION_DECODE_MAX_SPLITS : splits);
    return 0;
}

extern "C" int launch_attention_decode(const ModelDims *dims, const float *qkv_raw, const float *q_norm_w,
                                       const float *k_norm_w, const float *rope_cos, const float *rope_sin,
                                       const int *d_position, void *k_cache, void *v_cache, int kv_bf16,
                                       int max_context, int newest_from_cache, int n_splits, float *partial_o,
                                       float *partial_ml, unsigned *counters, float *q, float *k, float *v, float *attn,
                                       const FusedOptions *options, cudaStream_t stream, ErrorMessage *err) {
    DecodeKernel kernel = decode_kernel_for(dims, kv_bf16);
    if (!kernel)
        return fail(err, "attention_decode_kernel: no instance for head_dim %d with %d q heads per kv head",
                    dims->head_dim, dims->n_kv_heads ? dims->n_heads / dims->n_kv_heads : 0);
    if (n_splits < 1 || n_splits > ATTENTION_DECODE_MAX_SPLITS)
        return fail(err, "attention_decode_kernel: %d splits outside [1, %d]", n_splits, ATTENTION_DECODE_MAX_SPLITS);
    FusedOptions opt = fused_options_or_defaults(options);
    CUDA_CHECK(launch_maybe_pdl(kernel, dim3(dims->n_kv_heads, n_splits), dim3(DECODE_THREADS), 0, stream, opt.pdl, *dims,
                                qkv_raw, q_norm_w, k_norm_w, rope_cos, rope_sin, d_position, k_cache, v_cache,
                                max_context, newest_from_cache != 0, n_splits, partial_o, partial_ml, counters, q, k, v,
                                attn),
               "launch of attention_decode_kernel");
    return 0;
}
