#include <stdio.h>
#include <string.h>

#include "trace.h"
#include "trace_internal.h"

// Order of the forward pass inside one decoder layer (see trace.h for shapes and meanings).
const char *const TRACE_LAYER_TENSORS[TRACE_N_LAYER_TENSORS] = {
    "attn_norm", "q", "k", "v", "attn", "attn_out", "resid_attn",
    "mlp_norm", "gate", "up", "act", "mlp_out", "resid_mlp",
};

int trace_build_path(char *out, size_t size, int step, int layer, const char *name) {
    int length;
    if (layer >= 0 && name) length = snprintf(out, size, "/step_%04d/layer_%02d/%s", step, layer, name);
    else if (layer >= 0) length = snprintf(out, size, "/step_%04d/layer_%02d", step, layer);
    else if (name) length = snprintf(out, size, "/step_%04d/%s", step, name);
    else length = snprintf(out, size, "/step_%04d", step);
    return (length < 0 || (size_t)length >= size) ? -1 : 0;
}

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
