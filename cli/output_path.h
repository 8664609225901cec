// Checks that an output can be written, made before any work, so that minutes of work are never
// lost to a typo in a path (and a FAIL never turns into exit 2 at the end).
// Each returns 0, or -1 with one line naming the flag, the path and what is wrong, e.g.
// "--out: directory 'nowhere' does not exist".
#ifndef FUSECHECK_OUTPUT_PATH_H
#define FUSECHECK_OUTPUT_PATH_H

#include "../model/error.h"

// A file to be created or replaced at `path` (traces: written to `path`.tmp-<pid>, then renamed):
// path is not a directory, its directory exists, is a directory, and a file can be created in it
// (tried, then removed: the only test that also holds for root and read-only mounts).
int output_file_check(const char *flag, const char *path, ErrorMessage *err);

// A directory the command creates if missing (compare --report, gate --report-dir): `dir` is a
// directory or does not exist yet; in the first case a file can be created in it, in the second
// its nearest existing ancestor is a directory in which one can be.
int output_dir_check(const char *flag, const char *dir, ErrorMessage *err);

#endif
