// Which commit a run's figures carry, and when they may be recorded: the commit the binary was built
// from (never the checkout it happens to run in, which may have moved on since the build), and rows
// only from a build of a clean commit or under an explicit FUSECHECK_COMMIT.
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/run_identity.h"
#include "test_support.h"

Test(record_identity, an_explicit_commit_is_always_recordable) {
    char why[512] = "";
    cr_assert_eq(record_refusal("0123456789ab", "unknown", -1, why, sizeof why), 0);
    cr_assert_eq(record_refusal("0123456789ab", "fedcba987654", 1, why, sizeof why), 0);
}

Test(record_identity, a_clean_build_is_recordable) {
    char why[512] = "";
    cr_assert_eq(record_refusal(NULL, "fedcba987654", 0, why, sizeof why), 0);
    cr_assert_eq(record_refusal("", "fedcba987654", 0, why, sizeof why), 0, "an empty FUSECHECK_COMMIT counts as unset");
}

Test(record_identity, a_build_with_uncommitted_changes_is_refused_in_one_line) {
    char why[512] = "";
    cr_assert_eq(record_refusal(NULL, "fedcba987654", 1, why, sizeof why), -1);
    cr_assert(strstr(why, "fedcba987654") && strstr(why, "uncommitted changes"), "%s", why);
    cr_assert(strstr(why, "FUSECHECK_COMMIT"), "the way out is named: %s", why);
    cr_assert_null(strchr(why, '\n'), "one line: %s", why);
    cr_assert_eq(record_refusal("", "fedcba987654", 1, why, sizeof why), -1);
}

Test(record_identity, a_build_outside_a_checkout_is_refused) {
    char why[512] = "";
    cr_assert_eq(record_refusal(NULL, "unknown", -1, why, sizeof why), -1);
    cr_assert(strstr(why, "not built from a git checkout"), "%s", why);
    cr_assert_eq(record_refusal(NULL, "unknown", 0, why, sizeof why), -1, "an unknown commit is never clean");
}

Test(record_identity, the_build_commit_is_a_commit_or_unknown) {
    const char *commit = build_commit();
    int dirty = build_tree_dirty();
    cr_assert(dirty >= -1 && dirty <= 1, "%d", dirty);
    if (dirty < 0) {
        cr_assert_str_eq(commit, "unknown");
        return;
    }
    cr_assert_eq(strlen(commit), 12, "%s", commit);
    for (const char *c = commit; *c; c++) cr_assert(isxdigit((unsigned char)*c) && !isupper((unsigned char)*c), "%s", commit);
}

Test(record_identity, figures_carry_the_build_commit_unless_one_is_given) {
    char commit[64], expected[64];
    unsetenv("FUSECHECK_COMMIT");
    run_commit(commit, sizeof commit);
    snprintf(expected, sizeof expected, "%s%s", build_commit(), build_tree_dirty() > 0 ? "-dirty" : "");
    cr_assert_str_eq(commit, expected);
    setenv("FUSECHECK_COMMIT", "0123456789ab", 1);
    run_commit(commit, sizeof commit);
    cr_assert_str_eq(commit, "0123456789ab");
    unsetenv("FUSECHECK_COMMIT");
}

Test(record_identity, version_names_the_build_commit) {
    char *output = NULL;
    cr_assert_eq(test_run_cli("--version", &output), 0);
    cr_assert(strstr(output, build_commit()), "fusecheck --version: %s", output);
    cr_assert_eq(strstr(output, "uncommitted changes") != NULL, build_tree_dirty() > 0, "%s", output);
    free(output);
}
