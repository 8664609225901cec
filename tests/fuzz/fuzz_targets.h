// The entry points the fuzz harnesses and tests/test_fuzz_regressions.c share: each takes raw bytes,
// puts them where the parser reads them (a file under `scratch_dir`, or a NUL-terminated string),
// runs the public parser and then touches everything it returned. Each returns 0 (accepted) or -1
// with `err` filled (refused); anything else (a crash, a sanitizer report, an abort from a broken
// invariant) is a bug. `scratch_dir` must exist and be private to the caller.
#ifndef FUSECHECK_FUZZ_TARGETS_H
#define FUSECHECK_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

#include "../../model/error.h"

// (a) One safetensors file: written as scratch_dir/model.safetensors, opened with
// safetensors_open_file; every tensor is looked up by name and expanded to fp32.
int fuzz_safetensors(const uint8_t *data, size_t size, const char *scratch_dir, ErrorMessage *err);

// (b) A sharded checkpoint directory: the bytes are model.safetensors.index.json; the directory
// also holds two small valid shards (fuzz_write_shards), opened with safetensors_open_dir.
int fuzz_index(const uint8_t *data, size_t size, const char *scratch_dir, ErrorMessage *err);
// Writes shard-1.safetensors (a.weight, b.weight) and shard-2.safetensors (c.weight) into `dir`.
int fuzz_write_shards(const char *dir, ErrorMessage *err);

// (c) config.json text through config_parse (origin: scratch_dir/config.json). An accepted config
// must survive config_to_json -> config_parse unchanged; a difference aborts.
int fuzz_config(const uint8_t *data, size_t size, const char *scratch_dir, ErrorMessage *err);

// (d) A trace: written as scratch_dir/trace.h5 and opened; every step's info, tensor list (step
// level and each layer, at most FUZZ_TRACE_MAX_LAYERS), tensor and next_token is read. `guarded` 1
// opens with trace_open, as every caller does; 0 with trace_open_unguarded (no check in a child
// process), which the harness uses so that a crash inside the HDF5 library is seen and reported.
#define FUZZ_TRACE_MAX_LAYERS 256
int fuzz_trace(const uint8_t *data, size_t size, const char *scratch_dir, int guarded, ErrorMessage *err);

#endif
