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
                                        "FUSECHECK_DATAFLOW_EPOCH_LIMIT", "FUSECHECK_DATAFLOW_L2_PREFETCH",
                                        "FUSECHECK_DATAFLOW_SPLITS"};

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
    cr_assert_eq(d.dataflow_l2_prefetch, 0);
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

// Each case's text, set in `variable` (FUSECHECK_DATAFLOW_PAGES or _L2_PREFETCH), gives its mask in that
// variable's field; the other list keeps its default.
typedef struct {
    const char *text;
    int mask;
} MaskCase;

static void expect_masks(const char *variable, const MaskCase *cases, size_t n_cases) {
    const int pages = !strcmp(variable, "FUSECHECK_DATAFLOW_PAGES");
    for (size_t i = 0; i < n_cases; i++) {
        setenv(variable, cases[i].text, 1);
        FusedOptions o, d = fused_options_defaults();
        ErrorMessage err;
        cr_assert_eq(fused_options_from_env(&o, &err), 0, "%s", err.text);
        int mask = pages ? o.dataflow_pages : o.dataflow_l2_prefetch;
        cr_assert_eq(mask, cases[i].mask, "%s=%s: mask %d", variable, cases[i].text, mask);
        cr_assert_eq(pages ? o.dataflow_l2_prefetch : o.dataflow_pages,
                     pages ? d.dataflow_l2_prefetch : d.dataflow_pages, "%s=%s changed the other list", variable,
                     cases[i].text);
    }
}

Test(fused_options, dataflow_pages_take_names_or_none) {
    static const MaskCase cases[] = {
        {"none", 0},
        {"qkv", 1 << DATAFLOW_QKV},
        {"down,gate_up", (1 << DATAFLOW_GATEUP) | (1 << DATAFLOW_DOWN)},
        {"qkv,gate_up,down", (1 << DATAFLOW_QKV) | (1 << DATAFLOW_GATEUP) | (1 << DATAFLOW_DOWN)}};
    expect_masks("FUSECHECK_DATAFLOW_PAGES", cases, sizeof cases / sizeof cases[0]);
}

Test(fused_options, dataflow_l2_prefetch_takes_names_or_none) {
    static const MaskCase cases[] = {
        {"none", 0},
        {"down", 1 << DATAFLOW_DOWN},
        {"o_proj", 1 << DATAFLOW_OPROJ},
        {"down,qkv", (1 << DATAFLOW_QKV) | (1 << DATAFLOW_DOWN)},
        {"qkv,o_proj,gate_up,down", (1 << DATAFLOW_QKV) | (1 << DATAFLOW_OPROJ) | (1 << DATAFLOW_GATEUP) | (1 << DATAFLOW_DOWN)}};
    expect_masks("FUSECHECK_DATAFLOW_L2_PREFETCH", cases, sizeof cases / sizeof cases[0]);
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

// expect_refused for each value of `values` (NULL-terminated), the message "VARIABLE=VALUE" + `tail`.
static void expect_all_refused(const char *variable, const char *const *values, const char *tail) {
    for (size_t i = 0; values[i]; i++) {
        char message[160];
        snprintf(message, sizeof message, "%s=%s%s", variable, values[i], tail);
        expect_refused(variable, values[i], message);
    }
}

Test(fused_options, values_outside_the_set_are_refused_by_name) {
    expect_refused("FUSECHECK_PDL", "yes", "FUSECHECK_PDL=yes: expected 0 or 1");
    expect_refused("FUSECHECK_DATAFLOW_SKELETON", "2", "FUSECHECK_DATAFLOW_SKELETON=2: expected 0 or 1");
    expect_refused("FUSECHECK_DATAFLOW_TILE_KB", "48", "FUSECHECK_DATAFLOW_TILE_KB=48: expected one of 32, 64, 96");
    expect_refused("FUSECHECK_DATAFLOW_TILE_KB", "64k", "FUSECHECK_DATAFLOW_TILE_KB=64k: expected one of 32, 64, 96");
    expect_refused("FUSECHECK_DATAFLOW_TILE_KB", "-1", "FUSECHECK_DATAFLOW_TILE_KB=-1: expected one of 32, 64, 96");
    expect_refused("FUSECHECK_ATTENTION_SPLITS", "0", "FUSECHECK_ATTENTION_SPLITS=0: expected an integer in [1,");
    static const char *const bad_splits[] = {"0", "1025", "8x", "-8", NULL};
    expect_all_refused("FUSECHECK_DATAFLOW_SPLITS", bad_splits, ": expected an integer in [1, 1024]");
    static const char *const bad_limits[] = {"1", "0", "16777217", "3x", "-5", "99999999999999999999999", NULL};
    expect_all_refused("FUSECHECK_DATAFLOW_EPOCH_LIMIT", bad_limits, ": expected an integer in [2, 16777216]");
    static const char *const bad_pages[] = {"o_proj", "qkv,", "gate_up,,down", ",qkv", "QKV", "qkv gate_up",
                                            "none,qkv", "gate_up,others", NULL};
    expect_all_refused("FUSECHECK_DATAFLOW_PAGES", bad_pages, ": expected none or a comma list of qkv, gate_up, down");
    static const char *const bad_l2[] = {"attention", "down,", "qkv,,down", "DOWN", "none,down", "lm_head", NULL};
    expect_all_refused("FUSECHECK_DATAFLOW_L2_PREFETCH", bad_l2,
                       ": expected none or a comma list of qkv, o_proj, gate_up, down");
}
