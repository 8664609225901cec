// Kernel 4 (decode, one token): the whole MLP in one launch. Contract in kernels.h.
//
//   prologue: (programmatic dependent launch) before waiting on the o-projection, each block asks L2
//            for every weight row it will read in both phases, so the MLP's 19 MB (0.6B) start
//            streaming while the previous kernels drain, and phase 2's rows are in L2 by the barrier.
//   phase 1: every block recomputes mlp_norm = rmsnorm(resid_attn) into shared memory, then the grid's
//            warps take rows j of the intermediate width: gate_j = Wg[j]·h, up_j = Wu[j]·h,
//            act_j = silu(gate_j) * up_j (16-byte bf16 loads, gate and up rows in flight together).
//   barrier: a software grid barrier (atomic ticket on a 64-bit counter that only increases, so no
//            reset is needed between graph replays). The grid is persistent: at most as many blocks
//            as are co-resident (occupancy x SMs), so every block reaches the barrier.
//   phase 2: every block loads act (intermediate floats) into shared memory, the grid's warps take
//            rows i of Wd: mlp_out_i = Wd[i]·act, resid_mlp_i = resid_attn_i + mlp_out_i. Rows go to
//            blocks first (row i -> block i % grid, warp i / grid), so every SM pulls its share.
//
// The down-projection reduction: each output element is ONE warp's dot product over the whole act
// vector (lane partial sums in a fixed order, then a fixed xor-shuffle tree); there is no split over
// the intermediate dimension, no atomics, so the result is deterministic, bit-identical run to run.
#include <cuda_runtime.h>

#include "device_common.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define MLP_THREADS 256

// Thread 0 publishes the block's writes with a gpu-scope release add and spins on an acquire load
// (no fence instructions, no sleep between polls: the wait is on the critical path of every layer).
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

__global__ void __launch_bounds__(MLP_THREADS) mlp_fused_kernel(ModelDims dims, const float *resid_attn,
                                                                const float *norm_w, const uint16_t *w_gate_up,
                                                                const uint16_t *w_down, float *mlp_norm,
                                                                float *gate, float *up, float *act,
                                                                float *mlp_out, float *resid_mlp,
                                                                unsigned long long *barrier, int prefetch) {
    extern __shared__ float shared[];  // [max(hidden, intermediate)]
    __shared__ float scratch[32];
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int warps_per_block = MLP_THREADS / WARP;
    int global_warp = blockIdx.x * warps_per_block + warp, n_warps = gridDim.x * warps_per_block;
    int hidden = dims.hidden, inter = dims.intermediate;

    if (prefetch && lane == 0) {
        // Phase 1 rows of this warp (gate and up), then phase 2 rows (see the mapping below).
        for (int j = global_warp; j < inter; j += n_warps) {
            prefetch_l2(w_gate_up + (size_t)j * hidden, (size_t)hidden * sizeof(uint16_t));
            prefetch_l2(w_gate_up + (size_t)(inter + j) * hidden, (size_t)hidden * sizeof(uint16_t));
        }
        for (int i = warp * gridDim.x + blockIdx.x; i < hidden; i += warps_per_block * gridDim.x)
            prefetch_l2(w_down + (size_t)i * inter, (size_t)inter * sizeof(uint16_t));
    }
    // The first step of this warp's first gate/up pair, before the wait: weights depend on no kernel.
    uint4 first_w[4][2];
    warp_rows_first_loads<2, 4>(w_gate_up + (size_t)min(global_warp, inter - 1) * hidden, (size_t)inter * hidden,
                                global_warp < inter ? 2 : 0, hidden, lane, first_w);
    pdl_launch_dependents();
    pdl_wait();

    block_rmsnorm_to_shared(resid_attn, norm_w, hidden, dims.eps, shared, scratch);
    if (blockIdx.x == 0)
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) mlp_norm[i] = shared[i];

    auto gate_up_epilogue = [&](int j, const float gu[2]) {
        if (lane == 0) {
            gate[j] = gu[0];
            up[j] = gu[1];
            act[j] = silu(gu[0]) * gu[1];
        }
    };
    // Gate row j and up row j = inter + j: both in flight at once. The first pair's first step is in
    // first_w (a call of its own, so first_w stays in registers).
    if (global_warp < inter) {
        float gu[2];
        warp_dot_rows_bf16<2, 4>(w_gate_up + (size_t)global_warp * hidden, (size_t)inter * hidden, 2, shared, hidden,
                                 lane, gu, first_w);
        gate_up_epilogue(global_warp, gu);
    }
    for (int j = global_warp + n_warps; j < inter; j += n_warps) {
        float gu[2];
        warp_dot_rows_bf16<2, 4>(w_gate_up + (size_t)j * hidden, (size_t)inter * hidden, 2, shared, hidden, lane, gu);
        gate_up_epilogue(j, gu);
    }

    // The residual of this warp's first down row (written by the kernel before this one): its load
    // flies across the grid barrier instead of following the dot product.
    const int first_row = warp * gridDim.x + blockIdx.x;
    const float first_resid = lane == 0 && first_row < hidden ? resid_attn[first_row] : 0.0f;
    grid_barrier(barrier);

    block_load_to_shared(act, shared, inter);
    __syncthreads();
    for (int i = first_row; i < hidden; i += warps_per_block * gridDim.x) {
        float dot;
        warp_dot_rows_bf16<1, 12>(w_down + (size_t)i * inter, 0, 1, shared, inter, lane, &dot);
        if (lane == 0) {
            mlp_out[i] = dot;
            resid_mlp[i] = (i == first_row ? first_resid : resid_attn[i]) + dot;
        }
    }
}

static size_t mlp_shared_bytes(const ModelDims *dims) {
    int n = dims->hidden > dims->intermediate ? dims->hidden : dims->intermediate;
    return (size_t)n * sizeof(float);
}

extern "C" int mlp_fused_grid_blocks(const ModelDims *dims, int *grid_blocks, ErrorMessage *err) {
    size_t shared_bytes = mlp_shared_bytes(dims);
    CUDA_CHECK(cudaFuncSetAttribute(mlp_fused_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared_bytes),
               "mlp_fused_kernel");
    int device, n_sms, per_sm;
    CUDA_CHECK(cudaGetDevice(&device), "mlp_fused_kernel");
    CUDA_CHECK(cudaDeviceGetAttribute(&n_sms, cudaDevAttrMultiProcessorCount, device), "mlp_fused_kernel");
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, mlp_fused_kernel, MLP_THREADS, shared_bytes),
               "mlp_fused_kernel");
    if (per_sm < 1) return fail(err, "mlp_fused_kernel: no block fits on a multiprocessor (%zu bytes of shared memory)", shared_bytes);
    // No more blocks than there are rows to give a warp each in the wider phase.
    int rows = dims->intermediate > dims->hidden ? dims->intermediate : dims->hidden;
    int useful = (rows + MLP_THREADS / WARP - 1) / (MLP_THREADS / WARP);
    int blocks = n_sms * per_sm;
    *grid_blocks = blocks < useful ? blocks : useful;
    return 0;
}

extern "C" int launch_mlp_fused(const ModelDims *dims, const float *resid_attn, const float *norm_w,
                                const uint16_t *w_gate_up, const uint16_t *w_down, float *mlp_norm, float *gate,
                                float *up, float *act, float *mlp_out, float *resid_mlp, unsigned long long *barrier,
                                int grid_blocks, cudaStream_t stream, ErrorMessage *err) {
    int pdl, prefetch;
    kernels_get_decode_options(&pdl, &prefetch);
    CUDA_CHECK(launch_maybe_pdl(mlp_fused_kernel, dim3(grid_blocks), dim3(MLP_THREADS), mlp_shared_bytes(dims), stream,
                                pdl, *dims, resid_attn, norm_w, w_gate_up, w_down, mlp_norm, gate, up, act, mlp_out,
                                resid_mlp, barrier, prefetch),
               "launch of mlp_fused_kernel");
    return 0;
}
