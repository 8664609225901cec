// safetensors, memory-mapped. A file is: 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data section,
// offsets relative to its start. Nothing in a header is trusted until it has been checked.
// MAP_POPULATE (Linux) is outside POSIX; ask glibc for it.
#define _DEFAULT_SOURCE
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf16.h"
#include "file_util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this loader reads it in place and needs a little-endian host"
#endif

// The safetensors format itself caps headers at 100 MB; a larger length is a corrupt file.
#define MAX_HEADER_BYTES (100ull * 1000 * 1000)
// Integers in the JSON header arrive as doubles; beyond 2^53 they are no longer exact.
#define MAX_EXACT_INTEGER 9007199254740992.0

size_t dtype_size(DType dtype) {
    switch (dtype) {
    case DTYPE_F32: return 4;
    case DTYPE_F16: return 2;
    case DTYPE_BF16: return 2;
    }
    return 0;
}

const char *dtype_name(DType dtype) {
    switch (dtype) {
    case DTYPE_F32: return "F32";
    case DTYPE_F16: return "F16";
    case DTYPE_BF16: return "BF16";
    }
    return "unknown";
}

static int dtype_parse(const char *name, DType *out) {
    if (!strcmp(name, "F32")) *out = DTYPE_F32;
    else if (!strcmp(name, "F16")) *out = DTYPE_F16;
    else if (!strcmp(name, "BF16")) *out = DTYPE_BF16;
    else return -1;
    return 0;
}

void format_shape(char *buffer, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buffer, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buffer + used, size - used, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (used < size) snprintf(buffer + used, size - used, "]");
}

// "dir/name" without a doubled slash; malloc'd or NULL.
static char *path_join(const char *dir, const char *name) {
    size_t dir_length = strlen(dir);
    while (dir_length > 1 && dir[dir_length - 1] == '/') dir_length--;
    size_t length = dir_length + 1 + strlen(name) + 1;
    char *path = malloc(length);
    if (path) snprintf(path, length, "%.*s/%s", (int)dir_length, dir, name);
    return path;
}

// A JSON number that is an exact non-negative integer.
static int json_to_count(const cJSON *item, int64_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double value = item->valuedouble;
    if (!(value >= 0 && value <= MAX_EXACT_INTEGER)) return -1;
    if ((double)(int64_t)value != value) return -1;
    *out = (int64_t)value;
    return 0;
}

// ----------------------------------------------------------------------------------------------
// one file

typedef struct {
    const char *name;
    int64_t begin, end;
} ByteRange;

static int compare_ranges(const void *a, const void *b) {
    const ByteRange *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int compare_tensors_by_name(const void *a, const void *b) {
    return strcmp(((const TensorInfo *)a)->name, ((const TensorInfo *)b)->name);
}

// Checks one header entry and fills `tensor` (its name not yet owned) and its byte range.
static int parse_entry(const cJSON *entry, const char *path, const uint8_t *data, size_t data_size,
                       TensorInfo *tensor, ByteRange *range, ErrorMessage *err) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry)) return fail(err, "%s: tensor '%s': entry is not a JSON object", path, name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype)) return fail(err, "%s: tensor '%s': 'dtype' is missing or not a string", path, name);
    if (dtype_parse(dtype->valuestring, &tensor->dtype))
        return fail(err, "%s: tensor '%s': unknown dtype '%s' (expected F32, F16 or BF16)", path, name,
                    dtype->valuestring);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape)) return fail(err, "%s: tensor '%s': 'shape' is missing or not a list", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > TENSOR_MAX_DIMS)
        return fail(err, "%s: tensor '%s': shape has %d dims (at most %d supported)", path, name, ndim,
                    TENSOR_MAX_DIMS);
    tensor->ndim = ndim;
    int has_zero_dim = 0;
    for (int d = 0; d < ndim; d++) {
        if (json_to_count(cJSON_GetArrayItem(shape, d), &tensor->shape[d]))
            return fail(err, "%s: tensor '%s': shape dim %d is not a non-negative integer", path, name, d);
        if (tensor->shape[d] == 0) has_zero_dim = 1;
    }
    // More elements than the data section has bytes is wrong anyway; stopping there keeps the
    // product from overflowing.
    int too_large = 0;
    tensor->numel = has_zero_dim ? 0 : 1;
    for (int d = 0; d < ndim && !has_zero_dim && !too_large; d++) {
        if (tensor->numel > (int64_t)data_size / tensor->shape[d]) too_large = 1;
        else tensor->numel *= tensor->shape[d];
    }
    for (int d = ndim; d < TENSOR_MAX_DIMS; d++) tensor->shape[d] = 0;

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    int64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        json_to_count(cJSON_GetArrayItem(offsets, 0), &begin) || json_to_count(cJSON_GetArrayItem(offsets, 1), &end))
        return fail(err, "%s: tensor '%s': data_offsets is not a pair of non-negative integers", path, name);
    if (begin > end)
        return fail(err, "%s: tensor '%s': data_offsets [%lld, %lld] are reversed", path, name, (long long)begin,
                    (long long)end);
    if ((uint64_t)end > data_size)
        return fail(err, "%s: tensor '%s': data_offsets [%lld, %lld] run past the data section (%zu bytes)", path,
                    name, (long long)begin, (long long)end, data_size);
    char shape_text[128];
    format_shape(shape_text, sizeof shape_text, ndim, tensor->shape);
    if (too_large)
        return fail(err, "%s: tensor '%s': shape %s is larger than the data section (%zu bytes)", path, name,
                    shape_text, data_size);
    int64_t needed = tensor->numel * (int64_t)dtype_size(tensor->dtype);
    if (end - begin != needed)
        return fail(err, "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes, but shape %s of %s needs %lld",
                    path, name, (long long)begin, (long long)end, (long long)(end - begin), shape_text,
                    dtype_name(tensor->dtype), (long long)needed);

    tensor->data = data + begin;
    tensor->nbytes = (size_t)needed;
    range->name = name;
    range->begin = begin;
    range->end = end;
    return 0;
}

// No two tensors of one file may share a byte. Empty tensors hold no bytes and cannot overlap.
static int check_overlaps(ByteRange *ranges, int n, const char *path, ErrorMessage *err) {
    qsort(ranges, (size_t)n, sizeof *ranges, compare_ranges);
    const ByteRange *furthest = NULL;  // the non-empty range reaching furthest so far
    for (int i = 0; i < n; i++) {
        if (ranges[i].begin == ranges[i].end) continue;
        if (furthest && ranges[i].begin < furthest->end)
            return fail(err, "%s: tensors '%s' [%lld, %lld] and '%s' [%lld, %lld] overlap", path, furthest->name,
                        (long long)furthest->begin, (long long)furthest->end, ranges[i].name,
                        (long long)ranges[i].begin, (long long)ranges[i].end);
        if (!furthest || ranges[i].end > furthest->end) furthest = &ranges[i];
    }
    return 0;
}

// Grows the set's per-file arrays by one and maps `path` read-only into the new slot. On failure
// nothing is added (the arrays may have grown, which safetensors_close handles). Returns the file's
// index, or -1.
static int map_file(SafetensorsSet *set, const char *path, ErrorMessage *err) {
    char *path_copy = strdup(path);
    char **paths = realloc(set->paths, (size_t)(set->n_files + 1) * sizeof *paths);
    if (paths) set->paths = paths;
    void **mappings = realloc(set->mappings, (size_t)(set->n_files + 1) * sizeof *mappings);
    if (mappings) set->mappings = mappings;
    size_t *sizes = realloc(set->mapping_sizes, (size_t)(set->n_files + 1) * sizeof *sizes);
    if (sizes) set->mapping_sizes = sizes;
    if (!path_copy || !paths || !mappings || !sizes) {
        free(path_copy);
        return fail(err, "%s: out of memory", path);
    }

    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        free(path_copy);
        return fail(err, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat info;
    if (fstat(fd, &info) != 0) {
        int saved = errno;
        close(fd);
        free(path_copy);
        return fail(err, "%s: cannot stat: %s", path, strerror(saved));
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        free(path_copy);
        return fail(err, "%s: not a regular file", path);
    }
    size_t file_size = (size_t)info.st_size;
    if (file_size < 8) {
        close(fd);
        free(path_copy);
        return fail(err, "%s: truncated: %zu bytes, shorter than the 8-byte header length", path, file_size);
    }
    // Every byte is read at least once (the fingerprint hashes them all): fault the pages in as one
    // batch now rather than one 4 KB fault at a time later.
#ifdef MAP_POPULATE
    void *mapping = mmap(NULL, file_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
#else
    void *mapping = mmap(NULL, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
#endif
    int saved = errno;
    close(fd);  // the mapping keeps the file alive
    if (mapping == MAP_FAILED) {
        free(path_copy);
        return fail(err, "%s: cannot mmap %zu bytes: %s", path, file_size, strerror(saved));
    }
    int file_index = set->n_files++;
    set->paths[file_index] = path_copy;
    set->mappings[file_index] = mapping;
    set->mapping_sizes[file_index] = file_size;
    return file_index;
}

// The JSON header of a mapped file (caller deletes it) and where its data section starts and ends.
static cJSON *parse_header(const uint8_t *bytes, size_t file_size, const char *path, const uint8_t **data,
                           size_t *data_size, ErrorMessage *err) {
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = (header_length << 8) | bytes[i];
    if (header_length > file_size - 8) {
        fail(err, "%s: truncated: header length %llu exceeds the %zu bytes after it", path,
             (unsigned long long)header_length, file_size - 8);
        return NULL;
    }
    if (header_length > MAX_HEADER_BYTES) {
        fail(err, "%s: header length %llu is larger than the format's 100 MB limit", path,
             (unsigned long long)header_length);
        return NULL;
    }
    *data = bytes + 8 + header_length;
    *data_size = file_size - 8 - (size_t)header_length;
    cJSON *header = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)header_length);
    if (!header) {
        fail(err, "%s: header is not valid JSON", path);
        return NULL;
    }
    if (!cJSON_IsObject(header)) {
        cJSON_Delete(header);
        fail(err, "%s: header is not a JSON object", path);
        return NULL;
    }
    return header;
}

// Appends the tensors of file `file_index`'s header to the set, then checks that no name appears
// twice in it and that no two of its tensors share a byte.
static int add_header_tensors(SafetensorsSet *set, int file_index, const cJSON *header, const uint8_t *data,
                              size_t data_size, const char *path, ErrorMessage *err) {
    int n_entries = cJSON_GetArraySize(header);
    TensorInfo *tensors = realloc(set->tensors, (size_t)(set->n_tensors + n_entries + 1) * sizeof *tensors);
    ByteRange *ranges = malloc((size_t)(n_entries + 1) * sizeof *ranges);
    if (tensors) set->tensors = tensors;
    if (!tensors || !ranges) {
        free(ranges);
        return fail(err, "%s: out of memory for %d tensors", path, n_entries);
    }

    int status = 0, n_ranges = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, header) {
        if (!strcmp(entry->string, "__metadata__")) continue;  // free-form strings, nothing to check
        TensorInfo *tensor = &set->tensors[set->n_tensors];
        memset(tensor, 0, sizeof *tensor);
        if (parse_entry(entry, path, data, data_size, tensor, &ranges[n_ranges], err)) {
            status = -1;
            break;
        }
        tensor->name = strdup(entry->string);
        if (!tensor->name) {
            status = fail(err, "%s: out of memory", path);
            break;
        }
        tensor->file_index = file_index;
        ranges[n_ranges].name = tensor->name;
        set->n_tensors++;
        n_ranges++;
    }
    if (status == 0) {
        // A duplicate name within one header: sort this file's tensors by name and look at neighbours.
        TensorInfo *mine = set->tensors + set->n_tensors - n_ranges;
        qsort(mine, (size_t)n_ranges, sizeof *mine, compare_tensors_by_name);
        for (int i = 1; i < n_ranges && status == 0; i++)
            if (!strcmp(mine[i - 1].name, mine[i].name))
                status = fail(err, "%s: tensor '%s' appears twice in the header", path, mine[i].name);
    }
    if (status == 0) status = check_overlaps(ranges, n_ranges, path, err);
    free(ranges);
    return status;
}

// Maps `path` into `set` as one more file and appends its tensors (unsorted). On failure the set
// keeps whatever it already owns, for safetensors_close to release.
static int add_file(SafetensorsSet *set, const char *path, ErrorMessage *err) {
    int file_index = map_file(set, path, err);
    if (file_index < 0) return -1;
    const uint8_t *data;
    size_t data_size;
    cJSON *header = parse_header(set->mappings[file_index], set->mapping_sizes[file_index], path, &data, &data_size, err);
    if (!header) return -1;
    int status = add_header_tensors(set, file_index, header, data, data_size, path, err);
    cJSON_Delete(header);
    return status;
}

// Sorts the set's tensors by name and rejects a name held by two files.
static int finish_set(SafetensorsSet *set, ErrorMessage *err) {
    qsort(set->tensors, (size_t)set->n_tensors, sizeof *set->tensors, compare_tensors_by_name);
    for (int i = 1; i < set->n_tensors; i++) {
        const TensorInfo *a = &set->tensors[i - 1], *b = &set->tensors[i];
        if (!strcmp(a->name, b->name)) {
            if (a->file_index == b->file_index)
                return fail(err, "%s: tensor '%s' appears twice in the header", set->paths[a->file_index], a->name);
            return fail(err, "tensor '%s' appears in both %s and %s", a->name, set->paths[a->file_index],
                        set->paths[b->file_index]);
        }
    }
    return 0;
}

int safetensors_open_file(const char *path, SafetensorsSet *out, ErrorMessage *err) {
    memset(out, 0, sizeof *out);
    if (add_file(out, path, err) || finish_set(out, err)) {
        safetensors_close(out);
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------------------------
// a directory: one file, or shards named by an index

// A shard name from an index must name a file in the directory itself, nothing elsewhere.
static int is_plain_file_name(const char *name) {
    return name[0] != '\0' && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int open_sharded(const char *dir, const char *index_path, SafetensorsSet *set, ErrorMessage *err) {
    char *text = read_text_file(index_path, 64u << 20, err);
    if (!text) return -1;
    cJSON *index = cJSON_Parse(text);
    free(text);
    if (!index) return fail(err, "%s: invalid JSON", index_path);

    int status = 0;
    const char **shards = NULL;  // distinct shard names, in order of first mention
    int n_shards = 0;
    const cJSON *weight_map = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
    if (!cJSON_IsObject(weight_map)) {
        status = fail(err, "%s: 'weight_map' is missing or not an object", index_path);
    } else if (cJSON_GetArraySize(weight_map) == 0) {
        status = fail(err, "%s: 'weight_map' is empty", index_path);
    } else {
        shards = malloc((size_t)cJSON_GetArraySize(weight_map) * sizeof *shards);
        if (!shards) status = fail(err, "%s: out of memory", index_path);
    }

    const cJSON *entry;
    if (status == 0) {
        cJSON_ArrayForEach(entry, weight_map) {
            if (!cJSON_IsString(entry) || !is_plain_file_name(entry->valuestring)) {
                status = fail(err, "%s: tensor '%s': shard is not a plain file name", index_path, entry->string);
                break;
            }
            int known = 0;
            for (int s = 0; s < n_shards && !known; s++) known = !strcmp(shards[s], entry->valuestring);
            if (!known) shards[n_shards++] = entry->valuestring;
        }
    }
    for (int s = 0; s < n_shards && status == 0; s++) {
        char *shard_path = path_join(dir, shards[s]);
        if (!shard_path) {
            status = fail(err, "%s: out of memory", index_path);
            break;
        }
        struct stat info;
        if (stat(shard_path, &info) != 0) {
            status = fail(err, "%s: shard '%s' is missing (%s: %s)", index_path, shards[s], shard_path,
                          strerror(errno));
        } else {
            status = add_file(set, shard_path, err);
        }
        free(shard_path);
    }
    if (status == 0) status = finish_set(set, err);
    // Every tensor the index promises must be where it says.
    if (status == 0) {
        cJSON_ArrayForEach(entry, weight_map) {
            const TensorInfo *tensor = safetensors_find(set, entry->string);
            const char *shard = entry->valuestring;
            if (!tensor) {
                status = fail(err, "%s: tensor '%s' is listed in shard '%s', which does not contain it", index_path,
                              entry->string, shard);
                break;
            }
            const char *holder = strrchr(set->paths[tensor->file_index], '/');
            holder = holder ? holder + 1 : set->paths[tensor->file_index];
            if (strcmp(holder, shard) != 0) {
                status = fail(err, "%s: tensor '%s' is listed in shard '%s' but found in '%s'", index_path,
                              entry->string, shard, holder);
                break;
            }
        }
    }
    free(shards);
    cJSON_Delete(index);
    return status;
}

int safetensors_open_dir(const char *dir, SafetensorsSet *out, ErrorMessage *err) {
    memset(out, 0, sizeof *out);
    char *single = path_join(dir, "model.safetensors");
    char *index = path_join(dir, "model.safetensors.index.json");
    int status;
    struct stat info;
    if (!single || !index) {
        status = fail(err, "%s: out of memory", dir);
    } else if (stat(single, &info) == 0) {
        status = add_file(out, single, err);
        if (status == 0) status = finish_set(out, err);
    } else if (stat(index, &info) == 0) {
        status = open_sharded(dir, index, out, err);
    } else {
        status = fail(err, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(single);
    free(index);
    if (status) safetensors_close(out);
    return status;
}

// ----------------------------------------------------------------------------------------------
// lookups and expansion

static int compare_name_to_tensor(const void *key, const void *element) {
    return strcmp((const char *)key, ((const TensorInfo *)element)->name);
}

const TensorInfo *safetensors_find(const SafetensorsSet *set, const char *name) {
    if (!set->tensors || set->n_tensors == 0) return NULL;
    return bsearch(name, set->tensors, (size_t)set->n_tensors, sizeof *set->tensors, compare_name_to_tensor);
}

// Elements [first, first + count) of `tensor` as fp32. Reads through memcpy: the data section need
// not be aligned for the element type.
static void expand(const TensorInfo *tensor, int64_t first, int64_t count, float *out) {
    const uint8_t *bytes = (const uint8_t *)tensor->data + (size_t)first * dtype_size(tensor->dtype);
    switch (tensor->dtype) {
    case DTYPE_F32:
        memcpy(out, bytes, (size_t)count * sizeof(float));
        break;
    case DTYPE_BF16:
        for (int64_t i = 0; i < count; i++) {
            uint16_t h;
            memcpy(&h, bytes + 2 * i, 2);
            out[i] = bf16_to_float(h);
        }
        break;
    case DTYPE_F16:
        for (int64_t i = 0; i < count; i++) {
            uint16_t h;
            memcpy(&h, bytes + 2 * i, 2);
            out[i] = f16_to_float(h);
        }
        break;
    }
}

void tensor_to_float(const TensorInfo *tensor, float *out) { expand(tensor, 0, tensor->numel, out); }

void tensor_rows_to_float(const TensorInfo *tensor, int64_t row_begin, int64_t n_rows, float *out) {
    // A caller bug, not bad input: rows outside the tensor would read outside the mapping.
    if (tensor->ndim != 2 || row_begin < 0 || n_rows < 0 || row_begin + n_rows > tensor->shape[0]) {
        fprintf(stderr, "tensor_rows_to_float: rows [%lld, %lld) outside tensor '%s' of %d dims\n",
                (long long)row_begin, (long long)(row_begin + n_rows), tensor->name, tensor->ndim);
        abort();
    }
    expand(tensor, row_begin * tensor->shape[1], n_rows * tensor->shape[1], out);
}

void safetensors_close(SafetensorsSet *set) {
    if (!set) return;
    for (int i = 0; i < set->n_files; i++) {
        if (set->mappings && set->mappings[i]) munmap(set->mappings[i], set->mapping_sizes[i]);
        if (set->paths) free(set->paths[i]);
    }
    for (int i = 0; i < set->n_tensors; i++) free(set->tensors[i].name);
    free(set->paths);
    free(set->mappings);
    free(set->mapping_sizes);
    free(set->tensors);
    memset(set, 0, sizeof *set);
}
