// fusecheck synth: write a synthetic Hugging Face checkpoint of a preset shape.
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "commands.h"
#include "options.h"
#include "synth.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fusecheck synth --preset NAME --out DIR [--seed S] [--tied | --untied]\n\n"
            "Writes DIR/config.json and DIR/model.safetensors (bf16, transformers' tensor names) drawn from a\n"
            "portable seeded generator: the same preset and seed give the same bytes on every machine.\n\n"
            "  --preset NAME   %s\n"
            "  --out DIR       output directory (created if missing)\n"
            "  --seed S        unsigned 64-bit seed (default 0)\n"
            "  --tied          lm_head is embed_tokens (overrides the preset)\n"
            "  --untied        a separate lm_head.weight (overrides the preset)\n",
            synth_preset_names());
}

int cmd_synth(int argc, char **argv) {
    const char *preset = NULL, *out_dir = NULL;
    uint64_t seed = 0;
    int tied = -1;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(flag, "--preset") && has_value) {
            preset = argv[++i];
        } else if (!strcmp(flag, "--out") && has_value) {
            out_dir = argv[++i];
        } else if (!strcmp(flag, "--seed") && has_value) {
            ErrorMessage err;
            if (parse_u64_option(flag, argv[++i], &seed, &err)) {
                fprintf(stderr, "fusecheck synth: %s\n", err.text);
                return 2;
            }
        } else if (!strcmp(flag, "--tied")) {
            tied = 1;
        } else if (!strcmp(flag, "--untied")) {
            tied = 0;
        } else if (!strcmp(flag, "--preset") || !strcmp(flag, "--out") || !strcmp(flag, "--seed")) {
            fprintf(stderr, "fusecheck synth: %s needs a value (try fusecheck synth --help)\n", flag);
            return 2;
        } else {
            fprintf(stderr, "fusecheck synth: unknown option '%s' (try fusecheck synth --help)\n", flag);
            return 2;
        }
    }
    if (!preset || !out_dir) {
        fprintf(stderr, "fusecheck synth: --preset and --out are required (try fusecheck synth --help)\n");
        return 2;
    }

    ErrorMessage err;
    ModelConfig config;
    if (synth_preset(preset, &config, &err)) {
        fprintf(stderr, "fusecheck synth: %s\n", err.text);
        return 2;
    }
    if (tied >= 0) config.tie_word_embeddings = tied;

    double start = seconds_now();
    if (synth_write(&config, seed, out_dir, &err)) {
        fprintf(stderr, "fusecheck synth: %s\n", err.text);
        return 2;
    }
    double elapsed = seconds_now() - start;
    // Read it back through the loader every engine uses: proves it loads, and gives the fingerprint.
    Checkpoint checkpoint;
    if (checkpoint_open(out_dir, &checkpoint, &err)) {
        fprintf(stderr, "fusecheck synth: %s\n", err.text);
        return 2;
    }
    int64_t parameters = 0;
    size_t file_bytes = 0;
    for (int t = 0; t < checkpoint.files.n_tensors; t++) {
        parameters += checkpoint.files.tensors[t].numel;
        file_bytes += checkpoint.files.tensors[t].nbytes;
    }
    printf("%s: %s seed %" PRIu64 ", %" PRId64 " parameters, %zu bytes of bf16 weights, %s embeddings, "
           "fingerprint %s (%.1f s)\n",
           out_dir, preset, seed, parameters, file_bytes, config.tie_word_embeddings ? "tied" : "untied",
           checkpoint.fingerprint, elapsed);
    checkpoint_close(&checkpoint);
    return 0;
}
