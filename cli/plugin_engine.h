// Engines in shared libraries, loaded at run time through the C ABI of include/fusecheck/engine.h
// (docs/ENGINE_ABI.md), behind the engine interface (model/engine.h). engine_find
// (cli/engine_registry.c) resolves `plugin:...` names here; nothing else needs to know a plugin from a
// built-in engine.
//
// Spec syntax: "plugin:PATH" or "plugin:PATH:KEY=VALUE[,KEY=VALUE...]". PATH is a file (a name
// without '/' is taken in the current directory, never searched for on the library path) and may not
// contain ':'; each option is passed to the engine's create as it is, in order (KEY is 1..63 of
// [A-Za-z0-9_.-], VALUE may be empty and may not contain ','; a KEY given twice is refused).
//
// The host's side of the contract, checked here so that a bad plugin is one line and exit 2, never
// a corrupt trace:
//   - loading: the file exists and dlopen loads it; fusecheck_engine_abi_version is exported and
//     returns FUSECHECK_ENGINE_ABI_VERSION; every required symbol is exported (the first missing one
//     is named); the description names the engine (1..31 of [A-Za-z0-9._-], not a built-in engine's
//     name), has known capability bits, a KV dtype and a default it allows, force_kv exported when it
//     says it can force, and declares omitted only names trace_check_omittable accepts (they become
//     EngineKind.omitted, which every trace of the engine declares); the benchmark hooks are exported
//     both or neither;
//   - every forward: tokens in range and the context within max_context before the call; each tapped
//     tensor's name known (a layer tensor with a layer in [0, n_layers), or embed/final_norm/logits
//     with layer -1), its data not NULL and its [rows, cols] those golden/FORMAT.md gives for the step,
//     before the tensor reaches the caller's tap; once a tap fails, later taps of the same call are
//     refused and the call fails with that tap's message even when the plugin ignores it; next_token
//     in [0, vocab) (-1 only when the call tapped logits that are all NaN); a benchmark's context and
//     token in range, and its reported time a positive number of milliseconds;
//   - a crash inside any plugin function (interrupt_guard_enter, cli/interrupt.h): one line naming
//     the plugin and the function, exit 2, the outputs' temporary files removed;
//   - the plugin's last_error text (made one line) is what a failed call's message says.
// A plugin stays loaded until the process exits (an engine's threads or atexit handlers may still
// use its code); loading the same spec again returns the same kind.
#ifndef FUSECHECK_PLUGIN_ENGINE_H
#define FUSECHECK_PLUGIN_ENGINE_H

#include "../model/engine.h"

#define PLUGIN_SPEC_PREFIX "plugin:"
// Distinct plugin specs one process can load.
#define PLUGIN_MAX_LOADED 8

// 1 when `name` is a plugin spec (starts with "plugin:").
int plugin_spec_is(const char *name);

// The engine kind of the plugin `spec` (loaded on first use), or NULL with one line in err:
// "engine plugin PATH: missing symbol fusecheck_engine_forward", "... ABI version 2, this fusecheck
// speaks version 1 ...", "--engine plugin:PATH:x: option 'x' is not KEY=VALUE", ...
const EngineKind *plugin_engine_load(const char *spec, ErrorMessage *err);

// The file a plugin kind was loaded from, or NULL when `kind` is not a plugin.
const char *plugin_engine_path(const EngineKind *kind);

#endif
