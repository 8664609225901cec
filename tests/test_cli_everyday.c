// Everyday use as a new user meets it (issue 14, part 4): teacher-forced goldens (--tokens-from),
// Ctrl-C and SIGTERM that clean up, output paths refused before any work, progress and --quiet,
// the exit codes in --help, a no-GPU reason that says what is true.
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../golden/trace.h"
#include "../golden/trace_run.h"
#include "../model/checkpoint.h"
#include "test_support.h"

static int count_lines(const char *text) {
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    return lines;
}

// Runs `args`, expects `status` and exactly one line that starts with `prefix` and contains `needle`.
static void expect_one_line_error(const char *args, int status, const char *prefix, const char *needle) {
    char *output;
    int got = test_run_cli(args, &output);
    cr_expect_eq(got, status, "fusecheck %s: exit %d, expected %d; output:\n%s", args, got, status, output);
    cr_expect_eq(strncmp(output, prefix, strlen(prefix)), 0, "fusecheck %s: output does not start with '%s':\n%s",
                 args, prefix, output);
    cr_expect(strstr(output, needle) != NULL, "fusecheck %s: output lacks '%s':\n%s", args, needle, output);
    cr_expect_eq(count_lines(output), 1, "fusecheck %s: expected one line, got:\n%s", args, output);
    free(output);
}

// A trace of `model`'s weights whose tokens are NOT what greedy decoding would choose: prompt
// 1..4, then 5, 7, 9. Only the root attributes, /tokens and empty steps: what --tokens-from reads.
static void write_token_trace(const char *model, const char *path) {
    Checkpoint checkpoint;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(model, &checkpoint, &err), 0, "%s", err.text);
    TraceMeta meta;
    cr_assert_eq(trace_meta_for_checkpoint(&meta, &checkpoint, "test", KV_BF16, 4, &err), 0, "%s", err.text);
    TraceWriter *writer = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(writer, "%s", err.text);
    const int32_t tokens[] = {1, 2, 3, 4, 5, 7, 9};
    for (int step = 0; step <= 3; step++) {
        cr_assert_eq(trace_begin_step(writer, step, step ? 3 + step : 0, step ? 1 : 4, &err), 0, "%s", err.text);
        cr_assert_eq(trace_write_next_token(writer, 0, &err), 0, "%s", err.text);
    }
    cr_assert_eq(trace_write_tokens(writer, tokens, 7, &err), 0, "%s", err.text);
    cr_assert_eq(trace_writer_close(writer, &err), 0, "%s", err.text);
    free(meta.model_config);
    checkpoint_close(&checkpoint);
}

Test(everyday, golden_tokens_from_consumes_the_source_tokens) {
    char *model = test_synth_checkpoint("tiny", 0);
    char source[1024], out[1024], args[4096];
    snprintf(source, sizeof source, "%s/source.h5", model);
    snprintf(out, sizeof out, "%s/forced.h5", model);
    write_token_trace(model, source);
    char *output;
    snprintf(args, sizeof args, "golden --model '%s' --kv-dtype f32 --tokens-from '%s' --quiet --out '%s'", model,
             source, out);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect(strstr(output, "4 prompt tokens + 3 decode steps teacher-forced on") != NULL, "%s", output);
    free(output);

    ErrorMessage err;
    TraceReader *forced = trace_open(out, &err);
    cr_assert_not_null(forced, "%s", err.text);
    int n_tokens = 0;
    const int32_t *tokens = trace_tokens(forced, &n_tokens);
    const int32_t expected[] = {1, 2, 3, 4, 5, 7, 9};
    cr_assert_eq(n_tokens, 7);
    for (int i = 0; i < 7; i++) cr_expect_eq(tokens[i], expected[i], "token %d: %d, the source has %d", i, tokens[i], expected[i]);
    cr_expect_eq(trace_meta(forced)->prompt_length, 4);
    cr_expect_eq(trace_n_steps(forced), 4);
    cr_expect_str_eq(trace_meta(forced)->kv_dtype, "f32");
    trace_close(forced);
    free(model);
}

Test(everyday, golden_tokens_from_refuses_other_weights_unreadable_files_and_prompt_flags) {
    char *model = test_synth_checkpoint("tiny", 0);
    char *other = test_synth_checkpoint("tiny", 1);
    char source[1024], garbage[1024], out[1024], args[4096];
    snprintf(source, sizeof source, "%s/source.h5", other);
    snprintf(garbage, sizeof garbage, "%s/garbage.h5", model);
    snprintf(out, sizeof out, "%s/forced.h5", model);
    write_token_trace(other, source);
    test_write_file(garbage, "not hdf5", 8);
    snprintf(args, sizeof args, "golden --model '%s' --tokens-from '%s' --out '%s'", model, source, out);
    expect_one_line_error(args, 2, "fusecheck golden: --tokens-from: ", "is of weights");
    snprintf(args, sizeof args, "golden --model '%s' --tokens-from '%s' --out '%s'", model, garbage, out);
    expect_one_line_error(args, 2, "fusecheck golden: --tokens-from: ", garbage);
    snprintf(args, sizeof args, "golden --model '%s' --tokens-from '%s' --steps 4 --out '%s'", model, source, out);
    expect_one_line_error(args, 2, "fusecheck golden: ", "drop --steps");
    cr_expect_neq(access(out, F_OK), 0, "a refused golden left %s behind", out);
    free(model);
    free(other);
}

// Starts `fusecheck golden` writing `out`, waits until its temporary trace exists, sends `signal_number`
// and returns the exit status; the child's stderr goes to `log`.
static int interrupt_golden(const char *model, const char *out, const char *log, int signal_number) {
    const char *binary = getenv("FUSECHECK_BIN");
    cr_assert_not_null(binary);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0) _exit(99);
        // 3000 steps of the small preset take far longer than the test waits.
        execl(binary, binary, "golden", "--model", model, "--steps", "3000", "--out", out, (char *)NULL);
        _exit(98);
    }
    char temp[1100];
    snprintf(temp, sizeof temp, "%s.tmp-%ld", out, (long)child);
    struct timespec tick = {0, 20 * 1000 * 1000};
    int waited = 0;
    while (access(temp, F_OK) != 0 && waited < 1500) {  // up to 30 s on a loaded machine
        nanosleep(&tick, NULL);
        waited++;
    }
    cr_assert_eq(access(temp, F_OK), 0, "%s never appeared", temp);
    nanosleep(&tick, NULL);  // into the step loop, the file growing
    cr_assert_eq(kill(child, signal_number), 0);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status), "golden died of signal %d instead of exiting", WTERMSIG(status));
    return WEXITSTATUS(status);
}

static int leftover_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(d))) n += strstr(entry->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

Test(everyday, sigterm_and_sigint_remove_the_temporary_trace, .timeout = 120) {
    char *model = test_synth_checkpoint("small", 0);
    char *dir = test_make_temp_dir("interrupt");
    char *out = test_path_join(dir, "g.h5");
    char *log = test_path_join(model, "log.txt");
    const int signals[] = {SIGTERM, SIGINT};
    const int expected[] = {143, 130};
    for (int i = 0; i < 2; i++) {
        int status = interrupt_golden(model, out, log, signals[i]);
        char *text = test_read_file(log, NULL);
        cr_expect_eq(status, expected[i], "signal %d: exit %d, expected %d; output:\n%s", signals[i], status,
                     expected[i], text);
        char needle[1200];
        snprintf(needle, sizeof needle, "fusecheck golden: interrupted, removed %s.tmp-", out);
        cr_expect(strstr(text, needle) != NULL, "output lacks '%s':\n%s", needle, text);
        cr_expect_eq(count_lines(text), 1, "expected one line:\n%s", text);
        cr_expect_eq(leftover_temp_files(dir), 0, "a *.tmp-* file is left in %s", dir);
        cr_expect_neq(access(out, F_OK), 0, "an interrupted golden left %s", out);
        free(text);
    }
    free(out);
    free(log);
    free(dir);
    free(model);
}

// A directory the test cannot write into: a 0555 directory, or for root (whom modes do not stop)
// /sys when creating a file there fails too. NULL when there is none.
static char *unwritable_dir(void) {
    char *dir = test_make_temp_dir("readonly");
    cr_assert_eq(chmod(dir, 0555), 0);
    char *probe = test_path_join(dir, "probe");
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    free(probe);
    if (fd < 0) return dir;
    close(fd);
    free(dir);
    fd = open("/sys/fusecheck-probe", O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) {
        close(fd);
        unlink("/sys/fusecheck-probe");
        return NULL;
    }
    return strdup("/sys");
}

// The model does not exist: the --out message proves the path was checked before any other work.
Test(everyday, output_paths_are_checked_before_any_work) {
    char *dir = test_make_temp_dir("outputs");
    char args[4096];
    const char *commands[] = {"golden --model /nonexistent",
                              "run --engine fused --model /nonexistent --golden golden/tiny-kv-bf16.h5"};
    const char *prefixes[] = {"fusecheck golden: --out: ", "fusecheck run: --out: "};
    char *readonly = unwritable_dir();
    for (int c = 0; c < 2; c++) {
        snprintf(args, sizeof args, "%s --out '%s/missing/g.h5'", commands[c], dir);
        expect_one_line_error(args, 2, prefixes[c], "/missing' does not exist");
        snprintf(args, sizeof args, "%s --out '%s'", commands[c], dir);
        expect_one_line_error(args, 2, prefixes[c], "is a directory");
        if (readonly) {
            snprintf(args, sizeof args, "%s --out '%s/g.h5'", commands[c], readonly);
            expect_one_line_error(args, 2, prefixes[c], "cannot create files in directory");
        }
    }
    free(readonly);
    free(dir);
}

Test(everyday, help_lists_every_exit_code) {
    char *output;
    cr_assert_eq(test_run_cli("--help", &output), 0);
    const char *lines[] = {"\n  0 ", "\n  1 ", "\n  2 ", "\n  3 ", "\n  4 ", "\n  130/143 "};
    for (int i = 0; i < 6; i++) cr_expect(strstr(output, lines[i]) != NULL, "--help lacks '%s':\n%s", lines[i] + 1, output);
    free(output);
}

// run's and generate's --help name every registered engine (from the registry, so a new engine is
// listed without touching their usage text).
Test(everyday, engine_commands_help_lists_every_engine) {
    const char *commands[] = {"run --help", "generate --help"};
    for (int c = 0; c < 2; c++) {
        char *output;
        cr_assert_eq(test_run_cli(commands[c], &output), 0, "%s", commands[c]);
        cr_expect(strstr(output, "ENGINE: reference|fused|cublas|dataflow, or plugin:PATH.so") != NULL,
                  "%s does not list the engines:\n%s", commands[c], output);
        free(output);
    }
}

Test(everyday, devices_says_what_is_missing) {
    char *output;
    cr_expect_eq(test_run_cli("devices", &output), 4);
    cr_expect_eq(strncmp(output, "fusecheck devices: ", 19), 0, "%s", output);
    void *driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (driver) dlclose(driver);
    if (strstr(output, "built without CUDA")) {
        // A build without CUDA says so; that is the truer reason whatever the machine holds.
    } else if (!driver) {
        cr_expect(strstr(output, "no NVIDIA driver (libcuda.so.1 not found)") != NULL, "%s", output);
        cr_expect(strstr(output, "insufficient") == NULL, "%s", output);
    }
    free(output);
}

Test(everyday, progress_lines_in_logs_and_quiet) {
    char *model = test_synth_checkpoint("tiny", 0);
    char args[4096];
    char *output;
    // An interval of 0 s: a line every 10% of the steps, never one per step.
    cr_assert_eq(setenv("FUSECHECK_PROGRESS_INTERVAL", "0", 1), 0);
    snprintf(args, sizeof args, "golden --model '%s' --steps 39 --out '%s/a.h5'", model, model);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect(strstr(output, "fusecheck golden: step 4 of 40, ") != NULL, "%s", output);
    cr_expect(strstr(output, "fusecheck golden: step 40 of 40, ") != NULL, "%s", output);
    cr_expect(strstr(output, " left\n") != NULL, "%s", output);
    cr_expect_eq(count_lines(output), 11, "10 progress lines and the summary expected:\n%s", output);
    cr_expect(strchr(output, '\r') == NULL, "a log got a carriage return:\n%s", output);
    free(output);
    snprintf(args, sizeof args, "golden --model '%s' --steps 39 --quiet --out '%s/b.h5'", model, model);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect_eq(count_lines(output), 1, "--quiet printed more than the summary:\n%s", output);
    free(output);
    snprintf(args, sizeof args, "generate --model '%s' -n 30 --quiet", model);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect_eq(count_lines(output), 1, "generate --quiet printed more than the tokens:\n%s", output);
    free(output);
    unsetenv("FUSECHECK_PROGRESS_INTERVAL");
    free(model);
}

Test(everyday, one_decode_step_is_singular) {
    char *model = test_synth_checkpoint("tiny", 0);
    char args[4096];
    char *output;
    snprintf(args, sizeof args, "golden --model '%s' --steps 1 --quiet --out '%s/a.h5'", model, model);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect(strstr(output, "+ 1 decode step,") != NULL, "%s", output);
    free(output);
    snprintf(args, sizeof args, "generate --model '%s' -n 1", model);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect(strstr(output, "+ 1 generated token in") != NULL, "%s", output);
    free(output);
    free(model);
}
