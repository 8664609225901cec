// Whole-model runs on the GPU: both engines teacher-forced on a reference golden (matched bf16-KV
// profile, every tensor within the gate), the pure-fp32 comparison (reported), greedy tokens equal to
// the reference's, decode-graph determinism, and a first tok/s for both engines on qwen3-0.6b.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "golden_util.h"

#define GATE 1e-3

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// Greedy decoding of n_generate tokens with `engine` equals the reference's greedy run (golden_path,
// matched profile), except where the reference's own top-2 margin at the first difference is a near
// tie (<= 1e-3 of its largest logit): there either token is right and the runs legitimately fork.
static void check_greedy(GpuEngine *e, const char *preset, GpuEngineKind kind, const char *golden_path) {
    ErrorMessage err;
    TraceReader *g = trace_open(golden_path, &err);
    cr_assert_not_null(g, "%s", err.text);
    int n_tokens, prompt_length = trace_meta(g)->prompt_length, n_decode = trace_n_steps(g) - 1;
    const int32_t *golden_tokens = trace_tokens(g, &n_tokens);
    int32_t *tokens = malloc((size_t)n_tokens * sizeof *tokens), *generated = malloc((size_t)(n_decode + 1) * sizeof *generated);
    cr_assert(tokens && generated);
    memcpy(tokens, golden_tokens, (size_t)prompt_length * sizeof *tokens);
    Engine unforced = engine_wrap(gpu_engine_kind_engine(kind), e, KV_BF16);
    cr_assert_eq(run_traced_steps(&unforced, tokens, prompt_length, n_decode, 0, NULL, NULL, generated, &err), 0,
                 "%s", err.text);
    int agreed = 0;
    for (int step = 0; step <= n_decode; step++) {
        int32_t want;
        cr_assert_eq(trace_read_next_token(g, step, &want, &err), 0, "%s", err.text);
        if (generated[step] == want) { agreed++; continue; }
        float *logits;
        int rows, cols;
        cr_assert_eq(trace_read_tensor(g, step, -1, "logits", &logits, &rows, &cols, &err), 0, "%s", err.text);
        float top1 = -INFINITY, top2 = -INFINITY, largest = 0;
        for (int i = 0; i < cols; i++) {
            if (logits[i] > top1) { top2 = top1; top1 = logits[i]; }
            else if (logits[i] > top2) top2 = logits[i];
            if (fabsf(logits[i]) > largest) largest = fabsf(logits[i]);
        }
        free(logits);
        cr_assert(top1 - top2 <= 1e-3f * largest,
                  "%s %s greedy step %d: token %d, reference %d, whose top-2 margin %.3g is no near tie", preset,
                  gpu_engine_kind_name(kind), step, generated[step], want, top1 - top2);
        fprintf(stderr, "%s %s greedy: step %d is a near tie (margin %.3g), the runs fork there\n", preset,
                gpu_engine_kind_name(kind), step, top1 - top2);
        break;
    }
    fprintf(stderr, "%s %s greedy: %d of %d tokens equal the reference's\n", preset, gpu_engine_kind_name(kind), agreed,
            n_decode + 1);
    free(tokens);
    free(generated);
    trace_close(g);
}

// Accuracy on `n_decode` teacher-forced steps after a `prompt_length` prompt, and greedy agreement
// over 64 generated tokens, for both engines.
static void end_to_end(const char *preset, int prompt_length, int n_decode) {
    SKIP_WITHOUT_GPU();
    const int n_greedy = 64;
    char *model = test_synth_checkpoint(preset, 0);
    ErrorMessage err;
    Checkpoint ck = {0};
    cr_assert_eq(checkpoint_open(model, &ck, &err), 0, "%s", err.text);
    char *dir = test_make_temp_dir("e2e");
    char *golden_bf16 = test_path_join(dir, "ref-bf16.h5"), *golden_f32 = test_path_join(dir, "ref-f32.h5");
    char *golden_greedy = test_path_join(dir, "ref-greedy.h5"), *out = test_path_join(dir, "engine.h5");
    int32_t *tokens = malloc((size_t)(prompt_length + n_greedy) * sizeof *tokens);
    cr_assert_not_null(tokens);
    make_reference_golden(&ck, KV_BF16, tokens, prompt_length, n_decode, golden_bf16);
    make_reference_golden(&ck, KV_F32, tokens, prompt_length, n_decode, golden_f32);
    make_reference_golden(&ck, KV_BF16, tokens, prompt_length, n_greedy - 1, golden_greedy);
    int all_pass = 1;
    for (int kind = 0; kind < 2; kind++) {
        GpuEngine *e = gpu_engine_create(&ck, (GpuEngineKind)kind, KV_BF16, prompt_length + n_greedy, &err);
        cr_assert_not_null(e, "%s", err.text);
        char what[128];
        // The gate: matched profile, tokens teacher-forced and the KV cache storage-forced.
        gpu_traced_run(e, &ck, (GpuEngineKind)kind, KV_BF16, golden_bf16, 1, out);
        snprintf(what, sizeof what, "%s %s matched profile (bf16 KV, storage-forced)", preset, gpu_engine_kind_name(kind));
        all_pass &= compare_and_report(what, out, golden_bf16, GATE);
        // Reported: the same without storage forcing, and against the pure fp32 reference.
        gpu_traced_run(e, &ck, (GpuEngineKind)kind, KV_BF16, golden_bf16, 0, out);
        snprintf(what, sizeof what, "%s %s matched profile, not storage-forced", preset, gpu_engine_kind_name(kind));
        compare_and_report(what, out, golden_bf16, GATE);
        gpu_traced_run(e, &ck, (GpuEngineKind)kind, KV_BF16, golden_f32, 0, out);
        snprintf(what, sizeof what, "%s %s vs pure fp32 reference", preset, gpu_engine_kind_name(kind));
        compare_and_report(what, out, golden_f32, GATE);
        check_greedy(e, preset, (GpuEngineKind)kind, golden_greedy);
        gpu_engine_destroy(e);
    }
    cr_expect(all_pass, "%s: a tensor is outside the gate (see the lines above)", preset);
    free(tokens); free(golden_bf16); free(golden_f32); free(golden_greedy); free(out); free(dir); free(model);
    checkpoint_close(&ck);
}

Test(engine, tiny_matches_reference, .timeout = 300) { end_to_end("tiny", 12, 24); }
Test(engine, small_matches_reference, .timeout = 300) { end_to_end("small", 12, 24); }
Test(engine, tiny_eps_matches_reference, .timeout = 300) { end_to_end("tiny-eps", 12, 24); }
Test(engine, qwen3_0_6b_matches_reference, .timeout = 600) { end_to_end("qwen3-0.6b", 16, 32); }

// Decode tok/s (greedy, no trace) after a prompt of `prompt_length`, for `n_decode` tokens.
static double decode_tok_per_s(GpuEngine *e, int vocab, int prompt_length, int n_decode) {
    ErrorMessage err;
    int T = prompt_length + n_decode;
    int32_t *tokens = malloc(T * sizeof *tokens);
    cr_assert_not_null(tokens);
    for (int i = 0; i < prompt_length; i++) tokens[i] = (i * 7919) % vocab;
    int32_t next;
    cr_assert_eq(gpu_engine_forward(e, tokens, prompt_length, 0, NULL, &next, &err), 0, "%s", err.text);
    tokens[prompt_length] = next;
    double start = now();
    for (int s = 0; s < n_decode - 1; s++) {
        cr_assert_eq(gpu_engine_forward(e, tokens + prompt_length + s, 1, prompt_length + s, NULL, &next, &err), 0, "%s", err.text);
        tokens[prompt_length + s + 1] = next;
    }
    double seconds = now() - start;
    free(tokens);
    return (n_decode - 1) / seconds;
}

Test(engine, qwen3_0_6b_throughput, .timeout = 600) {
    SKIP_WITHOUT_GPU();
    char *model = test_synth_checkpoint("qwen3-0.6b", 0);
    ErrorMessage err;
    Checkpoint ck = {0};
    cr_assert_eq(checkpoint_open(model, &ck, &err), 0, "%s", err.text);
    double bytes = (double)checkpoint_weight_bytes(&ck);
    const int prompts[] = {16, 1024, 4096};
    for (int kind = 0; kind < 2; kind++) {
        GpuEngine *e = gpu_engine_create(&ck, (GpuEngineKind)kind, KV_BF16, 4096 + 512, &err);
        cr_assert_not_null(e, "%s", err.text);
        decode_tok_per_s(e, ck.config.vocab_size, 16, 8);  // warm-up: graph capture, cuBLAS handles
        for (int p = 0; p < 3; p++) {
            double rate = decode_tok_per_s(e, ck.config.vocab_size, prompts[p], 256);
            fprintf(stderr, "qwen3-0.6b %s: %.0f tok/s decoding from context %d (weights %.2f GB: %.2f TB/s of weights alone), %d launches/token\n",
                    gpu_engine_kind_name(kind), rate, prompts[p], bytes / 1e9, rate * bytes / 1e12,
                    gpu_engine_launches_per_token(e));
        }
        gpu_engine_destroy(e);
    }
    free(model);
    checkpoint_close(&ck);
}
