// tok/s per commit as an SVG line chart, written in C (no plotting tools on a GPU runner): one panel
// per GPU, in it one line per (engine, model, context) series, that GPU's commits on x in recorded
// order, tok/s on y from 0.
#ifndef FUSECHECK_HISTORY_SVG_H
#define FUSECHECK_HISTORY_SVG_H

#include "bench_history.h"

// Writes the chart of history's throughput rows to `path` (via a temporary file). A history without
// throughput rows gives a chart that says so.
int history_write_svg(const History *history, const char *path, ErrorMessage *err);

#endif
