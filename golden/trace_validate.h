// Checking a trace file against golden/FORMAT.md, for people who write traces by other means than
// golden/trace.h. Unlike trace_open, which stops at the first thing it cannot use, the validator
// collects every problem it finds, each with the HDF5 path of the object it concerns, so one run
// lists everything a writer must fix.
#ifndef FUSECHECK_TRACE_VALIDATE_H
#define FUSECHECK_TRACE_VALIDATE_H

#include "../model/error.h"

// One violation of FORMAT.md: `object` is the HDF5 path ("/" for root attributes, "/step_0001",
// "/step_0001/layer_00/k"), `message` one line saying what is wrong and what was expected.
typedef struct {
    char object[128];
    char message[384];
} TraceProblem;

// What the validator saw, for the summary line, and every problem found.
typedef struct {
    int format_version;   // as read (0 when unreadable)
    char producer[32];    // as read ("" when unreadable)
    int n_steps;          // step groups checked
    int n_layers;         // layers per step the model_config asks for (0 when it cannot be parsed)
    int n_datasets;       // datasets checked
    int n_problems;
    TraceProblem *problems;  // malloc'd [n_problems]; free with trace_validation_free
    int problems_dropped;    // found beyond the first 100,000, counted but not listed (a hopeless file)
} TraceValidation;

// Validates the file at `path`: the root attributes (presence, type class, one element, values), the
// declared omissions (known names, never a contract checkpoint, each once), /tokens (int32, 1-D,
// P + S - 1 long at least, ids in [0, vocab)), step groups step_0000..step_(S-1) and nothing else,
// their first_position and n_tokens, every tensor FORMAT.md requires (unless declared omitted) with its
// dtype (float32 little-endian, or int32 for next_token), shape from model_config and layout
// (contiguous, uncompressed, all its bytes stored), next_token the argmax of the step's logits, and no
// object FORMAT.md does not name. The reading runs in a forked, resource-limited child process (as
// trace_open does), so a corrupt file that crashes or hangs the HDF5 library is refused, never a crash.
//
// Returns 0 when the file could be read as HDF5 (result filled; n_problems 0 means valid), or -1 with
// one line in err when it cannot: missing, not a regular file, not HDF5, truncated, or crashing the
// library. result is zeroed first either way.
int trace_validate(const char *path, TraceValidation *result, ErrorMessage *err);

void trace_validation_free(TraceValidation *result);

#endif
