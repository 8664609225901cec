// The fused engine's options from the environment (contract in fused_options.h).
#include "fused_options.h"

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

int fused_options_from_env(FusedOptions *options, ErrorMessage *err) {
    *options = fused_options_defaults();
    if (env_switch("FUSECHECK_PDL", &options->pdl, err) ||
        env_switch("FUSECHECK_SYNC_KERNELS", &options->sync_kernels, err) ||
        env_switch("FUSECHECK_DATAFLOW_SKELETON", &options->dataflow_skeleton, err) ||
        env_switch("FUSECHECK_DATAFLOW_TIMELINE", &options->dataflow_timeline, err))
        return -1;
    const char *groups_text = getenv("FUSECHECK_DATAFLOW_GROUPS");
    if (groups_text && *groups_text) {
        if (strcmp(groups_text, "1") && strcmp(groups_text, "2"))
            return fail(err, "FUSECHECK_DATAFLOW_GROUPS=%s: expected 1 or 2", groups_text);
        options->dataflow_groups = atoi(groups_text);
    }
    const char *splits_text = getenv("FUSECHECK_ATTENTION_SPLITS");
    if (splits_text && *splits_text) {
        char *end;
        long splits = strtol(splits_text, &end, 10);
        if (*end || splits < 1 || splits > ATTENTION_DECODE_MAX_SPLITS)
            return fail(err, "FUSECHECK_ATTENTION_SPLITS=%s: expected an integer in [1, %d]", splits_text,
                        ATTENTION_DECODE_MAX_SPLITS);
        options->attention_splits = (int)splits;
    }
    return 0;
}
