// fusecheck golden: run the fp32 reference on a checkpoint and record every layer's activations.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../golden/trace_run.h"
#include "../model/checkpoint.h"
#include "../model/progress.h"
#include "../reference/reference.h"
#include "commands.h"
#include "interrupt.h"
#include "options.h"
#include "output_path.h"

static const char USAGE[] =
    "usage: fusecheck golden --model DIR [--prompt-tokens 1,2,3 | --prompt-len N --seed S] [--steps N]\n"
    "                        [--kv-dtype f32|bf16] [--tokens-from TRACE] [--quiet] --out FILE\n"
    "  Greedy-decodes N steps after the prompt with the fp32 reference and writes a golden trace:\n"
    "  step 0 is the prefill, then one token per step; the tokens consumed are stored in the file.\n"
    "  defaults: --prompt-len 16 --seed 0 --steps 16 --kv-dtype f32 (bf16 emulates the fused KV cache)\n"
    "  --tokens-from TRACE  teacher-forced instead of greedy: consumes TRACE's /tokens (same prompt and\n"
    "                       step count; TRACE must be of the same weights), recording its own next_token.\n"
    "                       Two goldens of different --kv-dtype are then comparable step by step even\n"
    "                       where their greedy choices would part at a near-tie.\n"
    "  --quiet              no progress on stderr (shown on a terminal; a line every 10%% and 5 s otherwise)\n"
    "  Ctrl-C or SIGTERM removes the partial file and exits 130 or 143.\n";

// tokens (malloc'd), prompt length and decode steps of the trace at `path`, which must be of the
// same weights as `checkpoint`.
static int tokens_from_trace(const char *path, const Checkpoint *checkpoint, int32_t **tokens, long *prompt_length,
                             long *n_steps, ErrorMessage *err) {
    TraceReader *source = trace_open(path, err);
    if (!source) {
        ErrorMessage why = *err;
        return fail(err, "--tokens-from: %s", why.text);
    }
    int status = -1;
    const TraceMeta *meta = trace_meta(source);
    int n_tokens = 0;
    const int32_t *given = trace_tokens(source, &n_tokens);
    if (strcmp(meta->weights_fingerprint, checkpoint->fingerprint)) {
        fail(err, "--tokens-from: %s is of weights %s, but %s is %s (its tokens may not even be in this vocabulary)", path,
             meta->weights_fingerprint, checkpoint->dir, checkpoint->fingerprint);
        goto done;
    }
    if (meta->prompt_length < 1 || n_tokens != meta->prompt_length + trace_n_steps(source) - 1) {
        fail(err, "--tokens-from: %s holds %d tokens, not prompt_length %d + %d decode steps", path, n_tokens,
             meta->prompt_length, trace_n_steps(source) - 1);
        goto done;
    }
    if (!(*tokens = malloc((size_t)n_tokens * sizeof **tokens))) { fail(err, "out of memory"); goto done; }
    memcpy(*tokens, given, (size_t)n_tokens * sizeof **tokens);
    *prompt_length = meta->prompt_length;
    *n_steps = trace_n_steps(source) - 1;
    status = 0;
done:
    trace_close(source);
    return status;
}

int cmd_golden(int argc, char **argv) {
    const char *model_dir = NULL, *out_path = NULL, *prompt_text = NULL, *tokens_from = NULL, *value;
    const char *prompt_flag = NULL;  // a flag that chooses the prompt or the steps, refused with --tokens-from
    long prompt_length = 16, n_steps = 16;
    uint64_t seed = 0;
    KvDtype kv_dtype = KV_F32;
    ErrorMessage err = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { printf(USAGE); return 0; }
        if (!strcmp(flag, "--quiet")) { progress_set_quiet(1); continue; }
        if (option_value(argc, argv, &i, &value, &err)) goto usage_error;
        if (!strcmp(flag, "--model")) model_dir = value;
        else if (!strcmp(flag, "--out")) out_path = value;
        else if (!strcmp(flag, "--tokens-from")) tokens_from = value;
        else if (!strcmp(flag, "--prompt-tokens")) { prompt_text = value; prompt_flag = flag; }
        else if (!strcmp(flag, "--prompt-len")) {
            prompt_flag = flag;
            if (parse_int_option(flag, value, 1, 1 << 20, &prompt_length, &err)) goto usage_error;
        } else if (!strcmp(flag, "--steps")) {
            prompt_flag = flag;
            if (parse_int_option(flag, value, 0, 1 << 20, &n_steps, &err)) goto usage_error;
        } else if (!strcmp(flag, "--seed")) {
            prompt_flag = flag;
            if (parse_u64_option(flag, value, &seed, &err)) goto usage_error;
        } else if (!strcmp(flag, "--kv-dtype")) {
            if (kv_dtype_parse(value, &kv_dtype)) { fail(&err, "--kv-dtype: '%s' is not f32 or bf16", value); goto usage_error; }
        } else { fail(&err, "unknown flag '%s'", flag); goto usage_error; }
    }
    if (!model_dir || !out_path) { fail(&err, "--model and --out are required"); goto usage_error; }
    if (tokens_from && prompt_flag) {
        fail(&err, "--tokens-from takes the prompt and the steps from %s; drop %s", tokens_from, prompt_flag);
        goto usage_error;
    }
    // Before any work: a bad --out would otherwise be found only when the finished trace is renamed.
    if (output_file_check("--out", out_path, &err)) goto usage_error;
    progress_set_command("golden");
    if (interrupt_cleanup_on_signal("golden", out_path, &err)) goto usage_error;

    Checkpoint checkpoint = {0};
    if (checkpoint_open(model_dir, &checkpoint, &err)) {
        fprintf(stderr, "fusecheck golden: %s\n", err.text);
        return 2;
    }
    int status = 2;
    int32_t *tokens = NULL, *given = NULL;
    int n_given = 0;
    Engine *reference = NULL;
    TraceMeta meta = {0};
    if (tokens_from) {
        if (tokens_from_trace(tokens_from, &checkpoint, &tokens, &prompt_length, &n_steps, &err)) goto done;
    } else {
        if (prompt_text) {
            if (parse_token_list("--prompt-tokens", prompt_text, &given, &n_given, &err)) goto done;
            prompt_length = n_given;
        }
        if (!(tokens = malloc((size_t)(prompt_length + n_steps) * sizeof *tokens))) { fail(&err, "out of memory"); goto done; }
        if (given) memcpy(tokens, given, (size_t)n_given * sizeof *tokens);
        else random_prompt(tokens, (int)prompt_length, checkpoint.config.vocab_size, seed);
    }
    // Greedy runs write their continuation; only the given tokens need checking.
    long n_checked = tokens_from ? prompt_length + n_steps : prompt_length;
    for (long i = 0; i < n_checked; i++)
        if (tokens[i] < 0 || tokens[i] >= checkpoint.config.vocab_size) {
            fail(&err, "%s: token id %d is outside the vocabulary [0, %d) of %s", tokens_from ? tokens_from : "--prompt-tokens",
                 tokens[i], checkpoint.config.vocab_size, model_dir);
            goto done;
        }
    double start = seconds_now();
    if (!(reference = engine_create(&reference_engine_kind, &checkpoint, (EngineProfile){kv_dtype},
                                    (int)(prompt_length + n_steps), &err)))
        goto done;
    if (trace_meta_for_checkpoint(&meta, &checkpoint, "reference", kv_dtype, (int)prompt_length, &err)) goto done;
    if (write_traced_run(reference, &meta, tokens, (int)prompt_length, (int)n_steps, tokens_from != NULL, NULL,
                         out_path, &err))
        goto done;
    printf("wrote %s: %ld prompt tokens + %ld decode step%s%s%s, %d layers, kv %s, weights %s, %.2f s\n", out_path,
           prompt_length, n_steps, n_steps == 1 ? "" : "s", tokens_from ? " teacher-forced on " : "",
           tokens_from ? tokens_from : "", checkpoint.config.num_hidden_layers, kv_dtype_name(kv_dtype),
           checkpoint.fingerprint, seconds_now() - start);
    status = 0;
done:
    if (status) fprintf(stderr, "fusecheck golden: %s\n", err.text);
    free(meta.model_config);
    engine_destroy(reference);
    free(tokens);
    free(given);
    checkpoint_close(&checkpoint);
    return status;
usage_error:
    fprintf(stderr, "fusecheck golden: %s\n", err.text);
    return 2;
}
