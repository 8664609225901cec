// The dataflow decode kernel (contract in dataflow_kernel.h, the program in dataflow_schedule.h).
//
// One block per SM, split into GROUPS independent groups (1 or 2), each a "virtual block" of the
// program (virtual block = block x GROUPS + group) with its own consumer warps (8 / GROUPS), its own
// loader warp, its own pages and staging buffers, and its own named barrier: while one group waits
// for a counter or a round trip, another computes. The loader walks its group's instruction list and, for every instruction that streams bytes (a projection tile's weights,
// an attention chunk's K/V history), waits for a free page, then asks the bulk copy engine
// (cp.async.bulk) for the bytes with the page's `full` mbarrier as completion. Nothing it loads
// depends on this token, so it runs ahead of the consumers by as many pages as the ring holds. The
// consumers walk the same list: wait for the counters of the tiles whose outputs the instruction reads
// (one thread spins on an acquire load; the named barrier then releases the others), stage the small
// activation vector from L2, wait for the page, compute, store, release the page to the loader, and
// add one to their own counter (release). A group's consumers synchronize among themselves with named
// barrier 1 + group; __syncthreads is never used inside the loop, since the loaders are elsewhere.
// A wait that an earlier instruction of the group already satisfied is skipped, and so is staging a
// vector the group already holds (consecutive tiles of one projection share their input).
//
// Activations written by other blocks in this launch are read with ld.global.cg (L2), never through
// L1, which may hold the same addresses from an earlier token.
#include <cuda_runtime.h>
#include <math.h>

#include "../device_common.cuh"
#include "dataflow_kernel.h"

#define CONSUMER_WARPS 8  // per block, over all groups
#define MAX_PAGES 16      // per group
#define MAX_ROWS DATAFLOW_MAX_TILE_ROWS  // rows of one tile (2 x gateup_rows for GATEUP)
#define MAX_HEAD_DIM 128
#define MAX_GROUP 8

// ---- shared memory layout ------------------------------------------------------------------------

typedef struct {
    size_t pages, vec, heads, scores, row_sums, tile_out, misc, barriers, total;
} SharedLayout;

__host__ __device__ static inline size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

__host__ __device__ static inline SharedLayout shared_layout(const DataflowProgram &p, int n_pages) {
    const DataflowShape &s = p.shape;
    int group = s.n_heads / s.n_kv_heads;
    int vec = s.hidden;
    if (s.intermediate > vec) vec = s.intermediate;
    if (s.n_heads * s.head_dim > vec) vec = s.n_heads * s.head_dim;
    SharedLayout L;
    L.pages = 0;
    L.vec = align_up(L.pages + (size_t)n_pages * s.page_bytes, 128);
    L.heads = align_up(L.vec + (size_t)vec * 4, 128);                         // [group + 2][head_dim] + newest [2][head_dim]
    L.scores = align_up(L.heads + (size_t)(group + 4) * MAX_HEAD_DIM * 4, 128);  // [group][chunk], then weights
    L.row_sums = align_up(L.scores + (size_t)group * p.chunk * 4, 128);      // [warps][MAX_ROWS]
    L.tile_out = align_up(L.row_sums + (size_t)CONSUMER_WARPS * MAX_ROWS * 4, 128);  // [MAX_ROWS]
    L.misc = align_up(L.tile_out + (size_t)MAX_ROWS * 4, 128);               // 64 floats: reductions, softmax m/l
    L.barriers = align_up(L.misc + 64 * 4, 128);                             // full[n_pages], empty[n_pages]
    L.total = L.barriers + (size_t)2 * MAX_PAGES * 8;
    return L;
}

// ---- synchronization primitives -------------------------------------------------------------------

// A group's consumers: named barrier 1 + group over its consumer threads.
struct Group {
    int tid, lane, warp, n_threads, n_warps, barrier, virtual_block;
};

__device__ __forceinline__ void group_sync(const Group &g) {
    asm volatile("bar.sync %0, %1;" ::"r"(g.barrier), "r"(g.n_threads) : "memory");
}

__device__ __forceinline__ uint32_t shared_address(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbarrier_init(uint64_t *bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(shared_address(bar)), "r"(count) : "memory");
}

__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t *bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(shared_address(bar)), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void mbarrier_arrive(uint64_t *bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(shared_address(bar)) : "memory");
}

__device__ __forceinline__ void mbarrier_wait(uint64_t *bar, unsigned parity) {
    uint32_t done = 0;
    while (!done)
        asm volatile(
            "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
            : "=r"(done)
            : "r"(shared_address(bar)), "r"(parity)
            : "memory");
}

// bytes (a multiple of 16, both addresses 16-byte aligned) from global src into shared dst; completion
// is counted on bar's transaction count.
__device__ __forceinline__ void bulk_copy_piece(void *dst, const void *src, unsigned bytes, uint64_t *bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(shared_address(dst)), "l"(src), "r"(bytes), "r"(shared_address(bar))
                 : "memory");
}

__device__ __forceinline__ unsigned long long global_time() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ unsigned load_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ void red_release_add(unsigned *p, unsigned v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

// A group's consumers: wait until counters[index] >= target (thread 0 spins; the barrier releases the
// rest).
__device__ __forceinline__ void wait_counter(const Group &g, const unsigned *counters, int index, unsigned target) {
    if (g.tid == 0)
        while (load_acquire(counters + index) < target) {
        }
    group_sync(g);
}

// Sum over a group's consumers in a fixed order; every consumer gets the total. scratch: 8 floats.
__device__ __forceinline__ float group_sum(const Group &g, float v, float *scratch) {
    v = warp_sum(v);
    group_sync(g);
    if (g.lane == 0) scratch[g.warp] = v;
    group_sync(g);
    float total = 0.0f;
    for (int w = 0; w < g.n_warps; w++) total += scratch[w];
    return total;
}

// The copy in requests of at most `piece` bytes (a multiple of 16; 0: one request).
__device__ __forceinline__ void bulk_copy_to_shared(void *dst, const void *src, unsigned bytes, unsigned piece,
                                                    uint64_t *bar) {
    if (!piece) piece = bytes;
    for (unsigned done = 0; done < bytes; done += piece)
        bulk_copy_piece((char *)dst + done, (const char *)src + done, min(piece, bytes - done), bar);
}

// ---- the consumers' building blocks ---------------------------------------------------------------

// vec[0, n) = rmsnorm(x) * w, x either fp32 in global memory (another block's output: read via L2) or,
// when x_bf16 is set, a bf16 row (the embedding). n % 4 == 0.
__device__ void stage_rmsnorm(const Group &g, const float *x, const uint16_t *x_bf16, const float *w, int n, float eps,
                              float *vec, float *scratch, int skeleton) {
    float ss = 0.0f;
    for (int i = g.tid; i < n / 4; i += g.n_threads) {
        float4 v;
        if (x_bf16) {
            uint2 bits = *((const uint2 *)x_bf16 + i);
            v = make_float4(__uint_as_float(bits.x << 16), __uint_as_float(bits.x & 0xffff0000u),
                            __uint_as_float(bits.y << 16), __uint_as_float(bits.y & 0xffff0000u));
        } else {
            v = __ldcg((const float4 *)x + i);
        }
        ((float4 *)vec)[i] = v;
        ss = fmaf(v.x, v.x, ss);
        ss = fmaf(v.y, v.y, ss);
        ss = fmaf(v.z, v.z, ss);
        ss = fmaf(v.w, v.w, ss);
    }
    float total = group_sum(g, ss, scratch);
    float inv = rsqrtf(total / (float)n + eps);
    if (!skeleton)
        for (int i = g.tid; i < n; i += g.n_threads) vec[i] = vec[i] * inv * __ldg(w + i);
    group_sync(g);
}

// vec[0, n) = x[0, n), x another block's output (read via L2). n % 4 == 0.
__device__ void stage_vector(const Group &g, const float *x, int n, float *vec) {
    for (int i = g.tid; i < n / 4; i += g.n_threads) ((float4 *)vec)[i] = __ldcg((const float4 *)x + i);
    group_sync(g);
}

// out[r] = page row r · vec for r < rows (rows <= MAX_ROWS, row length n bf16, n % 8 == 0), the result
// in tile_out[r] for every consumer to read after the call. Each consumer sums its 8-column blocks in
// order, each warp in a fixed shuffle tree, then the warps in order: deterministic.
__device__ void tile_gemv(const Group &g, const uint16_t *page, int rows, int n, const float *vec, float *row_sums,
                          float *tile_out, int skeleton) {
    float acc[MAX_ROWS];
#pragma unroll
    for (int r = 0; r < MAX_ROWS; r++) acc[r] = 0.0f;
    if (!skeleton) {
        const uint4 *w4 = (const uint4 *)page;
        const float4 *x4 = (const float4 *)vec;
        int n8 = n / 8;
        for (int c = g.tid; c < n8; c += g.n_threads) {
            float4 a = x4[2 * c], b = x4[2 * c + 1];
#pragma unroll
            for (int r = 0; r < MAX_ROWS; r++)
                if (r < rows) acc[r] = dot8_bf16(w4[(size_t)r * n8 + c], a, b, acc[r]);
        }
    }
#pragma unroll
    for (int r = 0; r < MAX_ROWS; r++)
        if (r < rows) {
            float v = warp_sum(acc[r]);
            if (g.lane == 0) row_sums[g.warp * MAX_ROWS + r] = v;
        }
    group_sync(g);
    if (g.tid < rows) {
        float total = 0.0f;
        for (int w = 0; w < g.n_warps; w++) total += row_sums[w * MAX_ROWS + g.tid];
        tile_out[g.tid] = total;
    }
    group_sync(g);
}

// (value, index) order of the argmax: larger value, then lower index; NaN never wins.
__device__ __forceinline__ int better(float v, int i, float best_v, int best_i) {
    if (i < 0 || isnan(v)) return 0;
    if (best_i < 0) return 1;
    return v > best_v || (v == best_v && i < best_i);
}

// ---- the kernel -----------------------------------------------------------------------------------

// One group's consumers: what they share while walking their list. Uniform across the group.
struct Consumer {
    const DataflowProgram &p;
    const DataflowParams &P;
    Group g;
    int n_virtual_blocks;
    int position, token, trace, forced;
    float *vec, *heads, *scores, *row_sums, *tile_out, *misc;
    int satisfied_index;        // the last counter waited for, and the value it was seen to reach
    unsigned satisfied_value;
    int staged_op, staged_layer;  // what vec holds (op -1: nothing)
    int pending_index;          // a deferred signal: counter (-1: none) and how many to add
    unsigned pending_count;
    float best_value;           // the group's running argmax (meaningful in thread 0)
    int best_index;
};

// wait_counter, skipped when this group already saw the counter reach the target (counters only grow
// during a launch).
__device__ __forceinline__ void wait_once(Consumer &c, int index, unsigned target) {
    if (index == c.satisfied_index && c.satisfied_value >= target) return;
    wait_counter(c.g, c.P.counters, index, target);
    c.satisfied_index = index;
    c.satisfied_value = target;
}

// Signals are coalesced: consecutive instructions of a group that add to the same counter (e.g. its
// gate/up tiles of one layer) add once, with their count, when the next instruction adds elsewhere or
// waits, or the list ends (run_consumers flushes before every instruction with another counter, so a
// deferred add never waits behind a wait). Fewer adds to one hot address: they serialize in L2.
__device__ __forceinline__ void flush_signal(Consumer &c) {
    if (c.pending_index >= 0 && c.g.tid == 0) red_release_add(c.P.counters + c.pending_index, c.pending_count);
    c.pending_index = -1;
    c.pending_count = 0;
}

// After an instruction's last stores: every consumer has issued them (the barrier), so thread 0's later
// release add publishes them.
__device__ __forceinline__ void defer_signal(Consumer &c, int index) {
    group_sync(c.g);
    if (c.pending_index != index) flush_signal(c);
    c.pending_index = index;
    c.pending_count++;
}

// The counter instruction `in` adds to (-1: none).
__device__ __forceinline__ int signal_index(const DataflowProgram &p, DataflowInstruction in) {
    switch (in.op) {
    case DATAFLOW_QKV: return dataflow_counter_qkv(&p, in.layer, dataflow_qkv_tile_kv_head(&p, (int)in.index));
    case DATAFLOW_ATTN: return dataflow_counter_attn(&p, in.layer, (int)in.index % p.shape.n_kv_heads);
    case DATAFLOW_MERGE: return dataflow_counter_merge(&p, in.layer);
    case DATAFLOW_OPROJ: return dataflow_counter_oproj(&p, in.layer);
    case DATAFLOW_GATEUP: return dataflow_counter_gateup(&p, in.layer);
    case DATAFLOW_DOWN: return dataflow_counter_down(&p, in.layer);
    case DATAFLOW_LMPARTIAL: return dataflow_counter_lmhead(&p);
    default: return -1;
    }
}

// Whether vec already holds the input of (op, layer); if not, records that it will after staging.
__device__ __forceinline__ int already_staged(Consumer &c, int op, int layer) {
    if (c.staged_op == op && c.staged_layer == layer) return 1;
    c.staged_op = op;
    c.staged_layer = layer;
    return 0;
}

__device__ void run_qkv(Consumer &c, int layer, int tile, const uint16_t *page) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer &Ly = c.P.layers[layer];
    if (layer > 0) wait_once(c, dataflow_counter_down(&p, layer - 1), p.down_tiles);
    const float *x = layer > 0 ? c.P.layers[layer - 1].resid_mlp : NULL;
    const uint16_t *x_bf16 = layer > 0 ? NULL : c.P.embed + (size_t)c.token * s.hidden;
    if (!already_staged(c, DATAFLOW_QKV, layer))
        stage_rmsnorm(c.g, x, x_bf16, Ly.attn_norm_w, s.hidden, c.P.eps, c.vec, c.misc, c.P.skeleton);
    if (c.trace && tile == 0) {
        for (int i = c.g.tid; i < s.hidden; i += c.g.n_threads) Ly.attn_norm[i] = c.vec[i];
        if (layer == 0)
            for (int i = c.g.tid; i < s.hidden; i += c.g.n_threads)
                c.P.embed_out[i] = bf16_bits_to_float(x_bf16[i]);
    }
    int first = tile * p.qkv_rows, qkv_width = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
    int rows = min(p.qkv_rows, qkv_width - first);
    tile_gemv(c.g, page, rows, s.hidden, c.vec, c.row_sums, c.tile_out, c.P.skeleton);
    if (c.g.tid < rows) Ly.qkv_raw[first + c.g.tid] = c.tile_out[c.g.tid];
    defer_signal(c, dataflow_counter_qkv(&p, layer, dataflow_qkv_tile_kv_head(&p, tile)));
}

// One kv head's attention over one chunk of positions: its q heads and k head normed and rotated at
// the token's position (every chunk recomputes them from qkv_raw: 4 heads of 128 floats), scores
// against the chunk's keys (history from the page, the newest row from this step), and the partial
// softmax sums (max m, sum l of exp(score - m), o = sum of exp(score - m) * v) for the merge.
__device__ void run_attention(Consumer &c, int layer, int index, const uint16_t *page) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer &Ly = c.P.layers[layer];
    const int group = s.n_heads / s.n_kv_heads, hd = s.head_dim, per_lane = hd / WARP;
    const int chunk = index / s.n_kv_heads, kv_head = index % s.n_kv_heads;
    const int begin = chunk * p.chunk, end = min(begin + p.chunk, c.position + 1), n = end - begin;
    const int lane = c.g.lane, warp = c.g.warp;
    const int newest_here = c.position >= begin && c.position < end;
    wait_once(c, dataflow_counter_qkv(&p, layer, kv_head), p.qkv_tiles_per_kv_head);
    // heads: [0, group) the q heads, group: k, group + 1: v, group + 2 / group + 3: the newest K and V
    // rows as the cache holds them (bf16 values).
    float *heads = c.heads;
    const int q_width = s.n_heads * hd, kv_width = s.n_kv_heads * hd;
    for (int i = c.g.tid; i < (group + 2) * hd; i += c.g.n_threads) {
        int h = i / hd, d = i % hd;
        size_t src = h < group ? (size_t)(kv_head * group + h) * hd + d
                               : (size_t)q_width + (size_t)(h - group) * kv_width + (size_t)kv_head * hd + d;
        heads[i] = __ldcg(Ly.qkv_raw + src);
    }
    group_sync(c.g);
    const float *cos_row = c.P.rope_cos + (size_t)c.position * (hd / 2);
    const float *sin_row = c.P.rope_sin + (size_t)c.position * (hd / 2);
    for (int h = warp; !c.P.skeleton && h <= group; h += c.g.n_warps)
        warp_head_norm_rope(heads + h * hd, h < group ? Ly.q_norm_w : Ly.k_norm_w, cos_row, sin_row, hd, c.P.eps, lane);
    group_sync(c.g);
    float *newest = heads + (group + 2) * hd;
    size_t cache_row = ((size_t)kv_head * s.max_context + c.position) * hd;
    if (newest_here) {
        for (int i = c.g.tid; i < 2 * hd; i += c.g.n_threads) {
            uint16_t *cache = i < hd ? Ly.k_cache : Ly.v_cache;
            int d = i % hd;
            if (c.forced) {
                newest[i] = bf16_bits_to_float(cache[cache_row + d]);
            } else {
                __nv_bfloat16 rounded = __float2bfloat16_rn(heads[(group + i / hd) * hd + d]);
                cache[cache_row + d] = __bfloat16_as_ushort(rounded);
                newest[i] = __bfloat162float(rounded);
            }
        }
        if (c.trace) {
            for (int i = c.g.tid; i < group * hd; i += c.g.n_threads) Ly.q[(size_t)kv_head * group * hd + i] = heads[i];
            for (int i = c.g.tid; i < hd; i += c.g.n_threads) {
                Ly.k[(size_t)kv_head * hd + i] = heads[group * hd + i];
                Ly.v[(size_t)kv_head * hd + i] = heads[(group + 1) * hd + i];
            }
        }
    }
    group_sync(c.g);
    // Scores: warp w takes positions w, w + 8, ...; lane holds dimensions 4 lane .. 4 lane + 3.
    const float scale = rsqrtf((float)hd);
    float *scores = c.scores;  // [group][p.chunk]
    const uint16_t *k_page = page, *v_page = page + (size_t)p.chunk * hd;
    // Warp w scores positions [8 w, 8 w + 8), then [8 (w + W), ...): the 8 dot products of a head are
    // reduced across the warp together, so their shuffles overlap.
    for (int t0 = warp * 8; t0 < n; t0 += c.g.n_warps * 8) {
        float key[8][4];  // this lane's per_lane (2 or 4) dimensions of 8 keys
#pragma unroll
        for (int u = 0; u < 8; u++) {
            int t = t0 + u;
            if (t >= n) {
#pragma unroll
                for (int e = 0; e < 4; e++) key[u][e] = 0.0f;
            } else if (begin + t == c.position) {
#pragma unroll
                for (int e = 0; e < 4; e++) key[u][e] = e < per_lane ? newest[lane * per_lane + e] : 0.0f;
            } else if (per_lane == 4) {
                uint2 bits = *(const uint2 *)(k_page + (size_t)t * hd + lane * 4);
                key[u][0] = __uint_as_float(bits.x << 16);
                key[u][1] = __uint_as_float(bits.x & 0xffff0000u);
                key[u][2] = __uint_as_float(bits.y << 16);
                key[u][3] = __uint_as_float(bits.y & 0xffff0000u);
            } else {
                uint32_t bits = *(const uint32_t *)(k_page + (size_t)t * hd + lane * 2);
                key[u][0] = __uint_as_float(bits << 16);
                key[u][1] = __uint_as_float(bits & 0xffff0000u);
            }
        }
        for (int j = 0; j < group; j++) {
            float dot[8];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                dot[u] = 0.0f;
                if (!c.P.skeleton)
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        if (e < per_lane) dot[u] = fmaf(heads[j * hd + lane * per_lane + e], key[u][e], dot[u]);
            }
#pragma unroll
            for (int offset = WARP / 2; offset > 0; offset >>= 1)
#pragma unroll
                for (int u = 0; u < 8; u++) dot[u] += __shfl_xor_sync(0xffffffffu, dot[u], offset);
            if (lane == 0)
#pragma unroll
                for (int u = 0; u < 8; u++)
                    if (t0 + u < n) scores[j * p.chunk + t0 + u] = dot[u] * scale;
        }
    }
    group_sync(c.g);
    // Per q head (warp j): m and l; the scores become weights exp(score - m).
    float *ml = c.misc + 16;  // [group][2]
    for (int j = warp; j < group; j += c.g.n_warps) {
        float m = -INFINITY;
        for (int t = lane; t < n; t += WARP) m = fmaxf(m, scores[j * p.chunk + t]);
        m = warp_max(m);
        float l = 0.0f;
        for (int t = lane; t < n; t += WARP) {
            float e = c.P.skeleton ? 0.0f : expf(scores[j * p.chunk + t] - m);
            scores[j * p.chunk + t] = e;
            l += e;
        }
        l = warp_sum(l);
        if (lane == 0) {
            ml[2 * j] = m;
            ml[2 * j + 1] = l;
        }
    }
    group_sync(c.g);
    size_t slot_base = (size_t)kv_head * group * p.max_chunks + chunk;  // q head j's slot: + j * max_chunks
    for (int i = c.g.tid; i < group * hd; i += c.g.n_threads) {
        int j = i / hd, d = i % hd;
        float o = 0.0f;
        // 8 positions' loads issued before their products, which stay in position order.
        for (int t0 = 0; !c.P.skeleton && t0 < n; t0 += 8) {
            float v[8];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                int t = t0 + u;
                v[u] = t >= n ? 0.0f : begin + t == c.position ? newest[hd + d] : bf16_bits_to_float(v_page[(size_t)t * hd + d]);
            }
#pragma unroll
            for (int u = 0; u < 8; u++)
                if (t0 + u < n) o = fmaf(scores[j * p.chunk + t0 + u], v[u], o);
        }
        size_t slot = slot_base + (size_t)j * p.max_chunks;
        c.P.partial_o[slot * hd + d] = o;
        if (d < 2) c.P.partial_ml[slot * 2 + d] = ml[2 * j + d];
    }
    defer_signal(c, dataflow_counter_attn(&p, layer, kv_head));
}

// q head j's attention output from the active chunks' partial sums, in chunk order. The chunks' (m, l)
// pairs are loaded by all threads at once and their weights exp(m - M) computed once per chunk, in
// batches through shared memory; each dimension's thread then issues its chunks' o loads 8 at a time.
__device__ void run_merge(Consumer &c, int layer, int j) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const int group = s.n_heads / s.n_kv_heads, hd = s.head_dim;
    const int active = (c.position + 1 + p.chunk - 1) / p.chunk;
    wait_once(c, dataflow_counter_attn(&p, layer, j / group), active);
    const size_t slot0 = (size_t)j * p.max_chunks;
    const float *ml = c.P.partial_ml + slot0 * 2;
    float m = -INFINITY;
    for (int k = c.g.tid; k < active; k += c.g.n_threads) m = fmaxf(m, __ldcg(ml + 2 * k));
    m = warp_max(m);
    if (c.g.lane == 0) c.misc[c.g.warp] = m;
    group_sync(c.g);
    float top = -INFINITY;
    for (int w = 0; w < c.g.n_warps; w++) top = fmaxf(top, c.misc[w]);
    const int batch = min(64, group * p.chunk / 2);
    float *weight = c.scores, *weighted_l = c.scores + batch;  // [batch] each
    float l = 0.0f, o = 0.0f;
    const int d = c.g.tid;
    for (int k0 = 0; k0 < active; k0 += batch) {
        int n = min(batch, active - k0);
        group_sync(c.g);  // the previous batch's weights are read
        for (int k = c.g.tid; k < n; k += c.g.n_threads) {
            float w = c.P.skeleton ? 0.0f : expf(__ldcg(ml + 2 * (k0 + k)) - top);
            weight[k] = w;
            weighted_l[k] = __ldcg(ml + 2 * (k0 + k) + 1) * w;
        }
        group_sync(c.g);
        if (d < hd) {
            for (int k = 0; k < n; k++) l += weighted_l[k];
            for (int u0 = 0; u0 < n; u0 += 8) {
                float v[8];
#pragma unroll
                for (int u = 0; u < 8; u++)
                    v[u] = u0 + u < n ? __ldcg(c.P.partial_o + (slot0 + k0 + u0 + u) * hd + d) : 0.0f;
#pragma unroll
                for (int u = 0; u < 8; u++)
                    if (u0 + u < n) o = fmaf(v[u], weight[u0 + u], o);
            }
        }
    }
    if (d < hd) c.P.layers[layer].attn[(size_t)j * hd + d] = c.P.skeleton ? o : o / l;
    defer_signal(c, dataflow_counter_merge(&p, layer));
}

// Rows of o_proj with the residual: resid_attn = x + attn · W_oᵀ.
__device__ void run_oproj(Consumer &c, int layer, int tile, const uint16_t *page) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer &Ly = c.P.layers[layer];
    const int q_width = s.n_heads * s.head_dim;
    wait_once(c, dataflow_counter_merge(&p, layer), s.n_heads);
    if (!already_staged(c, DATAFLOW_OPROJ, layer)) stage_vector(c.g, Ly.attn, q_width, c.vec);
    int first = tile * p.oproj_rows, rows = min(p.oproj_rows, s.hidden - first);
    tile_gemv(c.g, page, rows, q_width, c.vec, c.row_sums, c.tile_out, c.P.skeleton);
    if (c.g.tid < rows) {
        int row = first + c.g.tid;
        float x = layer > 0 ? __ldcg(c.P.layers[layer - 1].resid_mlp + row)
                            : bf16_bits_to_float(c.P.embed[(size_t)c.token * s.hidden + row]);
        float out = c.tile_out[c.g.tid];
        if (c.trace) Ly.attn_out[row] = out;
        Ly.resid_attn[row] = x + out;
    }
    defer_signal(c, dataflow_counter_oproj(&p, layer));
}

// gate and up rows of the same indices, act = silu(gate) * up.
__device__ void run_gateup(Consumer &c, int layer, int tile, const uint16_t *page) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer &Ly = c.P.layers[layer];
    wait_once(c, dataflow_counter_oproj(&p, layer), p.oproj_tiles);
    if (!already_staged(c, DATAFLOW_GATEUP, layer))
        stage_rmsnorm(c.g, Ly.resid_attn, NULL, Ly.mlp_norm_w, s.hidden, c.P.eps, c.vec, c.misc, c.P.skeleton);
    if (c.trace && tile == 0)
        for (int i = c.g.tid; i < s.hidden; i += c.g.n_threads) Ly.mlp_norm[i] = c.vec[i];
    int first = tile * p.gateup_rows, rows = min(p.gateup_rows, s.intermediate - first);
    // The page holds the tile's gate rows, then its up rows.
    tile_gemv(c.g, page, 2 * rows, s.hidden, c.vec, c.row_sums, c.tile_out, c.P.skeleton);
    if (c.g.tid < rows) {
        int i = first + c.g.tid;
        float g = c.tile_out[c.g.tid], u = c.tile_out[rows + c.g.tid];
        Ly.act[i] = g / (1.0f + expf(-g)) * u;
        if (c.trace) {
            Ly.gate[i] = g;
            Ly.up[i] = u;
        }
    }
    defer_signal(c, dataflow_counter_gateup(&p, layer));
}

// Rows of down_proj with the residual: resid_mlp = resid_attn + act · W_downᵀ.
__device__ void run_down(Consumer &c, int layer, int tile, const uint16_t *page) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer &Ly = c.P.layers[layer];
    wait_once(c, dataflow_counter_gateup(&p, layer), p.gateup_tiles);
    if (!already_staged(c, DATAFLOW_DOWN, layer)) stage_vector(c.g, Ly.act, s.intermediate, c.vec);
    int first = tile * p.down_rows, rows = min(p.down_rows, s.hidden - first);
    tile_gemv(c.g, page, rows, s.intermediate, c.vec, c.row_sums, c.tile_out, c.P.skeleton);
    if (c.g.tid < rows) {
        int row = first + c.g.tid;
        float out = c.tile_out[c.g.tid];
        if (c.trace) Ly.mlp_out[row] = out;
        Ly.resid_mlp[row] = __ldcg(Ly.resid_attn + row) + out;
    }
    defer_signal(c, dataflow_counter_down(&p, layer));
}

// Rows of the LM head: logits, and this block's running argmax (its tiles come in increasing row order,
// so a strictly greater value is needed to replace the best: the lowest index wins ties).
__device__ void run_lmhead(Consumer &c, int tile, const uint16_t *page) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    if (!already_staged(c, DATAFLOW_LMHEAD, 0)) {
        wait_once(c, dataflow_counter_down(&p, s.n_layers - 1), p.down_tiles);
        stage_rmsnorm(c.g, c.P.layers[s.n_layers - 1].resid_mlp, NULL, c.P.final_norm_w, s.hidden, c.P.eps, c.vec, c.misc,
                      c.P.skeleton);
    }
    if (c.trace && tile == 0)
        for (int i = c.g.tid; i < s.hidden; i += c.g.n_threads) c.P.final_norm[i] = c.vec[i];
    int first = tile * p.lmhead_rows, rows = min(p.lmhead_rows, s.vocab - first);
    tile_gemv(c.g, page, rows, s.hidden, c.vec, c.row_sums, c.tile_out, c.P.skeleton);
    if (c.g.tid < rows) c.P.logits[first + c.g.tid] = c.tile_out[c.g.tid];
    if (c.g.tid == 0)
        for (int r = 0; r < rows; r++)
            if (better(c.tile_out[r], first + r, c.best_value, c.best_index)) {
                c.best_value = c.tile_out[r];
                c.best_index = first + r;
            }
    group_sync(c.g);  // tile_out is rewritten by the next tile
}

__device__ void run_lmpartial(Consumer &c) {
    if (c.g.tid == 0) {
        c.P.block_best_value[c.g.virtual_block] = c.best_value;
        c.P.block_best_index[c.g.virtual_block] = c.best_index;
    }
    defer_signal(c, dataflow_counter_lmhead(&c.p));
}

__device__ void run_argmax(Consumer &c) {
    wait_once(c, dataflow_counter_lmhead(&c.p), c.n_virtual_blocks);
    if (c.g.tid == 0) {
        float best_v = 0.0f;
        int best_i = -1;
        for (int b = 0; b < (int)c.n_virtual_blocks; b++) {
            float v = __ldcg(c.P.block_best_value + b);
            int i = __ldcg(c.P.block_best_index + b);
            if (better(v, i, best_v, best_i)) {
                best_v = v;
                best_i = i;
            }
        }
        *c.P.next_token = best_i;
    }
    group_sync(c.g);
}

// The loader (one lane of the group's loader warp): for each instruction of the group's list that
// streams bytes, the next page of the group's ring once its consumers have released it, then the bulk
// copies.
__device__ void run_loader(const DataflowProgram &p, const DataflowParams &P, unsigned char *base,
                           const SharedLayout &L, int n_pages, int position, int virtual_block) {
    const DataflowShape &s = p.shape;
    uint64_t *full = (uint64_t *)(base + L.barriers), *empty = full + MAX_PAGES;
    int slot = 0;
    for (int i = P.offsets[virtual_block]; i < P.offsets[virtual_block + 1]; i++) {
        DataflowInstruction in = P.instructions[i];
        unsigned bytes = (unsigned)dataflow_page_bytes(&p, in, position);
        if (!bytes) continue;
        int page_index = slot % n_pages, use = slot / n_pages;
        if (use > 0) mbarrier_wait(empty + page_index, (use - 1) & 1);
        unsigned char *page = base + L.pages + (size_t)page_index * s.page_bytes;
        mbarrier_arrive_expect_tx(full + page_index, bytes);
        const DataflowLayer &Ly = P.layers[in.layer];
        switch (in.op) {
        case DATAFLOW_QKV:
            bulk_copy_to_shared(page, Ly.w_qkv + (size_t)in.index * p.qkv_rows * s.hidden, bytes, P.copy_piece, full + page_index);
            break;
        case DATAFLOW_ATTN: {
            int chunk = (int)in.index / s.n_kv_heads, kv_head = (int)in.index % s.n_kv_heads;
            size_t row = (size_t)kv_head * s.max_context + (size_t)chunk * p.chunk;
            bulk_copy_to_shared(page, Ly.k_cache + row * s.head_dim, bytes / 2, P.copy_piece, full + page_index);
            bulk_copy_to_shared(page + (size_t)p.chunk * s.head_dim * 2, Ly.v_cache + row * s.head_dim, bytes / 2,
                                P.copy_piece, full + page_index);
            break;
        }
        case DATAFLOW_OPROJ:
            bulk_copy_to_shared(page, Ly.w_o + (size_t)in.index * p.oproj_rows * s.n_heads * s.head_dim, bytes,
                                P.copy_piece, full + page_index);
            break;
        case DATAFLOW_GATEUP: {
            size_t first = (size_t)in.index * p.gateup_rows;
            bulk_copy_to_shared(page, Ly.w_gate_up + first * s.hidden, bytes / 2, P.copy_piece, full + page_index);
            bulk_copy_to_shared(page + bytes / 2, Ly.w_gate_up + ((size_t)s.intermediate + first) * s.hidden, bytes / 2,
                                P.copy_piece, full + page_index);
            break;
        }
        case DATAFLOW_DOWN:
            bulk_copy_to_shared(page, Ly.w_down + (size_t)in.index * p.down_rows * s.intermediate, bytes,
                                P.copy_piece, full + page_index);
            break;
        case DATAFLOW_LMHEAD:
            bulk_copy_to_shared(page, P.lm_head + (size_t)in.index * p.lmhead_rows * s.hidden, bytes, P.copy_piece, full + page_index);
            break;
        default:
            break;
        }
        slot++;
    }
}

// A group's consumers walk its list.
__device__ void run_consumers(Consumer &c, unsigned char *base, const SharedLayout &L, int n_pages) {
    const DataflowProgram &p = c.p;
    uint64_t *full = (uint64_t *)(base + L.barriers), *empty = full + MAX_PAGES;
    int slot = 0;
    for (int i = c.P.offsets[c.g.virtual_block]; i < c.P.offsets[c.g.virtual_block + 1]; i++) {
        DataflowInstruction in = c.P.instructions[i];
        if (in.op == DATAFLOW_ATTN && (int)(in.index / p.shape.n_kv_heads) * p.chunk > c.position) continue;
        // Timeline marks go straight to memory, so no value stays live across the op's call.
        if (c.P.timeline && c.g.tid == 0) c.P.timeline[(size_t)i * 3] = global_time();
        if (signal_index(p, in) != c.pending_index) flush_signal(c);
        size_t bytes = dataflow_page_bytes(&p, in, c.position);
        const uint16_t *page = NULL;
        int page_index = slot % n_pages;
        if (bytes) {
            mbarrier_wait(full + page_index, (slot / n_pages) & 1);
            page = (const uint16_t *)(base + L.pages + (size_t)page_index * p.shape.page_bytes);
        }
        if (c.P.timeline && c.g.tid == 0) c.P.timeline[(size_t)i * 3 + 1] = global_time();
        switch (in.op) {
        case DATAFLOW_QKV: run_qkv(c, in.layer, in.index, page); break;
        case DATAFLOW_ATTN: run_attention(c, in.layer, in.index, page); break;
        case DATAFLOW_MERGE: run_merge(c, in.layer, in.index); break;
        case DATAFLOW_OPROJ: run_oproj(c, in.layer, in.index, page); break;
        case DATAFLOW_GATEUP: run_gateup(c, in.layer, in.index, page); break;
        case DATAFLOW_DOWN: run_down(c, in.layer, in.index, page); break;
        case DATAFLOW_LMHEAD: run_lmhead(c, in.index, page); break;
        case DATAFLOW_LMPARTIAL: run_lmpartial(c); break;
        case DATAFLOW_ARGMAX: run_argmax(c); break;
        default: break;
        }
        if (c.P.timeline && c.g.tid == 0) c.P.timeline[(size_t)i * 3 + 2] = global_time();
        if (bytes) {
            // Every op ends with a group barrier, so every read of the page is done.
            if (c.g.tid == 0) mbarrier_arrive(empty + page_index);
            slot++;
        }
    }
    flush_signal(c);
}

// GROUPS groups per block; group g owns warps [g (W + 1), (g + 1)(W + 1)) with W = 8 / GROUPS: W
// consumer warps, then its loader warp.
template <int GROUPS>
__global__ void __launch_bounds__(CONSUMER_WARPS * WARP + GROUPS * WARP, 1)
    dataflow_decode_kernel(DataflowProgram p, DataflowParams P, int n_pages) {
    constexpr int W = CONSUMER_WARPS / GROUPS;
    extern __shared__ __align__(128) unsigned char smem[];
    SharedLayout L = shared_layout(p, n_pages);
    const int warp = threadIdx.x / WARP, group = warp / (W + 1), warp_in_group = warp % (W + 1);
    unsigned char *base = smem + (size_t)group * L.total;
    const int virtual_block = blockIdx.x * GROUPS + group;
    uint64_t *full = (uint64_t *)(base + L.barriers), *empty = full + MAX_PAGES;
    const int position = P.io[0];
    if (warp_in_group == W && threadIdx.x % WARP == 0) {
        for (int i = 0; i < n_pages; i++) {
            mbarrier_init(full + i, 1);
            mbarrier_init(empty + i, 1);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (warp_in_group == W) {
        if (threadIdx.x % WARP == 0) run_loader(p, P, base, L, n_pages, position, virtual_block);
        __syncwarp();  // the loader warp reconverges before the block barrier below
    } else {
        Group g = {(int)threadIdx.x - group * (W + 1) * WARP, (int)threadIdx.x % WARP, warp_in_group, W * WARP, W,
                   1 + group, virtual_block};
        Consumer c = {p, P, g, (int)gridDim.x * GROUPS, position, P.io[1], P.control[0], P.control[1]};
        c.vec = (float *)(base + L.vec);
        c.heads = (float *)(base + L.heads);
        c.scores = (float *)(base + L.scores);
        c.row_sums = (float *)(base + L.row_sums);
        c.tile_out = (float *)(base + L.tile_out);
        c.misc = (float *)(base + L.misc);
        c.satisfied_index = -1;
        c.satisfied_value = 0;
        c.staged_op = -1;
        c.staged_layer = -1;
        c.pending_index = -1;
        c.pending_count = 0;
        c.best_value = 0.0f;
        c.best_index = -1;
        run_consumers(c, base, L, n_pages);
    }
    // The last block to finish leaves every counter zero for the next launch: by then every other
    // block has made its last wait and its last signal.
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        unsigned ticket = atomicAdd(P.counters + dataflow_counter_exit(&p), 1u);
        if (ticket == gridDim.x - 1) {
            for (int i = 0; i < p.n_counters; i++) P.counters[i] = 0;
            __threadfence();
        }
    }
}

// ---- host side -------------------------------------------------------------------------------------

typedef void (*DataflowKernel)(DataflowProgram, DataflowParams, int);

static DataflowKernel kernel_for(int groups) {
    switch (groups) {
    case 1: return dataflow_decode_kernel<1>;
    case 2: return dataflow_decode_kernel<2>;
    default: return NULL;
    }
}

extern "C" size_t dataflow_shared_bytes(const DataflowProgram *program, int groups, int n_pages) {
    return (size_t)groups * shared_layout(*program, n_pages).total;
}

extern "C" int dataflow_block_threads(int groups) { return CONSUMER_WARPS * WARP + groups * WARP; }

extern "C" int dataflow_max_pages(const DataflowProgram *program, int groups, int *n_pages, ErrorMessage *err) {
    if (!kernel_for(groups)) return fail(err, "dataflow engine: %d groups per block (1 or 2)", groups);
    int device, limit;
    CUDA_CHECK(cudaGetDevice(&device), "dataflow engine");
    CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "dataflow engine");
    int pages = MAX_PAGES;
    while (pages > 1 && dataflow_shared_bytes(program, groups, pages) > (size_t)limit) pages--;
    if (dataflow_shared_bytes(program, groups, pages) > (size_t)limit)
        return fail(err, "dataflow engine: %zu bytes of shared memory for %d groups of one page, the device allows %d",
                    dataflow_shared_bytes(program, groups, pages), groups, limit);
    *n_pages = pages;
    return 0;
}

extern "C" int launch_dataflow_decode(const DataflowProgram *program, const DataflowParams *params, int groups,
                                      int n_pages, cudaStream_t stream, ErrorMessage *err) {
    DataflowKernel kernel = kernel_for(groups);
    if (!kernel) return fail(err, "dataflow engine: %d groups per block (1 or 2)", groups);
    if (n_pages < 1 || n_pages > MAX_PAGES) return fail(err, "dataflow engine: %d pages outside [1, %d]", n_pages, MAX_PAGES);
    if (program->shape.n_blocks % groups)
        return fail(err, "dataflow engine: a program of %d virtual blocks for %d groups a block", program->shape.n_blocks,
                    groups);
    int blocks = program->shape.n_blocks / groups, threads = dataflow_block_threads(groups);
    size_t shared_bytes = dataflow_shared_bytes(program, groups, n_pages);
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared_bytes),
               "dataflow_decode_kernel");
    int per_sm = 0, n_sms = 0;
    if (blocks_per_multiprocessor(kernel, threads, shared_bytes, "dataflow_decode_kernel", &per_sm, err) ||
        device_multiprocessors(&n_sms, "dataflow_decode_kernel", err))
        return -1;
    // Every block waits for others: they must all be resident at once.
    if (blocks > per_sm * n_sms)
        return fail(err, "dataflow_decode_kernel: %d blocks, but only %d fit on the device at once", blocks,
                    per_sm * n_sms);
    kernel<<<blocks, threads, shared_bytes, stream>>>(*program, *params, n_pages);
    CUDA_CHECK(cudaGetLastError(), "launch of dataflow_decode_kernel");
    return 0;
}
