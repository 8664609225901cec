// The progress reporter's policy (model/progress.h): plain lines in logs only every 10% and every
// interval, an in-place line on terminals, nothing when quiet. Driven with a fake clock.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/progress.h"

static double fake_now;
static double fake_clock(void) { return fake_now; }

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

// Runs `total` steps one `seconds_per_step` apart through the reporter; returns what it printed.
static char *report(int is_terminal, int quiet, int total, double seconds_per_step, double interval_s) {
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_not_null(out);
    fake_now = 100.0;
    progress_set_output_for_test(out, is_terminal, fake_clock, interval_s);
    progress_set_quiet(quiet);
    progress_set_command("golden");
    progress_begin("step", total);
    for (int done = 1; done <= total; done++) {
        fake_now += seconds_per_step;
        progress_update(done);
    }
    progress_end();
    progress_set_output_for_test(NULL, 0, NULL, -1.0);
    progress_set_quiet(0);
    cr_assert_eq(fclose(out), 0);
    return text;
}

Test(progress, log_lines_every_tenth_and_interval) {
    // 100 steps of 1 s, interval 5 s: a line each 10 steps (10 s >= 5 s), never per step.
    char *text = report(0, 0, 100, 1.0, 5.0);
    cr_expect_eq(count(text, "\n"), 10, "expected 10 lines:\n%s", text);
    cr_expect_not_null(strstr(text, "fusecheck golden: step 10 of 100, 1.00 steps/s, 1 min 30 s left\n"), "%s", text);
    cr_expect_not_null(strstr(text, "fusecheck golden: step 100 of 100, 1.00 steps/s, 0 s left\n"), "%s", text);
    cr_expect_null(strchr(text, '\r'), "a log got a carriage return:\n%s", text);
    free(text);
}

Test(progress, log_lines_wait_for_the_interval) {
    // 1280 steps of 1/128 s (exact in binary) = 10 s in all, interval 5 s: two lines, not ten.
    char *text = report(0, 0, 1280, 1.0 / 128, 5.0);
    cr_expect_eq(count(text, "\n"), 2, "expected 2 lines:\n%s", text);
    free(text);
    // Work shorter than the interval prints nothing at all.
    text = report(0, 0, 17, 1.0 / 128, 5.0);
    cr_expect_str_empty(text, "a short run printed:\n%s", text);
    free(text);
}

Test(progress, terminal_line_is_rewritten_and_erased) {
    char *text = report(1, 0, 20, 0.5, 5.0);
    cr_expect_null(strchr(text, '\n'), "a terminal got a new line:\n%s", text);
    cr_expect_eq(count(text, "\rfusecheck golden: step "), 20, "%s", text);
    cr_expect_not_null(strstr(text, "step 20 of 20, 2.00 steps/s, 0 s left"), "%s", text);
    size_t length = strlen(text);
    cr_expect(length >= 4 && !strcmp(text + length - 4, "\r\033[K"), "the line is not erased at the end");
    free(text);
}

Test(progress, quiet_prints_nothing) {
    char *text = report(0, 1, 100, 1.0, 0.0);
    cr_expect_str_empty(text, "quiet printed:\n%s", text);
    free(text);
    text = report(1, 1, 100, 1.0, 0.0);
    cr_expect_str_empty(text, "quiet printed on a terminal:\n%s", text);
    free(text);
}
