// Bad engine plugins (tests/plugins/hostile_plugin.c, one library per defect): each is one line on
// stderr naming the plugin and what is wrong, exit 2, and no trace (nor its temporary file) left at
// the output path. Every tapped tensor is checked before it reaches the trace writer.
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../golden/trace.h"
#include "test_support.h"

static char *model_dir;
static char *out_dir;

static void setup(void) {
    model_dir = test_synth_checkpoint("tiny", 0);  // the committed tiny goldens' weights
    out_dir = test_make_temp_dir("plugin-hostile");
}
static void teardown(void) {
    free(model_dir);
    free(out_dir);
}

// build/plugins/libhostile_CASE.so
static void plugin_path(const char *case_name, char *out, size_t size) {
    const char *build = getenv("FUSECHECK_BUILD");
    cr_assert_not_null(build, "FUSECHECK_BUILD is not set (run the tests through ctest)");
    snprintf(out, size, "%s/plugins/libhostile_%s.so", build, case_name);
    cr_assert_eq(access(out, R_OK), 0, "%s is not built", out);
}

// Names in out_dir (a trace or a temporary one would show here).
static int n_files_left(void) {
    DIR *dir = opendir(out_dir);
    cr_assert_not_null(dir);
    int n = 0;
    for (struct dirent *entry; (entry = readdir(dir));)
        if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) n++;
    closedir(dir);
    return n;
}

// `fusecheck run` of plugin `spec_tail` (after "plugin:PATH") on the tiny f32 golden; returns the exit
// status and its output in *output.
static int run_plugin(const char *case_name, const char *spec_tail, char **output) {
    char path[1024], args[4096];
    plugin_path(case_name, path, sizeof path);
    snprintf(args, sizeof args,
             "run --engine 'plugin:%s%s' --model '%s' --golden golden/tiny-kv-f32.h5 --out '%s/trace.h5' --kv-dtype f32 "
             "--quiet",
             path, spec_tail, model_dir, out_dir);
    return test_run_cli(args, output);
}

// Runs the case and checks exit 2, exactly `expected` after "fusecheck run: engine plugin PATH" as the
// whole output (one line), and an empty output directory.
static void expect_refused(const char *case_name, const char *spec_tail, const char *expected) {
    char *output = NULL, path[1024], line[4096];
    plugin_path(case_name, path, sizeof path);
    int status = run_plugin(case_name, spec_tail, &output);
    snprintf(line, sizeof line, "fusecheck run: engine plugin %s%s\n", path, expected);
    cr_expect_eq(status, 2, "%s: exit %d: %s", case_name, status, output);
    cr_expect_str_eq(output, line, "%s", case_name);
    cr_expect_eq(n_files_left(), 0, "%s left a file in %s", case_name, out_dir);
    free(output);
}

TestSuite(plugin_hostile, .init = setup, .fini = teardown);

Test(plugin_hostile, a_well_formed_plugin_writes_its_trace) {
    char *output = NULL;
    cr_assert_eq(run_plugin("well_formed", "", &output), 0, "%s", output);
    cr_expect_not_null(strstr(output, "engine hostile, 12 prompt tokens + 8 decode steps"), "%s", output);
    cr_expect_eq(n_files_left(), 1);
    free(output);
}

Test(plugin_hostile, declared_omissions_reach_the_trace) {
    char *output = NULL, *trace_path = test_path_join(out_dir, "trace.h5");
    cr_assert_eq(run_plugin("omits_mlp", "", &output), 0, "%s", output);
    ErrorMessage err;
    TraceReader *trace = trace_open(trace_path, &err);
    cr_assert_not_null(trace, "%s", err.text);
    const TraceMeta *meta = trace_meta(trace);
    cr_expect_str_eq(meta->producer, "hostile");
    cr_assert_eq(meta->n_omitted, 3);
    cr_expect_str_eq(meta->omitted[0], "gate");
    cr_expect_str_eq(meta->omitted[1], "up");
    cr_expect_str_eq(meta->omitted[2], "act");
    trace_close(trace);
    free(trace_path);
    free(output);
}

Test(plugin_hostile, missing_symbol) {
    expect_refused("missing_symbol", "",
                   ": missing symbol fusecheck_engine_forward (every engine plugin exports it: docs/ENGINE_ABI.md)");
}

Test(plugin_hostile, wrong_abi_version) {
    expect_refused("wrong_abi", "",
                   ": ABI version 2, but this fusecheck speaks version 1 (rebuild it against this fusecheck's "
                   "include/fusecheck/engine.h)");
}

Test(plugin_hostile, segfault_in_forward_removes_the_partial_trace) {
    char *output = NULL, path[1024], prefix[2048];
    plugin_path("segfault_in_forward", path, sizeof path);
    int status = run_plugin("segfault_in_forward", "", &output);
    cr_expect_eq(status, 2, "exit %d: %s", status, output);
    // The writer had created its temporary file when the plugin crashed: the report removes it.
    snprintf(prefix, sizeof prefix,
             "fusecheck run: engine plugin %s crashed (SIGSEGV) during forward, removed %s/trace.h5.tmp-", path, out_dir);
    cr_expect_eq(strncmp(output, prefix, strlen(prefix)), 0, "%s", output);
    cr_expect_eq(strchr(output, '\n'), output + strlen(output) - 1, "not one line: %s", output);
    cr_expect_eq(n_files_left(), 0, "a trace or its temporary file is left in %s", out_dir);
    free(output);
}

Test(plugin_hostile, stack_overflow_in_forward) {
    // The report runs on its own signal stack: the plugin used all of the thread's.
    char *output = NULL, path[1024], prefix[2048];
    plugin_path("stack_overflow_in_forward", path, sizeof path);
    int status = run_plugin("stack_overflow_in_forward", "", &output);
    cr_expect_eq(status, 2, "exit %d: %s", status, output);
    snprintf(prefix, sizeof prefix, "fusecheck run: engine plugin %s crashed (SIGSEGV) during forward, removed ", path);
    cr_expect_eq(strncmp(output, prefix, strlen(prefix)), 0, "%s", output);
    cr_expect_eq(n_files_left(), 0);
    free(output);
}

Test(plugin_hostile, abort_in_create) {
    expect_refused("abort_in_create", "", " crashed (SIGABRT) during create");
}

Test(plugin_hostile, wrong_tap_shape) {
    // The plugin ignores the refusal and goes on tapping and returns success: the run fails anyway.
    expect_refused("wrong_tap_shape", "",
                   ": tapped 'q' of layer 0 as [12, 63], expected [12, 64] (n_tokens x num_attention_heads*head_dim, "
                   "golden/FORMAT.md)");
}

Test(plugin_hostile, tap_of_an_unknown_name) {
    expect_refused("unknown_tap_name", "",
                   ": tapped an unknown tensor 'attn_scores' (layer 0): golden/FORMAT.md names embed, attn_norm, q, "
                   "k, v, attn, attn_out, resid_attn, mlp_norm, gate, up, act, mlp_out, resid_mlp, final_norm, logits");
}

Test(plugin_hostile, declares_k_omitted) {
    expect_refused("omits_k", "",
                   ": declares omitted: 'k' is a contract checkpoint (resid_mlp, k, v, logits, next_token, embed): it "
                   "may never be omitted or allowed missing");
}

Test(plugin_hostile, a_built_in_engine_name) {
    expect_refused("builtin_name", "",
                   ": engine name 'fused' is a built-in engine's: traces it writes would claim to be that engine's");
}

Test(plugin_hostile, half_of_the_benchmark_hooks) {
    expect_refused("bench_half", "",
                   ": exports fusecheck_engine_bench_prepare but not fusecheck_engine_bench_time_decode (both or "
                   "neither)");
}

Test(plugin_hostile, out_of_range_next_token) {
    expect_refused("bad_token", "", ": forward returned next token 256, outside the vocabulary [0, 256)");
    expect_refused("well_formed", ":next_token=-1",
                   ": forward returned next token -1, outside the vocabulary [0, 256) (-1 is for logits that are all "
                   "NaN, and this call tapped none such)");
}

Test(plugin_hostile, failed_create_passes_its_reason_on_one_line) {
    expect_refused("fails_create", "", ": create failed: weights rejected: line two of the reason");
    expect_refused("well_formed", ":color=red", ": create failed: unknown option");
}

// Each shape rule of golden/FORMAT.md, one tensor at a time (tiny: hidden 64, 4 heads and 2 kv heads
// of 16, intermediate 192, vocab 256, 2 layers; the prefill has 12 tokens).
Test(plugin_hostile, every_tap_rule) {
    const struct {
        const char *options, *message;
    } cases[] = {
        {":tap_name=k,tap_layer=1,tap_rows=12,tap_cols=64",
         ": tapped 'k' of layer 1 as [12, 64], expected [12, 32] (n_tokens x num_key_value_heads*head_dim, "
         "golden/FORMAT.md)"},
        {":tap_name=gate,tap_layer=0,tap_rows=11,tap_cols=192",
         ": tapped 'gate' of layer 0 as [11, 192], expected [12, 192] (n_tokens x intermediate_size, golden/FORMAT.md)"},
        {":tap_name=logits,tap_layer=-1,tap_rows=12,tap_cols=256",
         ": tapped 'logits' as [12, 256], expected [1, 256] (1 (last row) x vocab_size, golden/FORMAT.md)"},
        {":tap_name=resid_mlp,tap_layer=2,tap_rows=12,tap_cols=64",
         ": tapped 'resid_mlp' of layer 2, outside the model's layers [0, 2)"},
        {":tap_name=v,tap_layer=-1,tap_rows=12,tap_cols=32",
         ": tapped 'v' of layer -1, outside the model's layers [0, 2)"},
        {":tap_name=final_norm,tap_layer=0,tap_rows=1,tap_cols=64",
         ": tapped 'final_norm' with layer 0: a step tensor takes layer -1"},
        {":tap_name=next_token,tap_layer=-1,tap_rows=1,tap_cols=1",
         ": tapped 'next_token': it is forward's result, not a tensor to tap"},
        {":tap_name=attn,tap_layer=0,tap_rows=12,tap_cols=64,tap_data=null", ": tapped 'attn' with no data"},
        // A valid tensor tapped twice: the trace writer's own rule, its message.
        {":tap_name=embed,tap_layer=-1,tap_rows=12,tap_cols=64", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].message) {
            expect_refused("well_formed", cases[i].options, cases[i].message);
            continue;
        }
        char *output = NULL, expected[2048];
        cr_expect_eq(run_plugin("well_formed", cases[i].options, &output), 2, "%s", output);
        snprintf(expected, sizeof expected, "fusecheck run: %s/trace.h5: /step_0000/embed written twice\n", out_dir);
        cr_expect_str_eq(output, expected);
        cr_expect_eq(n_files_left(), 0);
        free(output);
    }
}

Test(plugin_hostile, bad_specs) {
    char *output = NULL;
    cr_expect_eq(test_run_cli("run --engine plugin:/nonexistent/libx.so --model x --golden g --out /tmp/x.h5", &output), 2);
    cr_expect_str_eq(output, "fusecheck run: engine plugin /nonexistent/libx.so: no such file\n");
    free(output);
    cr_expect_eq(test_run_cli("run --engine plugin:golden/FORMAT.md --model x --golden g --out /tmp/x.h5", &output), 2);
    const char *refused = "fusecheck run: engine plugin golden/FORMAT.md: cannot load: ";
    cr_expect_eq(strncmp(output, refused, strlen(refused)), 0, "%s", output);
    free(output);
    char path[1024], args[2048];
    plugin_path("well_formed", path, sizeof path);
    const struct {
        const char *tail, *message;
    } cases[] = {
        {":", "': nothing after the ':' that starts the options (KEY=VALUE,...)"},
        {":verbose", "': option 'verbose' is not KEY=VALUE (KEY 1..63 of A-Z a-z 0-9 _ . -)"},
        {":a=1,,b=2", "': option '' is not KEY=VALUE (KEY 1..63 of A-Z a-z 0-9 _ . -)"},
        {":a b=1", "': option 'a b=1' is not KEY=VALUE (KEY 1..63 of A-Z a-z 0-9 _ . -)"},
        {":a=1,a=2", "': option 'a' is given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "generate --engine 'plugin:%s%s' --model x", path, cases[i].tail);
        char expected[4096];
        snprintf(expected, sizeof expected, "fusecheck generate: --engine 'plugin:%s%s%s\n", path, cases[i].tail,
                 cases[i].message);
        cr_expect_eq(test_run_cli(args, &output), 2, "%s", output);
        cr_expect_str_eq(output, expected);
        free(output);
    }
}

Test(plugin_hostile, segfault_during_bench_removes_the_synthesized_model) {
    char *output = NULL, path[1024], args[2048], expected[4096];
    plugin_path("segfault_in_forward", path, sizeof path);
    snprintf(args, sizeof args, "bench --preset tiny --engine 'plugin:%s' --context 16 --tokens 2 --repeat 1", path);
    int status = test_run_cli(args, &output);
    cr_expect_eq(status, 2, "exit %d: %s", status, output);
    // "fusecheck bench: synthesizing tiny into DIR", then the crash's line naming DIR as removed.
    const char *said = strstr(output, "synthesizing tiny into ");
    cr_assert_not_null(said, "%s", output);
    char dir[512];
    cr_assert_eq(sscanf(said, "synthesizing tiny into %511s", dir), 1, "%s", output);
    snprintf(expected, sizeof expected,
             "fusecheck bench: engine plugin %s crashed (SIGSEGV) during forward, removed %s\n", path, dir);
    size_t n = strlen(output), m = strlen(expected);
    cr_expect(n >= m && strcmp(output + n - m, expected) == 0, "the last line is not \"%s\": %s", expected, output);
    cr_expect_neq(access(dir, F_OK), 0, "%s is left behind", dir);
    free(output);
}
