#include "engine_registry.h"

#include <stdio.h>
#include <string.h>

#include "../fused/gpu_engine.h"
#include "../reference/reference.h"
#include "plugin_engine.h"

// One line per engine: a new engine is its source file (defining a const EngineKind) and a line here.
static const EngineKind *const ENGINES[] = {
    &reference_engine_kind,
    &fused_engine_kind,
    &cublas_engine_kind,
    &dataflow_engine_kind,
};
#define N_ENGINES (sizeof ENGINES / sizeof ENGINES[0])

const EngineKind *const *engine_list(size_t *n) {
    *n = N_ENGINES;
    return ENGINES;
}

const char *engine_names(char *out, size_t size, const char *separator) {
    size_t used = 0;
    if (size) out[0] = '\0';
    for (size_t i = 0; i < N_ENGINES && used < size; i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? separator : "", ENGINES[i]->name);
        if (n < 0) break;
        used += (size_t)n;
    }
    return out;
}

void engine_usage_line(FILE *out) {
    char known[256];
    fprintf(out, "  ENGINE: %s, or plugin:PATH.so[:KEY=VALUE,...] (an engine plugin, docs/ENGINE_ABI.md).\n",
            engine_names(known, sizeof known, "|"));
}

const EngineKind *engine_find(const char *name, ErrorMessage *err) {
    if (plugin_spec_is(name)) return plugin_engine_load(name, err);
    for (size_t i = 0; i < N_ENGINES; i++)
        if (!strcmp(ENGINES[i]->name, name)) return ENGINES[i];
    char known[256];
    fail(err, "unknown engine '%s' (known: %s)", name, engine_names(known, sizeof known, ", "));
    return NULL;
}
