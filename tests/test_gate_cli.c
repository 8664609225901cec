// The gate's command line without a GPU: the golden cache is keyed by what produced the goldens (the
// build's hash of reference/, model/ and golden/), --steps 0 and a --max-slowdown without a baseline are
// refused, and a baseline that cannot be read is refused before any work. `--engine` takes any
// registered engine: one that needs no GPU (the reference) runs the whole gate here and passes, its
// --baseline is compared with its own rows on this CPU, an unknown one is refused in one line, and
// the fused engine still stops after the CPU part with exit 4.
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/engine_bench.h"
#include "test_support.h"

static int gpu_present(void) { return test_run_cli("devices", NULL) == 0; }

static int count_lines(const char *text) {
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    return lines;
}

static int file_exists(const char *dir, const char *name) {
    char *path = test_path_join(dir, name);
    FILE *f = fopen(path, "rb");
    free(path);
    if (f) fclose(f);
    return f != NULL;
}

// The golden file the gate reported making (or reusing), from its output: malloc'd path.
static char *golden_path_in(const char *output, const char *kv) {
    char marker[64];
    snprintf(marker, sizeof marker, "golden (kv %s): ", kv);
    const char *at = strstr(output, marker);
    cr_assert_not_null(at, "%s", output);
    at = strchr(at + strlen(marker), ' ');  // past "made" / "reused"
    cr_assert_not_null(at);
    at++;
    size_t n = strcspn(at, " \n");
    char *path = malloc(n + 1);
    cr_assert_not_null(path);
    memcpy(path, at, n);
    path[n] = '\0';
    return path;
}

Test(gate_cli, a_cached_golden_of_another_producer_is_not_reused) {
    char *dir = test_make_temp_dir("gate-cache");
    char args[2048], *output;
    snprintf(args, sizeof args, "gate --preset tiny --steps 2 --cache-dir '%s/cache' --report-dir '%s/report'", dir, dir);
    int status = test_run_cli(args, &output);
    cr_assert(status == 4 || status == 0 || status == 1, "exit %d:\n%s", status, output);
    char *made = golden_path_in(output, "bf16");
    cr_assert(strstr(output, "golden (kv bf16): made"), "%s", output);
    free(output);
    // The producer hash is part of the name: -ref<16 hex digits>.h5.
    const char *ref = strstr(made, "-ref");
    cr_assert_not_null(ref, "%s", made);
    cr_assert_eq(strlen(ref), strlen("-ref") + 16 + strlen(".h5"), "%s", made);

    // The same producer reuses it.
    status = test_run_cli(args, &output);
    cr_assert(strstr(output, "golden (kv bf16): reused"), "%s", output);
    free(output);

    // A golden of another producer (an older reference, say) in its place: the gate makes a new one.
    char *planted = strdup(made);
    cr_assert_not_null(planted);
    char *hash = strstr(planted, "-ref") + 4;
    memcpy(hash, "0000000000000000", 16);
    cr_assert_eq(rename(made, planted), 0, "%s -> %s", made, planted);
    status = test_run_cli(args, &output);
    cr_assert(strstr(output, "golden (kv bf16): made"), "a golden of producer 0000000000000000 was reused:\n%s", output);
    free(output);
    FILE *f = fopen(made, "rb");
    cr_assert_not_null(f, "%s was not remade", made);
    fclose(f);
    free(planted);
    free(made);
    free(dir);
}

Test(gate_cli, steps_zero_is_refused) {
    char *output;
    int status = test_run_cli("gate --preset tiny --steps 0", &output);
    cr_assert_eq(status, 2, "%s", output);
    cr_assert(strstr(output, "fusecheck gate: --steps") && strstr(output, "decode"), "%s", output);
    free(output);
}

Test(gate_cli, max_slowdown_needs_a_baseline_and_an_unreadable_baseline_is_refused_first) {
    char *output;
    int status = test_run_cli("gate --preset tiny --max-slowdown 5", &output);
    cr_assert_eq(status, 2, "%s", output);
    cr_assert(strstr(output, "fusecheck gate: --max-slowdown needs --baseline"), "%s", output);
    free(output);
    char *dir = test_make_temp_dir("gate-baseline");
    char *bad = test_path_join(dir, "benchmarks.jsonl");
    test_write_file(bad, "not json\n", 9);
    char args[2048];
    snprintf(args, sizeof args, "gate --preset tiny --steps 2 --cache-dir '%s/cache' --baseline '%s'", dir, bad);
    status = test_run_cli(args, &output);
    cr_assert_eq(status, 2, "%s", output);
    cr_assert(strstr(output, "fusecheck gate: --baseline") && strstr(output, "line 1"), "%s", output);
    cr_assert_null(strstr(output, "golden (kv"), "work started before the baseline was read:\n%s", output);
    free(output);
    free(bad);
    free(dir);
}

// The reference's gate in a small shape: CPU only, fast.
#define REFERENCE_GATE "gate --engine reference --preset tiny --steps 2 --context 8,16 --tokens 2 --repeat 2 --quiet"

Test(gate_cli, the_reference_passes_the_whole_gate_on_the_cpu) {
    char *dir = test_make_temp_dir("gate-reference");
    char args[2048], *output;
    snprintf(args, sizeof args, REFERENCE_GATE " --cache-dir '%s/cache' --report-dir '%s/report'", dir, dir);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, 0, "exit %d:\n%s", status, output);
    // It cannot be storage-forced, and says so in one line; its matched run is its unforced run.
    cr_expect(strstr(output, "gate: engine reference cannot storage-force its KV cache"), "%s", output);
    cr_expect(strstr(output, "== accuracy, matched profile (gated) (the engine's own KV cache)"), "%s", output);
    cr_expect(strstr(output, "every compared tensor is within tolerance"), "%s", output);
    cr_expect(strstr(output, "== greedy tokens, unforced engine against the matched reference: 3/3 steps agree"), "%s", output);
    cr_expect(strstr(output, "| reference | 8 | ") && strstr(output, "| reference | 16 | "), "%s", output);
    cr_expect_null(strstr(output, "| cublas |"), "a CPU engine gets no cublas baseline:\n%s", output);
    cr_expect_null(strstr(output, "no CUDA device"), "a GPU call was made:\n%s", output);
    cr_expect(strstr(output, "gate: PASS"), "%s", output);
    free(output);
    char *report = test_path_join(dir, "report");
    const char *files[] = {"index.md", "accuracy.json", "accuracy.md", "pure-fp32/accuracy.md", "unforced/accuracy.md",
                           "throughput.json", "throughput.md"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        cr_expect(file_exists(report, files[i]), "%s/%s is missing", report, files[i]);
    char *index_path = test_path_join(report, "index.md");
    char *index = test_read_file(index_path, NULL);
    cr_expect(strstr(index, "# fusecheck gate: PASS"), "%s", index);
    cr_expect(strstr(index, "Note: engine reference cannot storage-force its KV cache"), "%s", index);
    cr_expect(strstr(index, "| matched profile (reference vs reference with bf16 KV, not storage-forced)"), "%s", index);
    cr_expect(strstr(index, "| reference tok/s at context 8 (floor 0) | "), "%s", index);
    cr_expect(strstr(index, "bandwidth n/a"), "%s", index);
    free(index);
    char *throughput_path = test_path_join(report, "throughput.json");
    char *throughput = test_read_file(throughput_path, NULL);
    cr_expect(strstr(throughput, "\"timing\":\t\"wall-clock\""), "%s", throughput);
    free(throughput);
    free(throughput_path);
    free(index_path);
    free(report);
    free(dir);
}

// A throughput row of `engine` at context 8 on this machine's CPU, tok_s as given.
static void write_history(const char *path, const char *engine, double tok_s, const char *more) {
    char cpu[256], text[2048];
    bench_cpu_name(cpu, sizeof cpu);
    int n = snprintf(text, sizeof text,
                     "{\"date\":\"2026-01-01T00:00:00Z\",\"commit\":\"0123456789ab\",\"gpu\":\"%s\",\"model\":\"tiny\","
                     "\"engine\":\"%s\",\"context\":8,\"tok_s\":%.17g,\"ms_per_token\":1,\"bandwidth_fraction\":0}\n%s",
                     cpu, engine, tok_s, more);
    test_write_file(path, text, (size_t)n);
}

Test(gate_cli, the_baseline_is_compared_with_the_engine_under_test) {
    char *dir = test_make_temp_dir("gate-reference-baseline");
    char *history = test_path_join(dir, "benchmarks.jsonl");
    char args[2048], *output;
    snprintf(args, sizeof args, REFERENCE_GATE " --cache-dir '%s/cache' --report-dir '%s/report' --baseline '%s'", dir, dir,
             history);
    // Another engine's row, however fast, is not the reference's baseline.
    write_history(history, "fused", 1e12, "");
    int status = test_run_cli(args, &output);
    cr_expect_eq(status, 0, "exit %d:\n%s", status, output);
    cr_expect(strstr(output, "no recorded reference tok/s for tiny at context 8"), "%s", output);
    free(output);
    // The reference's own row on this CPU: 1e12 tok/s recorded, so this run is far too slow (exit 3).
    write_history(history, "reference", 1e12, "");
    status = test_run_cli(args, &output);
    cr_expect_eq(status, 3, "exit %d:\n%s", status, output);
    cr_expect(strstr(output, "FAIL: reference at context 8: "), "%s", output);
    cr_expect(strstr(output, "beyond --max-slowdown"), "%s", output);
    free(output);
    // A slow recorded row: this run is faster, so it passes.
    write_history(history, "reference", 1e-3, "");
    status = test_run_cli(args, &output);
    cr_expect_eq(status, 0, "exit %d:\n%s", status, output);
    cr_expect(strstr(output, "reference at context 8: ") && strstr(output, "faster by"), "%s", output);
    free(output);
    free(history);
    free(dir);
}

Test(gate_cli, an_unknown_engine_is_refused_in_one_line_before_any_work) {
    char *output;
    int status = test_run_cli("gate --engine tpu --preset tiny --steps 2", &output);
    cr_expect_eq(status, 2, "%s", output);
    cr_expect(strstr(output, "fusecheck gate: --engine: 'tpu' is not one of reference, fused, cublas, dataflow"), "%s", output);
    cr_expect_eq(count_lines(output), 1, "%s", output);
    free(output);
}

Test(gate_cli, the_fused_engine_without_a_device_stops_after_the_cpu_part_with_exit_4) {
    if (gpu_present()) cr_skip_test("a CUDA device is present: the GPU part would run");
    char *dir = test_make_temp_dir("gate-fused");
    char args[2048], *output;
    snprintf(args, sizeof args, "gate --engine fused --preset tiny --steps 2 --cache-dir '%s/cache' --report-dir '%s/report'",
             dir, dir);
    int status = test_run_cli(args, &output);
    cr_expect_eq(status, 4, "exit %d:\n%s", status, output);
    cr_expect(strstr(output, "golden (kv bf16): made"), "%s", output);
    cr_expect(strstr(output, "gate: GPU part skipped: no CUDA device found"), "%s", output);
    free(output);
    free(dir);
}

// An engine plugin (examples/engine-plugin) through the whole gate on the CPU: as written it passes,
// storage-forced (it can force its KV cache); its planted-bug build fails on accuracy (exit 1).
Test(gate_cli, an_engine_plugin_is_gated_like_any_engine) {
    const char *build = getenv("FUSECHECK_BUILD");
    cr_assert_not_null(build, "FUSECHECK_BUILD is not set (run the tests through ctest)");
    char *dir = test_make_temp_dir("gate-plugin");
    char args[2048], *output;
    snprintf(args, sizeof args,
             "gate --engine plugin:%s/plugins/libqwen3_cpu_engine.so --preset tiny --steps 2 --context 8 --tokens 2 "
             "--repeat 1 --quiet --cache-dir '%s/cache' --report-dir '%s/report'",
             build, dir, dir);
    int status = test_run_cli(args, &output);
    cr_expect_eq(status, 0, "exit %d:\n%s", status, output);
    cr_expect(strstr(output, "== accuracy, matched profile (gated) (KV storage-forced from the golden)"), "%s", output);
    cr_expect(strstr(output, "| qwen3-cpu | 8 | "), "%s", output);
    free(output);
    snprintf(args, sizeof args,
             "gate --engine plugin:%s/plugins/libqwen3_cpu_engine_buggy.so --preset tiny --steps 2 --context 8 "
             "--tokens 2 --repeat 1 --quiet --cache-dir '%s/cache' --report-dir '%s/report-buggy'",
             build, dir, dir);
    status = test_run_cli(args, &output);
    cr_expect_eq(status, 1, "exit %d:\n%s", status, output);
    cr_expect(strstr(output, "first failure: step 1 layer 1 tensor q"), "%s", output);
    cr_expect(strstr(output, "gate: FAIL (accuracy)"), "%s", output);
    free(output);
    free(dir);
}
