// The cublas baseline as an engine plugin (fused/cublas_plugin.c, built only with CUDA): the library
// loads through the ABI here too (every symbol it needs resolves at dlopen), describes itself as
// needing a GPU, and without a device says so with exit 4; with one, it reproduces the matched-profile
// golden as the built-in cublas engine does.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

Test(plugin_cublas, loads_and_runs_or_says_there_is_no_gpu) {
    const char *build = getenv("FUSECHECK_BUILD");
    cr_assert_not_null(build, "FUSECHECK_BUILD is not set (run the tests through ctest)");
    char path[1024], args[4096], *output = NULL;
    snprintf(path, sizeof path, "%s/plugins/libfusecheck_cublas_plugin.so", build);
    if (access(path, R_OK)) cr_skip_test("%s is built only with CUDA", path);

    char *model = test_synth_checkpoint("tiny", 0), *dir = test_make_temp_dir("plugin-cublas");
    char *trace = test_path_join(dir, "trace.h5");
    snprintf(args, sizeof args, "run --engine 'plugin:%s' --model '%s' --golden golden/tiny-kv-bf16.h5 --out '%s' --quiet",
             path, model, trace);
    int status = test_run_cli(args, &output);
    if (test_run_cli("devices", NULL) != 0) {
        char expected[2048];
        snprintf(expected, sizeof expected, "fusecheck run: engine plugin %s: not available on this machine: no CUDA device",
                 path);
        cr_expect_eq(status, 4, "%s", output);
        cr_expect_eq(strncmp(output, expected, strlen(expected)), 0, "%s", output);
    } else {
        cr_assert_eq(status, 0, "%s", output);
        cr_expect_not_null(strstr(output, "engine cublas-plugin"), "%s", output);
        free(output);
        snprintf(args, sizeof args, "compare '%s' golden/tiny-kv-bf16.h5", trace);
        cr_expect_eq(test_run_cli(args, &output), 0, "%s", output);
    }
    free(output);
    free(trace);
    free(dir);
    free(model);
}
