// The dataflow engine's decode step, as the GPU engine drives it (fused/gpu_engine.c, kind
// GPU_ENGINE_DATAFLOW): the program (dataflow_schedule.h) and its device copies, the counters, the
// attention partials and the argmax partials, and the one launch per token (dataflow_kernel.h).
// Weights, KV cache, activations and the head's buffers belong to the GPU engine; this holds pointers.
#ifndef FUSECHECK_DATAFLOW_DECODE_H
#define FUSECHECK_DATAFLOW_DECODE_H

#include <cuda_runtime.h>

#include "dataflow_kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct DataflowDecode DataflowDecode;

// The buffers one decode step uses, owned by the caller, who keeps them alive and in place for the
// life of the DataflowDecode (a captured graph holds their addresses). layers: host array of
// n_layers, copied. io: device [position, token]. The params' program, partial, counter and control
// pointers are ignored (this module owns those).
typedef struct {
    int hidden, intermediate, n_heads, n_kv_heads, head_dim, vocab, n_layers, max_context;
    float eps;
    const DataflowLayer *layers;
    const uint16_t *embed, *lm_head;
    const float *final_norm_w, *rope_cos, *rope_sin;
    const int *io;
    float *embed_out, *final_norm, *logits;
    int *next_token;
    int skeleton;  // DataflowParams.skeleton
    int timeline;  // 1: every launch records when each instruction reaches each step (DataflowMark); the
                   // last launch's is summarized on stderr when the decode state is destroyed
    int tile_kb;   // most weight bytes of a projection tile, in KB (DataflowShape.tile_bytes / 1024)
    int page_ops;  // DataflowProgram.page_ops
    int splits;           // DataflowShape.splits (0: the default count)
    int epoch_limit;  // 0: DATAFLOW_EPOCH_LIMIT (dataflow_schedule.h); else in [2, DATAFLOW_EPOCH_LIMIT]:
                      // the launches' epochs stay below it (dataflow_decode_prepare_launch); small
                      // values are for testing the reset
} DataflowBuffers;

// Builds the program for this device (one block per SM) and allocates its device state. NULL and one
// line in err when the shape has no instance (dataflow_program_build) or an allocation fails.
DataflowDecode *dataflow_decode_create(const DataflowBuffers *buffers, ErrorMessage *err);
void dataflow_decode_destroy(DataflowDecode *decode);

// Sets what the next launches do: trace (also store every traced tensor) and forced (the host has
// written this token's K/V rows into the cache: read them instead of storing). Enqueues an upload on
// `stream` only when a value changes; call outside graph capture.
int dataflow_decode_set_control(DataflowDecode *decode, int trace, int forced, cudaStream_t stream, ErrorMessage *err);

// Call before each launch of the decode token, direct or as a replay of a graph that holds it, on the
// stream it runs on, outside graph capture. It counts launches. When the next launch's epoch would
// reach the limit, it first enqueues the clearing of every tagged buffer and the epoch's reset to 1,
// so a tag can never pass for this launch's by matching one written 2^24 launches before. 0, or -1
// with one line in err.
int dataflow_decode_prepare_launch(DataflowDecode *decode, cudaStream_t stream, ErrorMessage *err);

// Enqueues one decode token (one kernel launch); capturable into a CUDA graph. The kernel is the
// instrumented one (launch_dataflow_decode) when the last dataflow_decode_set_control asked for a
// trace or the timeline or skeleton is on, else the one without that code: a graph captured without
// a trace cannot store one, so a traced step is launched directly.
int dataflow_decode_enqueue(DataflowDecode *decode, cudaStream_t stream, ErrorMessage *err);

// Blocks, tiles and instructions, for reports ("dataflow: 132 blocks, tiles of at most 96 KB, 8200
// instructions a token").
void dataflow_decode_describe(const DataflowDecode *decode, char *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif
