// A long run: 8,192 greedy tokens with a GPU engine (fused, dataflow) on qwen3-0.6b. Device memory
// must not grow after warm-up, host memory hardly; at sampled positions the engine's logits, after thousands
// of its own decode steps, must agree with the reference's logits for the same tokens (a prefill of
// all of them) within the gate, and the next token must agree unless the reference's top two are
// a near tie. The reference's KV cache is not storage-forced here: at long context one flipped bf16
// value is diluted over thousands of positions.
#include <criterion/criterion.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <unistd.h>

#include "../../compare/metrics.h"
#include "golden_util.h"

#define GATE 1e-3
#define PROMPT_LENGTH 16
#define CONTEXT 8192

static double resident_megabytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f && fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
    if (f) fclose(f);
    return resident * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static void long_run(GpuEngineKind kind) {
    const char *engine = gpu_engine_kind_name(kind);
    char *model = test_synth_checkpoint("qwen3-0.6b", 0);
    ErrorMessage err;
    Checkpoint ck = {0};
    cr_assert_eq(checkpoint_open(model, &ck, &err), 0, "%s", err.text);
    int vocab = ck.config.vocab_size;
    int32_t *tokens = malloc((CONTEXT + 1) * sizeof *tokens);
    float *engine_logits[3];
    const int samples[3] = {1023, 4095, CONTEXT - 1};  // positions whose step's logits are compared
    for (int i = 0; i < 3; i++) cr_assert_not_null(engine_logits[i] = malloc((size_t)vocab * sizeof(float)));
    cr_assert_not_null(tokens);
    random_prompt(tokens, PROMPT_LENGTH, vocab, 1);

    GpuEngine *e = gpu_engine_create(&ck, kind, KV_BF16, CONTEXT, &err);
    cr_assert_not_null(e, "%s", err.text);
    int32_t next;
    cr_assert_eq(gpu_engine_forward(e, tokens, PROMPT_LENGTH, 0, NULL, &next, &err), 0, "%s", err.text);
    tokens[PROMPT_LENGTH] = next;
    size_t free_warm = 0, free_end = 0, total;
    double rss_warm = 0;
    for (int position = PROMPT_LENGTH; position < CONTEXT; position++) {
        cr_assert_eq(gpu_engine_forward(e, &tokens[position], 1, position, NULL, &next, &err), 0, "position %d: %s",
                     position, err.text);
        tokens[position + 1] = next;
        if (position == PROMPT_LENGTH + 32) {  // the graph is captured, every buffer allocated
            CUDA_ASSERT(cudaMemGetInfo(&free_warm, &total));
            rss_warm = resident_megabytes();
        }
        for (int i = 0; i < 3; i++)
            if (position == samples[i]) cr_assert_eq(gpu_engine_logits(e, engine_logits[i], &err), 0, "%s", err.text);
    }
    CUDA_ASSERT(cudaMemGetInfo(&free_end, &total));
    double rss_end = resident_megabytes();
    fprintf(stderr, "long run (%s): %d tokens; device free memory %.1f MB after warm-up, %.1f MB at the end; host "
                    "RSS %.1f MB -> %.1f MB\n",
            engine, CONTEXT - PROMPT_LENGTH, free_warm / 1e6, free_end / 1e6, rss_warm, rss_end);
    cr_expect_eq(free_end, free_warm, "device memory grew by %zd bytes", (ssize_t)(free_warm - free_end));
    cr_expect_lt(rss_end - rss_warm, 64.0, "host memory grew by %.1f MB", rss_end - rss_warm);
    gpu_engine_destroy(e);

    // The reference sees the same tokens: a prefill of positions 0..S gives the logits of step S.
    Tolerances tol = tolerances_default();
    tol.max_rel_l2 = tol.max_norm_max = GATE;
    for (int i = 0; i < 3; i++) {
        int n = samples[i] + 1;
        Reference *ref = reference_create(&ck, KV_BF16, n, 0, &err);
        cr_assert_not_null(ref, "%s", err.text);
        int32_t reference_next;
        cr_assert_eq(reference_forward(ref, tokens, n, 0, NULL, &reference_next, &err), 0, "%s", err.text);
        TensorMetrics m;
        metrics_compute(engine_logits[i], reference_logits(ref), (size_t)vocab, &tol, &m);
        metrics_top1(engine_logits[i], reference_logits(ref), 1, vocab, &m);
        char why[256] = "";
        int pass = metrics_pass(&m, &tol, why, sizeof why);
        fprintf(stderr, "long run (%s), logits at position %d: rel_l2 %.3g, norm_max %.3g, max_abs %.3g, top-1 %s (%s %d, "
                        "reference %d)\n",
                engine, samples[i], m.rel_l2, m.norm_max, m.max_abs,
                m.top1_mismatches ? (m.top1_disagreements ? "DISAGREES" : "near tie") : "agrees", engine, tokens[n],
                reference_next);
        cr_expect(pass, "logits at position %d: %s", samples[i], why);
        reference_destroy(ref);
    }
    for (int i = 0; i < 3; i++) free(engine_logits[i]);
    free(tokens);
    free(model);
    checkpoint_close(&ck);
}

Test(long_run, fused_8192_tokens_stay_within_the_gate_and_memory_is_flat, .timeout = 900) {
    SKIP_WITHOUT_GPU();
    long_run(GPU_ENGINE_FUSED);
}

Test(long_run, dataflow_8192_tokens_stay_within_the_gate_and_memory_is_flat, .timeout = 900) {
    SKIP_WITHOUT_GPU();
    long_run(GPU_ENGINE_DATAFLOW);
}
