// The engine interface (model/engine.h) and its registry (cli/engine_registry.c): the registry knows
// every engine by name, the reference behind the interface computes exactly what calling it directly
// does, a failing tap stops a forward with its own message, and `run --engine reference` reproduces a
// committed golden.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/engine_registry.h"
#include "../golden/trace.h"
#include "../golden/trace_run.h"
#include "../model/checkpoint.h"
#include "../model/engine.h"
#include "../reference/reference.h"
#include "test_support.h"

Test(engine_registry, finds_every_engine_by_name) {
    const char *names[] = {"reference", "fused", "cublas", "dataflow"};
    for (int i = 0; i < 4; i++) {
        ErrorMessage err = {{0}};
        const EngineKind *kind = engine_find(names[i], &err);
        cr_assert_not_null(kind, "%s: %s", names[i], err.text);
        cr_expect_str_eq(kind->name, names[i]);
        cr_expect(kind->create && kind->forward && kind->destroy, "%s lacks a required function", names[i]);
        cr_expect(kind->capabilities & ENGINE_KV_BF16, "%s", names[i]);
        // The dataflow kernel keeps its cache in bf16 only; the others both ways.
        cr_expect_eq((kind->capabilities & ENGINE_KV_F32) != 0, strcmp(names[i], "dataflow") != 0, "%s", names[i]);
        // A kind offers force_kv exactly when it says it can.
        cr_expect_eq(kind->force_kv != NULL, (kind->capabilities & ENGINE_CAN_FORCE_KV) != 0, "%s", names[i]);
        cr_expect_eq((kind->capabilities & ENGINE_NEEDS_GPU) != 0, strcmp(names[i], "reference") != 0, "%s", names[i]);
        // Benchmark hooks come as a pair; the GPU engines time themselves (CUDA events), the reference is
        // timed through forward; only the fused engine has a per-kernel profile.
        cr_expect_eq(kind->bench_prepare != NULL, kind->bench_time_decode != NULL, "%s", names[i]);
        cr_expect_eq(engine_kind_has_bench_hooks(kind), strcmp(names[i], "reference") != 0, "%s", names[i]);
        cr_expect_eq(kind->bench_profile != NULL, strcmp(names[i], "fused") == 0, "%s", names[i]);
    }
    size_t n;
    engine_list(&n);
    cr_expect_eq(n, 4);
    char known[128];
    cr_expect_str_eq(engine_names(known, sizeof known, "|"), "reference|fused|cublas|dataflow");
}

Test(engine_registry, refuses_an_unknown_name_with_one_line) {
    ErrorMessage err = {{0}};
    cr_assert_null(engine_find("tpu", &err));
    cr_expect_str_eq(err.text, "unknown engine 'tpu' (known: reference, fused, cublas, dataflow)");
    cr_expect_null(strchr(err.text, '\n'));
}

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

// The tap the reference used before the interface: straight into the writer's current step.
static int write_directly(void *writer, int layer, const char *name, const float *data, int rows, int cols,
                          ErrorMessage *err) {
    return trace_write_tensor(writer, layer, name, data, rows, cols, err);
}

// The step convention written out by hand over reference_forward (no Engine, no run_traced_steps):
// what `fusecheck golden` did before the interface.
static void write_direct_trace(KvDtype kv, const int32_t *prompt, int prompt_length, int n_decode, const char *path) {
    ErrorMessage err;
    TraceMeta meta;
    cr_assert_eq(trace_meta_for_checkpoint(&meta, &checkpoint, "reference", kv, prompt_length, &err), 0, "%s", err.text);
    TraceWriter *w = trace_writer_open(path, &meta, &err);
    free(meta.model_config);
    cr_assert_not_null(w, "%s", err.text);
    Reference *ref = reference_create(&checkpoint, kv, prompt_length + n_decode, 0, &err);
    cr_assert_not_null(ref, "%s", err.text);
    int32_t tokens[64];
    memcpy(tokens, prompt, (size_t)prompt_length * sizeof *tokens);
    EngineTap tap = {w, write_directly};
    for (int step = 0; step <= n_decode; step++) {
        int first = step == 0 ? 0 : prompt_length + step - 1, n = step == 0 ? prompt_length : 1;
        int32_t next;
        cr_assert_eq(trace_begin_step(w, step, first, n, &err), 0, "%s", err.text);
        cr_assert_eq(reference_forward(ref, tokens + first, n, first, &tap, &next, &err), 0, "%s", err.text);
        cr_assert_eq(trace_write_next_token(w, next, &err), 0, "%s", err.text);
        if (step < n_decode) tokens[prompt_length + step] = next;
    }
    cr_assert_eq(trace_write_tokens(w, tokens, prompt_length + n_decode, &err), 0, "%s", err.text);
    cr_assert_eq(trace_writer_close(w, &err), 0, "%s", err.text);
    reference_destroy(ref);
}

// Every tensor and next_token of every step, and the tokens, equal bit for bit.
static void expect_identical_traces(const char *path_a, const char *path_b) {
    ErrorMessage err;
    TraceReader *a = trace_open(path_a, &err), *b = trace_open(path_b, &err);
    cr_assert(a && b, "%s", err.text);
    cr_assert_eq(trace_n_steps(a), trace_n_steps(b));
    int n_tensors = 0;
    for (int step = 0; step < trace_n_steps(a); step++) {
        cr_assert_eq(trace_n_layers(a, step), trace_n_layers(b, step));
        for (int layer = -1; layer < trace_n_layers(a, step); layer++) {
            int n_names = layer < 0 ? TRACE_N_STEP_TENSORS : TRACE_N_LAYER_TENSORS;
            for (int i = 0; i < n_names; i++) {
                const char *name = layer < 0 ? TRACE_STEP_TENSORS[i] : TRACE_LAYER_TENSORS[i];
                if (!strcmp(name, "next_token")) continue;  // an int, compared below
                float *x, *y;
                int xr, xc, yr, yc;
                cr_assert_eq(trace_read_tensor(a, step, layer, name, &x, &xr, &xc, &err), 0, "%s", err.text);
                cr_assert_eq(trace_read_tensor(b, step, layer, name, &y, &yr, &yc, &err), 0, "%s", err.text);
                cr_assert(xr == yr && xc == yc, "step %d layer %d %s: shapes differ", step, layer, name);
                cr_expect_eq(memcmp(x, y, (size_t)xr * xc * sizeof *x), 0, "step %d layer %d %s differs", step, layer,
                             name);
                free(x);
                free(y);
                n_tensors++;
            }
        }
        int32_t ta, tb;
        cr_assert_eq(trace_read_next_token(a, step, &ta, &err), 0, "%s", err.text);
        cr_assert_eq(trace_read_next_token(b, step, &tb, &err), 0, "%s", err.text);
        cr_expect_eq(ta, tb, "step %d next_token", step);
    }
    int na, nb;
    const int32_t *ka = trace_tokens(a, &na), *kb = trace_tokens(b, &nb);
    cr_assert_eq(na, nb);
    cr_expect_eq(memcmp(ka, kb, (size_t)na * sizeof *ka), 0, "tokens differ");
    cr_expect_gt(n_tensors, 0);
    trace_close(a);
    trace_close(b);
}

static void interface_equals_direct(KvDtype kv) {
    static const int32_t prompt[] = {3, 141, 59, 26, 5, 35, 89, 79, 32, 38, 46, 26};
    const int prompt_length = 12, n_decode = 8;
    ErrorMessage err;
    char *dir = test_make_temp_dir("engine-iface");
    char *direct = test_path_join(dir, "direct.h5"), *through = test_path_join(dir, "interface.h5");
    write_direct_trace(kv, prompt, prompt_length, n_decode, direct);
    const EngineKind *kind = engine_find("reference", &err);
    cr_assert_not_null(kind, "%s", err.text);
    Engine *engine = engine_create(kind, &checkpoint, (EngineProfile){kv}, prompt_length + n_decode, &err);
    cr_assert_not_null(engine, "%s", err.text);
    TraceMeta meta;
    cr_assert_eq(trace_meta_for_checkpoint(&meta, &checkpoint, engine_name(engine), kv, prompt_length, &err), 0, "%s",
                 err.text);
    int32_t tokens[20];
    memcpy(tokens, prompt, sizeof prompt);
    cr_assert_eq(write_traced_run(engine, &meta, tokens, prompt_length, n_decode, 0, NULL, through, &err), 0, "%s",
                 err.text);
    free(meta.model_config);
    engine_destroy(engine);
    expect_identical_traces(through, direct);
    free(direct);
    free(through);
    free(dir);
}

Test(engine_interface, reference_through_it_is_bit_identical_kv_f32, .init = open_tiny, .fini = close_tiny) {
    interface_equals_direct(KV_F32);
}
Test(engine_interface, reference_through_it_is_bit_identical_kv_bf16, .init = open_tiny, .fini = close_tiny) {
    interface_equals_direct(KV_BF16);
}

// A tap that accepts `allowed` tensors, then refuses.
typedef struct {
    int calls, allowed;
    char last[32];
} RefusingTap;
static int refuse_after(void *context, int layer, const char *name, const float *data, int rows, int cols,
                        ErrorMessage *err) {
    (void)data;
    RefusingTap *t = context;
    t->calls++;
    snprintf(t->last, sizeof t->last, "%s", name);
    if (t->calls > t->allowed) return fail(err, "tap refused layer %d %s [%d, %d]", layer, name, rows, cols);
    return 0;
}

Test(engine_interface, a_failing_tap_stops_the_forward_with_its_message, .init = open_tiny, .fini = close_tiny) {
    ErrorMessage err = {{0}};
    Engine *engine = engine_create(&reference_engine_kind, &checkpoint, (EngineProfile){KV_F32}, 8, &err);
    cr_assert_not_null(engine, "%s", err.text);
    const int32_t tokens[] = {1, 2, 3};
    int32_t next;
    // embed, then layer 0's attn_norm, q: the third tensor is refused, and nothing after it is offered.
    RefusingTap refusing = {0, 2, ""};
    EngineTap tap = {&refusing, refuse_after};
    cr_assert_eq(engine_forward(engine, tokens, 3, 0, &tap, &next, &err), -1);
    cr_expect_str_eq(err.text, "tap refused layer 0 q [3, 64]");
    cr_expect_eq(refusing.calls, 3);
    // Untraced, the same engine still runs (a NULL tap takes nothing).
    cr_expect_eq(engine_forward(engine, tokens, 3, 0, NULL, &next, &err), 0, "%s", err.text);
    engine_destroy(engine);
}

Test(engine_interface, reference_cannot_force_kv_and_says_so, .init = open_tiny, .fini = close_tiny) {
    ErrorMessage err = {{0}};
    Engine *engine = engine_create(&reference_engine_kind, &checkpoint, (EngineProfile){KV_BF16}, 8, &err);
    cr_assert_not_null(engine, "%s", err.text);
    float kv[64] = {0};
    cr_expect_eq(engine_force_kv(engine, 0, kv, kv, 1, &err), -1);
    cr_expect_str_eq(err.text, "engine reference cannot force its KV cache");
    cr_expect_eq(engine_launches_per_token(engine), 0);
    engine_destroy(engine);
}

// `fusecheck run --engine reference` on a committed golden: the reference teacher-forced on its own
// tokens reproduces it (the pipeline's self-check), compared at 1e-6 as the committed goldens are.
static void run_reference_on_committed(const char *kv) {
    char *model = test_synth_checkpoint("tiny", 0);
    char *dir = test_make_temp_dir("run-reference");
    char *out = test_path_join(dir, "run.h5");
    char args[4096], *output;
    snprintf(args, sizeof args, "run --engine reference --model '%s' --golden golden/tiny-kv-%s.h5 --kv-dtype %s --out '%s' --quiet",
             model, kv, kv, out);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect_not_null(strstr(output, "engine reference"), "%s", output);
    cr_expect_null(strstr(output, "launches"), "%s", output);
    free(output);
    snprintf(args, sizeof args, "compare '%s' golden/tiny-kv-%s.h5 --max-rel-l2 1e-6 --max-norm-max 1e-6", out, kv);
    int status = test_run_cli(args, &output);
    cr_expect_eq(status, 0, "run --engine reference drifted from golden/tiny-kv-%s.h5:\n%s", kv, output);
    free(output);
    free(out);
    free(dir);
    free(model);
}

Test(engine_interface, run_engine_reference_reproduces_a_committed_golden_kv_f32) { run_reference_on_committed("f32"); }
Test(engine_interface, run_engine_reference_reproduces_a_committed_golden_kv_bf16) { run_reference_on_committed("bf16"); }

Test(engine_interface, run_refuses_an_unknown_engine_with_one_line) {
    char *output;
    int status = test_run_cli("run --engine tpu --model /nonexistent --golden golden/tiny-kv-f32.h5 --out /tmp/never.h5",
                              &output);
    cr_expect_eq(status, 2);
    cr_expect_str_eq(output, "fusecheck run: --engine: 'tpu' is not one of reference, fused, cublas, dataflow\n");
    free(output);
}
