// The dataflow decode kernel: one persistent launch per decode token (contract of the program it runs
// in dataflow_schedule.h). Host C sees only this header.
#ifndef FUSECHECK_DATAFLOW_KERNEL_H
#define FUSECHECK_DATAFLOW_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "../../model/error.h"
#include "dataflow_schedule.h"

#ifdef __cplusplus
extern "C" {
#endif

// What the timeline records for each instruction, in order.
typedef enum {
    DATAFLOW_MARK_START,     // the block reaches the instruction (its weight loads are issued next)
    DATAFLOW_MARK_INPUTS,    // its counter wait is over (the start if it had none)
    DATAFLOW_MARK_STAGED,    // its input vector (attention: the normed, rotated heads) is in shared memory
    // Attention only: STAGED plus the time its split spent in each step, added up over its pieces
    // (thread 0's clock; other ops keep STAGED's time):
    DATAFLOW_MARK_KV_WAITED,  // + the pieces' opening barriers and K/V waits
    DATAFLOW_MARK_SUMMED,     // + thread 0's warp's scores, softmax and weighted sums (the other warps'
                              //   tail lands in the next step)
    DATAFLOW_MARK_COMPUTED,   // its tile's products (attention: its warps' sums combined, its partials stored)
    DATAFLOW_MARK_END,        // its outputs are stored and its signal is made (attention: merged, if last)
    DATAFLOW_TIMELINE_MARKS
} DataflowMark;

// One layer's device buffers. Weights bf16 as in GpuLayer (w_qkv = [Wq; Wk; Wv], w_gate_up = [Wg; Wu]);
// the KV cache bf16 [n_kv_heads][max_context][head_dim]; activations fp32, one token each.
typedef struct {
    const uint16_t *w_qkv, *w_o, *w_gate_up, *w_down;
    const float *attn_norm_w, *q_norm_w, *k_norm_w, *mlp_norm_w;
    uint16_t *k_cache, *v_cache;
    float *attn_norm, *qkv_raw, *q, *k, *v, *attn, *attn_out, *resid_attn, *mlp_norm, *gate, *up, *act, *mlp_out,
        *resid_mlp;  // the engine's buffers: written in trace mode (the traced tensors), else untouched
    // What blocks exchange within a launch, as 64-bit words (the launch's epoch, then the fp32 bits;
    // dataflow_kernel.cu): [qkv width], [q width], [hidden], [intermediate], [hidden]. Owned by the
    // DataflowDecode, zero when allocated.
    unsigned long long *qkv_tagged, *attn_tagged, *resid_attn_tagged, *act_tagged, *resid_mlp_tagged;
} DataflowLayer;

// Everything one launch reads and writes (device pointers).
typedef struct {
    const DataflowLayer *layers;                // [n_layers]
    const DataflowInstruction *instructions;    // the program's, copied to the device
    const int *offsets;                         // [n_blocks + 1]
    const uint16_t *embed, *lm_head;            // [vocab][hidden] bf16 (the same pointer when tied)
    const float *final_norm_w, *rope_cos, *rope_sin;  // rope tables [max_context][head_dim / 2]
    const int *io;       // [0] the token's position, [1] the token
    const int *control;  // [0] 1: also store every traced tensor; [1] 1: the newest K/V rows were
                         // written into the cache by the host (storage forcing): read them, do not store
    float *embed_out, *final_norm, *logits;     // [hidden], [hidden], [vocab]
    int *next_token;                            // [1]: argmax of logits, lowest index on ties, NaN never wins
    // Attention partials, tagged like the exchanged values but with (epoch << 8 | layer), since every layer
    // reuses them: [n_heads][splits][head_dim] (o) and [n_heads][splits][2] (m, l). Zero when
    // allocated.
    unsigned long long *partial_o, *partial_ml;
    float *block_best_value;                    // [n_blocks]
    int *block_best_index;                      // [n_blocks]
    unsigned *counters;                         // [n_counters], zero before the first launch; every launch
                                                // leaves them zero (its last block to finish resets them)
    unsigned *epoch;                            // [1]: the launch's tag on exchanged values, 1 before the
                                                // first launch; each launch's last block adds one
    unsigned long long *timeline;  // NULL, or [n_instructions][DATAFLOW_TIMELINE_MARKS] %globaltimer ns
                                   // (DataflowMark; a mark the instruction has no step for keeps the one
                                   // before it; inactive attention chunks: zeros)
    float eps;
    int skeleton;  // 1: every wait, load, store and signal, but no arithmetic (wrong results): the
                   // floor of the structure, for measurement only
} DataflowParams;

// Dynamic shared memory of one block (at most about 100 KB: vectors, heads, scores, partial sums).
size_t dataflow_shared_bytes(const DataflowProgram *program);

// Enqueues one decode token on `stream`: program->shape.n_blocks blocks of 512 threads, all resident
// at once (checked here). instrumented: 1 runs the kernel that honours the trace flag
// (params->control[0]), params->timeline and params->skeleton; 0 the one without their code, which
// ignores all three and computes the same values bit for bit (what timed steps run). 0, or -1 with
// one line in err.
int launch_dataflow_decode(const DataflowProgram *program, const DataflowParams *params, int instrumented,
                           cudaStream_t stream, ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
