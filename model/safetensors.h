// Memory-mapped safetensors files: one `model.safetensors`, or shards listed by
// `model.safetensors.index.json`. Every header is bounds-checked before any tensor is touched.
#ifndef FUSECHECK_SAFETENSORS_H
#define FUSECHECK_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum { DTYPE_F32 = 0, DTYPE_F16 = 1, DTYPE_BF16 = 2 } DType;

size_t dtype_size(DType dtype);        // bytes per element
const char *dtype_name(DType dtype);   // "F32", "F16", "BF16"

#define TENSOR_MAX_DIMS 4

typedef struct {
    char *name;                       // as in the header, e.g. "model.layers.0.self_attn.q_proj.weight"
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t numel;
    const void *data;                 // into the read-only mapping; valid until safetensors_close
    size_t nbytes;                    // numel * dtype_size(dtype), checked against the header's offsets
    int file_index;                   // which of SafetensorsSet.paths holds it
} TensorInfo;

typedef struct {
    int n_files;
    char **paths;                     // one per shard
    void **mappings;
    size_t *mapping_sizes;
    int n_tensors;
    TensorInfo *tensors;              // sorted by name
} SafetensorsSet;

// Opens one safetensors file. Checks: the 8-byte header length fits the file, the header is a JSON
// object, each entry has a known dtype ("F32", "F16", "BF16"), a shape of 0..4 non-negative dims, and
// data_offsets [begin, end] with begin <= end, end within the data section, end - begin equal to
// numel * dtype size, and no two tensors overlapping. A duplicate name is an error.
int safetensors_open_file(const char *path, SafetensorsSet *out, ErrorMessage *err);

// Opens a checkpoint directory: `model.safetensors` if present, else `model.safetensors.index.json`
// and every shard its weight_map names (a listed shard that is missing, or a tensor the index puts in
// a shard that lacks it, is an error naming both).
int safetensors_open_dir(const char *dir, SafetensorsSet *out, ErrorMessage *err);

// The tensor named `name`, or NULL.
const TensorInfo *safetensors_find(const SafetensorsSet *set, const char *name);

// Expands `tensor` to fp32 into `out` (numel floats), exactly: bf16 and f16 values are representable.
void tensor_to_float(const TensorInfo *tensor, float *out);
// The same for rows [row_begin, row_begin + n_rows) of a 2-D tensor (n_rows * shape[1] floats).
void tensor_rows_to_float(const TensorInfo *tensor, int64_t row_begin, int64_t n_rows, float *out);

void safetensors_close(SafetensorsSet *set);

// "[4096, 1024]": a shape for messages (truncated to fit `size`).
void format_shape(char *buffer, size_t size, int ndim, const int64_t *shape);  // unmaps; safe on a zeroed or half-opened set

#endif
