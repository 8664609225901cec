// Kernel 4 (decode, one token): the whole MLP in one launch. Contract in kernels.h.
//
// Batch-1 decode is a chain of dependent memory trips, so each phase issues all of a block's weight
// loads at once (as far as registers allow) and as early as nothing they depend on stops it:
//   prologue: (programmatic dependent launch) before waiting on the o-projection, each warp loads its
//            first MLP_GATE_UP_ROWS gate/up rows (weights depend on no kernel; 0.6B: all of them).
//   phase 1: every block recomputes mlp_norm = rmsnorm(resid_attn) into shared memory, then works
//            through its pairs j (block-strided over the grid): gate_j = Wg[j]·h, up_j = Wu[j]·h,
//            act_j = silu(gate_j) * up_j. Its warps split the pairs' rows, the block combines them.
//   before the barrier: each warp loads the first step of its phase 2 weights, and each block the
//            residuals of its rows, so those trips overlap the barrier.
//   barrier: a software grid barrier (atomic ticket on a 64-bit counter that only increases, so no
//            reset is needed between graph replays). The grid is persistent: at most as many blocks
//            as are co-resident (occupancy x SMs), so every block reaches the barrier.
//   phase 2: every block loads act into shared memory; its rows i (block-strided) of Wd are cut into
//            column slices so all 8 warps pull weights: mlp_out_i = sum of the slices' Wd[i]·act in
//            slice order, resid_mlp_i = resid_attn_i + mlp_out_i.
//
// Every output is a fixed-order sum (lane partials in a fixed order, a fixed xor-shuffle tree, slices
// in order): no atomics in the math, so the result is deterministic, bit-identical run to run.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"
#include "launch_shapes.h"

// Thread 0 publishes the block's writes with a gpu-scope release add and spins on an acquire load
// (no fence instructions, no sleep between polls: the wait is on the critical path of every layer).
// Relaxed polling with one acquire fence after it measured 0.4-0.9% slower (PERFORMANCE_NOTES.md, v6).
__device__ __forceinline__ void grid_barrier(unsigned long long *counter) {
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long n_blocks = gridDim.x, ticket, seen;
        asm volatile("atom.add.release.gpu.global.u64 %0, [%1], 1;" : "=l"(ticket) : "l"(counter) : "memory");
        unsigned long long target = (ticket / n_blocks + 1) * n_blocks;
        do {
            asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(seen) : "l"(counter) : "memory");
        } while (seen < target);
    }
    __syncthreads();
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

// Phase 1 work of a block: its pairs j = blockIdx.x + grid * t (t < pairs_per_block) give a list of
// 2 * pairs rows (gate, up, gate, up, ...); warp w takes list rows w, w + 8, w + 16, ..., which are
// all gate rows or all up rows (w's parity), 4 * grid matrix rows apart. MLP_GATE_UP_ROWS of them per
// call, so the block's whole share of W_gate_up is in flight at once when it fits (0.6B: 3 rows of 2 KB
// per warp, 48 KB per block, loaded before the wait; launch_shapes.h).

// Phase 2 work of a block: its rows i = blockIdx.x + grid * v (v < rows_per_block), each cut into
// `slices` equal column ranges so that rows x slices fills the 8 warps (0.6B: 4 rows x 2 slices of
// 1536 columns, 3 KB per warp); warp w takes items w, w + 8, ... (item = v * slices + slice).
__device__ __forceinline__ int mlp_down_slices(int rows_per_block, int inter) {
    int warps = MLP_THREADS / WARP;
    int slices = rows_per_block < warps ? warps / rows_per_block : 1;
    while (slices > 1 && inter % (8 * slices)) slices--;  // 16-byte aligned slices for the vector path
    return slices;
}

__global__ void __launch_bounds__(MLP_THREADS, MLP_BLOCKS_PER_SM) mlp_fused_kernel(ModelDims dims, const float *resid_attn,
                                                                const float *norm_w, const uint16_t *w_gate_up,
                                                                const uint16_t *w_down, float *mlp_norm,
                                                                float *gate, float *up, float *act,
                                                                float *mlp_out, float *resid_mlp,
                                                                unsigned long long *barrier) {
    extern __shared__ float shared[];  // [max(hidden, intermediate)] then the block's partial results
    __shared__ float scratch[32];
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = MLP_THREADS / WARP;
    const int hidden = dims.hidden, inter = dims.intermediate, grid = gridDim.x, block = blockIdx.x;
    const int pairs = (inter - block + grid - 1) / grid;         // this block's pairs (t < pairs)
    const int max_pairs = (inter + grid - 1) / grid;
    const int down_rows = (hidden - block + grid - 1) / grid;    // this block's down rows (v < down_rows)
    const int max_down_rows = (hidden + grid - 1) / grid;
    const int slices = mlp_down_slices(max_down_rows, inter), slice_len = inter / slices;
    float *gate_up_sh = shared + max(hidden, inter);  // [max_pairs][2]
    float *down_sh = gate_up_sh + 2 * max_pairs;      // [max_down_rows][slices]

    // Warp w's gate/up rows: list rows w + 8u, pair t = w/2 + 4u, matrix row parity*inter + block + grid*t.
    const int parity = warp & 1, t0 = warp >> 1;
    const size_t gate_up_stride = (size_t)(warps / 2) * grid * hidden;
    const int gate_up_count = t0 < pairs ? (pairs - t0 + warps / 2 - 1) / (warps / 2) : 0;
    const uint16_t *gate_up_rows = w_gate_up + ((size_t)parity * inter + block + (size_t)grid * t0) * hidden;
    // The first step of this warp's first MLP_GATE_UP_ROWS rows, before the wait: weights depend on no kernel.
    uint4 first_w[4][MLP_GATE_UP_ROWS];
    warp_rows_first_loads<MLP_GATE_UP_ROWS, 4>(gate_up_rows, gate_up_stride, min(gate_up_count, MLP_GATE_UP_ROWS),
                                               hidden, lane, first_w);
    pdl_launch_dependents();
    pdl_wait();

    block_rmsnorm_to_shared(resid_attn, norm_w, hidden, dims.eps, shared, scratch);
    if (block == 0)
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) mlp_norm[i] = shared[i];

    // Rows u0 .. u0 + MLP_GATE_UP_ROWS of this warp; the first call takes first_w (a call of its own,
    // so first_w stays in registers).
    auto gate_up_dots = [&](int u0, const uint4 (*first)[MLP_GATE_UP_ROWS]) {
        float dots[MLP_GATE_UP_ROWS];
        warp_dot_rows_bf16<MLP_GATE_UP_ROWS, 4>(gate_up_rows + u0 * gate_up_stride, gate_up_stride,
                                                min(gate_up_count - u0, MLP_GATE_UP_ROWS), shared, hidden, lane, dots,
                                                first);
#pragma unroll
        for (int r = 0; r < MLP_GATE_UP_ROWS; r++)
            if (lane == 0 && u0 + r < gate_up_count) gate_up_sh[2 * (t0 + (warps / 2) * (u0 + r)) + parity] = dots[r];
    };
    if (gate_up_count > 0) gate_up_dots(0, first_w);
    for (int u0 = MLP_GATE_UP_ROWS; u0 < gate_up_count; u0 += MLP_GATE_UP_ROWS) gate_up_dots(u0, NULL);

    // Phase 2's first weight step and this block's residuals (written by the kernel before this one)
    // fly across the grid barrier instead of following it: neither depends on phase 1.
    const int item0 = warp, v0 = item0 / slices, s0 = item0 % slices;
    const uint16_t *down_row0 = w_down + (size_t)(block + grid * v0) * inter + (size_t)s0 * slice_len;
    uint4 first_down[6][1];
    warp_rows_first_loads<1, 6>(down_row0, 0, item0 < down_rows * slices ? 1 : 0, slice_len, lane, first_down);
    const float own_resid = (int)threadIdx.x < down_rows ? resid_attn[block + grid * threadIdx.x] : 0.0f;

    __syncthreads();
    for (int t = threadIdx.x; t < pairs; t += blockDim.x) {
        int j = block + grid * t;
        float g = gate_up_sh[2 * t], u = gate_up_sh[2 * t + 1];
        gate[j] = g;
        up[j] = u;
        act[j] = silu(g) * u;
    }
    grid_barrier(barrier);

    block_load_to_shared(act, shared, inter);
    __syncthreads();
    auto down_dot = [&](int item, const uint4 (*first)[1]) {
        int v = item / slices, slice = item % slices;
        float dot;
        warp_dot_rows_bf16<1, 6>(w_down + (size_t)(block + grid * v) * inter + (size_t)slice * slice_len, 0, 1,
                                 shared + (size_t)slice * slice_len, slice_len, lane, &dot, first);
        if (lane == 0) down_sh[item] = dot;
    };
    if (item0 < down_rows * slices) down_dot(item0, first_down);
    for (int item = item0 + warps; item < down_rows * slices; item += warps) down_dot(item, NULL);
    __syncthreads();
    // Each output sums its slices in slice order (fixed, so deterministic).
    for (int v = threadIdx.x; v < down_rows; v += blockDim.x) {
        int i = block + grid * v;
        float dot = 0.0f;
        for (int slice = 0; slice < slices; slice++) dot += down_sh[v * slices + slice];
        mlp_out[i] = dot;
        resid_mlp[i] = (v == (int)threadIdx.x ? own_resid : resid_attn[i]) + dot;
    }
}

// The activation vector, then the block's gate/up results and down-row slice results (the kernel's
// layout) for a grid of grid_blocks blocks.
static size_t mlp_shared_bytes(const ModelDims *dims, int grid_blocks) {
    int n = dims->hidden > dims->intermediate ? dims->hidden : dims->intermediate;
    int grid = grid_blocks;
    int max_pairs = (dims->intermediate + grid - 1) / grid, max_down_rows = (dims->hidden + grid - 1) / grid;
    int warps = MLP_THREADS / WARP;
    int down_items = max_down_rows < warps ? warps : max_down_rows;  // rows x slices
    return (size_t)(n + 2 * max_pairs + down_items) * sizeof(float);
}

extern "C" int mlp_fused_grid_blocks(const ModelDims *dims, int *grid_blocks, ErrorMessage *err) {
    int n_sms, per_sm;
    if (device_multiprocessors(&n_sms, "mlp_fused_kernel", err)) return -1;
    // No more blocks than there are rows to give a warp each in the wider phase.
    int rows = dims->intermediate > dims->hidden ? dims->intermediate : dims->hidden;
    int useful = (rows + MLP_THREADS / WARP - 1) / (MLP_THREADS / WARP);
    // The grid is at least min(SMs, useful) blocks, and a larger grid needs less shared memory per
    // block, so the occupancy at that size is a lower bound for the grid chosen.
    int smallest = n_sms < useful ? n_sms : useful;
    size_t shared_bytes = mlp_shared_bytes(dims, smallest);
    CUDA_CHECK(cudaFuncSetAttribute(mlp_fused_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared_bytes),
               "mlp_fused_kernel");
    if (blocks_per_multiprocessor(mlp_fused_kernel, MLP_THREADS, shared_bytes, "mlp_fused_kernel", &per_sm, err))
        return -1;
    if (per_sm > MLP_BLOCKS_PER_SM) per_sm = MLP_BLOCKS_PER_SM;
    int blocks = n_sms * per_sm;
    *grid_blocks = blocks < useful ? blocks : useful;
    return 0;
}

extern "C" int launch_mlp_fused(const ModelDims *dims, const float *resid_attn, const float *norm_w,
                                const uint16_t *w_gate_up, const uint16_t *w_down, float *mlp_norm, float *gate,
                                float *up, float *act, float *mlp_out, float *resid_mlp, unsigned long long *barrier,
                                int grid_blocks, const FusedOptions *options, cudaStream_t stream,
                                ErrorMessage *err) {
    if (grid_blocks < 1) return fail(err, "mlp_fused_kernel: grid of %d blocks", grid_blocks);
    // Set for every launch: the attribute is a ceiling, and the last launch may have set a lower one.
    size_t shared_bytes = mlp_shared_bytes(dims, grid_blocks);
    CUDA_CHECK(cudaFuncSetAttribute(mlp_fused_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared_bytes),
               "mlp_fused_kernel");
    FusedOptions opt = fused_options_or_defaults(options);
    CUDA_CHECK(launch_maybe_pdl(mlp_fused_kernel, dim3(grid_blocks), dim3(MLP_THREADS), shared_bytes, stream,
                                opt.pdl, *dims, resid_attn, norm_w, w_gate_up, w_down, mlp_norm, gate, up, act, mlp_out,
                                resid_mlp, barrier),
               "launch of mlp_fused_kernel");
    return 0;
}
