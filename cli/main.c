// fusecheck: run a Qwen3 reference and a fused CUDA engine side by side, layer by layer.
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "run_identity.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command COMMANDS[] = {
    {"synth", cmd_synth, "write a synthetic Hugging Face checkpoint of a preset shape"},
    {"golden", cmd_golden, "make a golden trace with the fp32 reference"},
    {"compare", cmd_compare, "compare two traces tensor by tensor, layer by layer, step by step"},
    {"validate", cmd_validate, "check a trace file against golden/FORMAT.md, listing every problem"},
    {"run", cmd_run, "run a GPU engine teacher-forced on a golden trace's tokens, write its trace"},
    {"generate", cmd_generate, "greedy-decode tokens with an engine"},
    {"bench", cmd_bench, "decode tok/s of the GPU engines at several contexts, vs copy bandwidth"},
    {"gate", cmd_gate, "CI's gate: goldens, fused accuracy (matched and pure fp32), throughput, one report"},
    {"devices", cmd_devices, "say whether a CUDA device is usable (exit 0) or not (exit 4, with the reason)"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *out) {
    fprintf(out, "usage: fusecheck <command> [options]   (fusecheck <command> --help for its options)\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-9s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out,
            "\nexit status:\n"
            "  0        ok\n"
            "  1        a check failed (compare, gate: a tensor beyond tolerance, tokens that differ)\n"
            "  2        bad input or usage (one line on stderr naming the file or flag)\n"
            "  3        too slow (gate: below --min-tok-s, or slower than --baseline by more than --max-slowdown)\n"
            "  4        no usable GPU (the reason on stderr; fusecheck devices says it alone)\n"
            "  130/143  interrupted by Ctrl-C (SIGINT) / SIGTERM; partial output files are removed\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("fusecheck %s (built from %s%s)\n", FUSECHECK_VERSION, build_commit(),
               build_tree_dirty() > 0 ? " with uncommitted changes" : "");
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "fusecheck: unknown command '%s' (try fusecheck --help)\n", argv[1]);
    return 2;
}
