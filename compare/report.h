// Presenting a comparison: the terminal table, the JSON report, and the report directory
// (accuracy.json, accuracy.md, error_by_layer.svg).
#ifndef FUSECHECK_REPORT_H
#define FUSECHECK_REPORT_H

#include <stdio.h>

#include "../model/error.h"
#include "compare.h"

// The compact table: which file is which, profiles, per-layer worst over all steps, per-step worst
// over all layers, one-sided names, the first failure (bisection style) and a summary line.
// verbose adds one row per compared tensor.
void report_print_table(FILE *out, const CompareResult *result, int verbose);

// The JSON report (what accuracy.json holds) as malloc'd text, or NULL on out of memory.
char *report_json_text(const CompareResult *result);

// Creates dir (and its parents) if missing and writes accuracy.json, accuracy.md and
// error_by_layer.svg into it, each through a temporary name renamed into place.
int report_write(const CompareResult *result, const char *dir, ErrorMessage *err);

#endif
