// The fused engine's options from the environment (contract in fused_options.h).
#include "fused_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

// A 0/1 switch: unset or empty leaves *value as it is.
static int env_switch(const char *name, int *value, ErrorMessage *err) {
    const char *text = getenv(name);
    if (!text || !*text) return 0;
    if (strcmp(text, "0") && strcmp(text, "1")) return fail(err, "%s=%s: expected 0 or 1", name, text);
    *value = text[0] == '1';
    return 0;
}

// An integer in [low, high]: unset or empty leaves *value as it is.
static int env_integer(const char *name, long low, long high, int *value, ErrorMessage *err) {
    const char *text = getenv(name);
    if (!text || !*text) return 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || v < low || v > high) return fail(err, "%s=%s: expected an integer in [%ld, %ld]", name, text, low, high);
    *value = (int)v;
    return 0;
}

// One of `allowed` (a -1-terminated list): unset or empty leaves *value as it is.
static int env_choice(const char *name, const int *allowed, int *value, ErrorMessage *err) {
    const char *text = getenv(name);
    if (!text || !*text) return 0;
    char *end;
    long v = strtol(text, &end, 10);
    for (int i = 0; allowed[i] >= 0 && !*end; i++)
        if (v == allowed[i]) {
            *value = (int)v;
            return 0;
        }
    char list[64] = "";
    for (int i = 0; allowed[i] >= 0; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? ", " : "", allowed[i]);
    return fail(err, "%s=%s: expected one of %s", name, text, list);
}

// "none" or a comma list of projection names: unset or empty leaves *mask as it is.
static int env_pages(const char *name, int *mask, ErrorMessage *err) {
    static const struct {
        const char *name;
        int bits;
    } ops[] = {{"qkv", 1 << DATAFLOW_QKV}, {"gate_up", 1 << DATAFLOW_GATEUP}, {"down", 1 << DATAFLOW_DOWN}};
    const char *text = getenv(name);
    if (!text || !*text) return 0;
    if (!strcmp(text, "none")) {
        *mask = 0;
        return 0;
    }
    int value = 0;
    for (const char *item = text; *item;) {
        size_t length = strcspn(item, ",");
        int found = 0;
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            if (length == strlen(ops[i].name) && !strncmp(item, ops[i].name, length)) {
                value |= ops[i].bits;
                found = 1;
            }
        if (!found) return fail(err, "%s=%s: expected none or a comma list of qkv, gate_up, down", name, text);
        item += length;
        if (*item == ',') {
            item++;
            if (!*item) return fail(err, "%s=%s: expected none or a comma list of qkv, gate_up, down", name, text);
        }
    }
    *mask = value;
    return 0;
}

int fused_options_from_env(FusedOptions *options, ErrorMessage *err) {
    *options = fused_options_defaults();
    if (env_switch("FUSECHECK_PDL", &options->pdl, err) ||
        env_switch("FUSECHECK_SYNC_KERNELS", &options->sync_kernels, err) ||
        env_switch("FUSECHECK_DATAFLOW_SKELETON", &options->dataflow_skeleton, err) ||
        env_switch("FUSECHECK_DATAFLOW_TIMELINE", &options->dataflow_timeline, err))
        return -1;
    static const int tile_kb[] = {32, 64, 96, -1};
    if (env_choice("FUSECHECK_DATAFLOW_TILE_KB", tile_kb, &options->dataflow_tile_kb, err) ||
        env_pages("FUSECHECK_DATAFLOW_PAGES", &options->dataflow_pages, err))
        return -1;
    return env_integer("FUSECHECK_DATAFLOW_EPOCH_LIMIT", 2, DATAFLOW_EPOCH_LIMIT, &options->dataflow_epoch_limit, err) ||
                   env_integer("FUSECHECK_DATAFLOW_SPLITS", 1, 1024, &options->dataflow_splits, err) ||
                   env_integer("FUSECHECK_ATTENTION_SPLITS", 1, ATTENTION_DECODE_MAX_SPLITS, &options->attention_splits,
                               err)
               ? -1
               : 0;
}
