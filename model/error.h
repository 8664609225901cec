// One error convention for every library in fusecheck.
//
// A function that can fail takes an ErrorMessage* as its last argument, returns 0 on success and -1
// on failure, and on failure fills the message with one line that names the file (or tensor, or
// flag) and what is wrong, e.g. "ckpt/model.safetensors: tensor 'model.norm.weight': shape [63],
// expected [64]". Callers add nothing and print it as is; the CLI then exits 2.
#ifndef FUSECHECK_ERROR_H
#define FUSECHECK_ERROR_H

#include <stddef.h>

typedef struct {
    char text[1024];
} ErrorMessage;

// Formats the message into err (err may be NULL) and returns -1, so call sites read
// `return fail(err, "%s: ...", path);`.
int fail(ErrorMessage *err, const char *format, ...) __attribute__((format(printf, 2, 3)));

#endif
