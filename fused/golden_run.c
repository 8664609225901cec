#include "golden_run.h"

#include "../golden/trace_run.h"

int gpu_write_trace(GpuEngine *engine, const Checkpoint *checkpoint, GpuEngineKind kind, KvDtype kv_dtype,
                    const TraceReader *golden, int force, const char *out_path, int *forced, ErrorMessage *err) {
    Engine borrowed = engine_wrap(gpu_engine_kind_engine(kind), engine, kv_dtype);
    return engine_write_trace(&borrowed, checkpoint, golden, force, out_path, forced, err);
}
