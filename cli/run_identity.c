#include "run_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void run_commit(char *out, size_t size) {
    snprintf(out, size, "unknown");
    const char *given = getenv("FUSECHECK_COMMIT");
    if (given && *given) {
        snprintf(out, size, "%s", given);
        return;
    }
    FILE *git = popen("git rev-parse --short=12 HEAD 2>/dev/null", "r");
    if (!git) return;
    char line[64] = "";
    if (fgets(line, sizeof line, git)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (*line) snprintf(out, size, "%s", line);
    }
    pclose(git);
}

void run_date(char *out, size_t size) {
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(out, size, "%Y-%m-%d", &utc);
}

int run_tree_dirty(void) {
    FILE *git = popen("git status --porcelain --untracked-files=no 2>/dev/null; echo status $?", "r");
    if (!git) return -1;
    char line[512];
    int changed = 0, status = -1;
    while (fgets(line, sizeof line, git)) {
        if (!strncmp(line, "status ", 7)) status = atoi(line + 7);
        else changed = 1;
    }
    pclose(git);
    if (status != 0) return -1;
    return changed;
}

void run_timestamp(char *out, size_t size) {
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &utc);
}
