// Writing a golden trace. Everything goes into `<path>.tmp-<pid>`; only a trace that closes cleanly
// is renamed over `path`, so an interrupted or failed run never replaces a good file.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "trace.h"
#include "trace_internal.h"
#include "../model/file_util.h"

struct TraceWriter {
    char *path;         // where the trace appears on success; the name used in messages
    char *temp_path;    // where it is written meanwhile
    hid_t file;
    int prompt_length;
    int n_steps;        // steps begun so far; the current step is n_steps - 1
    int step_n_tokens;  // n_tokens of the current step
    int n_tokens;       // length of /tokens, 0 until written
    int failed;         // an earlier call failed: the file may be incomplete, close refuses it
};

// Marks the writer as failed and reports, so every error path is one line.
#define WRITER_FAIL(writer, err, ...) ((writer)->failed = 1, fail((err), __VA_ARGS__))

// A scalar attribute holding a variable-length UTF-8 string: h5py reads it as `str`, h5dump prints it.
static int write_string_attribute(hid_t object, const char *name, const char *value) {
    int status = -1;
    hid_t type = H5Tcopy(H5T_C_S1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = -1;
    if (type < 0 || space < 0) goto done;
    if (H5Tset_size(type, H5T_VARIABLE) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0) goto done;
    attribute = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attribute < 0) goto done;
    if (H5Awrite(attribute, type, &value) < 0) goto done;
    status = 0;
done:
    if (attribute >= 0 && H5Aclose(attribute) < 0) status = -1;
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    return status;
}

// A scalar int32 attribute.
static int write_int_attribute(hid_t object, const char *name, int value) {
    int status = -1;
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = -1;
    if (space < 0) return -1;
    attribute = H5Acreate2(object, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attribute >= 0 && H5Awrite(attribute, H5T_NATIVE_INT, &value) >= 0) status = 0;
    if (attribute >= 0 && H5Aclose(attribute) < 0) status = -1;
    H5Sclose(space);
    return status;
}

// Creates dataset `dataset_path` with `rank` dims, little-endian `file_type`, and writes `data`.
// Missing groups on the way (layer_LL) are created.
static int write_dataset(hid_t file, const char *dataset_path, hid_t file_type, hid_t memory_type, int rank,
                         const hsize_t *dims, const void *data) {
    int status = -1;
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t link_properties = H5Pcreate(H5P_LINK_CREATE);
    hid_t dataset = -1;
    if (space < 0 || link_properties < 0) goto done;
    if (H5Pset_create_intermediate_group(link_properties, 1) < 0) goto done;
    dataset = H5Dcreate2(file, dataset_path, file_type, space, link_properties, H5P_DEFAULT, H5P_DEFAULT);
    if (dataset < 0) goto done;
    if (H5Dwrite(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) goto done;
    status = 0;
done:
    if (dataset >= 0 && H5Dclose(dataset) < 0) status = -1;
    if (link_properties >= 0) H5Pclose(link_properties);
    if (space >= 0) H5Sclose(space);
    return status;
}

// A TraceMeta string field must be non-empty and terminated inside its fixed-size array.
static int check_meta_string(const char *path, const char *field, const char *text, size_t capacity,
                             ErrorMessage *err) {
    size_t length = strnlen(text, capacity);
    if (length == 0) return fail(err, "%s: trace metadata '%s' is empty", path, field);
    if (length >= capacity) return fail(err, "%s: trace metadata '%s' is not terminated", path, field);
    return 0;
}

// The declared omissions, joined as the `omitted` attribute stores them ("gate,up,act"), must parse
// back into the same names under the policy (trace_meta_set_omitted: names a producer may omit, once).
static int check_omitted(const char *path, const TraceMeta *meta, char *joined, size_t size, ErrorMessage *err) {
    joined[0] = '\0';
    if (meta->n_omitted < 0 || meta->n_omitted > TRACE_MAX_OMITTED)
        return fail(err, "%s: trace metadata declares %d omitted names (0..%d)", path, meta->n_omitted,
                    TRACE_MAX_OMITTED);
    size_t used = 0;
    for (int i = 0; i < meta->n_omitted; i++) {
        if (strnlen(meta->omitted[i], TRACE_OMITTED_NAME_SIZE) == TRACE_OMITTED_NAME_SIZE)
            return fail(err, "%s: trace metadata: omitted name %d is not terminated", path, i);
        used += (size_t)snprintf(joined + used, size - used, "%s%s", i ? "," : "", meta->omitted[i]);
    }
    TraceMeta parsed;
    char why[256];
    if (trace_meta_set_omitted(&parsed, joined, why, sizeof why) < 0)
        return fail(err, "%s: cannot declare '%s' omitted: %s", path, joined, why);
    if (parsed.n_omitted != meta->n_omitted)  // a name holding a comma
        return fail(err, "%s: cannot declare '%s' omitted: a name holds a comma", path, joined);
    return 0;
}

static void writer_free(TraceWriter *writer) {
    free(writer->path);
    free(writer->temp_path);
    free(writer);
}

TraceWriter *trace_writer_open(const char *path, const TraceMeta *meta, ErrorMessage *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // our messages replace HDF5's error stack dumps
    if (!path || !*path) {
        fail(err, "trace: empty output path");
        return NULL;
    }
    if (!meta || !meta->model_config || !*meta->model_config) {
        fail(err, "%s: trace metadata has no model_config", path);
        return NULL;
    }
    if (check_meta_string(path, "producer", meta->producer, sizeof meta->producer, err) < 0 ||
        check_meta_string(path, "kv_dtype", meta->kv_dtype, sizeof meta->kv_dtype, err) < 0 ||
        check_meta_string(path, "weights_dtype", meta->weights_dtype, sizeof meta->weights_dtype, err) < 0 ||
        check_meta_string(path, "weights_fingerprint", meta->weights_fingerprint, sizeof meta->weights_fingerprint,
                          err) < 0 ||
        check_meta_string(path, "tool_version", meta->tool_version, sizeof meta->tool_version, err) < 0)
        return NULL;
    if (meta->prompt_length < 1) {
        fail(err, "%s: prompt_length %d, must be at least 1", path, meta->prompt_length);
        return NULL;
    }
    char omitted[TRACE_MAX_OMITTED * TRACE_OMITTED_NAME_SIZE];
    if (check_omitted(path, meta, omitted, sizeof omitted, err) < 0) return NULL;

    TraceWriter *writer = calloc(1, sizeof *writer);
    size_t temp_size = strlen(path) + 32;
    if (!writer || !(writer->path = strdup(path)) || !(writer->temp_path = malloc(temp_size))) {
        if (writer) writer_free(writer);
        fail(err, "%s: out of memory opening trace", path);
        return NULL;
    }
    temp_path_for(path, writer->temp_path, temp_size, NULL);  // temp_size always fits the suffix
    writer->prompt_length = meta->prompt_length;

    writer->file = H5Fcreate(writer->temp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (writer->file < 0) {
        fail(err, "%s: cannot create HDF5 file (is the directory writable?)", writer->temp_path);
        writer_free(writer);
        return NULL;
    }
    hid_t root = writer->file;
    if (write_int_attribute(root, "format_version", TRACE_FORMAT_VERSION) < 0 ||
        write_string_attribute(root, "producer", meta->producer) < 0 ||
        write_string_attribute(root, "kv_dtype", meta->kv_dtype) < 0 ||
        write_string_attribute(root, "weights_dtype", meta->weights_dtype) < 0 ||
        write_string_attribute(root, "weights_fingerprint", meta->weights_fingerprint) < 0 ||
        write_string_attribute(root, "tool_version", meta->tool_version) < 0 ||
        write_string_attribute(root, "model_config", meta->model_config) < 0 ||
        write_int_attribute(root, "prompt_length", meta->prompt_length) < 0 ||
        write_int_attribute(root, "kv_forced", meta->kv_forced ? 1 : 0) < 0 ||
        write_string_attribute(root, "omitted", omitted) < 0) {
        fail(err, "%s: cannot write the root attributes", writer->temp_path);
        trace_writer_abort(writer);
        return NULL;
    }
    return writer;
}

int trace_write_tokens(TraceWriter *writer, const int32_t *tokens, int n_tokens, ErrorMessage *err) {
    if (writer->n_tokens > 0) return WRITER_FAIL(writer, err, "%s: /tokens written twice", writer->path);
    if (!tokens || n_tokens < 1) return WRITER_FAIL(writer, err, "%s: /tokens is empty", writer->path);
    hsize_t dims[1] = {(hsize_t)n_tokens};
    if (write_dataset(writer->file, "/tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, tokens) < 0)
        return WRITER_FAIL(writer, err, "%s: cannot write /tokens", writer->path);
    writer->n_tokens = n_tokens;
    return 0;
}

int trace_begin_step(TraceWriter *writer, int step, int first_position, int n_tokens, ErrorMessage *err) {
    if (step != writer->n_steps)
        return WRITER_FAIL(writer, err, "%s: step %d begun out of order (expected step %d)", writer->path, step,
                           writer->n_steps);
    // The teacher-forcing layout of FORMAT.md: the prompt at once, then one token per step.
    int want_position = step == 0 ? 0 : writer->prompt_length + step - 1;
    int want_tokens = step == 0 ? writer->prompt_length : 1;
    if (first_position != want_position || n_tokens != want_tokens)
        return WRITER_FAIL(writer, err, "%s: step %d: first_position %d, n_tokens %d; expected %d, %d", writer->path,
                           step, first_position, n_tokens, want_position, want_tokens);

    char group_path[TRACE_PATH_MAX];
    if (trace_build_path(group_path, sizeof group_path, step, -1, NULL) < 0)
        return WRITER_FAIL(writer, err, "%s: step %d: path too long", writer->path, step);
    hid_t group = H5Gcreate2(writer->file, group_path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (group < 0) return WRITER_FAIL(writer, err, "%s: cannot create group %s", writer->path, group_path);
    int status = 0;
    if (write_int_attribute(group, "first_position", first_position) < 0 ||
        write_int_attribute(group, "n_tokens", n_tokens) < 0)
        status = -1;
    if (H5Gclose(group) < 0) status = -1;
    if (status < 0) return WRITER_FAIL(writer, err, "%s: cannot write the attributes of %s", writer->path, group_path);
    writer->n_steps = step + 1;
    writer->step_n_tokens = n_tokens;
    return 0;
}

int trace_write_tensor(TraceWriter *writer, int layer, const char *name, const float *data, int rows, int cols,
                       ErrorMessage *err) {
    if (writer->n_steps == 0)
        return WRITER_FAIL(writer, err, "%s: tensor '%s' written before trace_begin_step", writer->path,
                           name ? name : "(null)");
    int step = writer->n_steps - 1;
    if (!trace_valid_name(name) || !strcmp(name, "next_token") || (layer < 0 && !strncmp(name, "layer_", 6)))
        return WRITER_FAIL(writer, err, "%s: step %d: bad tensor name '%s'", writer->path, step,
                           name ? name : "(null)");
    char dataset_path[TRACE_PATH_MAX];
    if (trace_build_path(dataset_path, sizeof dataset_path, step, layer, name) < 0)
        return WRITER_FAIL(writer, err, "%s: step %d: tensor path too long", writer->path, step);
    if (!data || rows < 1 || cols < 1)
        return WRITER_FAIL(writer, err, "%s: %s: empty tensor [%d, %d]", writer->path, dataset_path, rows, cols);
    // final_norm and logits keep only the last row (the one that predicts the next token).
    int last_row_only = layer < 0 && (!strcmp(name, "final_norm") || !strcmp(name, "logits"));
    int want_rows = last_row_only ? 1 : writer->step_n_tokens;
    if (rows != want_rows)
        return WRITER_FAIL(writer, err, "%s: %s: %d rows, expected %d", writer->path, dataset_path, rows, want_rows);
    if (trace_object_type(writer->file, dataset_path) != H5I_BADID)
        return WRITER_FAIL(writer, err, "%s: %s written twice", writer->path, dataset_path);
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    if (write_dataset(writer->file, dataset_path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, data) < 0)
        return WRITER_FAIL(writer, err, "%s: cannot write %s [%d, %d]", writer->path, dataset_path, rows, cols);
    return 0;
}

int trace_write_next_token(TraceWriter *writer, int32_t token, ErrorMessage *err) {
    if (writer->n_steps == 0)
        return WRITER_FAIL(writer, err, "%s: next_token written before trace_begin_step", writer->path);
    char dataset_path[TRACE_PATH_MAX];
    if (trace_build_path(dataset_path, sizeof dataset_path, writer->n_steps - 1, -1, "next_token") < 0)
        return WRITER_FAIL(writer, err, "%s: next_token path too long", writer->path);
    if (trace_object_type(writer->file, dataset_path) != H5I_BADID)
        return WRITER_FAIL(writer, err, "%s: %s written twice", writer->path, dataset_path);
    hsize_t dims[1] = {1};
    if (write_dataset(writer->file, dataset_path, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, &token) < 0)
        return WRITER_FAIL(writer, err, "%s: cannot write %s", writer->path, dataset_path);
    return 0;
}

// Pushes the closed file to disk, so the rename never exposes a file whose data is still in flight.
static int sync_file(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int status = fsync(fd);
    if (close(fd) < 0) status = -1;
    return status;
}

int trace_writer_close(TraceWriter *writer, ErrorMessage *err) {
    int status = 0;
    int needed_tokens = writer->prompt_length + writer->n_steps - 1;
    if (writer->failed) status = fail(err, "%s: not written: an earlier trace write failed", writer->path);
    else if (writer->n_steps == 0) status = fail(err, "%s: not written: no steps", writer->path);
    else if (writer->n_tokens == 0) status = fail(err, "%s: not written: /tokens was never written", writer->path);
    else if (writer->n_tokens < needed_tokens)
        status = fail(err, "%s: not written: /tokens has %d tokens, %d steps after a %d-token prompt need %d",
                      writer->path, writer->n_tokens, writer->n_steps, writer->prompt_length, needed_tokens);
    else if (write_int_attribute(writer->file, "n_steps", writer->n_steps) < 0)
        status = fail(err, "%s: cannot write attribute n_steps", writer->temp_path);
    if (status < 0) {
        trace_writer_abort(writer);
        return -1;
    }

    herr_t closed = H5Fclose(writer->file);
    writer->file = -1;
    if (closed < 0) status = fail(err, "%s: closing the HDF5 file failed (disk full?)", writer->temp_path);
    else if (sync_file(writer->temp_path) < 0)
        status = fail(err, "%s: fsync failed: %s", writer->temp_path, strerror(errno));
    else if (rename(writer->temp_path, writer->path) < 0)
        status = fail(err, "%s: cannot rename %s into place: %s", writer->path, writer->temp_path, strerror(errno));
    if (status < 0) unlink(writer->temp_path);
    writer_free(writer);
    return status;
}

void trace_writer_abort(TraceWriter *writer) {
    if (!writer) return;
    if (writer->file >= 0) H5Fclose(writer->file);
    unlink(writer->temp_path);
    writer_free(writer);
}
