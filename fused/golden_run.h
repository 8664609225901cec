// Running a GPU engine against a golden trace: teacher-forced on its tokens and, in the matched
// profile, storage-forced from its K and V (see gpu_engine_force_kv for why). A thin wrapper of
// engine_write_trace (golden/trace_run.h) for callers that hold a GpuEngine: the GPU tests.
// `fusecheck run` and `fusecheck gate` go through the engine interface directly.
#ifndef FUSECHECK_GOLDEN_RUN_H
#define FUSECHECK_GOLDEN_RUN_H

#include <stdint.h>

#include "../golden/trace.h"
#include "../model/checkpoint.h"
#include "gpu_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

// Runs `engine` (made from `checkpoint` with `kind` and `kv_dtype`, whose fingerprint must equal the
// golden's) on the golden's tokens and writes its trace at out_path (producer = the engine's kind):
// engine_write_trace over the engine borrowed as an Engine. The KV cache is storage-forced when `force`
// is 1, the engine's cache is bf16 and so is the golden's; *forced says whether it was. The file
// appears only on success.
int gpu_write_trace(GpuEngine *engine, const Checkpoint *checkpoint, GpuEngineKind kind, KvDtype kv_dtype,
                    const TraceReader *golden, int force, const char *out_path, int *forced, ErrorMessage *err);

#ifdef __cplusplus
}
#endif

#endif
