// Running a GPU engine against a golden trace: teacher-forced on its tokens and, in the matched
// profile, storage-forced from its K and V (see gpu_engine_force_kv for why). Used by `fusecheck
// run`, `fusecheck gate` and the GPU tests.
#ifndef FUSECHECK_GOLDEN_RUN_H
#define FUSECHECK_GOLDEN_RUN_H

#include <stdint.h>

#include "../golden/trace.h"
#include "../model/checkpoint.h"
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

// Runs `engine` (made from `checkpoint`, whose fingerprint must equal the golden's) on the golden's
// tokens and writes its trace at out_path (producer = the engine's kind). The KV cache is
// storage-forced when `force` is 1, the engine's cache is bf16 and so is the golden's; *forced says
// whether it was. The file appears only on success.
int gpu_write_trace(GpuEngine *engine, const Checkpoint *checkpoint, GpuEngineKind kind, KvDtype kv_dtype,
                    const TraceReader *golden, int force, const char *out_path, int *forced, ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
