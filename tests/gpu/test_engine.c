// Whole-model runs on the GPU: both engines teacher-forced on a reference golden (matched bf16-KV
// profile, every tensor within the gate), the pure-fp32 comparison (reported), greedy tokens equal to
// the reference's, decode-graph determinism, and a first tok/s for both engines on qwen3-0.6b.
#include <criterion/criterion.h>
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

static void end_to_end(const char *preset, int prompt_length, int n_decode) {
    SKIP_WITHOUT_GPU();
    char *model = test_synth_checkpoint(preset, 0);
    ErrorMessage err;
    Checkpoint ck = {0};
    cr_assert_eq(checkpoint_open(model, &ck, &err), 0, "%s", err.text);
    char *dir = test_make_temp_dir("e2e");
    char *golden_bf16 = test_path_join(dir, "ref-bf16.h5"), *golden_f32 = test_path_join(dir, "ref-f32.h5");
    int T = prompt_length + n_decode;
    int32_t *tokens = malloc(T * sizeof *tokens), *tokens_f32 = malloc(T * sizeof *tokens);
    cr_assert(tokens && tokens_f32);
    make_reference_golden(&ck, KV_BF16, tokens, prompt_length, n_decode, golden_bf16);
    make_reference_golden(&ck, KV_F32, tokens_f32, prompt_length, n_decode, golden_f32);
    for (int kind = 0; kind < 2; kind++) {
        // Matched profile, teacher-forced on the reference's tokens: the gate.
        GpuEngine *e = gpu_engine_create(&ck, (GpuEngineKind)kind, KV_BF16, T, &err);
        cr_assert_not_null(e, "%s", err.text);
        char *out = test_path_join(dir, kind ? "cublas.h5" : "fused.h5");
        int32_t *forced = malloc(T * sizeof *forced);
        memcpy(forced, tokens, T * sizeof *forced);
        traced_run(e, gpu_step, &ck, gpu_engine_kind_name(kind), KV_BF16, forced, prompt_length, n_decode, 0, out);
        TraceDiff d = compare_traces(out, golden_bf16, GATE);
        fprintf(stderr, "%s %s matched (bf16 KV) vs reference: %d tensors, worst rel_l2 %.3g norm_max %.3g at %s\n", preset,
                gpu_engine_kind_name(kind), d.n_compared, d.worst_rel_l2, d.worst_norm_max, d.worst_where);
        gpu_engine_destroy(e);

        // Pure fp32 reference vs the engine's bf16 KV: the cost of the storage point, reported.
        e = gpu_engine_create(&ck, (GpuEngineKind)kind, KV_BF16, T, &err);
        cr_assert_not_null(e, "%s", err.text);
        memcpy(forced, tokens_f32, T * sizeof *forced);
        traced_run(e, gpu_step, &ck, gpu_engine_kind_name(kind), KV_BF16, forced, prompt_length, n_decode, 0, out);
        d = compare_traces(out, golden_f32, 0);
        fprintf(stderr, "%s %s vs pure fp32 reference: worst rel_l2 %.3g norm_max %.3g at %s\n", preset,
                gpu_engine_kind_name(kind), d.worst_rel_l2, d.worst_norm_max, d.worst_where);
        gpu_engine_destroy(e);

        // Greedy, untraced: the same tokens as the reference's greedy run (matched profile).
        e = gpu_engine_create(&ck, (GpuEngineKind)kind, KV_BF16, T, &err);
        cr_assert_not_null(e, "%s", err.text);
        memcpy(forced, tokens, prompt_length * sizeof *forced);
        for (int step = 0; step <= n_decode; step++) {
            int first = step == 0 ? 0 : prompt_length + step - 1, n = step == 0 ? prompt_length : 1;
            int32_t next;
            cr_assert_eq(gpu_engine_forward(e, forced + first, n, first, NULL, &next, &err), 0, "%s", err.text);
            if (step < n_decode) {
                cr_assert_eq(next, tokens[prompt_length + step], "%s %s greedy step %d: token %d, reference %d", preset,
                             gpu_engine_kind_name(kind), step, next, tokens[prompt_length + step]);
                forced[prompt_length + step] = next;
            }
        }
        gpu_engine_destroy(e);
        free(forced);
        free(out);
    }
    free(tokens); free(tokens_f32); free(golden_bf16); free(golden_f32); free(dir); free(model);
    checkpoint_close(&ck);
}

Test(engine, tiny_matches_reference, .timeout = 300) { end_to_end("tiny", 12, 24); }
Test(engine, small_matches_reference, .timeout = 300) { end_to_end("small", 12, 24); }
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
