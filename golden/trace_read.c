// Reading a golden trace. trace_open validates everything a consumer relies on up front (root
// attributes, /tokens, the step groups and that every object in them opens) so later reads fail only
// on the tensor they ask for, an absent tensor is never a corrupt one, and
// every refusal is one line naming the file. Files written by h5py (the oracle) read the same way:
// strings may be fixed or variable length, integer attributes any integer width.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "file_sandbox.h"
#include "trace.h"
#include "trace_internal.h"

struct TraceReader {
    char *path;
    hid_t file;
    TraceMeta meta;
    int32_t *tokens;
    int n_tokens;
    int *step_first_position;  // [meta.n_steps]
    int *step_n_tokens;        // [meta.n_steps]
};

// ---------------------------------------------------------------------------------------------
// attributes

// Opens attribute `name` of `object`, which must hold exactly one element of `want_class`.
// `where` names the object in messages ("" for the root, else a group path).
static hid_t open_attribute(const char *path, hid_t object, const char *where, const char *name, H5T_class_t want_class,
                            ErrorMessage *err) {
    htri_t exists = H5Aexists(object, name);
    if (exists < 0) {
        fail(err, "%s: cannot read the attributes of %s", path, *where ? where : "/");
        return -1;
    }
    if (exists == 0) {
        fail(err, "%s: %s has no attribute '%s' (not a fusecheck trace?)", path, *where ? where : "/", name);
        return -1;
    }
    hid_t attribute = H5Aopen(object, name, H5P_DEFAULT);
    if (attribute < 0) {
        fail(err, "%s: cannot open attribute '%s' of %s", path, name, *where ? where : "/");
        return -1;
    }
    hid_t type = H5Aget_type(attribute);
    hid_t space = H5Aget_space(attribute);
    H5T_class_t type_class = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    hssize_t n_points = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (type_class != want_class || n_points != 1) {
        fail(err, "%s: attribute '%s' of %s is not a single %s", path, name, *where ? where : "/",
             want_class == H5T_STRING ? "string" : "integer");
        H5Aclose(attribute);
        return -1;
    }
    return attribute;
}

// Reads a string attribute (variable or fixed length) into a malloc'd C string.
static int read_string_attribute(const char *path, hid_t object, const char *name, char **value, ErrorMessage *err) {
    *value = NULL;
    hid_t attribute = open_attribute(path, object, "", name, H5T_STRING, err);
    if (attribute < 0) return -1;
    hid_t file_type = H5Aget_type(attribute);
    hid_t memory_type = file_type >= 0 ? H5Tcopy(H5T_C_S1) : -1;
    int status = -1;
    if (memory_type < 0 || H5Tset_cset(memory_type, H5Tget_cset(file_type)) < 0) goto done;
    if (H5Tis_variable_str(file_type) > 0) {
        char *raw = NULL;
        if (H5Tset_size(memory_type, H5T_VARIABLE) < 0 || H5Aread(attribute, memory_type, &raw) < 0) goto done;
        *value = strdup(raw ? raw : "");
        H5free_memory(raw);
    } else {
        // Fixed length: read into one more byte than stored, so the string is always terminated.
        size_t size = H5Tget_size(file_type);
        if (size == 0 || H5Tset_size(memory_type, size + 1) < 0 || H5Tset_strpad(memory_type, H5T_STR_NULLTERM) < 0)
            goto done;
        *value = calloc(size + 1, 1);
        if (*value && H5Aread(attribute, memory_type, *value) < 0) {
            free(*value);
            *value = NULL;
            goto done;
        }
    }
    if (*value) status = 0;
done:
    if (memory_type >= 0) H5Tclose(memory_type);
    if (file_type >= 0) H5Tclose(file_type);
    H5Aclose(attribute);
    if (status < 0) fail(err, "%s: cannot read string attribute '%s'", path, name);
    return status;
}

// Reads an integer attribute of any stored width into an int, refusing values out of range.
static int read_int_attribute(const char *path, hid_t object, const char *where, const char *name, int *value,
                              ErrorMessage *err) {
    hid_t attribute = open_attribute(path, object, where, name, H5T_INTEGER, err);
    if (attribute < 0) return -1;
    long long wide = 0;
    herr_t status = H5Aread(attribute, H5T_NATIVE_LLONG, &wide);
    H5Aclose(attribute);
    if (status < 0) return fail(err, "%s: cannot read attribute '%s' of %s", path, name, *where ? where : "/");
    if (wide < INT_MIN || wide > INT_MAX)
        return fail(err, "%s: attribute '%s' of %s is out of range: %lld", path, name, *where ? where : "/", wide);
    *value = (int)wide;
    return 0;
}

// Reads a string attribute into a fixed TraceMeta field.
static int read_meta_field(const char *path, hid_t root, const char *name, char *field, size_t capacity,
                           ErrorMessage *err) {
    char *value = NULL;
    if (read_string_attribute(path, root, name, &value, err) < 0) return -1;
    size_t length = strlen(value);
    int status = 0;
    if (length == 0) status = fail(err, "%s: attribute '%s' is empty", path, name);
    else if (length >= capacity)
        status = fail(err, "%s: attribute '%s' is %zu characters long, at most %zu allowed", path, name, length,
                      capacity - 1);
    else memcpy(field, value, length + 1);
    free(value);
    return status;
}

// ---------------------------------------------------------------------------------------------
// datasets

// Opens the dataset at `dataset_path`; an absent one is an error naming the file and the path.
static hid_t open_dataset(const TraceReader *reader, const char *dataset_path, ErrorMessage *err) {
    H5I_type_t type = trace_object_type(reader->file, dataset_path);
    if (type == H5I_BADID) {
        fail(err, "%s: no dataset %s", reader->path, dataset_path);
        return -1;
    }
    if (type != H5I_DATASET) {
        fail(err, "%s: %s is not a dataset", reader->path, dataset_path);
        return -1;
    }
    hid_t dataset = H5Dopen2(reader->file, dataset_path, H5P_DEFAULT);
    if (dataset < 0) fail(err, "%s: cannot open dataset %s", reader->path, dataset_path);
    return dataset;
}

// Checks the element type (class and byte size) and returns the dims (rank <= 2) of an open dataset.
static int dataset_shape(const TraceReader *reader, hid_t dataset, const char *dataset_path, H5T_class_t want_class,
                         const char *want_name, int *rank, hsize_t dims[2], ErrorMessage *err) {
    hid_t type = H5Dget_type(dataset);
    if (type < 0) return fail(err, "%s: cannot read the type of %s", reader->path, dataset_path);
    H5T_class_t type_class = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    int is_signed = type_class == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
    H5Tclose(type);
    if (type_class != want_class || size != 4 || (want_class == H5T_INTEGER && !is_signed))
        return fail(err, "%s: %s is not %s", reader->path, dataset_path, want_name);

    hid_t space = H5Dget_space(dataset);
    if (space < 0) return fail(err, "%s: cannot read the shape of %s", reader->path, dataset_path);
    *rank = H5Sget_simple_extent_ndims(space);
    int status = 0;
    if (*rank < 1 || *rank > 2) status = fail(err, "%s: %s has rank %d, expected 1 or 2", reader->path, dataset_path, *rank);
    else if (H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        status = fail(err, "%s: cannot read the shape of %s", reader->path, dataset_path);
    H5Sclose(space);
    return status;
}

// The format stores every dataset uncompressed (FORMAT.md), so its bytes in the file must cover its
// declared shape. Checked before allocating: a few-KB corrupt file that declares [10^6, 10^6] is
// refused here instead of costing terabytes of malloc (found by tests/fuzz).
static int check_stored(const TraceReader *reader, hid_t dataset, const char *dataset_path, hsize_t needed_bytes,
                        ErrorMessage *err) {
    hsize_t stored = H5Dget_storage_size(dataset);
    if (stored < needed_bytes)
        return fail(err, "%s: %s declares %llu bytes but stores %llu (truncated or corrupt)", reader->path,
                    dataset_path, (unsigned long long)needed_bytes, (unsigned long long)stored);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// group listings

// Names of the links in group `group_path`, unsorted: malloc'd array of malloc'd strings.
static int list_links(const TraceReader *reader, const char *group_path, char ***names, int *n_names,
                      ErrorMessage *err) {
    *names = NULL;
    *n_names = 0;
    hid_t group = H5Gopen2(reader->file, group_path, H5P_DEFAULT);
    if (group < 0) return fail(err, "%s: cannot open group %s", reader->path, group_path);
    H5G_info_t info;
    int status = 0;
    if (H5Gget_info(group, &info) < 0) status = fail(err, "%s: cannot list group %s", reader->path, group_path);
    else if (info.nlinks > 0 && !(*names = calloc(info.nlinks, sizeof **names)))
        status = fail(err, "%s: out of memory listing %s", reader->path, group_path);
    for (hsize_t i = 0; status == 0 && i < info.nlinks; i++) {
        ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        char *name = length >= 0 ? malloc((size_t)length + 1) : NULL;
        if (!name || H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, (size_t)length + 1,
                                        H5P_DEFAULT) < 0) {
            free(name);
            status = fail(err, "%s: cannot list group %s", reader->path, group_path);
            break;
        }
        (*names)[(*n_names)++] = name;
    }
    H5Gclose(group);
    if (status < 0) {
        trace_free_names(*names, *n_names);
        *names = NULL;
        *n_names = 0;
    }
    return status;
}

void trace_free_names(char **names, int n_names) {
    if (!names) return;
    for (int i = 0; i < n_names; i++) free(names[i]);
    free(names);
}

// ---------------------------------------------------------------------------------------------
// open and validate

// /tokens: int32, 1-D, at least the tokens the steps consume.
static int read_tokens(TraceReader *reader, ErrorMessage *err) {
    hid_t dataset = open_dataset(reader, "/tokens", err);
    if (dataset < 0) return -1;
    int rank = 0;
    hsize_t dims[2] = {0, 0};
    int status = dataset_shape(reader, dataset, "/tokens", H5T_INTEGER, "int32", &rank, dims, err);
    if (status == 0 && rank != 1) status = fail(err, "%s: /tokens has rank %d, expected 1", reader->path, rank);
    if (status == 0 && (dims[0] < 1 || dims[0] > INT_MAX))
        status = fail(err, "%s: /tokens has %llu tokens", reader->path, (unsigned long long)dims[0]);
    if (status == 0) status = check_stored(reader, dataset, "/tokens", dims[0] * sizeof *reader->tokens, err);
    if (status == 0 && !(reader->tokens = malloc(dims[0] * sizeof *reader->tokens)))
        status = fail(err, "%s: out of memory reading /tokens", reader->path);
    if (status == 0 && H5Dread(dataset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, reader->tokens) < 0)
        status = fail(err, "%s: cannot read /tokens (truncated file?)", reader->path);
    if (status == 0) reader->n_tokens = (int)dims[0];
    H5Dclose(dataset);
    return status;
}

// Every object in group `group_path` must open, datasets with a readable type and shape; layer_LL groups
// (depth 0: a step group) are checked the same way. A corrupt object header would otherwise read as an
// absent tensor or layer, and missing evidence would pass unnoticed.
static int check_tree(const TraceReader *reader, const char *group_path, int depth, ErrorMessage *err) {
    char **names = NULL;
    int n_names = 0;
    if (list_links(reader, group_path, &names, &n_names, err) < 0) return -1;
    int status = 0;
    for (int i = 0; i < n_names && status == 0; i++) {
        char object_path[TRACE_PATH_MAX];
        if (snprintf(object_path, sizeof object_path, "%s/%s", group_path, names[i]) >= (int)sizeof object_path) {
            status = fail(err, "%s: %s/%s: path too long", reader->path, group_path, names[i]);
            break;
        }
        hid_t object = H5Oopen(reader->file, object_path, H5P_DEFAULT);
        if (object < 0) {
            status = fail(err, "%s: %s cannot be opened (corrupt or unreadable HDF5 object)", reader->path, object_path);
            break;
        }
        H5I_type_t type = H5Iget_type(object);
        if (type == H5I_DATASET) {
            hid_t data_type = H5Dget_type(object), space = H5Dget_space(object);
            if (data_type < 0 || space < 0)
                status = fail(err, "%s: %s has an unreadable %s (corrupt HDF5 object)", reader->path, object_path,
                              data_type < 0 ? "type" : "shape");
            if (data_type >= 0) H5Tclose(data_type);
            if (space >= 0) H5Sclose(space);
        } else if (type == H5I_GROUP && depth == 0 && trace_parse_layer_name(names[i]) >= 0) {
            status = check_tree(reader, object_path, depth + 1, err);
        }
        H5Oclose(object);
    }
    trace_free_names(names, n_names);
    return status;
}

// Every group step_NNNN for 0 <= NNNN < n_steps exists with the teacher-forcing positions, and no other.
static int read_steps(TraceReader *reader, ErrorMessage *err) {
    int n_steps = reader->meta.n_steps, prompt_length = reader->meta.prompt_length;
    reader->step_first_position = calloc((size_t)n_steps, sizeof(int));
    reader->step_n_tokens = calloc((size_t)n_steps, sizeof(int));
    if (!reader->step_first_position || !reader->step_n_tokens)
        return fail(err, "%s: out of memory reading %d steps", reader->path, n_steps);
    for (int step = 0; step < n_steps; step++) {
        char group_path[TRACE_PATH_MAX];
        trace_build_path(group_path, sizeof group_path, step, -1, NULL);
        if (trace_object_type(reader->file, group_path) != H5I_GROUP)
            return fail(err, "%s: group %s is missing (n_steps is %d)", reader->path, group_path, n_steps);
        hid_t group = H5Gopen2(reader->file, group_path, H5P_DEFAULT);
        if (group < 0) return fail(err, "%s: cannot open group %s", reader->path, group_path);
        int first_position = 0, n_tokens = 0;
        int status = read_int_attribute(reader->path, group, group_path, "first_position", &first_position, err);
        if (status == 0) status = read_int_attribute(reader->path, group, group_path, "n_tokens", &n_tokens, err);
        H5Gclose(group);
        if (status < 0) return -1;
        int want_position = step == 0 ? 0 : prompt_length + step - 1;
        int want_tokens = step == 0 ? prompt_length : 1;
        if (first_position != want_position || n_tokens != want_tokens)
            return fail(err, "%s: %s: first_position %d, n_tokens %d; expected %d, %d", reader->path, group_path,
                        first_position, n_tokens, want_position, want_tokens);
        reader->step_first_position[step] = first_position;
        reader->step_n_tokens[step] = n_tokens;
        if (check_tree(reader, group_path, 0, err) < 0) return -1;
    }
    // Groups beyond n_steps, or misspelled step names, mean the attribute and the data disagree.
    char **names = NULL;
    int n_names = 0;
    if (list_links(reader, "/", &names, &n_names, err) < 0) return -1;
    int status = 0;
    for (int i = 0; i < n_names && status == 0; i++) {
        if (strncmp(names[i], "step_", 5) != 0) continue;
        int step = trace_parse_step_name(names[i]);
        if (step < 0 || step >= n_steps)
            status = fail(err, "%s: unexpected group /%s (n_steps is %d: step_0000..step_%04d)", reader->path,
                          names[i], n_steps, n_steps - 1);
    }
    trace_free_names(names, n_names);
    return status;
}

static int read_meta(TraceReader *reader, ErrorMessage *err) {
    const char *path = reader->path;
    hid_t root = reader->file;
    TraceMeta *meta = &reader->meta;
    int version = 0;
    if (read_int_attribute(path, root, "", "format_version", &version, err) < 0) return -1;
    if (version < TRACE_OLDEST_FORMAT_VERSION || version > TRACE_FORMAT_VERSION)
        return fail(err, "%s: trace format_version %d, this fusecheck reads versions %d to %d", path, version,
                    TRACE_OLDEST_FORMAT_VERSION, TRACE_FORMAT_VERSION);
    meta->format_version = version;
    if (read_meta_field(path, root, "producer", meta->producer, sizeof meta->producer, err) < 0 ||
        read_meta_field(path, root, "kv_dtype", meta->kv_dtype, sizeof meta->kv_dtype, err) < 0 ||
        read_meta_field(path, root, "weights_dtype", meta->weights_dtype, sizeof meta->weights_dtype, err) < 0 ||
        read_meta_field(path, root, "weights_fingerprint", meta->weights_fingerprint,
                        sizeof meta->weights_fingerprint, err) < 0 ||
        read_meta_field(path, root, "tool_version", meta->tool_version, sizeof meta->tool_version, err) < 0 ||
        read_string_attribute(path, root, "model_config", &meta->model_config, err) < 0 ||
        read_int_attribute(path, root, "", "prompt_length", &meta->prompt_length, err) < 0 ||
        read_int_attribute(path, root, "", "n_steps", &meta->n_steps, err) < 0)
        return -1;
    meta->kv_forced = 0;  // optional: older traces and other producers omit it
    htri_t has_forced = H5Aexists(root, "kv_forced");
    if (has_forced < 0) return fail(err, "%s: cannot query attribute 'kv_forced'", path);
    if (has_forced > 0 && read_int_attribute(path, root, "", "kv_forced", &meta->kv_forced, err) < 0) return -1;
    // Version 2 says what the producer never materialises (required, "" for nothing); version 1 declares
    // nothing. A declaration the policy forbids makes the whole trace bad input.
    meta->n_omitted = 0;
    if (version >= 2) {
        char *omitted = NULL, why[256];
        if (read_string_attribute(path, root, "omitted", &omitted, err) < 0) return -1;
        int status = trace_meta_set_omitted(meta, omitted, why, sizeof why);
        free(omitted);
        if (status < 0) return fail(err, "%s: attribute 'omitted': %s", path, why);
    }
    if (!*meta->model_config) return fail(err, "%s: attribute 'model_config' is empty", path);
    if (meta->prompt_length < 1) return fail(err, "%s: prompt_length %d, must be at least 1", path, meta->prompt_length);
    if (meta->n_steps < 1) return fail(err, "%s: n_steps %d, must be at least 1", path, meta->n_steps);
    return 0;
}

TraceReader *trace_open_unguarded(const char *path, ErrorMessage *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // our one-line messages replace HDF5's error stack dumps
    struct stat info;
    if (!path || stat(path, &info) != 0) {
        fail(err, "%s: no such trace file", path ? path : "(null)");
        return NULL;
    }
    if (!S_ISREG(info.st_mode)) {
        fail(err, "%s: not a regular file", path);
        return NULL;
    }
    if (H5Fis_hdf5(path) <= 0) {
        fail(err, "%s: not an HDF5 file or truncated", path);
        return NULL;
    }
    TraceReader *reader = calloc(1, sizeof *reader);
    if (!reader || !(reader->path = strdup(path))) {
        free(reader);
        fail(err, "%s: out of memory opening trace", path);
        return NULL;
    }
    // A truncated file has a valid signature but its end-of-file address lies past the real end:
    // H5Fopen refuses it.
    reader->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (reader->file < 0) {
        fail(err, "%s: not an HDF5 file or truncated", path);
        trace_close(reader);
        return NULL;
    }
    if (read_meta(reader, err) < 0 || read_tokens(reader, err) < 0) {
        trace_close(reader);
        return NULL;
    }
    // In 64 bits: both attributes may be near INT_MAX in a corrupt file.
    long long needed_tokens = (long long)reader->meta.prompt_length + reader->meta.n_steps - 1;
    if (reader->n_tokens < needed_tokens) {
        fail(err, "%s: /tokens has %d tokens, %d steps after a %d-token prompt need %lld", path, reader->n_tokens,
             reader->meta.n_steps, reader->meta.prompt_length, needed_tokens);
        trace_close(reader);
        return NULL;
    }
    if (read_steps(reader, err) < 0) {
        trace_close(reader);
        return NULL;
    }
    return reader;
}

// Reads every dataset of one group (layer < 0: the step's own) the way callers do: listed, then read.
static void read_group(const TraceReader *reader, int step, int layer) {
    char **names = NULL;
    int n_names = 0;
    if (trace_list_tensors(reader, step, layer, &names, &n_names, NULL) < 0) return;
    for (int i = 0; i < n_names; i++) {
        float *values = NULL;
        int32_t token;
        trace_has_tensor(reader, step, layer, names[i]);
        if (trace_read_tensor(reader, step, layer, names[i], &values, NULL, NULL, NULL) < 0 && layer < 0)
            trace_read_next_token(reader, step, &token, NULL);
        free(values);
    }
    trace_free_names(names, n_names);
}

// Reads every dataset of every step and layer group through the reader's own functions; refusals
// of single datasets are fine here, only getting through matters.
static void read_every_dataset(const TraceReader *reader) {
    for (int step = 0; step < reader->meta.n_steps; step++) {
        trace_n_layers(reader, step);
        read_group(reader, step, -1);
        char group_path[TRACE_PATH_MAX];
        trace_build_path(group_path, sizeof group_path, step, -1, NULL);
        char **links = NULL;
        int n_links = 0;
        if (list_links(reader, group_path, &links, &n_links, NULL) < 0) continue;
        for (int i = 0; i < n_links; i++) {
            int layer = trace_parse_layer_name(links[i]);
            if (layer >= 0) read_group(reader, step, layer);
        }
        trace_free_names(links, n_links);
    }
}

// HDF5 1.10 trusts lengths stored in the file: a corrupt heap or object header can make the library
// read out of bounds and crash, loop forever, or allocate gigabytes (tests/fuzz found all three
// within a minute, in H5HG_read, H5C_protect and H5T__conv_vlen). So the file is first opened and
// every dataset read in a child process (file_sandbox.h, with its limits), by the code paths the
// caller will take; a 2 MB golden takes milliseconds. A file that kills the child is refused and the caller's process never touches it; a file the child refused cleanly is
// refused with the child's message (so an allocation the limit stopped is never retried here).
static int read_in_child(void *context, int fd) {
    const char *path = context;
    ErrorMessage child_err = {{0}};
    TraceReader *reader = trace_open_unguarded(path, &child_err);
    if (reader) read_every_dataset(reader);
    else if (write(fd, child_err.text, strlen(child_err.text)) < 0) return -1;
    trace_close(reader);
    return 0;
}

static int survives_full_read(const char *path, ErrorMessage *err) {
    struct stat info;
    if (stat(path, &info) != 0) return 0;  // trace_open_unguarded names the problem
    SandboxResult child;
    if (sandbox_run(path, info.st_size, "check the file", read_in_child, (void *)path, &child, err)) return -1;
    int rc = 0;
    if (child.end == SANDBOX_EXITED_CLEANLY) {
        if (child.output_size) rc = fail(err, "%s", child.output);
    } else if (child.end == SANDBOX_HUNG) {
        rc = fail(err, "%s: corrupt HDF5 file (reading it hung the HDF5 library for %lu s of CPU)", path,
                  child.cpu_seconds);
    } else {
        rc = fail(err, "%s: corrupt HDF5 file (reading it crashed the HDF5 library)", path);
    }
    free(child.output);
    return rc;
}

TraceReader *trace_open(const char *path, ErrorMessage *err) {
    if (path && survives_full_read(path, err) < 0) return NULL;
    return trace_open_unguarded(path, err);
}

void trace_close(TraceReader *reader) {
    if (!reader) return;
    if (reader->file > 0) H5Fclose(reader->file);
    free(reader->meta.model_config);
    free(reader->tokens);
    free(reader->step_first_position);
    free(reader->step_n_tokens);
    free(reader->path);
    free(reader);
}

const TraceMeta *trace_meta(const TraceReader *reader) { return &reader->meta; }
const char *trace_path(const TraceReader *reader) { return reader->path; }

const int32_t *trace_tokens(const TraceReader *reader, int *n_tokens) {
    if (n_tokens) *n_tokens = reader->n_tokens;
    return reader->tokens;
}

int trace_n_steps(const TraceReader *reader) { return reader->meta.n_steps; }

static int check_step(const TraceReader *reader, int step, ErrorMessage *err) {
    if (step < 0 || step >= reader->meta.n_steps)
        return fail(err, "%s: step %d out of range (the trace has %d steps)", reader->path, step, reader->meta.n_steps);
    return 0;
}

int trace_step_info(const TraceReader *reader, int step, int *first_position, int *n_tokens, ErrorMessage *err) {
    if (check_step(reader, step, err) < 0) return -1;
    if (first_position) *first_position = reader->step_first_position[step];
    if (n_tokens) *n_tokens = reader->step_n_tokens[step];
    return 0;
}

// Highest layer_LL index in the step plus one, so `for (layer < n)` visits every layer present.
int trace_n_layers(const TraceReader *reader, int step) {
    if (step < 0 || step >= reader->meta.n_steps) return 0;
    char group_path[TRACE_PATH_MAX];
    trace_build_path(group_path, sizeof group_path, step, -1, NULL);
    char **names = NULL;
    int n_names = 0;
    if (list_links(reader, group_path, &names, &n_names, NULL) < 0) return 0;
    int n_layers = 0;
    for (int i = 0; i < n_names; i++) {
        int layer = trace_parse_layer_name(names[i]);
        if (layer >= n_layers) n_layers = layer + 1;
    }
    trace_free_names(names, n_names);
    return n_layers;
}

int trace_has_tensor(const TraceReader *reader, int step, int layer, const char *name) {
    if (step < 0 || step >= reader->meta.n_steps || !trace_valid_name(name)) return 0;
    char dataset_path[TRACE_PATH_MAX];
    if (trace_build_path(dataset_path, sizeof dataset_path, step, layer, name) < 0) return 0;
    return trace_object_type(reader->file, dataset_path) == H5I_DATASET;
}

int trace_read_tensor(const TraceReader *reader, int step, int layer, const char *name, float **data, int *rows,
                      int *cols, ErrorMessage *err) {
    *data = NULL;
    if (check_step(reader, step, err) < 0) return -1;
    if (!trace_valid_name(name)) return fail(err, "%s: bad tensor name '%s'", reader->path, name ? name : "(null)");
    char dataset_path[TRACE_PATH_MAX];
    if (trace_build_path(dataset_path, sizeof dataset_path, step, layer, name) < 0)
        return fail(err, "%s: tensor path too long", reader->path);
    hid_t dataset = open_dataset(reader, dataset_path, err);
    if (dataset < 0) return -1;
    int rank = 0;
    hsize_t dims[2] = {0, 0};
    int status = dataset_shape(reader, dataset, dataset_path, H5T_FLOAT, "float32", &rank, dims, err);
    if (status == 0 && rank == 1) {  // a vector reads as one row
        dims[1] = dims[0];
        dims[0] = 1;
    }
    if (status == 0 && (dims[0] < 1 || dims[1] < 1 || dims[0] > INT_MAX || dims[1] > INT_MAX ||
                        dims[0] > SIZE_MAX / sizeof(float) / dims[1]))
        status = fail(err, "%s: %s has unusable shape [%llu, %llu]", reader->path, dataset_path,
                      (unsigned long long)dims[0], (unsigned long long)dims[1]);
    float *values = NULL;
    if (status == 0) status = check_stored(reader, dataset, dataset_path, dims[0] * dims[1] * sizeof(float), err);
    if (status == 0 && !(values = malloc(dims[0] * dims[1] * sizeof(float))))
        status = fail(err, "%s: out of memory reading %s [%llu, %llu]", reader->path, dataset_path,
                      (unsigned long long)dims[0], (unsigned long long)dims[1]);
    if (status == 0 && H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
        status = fail(err, "%s: cannot read %s (truncated file?)", reader->path, dataset_path);
    H5Dclose(dataset);
    if (status < 0) {
        free(values);
        return -1;
    }
    *data = values;
    if (rows) *rows = (int)dims[0];
    if (cols) *cols = (int)dims[1];
    return 0;
}

int trace_read_next_token(const TraceReader *reader, int step, int32_t *token, ErrorMessage *err) {
    if (check_step(reader, step, err) < 0) return -1;
    char dataset_path[TRACE_PATH_MAX];
    trace_build_path(dataset_path, sizeof dataset_path, step, -1, "next_token");
    hid_t dataset = open_dataset(reader, dataset_path, err);
    if (dataset < 0) return -1;
    int rank = 0;
    hsize_t dims[2] = {0, 0};
    int status = dataset_shape(reader, dataset, dataset_path, H5T_INTEGER, "int32", &rank, dims, err);
    if (status == 0 && (rank != 1 || dims[0] != 1))
        status = fail(err, "%s: %s is not a single int32", reader->path, dataset_path);
    if (status == 0 && H5Dread(dataset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, token) < 0)
        status = fail(err, "%s: cannot read %s", reader->path, dataset_path);
    H5Dclose(dataset);
    return status;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Datasets of a step or a layer group, sorted; layer groups are skipped. At step level this includes
// next_token (int32: read it with trace_read_next_token). A layer group the producer never wrote
// lists as empty.
int trace_list_tensors(const TraceReader *reader, int step, int layer, char ***names, int *n_names,
                       ErrorMessage *err) {
    *names = NULL;
    *n_names = 0;
    if (check_step(reader, step, err) < 0) return -1;
    char group_path[TRACE_PATH_MAX];
    trace_build_path(group_path, sizeof group_path, step, layer, NULL);
    H5I_type_t type = trace_object_type(reader->file, group_path);
    if (type == H5I_BADID && layer >= 0) return 0;
    if (type != H5I_GROUP) return fail(err, "%s: %s is not a group", reader->path, group_path);

    char **links = NULL;
    int n_links = 0;
    if (list_links(reader, group_path, &links, &n_links, err) < 0) return -1;
    int kept = 0;
    for (int i = 0; i < n_links; i++) {
        char dataset_path[TRACE_PATH_MAX];
        int is_dataset = snprintf(dataset_path, sizeof dataset_path, "%s/%s", group_path, links[i]) <
                            (int)sizeof dataset_path &&
                        trace_object_type(reader->file, dataset_path) == H5I_DATASET;
        if (is_dataset) links[kept++] = links[i];
        else free(links[i]);
    }
    if (kept == 0) {
        free(links);
        return 0;
    }
    qsort(links, (size_t)kept, sizeof *links, compare_names);
    *names = links;
    *n_names = kept;
    return 0;
}
