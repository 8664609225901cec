// fusecheck generate: greedy decoding with any engine, tokens printed on one line.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../model/checkpoint.h"
#include "../model/engine.h"
#include "../model/progress.h"
#include "commands.h"
#include "engine_registry.h"
#include "plugin_engine.h"
#include "interrupt.h"
#include "options.h"
#include "../golden/trace_run.h"

static const char USAGE[] =
    "usage: fusecheck generate --engine ENGINE --model DIR\n"
    "                          [--prompt-tokens 1,2,3 | --prompt-len N --seed S] [-n N] [--kv-dtype f32|bf16]\n"
    "                          [--quiet]\n"
    "  Prints the N greedy tokens that follow the prompt (default 64; prompt default 16 seeded tokens).\n"
    "  Any registered engine (cli/engine_registry.c) or engine plugin (docs/ENGINE_ABI.md). KV cache\n"
    "  default: the engine's (f32 for reference, bf16 for the GPU engines, a plugin's own).\n"
    "  --quiet: no progress and no timing line on stderr (the tokens alone on stdout).\n";

int cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *engine_name = "reference", *prompt_text = NULL, *kv_text = NULL, *value;
    long prompt_length = 16, n_generate = 64;
    uint64_t seed = 0;
    int quiet = 0;
    ErrorMessage err = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) {
            fputs(USAGE, stdout);
            engine_usage_line(stdout);
            return 0;
        }
        if (!strcmp(flag, "--quiet")) { quiet = 1; progress_set_quiet(1); continue; }
        if (option_value(argc, argv, &i, &value, &err)) goto usage_error;
        if (!strcmp(flag, "--model")) model_dir = value;
        else if (!strcmp(flag, "--engine")) engine_name = value;
        else if (!strcmp(flag, "--prompt-tokens")) prompt_text = value;
        else if (!strcmp(flag, "--kv-dtype")) kv_text = value;
        else if (!strcmp(flag, "--prompt-len")) { if (parse_int_option(flag, value, 1, 1 << 20, &prompt_length, &err)) goto usage_error; }
        else if (!strcmp(flag, "-n")) { if (parse_int_option(flag, value, 1, 1 << 20, &n_generate, &err)) goto usage_error; }
        else if (!strcmp(flag, "--seed")) { if (parse_u64_option(flag, value, &seed, &err)) goto usage_error; }
        else { fail(&err, "unknown flag '%s'", flag); goto usage_error; }
    }
    if (!model_dir) { fail(&err, "--model is required"); goto usage_error; }
    progress_set_command("generate");
    interrupt_set_command("generate");  // names the command if an engine plugin crashes
    const EngineKind *kind = engine_find(engine_name, &err);
    if (!kind) {
        char known[256];
        // A plugin's own line says what is wrong with it (missing symbol, ABI version, ...).
        if (!plugin_spec_is(engine_name))
            fail(&err, "--engine: '%s' is not one of %s", engine_name, engine_names(known, sizeof known, ", "));
        goto usage_error;
    }
    KvDtype kv_dtype = kind->default_kv_dtype;
    if (kv_text && kv_dtype_parse(kv_text, &kv_dtype)) { fail(&err, "--kv-dtype: '%s' is not f32 or bf16", kv_text); goto usage_error; }
    // Say there is no GPU before spending time on the checkpoint.
    if (kind->available && kind->available(&err)) { fprintf(stderr, "fusecheck generate: %s\n", err.text); return 4; }

    Checkpoint checkpoint = {0};
    if (checkpoint_open(model_dir, &checkpoint, &err)) { fprintf(stderr, "fusecheck generate: %s\n", err.text); return 2; }
    int status = 2;
    int32_t *tokens = NULL, *given = NULL, *generated = NULL;
    int n_given = 0;
    Engine *engine = NULL;
    if (prompt_text) {
        if (parse_token_list("--prompt-tokens", prompt_text, &given, &n_given, &err)) goto done;
        prompt_length = n_given;
    }
    tokens = malloc((prompt_length + n_generate) * sizeof *tokens);
    generated = malloc(n_generate * sizeof *generated);
    if (!tokens || !generated) { fail(&err, "out of memory"); goto done; }
    if (given) memcpy(tokens, given, n_given * sizeof *tokens);
    else random_prompt(tokens, (int)prompt_length, checkpoint.config.vocab_size, seed);

    int context = (int)(prompt_length + n_generate);
    if (!(engine = engine_create(kind, &checkpoint, (EngineProfile){kv_dtype}, context, &err))) goto done;
    double start = seconds_now();
    // n tokens: the prefill yields the first, each of n - 1 decode steps one more.
    if (run_traced_steps(engine, tokens, (int)prompt_length, (int)n_generate - 1, 0, NULL, NULL, generated, &err))
        goto done;
    double seconds = seconds_now() - start;
    for (long i = 0; i < n_generate; i++) printf(i ? " %d" : "%d", generated[i]);
    printf("\n");
    if (!quiet)
        fprintf(stderr, "fusecheck generate: %s, kv %s: %ld prompt + %ld generated token%s in %.3f s\n", kind->name,
                kv_dtype_name(kv_dtype), prompt_length, n_generate, n_generate == 1 ? "" : "s", seconds);
    status = 0;
done:
    if (status) fprintf(stderr, "fusecheck generate: %s\n", err.text);
    engine_destroy(engine);
    free(tokens);
    free(given);
    free(generated);
    checkpoint_close(&checkpoint);
    return status;
usage_error:
    fprintf(stderr, "fusecheck generate: %s\n", err.text);
    return 2;
}
