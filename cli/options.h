// Flag-value parsing for the subcommands. Each parser returns 0, or -1 with a one-line message
// naming the flag and the bad value ("--steps: 'x' is not an integer").
#ifndef FUSECHECK_OPTIONS_H
#define FUSECHECK_OPTIONS_H

#include <stdint.h>

#include "../model/error.h"

// The value of flag argv[*i] (advances *i), or -1 when the flag is the last argument.
int option_value(int argc, char **argv, int *i, const char **value, ErrorMessage *err);
// An integer in [min, max].
int parse_int_option(const char *flag, const char *text, long min, long max, long *out, ErrorMessage *err);
int parse_u64_option(const char *flag, const char *text, uint64_t *out, ErrorMessage *err);
// A finite double (optionally required > 0).
int parse_double_option(const char *flag, const char *text, int positive, double *out, ErrorMessage *err);
// "1,2,3" -> malloc'd int32 array of non-negative ids.
int parse_token_list(const char *flag, const char *text, int32_t **tokens, int *n_tokens, ErrorMessage *err);

// Seconds on the monotonic clock, for timing what a subcommand did.
double seconds_now(void);

#endif
