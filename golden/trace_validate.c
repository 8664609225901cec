// Validating a trace against golden/FORMAT.md: every problem, each with its object path.
// The names come from trace_names.c (TRACE_LAYER_TENSORS, TRACE_STEP_TENSORS, the omission policy),
// so the validator and the reader never disagree on what a trace holds.
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "file_sandbox.h"
#include "trace.h"
#include "trace_internal.h"
#include "trace_validate.h"
#include "../model/config.h"

// More problems than this and the file is hopeless; the list stops there, and says so, rather than
// growing without bound on a hostile file.
#define MAX_PROBLEMS 100000

typedef struct {
    hid_t file;
    TraceValidation *result;
    int problem_capacity;     // allocated TraceProblem slots of result->problems
    int out_of_memory;
    int version;              // 1 or 2; 2 when the attribute is unusable (the stricter rules)
    int prompt_length;        // 0 when unusable
    int n_steps;              // 0 when unusable
    int have_config;
    ModelConfig config;
    TraceMeta declared;       // only n_omitted/omitted are used
} Validator;

// One line, no tabs or control characters: problems travel from the checking child as
// "object\tmessage\n", and a corrupt file's names must not drive the user's terminal.
static void flatten(char *text) {
    for (; *text; text++)
        if ((unsigned char)*text < 0x20 || *text == 0x7f) *text = '?';
}

static void problem(Validator *v, const char *object, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void problem(Validator *v, const char *object, const char *format, ...) {
    TraceValidation *r = v->result;
    if (r->n_problems >= MAX_PROBLEMS) {
        r->problems_dropped++;
        return;
    }
    if (r->n_problems == v->problem_capacity) {
        int capacity = v->problem_capacity ? 2 * v->problem_capacity : 64;
        TraceProblem *grown = realloc(r->problems, (size_t)capacity * sizeof *grown);
        if (!grown) {
            v->out_of_memory = 1;
            return;
        }
        r->problems = grown;
        v->problem_capacity = capacity;
    }
    TraceProblem *p = &r->problems[r->n_problems++];
    snprintf(p->object, sizeof p->object, "%s", object);
    va_list args;
    va_start(args, format);
    vsnprintf(p->message, sizeof p->message, format, args);
    va_end(args);
    flatten(p->object);
    flatten(p->message);
}

// ---------------------------------------------------------------------------------------------
// attributes

// Opens attribute `name` of `object` when it exists, is scalar and of `want_class`; otherwise adds a
// problem (when missing only if `required`) and returns -1.
static hid_t open_scalar_attribute(Validator *v, hid_t object, const char *where, const char *name,
                                   H5T_class_t want_class, int required) {
    const char *kind = want_class == H5T_STRING ? "string" : "integer";
    htri_t exists = H5Aexists(object, name);
    if (exists < 0) {
        problem(v, where, "cannot read attribute '%s'", name);
        return -1;
    }
    if (exists == 0) {
        if (required) problem(v, where, "no attribute '%s' (required: a scalar %s)", name, kind);
        return -1;
    }
    hid_t attribute = H5Aopen(object, name, H5P_DEFAULT);
    if (attribute < 0) {
        problem(v, where, "cannot open attribute '%s'", name);
        return -1;
    }
    hid_t type = H5Aget_type(attribute), space = H5Aget_space(attribute);
    H5T_class_t type_class = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    H5S_class_t space_class = space >= 0 ? H5Sget_simple_extent_type(space) : H5S_NO_CLASS;
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (type_class != want_class || space_class != H5S_SCALAR) {
        problem(v, where, "attribute '%s' is %s%s, expected a scalar %s", name,
                space_class == H5S_SCALAR ? "a scalar " : "an array of ",
                type_class == H5T_STRING ? "string" : type_class == H5T_INTEGER ? "integer"
                                                    : type_class == H5T_FLOAT   ? "float"
                                                                                : "another type",
                kind);
        H5Aclose(attribute);
        return -1;
    }
    return attribute;
}

// An integer attribute of any stored width (FORMAT.md: written int32, read at any width). 1 when
// *value was read, else 0 (a problem was added unless it is absent and optional).
static int int_attribute(Validator *v, hid_t object, const char *where, const char *name, int required, int *value) {
    hid_t attribute = open_scalar_attribute(v, object, where, name, H5T_INTEGER, required);
    if (attribute < 0) return 0;
    long long wide = 0;
    herr_t status = H5Aread(attribute, H5T_NATIVE_LLONG, &wide);
    H5Aclose(attribute);
    if (status < 0) {
        problem(v, where, "cannot read attribute '%s'", name);
        return 0;
    }
    if (wide < INT_MIN || wide > INT_MAX) {
        problem(v, where, "attribute '%s' is %lld, out of the int32 range", name, wide);
        return 0;
    }
    *value = (int)wide;
    return 1;
}

// A string attribute, variable or fixed length, as a malloc'd C string; NULL (and a problem) when
// missing or unusable.
static char *string_attribute(Validator *v, const char *name) {
    hid_t attribute = open_scalar_attribute(v, v->file, "/", name, H5T_STRING, 1);
    if (attribute < 0) return NULL;
    hid_t file_type = H5Aget_type(attribute);
    hid_t memory_type = file_type >= 0 ? H5Tcopy(H5T_C_S1) : -1;
    char *value = NULL;
    if (memory_type >= 0 && H5Tset_cset(memory_type, H5Tget_cset(file_type)) >= 0) {
        if (H5Tis_variable_str(file_type) > 0) {
            char *raw = NULL;
            if (H5Tset_size(memory_type, H5T_VARIABLE) >= 0 && H5Aread(attribute, memory_type, &raw) >= 0) {
                value = strdup(raw ? raw : "");
                H5free_memory(raw);
            }
        } else {
            size_t size = H5Tget_size(file_type);  // one byte more than stored: always terminated
            if (size > 0 && H5Tset_size(memory_type, size + 1) >= 0 &&
                H5Tset_strpad(memory_type, H5T_STR_NULLTERM) >= 0 && (value = calloc(size + 1, 1)) &&
                H5Aread(attribute, memory_type, value) < 0) {
                free(value);
                value = NULL;
            }
        }
    }
    if (memory_type >= 0) H5Tclose(memory_type);
    if (file_type >= 0) H5Tclose(file_type);
    H5Aclose(attribute);
    if (!value) problem(v, "/", "cannot read string attribute '%s'", name);
    return value;
}

// A required, non-empty string attribute of at most `max_length` characters; malloc'd, or NULL.
static char *bounded_string(Validator *v, const char *name, size_t max_length) {
    char *value = string_attribute(v, name);
    if (!value) return NULL;
    size_t length = strlen(value);
    if (length == 0 || length > max_length) {
        problem(v, "/", "attribute '%s' is %zu characters long, expected 1 to %zu", name, length, max_length);
        free(value);
        return NULL;
    }
    return value;
}

static int is_one_of(const char *value, const char *const *allowed, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(value, allowed[i])) return 1;
    return 0;
}

static void check_root_attributes(Validator *v) {
    TraceValidation *r = v->result;
    int version = 0;
    v->version = TRACE_FORMAT_VERSION;
    if (int_attribute(v, v->file, "/", "format_version", 1, &version)) {
        if (version < TRACE_OLDEST_FORMAT_VERSION || version > TRACE_FORMAT_VERSION)
            problem(v, "/", "format_version %d, readers accept %d to %d", version, TRACE_OLDEST_FORMAT_VERSION,
                    TRACE_FORMAT_VERSION);
        else v->version = version;
        r->format_version = version;
    }

    char *producer = bounded_string(v, "producer", sizeof r->producer - 1);
    if (producer) {
        snprintf(r->producer, sizeof r->producer, "%s", producer);
        flatten(r->producer);
    }
    free(producer);

    static const char *const KV_DTYPES[] = {"f32", "bf16"};
    static const char *const WEIGHTS_DTYPES[] = {"bf16", "f32", "f16"};
    char *kv_dtype = bounded_string(v, "kv_dtype", 7);
    if (kv_dtype && !is_one_of(kv_dtype, KV_DTYPES, 2))
        problem(v, "/", "attribute 'kv_dtype' is '%s', expected 'f32' or 'bf16'", kv_dtype);
    free(kv_dtype);
    char *weights_dtype = bounded_string(v, "weights_dtype", 7);
    if (weights_dtype && !is_one_of(weights_dtype, WEIGHTS_DTYPES, 3))
        problem(v, "/", "attribute 'weights_dtype' is '%s', expected 'bf16', 'f32' or 'f16'", weights_dtype);
    free(weights_dtype);

    char *fingerprint = string_attribute(v, "weights_fingerprint");
    if (fingerprint) {
        int hex = strlen(fingerprint) == 16;
        for (const char *c = fingerprint; hex && *c; c++) hex = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
        if (!hex) problem(v, "/", "attribute 'weights_fingerprint' is '%.40s', expected 16 lowercase hex digits", fingerprint);
    }
    free(fingerprint);
    free(bounded_string(v, "tool_version", 31));

    char *config_text = string_attribute(v, "model_config");
    if (config_text) {
        ErrorMessage why;
        if (!*config_text) problem(v, "/", "attribute 'model_config' is empty");
        else if (config_parse(config_text, "attribute 'model_config'", &v->config, &why) < 0) problem(v, "/", "%s", why.text);
        else v->have_config = 1;
    }
    free(config_text);
    if (v->have_config) v->result->n_layers = v->config.num_hidden_layers;

    int value = 0;
    if (int_attribute(v, v->file, "/", "prompt_length", 1, &value)) {
        if (value < 1) problem(v, "/", "attribute 'prompt_length' is %d, must be at least 1", value);
        else v->prompt_length = value;
    }
    if (int_attribute(v, v->file, "/", "n_steps", 1, &value)) {
        if (value < 1) problem(v, "/", "attribute 'n_steps' is %d, must be at least 1", value);
        else v->n_steps = value;
    }
    if (int_attribute(v, v->file, "/", "kv_forced", 0, &value) && value != 0 && value != 1)
        problem(v, "/", "attribute 'kv_forced' is %d, expected 0 or 1", value);

    // Version 1 declares nothing; version 2 must say what it omits, "" for nothing.
    if (v->version >= 2) {
        char *omitted = string_attribute(v, "omitted");
        char why[256];
        if (omitted && trace_meta_set_omitted(&v->declared, omitted, why, sizeof why) < 0)
            problem(v, "/", "attribute 'omitted' ('%.100s'): %s", omitted, why);
        free(omitted);
    }
}

// ---------------------------------------------------------------------------------------------
// datasets

typedef enum { DATA_FLOAT32, DATA_INT32 } DataKind;

// Opens `object_path` as a dataset, or adds a problem and returns -1.
static hid_t open_dataset(Validator *v, const char *object_path) {
    hid_t object = H5Oopen(v->file, object_path, H5P_DEFAULT);
    if (object < 0) {
        problem(v, object_path, "cannot be opened (corrupt or unreadable HDF5 object)");
        return -1;
    }
    if (H5Iget_type(object) != H5I_DATASET) {
        problem(v, object_path, "is a group, expected a dataset");
        H5Oclose(object);
        return -1;
    }
    return object;
}

// The dtype, shape and layout of dataset `object_path`. rank 2 [rows, cols] for float32 tensors, rank
// 1 [rows] for int32 ones (cols ignored); an expected extent < 0 is not checked (unknown config).
// Returns the open dataset when all of it is as FORMAT.md says (so its values may be read), else -1.
static hid_t check_dataset(Validator *v, const char *object_path, DataKind kind, long long rows, long long cols,
                           const char *shape_meaning) {
    hid_t dataset = open_dataset(v, object_path);
    if (dataset < 0) return -1;
    v->result->n_datasets++;
    int ok = 1;
    hid_t type = H5Dget_type(dataset);
    H5T_class_t type_class = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    size_t size = type >= 0 ? H5Tget_size(type) : 0;
    H5T_order_t order = type >= 0 ? H5Tget_order(type) : H5T_ORDER_ERROR;
    int is_signed = type_class == H5T_INTEGER && type >= 0 && H5Tget_sign(type) == H5T_SGN_2;
    if (type >= 0) H5Tclose(type);
    int type_ok = size == 4 && order == H5T_ORDER_LE &&
                  (kind == DATA_FLOAT32 ? type_class == H5T_FLOAT : (type_class == H5T_INTEGER && is_signed));
    if (!type_ok) {
        const char *class_name = type_class == H5T_FLOAT ? "float" : type_class == H5T_INTEGER ? (is_signed ? "int" : "uint")
                                                                                               : "non-numeric ";
        problem(v, object_path, "dtype %s%zu%s, expected %s", class_name, size * 8,
                order == H5T_ORDER_BE ? " big-endian" : "", kind == DATA_FLOAT32 ? "float32 little-endian" : "int32 little-endian");
        ok = 0;
    }

    int want_rank = kind == DATA_FLOAT32 ? 2 : 1;
    hid_t space = H5Dget_space(dataset);
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (rank > 0 && rank <= H5S_MAX_RANK) H5Sget_simple_extent_dims(space, dims, NULL);
    if (space >= 0) H5Sclose(space);
    if (rank != want_rank) {
        problem(v, object_path, "rank %d, expected %d (%s)", rank, want_rank, shape_meaning);
        ok = 0;
    } else if ((rows >= 0 && dims[0] != (hsize_t)rows) || (rank == 2 && cols >= 0 && dims[1] != (hsize_t)cols)) {
        char want[64], got[64];
        if (rank == 2) {
            snprintf(got, sizeof got, "[%llu, %llu]", (unsigned long long)dims[0], (unsigned long long)dims[1]);
            snprintf(want, sizeof want, "[%lld, %lld]", rows, cols);
        } else {
            snprintf(got, sizeof got, "[%llu]", (unsigned long long)dims[0]);
            snprintf(want, sizeof want, "[%lld]", rows);
        }
        problem(v, object_path, "shape %s, expected %s (%s)", got, want, shape_meaning);
        ok = 0;
    }

    // Uncompressed and contiguous, with every byte of the declared shape stored.
    hid_t properties = H5Dget_create_plist(dataset);
    H5D_layout_t layout = properties >= 0 ? H5Pget_layout(properties) : H5D_LAYOUT_ERROR;
    int n_filters = properties >= 0 ? H5Pget_nfilters(properties) : -1;
    if (properties >= 0) H5Pclose(properties);
    if (layout != H5D_CONTIGUOUS || n_filters != 0) {
        problem(v, object_path, "stored %s%s, expected contiguous and uncompressed",
                layout == H5D_CHUNKED ? "chunked" : layout == H5D_COMPACT ? "compact" : "with an unknown layout",
                n_filters > 0 ? " with filters (compression)" : "");
        ok = 0;
    } else if (ok) {
        hsize_t elements = rank == 2 ? dims[0] * dims[1] : dims[0];
        hsize_t stored = H5Dget_storage_size(dataset);
        if (stored < elements * 4) {
            problem(v, object_path, "declares %llu bytes but stores %llu (never written, truncated or corrupt)",
                    (unsigned long long)(elements * 4), (unsigned long long)stored);
            ok = 0;
        }
    }
    if (!ok) {
        H5Dclose(dataset);
        return -1;
    }
    return dataset;
}

// ---------------------------------------------------------------------------------------------
// tokens

static void check_tokens(Validator *v) {
    H5I_type_t type = trace_object_type(v->file, "/tokens");
    if (type == H5I_BADID) {
        problem(v, "/tokens", "missing (required: int32 [prompt_length + n_steps - 1])");
        return;
    }
    long long needed = v->prompt_length && v->n_steps ? (long long)v->prompt_length + v->n_steps - 1 : -1;
    hid_t dataset = check_dataset(v, "/tokens", DATA_INT32, -1, -1, "int32 [T], T >= prompt_length + n_steps - 1");
    if (dataset < 0) return;
    hid_t space = H5Dget_space(dataset);
    hsize_t length = 0;
    H5Sget_simple_extent_dims(space, &length, NULL);
    H5Sclose(space);
    if (length < 1 || (needed > 0 && (long long)length < needed))
        problem(v, "/tokens", "%llu tokens, %d steps after a %d-token prompt need %lld", (unsigned long long)length,
                v->n_steps, v->prompt_length, needed);
    int32_t *tokens = length > 0 && length <= INT_MAX ? malloc(length * sizeof *tokens) : NULL;
    if (tokens && H5Dread(dataset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens) < 0)
        problem(v, "/tokens", "cannot read its values (truncated file?)");
    else if (tokens && v->have_config) {
        long long n_bad = 0, first_bad = -1;
        for (hsize_t i = 0; i < length; i++)
            if (tokens[i] < 0 || tokens[i] >= v->config.vocab_size) {
                if (first_bad < 0) first_bad = (long long)i;
                n_bad++;
            }
        if (n_bad)
            problem(v, "/tokens", "%lld token ids outside [0, vocab_size %d), the first tokens[%lld] = %d", n_bad,
                    v->config.vocab_size, first_bad, tokens[first_bad]);
    }
    free(tokens);
    H5Dclose(dataset);
}

// ---------------------------------------------------------------------------------------------
// steps and layers

// The width FORMAT.md gives a layer tensor, from the model config (-1 when unknown).
static long long layer_tensor_width(const Validator *v, const char *name, const char **meaning) {
    const ModelConfig *c = &v->config;
    long long q = (long long)c->num_attention_heads * c->head_dim, kv = (long long)c->num_key_value_heads * c->head_dim;
    long long width;
    if (!strcmp(name, "q") || !strcmp(name, "attn")) width = q, *meaning = "[n_tokens, num_attention_heads*head_dim]";
    else if (!strcmp(name, "k") || !strcmp(name, "v")) width = kv, *meaning = "[n_tokens, num_key_value_heads*head_dim]";
    else if (!strcmp(name, "gate") || !strcmp(name, "up") || !strcmp(name, "act"))
        width = c->intermediate_size, *meaning = "[n_tokens, intermediate_size]";
    else width = c->hidden_size, *meaning = "[n_tokens, hidden_size]";
    return v->have_config ? width : -1;
}

static int is_layer_tensor(const char *name) {
    for (int i = 0; i < TRACE_N_LAYER_TENSORS; i++)
        if (!strcmp(name, TRACE_LAYER_TENSORS[i])) return 1;
    return 0;
}

// Names of the links in the group at `group_path` (malloc'd strings), or -1 with a problem.
static int list_links(Validator *v, const char *group_path, char ***names, int *n_names) {
    *names = NULL;
    *n_names = 0;
    hid_t group = H5Gopen2(v->file, group_path, H5P_DEFAULT);
    H5G_info_t info;
    if (group < 0 || H5Gget_info(group, &info) < 0) {
        if (group >= 0) H5Gclose(group);
        problem(v, group_path, "cannot list its members (corrupt group)");
        return -1;
    }
    *names = calloc(info.nlinks ? info.nlinks : 1, sizeof **names);
    for (hsize_t i = 0; *names && i < info.nlinks; i++) {
        ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        char *name = length >= 0 ? malloc((size_t)length + 1) : NULL;
        if (!name ||
            H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, (size_t)length + 1, H5P_DEFAULT) < 0) {
            free(name);
            problem(v, group_path, "cannot list its members (corrupt group)");
            break;
        }
        (*names)[(*n_names)++] = name;
    }
    H5Gclose(group);
    if (!*names) v->out_of_memory = 1;
    return *names ? 0 : -1;
}

// A group to descend into: it must open, and be a group.
static int is_openable_group(Validator *v, const char *object_path) {
    hid_t object = H5Oopen(v->file, object_path, H5P_DEFAULT);
    if (object < 0) {
        problem(v, object_path, "cannot be opened (corrupt or unreadable HDF5 object)");
        return 0;
    }
    H5I_type_t type = H5Iget_type(object);
    H5Oclose(object);
    if (type != H5I_GROUP) problem(v, object_path, "is a dataset, expected a group");
    return type == H5I_GROUP;
}

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

// Reports the groups PREFIX0..PREFIX(total-1) absent from present[] (sorted here), one problem per run
// of consecutive missing ones, so a huge n_steps or num_hidden_layers costs a line, not millions.
static void report_missing_groups(Validator *v, const char *object, const char *prefix, int digits, int *present,
                                  int n_present, int total, const char *why) {
    qsort(present, (size_t)n_present, sizeof *present, compare_ints);
    long long next = 0;  // the first index not yet known present or reported; wide: total may be INT_MAX
    for (int i = 0; i <= n_present && next < total; i++) {
        long long upto = i < n_present && present[i] < total ? present[i] : total;  // missing: next..upto-1
        if (upto - next == 1) problem(v, object, "no group '%s%0*d' (%s)", prefix, digits, (int)next, why);
        else if (upto > next)
            problem(v, object, "no groups '%s%0*d' to '%s%0*d' (%s)", prefix, digits, (int)next, prefix, digits,
                    (int)(upto - 1), why);
        if (upto + 1 > next) next = upto + 1;
    }
}

// `group`/`name` into out; a name too long for any path this format makes is a problem, -1.
static int join_path(Validator *v, char *out, size_t size, const char *group, const char *name) {
    int length = snprintf(out, size, "%s/%s", strcmp(group, "/") ? group : "", name);
    if (length < 0 || (size_t)length >= size) {
        problem(v, group, "holds an object whose name is too long (%zu characters): not a name of FORMAT.md",
                strlen(name));
        return -1;
    }
    return 0;
}

static void check_layer(Validator *v, const char *layer_path, long long n_tokens) {
    char **names = NULL;
    int n_names = 0;
    if (list_links(v, layer_path, &names, &n_names) < 0) return;
    for (int i = 0; i < n_names; i++) {
        char object_path[TRACE_PATH_MAX];
        if (join_path(v, object_path, sizeof object_path, layer_path, names[i]) < 0) continue;
        if (!is_layer_tensor(names[i])) {
            problem(v, object_path, "not a layer tensor of FORMAT.md (attn_norm, q, k, v, attn, attn_out, resid_attn, "
                                    "mlp_norm, gate, up, act, mlp_out, resid_mlp)");
            continue;
        }
        const char *meaning = "";
        long long width = layer_tensor_width(v, names[i], &meaning);
        hid_t dataset = check_dataset(v, object_path, DATA_FLOAT32, n_tokens, width, meaning);
        if (dataset >= 0) H5Dclose(dataset);
    }
    for (int t = 0; t < TRACE_N_LAYER_TENSORS; t++) {
        const char *name = TRACE_LAYER_TENSORS[t];
        int present = 0;
        for (int i = 0; i < n_names && !present; i++) present = !strcmp(names[i], name);
        if (!present && !trace_meta_omits(&v->declared, name))
            problem(v, layer_path, "no tensor '%s' (%s)", name,
                    trace_is_checkpoint(name) ? "a contract checkpoint: never omitted" : "and not declared in 'omitted'");
    }
    trace_free_names(names, n_names);
}

// next_token must be the argmax of the step's logits, by value (an exact tie never fails), as compare checks.
static void check_argmax(Validator *v, const char *step_path, hid_t logits, hid_t next_token, long long vocab) {
    float *values = malloc((size_t)vocab * sizeof *values);
    int32_t token = 0;
    if (!values) {
        v->out_of_memory = 1;
        return;
    }
    if (H5Dread(logits, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0 ||
        H5Dread(next_token, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, &token) < 0) {
        problem(v, step_path, "cannot read logits or next_token (truncated file?)");
        free(values);
        return;
    }
    long long best = 0;
    for (long long i = 1; i < vocab; i++)
        if (values[i] > values[best]) best = i;
    char object_path[TRACE_PATH_MAX + 16];
    snprintf(object_path, sizeof object_path, "%s/next_token", step_path);
    if (token < 0 || token >= vocab)
        problem(v, object_path, "%d is outside the logits [0, %lld)", (int)token, vocab);
    else if (!(values[token] >= values[best]))
        problem(v, object_path, "%d is not the argmax of logits: logit %.6g, argmax %lld with %.6g", (int)token,
                (double)values[token], best, (double)values[best]);
    free(values);
}

static void check_step(Validator *v, int step) {
    char step_path[TRACE_PATH_MAX];
    trace_build_path(step_path, sizeof step_path, step, -1, NULL);
    if (!is_openable_group(v, step_path)) return;
    v->result->n_steps++;
    hid_t group = H5Gopen2(v->file, step_path, H5P_DEFAULT);
    int first_position = 0, n_tokens = 0;
    int have_position = int_attribute(v, group, step_path, "first_position", 1, &first_position);
    int have_tokens = int_attribute(v, group, step_path, "n_tokens", 1, &n_tokens);
    H5Gclose(group);
    // The teacher-forcing convention: the prompt at positions 0..P-1, then one token per step.
    long long rows = -1;
    if (v->prompt_length) {
        long long want_position = step == 0 ? 0 : (long long)v->prompt_length + step - 1;  // wide: hostile P
        int want_tokens = step == 0 ? v->prompt_length : 1;
        if (have_position && first_position != want_position)
            problem(v, step_path, "first_position %d, expected %lld (%s)", first_position, want_position,
                    step == 0 ? "the prefill starts at 0" : "prompt_length + step - 1");
        if (have_tokens && n_tokens != want_tokens)
            problem(v, step_path, "n_tokens %d, expected %d (%s)", n_tokens, want_tokens,
                    step == 0 ? "prompt_length" : "one token per decode step");
        rows = want_tokens;
    } else if (have_tokens && n_tokens >= 1) {
        rows = n_tokens;
    }

    char **names = NULL;
    int n_names = 0;
    if (list_links(v, step_path, &names, &n_names) < 0) return;
    long long hidden = v->have_config ? v->config.hidden_size : -1, vocab = v->have_config ? v->config.vocab_size : -1;
    int n_layers = v->have_config ? v->config.num_hidden_layers : -1;
    int *layers_present = calloc((size_t)n_names + 1, sizeof *layers_present), n_layers_present = 0;
    if (!layers_present) v->out_of_memory = 1;
    int seen_embed = 0, seen_final_norm = 0, seen_logits = 0, seen_next_token = 0;
    hid_t logits = -1, next_token = -1;
    for (int i = 0; i < n_names; i++) {
        const char *name = names[i];
        char object_path[TRACE_PATH_MAX];
        if (join_path(v, object_path, sizeof object_path, step_path, name) < 0) continue;
        int layer = trace_parse_layer_name(name);
        hid_t dataset = -1;
        if (!strcmp(name, "embed")) {
            seen_embed = 1;
            dataset = check_dataset(v, object_path, DATA_FLOAT32, rows, hidden, "[n_tokens, hidden_size]");
        } else if (!strcmp(name, "final_norm")) {
            seen_final_norm = 1;
            dataset = check_dataset(v, object_path, DATA_FLOAT32, 1, hidden, "[1, hidden_size]: the last row only");
        } else if (!strcmp(name, "logits")) {
            seen_logits = 1;
            logits = check_dataset(v, object_path, DATA_FLOAT32, 1, vocab, "[1, vocab_size]: the last row only");
        } else if (!strcmp(name, "next_token")) {
            seen_next_token = 1;
            next_token = check_dataset(v, object_path, DATA_INT32, 1, -1, "int32 [1]");
        } else if (layer >= 0 && (!v->have_config || layer < n_layers)) {
            if (layers_present) layers_present[n_layers_present++] = layer;
            if (is_openable_group(v, object_path)) check_layer(v, object_path, rows);
        } else if (layer >= 0) {
            problem(v, object_path, "layer %d, but model_config has num_hidden_layers %d", layer, n_layers);
        } else {
            problem(v, object_path, "not a name of FORMAT.md (embed, layer_LL, final_norm, logits, next_token)");
        }
        if (dataset >= 0) H5Dclose(dataset);
    }
    if (!seen_embed) problem(v, step_path, "no tensor 'embed' (a contract checkpoint: never omitted)");
    if (!seen_final_norm && !trace_meta_omits(&v->declared, "final_norm"))
        problem(v, step_path, "no tensor 'final_norm' (and not declared in 'omitted')");
    if (!seen_logits) problem(v, step_path, "no tensor 'logits' (a contract checkpoint: never omitted)");
    if (!seen_next_token) problem(v, step_path, "no tensor 'next_token' (a contract checkpoint: never omitted)");
    char why[64];
    snprintf(why, sizeof why, "model_config has num_hidden_layers %d", n_layers);
    if (v->have_config && layers_present)
        report_missing_groups(v, step_path, "layer_", 2, layers_present, n_layers_present, n_layers, why);
    if (logits >= 0 && next_token >= 0 && vocab > 0) check_argmax(v, step_path, logits, next_token, vocab);
    if (logits >= 0) H5Dclose(logits);
    if (next_token >= 0) H5Dclose(next_token);
    free(layers_present);
    trace_free_names(names, n_names);
}

// The root holds /tokens and step_0000..step_(S-1), nothing else; the steps present are checked in order.
static void check_steps(Validator *v) {
    char **names = NULL;
    int n_names = 0;
    if (list_links(v, "/", &names, &n_names) < 0) return;
    int highest = -1;
    for (int i = 0; i < n_names; i++) {
        int step = trace_parse_step_name(names[i]);
        if (step > highest && (!v->n_steps || step < v->n_steps)) highest = step;
    }
    int n_steps = v->n_steps ? v->n_steps : highest + 1;  // without a usable n_steps, the groups present
    int *present = calloc((size_t)n_names + 1, sizeof *present), n_present = 0;
    if (!present) {
        v->out_of_memory = 1;
        trace_free_names(names, n_names);
        return;
    }
    for (int i = 0; i < n_names; i++) {
        int step = trace_parse_step_name(names[i]);
        char object_path[TRACE_PATH_MAX];
        if (!strcmp(names[i], "tokens") || join_path(v, object_path, sizeof object_path, "/", names[i]) < 0) continue;
        if (step < 0)
            problem(v, object_path, "not a name of FORMAT.md (the root holds /tokens and /step_NNNN groups only)");
        else if (step >= n_steps)
            problem(v, object_path, "step %d beyond n_steps %d (step_0000..step_%04d)", step, n_steps, n_steps - 1);
        else present[n_present++] = step;
    }
    char why[96];
    snprintf(why, sizeof why, "n_steps is %d: step_0000..step_%04d", n_steps, n_steps - 1);
    report_missing_groups(v, "/", "step_", 4, present, n_present, n_steps, why);  // sorts present
    for (int i = 0; i < n_present; i++) check_step(v, present[i]);
    free(present);
    trace_free_names(names, n_names);
}

// ---------------------------------------------------------------------------------------------
// the checking child and its report

// Validates in this process: 0 with the problems in result, or -1 with err when unreadable.
static int validate_unguarded(const char *path, TraceValidation *result, ErrorMessage *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // our one-line problems replace HDF5's error stack dumps
    struct stat info;
    if (stat(path, &info) != 0) return fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(info.st_mode)) return fail(err, "%s: not a regular file", path);
    if (H5Fis_hdf5(path) <= 0) return fail(err, "%s: not an HDF5 file or truncated", path);
    Validator v = {.result = result};
    v.file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (v.file < 0) return fail(err, "%s: not an HDF5 file or truncated", path);
    check_root_attributes(&v);
    check_tokens(&v);
    check_steps(&v);
    H5Fclose(v.file);
    if (v.out_of_memory) return fail(err, "%s: out of memory validating the trace", path);
    return 0;
}

// The child's whole answer, as one text: "E message\n" when unreadable, else a header line
// "R version n_steps n_layers n_datasets problems_dropped producer\n" and one "P object\tmessage\n" per problem.
static int child_report(void *context, int fd) {
    const char *path = context;
    TraceValidation result = {0};
    ErrorMessage err = {{0}};
    FILE *out = fdopen(fd, "w");
    if (!out) return -1;
    if (validate_unguarded(path, &result, &err) < 0) {
        flatten(err.text);
        fprintf(out, "E %s\n", err.text);
    } else {
        fprintf(out, "R %d %d %d %d %d %s\n", result.format_version, result.n_steps, result.n_layers, result.n_datasets,
                result.problems_dropped, result.producer);
        for (int i = 0; i < result.n_problems; i++)
            fprintf(out, "P %s\t%s\n", result.problems[i].object, result.problems[i].message);
    }
    return fclose(out) == 0 ? 0 : -1;
}

// Rebuilds the result from the child's text (see child_report).
static int parse_report(const char *path, char *text, TraceValidation *result, ErrorMessage *err) {
    if (!strncmp(text, "E ", 2)) {
        char *end = strchr(text, '\n');
        if (end) *end = '\0';
        return fail(err, "%s", text + 2);
    }
    int consumed = 0;
    if (sscanf(text, "R %d %d %d %d %d%n", &result->format_version, &result->n_steps, &result->n_layers,
               &result->n_datasets, &result->problems_dropped, &consumed) < 5)
        return fail(err, "%s: the validating process gave no result", path);
    const char *producer = text + consumed + (text[consumed] == ' ');
    snprintf(result->producer, sizeof result->producer, "%.*s", (int)strcspn(producer, "\n"), producer);
    int capacity = 0;
    for (char *line = strchr(text, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        if (strncmp(line + 1, "P ", 2) != 0) continue;
        char *object = line + 3, *tab = strchr(object, '\t'), *end = strchr(object, '\n');
        if (!tab || !end || tab > end) continue;
        if (result->n_problems == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            TraceProblem *grown = realloc(result->problems, (size_t)capacity * sizeof *grown);
            if (!grown) return fail(err, "%s: out of memory", path);
            result->problems = grown;
        }
        TraceProblem *p = &result->problems[result->n_problems++];
        snprintf(p->object, sizeof p->object, "%.*s", (int)(tab - object), object);
        snprintf(p->message, sizeof p->message, "%.*s", (int)(end - tab - 1), tab + 1);
    }
    return 0;
}

// HDF5 1.10 trusts lengths stored in the file; a corrupt one can crash it, hang it or make it allocate
// gigabytes. So the checks run in a sandboxed child (file_sandbox.h) and only their text comes back.
int trace_validate(const char *path, TraceValidation *result, ErrorMessage *err) {
    memset(result, 0, sizeof *result);
    if (!path || !*path) return fail(err, "validate: empty path");
    struct stat info;
    if (stat(path, &info) != 0) return fail(err, "%s: cannot open: %s", path, strerror(errno));
    SandboxResult child;
    if (sandbox_run(path, info.st_size, "validate", child_report, (void *)path, &child, err)) return -1;
    int result_status;
    if (child.end == SANDBOX_HUNG)
        result_status = fail(err, "%s: corrupt HDF5 file (reading it hung the HDF5 library for %lu s of CPU)", path,
                             child.cpu_seconds);
    else if (child.end == SANDBOX_CRASHED)
        result_status = fail(err, "%s: corrupt HDF5 file (reading it crashed the HDF5 library)", path);
    else
        result_status = parse_report(path, child.output, result, err);
    free(child.output);
    if (result_status < 0) trace_validation_free(result);
    return result_status;
}

void trace_validation_free(TraceValidation *result) {
    if (!result) return;
    free(result->problems);
    result->problems = NULL;
    result->n_problems = 0;
}
