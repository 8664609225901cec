// Launch shapes of the CUDA kernels: every block size, rows-per-warp, step and split constant, in one
// table. Each has its value and why it is that value; "measured" figures are from an H100 running
// Qwen3-0.6B (132 SMs) and are recorded in PERFORMANCE_NOTES.md (v = its version column); "not
// measured" means no alternative was timed. Plain constants (no build-time override): a kernel test or
// a bench run compiles what ships. WARP (32) comes from device_common.cuh; ATTENTION_CHUNK and
// ATTENTION_DECODE_MAX_SPLITS are part of the launcher contracts and live in kernels.h.
#ifndef FUSECHECK_LAUNCH_SHAPES_H
#define FUSECHECK_LAUNCH_SHAPES_H

// ---- 1. rmsnorm_qkv.cu --------------------------------------------------------------------------
// 256 threads, 2 rows a warp: 0.6B gets 256 blocks, 2 an SM, every SM streams weights.
#define QKV_THREADS 256
// 1 row a warp (512 blocks) measured 0.970x (3% slower) at context 1024, 4 rows (128 blocks) slower
// again (v6).
#define QKV_ROWS_PER_WARP 2
#define QKV_ROWS_PER_BLOCK ((QKV_THREADS / WARP) * QKV_ROWS_PER_WARP)

// ---- 2. attention_decode.cu: prefill split + combine kernels ------------------------------------
#define ATTENTION_THREADS 128  // not measured
#define COMBINE_THREADS 128    // not measured
#define COMBINE_PAD 4          // zeroed floats past the combine's chunk weights; not a tuning choice

// ---- 2b. attention_decode.cu: the decode kernel --------------------------------------------------
#define DECODE_THREADS 256  // not measured
#define DECODE_WARPS (DECODE_THREADS / WARP)
// K/V rows a warp walks at once. 8-row steps need 128 registers for the 0.6B instance (77 with 4),
// which costs the occupancy that lets attention blocks load beside the QKV kernel (v6: 8-row steps
// 1.010x at 1024 with 66 splits, 1.070x at 16384, 0.936x at 4096, 0.981x at 128).
#define DECODE_STEP 4
// Steps of each warp's K/V rows loaded before the PDL wait (two: a whole chunk of 64). Two, kept as
// bf16, measured +1.8% at 1024 and +3.9% / +5.7% at 4096 / 16384 against one step as floats; three
// and four take 101 and 122 registers for 0.6B, past what fits beside the QKV kernel (v6).
#define DECODE_PRELOADED_STEPS 2
// The chunk length's unit: one step for every warp of a block.
#define DECODE_MIN_CHUNK (DECODE_WARPS * DECODE_STEP)
// Chunks of one step per warp only while they make at most this many splits; longer contexts get two
// steps per warp at least. At context 1024, 16 splits of 64 ran 1199 tok/s against 1162 for 32 splits
// of 32; at context 128, 4 splits of 32 ran 1315 against 1267 for 2 splits of 64 (v6).
#define DECODE_ONE_STEP_SPLITS 16

// ---- 3. output_projection_residual.cu ------------------------------------------------------------
// 4 rows per 128-thread block gives 0.6B 256 blocks, every SM busy (128 blocks left 4 SMs idle: v1).
#define OPROJ_THREADS 128
#define OPROJ_ROWS_PER_WARP 1
#define OPROJ_ROWS_PER_BLOCK ((OPROJ_THREADS / WARP) * OPROJ_ROWS_PER_WARP)

// ---- 4. mlp_fused.cu -----------------------------------------------------------------------------
#define MLP_THREADS 256  // not measured in this design
// Two blocks per SM (16 warps pulling weights): one block per SM, which lets the next kernel's blocks
// load beside it, measured 0.965x (3-4% slower); 3 blocks an SM with 1 or 2 gate/up rows before the
// wait 0.979x / 0.985x (v6).
#define MLP_BLOCKS_PER_SM 2
// Gate/up rows per warp per call: the block's whole W_gate_up share in flight before the wait (0.6B:
// 3 rows of 2 KB per warp, 48 KB per block; with the down rows' column slices +2.5% at 1024, v5);
// 6 rows (213 registers, with one MLP block an SM) 0.977x (v6).
#define MLP_GATE_UP_ROWS 3

// ---- 5. lm_head_argmax.cu ------------------------------------------------------------------------
#define LM_THREADS 256  // not measured
// Rows a warp's task: 2 rows measured 0.2-0.5% faster than 4 (v6).
#define LM_ROWS_PER_WARP 2
#define LM_ROWS_PER_BLOCK ((LM_THREADS / WARP) * LM_ROWS_PER_WARP)

// ---- ops_unfused.cu: the plain per-op kernels (prefill and the cublas engine) -----------------------
#define OPS_THREADS 256  // not measured

#endif
