// Engine names: compiled into both the CUDA library and the no-CUDA stub, so `--engine` parses and
// history rows are named the same way whether or not a device exists.
#include <string.h>

#include "gpu_engine.h"

int gpu_engine_kind_parse(const char *name, GpuEngineKind *out) {
    if (!strcmp(name, "fused")) { *out = GPU_ENGINE_FUSED; return 0; }
    if (!strcmp(name, "cublas")) { *out = GPU_ENGINE_CUBLAS; return 0; }
    if (!strcmp(name, "dataflow")) { *out = GPU_ENGINE_DATAFLOW; return 0; }
    return -1;
}

const char *gpu_engine_kind_name(GpuEngineKind kind) {
    switch (kind) {
    case GPU_ENGINE_FUSED: return "fused";
    case GPU_ENGINE_CUBLAS: return "cublas";
    case GPU_ENGINE_DATAFLOW: return "dataflow";
    }
    return "unknown";
}
