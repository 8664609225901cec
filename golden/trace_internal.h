// Private to golden/: names and paths inside a trace file, shared by the writer and the reader so
// both spell every group and dataset the same way.
#ifndef FUSECHECK_TRACE_INTERNAL_H
#define FUSECHECK_TRACE_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>

#include "trace.h"

// Longest dataset path we build: "/step_NNNN/layer_LLL/" plus a name.
#define TRACE_PATH_MAX 256

// "/step_0003" (layer < 0, name NULL), "/step_0003/layer_07", "/step_0003/layer_07/q",
// "/step_0003/logits". Returns 0, or -1 when the result would not fit `size`.
int trace_build_path(char *out, size_t size, int step, int layer, const char *name);

// "step_0003" -> 3 and "layer_07" -> 7, in their canonical spellings only (step_%04d, layer_%02d, at
// most 6 digits); anything else -> -1. A group name that trace_build_path would not make is not a step
// or a layer.
int trace_parse_step_name(const char *name);
int trace_parse_layer_name(const char *name);

// 1 when `name` is a usable dataset name: 1..63 characters of [A-Za-z0-9_].
int trace_valid_name(const char *name);

// What `path` (absolute, as trace_build_path makes it) names in `file`: H5I_GROUP, H5I_DATASET,
// another H5I type, or H5I_BADID when it (or any group on the way) does not exist. Checks each
// component in turn, because H5Lexists on "/a/b/c" with "/a/b" missing is an error in some versions.
H5I_type_t trace_object_type(hid_t file, const char *path);

// trace_open without its crash guard (the file is not first read in a child process). For the
// fuzz harness, which must see the HDF5 library's crashes to report them; everyone else calls trace_open.
TraceReader *trace_open_unguarded(const char *path, ErrorMessage *err);

#endif
