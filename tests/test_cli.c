// The CLI's promises on bad input and on machines without a GPU: one line naming the file or flag,
// exit 2 (4 for a gate whose GPU part was skipped), never a crash, never a half-written output.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../golden/trace.h"
#include "test_support.h"

static int gpu_present(void) { return test_run_cli("devices", NULL) == 0; }

static int count_lines(const char *text) {
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    return lines;
}

// Runs `args`, expects `status` and one line of output containing `needle`.
static void expect_one_line_error(const char *args, int status, const char *needle) {
    char *output;
    int got = test_run_cli(args, &output);
    cr_expect_eq(got, status, "fusecheck %s: exit %d, expected %d; output:\n%s", args, got, status, output);
    cr_expect(strstr(output, needle) != NULL, "fusecheck %s: output lacks '%s':\n%s", args, needle, output);
    cr_expect_eq(count_lines(output), 1, "fusecheck %s: expected one line, got:\n%s", args, output);
    free(output);
}

Test(cli, unknown_command_and_flags) {
    expect_one_line_error("frobnicate", 2, "unknown command 'frobnicate'");
    expect_one_line_error("golden --model /nonexistent --out /tmp/x.h5 --frob 1", 2, "unknown flag '--frob'");
    expect_one_line_error("golden --model /nonexistent --steps x --out /tmp/x.h5", 2, "--steps: 'x' is not an integer");
    expect_one_line_error("golden --steps 3", 2, "--model and --out are required");
    expect_one_line_error("golden --model /nonexistent --out", 2, "--out: missing value");
    expect_one_line_error("generate --engine tpu --model /nonexistent", 2, "--engine: 'tpu'");
    expect_one_line_error("gate --preset tiny --model /x", 2, "exactly one of --model DIR and --preset NAME");
    expect_one_line_error("gate --preset tiny --context 1,x", 2, "--context");
}

// Output folders are checked before any work: a report that cannot be written is bad input up front,
// not an exit 2 after the comparison (or the gate's minutes of work) has run.
Test(cli, unwritable_report_folders_are_refused_before_any_work) {
    expect_one_line_error("compare golden/tiny-kv-f32.h5 golden/tiny-kv-f32.h5 --report /etc/hostname/report", 2,
                          "fusecheck compare: --report");
    expect_one_line_error("gate --preset tiny --steps 2 --report-dir /etc/hostname/report", 2,
                          "fusecheck gate: --report-dir");
    expect_one_line_error("gate --preset tiny --steps 2 --report-dir /tmp --cache-dir /etc/hostname/cache", 2,
                          "fusecheck gate: --cache-dir");
}

Test(cli, missing_checkpoint_names_the_file) {
    char *dir = test_make_temp_dir("empty-model");
    char args[4096];
    snprintf(args, sizeof args, "golden --model '%s' --out '%s/g.h5'", dir, dir);
    expect_one_line_error(args, 2, dir);
    snprintf(args, sizeof args, "%s/g.h5", dir);
    cr_expect_neq(access(args, F_OK), 0, "a failed golden left a file behind");
    free(dir);
}

Test(cli, golden_refuses_out_of_vocabulary_prompt_and_leaves_no_file) {
    char *model = test_synth_checkpoint("tiny", 0);
    char args[4096], out[1024];
    snprintf(out, sizeof out, "%s/g.h5", model);
    snprintf(args, sizeof args, "golden --model '%s' --prompt-tokens 1,2,256 --out '%s'", model, out);
    expect_one_line_error(args, 2, "token id 256 is outside the vocabulary [0, 256)");
    cr_expect_neq(access(out, F_OK), 0, "a failed golden left %s behind", out);
    free(model);
}

Test(cli, gpu_commands_without_a_device_say_so) {
    if (gpu_present()) cr_skip_test("a CUDA device is present: this test is about machines without one");
    char *model = test_synth_checkpoint("tiny", 0);
    char args[1024];
    snprintf(args, sizeof args, "generate --engine fused --model '%s' -n 4", model);
    expect_one_line_error(args, 4, "no CUDA device found");
    snprintf(args, sizeof args, "run --engine cublas --model '%s' --golden golden/tiny-kv-bf16.h5 --out /tmp/never.h5", model);
    expect_one_line_error(args, 4, "no CUDA device found");
    snprintf(args, sizeof args, "bench --model '%s'", model);
    expect_one_line_error(args, 4, "no CUDA device found");
    expect_one_line_error("devices", 4, "no CUDA device found");
    free(model);
}

Test(cli, gate_without_a_device_runs_the_cpu_part_and_exits_4) {
    if (gpu_present()) cr_skip_test("a CUDA device is present: the GPU part would run");
    char *dir = test_make_temp_dir("gate");
    char args[2048], *output;
    snprintf(args, sizeof args, "gate --preset tiny --steps 4 --cache-dir '%s/cache' --report-dir '%s/report'", dir, dir);
    int status = test_run_cli(args, &output);
    cr_expect_eq(status, 4, "exit %d:\n%s", status, output);
    cr_expect(strstr(output, "GPU part skipped: no CUDA device found") != NULL, "%s", output);
    cr_expect(strstr(output, "golden (kv bf16): made") != NULL, "%s", output);
    free(output);
    char *index = test_path_join(dir, "report/index.md");
    char *text = test_read_file(index, NULL);
    cr_expect(strstr(text, "GPU part skipped") != NULL, "%s", text);
    free(text);
    // A second gate reuses the goldens of the same weights and prompt.
    status = test_run_cli(args, &output);
    cr_expect_eq(status, 4);
    cr_expect(strstr(output, "golden (kv bf16): reused") != NULL, "%s", output);
    free(output);
    free(index);
    free(dir);
}

Test(cli, generate_with_the_reference_prints_the_goldens_continuation) {
    // `generate` and `golden` step the reference the same way: the 9 generated tokens are the golden's
    // 8 teacher-forced continuation tokens plus its last step's next_token.
    char *model = test_synth_checkpoint("tiny", 0);
    char *dir = test_make_temp_dir("generate");
    char *golden = test_path_join(dir, "g.h5");
    char args[2048], *output;
    snprintf(args, sizeof args, "golden --model '%s' --prompt-len 12 --seed 1 --steps 8 --out '%s'", model, golden);
    cr_assert_eq(test_run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "generate --engine reference --model '%s' --prompt-len 12 --seed 1 -n 9", model);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    ErrorMessage err;
    TraceReader *trace = trace_open(golden, &err);
    cr_assert_not_null(trace, "%s", err.text);
    int n_tokens;
    const int32_t *tokens = trace_tokens(trace, &n_tokens);
    int32_t want[9];
    for (int i = 0; i < 8; i++) want[i] = tokens[12 + i];
    cr_assert_eq(trace_read_next_token(trace, 8, &want[8], &err), 0, "%s", err.text);
    // stdout holds the tokens; stderr (captured too) a timing line starting with "fusecheck".
    char *line = strtok(output, "\n");
    while (line && !strncmp(line, "fusecheck", 9)) line = strtok(NULL, "\n");
    cr_assert_not_null(line, "no token line in the output");
    char *cursor = line;
    for (int i = 0; i < 9; i++) {
        char *end;
        long got = strtol(cursor, &end, 10);
        cr_assert_neq(end, cursor, "token %d missing in '%s'", i, line);
        cr_expect_eq(got, want[i], "token %d: generate %ld, golden %d", i, got, want[i]);
        cursor = end;
    }
    trace_close(trace);
    free(output);
    free(golden);
    free(model);
    free(dir);
}
