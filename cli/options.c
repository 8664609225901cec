#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int option_value(int argc, char **argv, int *i, const char **value, ErrorMessage *err) {
    if (*i + 1 >= argc) return fail(err, "%s: missing value", argv[*i]);
    *value = argv[++*i];
    return 0;
}

int parse_int_option(const char *flag, const char *text, long min, long max, long *out, ErrorMessage *err) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end) return fail(err, "%s: '%s' is not an integer", flag, text);
    if (v < min || v > max) return fail(err, "%s: %ld is outside [%ld, %ld]", flag, v, min, max);
    *out = v;
    return 0;
}

int parse_u64_option(const char *flag, const char *text, uint64_t *out, ErrorMessage *err) {
    char *end;
    errno = 0;
    if (*text == '-') return fail(err, "%s: '%s' is not a non-negative integer", flag, text);
    unsigned long long v = strtoull(text, &end, 0);
    if (errno || end == text || *end) return fail(err, "%s: '%s' is not a non-negative integer", flag, text);
    *out = v;
    return 0;
}

int parse_double_option(const char *flag, const char *text, int positive, double *out, ErrorMessage *err) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v)) return fail(err, "%s: '%s' is not a number", flag, text);
    if (positive && !(v > 0)) return fail(err, "%s: %s must be positive", flag, text);
    if (v < 0) return fail(err, "%s: %s must not be negative", flag, text);
    *out = v;
    return 0;
}

int parse_token_list(const char *flag, const char *text, int32_t **tokens, int *n_tokens, ErrorMessage *err) {
    int capacity = 1;
    for (const char *p = text; *p; p++) capacity += *p == ',';
    int32_t *list = malloc(capacity * sizeof *list);
    if (!list) return fail(err, "%s: out of memory", flag);
    int n = 0;
    const char *p = text;
    while (1) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end != ',' && *end != '\0')) {
            free(list);
            return fail(err, "%s: '%s' is not a comma-separated list of non-negative integers", flag, text);
        }
        list[n++] = (int32_t)v;
        if (*end == '\0') break;
        p = end + 1;
    }
    *tokens = list;
    *n_tokens = n;
    return 0;
}

double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
