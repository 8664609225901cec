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
    int32_t *prompt = NULL;
    int n_given = 0;
    if (prompt_text) {
        if (parse_token_list("--prompt-tokens", prompt_text, &prompt, &n_given, &err)) goto done;
        prompt_length = n_given;
    } else {
        prompt = malloc(prompt_length * sizeof *prompt);
        if (!prompt) { fail(&err, "out of memory"); goto done; }
        random_prompt(prompt, (int)prompt_length, checkpoint.config.vocab_size, seed);
    }
    double start = seconds_now();
    if (reference_write_golden(&checkpoint, kv_dtype, prompt, (int)prompt_length, (int)n_steps, out_path, NULL, &err))
        goto done;
    printf("wrote %s: %ld prompt tokens + %ld decode steps, %d layers, kv %s, weights %s, %.2f s\n", out_path,
           prompt_length, n_steps, checkpoint.config.num_hidden_layers, kv_dtype_name(kv_dtype),
           checkpoint.fingerprint, seconds_now() - start);
    status = 0;
done:
    if (status) fprintf(stderr, "fusecheck golden: %s\n", err.text);
    free(prompt);
    checkpoint_close(&checkpoint);
    return status;
usage_error:
    fprintf(stderr, "fusecheck golden: %s\n", err.text);
    return 2;
}
