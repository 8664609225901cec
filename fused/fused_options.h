// Tuning options of the fused CUDA engine: one struct, owned by the engine (GpuEngine), filled once
// when it is created (fused_options_from_env) and passed to each decode launcher as an argument.
// Nothing here is process-wide: two engines may run with different options.
//
// field             default  environment variable         meaning
// pdl               1        FUSECHECK_PDL (0 or 1)        launch the decode kernels with programmatic
//                                                          dependent launch: each may start while the one
//                                                          before it drains and waits in-kernel before
//                                                          reading activations
// sync_kernels      0        FUSECHECK_SYNC_KERNELS (0/1)  the fused decode step runs without its graph and
//                                                          waits after every kernel, so a fault names the
//                                                          kernel and layer (slow; for locating a fault)
// dataflow_skeleton 0        FUSECHECK_DATAFLOW_SKELETON   the dataflow engine's kernel does every wait,
//                            (0 or 1)                      load, store and signal but no arithmetic
//                                                          (wrong results): its structure's floor, on the
//                                                          instrumented kernel
// dataflow_tile_kb  96       FUSECHECK_DATAFLOW_TILE_KB    most weight bytes of one dataflow projection tile
//                            (32, 64 or 96)                (the block holds a tile in registers)
// dataflow_timeline 0        FUSECHECK_DATAFLOW_TIMELINE   the dataflow kernel records when each tile starts,
//                            (0 or 1)                      has its inputs, has staged them, has computed and
//                                                          ends; the last launch's summary goes to stderr
//                                                          when the engine is destroyed. It runs the
//                                                          instrumented kernel, about 9% slower than the
//                                                          timed one (fused/dataflow/NOTES.md)
// dataflow_pages    gate_up  FUSECHECK_DATAFLOW_PAGES      the dataflow projections whose tiles are copied
//                            ("none" or a comma list of    into shared memory pages ahead of their turn (off
//                            qkv, gate_up, down)           the dependency chain) instead of loaded into
//                                                          registers when the block reaches them; stored as
//                                                          bits DATAFLOW_QKV, _GATEUP, _DOWN
// dataflow_splits   0        FUSECHECK_DATAFLOW_SPLITS     the dataflow engine's attention splits a kv head;
//                            (an integer in [1, 1024])     0 (unset): SMs / kv heads. The engine refuses a
//                                                          count above that at create time
// dataflow_epoch_limit        FUSECHECK_DATAFLOW_EPOCH_     the dataflow engine clears its tagged buffers and
//                   2^24     LIMIT (an integer in          resets its launch epoch to 1 before an epoch reaches
//                            [2, 2^24])                    this (dataflow_decode_prepare_launch); small values
//                                                          make the reset happen within a test's few tokens
// attention_splits  0        FUSECHECK_ATTENTION_SPLITS    the decode graph's attention split count, in
//                                                          [1, ATTENTION_DECODE_MAX_SPLITS]; 0 (unset):
//                                                          attention_decode_splits's count. For measuring
//                                                          split policies.
//
// An unset or empty variable gives the default. Any other value outside the column's set is refused
// once, at create time, with one line naming the variable and the value (e.g. "FUSECHECK_PDL=yes:
// expected 0 or 1").
#ifndef FUSECHECK_FUSED_OPTIONS_H
#define FUSECHECK_FUSED_OPTIONS_H

#ifdef __cplusplus
extern "C" {
#endif

#include "../model/error.h"
#include "dataflow/dataflow_schedule.h"

#define FUSED_DEFAULT_DATAFLOW_PAGES (1 << DATAFLOW_GATEUP)

typedef struct {
    int pdl;               // 0 or 1
    int sync_kernels;      // 0 or 1
    int dataflow_skeleton; // 0 or 1
    int dataflow_tile_kb;  // 32, 64 or 96
    int dataflow_timeline; // 0 or 1
    int dataflow_pages;    // DataflowProgram.page_ops (dataflow_schedule.h)
    int dataflow_splits;   // DataflowShape.splits: 0 (the default count) or [1, 1024]
    int dataflow_epoch_limit;  // [2, DATAFLOW_EPOCH_LIMIT] (dataflow_schedule.h)
    int attention_splits;  // 0: the launcher's own count; else [1, ATTENTION_DECODE_MAX_SPLITS]
} FusedOptions;

static inline FusedOptions fused_options_defaults(void) {
    FusedOptions options = {1, 0, 0, 96, 0, FUSED_DEFAULT_DATAFLOW_PAGES, 0, DATAFLOW_EPOCH_LIMIT, 0};
    return options;
}

// The options a launcher uses: *options, or the defaults where options is NULL (the kernel tests).
static inline FusedOptions fused_options_or_defaults(const FusedOptions *options) {
    return options ? *options : fused_options_defaults();
}

// Fills *options from the defaults and the environment variables above; 0, or -1 with one line in err.
int fused_options_from_env(FusedOptions *options, ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
