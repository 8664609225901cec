// Progress of long work (golden, run, gate, bench): "step k of N, rate, time left" on stderr.
//
// One process-wide reporter, because the step loop that knows k and N (golden/trace_run.c,
// fused/gpu_bench.c) sits under the command that knows whether the user asked for --quiet.
//   - stderr a terminal: one line rewritten in place with '\r', at most ~10 times a second, erased
//     when the work ends, so the command's own summary line prints on a clean line.
//   - stderr not a terminal (CI logs, pipes): a plain line only when at least 10% more of the work
//     is done AND at least FUSECHECK_PROGRESS_INTERVAL seconds (default 5) have passed since the
//     last line (or the start). Work shorter than the interval prints nothing.
//   - progress_set_quiet(1): nothing at all.
// Output goes to stderr only; stdout stays the command's result.
#ifndef FUSECHECK_PROGRESS_H
#define FUSECHECK_PROGRESS_H

#include <stdio.h>

// The command name that prefixes every line ("golden" -> "fusecheck golden: step 3 of 17, ...").
// Default none ("fusecheck: step 3 of 17, ..."). The string must outlive the work (a literal or argv).
void progress_set_command(const char *command);
// 1: print nothing (--quiet). 0: report as described above (the default).
void progress_set_quiet(int quiet);

// Starts a unit of work of `total` steps named `what` ("step", "context"). total < 1 reports nothing.
void progress_begin(const char *what, int total);
// `done` steps of the total are finished.
void progress_update(int done);
// Erases a terminal line before the caller prints a line of its own; the work goes on (the next
// update redraws it). Nothing happens when stderr is not a terminal.
void progress_clear(void);
// The work ended (finished or failed): erases a terminal line. Safe to call without a begin.
void progress_end(void);

// ---- for tests: the same reporter writing to `out`, with a given clock and terminal mode ----------
// clock returns seconds (monotonic); NULL restores the real clock. interval_s < 0 restores the
// default (FUSECHECK_PROGRESS_INTERVAL or 5).
void progress_set_output_for_test(FILE *out, int is_terminal, double (*clock)(void), double interval_s);

#endif
