// Reading an untrusted HDF5 file in a child process. HDF5 1.10 trusts lengths stored in the file: a
// corrupt heap or object header can make the library read out of bounds and crash, loop forever, or
// allocate gigabytes (tests/fuzz found all three within a minute). The reader's full-read check
// (trace_read.c) and `fusecheck validate` (trace_validate.c) both run their HDF5 work here, under
// limits far above what a real trace needs: CPU 10 s plus 1 s per 16 MB of file, address space 1 GB
// plus twice the file beyond what is mapped already. Only the child's text comes back.
#ifndef FUSECHECK_FILE_SANDBOX_H
#define FUSECHECK_FILE_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#include "../model/error.h"

typedef enum {
    SANDBOX_EXITED_CLEANLY,  // the child returned from work and exited 0
    SANDBOX_HUNG,            // it ran out of its CPU time (SIGXCPU)
    SANDBOX_CRASHED,         // any other end: a signal (the memory limit included) or a non-zero exit
} SandboxEnd;

typedef struct {
    SandboxEnd end;
    unsigned long cpu_seconds;  // the CPU limit it ran under (for "hung for N s of CPU")
    char *output;               // everything the child wrote to its fd, NUL-terminated; free() it
    size_t output_size;
} SandboxResult;

// Forks; the child sends stderr to /dev/null, sets the limits for a file of file_size bytes, calls
// work(context, fd) (which writes its answer to fd and returns 0, or non-zero for a failed exit) and
// ends with _exit. The parent collects the output and waits. -1 with one line in err (naming path and
// `purpose`, e.g. "validate") when the pipe, the fork, reading or waiting fails; otherwise 0 and *result.
int sandbox_run(const char *path, off_t file_size, const char *purpose, int (*work)(void *context, int fd),
                void *context, SandboxResult *result, ErrorMessage *err);

#endif
