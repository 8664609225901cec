// The example engine plugin (examples/engine-plugin), loaded through the ABI: written against
// include/fusecheck/engine.h alone, it reproduces the committed goldens of every small preset in both
// precision profiles within the contract's tolerance, decodes the reference's greedy tokens, and its
// PLANT_BUG build fails where the bug is: step 1, layer 1, tensor q.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

#define EXAMPLE_SOURCE "examples/engine-plugin/qwen3_cpu_engine.c"

static void example_path(const char *library, char *out, size_t size) {
    const char *build = getenv("FUSECHECK_BUILD");
    cr_assert_not_null(build, "FUSECHECK_BUILD is not set (run the tests through ctest)");
    snprintf(out, size, "%s/plugins/lib%s.so", build, library);
    cr_assert_eq(access(out, R_OK), 0, "%s is not built", out);
}

Test(plugin_example, includes_no_project_header_but_the_abi) {
    char *source = test_read_file(EXAMPLE_SOURCE, NULL);
    int n_includes = 0, includes_abi = 0;
    for (char *line = strtok(source, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "#include", 8)) continue;
        n_includes++;
        const char *name = line + 8;
        while (*name == ' ') name++;
        if (!strcmp(name, "\"fusecheck/engine.h\"")) {
            includes_abi = 1;
            continue;
        }
        // System headers only: <...>, and nothing of fusecheck's under it.
        cr_expect(name[0] == '<' && !strstr(name, "fusecheck") && !strstr(name, ".."), "%s: %s", EXAMPLE_SOURCE, line);
    }
    cr_expect(includes_abi, "%s does not include \"fusecheck/engine.h\"", EXAMPLE_SOURCE);
    cr_expect_gt(n_includes, 1);
    free(source);
}

// run + compare of `library` on golden/PRESET-kv-KV.h5; returns compare's exit status, its output in *report.
static int run_and_compare(const char *library, const char *preset, const char *kv, char **report) {
    char path[1024], args[4096], golden[256], *output = NULL;
    example_path(library, path, sizeof path);
    char *model = test_synth_checkpoint(preset, 0), *dir = test_make_temp_dir("plugin-example");
    char *trace = test_path_join(dir, "trace.h5");
    snprintf(golden, sizeof golden, "golden/%s-kv-%s.h5", preset, kv);
    snprintf(args, sizeof args, "run --engine 'plugin:%s' --model '%s' --golden %s --out '%s' --kv-dtype %s --quiet", path,
             model, golden, trace, kv);
    int status = test_run_cli(args, &output);
    cr_assert_eq(status, 0, "%s: %s", args, output);
    free(output);
    snprintf(args, sizeof args, "compare '%s' %s", trace, golden);
    status = test_run_cli(args, report);
    free(model);
    free(dir);
    free(trace);
    return status;
}

Test(plugin_example, reproduces_the_committed_goldens) {
    const char *presets[] = {"tiny", "tiny-eps", "small"}, *kvs[] = {"f32", "bf16"};
    for (int p = 0; p < 3; p++)
        for (int k = 0; k < 2; k++) {
            char *report = NULL;
            int status = run_and_compare("qwen3_cpu_engine", presets[p], kvs[k], &report);
            cr_expect_eq(status, 0, "%s kv %s: %s", presets[p], kvs[k], report);
            cr_expect_not_null(strstr(report, "0 missing, 0 failures"), "%s kv %s: %s", presets[p], kvs[k], report);
            free(report);
        }
}

Test(plugin_example, the_planted_bug_fails_at_step_1_layer_1_tensor_q) {
    const char *presets[] = {"tiny", "small"};
    for (int p = 0; p < 2; p++) {
        char *report = NULL;
        int status = run_and_compare("qwen3_cpu_engine_buggy", presets[p], "bf16", &report);
        cr_expect_eq(status, 1, "%s: %s", presets[p], report);
        cr_expect_not_null(strstr(report, "\nfirst failure: step 1 layer 1 tensor q rel_l2 "), "%s: %s", presets[p], report);
        free(report);
    }
}

Test(plugin_example, generates_the_reference_greedy_tokens) {
    char path[1024], args[4096], *mine = NULL, *reference = NULL;
    example_path("qwen3_cpu_engine", path, sizeof path);
    char *model = test_synth_checkpoint("small", 0);
    snprintf(args, sizeof args, "generate --engine 'plugin:%s' --model '%s' --prompt-len 8 --seed 3 -n 24 --quiet", path, model);
    cr_assert_eq(test_run_cli(args, &mine), 0, "%s", mine);
    snprintf(args, sizeof args, "generate --engine reference --model '%s' --prompt-len 8 --seed 3 -n 24 --quiet", model);
    cr_assert_eq(test_run_cli(args, &reference), 0, "%s", reference);
    cr_expect_str_eq(mine, reference);
    cr_expect_gt(strlen(mine), 24);
    free(mine);
    free(reference);
    free(model);
}

Test(plugin_example, options_reach_the_engine) {
    char path[1024], args[4096], *output = NULL;
    example_path("qwen3_cpu_engine_buggy", path, sizeof path);
    char *model = test_synth_checkpoint("tiny", 0);
    snprintf(args, sizeof args, "generate --engine 'plugin:%s:verbose=1' --model '%s' --prompt-len 4 -n 2 --quiet", path, model);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_expect_not_null(strstr(output, "qwen3_cpu_engine: 2 layers copied as fp32, KV cache f32 for 6 positions (PLANT_BUG build)\n"),
                       "%s", output);
    free(output);
    free(model);
}
