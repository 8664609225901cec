// The dataflow decode kernel (contract in dataflow_kernel.h, the program in dataflow_schedule.h).
//
// One block of WARPS warps per SM walks the block's instruction list. For a projection tile the block
// first issues the tile's weight loads into registers (each warp a few 16-byte loads per lane: the tile,
// at most DATAFLOW_MAX_TILE_BYTES, is held by the block as a whole), then stages the small activation
// vector it multiplies from L2 into shared memory, which is also its wait: the values travel tagged
// (below) and a value not yet written is re-read until it is. Only then does it use the weights: the
// weight stream does not wait for the dependency chain, and the chain does not wait for the weights
// beyond one tile's latency. Staging a vector the block already holds is skipped (consecutive tiles of
// one projection share their input).
//
// Counters remain only where a block must know something the data cannot tell it: when every block's
// argmax partial is out (untagged, so release and acquire), and which block finishes the launch (it
// resets them). A head's attention is merged by its last active split, which polls the other splits'
// tagged partials.
//
// The kernel is bound by the instructions it issues (16 warps share 4 schedulers; a tile's bytes take
// far less time than its bookkeeping), so the per-tile code is kept lean: constant offsets, no division
// per slot, reductions batched across a warp's slots, small loops not unrolled.
#include <cuda_runtime.h>
#include <math.h>

#include "../device_common.cuh"
#include "dataflow_kernel.h"

#define WARPS 16
#define THREADS (WARPS * WARP)
#define SLOT_BYTES (WARP * 16)  // one warp-wide 16-byte load
#define SLOTS_PER_WARP (DATAFLOW_MAX_TILE_BYTES / SLOT_BYTES / WARPS)
#define MAX_SLOTS (SLOTS_PER_WARP * WARPS)
#define MAX_ROWS DATAFLOW_MAX_TILE_ROWS  // rows of one tile (2 x gateup_rows for GATEUP)
#define MAX_HEAD_DIM 128
#define MAX_CHUNK 80
#define MAX_ATTENTION_GROUP 4  // q heads per kv head an attention split holds in registers
// The LM head stream: rows per warp group, and 16-byte column blocks per lane loaded at once.
#define LM_GROUP_ROWS 4
#define LM_GROUP_STEP 4
// The K/V buffers: a split of one piece (at most chunk positions) fills buffer 0; a longer split
// streams pieces of DATAFLOW_ATTENTION_PASS positions through KV_BUFFERS buffers, two copies in flight
// while a piece is computed. A buffer of pieces of `length` positions holds their K history, then
// their V history (bf16, MAX_HEAD_DIM wide at most); buffer b starts 2 b length MAX_HEAD_DIM values in.
#define KV_BUFFERS 3
#define KV_REGION_BYTES(p) \
    ((size_t)2 * MAX_HEAD_DIM * 2 * \
     ((p).chunk > KV_BUFFERS * DATAFLOW_ATTENTION_PASS ? (p).chunk : KV_BUFFERS * DATAFLOW_ATTENTION_PASS))

static_assert(SLOTS_PER_WARP * WARPS * SLOT_BYTES == DATAFLOW_MAX_TILE_BYTES, "a tile fills whole slots");
static_assert(sizeof(DataflowLayer) % 8 == 0, "the layer table is copied in 8-byte words");
static_assert(MAX_ROWS <= THREADS, "one thread sums each row of a tile");
static_assert(WARPS * 4 == DATAFLOW_ATTENTION_PASS, "an attention pass is 4 positions a warp");

// ---- weight pages: projection tiles copied into shared memory off the dependency chain -------------
//
// Every block runs the same op at about the same time, so a tile's weight loads issued when the block
// reaches the tile arrive as one burst from every SM (12.6 MB for qwen3-0.6b's gate/up), and the small
// exchanged values the tile waits for queue behind it. The paged ops' tiles are instead copied (bulk
// copies, completion on an mbarrier) into one of two pages at a point where the block is computing,
// not waiting: gate/up while attention computes, down while gate/up computes, the next layer's QKV
// while down computes.
// Page 0 takes QKV and gate/up tiles (one after the other), page 1 down tiles.
#define PAGES 2
#define SHARED_LIMIT (227 * 1024)  // dynamic shared memory a block may have on sm_90

__host__ __device__ static inline int page_of(int op) { return op == DATAFLOW_DOWN ? 1 : 0; }

// Bytes of page `page`: the largest tile of the paged ops it takes (an op's tile 0 is its largest).
__host__ __device__ static inline size_t page_bytes(const DataflowProgram &p, int page) {
    size_t bytes = 0;
    for (int op = DATAFLOW_QKV; op <= DATAFLOW_DOWN; op++) {
        if (op == DATAFLOW_ATTN || !((p.page_ops >> op) & 1) || page_of(op) != page) continue;
        const DataflowInstruction tile0 = {(uint16_t)op, 0, 0};
        const size_t tile_bytes = dataflow_tile_bytes(&p, tile0, 0);
        if (tile_bytes > bytes) bytes = tile_bytes;
    }
    return bytes;
}

// The pages' state, in shared memory; written by thread 0 between barriers, read by every thread.
struct PageState {
    unsigned long long full[PAGES];  // mbarriers: the copy into the page has landed
    int instruction[PAGES];          // the list index whose weights the page holds or receives; -1: free
    unsigned parity[PAGES];          // the phase of full[page] the next copy completes
    unsigned offset[PAGES];          // the page's offset in shared memory
    int paged;                       // SharedLayout.paged
};

// What the block's threads share at fixed offset 0 of its shared memory, so its address is a constant,
// not a register the walk keeps: the K/V buffers' mbarriers and the pages' state.
struct BlockState {
    unsigned long long kv_full[KV_BUFFERS];  // the K/V buffers' mbarriers: a piece's copy has landed
    PageState pages;
    // Timeline only (thread 0): attention's STAGED time, the end of its last step, and the time spent
    // in each step (DATAFLOW_MARK_KV_WAITED .. _SUMMED) over the split's pieces.
    unsigned long long step_staged, step_last, step_spent[DATAFLOW_MARK_SUMMED - DATAFLOW_MARK_STAGED];
};

// The block's dynamic shared memory (its layout: SharedLayout; BlockState at offset 0).
extern __shared__ __align__(128) unsigned char smem[];
__device__ __forceinline__ BlockState &block_state() { return *(BlockState *)smem; }

// ---- shared memory layout ------------------------------------------------------------------------

typedef struct {
    size_t list, layers, vec, resid, heads, split_sums, partials, tile_out, misc, kv, total;  // BlockState at 0
    size_t page[PAGES];  // each page's offset
    int paged;           // 0: the pages do not fit beside the rest (every tile loads into registers)
} SharedLayout;

__host__ __device__ static inline size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

__host__ __device__ static inline SharedLayout shared_layout(const DataflowProgram &p) {
    const DataflowShape &s = p.shape;
    int group = s.n_heads / s.n_kv_heads;
    int vec = s.hidden;
    if (s.intermediate > vec) vec = s.intermediate;
    if (s.n_heads * s.head_dim > vec) vec = s.n_heads * s.head_dim;
    if (group * p.splits * 2 > vec) vec = group * p.splits * 2;  // a merge's (m, l) pairs
    SharedLayout L;
    L.list = align_up(sizeof(BlockState), 128);                              // the block's instructions
    L.layers = align_up(L.list + (size_t)p.max_block_instructions * sizeof(DataflowInstruction), 128);  // [n_layers]
    L.vec = align_up(L.layers + (size_t)s.n_layers * sizeof(DataflowLayer), 128);
    L.resid = align_up(L.vec + (size_t)vec * 4, 128);                        // [hidden]
    L.heads = align_up(L.resid + (size_t)s.hidden * 4, 128);                         // [group + 2][head_dim] + newest [2][head_dim]
    L.split_sums = align_up(L.heads + (size_t)(group + 4) * MAX_HEAD_DIM * 4, 128);  // [THREADS]
    L.partials = align_up(L.split_sums + (size_t)THREADS * 4, 128);          // [MAX_SLOTS]
    L.tile_out = align_up(L.partials + (size_t)MAX_SLOTS * 4, 128);           // [MAX_ROWS]
    L.misc = align_up(L.tile_out + (size_t)MAX_ROWS * 4, 128);               // 64 floats: reductions, softmax m/l
    L.kv = align_up(L.misc + 64 * 4, 128);  // the K/V buffers (KV_REGION_BYTES)
    size_t end = L.kv + KV_REGION_BYTES(p);
    const size_t unpaged_end = end;
    for (int page = 0; page < PAGES; page++) {
        L.page[page] = align_up(end, 128);
        end = L.page[page] + page_bytes(p, page);
    }
    L.paged = end <= SHARED_LIMIT;
    if (!L.paged) {
        end = unpaged_end;
        for (int page = 0; page < PAGES; page++) L.page[page] = end;
    }
    L.total = end;
    return L;
}

// ---- synchronization primitives -------------------------------------------------------------------

// The block's threads as the ops see them.
struct Group {
    int tid, lane, warp, n_threads, n_warps, virtual_block;
};

__device__ __forceinline__ void group_sync(const Group &) { __syncthreads(); }

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

__device__ __forceinline__ unsigned load_relaxed(const unsigned *p) {
    unsigned v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ void red_release_add(unsigned *p, unsigned v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

// ---- the activation exchange: values tagged with the launch's epoch -------------------------------
//
// A value one block writes and others read in the same launch travels as a 64-bit word: the launch's
// epoch in the high half, the fp32 bits in the low half, stored and loaded whole (single-copy
// atomic). A reader that sees its launch's epoch has the value, whatever order the writes reach L2
// in, so a producer needs no fence and signals nothing, and a consumer needs no counter and no
// acquire: it loads the words and re-reads any that still carry an older epoch, one trip to L2 after
// the value lands. The words are read from L2, never through L1, which may hold the same addresses
// from an earlier token. The attention partials are tagged with (epoch, layer): every layer reuses them.
typedef unsigned long long Tagged;

__device__ __forceinline__ void tagged_store(Tagged *dst, float v, unsigned epoch) {
    __stcg(dst, ((Tagged)epoch << 32) | __float_as_uint(v));
}

// A re-read waits a little first: many threads may be polling values that are not yet written.
#define TAGGED_RETRY_NS 32

__device__ __forceinline__ float tagged_load(const Tagged *src, unsigned epoch) {
    Tagged t;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(t) : "l"(src) : "memory");
    while ((unsigned)(t >> 32) != epoch) {
        __nanosleep(TAGGED_RETRY_NS);
        asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(t) : "l"(src) : "memory");
    }
    return __uint_as_float((unsigned)t);
}

// Two consecutive tagged words (16-byte aligned), loaded at once; tagged_wait2 re-reads them until
// both carry the epoch, then returns their values. Split so a thread can issue several loads before
// it waits for any.
__device__ __forceinline__ void tagged_issue2(const Tagged *src, Tagged *a, Tagged *b) {
    asm volatile("ld.relaxed.gpu.global.v2.u64 {%0, %1}, [%2];" : "=l"(*a), "=l"(*b) : "l"(src) : "memory");
}

__device__ __forceinline__ float2 tagged_wait2(const Tagged *src, unsigned epoch, Tagged a, Tagged b) {
    while ((unsigned)(a >> 32) != epoch || (unsigned)(b >> 32) != epoch) {
        __nanosleep(TAGGED_RETRY_NS);
        tagged_issue2(src, &a, &b);
    }
    return make_float2(__uint_as_float((unsigned)a), __uint_as_float((unsigned)b));
}

// Two consecutive tagged values (src 16-byte aligned) into out[0], out[1].
__device__ __forceinline__ void tagged_load2(const Tagged *src, unsigned epoch, float *out) {
    Tagged a, b;
    tagged_issue2(src, &a, &b);
    float2 v = tagged_wait2(src, epoch, a, b);
    out[0] = v.x;
    out[1] = v.y;
}

__device__ __forceinline__ Tagged tagged_issue(const Tagged *src) {
    Tagged t;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(t) : "l"(src) : "memory");
    return t;
}

// Whether a loaded word carries `tag`, and its value.
__device__ __forceinline__ bool tagged_ready(Tagged t, unsigned tag) { return (unsigned)(t >> 32) == tag; }
__device__ __forceinline__ float tagged_value(Tagged t) { return __uint_as_float((unsigned)t); }

// A thread with several tagged loads in flight waits for them as a batch: each round re-reads every
// word still stale at once, so it costs one trip to L2 however many it re-reads. Waiting for them one
// after another cost a trip for each: the later words' first loads were as old as the first's, so
// once the first was fresh each later one still had to be re-read on its own.

// Pairs each thread of a block loads at once when it stages a tagged vector.
#define STAGE_PAIRS 4

// ---- bulk copies into shared memory ----------------------------------------------------------------

__device__ __forceinline__ uint32_t shared_address(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbarrier_init(unsigned long long *bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(shared_address(bar)), "r"(count) : "memory");
}

// One arrival that also expects `bytes` of bulk copies to complete on bar (0: the phase completes now).
__device__ __forceinline__ void mbarrier_arrive_expect_tx(unsigned long long *bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(shared_address(bar)), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void mbarrier_wait(unsigned long long *bar, unsigned parity) {
    uint32_t done = 0;
    while (!done)
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done)
                     : "r"(shared_address(bar)), "r"(parity)
                     : "memory");
}

// bytes (a multiple of 16, both addresses 16-byte aligned) from global src into shared dst; completion
// is counted on bar's transaction count.
__device__ __forceinline__ void bulk_copy_to_shared(void *dst, const void *src, unsigned bytes,
                                                    unsigned long long *bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                     shared_address(dst)),
                 "l"(src), "r"(bytes), "r"(shared_address(bar))
                 : "memory");
}

// Orders this thread's earlier shared memory accesses before later bulk copies into shared memory.
__device__ __forceinline__ void fence_proxy_async_shared() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// Asks L1 for [p, p + bytes) (one 128-byte line per thread); returns at once. For what the block will
// read through L1 right after a wait (a norm's weights), so the read after the wait hits.
__device__ __forceinline__ void prefetch_l1(const Group &g, const void *p, size_t bytes) {
    #pragma unroll 1
    for (size_t line = g.tid; line * 128 < bytes; line += g.n_threads)
        asm volatile("prefetch.global.L1 [%0];" ::"l"((const char *)p + line * 128));
}

// The block: wait until counters[index] >= target (thread 0 spins; the barrier releases the rest).
// The spin reads relaxed; only a wait for untagged data (acquire = 1) ends with an acquiring read,
// which also invalidates the SM's L1.
__device__ __forceinline__ void wait_counter(const Group &g, const unsigned *counters, int index, unsigned target,
                                             int acquire) {
    if (g.tid == 0) {
        while (load_relaxed(counters + index) < target) {
        }
        if (acquire) (void)load_acquire(counters + index);  // counters only grow: this read also sees >= target
    }
    group_sync(g);
}

// Sum over the block in a fixed order; every thread gets the total. scratch: WARPS floats.
__device__ __forceinline__ float group_sum(const Group &g, float v, float *scratch) {
    v = warp_sum(v);
    group_sync(g);
    if (g.lane == 0) scratch[g.warp] = v;
    group_sync(g);
    float total = 0.0f;
    for (int w = 0; w < g.n_warps; w++) total += scratch[w];
    return total;
}

// ---- the consumers' building blocks ---------------------------------------------------------------

// vec[0, n) = x[0, n), x other blocks' tagged outputs of this launch (epoch). n % 2 == 0. Each thread
// issues up to STAGE_PAIRS loads before it waits for any, so a vector costs one trip to L2, not one
// per pair; values not yet written are re-read as a batch until they are (the staging is the wait for
// its producers).
__device__ __forceinline__ void stage_vector(const Group &g, const Tagged *x, unsigned epoch, int n, float *vec) {
    for (int base = 0; base < n / 2; base += STAGE_PAIRS * g.n_threads) {
        Tagged a[STAGE_PAIRS], b[STAGE_PAIRS];
#pragma unroll
        for (int k = 0; k < STAGE_PAIRS; k++) {
            int i = base + g.tid + k * g.n_threads;
            a[k] = b[k] = 0;
            if (i < n / 2) tagged_issue2(x + 2 * i, &a[k], &b[k]);
        }
        for (;;) {  // the batch's rounds (above tagged_ready)
            int stale = 0;
#pragma unroll
            for (int k = 0; k < STAGE_PAIRS; k++) {
                int i = base + g.tid + k * g.n_threads;
                stale |= i < n / 2 && !(tagged_ready(a[k], epoch) && tagged_ready(b[k], epoch));
            }
            if (!stale) break;
            __nanosleep(TAGGED_RETRY_NS);
#pragma unroll
            for (int k = 0; k < STAGE_PAIRS; k++) {
                int i = base + g.tid + k * g.n_threads;
                if (i < n / 2 && !(tagged_ready(a[k], epoch) && tagged_ready(b[k], epoch)))
                    tagged_issue2(x + 2 * i, &a[k], &b[k]);
            }
        }
#pragma unroll
        for (int k = 0; k < STAGE_PAIRS; k++) {
            int i = base + g.tid + k * g.n_threads;
            if (i < n / 2) *(float2 *)(vec + 2 * i) = make_float2(tagged_value(a[k]), tagged_value(b[k]));
        }
    }
    group_sync(g);
}

// vec[0, n) = rmsnorm(x) * w, x either another block's tagged output of this launch (epoch) or, when
// x_bf16 is set, a bf16 row (the embedding); raw[0, n) = x (the residual the block adds later). n % 4 == 0.
__device__ __forceinline__ void stage_rmsnorm(const Group &g, const Tagged *x, const uint16_t *x_bf16, unsigned epoch,
                                              const float *w, int n, float eps, float *vec, float *raw, float *scratch,
                                              int skeleton) {
    if (x_bf16) {
        #pragma unroll 1
        for (int i = g.tid; i < n / 4; i += g.n_threads) {
            uint2 bits = *((const uint2 *)x_bf16 + i);
            ((float4 *)vec)[i] = make_float4(__uint_as_float(bits.x << 16), __uint_as_float(bits.x & 0xffff0000u),
                                             __uint_as_float(bits.y << 16), __uint_as_float(bits.y & 0xffff0000u));
        }
        group_sync(g);
    } else {
        stage_vector(g, x, epoch, n, vec);
    }
    float ss = 0.0f;
    #pragma unroll 1
    for (int i = g.tid; i < n / 4; i += g.n_threads) {
        float4 v = ((const float4 *)vec)[i];
        ((float4 *)raw)[i] = v;
        ss = fmaf(v.x, v.x, ss);
        ss = fmaf(v.y, v.y, ss);
        ss = fmaf(v.z, v.z, ss);
        ss = fmaf(v.w, v.w, ss);
    }
    float total = group_sum(g, ss, scratch);
    float inv = rsqrtf(total / (float)n + eps);
    if (!skeleton)
        #pragma unroll 1
        for (int i = g.tid; i < n; i += g.n_threads) vec[i] = vec[i] * inv * __ldg(w + i);
    group_sync(g);
}

// A projection tile: rows_a rows of n bf16 weights from a, then rows_b rows from b (a gate/up tile:
// its gate rows, then its up rows), each row contiguous. n % 256 == 0, so a slot (one warp-wide load:
// 32 lanes x 16 bytes, 256 weights) never straddles two rows; rows_a + rows_b <= MAX_ROWS and the
// tile's bytes <= DATAFLOW_MAX_TILE_BYTES (the program guarantees both).
struct TileSpec {
    const uint16_t *a, *b;
    int rows_a, rows_b, n;
};

// A tile's weights in registers: warp w holds slots w, w + WARPS, ... (each lane 16 bytes of each).
struct TileRegs {
    uint4 w[SLOTS_PER_WARP];
};

// Issues the tile's weight loads. Nothing waits for them here: the caller waits for the tile's input
// (staging) while they are in flight, then calls tile_dots and tile_sums. A tile's slots are the consecutive
// 512-byte pieces of a's rows, then of b's, so slot warp + k WARPS lies k WARPS pieces past the warp's
// first: one address a warp, and a constant offset a load.
__device__ __forceinline__ void tile_issue(const Group &g, const TileSpec &t, TileRegs &r) {
    const int per_row = t.n / 256, slots_a = t.rows_a * per_row, slots = slots_a + t.rows_b * per_row;
    const uint4 *pa = (const uint4 *)t.a + g.warp * 32 + g.lane;
    const uint4 *pb = t.b ? (const uint4 *)t.b + (g.warp * 32 + g.lane) - (ptrdiff_t)slots_a * 32 : pa;
#pragma unroll
    for (int k = 0; k < SLOTS_PER_WARP; k++) {
        int slot = g.warp + k * WARPS;
        r.w[k] = make_uint4(0u, 0u, 0u, 0u);  // every register defined on every path, or the array goes to local memory
        if (slot < slots) r.w[k] = load_weights_16((slot < slots_a ? pa : pb) + k * WARPS * 32);
    }
}

// 2^x in one MUFU.EX2 (ex2.approx.ftz: at most 2 ulp from 2^x; results below 2^-126 flush to 0, and
// 2^-inf is 0). Attention's softmax keeps its scores in log2 units (score log2(e)), so each of its
// exponentials is this one instruction rather than expf's nine.
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Sums each of v[0, 16) over the warp at once, a transposed butterfly (16 shuffles in all, not 5 a
// value), and returns the total of value (lane >> 1) & 15 (both lanes of a pair hold it). Each total
// is added in warp_sum's order (own value + partner's, offsets 16 to 1), so it is bitwise warp_sum's.
// One stage of a transposed butterfly over v[0, 2 WIDTH): lanes with bit OFFSET set keep values
// [WIDTH, 2 WIDTH), the others [0, WIDTH); each adds the value of the kept index of its partner across
// OFFSET. (A template, so every index is a constant and v stays in registers.)
template <int N, int WIDTH, int OFFSET>
__device__ __forceinline__ void transposed_stage(float (&v)[N], int lane) {
    static_assert(2 * WIDTH <= N, "a stage halves the values it is given");
    const bool upper = lane & OFFSET;
#pragma unroll
    for (int i = 0; i < WIDTH; i++) {
        float send = upper ? v[i] : v[i + WIDTH];
        float keep = upper ? v[i + WIDTH] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, OFFSET);
    }
}

__device__ __forceinline__ float warp_sum16_transposed(float (&v)[16], int lane) {
    transposed_stage<16, 8, 16>(v, lane);
    transposed_stage<16, 4, 8>(v, lane);
    transposed_stage<16, 2, 4>(v, lane);
    transposed_stage<16, 1, 2>(v, lane);
    return v[0] + __shfl_xor_sync(0xffffffffu, v[0], 1);
}

// The same for v[0, 8) (11 shuffles): returns the total of value (lane >> 2) & 7 (the four lanes of a
// quad hold it), added in warp_sum's order, so bitwise warp_sum's and warp_sum16_transposed's.
__device__ __forceinline__ float warp_sum8_transposed(float (&v)[8], int lane) {
    transposed_stage<8, 4, 16>(v, lane);
    transposed_stage<8, 2, 8>(v, lane);
    transposed_stage<8, 1, 4>(v, lane);
    const float pair = v[0] + __shfl_xor_sync(0xffffffffu, v[0], 2);
    return pair + __shfl_xor_sync(0xffffffffu, pair, 1);
}

// A row's slot sums one thread loads at once when it adds them up (tile_sums).
#define ROW_SUM_BATCH 8

// tile_out[r] = row r · vec (vec: n fp32 in shared memory) for every row of the tile, readable by every
// consumer after tile_sums, in two parts so that a run of tiles can issue the next tile's weight loads
// into the registers between them (run_tiles): tile_dots reads the weights (r is free after it),
// tile_sums needs only v. The block issues this code once per tile on the dependency chain, 16 warps on
// 4 schedulers, so it is kept to few instructions.
// tile_dots: v[k] = this lane's part of slot warp + k WARPS's dot product with vec (vec: n fp32 in
// shared memory). Where a row's slots divide the warps (n = 256 .. 4096 in powers of two) every slot of
// a warp is the same part of its row and the warp reads its inputs once.
__device__ __forceinline__ void tile_dots(const Group &g, const TileSpec &t, const TileRegs &r, const float *vec,
                                          int skeleton, float (&v)[16]) {
    static_assert(SLOTS_PER_WARP <= 16, "warp_sum16_transposed sums at most 16 slots");
    const int per_row = t.n / 256, slots = (t.rows_a + t.rows_b) * per_row;
#pragma unroll
    for (int k = 0; k < 16; k++) v[k] = 0.0f;
    if (skeleton) {
#pragma unroll
        for (int k = 0; k < SLOTS_PER_WARP; k++)
            if (g.warp + k * WARPS < slots) v[k] = __uint_as_float(r.w[k].x & 1u);  // the loads are used, so they stay
    } else if (per_row <= WARPS && (per_row & (per_row - 1)) == 0) {
        const float4 *x4 = (const float4 *)(vec + (g.warp & (per_row - 1)) * 256) + 2 * g.lane;
        const float4 a = x4[0], b = x4[1];
#pragma unroll
        for (int k = 0; k < SLOTS_PER_WARP; k++)
            if (g.warp + k * WARPS < slots) v[k] = dot8_bf16(r.w[k], a, b, 0.0f);
    } else {
        const int step = WARPS % per_row;  // slot s + WARPS is part (part of s + step) mod per_row of its row
        int part = g.warp % per_row;
#pragma unroll
        for (int k = 0; k < SLOTS_PER_WARP; k++) {
            if (g.warp + k * WARPS < slots) {
                const float4 *x4 = (const float4 *)(vec + part * 256) + 2 * g.lane;
                v[k] = dot8_bf16(r.w[k], x4[0], x4[1], 0.0f);
            }
            part += step;
            if (part >= per_row) part -= per_row;
        }
    }
}

// tile_sums: a warp's slots are summed over its lanes together (warp_sum16_transposed), then a row's
// slots in order by one thread: deterministic. A row's slot sums are loaded ROW_SUM_BATCH at a time
// (added in the same order as one at a time). Ends with a barrier: tile_out is readable by every thread.
__device__ __forceinline__ void tile_sums(const Group &g, const TileSpec &t, float (&v)[16], float *partials,
                                          float *tile_out) {
    const int per_row = t.n / 256, rows = t.rows_a + t.rows_b, slots = rows * per_row;
    float total = warp_sum16_transposed(v, g.lane);
    const int k = (g.lane >> 1) & 15, slot = g.warp + k * WARPS;
    if ((g.lane & 1) == 0 && k < SLOTS_PER_WARP && slot < slots) partials[slot] = total;
    group_sync(g);
    if (g.tid < rows) {
        const float *row_sums = partials + g.tid * per_row;
        float sum = 0.0f;
#pragma unroll 1
        for (int q0 = 0; q0 < per_row; q0 += ROW_SUM_BATCH) {
            float batch[ROW_SUM_BATCH];
#pragma unroll
            for (int u = 0; u < ROW_SUM_BATCH; u++) batch[u] = q0 + u < per_row ? row_sums[q0 + u] : 0.0f;
#pragma unroll
            for (int u = 0; u < ROW_SUM_BATCH; u++)
                if (q0 + u < per_row) sum += batch[u];
        }
        tile_out[g.tid] = sum;
    }
    group_sync(g);
}

// Item `item`'s total over its `splits` partial sums, which threads left in sums[k * items + item]
// (split k), added in split order so the result does not depend on the thread count.
__device__ __forceinline__ float ordered_split_sum(const float *sums, int splits, int items, int item) {
    float total = 0.0f;
#pragma unroll 1
    for (int k = 0; k < splits; k++) total += sums[k * items + item];
    return total;
}

// (value, index) order of the argmax: larger value, then lower index; NaN never wins.
__device__ __forceinline__ int better(float v, int i, float best_v, int best_i) {
    if (i < 0 || isnan(v)) return 0;
    if (best_i < 0) return 1;
    return v > best_v || (v == best_v && i < best_i);
}

// ---- the kernel -----------------------------------------------------------------------------------

// The ops are inlined into the walk: a call that took the Consumer's address would keep it in local
// memory, and every field read after a store through any pointer would go back to it.

// One group's consumers: what they share while walking their list. Uniform across the group.
struct Consumer {
    const DataflowProgram &p;
    const DataflowParams &P;
    Group g;
    int n_virtual_blocks;
    int position, token, trace, forced;
    int skeleton;                        // P.skeleton, 0 in the kernel without instrumentation
    unsigned long long *timeline;        // P.timeline, NULL in the kernel without instrumentation
    const DataflowInstruction *list;  // the block's instructions in shared memory, list[i - list_first]
    int list_first;
    const DataflowLayer *layers;      // P.layers, copied to shared memory
    float *vec, *heads, *split_sums, *partials, *tile_out, *misc;
    float *resid;               // the raw input of the block's last rmsnorm staging: the residual its
    int resid_op, resid_layer;  // o_proj / down tiles add; and whose input that was (op -1: none)
    uint16_t *kv;               // the K/V buffers (KV_REGION_BYTES)
    unsigned kv_parity;         // bit b: the phase of kv_full[b] the next copy completes
    int current;                // the instruction being run (timeline marks)
    unsigned epoch;             // this launch's tag on exchanged values
    int walk_end;               // the end of the block's list (run_consumers)
    int split_span, active_splits;  // this token's attention splits (dataflow_split_span / _active_splits)
    int list_count;
    int staged_op, staged_layer;  // what vec holds (op -1: nothing)
    float best_value;           // the group's running argmax (meaningful in thread 0)
    int best_index;
    int page_ops;               // DataflowProgram.page_ops, a constant where the kernel is specialized for it
};

// Timeline mark k of the instruction being run (thread 0; a no-op unless the timeline is on).
__device__ __forceinline__ void mark(const Consumer &c, int k) {
    if (c.timeline && c.g.tid == 0) c.timeline[(size_t)c.current * DATAFLOW_TIMELINE_MARKS + k] = global_time();
}

// Timeline: instruction `i` starts (every mark set to now; the ones it reaches later are overwritten).
// Marks go straight to memory, so no value stays live across the op's call.
__device__ __forceinline__ void mark_start(const Consumer &c, int i) {
    if (!c.timeline || c.g.tid != 0) return;
    const unsigned long long now = global_time();
    for (int k = 0; k < DATAFLOW_TIMELINE_MARKS; k++) c.timeline[(size_t)i * DATAFLOW_TIMELINE_MARKS + k] = now;
}

// Attention's steps on the timeline: step_start at STAGED, step_end at the end of step
// (DATAFLOW_MARK_KV_WAITED, _SUMMED) in every piece, step_marks before COMPUTED writes each step's
// mark as STAGED plus the time spent in it and the steps before it. No-ops unless the timeline is on.
__device__ __forceinline__ void step_start(const Consumer &c) {
    if (!c.timeline || c.g.tid != 0) return;
    BlockState &b = block_state();
    b.step_staged = b.step_last = global_time();
    for (int k = 0; k < DATAFLOW_MARK_SUMMED - DATAFLOW_MARK_STAGED; k++) b.step_spent[k] = 0;
}

__device__ __forceinline__ void step_end(const Consumer &c, int step) {
    if (!c.timeline || c.g.tid != 0) return;
    BlockState &b = block_state();
    const unsigned long long now = global_time();
    b.step_spent[step - DATAFLOW_MARK_STAGED - 1] += now - b.step_last;
    b.step_last = now;
}

__device__ __forceinline__ void step_marks(const Consumer &c) {
    if (!c.timeline || c.g.tid != 0) return;
    const BlockState &b = block_state();
    unsigned long long t = b.step_staged;
    for (int k = DATAFLOW_MARK_STAGED + 1; k <= DATAFLOW_MARK_SUMMED; k++) {
        t += b.step_spent[k - DATAFLOW_MARK_STAGED - 1];
        c.timeline[(size_t)c.current * DATAFLOW_TIMELINE_MARKS + k] = t;
    }
}

// Whether vec already holds the input of (op, layer); if not, records that it will after staging.
__device__ __forceinline__ int already_staged(Consumer &c, int op, int layer) {
    if (c.staged_op == op && c.staged_layer == layer) return 1;
    c.staged_op = op;
    c.staged_layer = layer;
    return 0;
}

// The weights of projection tile `tile` of (op, layer).
__device__ __forceinline__ TileSpec tile_spec(const Consumer &c, int op, int layer, int tile) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer &Ly = c.layers[layer];
    const int q_width = s.n_heads * s.head_dim, qkv_width = (s.n_heads + 2 * s.n_kv_heads) * s.head_dim;
    int first, rows;
    switch (op) {
    case DATAFLOW_QKV:
        first = tile * p.qkv_rows, rows = min(p.qkv_rows, qkv_width - first);
        return TileSpec{Ly.w_qkv + (size_t)first * s.hidden, NULL, rows, 0, s.hidden};
    case DATAFLOW_OPROJ:
        first = tile * p.oproj_rows, rows = min(p.oproj_rows, s.hidden - first);
        return TileSpec{Ly.w_o + (size_t)first * q_width, NULL, rows, 0, q_width};
    case DATAFLOW_GATEUP:
        first = tile * p.gateup_rows, rows = min(p.gateup_rows, s.intermediate - first);
        return TileSpec{Ly.w_gate_up + (size_t)first * s.hidden,
                        Ly.w_gate_up + ((size_t)s.intermediate + first) * s.hidden, rows, rows, s.hidden};
    default:  // DATAFLOW_DOWN
        first = tile * p.down_rows, rows = min(p.down_rows, s.hidden - first);
        return TileSpec{Ly.w_down + (size_t)first * s.intermediate, NULL, rows, 0, s.intermediate};
    }
}

// If op is paged and its page is free: asks for the weights of the block's next `op` instruction (at or
// after the current one) into the page. Thread 0 issues the copies and records the instruction (read by
// the others after the next barrier).
__device__ __forceinline__ void page_prefetch(Consumer &c, int op) {
    PageState &ps = block_state().pages;
    if (!((c.page_ops >> op) & 1) || c.g.tid != 0 || !ps.paged) return;
    const int page = page_of(op);
    if (ps.instruction[page] >= 0) return;
    int j = c.current;
#pragma unroll 1
    while (j < c.walk_end && c.list[j - c.list_first].op != op) j++;
    if (j >= c.walk_end) return;
    ps.instruction[page] = j;
    const DataflowInstruction in = c.list[j - c.list_first];
    const TileSpec t = tile_spec(c, in.op, in.layer, (int)in.index);
    const unsigned bytes_a = (unsigned)(t.rows_a * t.n * 2), bytes_b = (unsigned)(t.rows_b * t.n * 2);
    unsigned char *dst = smem + ps.offset[page];
    mbarrier_arrive_expect_tx(&ps.full[page], bytes_a + bytes_b);
    bulk_copy_to_shared(dst, t.a, bytes_a, &ps.full[page]);
    if (bytes_b) bulk_copy_to_shared(dst + bytes_a, t.b, bytes_b, &ps.full[page]);
}

// Whether op's page holds (or receives) the current instruction's weights. Read by every thread;
// written only by thread 0 between barriers, and only for paged ops.
__device__ __forceinline__ int tile_in_page(const Consumer &c, int op) {
    return ((c.page_ops >> op) & 1) && block_state().pages.instruction[page_of(op)] == c.current;
}

// The tile's weights from page `page` into registers (the page is then free).
__device__ __forceinline__ void tile_from_page(Consumer &c, const TileSpec &t, TileRegs &r, int page) {
    PageState &ps = block_state().pages;
    mbarrier_wait(&ps.full[page], ps.parity[page]);
    const uint4 *src = (const uint4 *)(smem + ps.offset[page]);
    const int slots = (t.rows_a + t.rows_b) * (t.n / 256);
#pragma unroll
    for (int k = 0; k < SLOTS_PER_WARP; k++) {
        const int slot = c.g.warp + k * WARPS;
        r.w[k] = make_uint4(0u, 0u, 0u, 0u);
        if (slot < slots) r.w[k] = src[slot * 32 + c.g.lane];
    }
    fence_proxy_async_shared();
    group_sync(c.g);  // every thread has read the page (and its state) before it is given back
    if (c.g.tid == 0) {
        ps.parity[page] ^= 1u;
        ps.instruction[page] = -1;
    }
}

// Starts the tile's weights: from its page into registers when a page holds them (copied there long
// before), else loads into registers (tile_issue).
__device__ __forceinline__ void tile_begin(Consumer &c, const TileSpec &t, TileRegs &r, int op) {
    if (tile_in_page(c, op))
        tile_from_page(c, t, r, page_of(op));
    else
        tile_issue(c.g, t, r);
}

// How many instructions from the current one on have its op and layer (a run of one op's tiles).
__device__ __forceinline__ int run_length(const Consumer &c) {
    const DataflowInstruction in = c.list[c.current - c.list_first];
    int n = 1;
#pragma unroll 1
    while (c.current + n < c.walk_end && c.list[c.current + n - c.list_first].op == in.op &&
           c.list[c.current + n - c.list_first].layer == in.layer)
        n++;
    return n;
}

// Finishes a run of n_tiles tiles of (op, layer) from the current instruction on. The first (`tile`,
// spec t) has its weights asked for in w (tile_begin) and its input staged; the later ones share that
// input. For each tile: its products into tile_out (tile_dots, then tile_sums), outputs(tile, t) by the
// threads, then a barrier. The next tile's weight loads go into w between a tile's dots and its sums,
// so the block's weight stream does not stop while it sums. prefetch_op (a paged op, or -1) has its
// page asked for after the first tile's staging, while the run computes. c.current ends at the run's
// last instruction. With n_tiles 1 (always, in the kernels compiled without runs) it is one tile.
template <typename Outputs>
__device__ __forceinline__ void run_tiles(Consumer &c, int op, int layer, int tile, TileSpec t, int n_tiles,
                                          TileRegs &w, int prefetch_op, Outputs outputs) {
#pragma unroll 1
    for (int k = 0;; k++) {
        mark(c, DATAFLOW_MARK_STAGED);
        if (k == 0 && prefetch_op >= 0) page_prefetch(c, prefetch_op);
        float v[16];
        tile_dots(c.g, t, w, c.vec, c.skeleton, v);
        const int more = k + 1 < n_tiles;
        const int next = more ? (int)c.list[c.current + 1 - c.list_first].index : 0;
        if (more) tile_issue(c.g, tile_spec(c, op, layer, next), w);
        tile_sums(c.g, t, v, c.partials, c.tile_out);
        mark(c, DATAFLOW_MARK_COMPUTED);
        outputs(tile, t);
        group_sync(c.g);  // the tile's shared memory is read before the next tile or instruction reuses it
        if (!more) break;
        mark(c, DATAFLOW_MARK_END);
        c.current++;
        mark_start(c, c.current);  // its weights were asked for during the last tile's sums
        tile = next;
        t = tile_spec(c, op, layer, tile);
    }
}

__device__ __forceinline__ void run_qkv(Consumer &c, int layer, int tile, int n_tiles) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer Ly = c.layers[layer];  // the layer's pointers, from shared memory
    const TileSpec t = tile_spec(c, DATAFLOW_QKV, layer, tile);
    TileRegs w;
    tile_begin(c, t, w, DATAFLOW_QKV);
    prefetch_l1(c.g, Ly.attn_norm_w, (size_t)s.hidden * 4);
    const Tagged *x = layer > 0 ? c.layers[layer - 1].resid_mlp_tagged : NULL;
    const uint16_t *x_bf16 = layer > 0 ? NULL : c.P.embed + (size_t)c.token * s.hidden;
    if (!already_staged(c, DATAFLOW_QKV, layer)) {
        stage_rmsnorm(c.g, x, x_bf16, c.epoch, Ly.attn_norm_w, s.hidden, c.P.eps, c.vec, c.resid, c.misc,
                      c.skeleton);
        c.resid_op = DATAFLOW_QKV;
        c.resid_layer = layer;
    }
    if (c.trace && tile == 0) {
        #pragma unroll 1
        for (int i = c.g.tid; i < s.hidden; i += c.g.n_threads) Ly.attn_norm[i] = c.vec[i];
        if (layer == 0)
            #pragma unroll 1
            for (int i = c.g.tid; i < s.hidden; i += c.g.n_threads)
                c.P.embed_out[i] = bf16_bits_to_float(x_bf16[i]);
    }
    run_tiles(c, DATAFLOW_QKV, layer, tile, t, n_tiles, w, -1, [&](int tile, const TileSpec &t) {
        const int first = tile * p.qkv_rows, rows = t.rows_a;
        if (c.g.tid < rows) {
            tagged_store(Ly.qkv_tagged + first + c.g.tid, c.tile_out[c.g.tid], c.epoch);
            if (c.trace) Ly.qkv_raw[first + c.g.tid] = c.tile_out[c.g.tid];
        }
    });
}

// The tag of the attention partials of `layer` in this launch: every layer reuses the partial buffers,
// so a merge must not take an earlier layer's value (the launch checks n_layers <= 256).
__device__ __forceinline__ unsigned partial_tag(const Consumer &c, int layer) { return c.epoch << 8 | (unsigned)layer; }

// Chunks whose o values a merging thread loads at once.
#define MERGE_BATCH 8

// The attention outputs of kv head kv_head's q heads, from the active chunks' partial sums in chunk
// order; run by the block of the head's last active split. Other chunks' partials may still be landing:
// every load is re-read until it carries this layer's tag, and the first batch of o values is issued
// together with the (m, l) pairs, so the merge costs one trip to L2. A thread takes one (q head,
// dimension) and a range of chunks (with fewer pairs than threads, the chunks split into `splits`
// ranges added in order).
__device__ __forceinline__ void merge_group(Consumer &c, int layer, int kv_head, int active) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const int group = s.n_heads / s.n_kv_heads, hd = s.head_dim;
    const unsigned tag = partial_tag(c, layer);
    const Tagged *ml_src = c.P.partial_ml + (size_t)kv_head * group * p.splits * 2;  // [group][splits][2]
    const Tagged *o_src = c.P.partial_o + (size_t)kv_head * group * p.splits * hd;   // [group][splits][hd]
    const int combos = group * hd, splits = combos < c.g.n_threads ? c.g.n_threads / combos : 1;
    const int span = (active + splits - 1) / splits, items = combos * splits;
    Tagged first[MERGE_BATCH];  // the first batch of this thread's first item
    {
        const int i = c.g.tid, combo = i % combos, k_begin = i / combos * span;
        const int k_end = min(active, k_begin + span);
        const Tagged *src = o_src + (size_t)(combo / hd) * p.splits * hd + combo % hd;
#pragma unroll
        for (int u = 0; u < MERGE_BATCH; u++) {
            first[u] = 0;
            if (i < items && k_begin + u < k_end) first[u] = tagged_issue(src + (size_t)(k_begin + u) * hd);
        }
    }
    float2 *ml_shared = (float2 *)c.vec;  // [group][active] (m, l); vec's staged input is given up
    c.staged_op = -1;
#pragma unroll 1
    for (int i = c.g.tid; i < group * active; i += c.g.n_threads) {
        const int j = i / active, k = i % active;
        float pair[2];
        tagged_load2(ml_src + ((size_t)j * p.splits + k) * 2, tag, pair);
        ml_shared[i] = make_float2(pair[0], pair[1]);
    }
    group_sync(c.g);
    // Per q head (warp j): the largest m; each chunk's weight exp(m - M) replaces its m; L = sum of l w.
    float *total_l = c.misc + 40;  // [group]
    for (int j = c.g.warp; j < group; j += c.g.n_warps) {
        float m = -INFINITY;
#pragma unroll 1
        for (int k = c.g.lane; k < active; k += WARP) m = fmaxf(m, ml_shared[j * active + k].x);
        m = warp_max(m);
        float l = 0.0f;
#pragma unroll 1
        for (int k = c.g.lane; k < active; k += WARP) {
            float w = c.skeleton ? 0.0f : fast_exp2(ml_shared[j * active + k].x - m);  // m: log2 units (run_attention)
            l = fmaf(ml_shared[j * active + k].y, w, l);
            ml_shared[j * active + k].x = w;
        }
        l = warp_sum(l);
        if (c.g.lane == 0) total_l[j] = l;
    }
    group_sync(c.g);
    const DataflowLayer &Ly = c.layers[layer];
#pragma unroll 1
    for (int i = c.g.tid; i < items; i += c.g.n_threads) {
        const int combo = i % combos, j = combo / hd, d = combo % hd, k_begin = i / combos * span;
        const int k_end = min(active, k_begin + span);
        const Tagged *src = o_src + (size_t)j * p.splits * hd + d;
        float o = 0.0f;
#pragma unroll 1
        for (int k0 = k_begin; k0 < k_end; k0 += MERGE_BATCH) {
            const int preloaded = i == c.g.tid && k0 == k_begin;
            Tagged v[MERGE_BATCH];
#pragma unroll
            for (int u = 0; u < MERGE_BATCH; u++) {
                v[u] = preloaded ? first[u] : 0;
                if (!preloaded && k0 + u < k_end) v[u] = tagged_issue(src + (size_t)(k0 + u) * hd);
            }
            for (;;) {  // the batch's rounds (above tagged_ready)
                int stale = 0;
#pragma unroll
                for (int u = 0; u < MERGE_BATCH; u++) stale |= k0 + u < k_end && !tagged_ready(v[u], tag);
                if (!stale) break;
                __nanosleep(TAGGED_RETRY_NS);
#pragma unroll
                for (int u = 0; u < MERGE_BATCH; u++)
                    if (k0 + u < k_end && !tagged_ready(v[u], tag)) v[u] = tagged_issue(src + (size_t)(k0 + u) * hd);
            }
#pragma unroll
            for (int u = 0; u < MERGE_BATCH; u++)
                if (k0 + u < k_end) o = fmaf(tagged_value(v[u]), ml_shared[j * active + k0 + u].x, o);
        }
        if (splits > 1) {
            c.split_sums[i] = o;
        } else {
            float value = c.skeleton ? o : o / total_l[j];
            tagged_store(Ly.attn_tagged + (size_t)(kv_head * group + j) * hd + d, value, c.epoch);
            if (c.trace) Ly.attn[(size_t)(kv_head * group + j) * hd + d] = value;
        }
    }
    if (splits > 1) {
        group_sync(c.g);
        if (c.g.tid < combos) {
            const int j = c.g.tid / hd, d = c.g.tid % hd;
            const float o = ordered_split_sum(c.split_sums, splits, combos, c.g.tid);
            float value = c.skeleton ? o : o / total_l[j];
            tagged_store(Ly.attn_tagged + (size_t)(kv_head * group + j) * hd + d, value, c.epoch);
            if (c.trace) Ly.attn[(size_t)(kv_head * group + j) * hd + d] = value;
        }
    }
    group_sync(c.g);  // ml_shared (vec) and total_l are read before the next instruction reuses them
}

// This lane's per_lane (2 or 4) consecutive values of a bf16 row in shared memory, from lane per_lane
// on, as floats in out[0, per_lane) (the rest 0).
__device__ __forceinline__ void bf16_row_slice(const uint16_t *row, int lane, int per_lane, float (&out)[4]) {
    if (per_lane == 4) {
        const uint2 bits = *(const uint2 *)(row + lane * 4);
        out[0] = __uint_as_float(bits.x << 16);
        out[1] = __uint_as_float(bits.x & 0xffff0000u);
        out[2] = __uint_as_float(bits.y << 16);
        out[3] = __uint_as_float(bits.y & 0xffff0000u);
    } else {
        const uint32_t bits = *(const uint32_t *)(row + lane * 2);
        out[0] = __uint_as_float(bits << 16);
        out[1] = __uint_as_float(bits & 0xffff0000u);
        out[2] = out[3] = 0.0f;
    }
}

// This lane's slices (bf16_row_slice) of the rows of positions t0 .. t0 + 3 of a piece, from `rows`
// (the piece's K or V rows in shared memory, the token's own row among them). A position at or past n
// reads row n - 1 again: its caller gives such a position the score -inf, so its weight is exactly 0
// and its (finite) values add nothing, and no branch is spent on it.
__device__ __forceinline__ void position_slices(const Consumer &c, const uint16_t *rows, int t0, int n, int lane,
                                                int per_lane, float (&out)[4][4]) {
    const int hd = c.p.shape.head_dim;
    // The two head widths written out, so that each call of bf16_row_slice has a constant per_lane and
    // compiles to its one path.
    if (per_lane == 4) {
#pragma unroll
        for (int u = 0; u < 4; u++) bf16_row_slice(rows + (size_t)min(t0 + u, n - 1) * hd, lane, 4, out[u]);
    } else {
#pragma unroll
        for (int u = 0; u < 4; u++) bf16_row_slice(rows + (size_t)min(t0 + u, n - 1) * hd, lane, 2, out[u]);
    }
}

// The K rows of K/V buffer `buffer` for pieces of `length` positions (KV_BUFFERS); its V rows follow
// length MAX_HEAD_DIM values after them.
__device__ __forceinline__ uint16_t *kv_buffer(const Consumer &c, int buffer, int length) {
    return c.kv + (size_t)buffer * 2 * length * MAX_HEAD_DIM;
}

// Asks for the K and V history rows [begin, begin + history) of kv head kv_head in K/V buffer `buffer`
// of pieces of `length` positions (thread 0 issues two bulk copies; history 0 completes the buffer's
// phase at once).
__device__ __forceinline__ void attention_copy_kv(const Consumer &c, const DataflowLayer &Ly, int kv_head, int begin,
                                                  int history, int buffer, int length) {
    if (c.g.tid != 0) return;
    const int hd = c.p.shape.head_dim;
    const unsigned bytes = (unsigned)(history * hd * 2);
    const size_t row = (size_t)kv_head * c.p.shape.max_context + begin;
    uint16_t *dst = kv_buffer(c, buffer, length);
    mbarrier_arrive_expect_tx(&block_state().kv_full[buffer], 2 * bytes);
    if (bytes) {
        bulk_copy_to_shared(dst, Ly.k_cache + row * hd, bytes, &block_state().kv_full[buffer]);
        bulk_copy_to_shared(dst + (size_t)length * MAX_HEAD_DIM, Ly.v_cache + row * hd, bytes, &block_state().kv_full[buffer]);
    }
}

// One kv head's attention over one split of the context: its q heads and k head normed and rotated at
// the token's position (every split recomputes them from the tagged q/k/v), then the split's positions
// in pieces (dataflow_piece_positions): scores against the piece's keys (history from the cache, the
// newest row from this step, written into the piece's buffer beside the history) and an online
// softmax, each warp over its own positions (running max m and sum l per q head; the running weighted
// sums rescaled by exp(m_old - m_new) as m grows), the warps' states then combined into the split's
// (m, l, o), its partials for the merge.
// A piece's K/V history is bulk-copied into one of KV_BUFFERS shared memory buffers while the pieces
// before it are computed (the first two before the q/k/v are staged). The copies complete on an
// mbarrier, not on a register scoreboard, so the staging of q/k/v does not wait for them (loads into
// registers shared the staging's scoreboard in ptxas's code).
__device__ __forceinline__ void run_attention(Consumer &c, int layer, int index) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer Ly = c.layers[layer];  // the layer's pointers, from shared memory
    const int group = s.n_heads / s.n_kv_heads, hd = s.head_dim, per_lane = hd / WARP;
    const int split = index / s.n_kv_heads, kv_head = index % s.n_kv_heads;
    const int begin = split * c.split_span, end = min(begin + c.split_span, c.position + 1);
    const int lane = c.g.lane, warp = c.g.warp;
    const int newest_here = c.position >= begin && c.position < end;
    const int length = dataflow_piece_positions(&p, end - begin);  // of each piece
    // The first two pieces (every buffer is free: the last attention instruction's reads came before
    // its closing fence and barrier).
    attention_copy_kv(c, Ly, kv_head, begin, dataflow_history(begin, min(length, end - begin), c.position), 0, length);
    if (begin + length < end)
        attention_copy_kv(c, Ly, kv_head, begin + length,
                          dataflow_history(begin + length, min(length, end - begin - length), c.position), 1, length);
    const float *cos_row = c.P.rope_cos + (size_t)c.position * (hd / 2);
    const float *sin_row = c.P.rope_sin + (size_t)c.position * (hd / 2);
    prefetch_l1(c.g, Ly.q_norm_w, (size_t)hd * 4);
    prefetch_l1(c.g, Ly.k_norm_w, (size_t)hd * 4);
    prefetch_l1(c.g, cos_row, (size_t)hd / 2 * 4);
    prefetch_l1(c.g, sin_row, (size_t)hd / 2 * 4);
    // heads: [0, group) the q heads, group: k, group + 1: v, group + 2 / group + 3: the newest K and V
    // rows as the cache holds them (bf16 values).
    float *heads = c.heads;
    const int q_width = s.n_heads * hd, kv_width = s.n_kv_heads * hd;
#pragma unroll 1
    for (int i = 2 * c.g.tid; i < (group + 2) * hd; i += 2 * c.g.n_threads) {  // pairs: hd is even
        int h = i / hd, d = i % hd;
        size_t src = h < group ? (size_t)(kv_head * group + h) * hd + d
                               : (size_t)q_width + (size_t)(h - group) * kv_width + (size_t)kv_head * hd + d;
        tagged_load2(Ly.qkv_tagged + src, c.epoch, heads + i);
    }
    group_sync(c.g);
    for (int h = warp; !c.skeleton && h <= group; h += c.g.n_warps)
        warp_head_norm_rope(heads + h * hd, h < group ? Ly.q_norm_w : Ly.k_norm_w, cos_row, sin_row, hd, c.P.eps, lane);
    group_sync(c.g);
    mark(c, DATAFLOW_MARK_STAGED);
    step_start(c);
    page_prefetch(c, DATAFLOW_GATEUP);  // this layer's: it streams while attention computes
    float *newest = heads + (group + 2) * hd;
    size_t cache_row = ((size_t)kv_head * s.max_context + c.position) * hd;
    if (newest_here) {
#pragma unroll 1
        for (int i = c.g.tid; i < 2 * hd; i += c.g.n_threads) {
            uint16_t *cache = i < hd ? Ly.k_cache : Ly.v_cache;
            const int d = i < hd ? i : i - hd;  // i < 2 hd: no division
            if (c.forced) {
                newest[i] = bf16_bits_to_float(cache[cache_row + d]);
            } else {
                __nv_bfloat16 rounded = __float2bfloat16_rn(heads[group * hd + i]);  // k, then v
                cache[cache_row + d] = __bfloat16_as_ushort(rounded);
                newest[i] = __bfloat162float(rounded);
            }
        }
        if (c.trace) {
#pragma unroll 1
            for (int i = c.g.tid; i < group * hd; i += c.g.n_threads) Ly.q[(size_t)kv_head * group * hd + i] = heads[i];
#pragma unroll 1
            for (int i = c.g.tid; i < hd; i += c.g.n_threads) {
                Ly.k[(size_t)kv_head * hd + i] = heads[group * hd + i];
                Ly.v[(size_t)kv_head * hd + i] = heads[(group + 1) * hd + i];
            }
        }
    }
    // This lane's dimensions (lane per_lane + e) of the q heads, read from shared memory once a split
    // rather than once a pass.
    float query[4][4];
#pragma unroll
    for (int q = 0; q < 4; q++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            query[q][e] = q < group && e < per_lane ? heads[q * hd + lane * per_lane + e] : 0.0f;
    // Each warp runs its own online softmax over its positions of every piece (positions [4 w, 4 w + 4),
    // then [4 (w + WARPS), ...)), in registers: a running max m and sum l per q head, and the running
    // weighted sums of the values, rescaled by exp(m_old - m_new) where m grows. A lane holds per_lane
    // dimensions (lane per_lane + e) of each q head's sums. So a piece needs no barrier but the one
    // that frees its K/V buffer; the warps' states are combined once, at the end of the split.
    float m_run[MAX_ATTENTION_GROUP], l_run[MAX_ATTENTION_GROUP], o_run[MAX_ATTENTION_GROUP][4];
#pragma unroll
    for (int j = 0; j < MAX_ATTENTION_GROUP; j++) {
        m_run[j] = -INFINITY;
        l_run[j] = 0.0f;
#pragma unroll
        for (int e = 0; e < 4; e++) o_run[j][e] = 0.0f;
    }
    // q·k / sqrt(head_dim) in log2 units: softmax's exp(s - m) is 2^(s log2(e) - m log2(e)), so the running
    // maxima m, the split's M (partial_ml) and the merge's weights are all in log2 units.
    const float score_scale = rsqrtf((float)hd) * 1.4426950408889634f;
#pragma unroll 1
    for (int piece = begin, buffer = 0; piece < end; piece += length, buffer = buffer + 1 < KV_BUFFERS ? buffer + 1 : 0) {
        const int n = min(length, end - piece);
        const uint16_t *k_rows = kv_buffer(c, buffer, length), *v_rows = k_rows + (size_t)length * MAX_HEAD_DIM;
        if (newest_here && c.position - piece < n) {
            // The piece that holds the token's own position: its K and V rows (bf16, as the cache holds
            // them) go into the buffer after the history the bulk copy brings (rows [0, position -
            // piece)), so a pass reads every position alike. The buffer's last reader was the piece
            // KV_BUFFERS before, done before its refill was asked for.
            uint16_t *k_newest = (uint16_t *)k_rows + (size_t)(c.position - piece) * hd;
#pragma unroll 1
            for (int i = c.g.tid; i < 2 * hd; i += c.g.n_threads)
                *(i < hd ? k_newest + i : k_newest + (size_t)length * MAX_HEAD_DIM + (i - hd)) =
                    (uint16_t)(__float_as_uint(newest[i]) >> 16);
        }
        fence_proxy_async_shared();  // this thread's shared memory accesses come before the buffers' refills
        group_sync(c.g);  // the last piece's K/V is read, this one's newest row written
        // The piece two ahead, into the buffer the last piece read: two in flight while this one is
        // computed.
        static_assert(KV_BUFFERS == 3, "the pieces in flight are the next two");
        if (piece + 2 * length < end) {
            const int next = piece + 2 * length;
            attention_copy_kv(c, Ly, kv_head, next, dataflow_history(next, min(length, end - next), c.position),
                              buffer == 0 ? 2 : buffer - 1, length);
        }
        mbarrier_wait(&block_state().kv_full[buffer], (c.kv_parity >> buffer) & 1u);
        c.kv_parity ^= 1u << buffer;
        step_end(c, DATAFLOW_MARK_KV_WAITED);
#pragma unroll 1
        for (int t0 = warp * 4; t0 < n; t0 += c.g.n_warps * 4) {
            float key[4][4];  // this lane's per_lane (2 or 4) dimensions of 4 positions' keys
            position_slices(c, k_rows, t0, n, lane, per_lane, key);
            // Scores: q heads x 4 positions of dot products summed over the warp together, heads 0-1 and
            // heads 2-3 (only where the kv head has more than 2) as 8 values each; every lane then takes
            // the totals (score (q, u) sits in lanes 4 (4 (q % 2) + u) to + 3 of totals[q / 2]).
            float v[2][8];
#pragma unroll
            for (int q = 0; q < 4; q++) {
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    float dot = 0.0f;
                    if (!c.skeleton && (q < 2 || group > 2))
#pragma unroll
                        for (int e = 0; e < 4; e++)
                            if (e < per_lane) dot = fmaf(query[q][e], key[u][e], dot);
                    v[q / 2][4 * (q % 2) + u] = dot;
                }
            }
            float totals[2];
            totals[0] = warp_sum8_transposed(v[0], lane);
            totals[1] = group > 2 ? warp_sum8_transposed(v[1], lane) : 0.0f;
            float value[4][4];  // and of their values
            position_slices(c, v_rows, t0, n, lane, per_lane, value);
#pragma unroll
            for (int q = 0; q < MAX_ATTENTION_GROUP; q++) {
                if (q >= group || c.skeleton) continue;
                float score[4], m = m_run[q];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    score[u] = __shfl_sync(0xffffffffu, totals[q / 2], 4 * (4 * (q % 2) + u)) * score_scale;
                    if (t0 + u >= n) score[u] = -INFINITY;
                    m = fmaxf(m, score[u]);
                }
                const float rescale = fast_exp2(m_run[q] - m);  // 0 at the warp's first position
                float l = 0.0f, weight[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    weight[u] = fast_exp2(score[u] - m);
                    l += weight[u];
                }
                l_run[q] = l_run[q] * rescale + l;
                m_run[q] = m;
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float o = o_run[q][e] * rescale;
#pragma unroll
                    for (int u = 0; u < 4; u++) o = fmaf(weight[u], value[u][e], o);
                    o_run[q][e] = o;
                }
            }
        }
        step_end(c, DATAFLOW_MARK_SUMMED);
    }
    // The warps' states, combined in warp order: over the K/V buffers (free once every warp is past its
    // last piece), warp w's sums [w][j][head_dim] and its (m, l) per q head after them.
    group_sync(c.g);
    float *warp_o = (float *)c.kv, *warp_ml = warp_o + (size_t)c.g.n_warps * group * hd;
#pragma unroll
    for (int q = 0; q < MAX_ATTENTION_GROUP; q++) {
        if (q >= group) continue;
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (e < per_lane) warp_o[((size_t)warp * group + q) * hd + lane * per_lane + e] = o_run[q][e];
        if (lane == 0) {
            warp_ml[(warp * group + q) * 2] = m_run[q];
            warp_ml[(warp * group + q) * 2 + 1] = l_run[q];
        }
    }
    group_sync(c.g);
    // The split's partials: per q head, M = the warps' largest m, L = sum of l_w exp(m_w - M), and per
    // (q head, dimension) o = sum of o_w exp(m_w - M).
    const unsigned tag = partial_tag(c, layer);
    const size_t slot_base = (size_t)kv_head * group * p.splits + split;  // q head j's slot: + j * splits
    // Unrolled over the warps, so a thread's loads of the 16 warps' states are in flight at once and
    // its 16 exponentials independent; the sums still run in warp order.
#pragma unroll 1
    for (int i = c.g.tid; i < group * hd; i += c.g.n_threads) {
        const int j = i / hd, d = i % hd;
        float m[WARPS], M = -INFINITY;
#pragma unroll
        for (int w = 0; w < WARPS; w++) {
            m[w] = warp_ml[(w * group + j) * 2];
            M = fmaxf(M, m[w]);
        }
        float o = 0.0f, l = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; w++) {
            const float factor = c.skeleton ? 0.0f : fast_exp2(m[w] - M);  // 0: no positions
            o = fmaf(warp_o[((size_t)w * group + j) * hd + d], factor, o);
            l = fmaf(warp_ml[(w * group + j) * 2 + 1], factor, l);
        }
        const size_t slot = slot_base + (size_t)j * p.splits;
        tagged_store(c.P.partial_o + slot * hd + d, o, tag);
        if (d == 0) tagged_store(c.P.partial_ml + slot * 2, M, tag);
        if (d == 1) tagged_store(c.P.partial_ml + slot * 2 + 1, l, tag);
    }
    fence_proxy_async_shared();  // the K/V buffers' reads come before the next instruction's copies
    // The split's partials are out. The head's last active split (the shortest, so it tends to finish
    // first) merges them: the merge re-reads every partial until it carries this layer's tag, so it
    // needs no ticket, and no atomic round trip stands between the last split's stores and the merge.
    group_sync(c.g);
    step_marks(c);
    mark(c, DATAFLOW_MARK_COMPUTED);
    if (split == c.active_splits - 1) merge_group(c, layer, kv_head, c.active_splits);
}

// Rows of o_proj with the residual: resid_attn = x + attn · W_oᵀ.
__device__ __forceinline__ void run_oproj(Consumer &c, int layer, int tile, int n_tiles) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer Ly = c.layers[layer];  // the layer's pointers, from shared memory
    const int q_width = s.n_heads * s.head_dim;
    const TileSpec t = tile_spec(c, DATAFLOW_OPROJ, layer, tile);
    TileRegs w;
    tile_begin(c, t, w, DATAFLOW_OPROJ);
    page_prefetch(c, DATAFLOW_GATEUP);  // a block with no attention instruction in this layer asks here
    if (!already_staged(c, DATAFLOW_OPROJ, layer)) stage_vector(c.g, Ly.attn_tagged, c.epoch, q_width, c.vec);
    run_tiles(c, DATAFLOW_OPROJ, layer, tile, t, n_tiles, w, -1, [&](int tile, const TileSpec &t) {
        const int first = tile * p.oproj_rows, rows = t.rows_a;
        if (c.g.tid < rows) {
            int row = first + c.g.tid;
            float x = c.resid_op == DATAFLOW_QKV && c.resid_layer == layer ? c.resid[row]
                      : layer > 0 ? tagged_load(c.layers[layer - 1].resid_mlp_tagged + row, c.epoch)
                                  : bf16_bits_to_float(c.P.embed[(size_t)c.token * s.hidden + row]);
            float out = c.tile_out[c.g.tid];
            if (c.trace) Ly.attn_out[row] = out;
            tagged_store(Ly.resid_attn_tagged + row, x + out, c.epoch);
            if (c.trace) Ly.resid_attn[row] = x + out;
        }
    });
}

// gate and up rows of the same indices, act = silu(gate) * up.
__device__ __forceinline__ void run_gateup(Consumer &c, int layer, int tile, int n_tiles) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer Ly = c.layers[layer];  // the layer's pointers, from shared memory
    const TileSpec t = tile_spec(c, DATAFLOW_GATEUP, layer, tile);
    TileRegs w;
    tile_begin(c, t, w, DATAFLOW_GATEUP);
    prefetch_l1(c.g, Ly.mlp_norm_w, (size_t)s.hidden * 4);
    if (!already_staged(c, DATAFLOW_GATEUP, layer)) {
        stage_rmsnorm(c.g, Ly.resid_attn_tagged, NULL, c.epoch, Ly.mlp_norm_w, s.hidden, c.P.eps, c.vec, c.resid,
                      c.misc, c.skeleton);
        c.resid_op = DATAFLOW_GATEUP;
        c.resid_layer = layer;
    }
    if (c.trace && tile == 0)
        #pragma unroll 1
        for (int i = c.g.tid; i < s.hidden; i += c.g.n_threads) Ly.mlp_norm[i] = c.vec[i];
    // run_tiles asks for DATAFLOW_DOWN's page (this layer's, while this tile computes) after the first tile's staging.
    run_tiles(c, DATAFLOW_GATEUP, layer, tile, t, n_tiles, w, DATAFLOW_DOWN, [&](int tile, const TileSpec &t) {
        const int first = tile * p.gateup_rows, rows = t.rows_a;
        if (c.g.tid < rows) {
            int i = first + c.g.tid;
            float g = c.tile_out[c.g.tid], u = c.tile_out[rows + c.g.tid];
            float act = g / (1.0f + expf(-g)) * u;
            tagged_store(Ly.act_tagged + i, act, c.epoch);
            if (c.trace) Ly.act[i] = act;
            if (c.trace) {
                Ly.gate[i] = g;
                Ly.up[i] = u;
            }
        }
    });
}

// Rows of down_proj with the residual: resid_mlp = resid_attn + act · W_downᵀ.
__device__ __forceinline__ void run_down(Consumer &c, int layer, int tile, int n_tiles) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const DataflowLayer Ly = c.layers[layer];  // the layer's pointers, from shared memory
    const TileSpec t = tile_spec(c, DATAFLOW_DOWN, layer, tile);
    TileRegs w;
    tile_begin(c, t, w, DATAFLOW_DOWN);
    if (!already_staged(c, DATAFLOW_DOWN, layer)) stage_vector(c.g, Ly.act_tagged, c.epoch, s.intermediate, c.vec);
    // run_tiles asks for DATAFLOW_QKV's page (the next layer's, while this tile computes) after the first tile's staging.
    run_tiles(c, DATAFLOW_DOWN, layer, tile, t, n_tiles, w, DATAFLOW_QKV, [&](int tile, const TileSpec &t) {
        const int first = tile * p.down_rows, rows = t.rows_a;
        if (c.g.tid < rows) {
            int row = first + c.g.tid;
            float out = c.tile_out[c.g.tid];
            if (c.trace) Ly.mlp_out[row] = out;
            float x = c.resid_op == DATAFLOW_GATEUP && c.resid_layer == layer ? c.resid[row]
                                                                              : tagged_load(Ly.resid_attn_tagged + row, c.epoch);
            float resid = x + out;
            tagged_store(Ly.resid_mlp_tagged + row, resid, c.epoch);
            if (c.trace) Ly.resid_mlp[row] = resid;
        }
    });
}

// Rows of the LM head for the block's n_tiles consecutive LMHEAD instructions from list index
// `first_instruction`: logits, and the block's argmax (larger value, then lower index) in thread 0's
// best_value / best_index. Each warp streams its own rows with no block barrier between them: warp w
// takes groups of LM_GROUP_ROWS row slots w, w + WARPS, ... (a slot: a row of one of the tiles), all of
// a group's 16-byte loads for LM_GROUP_STEP column blocks in flight at once, so the SM always has
// every warp's loads outstanding; the block's first group is issued before its wait for the last layer.
__device__ __forceinline__ void run_lmhead(Consumer &c, int first_instruction, int n_tiles) {
    const DataflowProgram &p = c.p;
    const DataflowShape &s = p.shape;
    const int lr = p.lmhead_rows, per_lane = s.hidden / 256;  // 16-byte column blocks per lane per row
    const int n_slots = n_tiles * lr, n_groups = (n_slots + LM_GROUP_ROWS - 1) / LM_GROUP_ROWS;
    const DataflowInstruction *tiles = c.list + (first_instruction - c.list_first);
    if (!already_staged(c, DATAFLOW_LMHEAD, 0)) {
        stage_rmsnorm(c.g, c.layers[s.n_layers - 1].resid_mlp_tagged, NULL, c.epoch, c.P.final_norm_w, s.hidden,
                      c.P.eps, c.vec, c.resid, c.misc, c.skeleton);
        c.resid_op = DATAFLOW_LMHEAD;
        c.resid_layer = 0;
    }
    for (int k = 0; k < n_tiles; k++)
        if (c.trace && c.list[first_instruction - c.list_first + k].index == 0)
            #pragma unroll 1
            for (int i = c.g.tid; i < s.hidden; i += c.g.n_threads) c.P.final_norm[i] = c.vec[i];
    float best_v = 0.0f;
    int best_i = -1;
    // A warp's groups are WARPS groups apart: its first slot's tile and row in the tile advance by
    // WARPS * LM_GROUP_ROWS slots a group, with one division before the loop, none in it.
    const int stride_tiles = WARPS * LM_GROUP_ROWS / lr, stride_rows = WARPS * LM_GROUP_ROWS % lr;
    DataflowLmheadSlot first = {c.g.warp * LM_GROUP_ROWS / lr, c.g.warp * LM_GROUP_ROWS % lr};
    for (int group = c.g.warp; group < n_groups; group += WARPS) {
        int rows[LM_GROUP_ROWS];  // the group's vocabulary rows, or -1 past the vocabulary / the tiles
        float acc[LM_GROUP_ROWS];
        DataflowLmheadSlot slot = first;
#pragma unroll
        for (int r = 0; r < LM_GROUP_ROWS; r++) {
            const int vocab_row = slot.tile < n_tiles ? (int)tiles[slot.tile].index * lr + slot.row : s.vocab;
            rows[r] = vocab_row < s.vocab ? vocab_row : -1;
            acc[r] = 0.0f;
            slot = dataflow_lmhead_slot_after(slot, 0, 1, lr);
        }
        first = dataflow_lmhead_slot_after(first, stride_tiles, stride_rows, lr);
        for (int c0 = 0; c0 < per_lane; c0 += LM_GROUP_STEP) {
            uint4 w[LM_GROUP_STEP][LM_GROUP_ROWS];
#pragma unroll
            for (int u = 0; u < LM_GROUP_STEP; u++)
#pragma unroll
                for (int r = 0; r < LM_GROUP_ROWS; r++) {
                    int block16 = (c0 + u) * WARP + c.g.lane;  // this lane's 16-byte column block
                    w[u][r] = make_uint4(0u, 0u, 0u, 0u);
                    if (rows[r] >= 0 && c0 + u < per_lane)
                        w[u][r] = load_weights_16((const uint4 *)(c.P.lm_head + (size_t)rows[r] * s.hidden) + block16);
                }
            // The lane's 8 inputs of a column block are read from shared memory once for the group's
            // rows, not once a row.
#pragma unroll
            for (int u = 0; u < LM_GROUP_STEP; u++) {
                if (c0 + u >= per_lane) continue;
                const float4 *x4 = (const float4 *)c.vec + 2 * ((c0 + u) * WARP + c.g.lane);
                const float4 a = x4[0], b = x4[1];
                if (c.skeleton) {
#pragma unroll
                    for (int r = 0; r < LM_GROUP_ROWS; r++) acc[r] += __uint_as_float(w[u][r].x & 1u);
                } else {
#pragma unroll
                    for (int r = 0; r < LM_GROUP_ROWS; r++) acc[r] = dot8_bf16(w[u][r], a, b, acc[r]);
                }
            }
        }
#pragma unroll
        for (int r = 0; r < LM_GROUP_ROWS; r++) {
            float v = warp_sum(acc[r]);
            if (rows[r] >= 0 && c.g.lane == 0) {
                c.P.logits[rows[r]] = v;
                if (better(v, rows[r], best_v, best_i)) {
                    best_v = v;
                    best_i = rows[r];
                }
            }
        }
    }
    // The warps' bests (lane 0 of each), reduced by thread 0 in warp order.
    float *warp_v = c.partials;
    int *warp_i = (int *)(c.partials + WARPS);
    if (c.g.lane == 0) {
        warp_v[c.g.warp] = best_v;
        warp_i[c.g.warp] = best_i;
    }
    group_sync(c.g);
    if (c.g.tid == 0)
        for (int w = 0; w < WARPS; w++)
            if (better(warp_v[w], warp_i[w], c.best_value, c.best_index)) {
                c.best_value = warp_v[w];
                c.best_index = warp_i[w];
            }
    group_sync(c.g);
}

__device__ __forceinline__ void run_lmpartial(Consumer &c) {
    if (c.g.tid == 0) {
        c.P.block_best_value[c.g.virtual_block] = c.best_value;
        c.P.block_best_index[c.g.virtual_block] = c.best_index;
        red_release_add(c.P.counters + dataflow_counter_lmhead(&c.p), 1u);  // publishes the two stores above
    }
}

__device__ __forceinline__ void run_argmax(Consumer &c) {
    // The partials are untagged: an acquiring read ends the wait.
    wait_counter(c.g, c.P.counters, dataflow_counter_lmhead(&c.p), (unsigned)c.n_virtual_blocks, 1);
    mark(c, DATAFLOW_MARK_INPUTS);
    // Warp 0: each lane takes every 32nd block's partial (its loads independent of one another), then
    // the lanes' bests meet in a butterfly. better() is a total order, so any order gives the same token.
    if (c.g.warp == 0) {
        float best_v = 0.0f;
        int best_i = -1;
#pragma unroll 1
        for (int b = c.g.lane; b < (int)c.n_virtual_blocks; b += WARP) {
            float v = __ldcg(c.P.block_best_value + b);
            int i = __ldcg(c.P.block_best_index + b);
            if (better(v, i, best_v, best_i)) {
                best_v = v;
                best_i = i;
            }
        }
#pragma unroll
        for (int offset = WARP / 2; offset > 0; offset >>= 1) {
            float v = __shfl_xor_sync(0xffffffffu, best_v, offset);
            int i = __shfl_xor_sync(0xffffffffu, best_i, offset);
            if (better(v, i, best_v, best_i)) {
                best_v = v;
                best_i = i;
            }
        }
        if (c.g.lane == 0) *c.P.next_token = best_i;
    }
    group_sync(c.g);
}

// The block walks its list. RUNS: a block's consecutive tiles of one projection and layer run as one
// run (run_tiles); without, every tile on its own, which is right for any program.
template <int RUNS>
__device__ __forceinline__ void run_consumers(Consumer &c) {
    c.walk_end = c.list_first + c.list_count;
    c.current = c.list_first;
    page_prefetch(c, DATAFLOW_QKV);  // the first layer's QKV and down tiles; later ones at the triggers
    page_prefetch(c, DATAFLOW_DOWN);
    group_sync(c.g);  // the pages' instructions are recorded
    for (c.current = c.list_first; c.current < c.walk_end; c.current++) {
        const int i = c.current;
        DataflowInstruction in = c.list[i - c.list_first];
        if (in.op == DATAFLOW_ATTN && (int)(in.index / c.p.shape.n_kv_heads) >= c.active_splits) {
            // A split past the token's position. The block's next attention instructions of this layer
            // hold later splits still (dealt in split order), so they are skipped with it.
            while (c.current + 1 < c.walk_end && c.list[c.current + 1 - c.list_first].op == DATAFLOW_ATTN &&
                   c.list[c.current + 1 - c.list_first].layer == in.layer)
                c.current++;
            continue;
        }
        mark_start(c, i);
        switch (in.op) {
        case DATAFLOW_QKV: run_qkv(c, in.layer, in.index, RUNS ? run_length(c) : 1); break;
        case DATAFLOW_ATTN: run_attention(c, in.layer, in.index); break;
        case DATAFLOW_OPROJ: run_oproj(c, in.layer, in.index, RUNS ? run_length(c) : 1); break;
        case DATAFLOW_GATEUP: run_gateup(c, in.layer, in.index, RUNS ? run_length(c) : 1); break;
        case DATAFLOW_DOWN: run_down(c, in.layer, in.index, RUNS ? run_length(c) : 1); break;
        case DATAFLOW_LMHEAD: {
            // The block's LM head tiles are consecutive in its list: one stream over all of them.
            int n_tiles = 1;
            while (c.current + n_tiles < c.walk_end && c.list[c.current - c.list_first + n_tiles].op == DATAFLOW_LMHEAD)
                n_tiles++;
            run_lmhead(c, c.current, n_tiles);
            c.current += n_tiles - 1;
            break;
        }
        case DATAFLOW_LMPARTIAL: run_lmpartial(c); break;
        case DATAFLOW_ARGMAX: run_argmax(c); break;
        default: break;
        }
        mark(c, DATAFLOW_MARK_END);
    }
}

// PAGE_OPS: the program's page_ops as a constant (its paths for other ops compiled out), or -1 for any.
// RUNS: 1 runs a block's runs of one projection's tiles as runs (run_consumers), 0 every tile on its own.
// INSTRUMENTED: 1 honours the trace flag (P.control[0]), the timeline and the skeleton; 0 compiles
// their code out and ignores them, the same arithmetic in less code (what timed steps run).
template <int PAGE_OPS, int RUNS, int INSTRUMENTED>
__global__ void __launch_bounds__(THREADS, 1)
    dataflow_decode_kernel(const __grid_constant__ DataflowProgram p, const __grid_constant__ DataflowParams P) {
    SharedLayout L = shared_layout(p);
    Group g = {(int)threadIdx.x, (int)threadIdx.x % WARP, (int)threadIdx.x / WARP, THREADS, WARPS, (int)blockIdx.x};
    Consumer c = {p, P, g, (int)gridDim.x, P.io[0], P.io[1], INSTRUMENTED ? P.control[0] : 0, P.control[1],
                  INSTRUMENTED ? P.skeleton : 0, INSTRUMENTED ? P.timeline : NULL};
    // The block's instructions and the layer table, read at every instruction: from shared memory, not
    // an L2 trip each (two dependent ones before a tile's weight loads could issue).
    c.list_first = P.offsets[blockIdx.x];
    c.list_count = P.offsets[blockIdx.x + 1] - c.list_first;
    DataflowInstruction *list = (DataflowInstruction *)(smem + L.list);
    for (int i = threadIdx.x; i < c.list_count; i += THREADS) list[i] = P.instructions[c.list_first + i];
    unsigned long long *layer_words = (unsigned long long *)(smem + L.layers);
    const unsigned long long *layer_source = (const unsigned long long *)P.layers;
    for (int i = threadIdx.x; i < (int)(p.shape.n_layers * sizeof(DataflowLayer) / 8); i += THREADS)
        layer_words[i] = layer_source[i];
    __syncthreads();
    c.list = list;
    c.layers = (const DataflowLayer *)layer_words;
    c.vec = (float *)(smem + L.vec);
    c.resid = (float *)(smem + L.resid);
    c.resid_op = -1;
    c.resid_layer = -1;
    c.heads = (float *)(smem + L.heads);
    c.split_sums = (float *)(smem + L.split_sums);
    c.partials = (float *)(smem + L.partials);
    c.tile_out = (float *)(smem + L.tile_out);
    c.misc = (float *)(smem + L.misc);
    c.kv = (uint16_t *)(smem + L.kv);
    c.kv_parity = 0;
    if (threadIdx.x == 0) {
        BlockState &b = block_state();
        for (int page = 0; page < PAGES; page++) {
            mbarrier_init(&b.pages.full[page], 1);
            b.pages.instruction[page] = -1;
            b.pages.parity[page] = 0;
            b.pages.offset[page] = (unsigned)L.page[page];
        }
        b.pages.paged = L.paged;
        for (int buffer = 0; buffer < KV_BUFFERS; buffer++) mbarrier_init(&b.kv_full[buffer], 1);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");  // the barriers, visible to the copy engine
    __syncthreads();
    c.current = 0;
    c.epoch = *P.epoch;
    c.split_span = dataflow_split_span(&p, c.position);
    c.active_splits = dataflow_active_splits(&p, c.position);
    c.staged_op = -1;
    c.staged_layer = -1;
    c.best_value = 0.0f;
    c.best_index = -1;
    c.page_ops = PAGE_OPS >= 0 ? PAGE_OPS : p.page_ops;
    run_consumers<RUNS>(c);
    // The last block to finish leaves every counter zero for the next launch: by then every other
    // block has made its last wait and its last signal.
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        unsigned ticket = atomicAdd(P.counters + dataflow_counter_exit(&p), 1u);
        if (ticket == gridDim.x - 1) {
            for (int i = 0; i < p.n_counters; i++) P.counters[i] = 0;
            *P.epoch += 1;  // every block read it when it started
            __threadfence();
        }
    }
}

// ---- host side -------------------------------------------------------------------------------------

extern "C" size_t dataflow_shared_bytes(const DataflowProgram *program) { return shared_layout(*program).total; }

extern "C" int launch_dataflow_decode(const DataflowProgram *program, const DataflowParams *params, int instrumented,
                                      cudaStream_t stream, ErrorMessage *err) {
    if (program->shape.tile_bytes > DATAFLOW_MAX_TILE_BYTES)
        return fail(err, "dataflow engine: tiles of %d bytes, the kernel holds at most %d", program->shape.tile_bytes,
                    DATAFLOW_MAX_TILE_BYTES);
    if (program->shape.n_layers > 256)
        return fail(err, "dataflow engine: %d layers, the attention partials' tags hold at most 256",
                    program->shape.n_layers);
    const DataflowShape &s = program->shape;
    if (s.n_heads % s.n_kv_heads || s.n_heads / s.n_kv_heads > MAX_ATTENTION_GROUP)
        return fail(err, "dataflow engine: %d q heads over %d kv heads, an attention split holds at most %d q heads a kv head",
                    s.n_heads, s.n_kv_heads, MAX_ATTENTION_GROUP);
    if ((size_t)WARPS * (s.n_heads / s.n_kv_heads) * (s.head_dim + 2) * 4 > KV_REGION_BYTES(*program))
        return fail(err, "dataflow engine: the attention warps' sums do not fit the K/V buffers");
    if (program->chunk > MAX_CHUNK || program->chunk < DATAFLOW_ATTENTION_PASS || program->shape.head_dim > MAX_HEAD_DIM)
        return fail(err, "dataflow engine: attention chunks of %d positions x head_dim %d, the kernel holds %d to %d x at most %d",
                    program->chunk, program->shape.head_dim, DATAFLOW_ATTENTION_PASS, MAX_CHUNK, MAX_HEAD_DIM);
    // The default page set (gate/up) and none run kernels specialized for them, gate/up with and
    // without runs (qwen3-0.6b has none at the default tile size), none with them (large models); any
    // other set the general one, without runs (with them it spills): every tile on its own is right
    // for any program, runs only save the calls between a run's tiles. Each of them with and without
    // instrumentation.
    const int runs = program->longest_run > 1, gate_up = 1 << DATAFLOW_GATEUP;
    void (*kernel)(const DataflowProgram, const DataflowParams) =
        instrumented ? (program->page_ops == 0                 ? dataflow_decode_kernel<0, 1, 1>
                        : program->page_ops == gate_up && runs ? dataflow_decode_kernel<1 << DATAFLOW_GATEUP, 1, 1>
                        : program->page_ops == gate_up         ? dataflow_decode_kernel<1 << DATAFLOW_GATEUP, 0, 1>
                                                               : dataflow_decode_kernel<-1, 0, 1>)
                     : (program->page_ops == 0                 ? dataflow_decode_kernel<0, 1, 0>
                        : program->page_ops == gate_up && runs ? dataflow_decode_kernel<1 << DATAFLOW_GATEUP, 1, 0>
                        : program->page_ops == gate_up         ? dataflow_decode_kernel<1 << DATAFLOW_GATEUP, 0, 0>
                                                               : dataflow_decode_kernel<-1, 0, 0>);
    int blocks = program->shape.n_blocks;
    size_t shared_bytes = dataflow_shared_bytes(program);
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)shared_bytes),
               "dataflow_decode_kernel");
    int per_sm = 0, n_sms = 0;
    if (blocks_per_multiprocessor(kernel, THREADS, shared_bytes, "dataflow_decode_kernel", &per_sm,
                                  err) ||
        device_multiprocessors(&n_sms, "dataflow_decode_kernel", err))
        return -1;
    // Every block waits for others: they must all be resident at once.
    if (blocks > per_sm * n_sms)
        return fail(err, "dataflow_decode_kernel: %d blocks, but only %d fit on the device at once", blocks,
                    per_sm * n_sms);
    kernel<<<blocks, THREADS, shared_bytes, stream>>>(*program, *params);
    CUDA_CHECK(cudaGetLastError(), "launch of dataflow_decode_kernel");
    return 0;
}
