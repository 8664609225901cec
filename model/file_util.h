// Files that appear whole or not at all, and the directories they go in: the one home of mkdir -p and
// of write-to-a-temporary-then-rename for every writer in fusecheck (reports, history, goldens' cache,
// synthetic checkpoints; the HDF5 trace writer uses the same temporary name).
//
// Errors follow model/error.h: 0 on success, -1 with one line in err that names the path.
#ifndef FUSECHECK_FILE_UTIL_H
#define FUSECHECK_FILE_UTIL_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

// The longest path these helpers accept (longer ones fail with "PATH: path too long").
#define FILE_PATH_BYTES 4096

// mkdir -p: creates `dir` and every missing parent (mode 0777 less the umask). Succeeds when `dir` is
// a directory afterwards, whoever made it. Errors: "PART: cannot create directory: REASON",
// "DIR: not a directory", "DIR: path too long".
int make_directories(const char *dir, ErrorMessage *err);

// The name a file is written under before it is renamed over `path`: "PATH.tmp-PID". Every atomic
// writer uses it, so the interrupt handler (cli/interrupt.c) knows what to remove. Fails with
// "PATH: path too long" when the name does not fit in `size` bytes.
int temp_path_for(const char *path, char *out, size_t size, ErrorMessage *err);

// A file streamed through a FILE* that appears at `path` only when committed: open, write to `file`,
// then exactly one of commit (success) or abandon (the caller's own failure). No partial file is left
// at `path` or at the temporary name either way.
typedef struct {
    FILE *file;
    char path[FILE_PATH_BYTES];
    char temp[FILE_PATH_BYTES + 32];
} AtomicFile;

// Opens the temporary ("wb"). Errors: "TEMP: cannot create: REASON", "PATH: path too long".
int atomic_file_open(AtomicFile *f, const char *path, ErrorMessage *err);
// Closes the stream (a write error seen by the stream fails here) and renames the temporary over the
// path. Errors: "TEMP: write failed: REASON", "PATH: cannot rename into place: REASON".
int atomic_file_commit(AtomicFile *f, ErrorMessage *err);
// Closes the stream and removes the temporary.
void atomic_file_abandon(AtomicFile *f);

// `length` bytes of `data` at `path`, through an AtomicFile.
int write_file_atomically(const char *path, const void *data, size_t length, ErrorMessage *err);

// The whole of a text file of at most `limit` bytes, NUL-terminated, malloc'd (caller frees); the one
// reader of small files (config.json, a safetensors index, the benchmark history). NULL on failure:
// "PATH: cannot open: REASON", "PATH: read error", "PATH: larger than LIMIT bytes", out of memory.
char *read_text_file(const char *path, size_t limit, ErrorMessage *err);

#endif
