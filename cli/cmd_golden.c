// fusecheck golden: run the fp32 reference on a checkpoint and record every layer's activations.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../model/checkpoint.h"
#include "../reference/reference.h"
#include "commands.h"
#include "options.h"
#include "../golden/trace_run.h"

static const char USAGE[] =
    "usage: fusecheck golden --model DIR [--prompt-tokens 1,2,3 | --prompt-len N --seed S] [--steps N]\n"
    "                        [--kv-dtype f32|bf16] --out FILE\n"
    "  Greedy-decodes N steps after the prompt with the fp32 reference and writes a golden trace:\n"
    "  step 0 is the prefill, then one token per step; the tokens consumed are stored in the file.\n"
    "  defaults: --prompt-len 16 --seed 0 --steps 16 --kv-dtype f32 (bf16 emulates the fused KV cache)\n";

static int reference_forward_adapter(void *engine, const int32_t *tokens, int n_tokens, int position,
                                     TraceWriter *trace, int32_t *next_token, ErrorMessage *err) {
    return reference_forward(engine, tokens, n_tokens, position, trace, next_token, err);
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int cmd_golden(int argc, char **argv) {
    const char *model_dir = NULL, *out_path = NULL, *prompt_text = NULL, *value;
    long prompt_length = 16, n_steps = 16;
    uint64_t seed = 0;
    KvDtype kv_dtype = KV_F32;
    ErrorMessage err = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { fputs(USAGE, stdout); return 0; }
        if (option_value(argc, argv, &i, &value, &err)) goto usage_error;
        if (!strcmp(flag, "--model")) model_dir = value;
        else if (!strcmp(flag, "--out")) out_path = value;
        else if (!strcmp(flag, "--prompt-tokens")) prompt_text = value;
        else if (!strcmp(flag, "--prompt-len")) { if (parse_int_option(flag, value, 1, 1 << 20, &prompt_length, &err)) goto usage_error; }
        else if (!strcmp(flag, "--steps")) { if (parse_int_option(flag, value, 0, 1 << 20, &n_steps, &err)) goto usage_error; }
        else if (!strcmp(flag, "--seed")) { if (parse_u64_option(flag, value, &seed, &err)) goto usage_error; }
        else if (!strcmp(flag, "--kv-dtype")) {
            if (kv_dtype_parse(value, &kv_dtype)) { fail(&err, "--kv-dtype: '%s' is not f32 or bf16", value); goto usage_error; }
        } else { fail(&err, "unknown flag '%s'", flag); goto usage_error; }
    }
    if (!model_dir || !out_path) { fail(&err, "--model and --out are required"); goto usage_error; }

    Checkpoint checkpoint = {0};
    if (checkpoint_open(model_dir, &checkpoint, &err)) {
        fprintf(stderr, "fusecheck golden: %s\n", err.text);
        return 2;
    }
    int status = 2;
    int32_t *tokens = NULL, *given = NULL;
    int n_given = 0;
    Reference *reference = NULL;
    TraceWriter *trace = NULL;
    TraceMeta meta = {0};
    if (prompt_text) {
        if (parse_token_list("--prompt-tokens", prompt_text, &given, &n_given, &err)) goto done;
        prompt_length = n_given;
    }
    tokens = malloc((prompt_length + n_steps) * sizeof *tokens);
    if (!tokens) { fail(&err, "out of memory"); goto done; }
    if (given) memcpy(tokens, given, n_given * sizeof *tokens);
    else random_prompt(tokens, (int)prompt_length, checkpoint.config.vocab_size, seed);
    for (long i = 0; i < prompt_length; i++)
        if (tokens[i] >= checkpoint.config.vocab_size) {
            fail(&err, "--prompt-tokens: token id %d is outside the vocabulary [0, %d) of %s", tokens[i],
                 checkpoint.config.vocab_size, model_dir);
            goto done;
        }

    double start = seconds_now();
    reference = reference_create(&checkpoint, kv_dtype, (int)(prompt_length + n_steps), 0, &err);
    if (!reference) goto done;
    if (trace_meta_for_checkpoint(&meta, &checkpoint, "reference", kv_dtype, (int)prompt_length, &err)) goto done;
    trace = trace_writer_open(out_path, &meta, &err);
    if (!trace) goto done;
    if (run_traced_steps(reference, reference_forward_adapter, tokens, (int)prompt_length, (int)n_steps, 0, trace,
                         NULL, &err)) {
        trace_writer_abort(trace);
        trace = NULL;
        goto done;
    }
    TraceWriter *closing = trace;
    trace = NULL;
    if (trace_writer_close(closing, &err)) goto done;
    printf("wrote %s: %ld prompt tokens + %ld decode steps, %d layers, kv %s, weights %s, %.2f s\n", out_path,
           prompt_length, n_steps, checkpoint.config.num_hidden_layers, kv_dtype_name(kv_dtype),
           checkpoint.fingerprint, seconds_now() - start);
    status = 0;
done:
    if (status) fprintf(stderr, "fusecheck golden: %s\n", err.text);
    if (trace) trace_writer_abort(trace);
    free(meta.model_config);
    reference_destroy(reference);
    free(tokens);
    free(given);
    checkpoint_close(&checkpoint);
    return status;
usage_error:
    fprintf(stderr, "fusecheck golden: %s\n", err.text);
    return 2;
}
