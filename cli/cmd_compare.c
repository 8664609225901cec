// fusecheck compare A.h5 B.h5: A is the trace under test, B the reference.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compare/compare.h"
#include "../compare/report.h"
#include "commands.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fusecheck compare A.h5 B.h5 [--max-rel-l2 X] [--max-norm-max X] [--atol X --rtol Y]\n"
            "                         [--report DIR] [--json] [--verbose]\n"
            "  A.h5            trace under test (e.g. the fused engine's)\n"
            "  B.h5            reference trace (e.g. the fp32 reference's golden)\n"
            "  --max-rel-l2 X  fail a tensor when ||f-r||/||r|| > X (default 1e-3)\n"
            "  --max-norm-max X  fail a tensor when max|f-r|/max|r| > X (default 1e-3)\n"
            "  --atol X, --rtol Y  also fail elements with |f-r| > atol + rtol|r| (numpy allclose; a missing one is 0)\n"
            "  --report DIR    write accuracy.json, accuracy.md and error_by_layer.svg into DIR (created if missing)\n"
            "  --json          print the JSON report instead of the table\n"
            "  --verbose       print every tensor, not only the worst per layer and per step\n"
            "exit status: 0 pass, 1 a tolerance failure (or NaN/Inf, or a top-1 disagreement beyond a near-tie),\n"
            "             2 bad input or usage\n");
}

// A tolerance: a finite, non-negative number, the whole argument.
static int parse_tolerance(const char *flag, const char *text, double *out) {
    if (!text) {
        fprintf(stderr, "fusecheck compare: %s needs a value\n", flag);
        return -1;
    }
    char *end = NULL;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(value) || value < 0) {
        fprintf(stderr, "fusecheck compare: %s '%s': expected a non-negative number\n", flag, text);
        return -1;
    }
    *out = value;
    return 0;
}

int cmd_compare(int argc, char **argv) {
    Tolerances tol = tolerances_default();
    const char *paths[2] = {NULL, NULL};
    int n_paths = 0, json = 0, verbose = 0;
    const char *report_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(arg, "--max-rel-l2")) {
            if (parse_tolerance(arg, value, &tol.max_rel_l2)) return 2;
            i++;
        } else if (!strcmp(arg, "--max-norm-max")) {
            if (parse_tolerance(arg, value, &tol.max_norm_max)) return 2;
            i++;
        } else if (!strcmp(arg, "--atol")) {
            if (parse_tolerance(arg, value, &tol.atol)) return 2;
            tol.check_allclose = 1;
            i++;
        } else if (!strcmp(arg, "--rtol")) {
            if (parse_tolerance(arg, value, &tol.rtol)) return 2;
            tol.check_allclose = 1;
            i++;
        } else if (!strcmp(arg, "--report")) {
            if (!value || !*value) {
                fprintf(stderr, "fusecheck compare: --report needs a directory\n");
                return 2;
            }
            report_dir = value;
            i++;
        } else if (!strcmp(arg, "--json")) {
            json = 1;
        } else if (!strcmp(arg, "--verbose")) {
            verbose = 1;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "fusecheck compare: unknown option '%s' (try fusecheck compare --help)\n", arg);
            return 2;
        } else if (n_paths < 2) {
            paths[n_paths++] = arg;
        } else {
            fprintf(stderr, "fusecheck compare: unexpected argument '%s': give exactly two traces, A.h5 B.h5\n", arg);
            return 2;
        }
    }
    if (n_paths != 2) {
        fprintf(stderr, "fusecheck compare: give two traces: A.h5 (under test) B.h5 (reference)\n");
        return 2;
    }

    CompareResult result;
    ErrorMessage err;
    if (compare_traces(paths[0], paths[1], &(CompareOptions){.tol = tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, &result, &err)) {
        fprintf(stderr, "fusecheck compare: %s\n", err.text);
        compare_result_free(&result);
        return 2;
    }
    int status = result.pass ? 0 : 1;
    if (json) {
        char *text = report_json_text(&result);
        if (!text) {
            fprintf(stderr, "fusecheck compare: out of memory building the JSON report\n");
            status = 2;
        } else {
            printf("%s\n", text);
            free(text);
        }
    } else {
        report_print_table(stdout, &result, verbose);
    }
    if (status != 2 && report_dir) {
        if (report_write(&result, report_dir, &err)) {
            fprintf(stderr, "fusecheck compare: %s\n", err.text);
            status = 2;
        } else if (!json) {
            printf("report: %s/accuracy.json, accuracy.md, error_by_layer.svg\n", report_dir);
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "fusecheck compare: cannot write to stdout\n");
        status = 2;
    }
    compare_result_free(&result);
    return status;
}
