#include "run_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build_identity.h"  // generated at build time (cli/build_identity.cmake)

const char *build_commit(void) { return FUSECHECK_BUILD_COMMIT; }

int build_tree_dirty(void) { return FUSECHECK_BUILD_DIRTY; }

void run_commit(char *out, size_t size) {
    const char *given = getenv("FUSECHECK_COMMIT");
    if (given && *given) snprintf(out, size, "%s", given);
    else snprintf(out, size, "%s%s", build_commit(), build_tree_dirty() > 0 ? "-dirty" : "");
}

int record_refusal(const char *given_commit, const char *commit, int dirty, char *why, size_t size) {
    if (given_commit && *given_commit) return 0;
    if (dirty > 0) {
        snprintf(why, size,
                 "this fusecheck was built from %s with uncommitted changes to tracked files; rows must come from "
                 "a build of a commit (commit, rebuild, rerun; or set FUSECHECK_COMMIT)",
                 commit);
        return -1;
    }
    if (dirty < 0 || !strcmp(commit, "unknown")) {
        snprintf(why, size,
                 "this fusecheck was not built from a git checkout, so the commit of its figures is unknown (set "
                 "FUSECHECK_COMMIT to the commit it was built from)");
        return -1;
    }
    return 0;
}

int run_record_refusal(char *why, size_t size) {
    return record_refusal(getenv("FUSECHECK_COMMIT"), build_commit(), build_tree_dirty(), why, size);
}

void run_date(char *out, size_t size) {
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(out, size, "%Y-%m-%d", &utc);
}

void run_timestamp(char *out, size_t size) {
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &utc);
}
