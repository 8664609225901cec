// The GPU engines' options from the environment (fused/fused_options.h), checked on the CPU: unset or
// empty variables give the defaults, each accepted value lands in its field, and every value outside
// a variable's set is refused with one line naming the variable, the value and what is allowed.
// Built only where the CUDA library is (fused_options.c lives there); runs without a device.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fused/fused_options.h"

static const char *const variables[] = {"FUSECHECK_PDL", "FUSECHECK_SYNC_KERNELS", "FUSECHECK_DATAFLOW_SKELETON",
                                        "FUSECHECK_DATAFLOW_TIMELINE", "FUSECHECK_DATAFLOW_TILE_KB",
                                        "FUSECHECK_ATTENTION_SPLITS", "FUSECHECK_DATAFLOW_PAGES",
                                        "FUSECHECK_DATAFLOW_EPOCH_LIMIT", "FUSECHECK_DATAFLOW_SPLITS"};

static void clear_environment(void) {
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++) unsetenv(variables[i]);
}

TestSuite(fused_options, .init = clear_environment);

Test(fused_options, unset_and_empty_give_the_defaults) {
    FusedOptions o, d = fused_options_defaults();
    ErrorMessage err;
    cr_assert_eq(fused_options_from_env(&o, &err), 0, "%s", err.text);
    cr_assert_eq(memcmp(&o, &d, sizeof o), 0);
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++) setenv(variables[i], "", 1);
    cr_assert_eq(fused_options_from_env(&o, &err), 0, "%s", err.text);
    cr_assert_eq(memcmp(&o, &d, sizeof o), 0);
    cr_assert_eq(d.pdl, 1);
    cr_assert_eq(d.dataflow_tile_kb, 96);
    cr_assert_eq(d.dataflow_skeleton, 0);
    cr_assert_eq(d.dataflow_pages, 1 << DATAFLOW_GATEUP);
    cr_assert_eq(d.dataflow_epoch_limit, 1 << 24);
    cr_assert_eq(d.dataflow_splits, 0);
}

Test(fused_options, accepted_values_land_in_their_fields) {
    setenv("FUSECHECK_PDL", "0", 1);
    setenv("FUSECHECK_DATAFLOW_TIMELINE", "1", 1);
    setenv("FUSECHECK_DATAFLOW_TILE_KB", "32", 1);
    setenv("FUSECHECK_ATTENTION_SPLITS", "7", 1);
    setenv("FUSECHECK_DATAFLOW_EPOCH_LIMIT", "3", 1);
    setenv("FUSECHECK_DATAFLOW_SPLITS", "8", 1);
    FusedOptions o;
    ErrorMessage err;
    cr_assert_eq(fused_options_from_env(&o, &err), 0, "%s", err.text);
    cr_assert_eq(o.pdl, 0);
    cr_assert_eq(o.dataflow_timeline, 1);
    cr_assert_eq(o.dataflow_tile_kb, 32);
    cr_assert_eq(o.attention_splits, 7);
    cr_assert_eq(o.dataflow_epoch_limit, 3);
    cr_assert_eq(o.dataflow_splits, 8);
    cr_assert_eq(o.sync_kernels, 0);
}

Test(fused_options, dataflow_pages_take_names_or_none) {
    static const struct {
        const char *text;
        int mask;
    } cases[] = {{"none", 0},
                 {"qkv", 1 << DATAFLOW_QKV},
                 {"down,gate_up", (1 << DATAFLOW_GATEUP) | (1 << DATAFLOW_DOWN)},
                 {"qkv,gate_up,down", (1 << DATAFLOW_QKV) | (1 << DATAFLOW_GATEUP) | (1 << DATAFLOW_DOWN)}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("FUSECHECK_DATAFLOW_PAGES", cases[i].text, 1);
        FusedOptions o;
        ErrorMessage err;
        cr_assert_eq(fused_options_from_env(&o, &err), 0, "%s", err.text);
        cr_assert_eq(o.dataflow_pages, cases[i].mask, "%s: mask %d", cases[i].text, o.dataflow_pages);
    }
}

static void expect_refused(const char *variable, const char *value, const char *message) {
    clear_environment();
    setenv(variable, value, 1);
    FusedOptions o;
    ErrorMessage err;
    cr_assert_eq(fused_options_from_env(&o, &err), -1, "%s=%s was accepted", variable, value);
    cr_assert(strstr(err.text, message), "%s=%s: \"%s\" lacks \"%s\"", variable, value, err.text, message);
    cr_assert_null(strchr(err.text, '\n'), "one line: %s", err.text);
}

Test(fused_options, values_outside_the_set_are_refused_by_name) {
    expect_refused("FUSECHECK_PDL", "yes", "FUSECHECK_PDL=yes: expected 0 or 1");
    expect_refused("FUSECHECK_DATAFLOW_SKELETON", "2", "FUSECHECK_DATAFLOW_SKELETON=2: expected 0 or 1");
    expect_refused("FUSECHECK_DATAFLOW_TILE_KB", "48", "FUSECHECK_DATAFLOW_TILE_KB=48: expected one of 32, 64, 96");
    expect_refused("FUSECHECK_DATAFLOW_TILE_KB", "64k", "FUSECHECK_DATAFLOW_TILE_KB=64k: expected one of 32, 64, 96");
    expect_refused("FUSECHECK_DATAFLOW_TILE_KB", "-1", "FUSECHECK_DATAFLOW_TILE_KB=-1: expected one of 32, 64, 96");
    expect_refused("FUSECHECK_ATTENTION_SPLITS", "0", "FUSECHECK_ATTENTION_SPLITS=0: expected an integer in [1,");
    const char *bad_splits[] = {"0", "1025", "8x", "-8"};
    for (size_t i = 0; i < sizeof bad_splits / sizeof bad_splits[0]; i++) {
        char message[128];
        snprintf(message, sizeof message, "FUSECHECK_DATAFLOW_SPLITS=%s: expected an integer in [1, 1024]", bad_splits[i]);
        expect_refused("FUSECHECK_DATAFLOW_SPLITS", bad_splits[i], message);
    }
    const char *limit_message = "expected an integer in [2, 16777216]";
    const char *bad_limits[] = {"1", "0", "16777217", "3x", "-5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
        char message[128];
        snprintf(message, sizeof message, "FUSECHECK_DATAFLOW_EPOCH_LIMIT=%s: %s", bad_limits[i], limit_message);
        expect_refused("FUSECHECK_DATAFLOW_EPOCH_LIMIT", bad_limits[i], message);
    }
    const char *pages_message = ": expected none or a comma list of qkv, gate_up, down";
    const char *bad_pages[] = {"o_proj", "qkv,", "gate_up,,down", ",qkv", "QKV", "qkv gate_up", "none,qkv", "gate_up,others"};
    for (size_t i = 0; i < sizeof bad_pages / sizeof bad_pages[0]; i++) {
        char message[128];
        snprintf(message, sizeof message, "FUSECHECK_DATAFLOW_PAGES=%s%s", bad_pages[i], pages_message);
        expect_refused("FUSECHECK_DATAFLOW_PAGES", bad_pages[i], message);
    }
}
