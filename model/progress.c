// The process-wide progress reporter. Contract and policy in progress.h.
#include "progress.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_INTERVAL_S 5.0
#define TERMINAL_REFRESH_S 0.1

static double monotonic_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static struct {
    const char *command;
    int quiet;
    // Output: stderr unless a test set another stream (then is_terminal is the test's choice).
    FILE *test_out;
    int test_is_terminal;
    double (*clock)(void);
    double interval_s;  // < 0: not yet read from the environment
    // The work under way.
    const char *what;
    int total, active, is_terminal, line_shown;
    double start, last_print;
    int last_printed_done;
} reporter = {NULL, 0, NULL, 0, monotonic_seconds, -1.0, "step", 0, 0, 0, 0, 0.0, 0.0, 0};

void progress_set_command(const char *command) { reporter.command = command; }
void progress_set_quiet(int quiet) { reporter.quiet = quiet; }

void progress_set_output_for_test(FILE *out, int is_terminal, double (*clock)(void), double interval_s) {
    reporter.test_out = out;
    reporter.test_is_terminal = is_terminal;
    reporter.clock = clock ? clock : monotonic_seconds;
    reporter.interval_s = interval_s;
}

static FILE *output(void) { return reporter.test_out ? reporter.test_out : stderr; }

static double interval_seconds(void) {
    if (reporter.interval_s < 0) {
        // A bad value falls back to the default: progress is never worth failing a command over.
        const char *text = getenv("FUSECHECK_PROGRESS_INTERVAL");
        char *end = NULL;
        double value = text ? strtod(text, &end) : -1.0;
        reporter.interval_s = (text && end != text && *end == '\0' && value >= 0) ? value : DEFAULT_INTERVAL_S;
    }
    return reporter.interval_s;
}

void progress_begin(const char *what, int total) {
    reporter.active = !reporter.quiet && total >= 1;
    if (!reporter.active) return;
    reporter.what = what ? what : "step";
    reporter.total = total;
    reporter.is_terminal = reporter.test_out ? reporter.test_is_terminal : isatty(fileno(stderr));
    reporter.line_shown = 0;
    reporter.start = reporter.last_print = reporter.clock();
    reporter.last_printed_done = 0;
}

// "42 s" or "3 min 05 s".
static void format_duration(char *out, size_t size, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s < 60) snprintf(out, size, "%ld s", s);
    else snprintf(out, size, "%ld min %02ld s", s / 60, s % 60);
}

static void print_line(int done, double now) {
    double elapsed = now - reporter.start;
    double rate = elapsed > 0 ? done / elapsed : 0.0;
    char left[32] = "?";
    if (rate > 0) format_duration(left, sizeof left, (reporter.total - done) / rate);
    FILE *out = output();
    fprintf(out, "%sfusecheck%s%s: %s %d of %d, %.2f %ss/s, %s left%s", reporter.is_terminal ? "\r" : "",
            reporter.command ? " " : "", reporter.command ? reporter.command : "", reporter.what, done, reporter.total, rate, reporter.what, left,
            reporter.is_terminal ? "\033[K" : "\n");
    fflush(out);
    reporter.line_shown = reporter.is_terminal;
    reporter.last_print = now;
    reporter.last_printed_done = done;
}

void progress_update(int done) {
    if (!reporter.active || done < 1 || done > reporter.total) return;
    double now = reporter.clock();
    if (reporter.is_terminal) {
        if (now - reporter.last_print >= TERMINAL_REFRESH_S || done == reporter.total) print_line(done, now);
        return;
    }
    // Logs: both a tenth of the work and the interval since the last line, so a log stays short.
    int tenth = (reporter.total + 9) / 10;
    if (done - reporter.last_printed_done >= tenth && now - reporter.last_print >= interval_seconds())
        print_line(done, now);
}

void progress_clear(void) {
    if (reporter.active && reporter.line_shown) {
        fputs("\r\033[K", output());
        fflush(output());
    }
    reporter.line_shown = 0;
}

void progress_end(void) {
    progress_clear();
    reporter.active = 0;
}
