// Storage-point forcing from a golden trace (see gpu_engine_force_kv for why): the GPU engines'
// analogue of teacher forcing, used by `fusecheck run`, the gate and the GPU tests.
#ifndef FUSECHECK_KV_FORCING_H
#define FUSECHECK_KV_FORCING_H

#include <stdint.h>

#include "../golden/trace.h"
#include "gpu_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

// Arms `engine` with the golden's k and v of `step` for every layer the step holds. Fails, naming
// the file, when a layer lacks k or v or their rows differ from the step's token count.
int gpu_engine_force_kv_from_trace(GpuEngine *engine, const TraceReader *golden, int step, ErrorMessage *err);

// An engine run against a golden: golden NULL runs unforced.
typedef struct {
    GpuEngine *engine;
    const TraceReader *golden;
} GpuForcedRun;

// A ForwardFunction (golden/trace_run.h) over a GpuForcedRun: forces the step's K and V from the
// golden (the step is derived from the position and the golden's prompt length), then runs
// gpu_engine_forward.
int gpu_forward_forced(void *run, const int32_t *tokens, int n_tokens, int position, TraceWriter *trace,
                       int32_t *next_token, ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
