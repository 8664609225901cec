// The gate's command line without a GPU: the golden cache is keyed by what produced the goldens (the
// build's hash of reference/, model/ and golden/), --steps 0 and a --max-slowdown without a baseline are
// refused, and a baseline that cannot be read is refused before any work.
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

// The golden file the gate reported making (or reusing), from its output: malloc'd path.
static char *golden_path_in(const char *output, const char *kv) {
    char marker[64];
    snprintf(marker, sizeof marker, "golden (kv %s): ", kv);
    const char *at = strstr(output, marker);
    cr_assert_not_null(at, "%s", output);
    at = strchr(at + strlen(marker), ' ');  // past "made" / "reused"
    cr_assert_not_null(at);
    at++;
    size_t n = strcspn(at, " \n");
    char *path = malloc(n + 1);
    cr_assert_not_null(path);
    memcpy(path, at, n);
    path[n] = '\0';
    return path;
}

Test(gate_cli, a_cached_golden_of_another_producer_is_not_reused) {
    char *dir = test_make_temp_dir("gate-cache");
    char args[2048], *output;
    snprintf(args, sizeof args, "gate --preset tiny --steps 2 --cache-dir '%s/cache' --report-dir '%s/report'", dir, dir);
    int status = test_run_cli(args, &output);
    cr_assert(status == 4 || status == 0 || status == 1, "exit %d:\n%s", status, output);
    char *made = golden_path_in(output, "bf16");
    cr_assert(strstr(output, "golden (kv bf16): made"), "%s", output);
    free(output);
    // The producer hash is part of the name: -ref<16 hex digits>.h5.
    const char *ref = strstr(made, "-ref");
    cr_assert_not_null(ref, "%s", made);
    cr_assert_eq(strlen(ref), strlen("-ref") + 16 + strlen(".h5"), "%s", made);

    // The same producer reuses it.
    status = test_run_cli(args, &output);
    cr_assert(strstr(output, "golden (kv bf16): reused"), "%s", output);
    free(output);

    // A golden of another producer (an older reference, say) in its place: the gate makes a new one.
    char *planted = strdup(made);
    cr_assert_not_null(planted);
    char *hash = strstr(planted, "-ref") + 4;
    memcpy(hash, "0000000000000000", 16);
    cr_assert_eq(rename(made, planted), 0, "%s -> %s", made, planted);
    status = test_run_cli(args, &output);
    cr_assert(strstr(output, "golden (kv bf16): made"), "a golden of producer 0000000000000000 was reused:\n%s", output);
    free(output);
    FILE *f = fopen(made, "rb");
    cr_assert_not_null(f, "%s was not remade", made);
    fclose(f);
    free(planted);
    free(made);
    free(dir);
}

Test(gate_cli, steps_zero_is_refused) {
    char *output;
    int status = test_run_cli("gate --preset tiny --steps 0", &output);
    cr_assert_eq(status, 2, "%s", output);
    cr_assert(strstr(output, "fusecheck gate: --steps") && strstr(output, "decode"), "%s", output);
    free(output);
}

Test(gate_cli, max_slowdown_needs_a_baseline_and_an_unreadable_baseline_is_refused_first) {
    char *output;
    int status = test_run_cli("gate --preset tiny --max-slowdown 5", &output);
    cr_assert_eq(status, 2, "%s", output);
    cr_assert(strstr(output, "fusecheck gate: --max-slowdown needs --baseline"), "%s", output);
    free(output);
    char *dir = test_make_temp_dir("gate-baseline");
    char *bad = test_path_join(dir, "benchmarks.jsonl");
    test_write_file(bad, "not json\n", 9);
    char args[2048];
    snprintf(args, sizeof args, "gate --preset tiny --steps 2 --cache-dir '%s/cache' --baseline '%s'", dir, bad);
    status = test_run_cli(args, &output);
    cr_assert_eq(status, 2, "%s", output);
    cr_assert(strstr(output, "fusecheck gate: --baseline") && strstr(output, "line 1"), "%s", output);
    cr_assert_null(strstr(output, "golden (kv"), "work started before the baseline was read:\n%s", output);
    free(output);
    free(bad);
    free(dir);
}
