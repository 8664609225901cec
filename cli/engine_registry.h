// Every engine fusecheck knows, by name: one line per engine in engine_registry.c. It lives above the
// engine libraries (reference/, fused/), which model/engine.h, their common interface, cannot see.
#ifndef FUSECHECK_ENGINE_REGISTRY_H
#define FUSECHECK_ENGINE_REGISTRY_H

#include <stddef.h>
#include <stdio.h>

#include "../model/engine.h"

// The engine called `name`, or NULL with "unknown engine 'NAME' (known: reference, fused, cublas, dataflow)" in err.
// "plugin:PATH[:KEY=VALUE,...]" loads an engine plugin (cli/plugin_engine.h: the syntax, and every check
// a plugin must pass); its failures are one line naming the plugin ("engine plugin ./x.so: missing
// symbol fusecheck_engine_forward ..."), to be printed as they are.
const EngineKind *engine_find(const char *name, ErrorMessage *err);

// The registered engines in order (n of them in *n).
const EngineKind *const *engine_list(size_t *n);

// The registered engines' names joined by separator into out ("reference|fused|cublas|dataflow" with
// "|"), for usage lines and errors; returns out.
const char *engine_names(char *out, size_t size, const char *separator);

// The line a command's --help gives after its usage to say what --engine takes: every registered
// engine's name, or an engine plugin. Writes to out; no error.
void engine_usage_line(FILE *out);

#endif
