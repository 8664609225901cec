// Where a run comes from, for reports and benchmark rows: the commit its binary was built from and
// today's date.
#ifndef FUSECHECK_RUN_IDENTITY_H
#define FUSECHECK_RUN_IDENTITY_H

#include <stddef.h>

// The commit this binary was built from: `git rev-parse --short=12 HEAD` of the source tree at build
// time (cli/build_identity.cmake), or "unknown" when the sources were not a git checkout. Static storage.
const char *build_commit(void);

// 1 when the build's tracked files differed from build_commit(), 0 when they did not, -1 when unknown.
int build_tree_dirty(void);

// The commit a run's figures belong to: $FUSECHECK_COMMIT when set (figures stamped by hand, e.g. a
// binary built where git could not tell), else build_commit(), with "-dirty" appended when the build's
// tracked files had uncommitted changes. Never the checkout the binary happens to run in: a checkout
// moved on since the build would put its commit on the build's figures.
void run_commit(char *out, size_t size);

// Whether a run's rows may be recorded under run_commit(): 0 when they may, else -1 with `why` set
// to one line saying what is wrong and what to do. They may when $FUSECHECK_COMMIT is set or the
// binary was built from a clean commit.
int run_record_refusal(char *why, size_t size);

// run_record_refusal's rule for explicit inputs (tests): given_commit ($FUSECHECK_COMMIT, NULL or
// empty when unset), the build's commit and its dirty state as build_tree_dirty() gives it.
int record_refusal(const char *given_commit, const char *commit, int dirty, char *why, size_t size);

// Today's date, UTC, as YYYY-MM-DD.
void run_date(char *out, size_t size);

// Now, UTC, as YYYY-MM-DDTHH:MM:SSZ.
void run_timestamp(char *out, size_t size);

#endif
