// `gate` and `bench` with an engine plugin that needs no GPU: the whole gate (goldens, accuracy in
// both profiles, unforced tokens, wall-clock throughput) runs on this CPU machine. The example engine
// passes; its PLANT_BUG build fails at step 1, layer 1, tensor q; a plugin that crashes or taps a
// wrong shape stops the gate with one line, exit 2, and leaves no trace in the cache.
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

static void plugin_path(const char *library, char *out, size_t size) {
    const char *build = getenv("FUSECHECK_BUILD");
    cr_assert_not_null(build, "FUSECHECK_BUILD is not set (run the tests through ctest)");
    snprintf(out, size, "%s/plugins/lib%s.so", build, library);
    cr_assert_eq(access(out, R_OK), 0, "%s is not built", out);
}

// gate of plugin `library` on tiny (16 prompt tokens, 8 steps, context 64); its output in *output and
// its cache directory in *cache (malloc'd).
static int gate(const char *library, char **output, char **cache) {
    char path[1024], args[4096];
    plugin_path(library, path, sizeof path);
    char *dir = test_make_temp_dir("plugin-gate");
    *cache = test_path_join(dir, "cache");
    snprintf(args, sizeof args,
             "gate --engine 'plugin:%s' --preset tiny --steps 8 --context 64 --tokens 8 --repeat 2 --report-dir "
             "'%s/report' --cache-dir '%s' --quiet",
             path, dir, *cache);
    free(dir);
    return test_run_cli(args, output);
}

// The first "first failure: ..." line of the output: the matched profile's, which the gate gates.
static char *first_failure(const char *output) {
    const char *line = strstr(output, "\nfirst failure: ");
    if (!line) return strdup("(none)");
    line++;
    size_t length = strcspn(line, "\n");
    return strndup(line, length);
}

Test(plugin_gate, the_example_engine_passes_the_whole_gate_on_a_cpu) {
    char *output = NULL, *cache = NULL;
    int status = gate("qwen3_cpu_engine", &output, &cache);
    cr_expect_eq(status, 0, "%s", output);
    cr_expect_not_null(strstr(output, "(KV storage-forced from the golden)"), "%s", output);
    cr_expect_not_null(strstr(output, "[producer qwen3-cpu, kv bf16 (storage-forced), weights bf16, 9 steps]"), "%s",
                       output);
    cr_expect_not_null(strstr(output, "greedy tokens, unforced engine against the matched reference: 9/9 steps agree"),
                       "%s", output);
    cr_expect_not_null(strstr(output, "| qwen3-cpu | 64 | "), "%s", output);
    cr_expect_not_null(strstr(output, "\ngate: PASS"), "%s", output);
    free(output);
    free(cache);
}

Test(plugin_gate, the_planted_bug_fails_at_step_1_layer_1_tensor_q) {
    char *output = NULL, *cache = NULL;
    int status = gate("qwen3_cpu_engine_buggy", &output, &cache);
    cr_expect_eq(status, 1, "%s", output);
    char *failure = first_failure(output);
    cr_expect_eq(strncmp(failure, "first failure: step 1 layer 1 tensor q rel_l2 ", 46), 0, "%s", failure);
    cr_expect_not_null(strstr(output, "\ngate: FAIL (accuracy)"), "%s", output);
    free(failure);
    free(output);
    free(cache);
}

// No trace of the hostile engine, and no temporary file, in the cache's goldens.
static void expect_no_hostile_trace(const char *cache) {
    char *goldens = test_path_join(cache, "goldens");
    DIR *dir = opendir(goldens);
    cr_assert_not_null(dir, "%s", goldens);
    for (struct dirent *entry; (entry = readdir(dir));)
        cr_expect(!strstr(entry->d_name, "hostile") && !strstr(entry->d_name, ".tmp-"), "%s/%s left behind", goldens,
                  entry->d_name);
    closedir(dir);
    free(goldens);
}

Test(plugin_gate, a_crashing_plugin_stops_the_gate_with_one_line) {
    char *output = NULL, *cache = NULL, path[1024], expected[2048];
    plugin_path("hostile_segfault_in_forward", path, sizeof path);
    int status = gate("hostile_segfault_in_forward", &output, &cache);
    cr_expect_eq(status, 2, "%s", output);
    snprintf(expected, sizeof expected, "\nfusecheck gate: engine plugin %s crashed (SIGSEGV) during forward, removed ",
             path);
    cr_expect_not_null(strstr(output, expected), "%s", output);
    cr_expect_null(strstr(output, "gate: PASS"), "%s", output);
    expect_no_hostile_trace(cache);
    free(output);
    free(cache);
}

Test(plugin_gate, a_wrong_shape_stops_the_gate_with_one_line) {
    char *output = NULL, *cache = NULL, path[1024], expected[2048];
    plugin_path("hostile_wrong_tap_shape", path, sizeof path);
    int status = gate("hostile_wrong_tap_shape", &output, &cache);
    cr_expect_eq(status, 2, "%s", output);
    snprintf(expected, sizeof expected,
             "\nfusecheck gate: engine plugin %s: tapped 'q' of layer 0 as [16, 63], expected [16, 64] (n_tokens x "
             "num_attention_heads*head_dim, golden/FORMAT.md)\n",
             path);
    cr_expect_not_null(strstr(output, expected), "%s", output);
    expect_no_hostile_trace(cache);
    free(output);
    free(cache);
}

Test(plugin_gate, bench_measures_a_cpu_plugin) {
    char path[1024], args[2048], *output = NULL;
    plugin_path("qwen3_cpu_engine", path, sizeof path);
    snprintf(args, sizeof args, "bench --engine 'plugin:%s' --preset tiny --context 32 --tokens 8 --repeat 2 --quiet", path);
    cr_expect_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect_not_null(strstr(output, "| qwen3-cpu | 32 | "), "%s", output);
    cr_expect_not_null(strstr(output, "no GPU used"), "%s", output);
    free(output);
}

Test(plugin_gate, bench_uses_a_plugins_own_timer) {
    // The plugin's timer says 0.5 ms per step: 2000 tok/s exactly, timed by the engine, not the clock.
    char path[1024], args[2048], *output = NULL;
    plugin_path("hostile_bench_hooks", path, sizeof path);
    snprintf(args, sizeof args, "bench --engine 'plugin:%s' --preset tiny --context 32 --tokens 8 --repeat 2", path);
    cr_expect_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect_not_null(strstr(output, "bench: hostile context 32: 2000 tok/s (0.500 ms/token, device)\n"), "%s", output);
    cr_expect_not_null(strstr(output, "| hostile | 32 | 2000.0 | 2000.0 | 2000.0 | 0.5000 |"), "%s", output);
    free(output);
}
