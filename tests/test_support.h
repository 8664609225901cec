// Helpers every test may use: scratch directories, synthetic checkpoints, running the CLI.
#ifndef FUSECHECK_TEST_SUPPORT_H
#define FUSECHECK_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

// A fresh empty directory under $TMPDIR (or /tmp) whose name starts with `label`. Returns a
// malloc'd path; the test owns it (removal is left to the OS's tmp cleaning).
char *test_make_temp_dir(const char *label);

// Path of `name` inside `dir`, malloc'd.
char *test_path_join(const char *dir, const char *name);

// Writes `size` bytes to `path`; aborts the test on failure.
void test_write_file(const char *path, const void *data, size_t size);

// Reads a whole file (malloc'd, NUL-terminated); *size gets its length (size may be NULL).
char *test_read_file(const char *path, size_t *size);

// Synthesizes preset `preset` with `seed` into a new temp dir and returns its path (malloc'd).
char *test_synth_checkpoint(const char *preset, uint64_t seed);

// Runs the fusecheck CLI ($FUSECHECK_BIN) with `args` (a shell-quoted string), capturing stderr+stdout
// into *output (malloc'd; may pass NULL). Returns the exit status.
int test_run_cli(const char *args, char **output);

// Fills x[n] with deterministic pseudo-random values in [-scale, scale) from `seed`.
void test_fill_random(float *x, size_t n, uint64_t seed, float scale);

#endif
