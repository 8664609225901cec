// Where a run comes from, for reports and benchmark rows: the commit and today's date.
#ifndef FUSECHECK_RUN_IDENTITY_H
#define FUSECHECK_RUN_IDENTITY_H

#include <stddef.h>

// The commit under test: $FUSECHECK_COMMIT when set (machines without git or a checkout), else
// `git rev-parse --short=12 HEAD` in the working directory, else "unknown".
void run_commit(char *out, size_t size);

// Today's date, UTC, as YYYY-MM-DD.
void run_date(char *out, size_t size);

#endif
