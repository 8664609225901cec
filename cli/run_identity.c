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
