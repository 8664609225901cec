// Where a run comes from, for reports and benchmark rows: the commit and today's date.
#ifndef FUSECHECK_RUN_IDENTITY_H
#define FUSECHECK_RUN_IDENTITY_H

#include <stddef.h>

// The commit under test: $FUSECHECK_COMMIT when set (machines without git or a checkout), else
// `git rev-parse --short=12 HEAD` in the working directory, else "unknown".
void run_commit(char *out, size_t size);

// 1 when tracked files differ from the commit (`git status --porcelain --untracked-files=no`), 0 when
// they do not, -1 when git cannot tell (no git, not a checkout).
int run_tree_dirty(void);

// Today's date, UTC, as YYYY-MM-DD.
void run_date(char *out, size_t size);

// Now, UTC, as YYYY-MM-DDTHH:MM:SSZ.
void run_timestamp(char *out, size_t size);

#endif
