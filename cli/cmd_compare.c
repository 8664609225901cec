// fusecheck compare A.h5 B.h5: A is the trace under test, B the reference.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compare/compare.h"
#include "../compare/report.h"
#include "commands.h"
#include "output_path.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fusecheck compare A.h5 B.h5 [--max-rel-l2 X] [--max-norm-max X] [--atol X --rtol Y]\n"
            "                         [--allow-missing NAMES] [--steps A..B] [--report DIR] [--json] [--verbose]\n"
            "  A.h5            trace under test (e.g. the fused engine's)\n"
            "  B.h5            reference trace (e.g. the fp32 reference's golden)\n"
            "  --max-rel-l2 X  fail a tensor when ||f-r||/||r|| > X (default 1e-3)\n"
            "  --max-norm-max X  fail a tensor when max|f-r|/max|r| > X (default 1e-3)\n"
            "  --atol X, --rtol Y  also fail elements with |f-r| > atol + rtol|r| (numpy allclose; a missing one is 0)\n"
            "  --allow-missing NAMES  comma list of tensor names A may lack on purpose (noted in the report);\n"
            "                  never " TRACE_CHECKPOINT_NAMES "\n"
            "  --steps A..B    compare only steps A..B (or one step: --steps A); B must hold them. Without it the\n"
            "                  traces must hold the same steps\n"
            "  --report DIR    write accuracy.json, accuracy.md and error_by_layer.svg into DIR (created if missing)\n"
            "  --json          print the JSON report instead of the table\n"
            "  --verbose       print every tensor, not only the worst per layer and per step\n"
            "Every tensor, layer group and step B holds and A lacks fails as missing, unless A declares it omitted\n"
            "(its 'omitted' attribute) or --allow-missing names it.\n"
            "exit status: 0 pass, 1 a tolerance failure (or NaN/Inf, a top-1 disagreement beyond a near-tie, missing\n"
            "             evidence, different step counts), 2 bad input (an unreadable file or object) or usage\n");
}

// --allow-missing gate,up: appends each name to *names (pointers into a copy of the text, kept in
// *copies); a name the policy refuses is a usage error naming the rule.
static int parse_allow_missing(const char *text, char ***copies, int *n_copies, const char ***names, int *n_names) {
    if (!text || !*text) {
        fprintf(stderr, "fusecheck compare: --allow-missing needs a comma-separated list of tensor names\n");
        return -1;
    }
    char *copy = strdup(text), **grown_copies = realloc(*copies, (size_t)(*n_copies + 1) * sizeof **copies);
    if (!copy || !grown_copies) {
        free(copy);
        if (grown_copies) *copies = grown_copies;
        fprintf(stderr, "fusecheck compare: out of memory\n");
        return -1;
    }
    *copies = grown_copies;
    (*copies)[(*n_copies)++] = copy;
    for (char *item = copy, *next; item; item = next) {
        next = strchr(item, ',');
        if (next) *next++ = '\0';
        while (*item == ' ') item++;
        for (size_t length = strlen(item); length > 0 && item[length - 1] == ' ';) item[--length] = '\0';
        char why[256];
        if (!*item) {
            fprintf(stderr, "fusecheck compare: --allow-missing '%s': an empty name\n", text);
            return -1;
        }
        if (trace_check_omittable(item, why, sizeof why) < 0) {
            fprintf(stderr, "fusecheck compare: --allow-missing: %s\n", why);
            return -1;
        }
        const char **grown = realloc(*names, (size_t)(*n_names + 1) * sizeof **names);
        if (!grown) {
            fprintf(stderr, "fusecheck compare: out of memory\n");
            return -1;
        }
        *names = grown;
        (*names)[(*n_names)++] = item;
    }
    return 0;
}

// A step number: digits only, at most 9 of them.
static int parse_step(const char *text, size_t length, int *out) {
    if (length == 0 || length > 9) return -1;
    int value = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < '0' || text[i] > '9') return -1;
        value = value * 10 + (text[i] - '0');
    }
    *out = value;
    return 0;
}

// --steps A..B (inclusive) or --steps A (= A..A), 0 <= A <= B.
static int parse_steps(const char *text, int *first, int *last) {
    const char *dots = text ? strstr(text, "..") : NULL;
    int ok = text && (dots ? parse_step(text, (size_t)(dots - text), first) == 0 &&
                                 parse_step(dots + 2, strlen(dots + 2), last) == 0
                           : parse_step(text, strlen(text), first) == 0 && (*last = *first, 1));
    if (!ok || *first > *last) {
        fprintf(stderr, "fusecheck compare: --steps '%s': expected A..B with 0 <= A <= B (steps count from 0), or one step A\n",
                text ? text : "");
        return -1;
    }
    return 0;
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

// The --allow-missing texts (split in place) and the names in them.
typedef struct {
    char **copies;
    int n_copies;
    const char **names;
    int n_names;
} AllowMissing;

static int run_compare(const char *const paths[2], const CompareOptions *options, const char *report_dir, int json,
                       int verbose) {
    CompareResult result;
    ErrorMessage err;
    if (compare_traces(paths[0], paths[1], options, &result, &err)) {
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

// Parses the command line into options; 0 to go on, else the exit status (0 for --help, 2 for usage).
static int parse_arguments(int argc, char **argv, CompareOptions *options, AllowMissing *allow, const char *paths[2],
                           const char **report_dir, int *json, int *verbose, int *done) {
    Tolerances *tol = &options->tol;
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            *done = 1;
            return 0;
        } else if (!strcmp(arg, "--max-rel-l2")) {
            if (parse_tolerance(arg, value, &tol->max_rel_l2)) return 2;
            i++;
        } else if (!strcmp(arg, "--max-norm-max")) {
            if (parse_tolerance(arg, value, &tol->max_norm_max)) return 2;
            i++;
        } else if (!strcmp(arg, "--atol")) {
            if (parse_tolerance(arg, value, &tol->atol)) return 2;
            tol->check_allclose = 1;
            i++;
        } else if (!strcmp(arg, "--rtol")) {
            if (parse_tolerance(arg, value, &tol->rtol)) return 2;
            tol->check_allclose = 1;
            i++;
        } else if (!strcmp(arg, "--allow-missing")) {
            if (parse_allow_missing(value, &allow->copies, &allow->n_copies, &allow->names, &allow->n_names)) return 2;
            i++;
        } else if (!strcmp(arg, "--steps")) {
            if (parse_steps(value, &options->first_step, &options->last_step)) return 2;
            i++;
        } else if (!strcmp(arg, "--report")) {
            if (!value || !*value) {
                fprintf(stderr, "fusecheck compare: --report needs a directory\n");
                return 2;
            }
            *report_dir = value;
            i++;
        } else if (!strcmp(arg, "--json")) {
            *json = 1;
        } else if (!strcmp(arg, "--verbose")) {
            *verbose = 1;
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
    options->allow_missing = allow->names;
    options->n_allow_missing = allow->n_names;
    return 0;
}

int cmd_compare(int argc, char **argv) {
    CompareOptions options = compare_options_default();
    AllowMissing allow = {0};
    const char *paths[2] = {NULL, NULL};
    const char *report_dir = NULL;
    int json = 0, verbose = 0, done = 0;
    int status = parse_arguments(argc, argv, &options, &allow, paths, &report_dir, &json, &verbose, &done);
    if (status == 0 && !done && report_dir) {
        ErrorMessage err;
        if (output_dir_check("--report", report_dir, &err)) {
            fprintf(stderr, "fusecheck compare: %s\n", err.text);
            status = 2;
        }
    }
    if (status == 0 && !done) status = run_compare(paths, &options, report_dir, json, verbose);
    for (int i = 0; i < allow.n_copies; i++) free(allow.copies[i]);
    free(allow.copies);
    free(allow.names);
    return status;
}
