// The engine-generic decode benchmark (cli/engine_bench.h) and `fusecheck bench --engine`: an engine
// without hooks is measured through its forward (a real prefill to the context, then exactly
// tokens x repeat timed decode steps at that position after a warm-up), an engine with hooks
// through them (its own timer; bytes and bandwidth for a GPU engine), the report keeps the GPU
// engines' table as it was and says "n/a" and how a CPU engine was timed, and the CLI takes any
// registered engine, refuses an unknown one in one line and says when a GPU engine has no device.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/bench_report.h"
#include "../cli/engine_bench.h"
#include "../model/checkpoint.h"
#include "../reference/reference.h"
#include "test_support.h"

static Checkpoint checkpoint;
static char *model_dir;
static void open_tiny(void) {
    ErrorMessage err;
    model_dir = test_synth_checkpoint("tiny", 0);
    cr_assert_eq(checkpoint_open(model_dir, &checkpoint, &err), 0, "%s", err.text);
}
static void close_tiny(void) {
    checkpoint_close(&checkpoint);
    free(model_dir);
}

// ---- a spy around the reference: what the wall-clock path asks of an engine ----

#define SPY_MAX_POSITIONS 512
static struct {
    int decode_steps[SPY_MAX_POSITIONS];  // one-token forwards at each position
    int prefilled[SPY_MAX_POSITIONS];     // times each position was written by a multi-token forward
    int max_context;
} spy;

static void *spy_create(const Checkpoint *ck, EngineProfile profile, int max_context, ErrorMessage *err) {
    spy.max_context = max_context;
    return reference_engine_kind.create(ck, profile, max_context, err);
}

static int spy_forward(void *state, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                       int32_t *next_token, ErrorMessage *err) {
    cr_assert(position >= 0 && position + n_tokens <= SPY_MAX_POSITIONS);
    if (n_tokens == 1) spy.decode_steps[position]++;
    else
        for (int p = position; p < position + n_tokens; p++) spy.prefilled[p]++;
    return reference_engine_kind.forward(state, tokens, n_tokens, position, tap, next_token, err);
}

static void spy_destroy(void *state) { reference_engine_kind.destroy(state); }

static const EngineKind spy_kind = {
    .name = "spy",
    .capabilities = ENGINE_KV_F32 | ENGINE_KV_BF16,
    .default_kv_dtype = KV_F32,
    .create = spy_create,
    .forward = spy_forward,
    .destroy = spy_destroy,
};

Test(engine_bench, an_engine_without_hooks_is_timed_through_forward_after_a_real_prefill, .init = open_tiny,
     .fini = close_tiny) {
    memset(&spy, 0, sizeof spy);
    const int contexts[] = {8, 16, 12, 300};
    BenchResult results[4];
    BenchOptions options = {contexts, 4, 3, 2, 0, 1, NULL};
    ErrorMessage err;
    cr_assert_eq(bench_engine(&spy_kind, &checkpoint, &options, results, &err), 0, "%s", err.text);
    cr_expect_eq(spy.max_context, 301, "one engine for every context, sized for the largest + 1");
    // The cache is filled once, by prefill, up to the largest context; earlier fills are continued.
    for (int p = 0; p < SPY_MAX_POSITIONS; p++)
        cr_expect_eq(spy.prefilled[p], p < 300 ? 1 : 0, "position %d prefilled %d times", p, spy.prefilled[p]);
    for (int p = 0; p < SPY_MAX_POSITIONS; p++) {
        int measured = p == 8 || p == 16 || p == 12 || p == 300;
        // A warm-up of min(tokens, 8) = 3 steps, then tokens (3) x repeat (2) timed steps, all at the
        // context's position.
        cr_expect_eq(spy.decode_steps[p], measured ? 3 + 3 * 2 : 0, "position %d: %d decode steps", p,
                     spy.decode_steps[p]);
    }
    for (int i = 0; i < 4; i++) {
        const BenchResult *r = &results[i];
        cr_expect_str_eq(r->engine, "spy");
        cr_expect_eq(r->context, contexts[i]);
        cr_expect_eq(r->tokens, 3);
        cr_expect_eq(r->repeat, 2);
        cr_expect_eq(r->timing, BENCH_TIMING_WALL_CLOCK);
        cr_expect_eq(r->on_gpu, 0);
        cr_expect(r->tok_s_median > 0 && isfinite(r->tok_s_median), "%g", r->tok_s_median);
        cr_expect(r->tok_s_min <= r->tok_s_median && r->tok_s_median <= r->tok_s_max);
        cr_expect(r->ms_per_token_min > 0 && r->ms_per_token_min <= r->ms_per_token_median &&
                      r->ms_per_token_median <= r->ms_per_token_max,
                  "ms/token %g %g %g", r->ms_per_token_min, r->ms_per_token_median, r->ms_per_token_max);
        cr_expect_eq(r->bytes_per_token, 0, "a CPU engine has no bytes/token");
        cr_expect_eq(r->bandwidth_fraction, 0);
        cr_expect_eq(r->launches_per_token, -1, "the engine does not count launches");
        cr_expect_eq(r->n_kernels, 0);
    }
}

// ---- a hooked engine: the hooks, not forward, do the measurement ----

static struct {
    int prepared_context[8], n_prepared;
    int32_t prepared_token[8];
    int timed_steps, profiled;
} hooks;

static void *hooked_create(const Checkpoint *ck, EngineProfile profile, int max_context, ErrorMessage *err) {
    (void)ck; (void)profile; (void)max_context; (void)err;
    static int state;
    return &state;
}
static int hooked_forward(void *state, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                          int32_t *next_token, ErrorMessage *err) {
    (void)state; (void)tokens; (void)n_tokens; (void)position; (void)tap; (void)next_token;
    return fail(err, "forward must not be called when the engine has benchmark hooks");
}
static void hooked_destroy(void *state) { (void)state; }
static int hooked_prepare(void *state, int context, int32_t token, unsigned seed, ErrorMessage *err) {
    (void)state; (void)seed; (void)err;
    hooks.prepared_context[hooks.n_prepared] = context;
    hooks.prepared_token[hooks.n_prepared++] = token;
    return 0;
}
static int hooked_time(void *state, int n_steps, double *ms, ErrorMessage *err) {
    (void)state; (void)err;
    hooks.timed_steps += n_steps;
    *ms = 0.5 * n_steps;  // 2000 tok/s exactly
    return 0;
}
static int hooked_profile(void *state, BenchKernelTime *kernels, int max_kernels, int *n_kernels, ErrorMessage *err) {
    (void)state; (void)err;
    cr_assert(max_kernels >= 2);
    snprintf(kernels[0].name, sizeof kernels[0].name, "embed");
    kernels[0].calls_per_token = 1;
    kernels[0].us_per_token = 3.0;
    snprintf(kernels[1].name, sizeof kernels[1].name, "layer");
    kernels[1].calls_per_token = 2;
    kernels[1].us_per_token = 40.0;
    *n_kernels = 2;
    hooks.profiled++;
    return 0;
}
static int hooked_launches(const void *state) { (void)state; return 7; }

static const EngineKind hooked_kind = {
    .name = "hooked",
    .capabilities = ENGINE_NEEDS_GPU | ENGINE_KV_BF16,
    .default_kv_dtype = KV_BF16,
    .create = hooked_create,
    .forward = hooked_forward,
    .launches_per_token = hooked_launches,
    .destroy = hooked_destroy,
    .bench_prepare = hooked_prepare,
    .bench_time_decode = hooked_time,
    .bench_profile = hooked_profile,
};

Test(engine_bench, an_engine_with_hooks_is_timed_by_them_with_bytes_and_bandwidth_on_a_gpu, .init = open_tiny,
     .fini = close_tiny) {
    memset(&hooks, 0, sizeof hooks);
    const int contexts[] = {100, 40};
    BenchResult results[2];
    BenchOptions options = {contexts, 2, 16, 3, 1000.0, 1, NULL};
    ErrorMessage err;
    cr_assert_eq(bench_engine(&hooked_kind, &checkpoint, &options, results, &err), 0, "%s", err.text);
    cr_expect_eq(hooks.n_prepared, 2);
    cr_expect_eq(hooks.prepared_context[0], 100);
    cr_expect_eq(hooks.prepared_context[1], 40);
    cr_expect_eq(hooks.timed_steps, 2 * (8 + 3 * 16), "warm-up of min(tokens, 8) steps, then repeat x tokens");
    cr_expect_eq(hooks.profiled, 2);
    const ModelConfig *c = &checkpoint.config;
    double kv_per_position = 2.0 * c->num_hidden_layers * c->num_key_value_heads * c->head_dim * 2.0;  // K, V; bf16
    for (int i = 0; i < 2; i++) {
        const BenchResult *r = &results[i];
        cr_expect_eq(r->timing, BENCH_TIMING_DEVICE);
        cr_expect_eq(r->on_gpu, 1);
        cr_expect_float_eq(r->tok_s_median, 2000.0, 1e-9);
        cr_expect_float_eq(r->ms_per_token_median, 0.5, 1e-12);
        cr_expect_float_eq(r->bytes_per_token, (double)checkpoint_weight_bytes(&checkpoint) + kv_per_position * contexts[i], 1e-6);
        cr_expect_float_eq(r->achieved_gb_s, r->bytes_per_token * 2000.0 / 1e9, 1e-12);
        cr_expect_float_eq(r->bandwidth_fraction, r->achieved_gb_s / 1000.0, 1e-15);
        cr_expect_eq(r->launches_per_token, 7);
        cr_expect_eq(r->n_kernels, 2);
        cr_expect_str_eq(r->kernels[1].name, "layer");
    }
    // Without the breakdown, the profile hook is not called.
    options.breakdown = 0;
    hooks.profiled = 0;
    cr_assert_eq(bench_engine(&hooked_kind, &checkpoint, &options, results, &err), 0, "%s", err.text);
    cr_expect_eq(hooks.profiled, 0);
    cr_expect_eq(results[0].n_kernels, 0);
}

Test(engine_bench, bad_contexts_are_refused_before_the_engine_is_made, .init = open_tiny, .fini = close_tiny) {
    memset(&spy, 0, sizeof spy);
    const int contexts[] = {8, 0};
    BenchResult results[2];
    BenchOptions options = {contexts, 2, 1, 1, 0, 0, NULL};
    ErrorMessage err;
    cr_assert_eq(bench_engine(&spy_kind, &checkpoint, &options, results, &err), -1);
    cr_expect(strstr(err.text, "context 0 outside") != NULL, "%s", err.text);
    cr_expect_eq(spy.max_context, 0, "the engine was created");
}

// ---- the report ----

static BenchResult gpu_row(const char *engine, int context, double tok_s, int launches) {
    BenchResult r;
    memset(&r, 0, sizeof r);
    snprintf(r.engine, sizeof r.engine, "%s", engine);
    r.timing = BENCH_TIMING_DEVICE;
    r.on_gpu = 1;
    r.context = context;
    r.tokens = 64;
    r.repeat = 5;
    r.tok_s_median = r.tok_s_min = r.tok_s_max = tok_s;
    r.ms_per_token_median = r.ms_per_token_min = r.ms_per_token_max = 1000.0 / tok_s;
    r.weight_bytes = 1.2e9;
    r.kv_bytes = 1e7;
    r.bytes_per_token = 1.21e9;
    r.achieved_gb_s = 1.21 * tok_s;
    r.copy_gb_s = 4000;
    r.bandwidth_fraction = r.achieved_gb_s / 4000;
    r.launches_per_token = launches;
    return r;
}

Test(bench_report, the_gpu_engines_table_is_what_it_was) {
    BenchResult rows[2] = {gpu_row("fused", 1024, 1000.0, 114), gpu_row("cublas", 1024, 500.0, 340)};
    BenchContext context = {"NVIDIA H200", "AMD EPYC", "qwen3-0.6b", "0123456789abcdef", "abcdef012345", "2026-12-03", 4000};
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_not_null(out);
    bench_write_markdown(out, &context, rows, 2);
    fclose(out);
    // The format of the GPU-only bench before engines were generic, byte for byte.
    const char *expected =
        "GPU: NVIDIA H200; model: qwen3-0.6b (weights 0123456789abcdef); commit abcdef012345, 2026-12-03; device-to-device copy: 4000 GB/s\n\n"
        "| engine | context | tok/s (median) | min | max | ms/token | MB/token | GB/s | of copy bw | launches/token |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| fused | 1024 | 1000.0 | 1000.0 | 1000.0 | 1.0000 | 1210.0 | 1210 | 30.2% | 114 |\n"
        "| cublas | 1024 | 500.0 | 500.0 | 500.0 | 2.0000 | 1210.0 | 605 | 15.1% | 340 |\n"
        "\n| context | fused / cublas |\n| ---: | ---: |\n"
        "| 1024 | 2.00x |\n";
    cr_expect_str_eq(text, expected);
    free(text);
}

Test(bench_report, speedups_over_cublas_are_the_gpu_engines_only) {
    BenchResult rows[3] = {gpu_row("reference", 1024, 2000.0, -1), gpu_row("fused", 1024, 1000.0, 114),
                           gpu_row("cublas", 1024, 500.0, 340)};
    rows[0].on_gpu = 0;
    rows[0].timing = BENCH_TIMING_WALL_CLOCK;
    cr_expect_float_eq(bench_speedup(rows, 3, "fused", 1024), 2.0, 1e-12);
    cr_expect_eq(bench_speedup(rows, 3, "reference", 1024), 0, "a CPU engine's wall clock against CUDA events");
    cr_expect_eq(bench_speedup(rows, 3, "cublas", 1024), 0, "cublas over itself");
    BenchContext context = {"NVIDIA H200", "AMD EPYC", "tiny", "0123456789abcdef", "abcdef012345", "2026-12-03", 4000};
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_not_null(out);
    bench_write_markdown(out, &context, rows, 3);
    fclose(out);
    cr_expect(strstr(text, "GPU: NVIDIA H200; CPU: AMD EPYC; model: tiny"), "%s", text);
    cr_expect(strstr(text, "| context | fused / cublas |"), "%s", text);
    cr_expect_null(strstr(text, "reference / cublas"), "%s", text);
    free(text);
}

Test(bench_report, a_cpu_engine_has_na_bandwidth_and_says_how_it_was_timed) {
    BenchResult row = gpu_row("reference", 16, 250.0, -1);
    row.on_gpu = 0;
    row.timing = BENCH_TIMING_WALL_CLOCK;
    row.bytes_per_token = row.achieved_gb_s = row.bandwidth_fraction = 0;
    BenchContext context = {NULL, "AMD EPYC", "tiny", "0123456789abcdef", "abcdef012345", "2026-12-03", 0};
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_not_null(out);
    bench_write_markdown(out, &context, &row, 1);
    fclose(out);
    cr_expect(strstr(text, "CPU: AMD EPYC; model: tiny") == text, "%s", text);
    cr_expect_null(strstr(text, "GPU:"), "%s", text);
    cr_expect(strstr(text, "| reference | 16 | 250.0 | 250.0 | 250.0 | 4.0000 | n/a | n/a | n/a | n/a |\n"), "%s", text);
    cr_expect(strstr(text, "- reference: wall clock (CLOCK_MONOTONIC)"), "%s", text);
    free(text);
    char *json = bench_json_text(&context, &row, 1);
    cr_assert_not_null(json);
    cr_expect(strstr(json, "\"gpu\":\tnull"), "%s", json);
    cr_expect(strstr(json, "\"timing\":\t\"wall-clock\""), "%s", json);
    cr_expect(strstr(json, "\"bandwidth_fraction\":\tnull"), "%s", json);
    cr_expect(strstr(json, "\"launches_per_token\":\tnull"), "%s", json);
    free(json);
}

// ---- the command line ----

static int gpu_present(void) { return test_run_cli("devices", NULL) == 0; }

static int count_lines(const char *text) {
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    return lines;
}

// The tok/s of `engine` at `context` in a bench table (-1 when the row is missing).
static double table_tok_s(const char *output, const char *engine, int context) {
    char row[128];
    snprintf(row, sizeof row, "| %s | %d | ", engine, context);
    const char *at = strstr(output, row);
    return at ? strtod(at + strlen(row), NULL) : -1;
}

Test(bench_cli, the_reference_is_benchmarked_on_the_cpu) {
    char *dir = test_make_temp_dir("bench-reference");
    char *json_path = test_path_join(dir, "bench.json");
    char args[1024], *output;
    snprintf(args, sizeof args, "bench --engine reference --preset tiny --context 8,16 --tokens 2 --repeat 2 --quiet --json '%s'",
             json_path);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, 0, "exit %d:\n%s", status, output);
    for (int c = 8; c <= 16; c += 8) {
        double tok_s = table_tok_s(output, "reference", c);
        cr_expect(tok_s > 0 && isfinite(tok_s), "context %d: tok/s %g in:\n%s", c, tok_s, output);
    }
    cr_expect(strstr(output, "| n/a | n/a | n/a | n/a |"), "%s", output);
    cr_expect(strstr(output, "wall clock (CLOCK_MONOTONIC)"), "%s", output);
    cr_expect_null(strstr(output, "no CUDA device"), "a GPU call was made:\n%s", output);
    free(output);
    char *json = test_read_file(json_path, NULL);
    cr_expect(strstr(json, "\"engine\":\t\"reference\""), "%s", json);
    cr_expect(strstr(json, "\"timing\":\t\"wall-clock\""), "%s", json);
    free(json);
    free(json_path);
    free(dir);
}

Test(bench_cli, an_unknown_engine_is_refused_in_one_line) {
    char *output;
    int status = test_run_cli("bench --engine tpu --preset tiny", &output);
    cr_expect_eq(status, 2, "%s", output);
    cr_expect(strstr(output, "fusecheck bench: --engine: 'tpu' is not one of reference, fused, cublas, dataflow"), "%s", output);
    cr_expect_eq(count_lines(output), 1, "%s", output);
    free(output);
    status = test_run_cli("bench --engine reference,reference --preset tiny", &output);
    cr_expect_eq(status, 2, "%s", output);
    cr_expect(strstr(output, "named twice"), "%s", output);
    free(output);
}

Test(bench_cli, a_gpu_engine_without_a_device_says_so) {
    if (gpu_present()) cr_skip_test("a CUDA device is present");
    char *output;
    int status = test_run_cli("bench --engine reference,fused --preset tiny --context 8", &output);
    cr_expect_eq(status, 4, "%s", output);
    cr_expect(strstr(output, "fusecheck bench: engine fused needs a GPU: no CUDA device found"), "%s", output);
    cr_expect_eq(count_lines(output), 1, "%s", output);
    free(output);
    status = test_run_cli("bench --preset tiny", &output);
    cr_expect_eq(status, 4, "%s", output);
    cr_expect(strstr(output, "--engine all (fused, cublas, dataflow) needs a GPU: no CUDA device found"), "%s", output);
    cr_expect_eq(count_lines(output), 1, "%s", output);
    free(output);
}

// An engine plugin (examples/engine-plugin, built into $FUSECHECK_BUILD/plugins) is benched like any
// engine, and its KEY=VALUE options do not split the --engine list.
Test(bench_cli, an_engine_plugin_with_options_and_the_reference_in_one_list) {
    const char *build = getenv("FUSECHECK_BUILD");
    cr_assert_not_null(build, "FUSECHECK_BUILD is not set (run the tests through ctest)");
    char args[2048], *output;
    snprintf(args, sizeof args,
             "bench --engine 'plugin:%s/plugins/libqwen3_cpu_engine.so:verbose=0,reference' --preset tiny --context 8 "
             "--tokens 2 --repeat 1 --quiet",
             build);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, 0, "exit %d:\n%s", status, output);
    double plugin = table_tok_s(output, "qwen3-cpu", 8), reference = table_tok_s(output, "reference", 8);
    cr_expect(plugin > 0 && isfinite(plugin), "%s", output);
    cr_expect(reference > 0 && isfinite(reference), "%s", output);
    free(output);
}
