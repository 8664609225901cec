// fusecheck validate TRACE: checks a trace file against golden/FORMAT.md and lists every problem,
// for people who write traces by other means than golden/trace.h (h5py, another language).
#include <stdio.h>
#include <string.h>

#include "../golden/trace_validate.h"
#include "commands.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fusecheck validate TRACE.h5\n"
            "  checks TRACE.h5 against golden/FORMAT.md: root attributes and their types, declared omissions,\n"
            "  /tokens, step groups and their positions, every tensor's presence, dtype, shape and layout,\n"
            "  next_token = argmax of logits, and no object the format does not name. Prints every problem\n"
            "  as 'OBJECT: what is wrong' (OBJECT is the HDF5 path, '/' for root attributes), then a summary.\n"
            "exit status: 0 valid, 1 invalid (problems listed), 2 unreadable (missing file, not HDF5, corrupt) or usage\n");
}

int cmd_validate(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "fusecheck validate: unknown option '%s' (try fusecheck validate --help)\n", argv[i]);
            return 2;
        }
        if (path) {
            fprintf(stderr, "fusecheck validate: unexpected argument '%s': give one trace\n", argv[i]);
            return 2;
        }
        path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "fusecheck validate: give a trace to check: fusecheck validate TRACE.h5\n");
        return 2;
    }
    TraceValidation result;
    ErrorMessage err;
    if (trace_validate(path, &result, &err) < 0) {
        fprintf(stderr, "fusecheck validate: %s\n", err.text);
        return 2;
    }
    for (int i = 0; i < result.n_problems; i++) printf("%s: %s\n", result.problems[i].object, result.problems[i].message);
    if (result.problems_dropped) printf("... and %d more problems, not listed\n", result.problems_dropped);
    int n_problems = result.n_problems + result.problems_dropped;
    char producer[48] = "unreadable";
    if (result.producer[0]) snprintf(producer, sizeof producer, "%s", result.producer);
    printf("%s: %s: %d problem%s (format version %d, producer %s, %d steps, %d layers, %d datasets checked)\n", path,
           n_problems ? "INVALID" : "valid", n_problems, n_problems == 1 ? "" : "s",
           result.format_version, producer, result.n_steps, result.n_layers, result.n_datasets);
    int status = n_problems ? 1 : 0;
    trace_validation_free(&result);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "fusecheck validate: cannot write to stdout\n");
        return 2;
    }
    return status;
}
