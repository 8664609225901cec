#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "trace_internal.h"

// Order of the forward pass inside one decoder layer (see trace.h for shapes and meanings).
const char *const TRACE_LAYER_TENSORS[TRACE_N_LAYER_TENSORS] = {
    "attn_norm", "q", "k", "v", "attn", "attn_out", "resid_attn",
    "mlp_norm", "gate", "up", "act", "mlp_out", "resid_mlp",
};

const char *const TRACE_STEP_TENSORS[TRACE_N_STEP_TENSORS] = {"embed", "final_norm", "logits", "next_token"};

// TRACE_CHECKPOINT_NAMES as a list.
static const char *const CHECKPOINTS[] = {"resid_mlp", "k", "v", "logits", "next_token", "embed"};

static int in_names(const char *const *names, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

int trace_is_checkpoint(const char *name) {
    return name && in_names(CHECKPOINTS, sizeof CHECKPOINTS / sizeof CHECKPOINTS[0], name);
}

int trace_check_omittable(const char *name, char *why, size_t why_size) {
    if (trace_is_checkpoint(name)) {
        snprintf(why, why_size,
                 "'%s' is a contract checkpoint (" TRACE_CHECKPOINT_NAMES "): it may never be omitted or allowed missing",
                 name);
        return -1;
    }
    if (!name || !(in_names(TRACE_LAYER_TENSORS, TRACE_N_LAYER_TENSORS, name) ||
                   in_names(TRACE_STEP_TENSORS, TRACE_N_STEP_TENSORS, name))) {
        // The names that may be omitted, listed from the tables so the message never drifts from them.
        char allowed[256] = "";
        size_t used = 0;
        for (int i = 0; i < TRACE_N_LAYER_TENSORS + TRACE_N_STEP_TENSORS; i++) {
            const char *known = i < TRACE_N_LAYER_TENSORS ? TRACE_LAYER_TENSORS[i]
                                                          : TRACE_STEP_TENSORS[i - TRACE_N_LAYER_TENSORS];
            if (trace_is_checkpoint(known) || used >= sizeof allowed) continue;
            used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", used ? ", " : "", known);
        }
        snprintf(why, why_size, "'%s' is not a trace tensor name that may be omitted (%s)", name ? name : "(null)",
                 allowed);
        return -1;
    }
    return 0;
}

int trace_meta_omits(const TraceMeta *meta, const char *name) {
    for (int i = 0; i < meta->n_omitted && i < TRACE_MAX_OMITTED; i++)
        if (!strncmp(meta->omitted[i], name, TRACE_OMITTED_NAME_SIZE)) return 1;
    return 0;
}

int trace_meta_set_omitted(TraceMeta *meta, const char *list, char *why, size_t why_size) {
    TraceMeta parsed = {0};
    const char *p = list ? list : "";
    while (*p == ' ') p++;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        size_t length = (size_t)(end - p);
        while (length > 0 && p[length - 1] == ' ') length--;
        char name[64];
        if (length == 0) {
            snprintf(why, why_size, "an empty name in the list '%s'", list);
            return -1;
        }
        snprintf(name, sizeof name, "%.*s", (int)(length < sizeof name ? length : sizeof name - 1), p);
        if (trace_check_omittable(name, why, why_size) < 0) return -1;
        if (trace_meta_omits(&parsed, name)) {
            snprintf(why, why_size, "'%s' is declared twice", name);
            return -1;
        }
        // Every accepted name is shorter than TRACE_OMITTED_NAME_SIZE, and there are at most
        // TRACE_MAX_OMITTED of them.
        snprintf(parsed.omitted[parsed.n_omitted++], TRACE_OMITTED_NAME_SIZE, "%.*s", TRACE_OMITTED_NAME_SIZE - 1, name);
        if (!*end) break;
        p = end + 1;
        while (*p == ' ') p++;
        if (!*p) {
            snprintf(why, why_size, "an empty name in the list '%s'", list);
            return -1;
        }
    }
    memcpy(meta->omitted, parsed.omitted, sizeof meta->omitted);
    meta->n_omitted = parsed.n_omitted;
    return 0;
}

int trace_build_path(char *out, size_t size, int step, int layer, const char *name) {
    int length;
    if (layer >= 0 && name) length = snprintf(out, size, "/step_%04d/layer_%02d/%s", step, layer, name);
    else if (layer >= 0) length = snprintf(out, size, "/step_%04d/layer_%02d", step, layer);
    else if (name) length = snprintf(out, size, "/step_%04d/%s", step, name);
    else length = snprintf(out, size, "/step_%04d", step);
    return (length < 0 || (size_t)length >= size) ? -1 : 0;
}

// The number after `prefix` when `name` is exactly prefix + that number spelled with at least
// `min_digits` digits (zero-padded), as trace_build_path spells it; else -1.
static int parse_numbered_name(const char *name, const char *prefix, int min_digits) {
    size_t prefix_length = strlen(prefix);
    if (strncmp(name, prefix, prefix_length) != 0) return -1;
    const char *digits = name + prefix_length;
    size_t length = strlen(digits);
    if (length < (size_t)min_digits || length > 6) return -1;  // 6 digits keep atoi in range
    for (size_t i = 0; i < length; i++)
        if (digits[i] < '0' || digits[i] > '9') return -1;
    int number = atoi(digits);
    char canonical[32];
    snprintf(canonical, sizeof canonical, "%s%0*d", prefix, min_digits, number);
    return strcmp(canonical, name) == 0 ? number : -1;
}

int trace_parse_step_name(const char *name) { return parse_numbered_name(name, "step_", 4); }
int trace_parse_layer_name(const char *name) { return parse_numbered_name(name, "layer_", 2); }

int trace_valid_name(const char *name) {
    size_t length = name ? strlen(name) : 0;
    if (length == 0 || length > 63) return 0;
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) return 0;
    }
    return 1;
}

H5I_type_t trace_object_type(hid_t file, const char *path) {
    char prefix[TRACE_PATH_MAX];
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof prefix || path[0] != '/') return H5I_BADID;
    // Every prefix ending before a '/' (and the whole path) must exist as a link.
    for (size_t end = 1; end <= length; end++) {
        if (end < length && path[end] != '/') continue;
        memcpy(prefix, path, end);
        prefix[end] = '\0';
        if (H5Lexists(file, prefix, H5P_DEFAULT) <= 0) return H5I_BADID;
    }
    hid_t object = H5Oopen(file, path, H5P_DEFAULT);
    if (object < 0) return H5I_BADID;
    H5I_type_t type = H5Iget_type(object);
    H5Oclose(object);
    return type;
}
