// The dataflow engine's decode state (contract in dataflow_decode.h).
#include "dataflow_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda_check.h"

// A page: 32 KB holds 16 rows of a 1,024-wide projection, or 64 positions of one kv head's K and V.
#define DATAFLOW_PAGE_BYTES 32768

struct DataflowDecode {
    DataflowProgram program;
    DataflowParams params;
    int groups, n_pages;
    DataflowLayer *d_layers;
    DataflowInstruction *d_instructions;
    int *d_offsets;
    unsigned *d_counters;
    float *d_partial_o, *d_partial_ml, *d_best_value;
    int *d_best_index, *d_control;
    int *h_control;  // pinned [2]: the last values uploaded
};

#define DECODE_ALLOC(ptr, bytes, what)                                                                        \
    do {                                                                                                      \
        cudaError_t status_ = cudaMalloc((void **)&(ptr), (bytes));                                          \
        if (status_ != cudaSuccess) {                                                                         \
            fail(err, "dataflow engine: cudaMalloc of %zu bytes for %s: %s", (size_t)(bytes), what,             \
                 cudaGetErrorString(status_));                                                                \
            goto fail_cleanup;                                                                                \
        }                                                                                                     \
    } while (0)

DataflowDecode *dataflow_decode_create(const DataflowBuffers *b, ErrorMessage *err) {
    DataflowDecode *d = calloc(1, sizeof *d);
    if (!d) {
        fail(err, "dataflow engine: out of memory");
        return NULL;
    }
    int device, n_sms;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&n_sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
        fail(err, "dataflow engine: cannot query the device's multiprocessor count");
        free(d);
        return NULL;
    }
    d->groups = b->groups;
    DataflowShape shape = {b->hidden, b->intermediate, b->n_heads, b->n_kv_heads, b->head_dim, b->vocab,
                           b->n_layers, b->max_context, n_sms * b->groups, DATAFLOW_PAGE_BYTES};
    if (dataflow_program_build(&shape, &d->program, err) ||
        dataflow_max_pages(&d->program, d->groups, &d->n_pages, err)) {
        dataflow_program_free(&d->program);
        free(d);
        return NULL;
    }
    const DataflowProgram *p = &d->program;
    size_t slots = (size_t)b->n_heads * p->max_chunks;
    DECODE_ALLOC(d->d_layers, (size_t)b->n_layers * sizeof *d->d_layers, "layer pointers");
    DECODE_ALLOC(d->d_instructions, (size_t)p->n_instructions * sizeof *d->d_instructions, "the program");
    DECODE_ALLOC(d->d_offsets, ((size_t)shape.n_blocks + 1) * sizeof *d->d_offsets, "the program");
    DECODE_ALLOC(d->d_counters, (size_t)p->n_counters * sizeof *d->d_counters, "counters");
    DECODE_ALLOC(d->d_partial_o, slots * b->head_dim * sizeof(float), "attention partials");
    DECODE_ALLOC(d->d_partial_ml, slots * 2 * sizeof(float), "attention partials");
    DECODE_ALLOC(d->d_best_value, (size_t)shape.n_blocks * sizeof(float), "argmax partials");
    DECODE_ALLOC(d->d_best_index, (size_t)shape.n_blocks * sizeof(int), "argmax partials");
    DECODE_ALLOC(d->d_control, 2 * sizeof(int), "control");
    if (cudaMallocHost((void **)&d->h_control, 2 * sizeof(int)) != cudaSuccess) {
        fail(err, "dataflow engine: cudaMallocHost of the control words failed");
        goto fail_cleanup;
    }
    d->h_control[0] = d->h_control[1] = 0;
    if (cudaMemcpy(d->d_layers, b->layers, (size_t)b->n_layers * sizeof *d->d_layers, cudaMemcpyHostToDevice) ||
        cudaMemcpy(d->d_instructions, p->instructions, (size_t)p->n_instructions * sizeof *d->d_instructions,
                   cudaMemcpyHostToDevice) ||
        cudaMemcpy(d->d_offsets, p->offsets, ((size_t)shape.n_blocks + 1) * sizeof *d->d_offsets, cudaMemcpyHostToDevice) ||
        cudaMemset(d->d_counters, 0, (size_t)p->n_counters * sizeof *d->d_counters) ||
        cudaMemset(d->d_control, 0, 2 * sizeof(int))) {
        fail(err, "dataflow engine: uploading the program failed");
        goto fail_cleanup;
    }
    DataflowParams *P = &d->params;
    P->layers = d->d_layers;
    P->instructions = d->d_instructions;
    P->offsets = d->d_offsets;
    P->embed = b->embed;
    P->lm_head = b->lm_head;
    P->final_norm_w = b->final_norm_w;
    P->rope_cos = b->rope_cos;
    P->rope_sin = b->rope_sin;
    P->io = b->io;
    P->control = d->d_control;
    P->embed_out = b->embed_out;
    P->final_norm = b->final_norm;
    P->logits = b->logits;
    P->next_token = b->next_token;
    P->partial_o = d->d_partial_o;
    P->partial_ml = d->d_partial_ml;
    P->block_best_value = d->d_best_value;
    P->block_best_index = d->d_best_index;
    P->counters = d->d_counters;
    P->eps = b->eps;
    P->skeleton = b->skeleton;
    return d;
fail_cleanup:
    dataflow_decode_destroy(d);
    return NULL;
}

void dataflow_decode_destroy(DataflowDecode *d) {
    if (!d) return;
    void *ptrs[] = {d->d_layers, d->d_instructions, d->d_offsets, d->d_counters, d->d_partial_o,
                    d->d_partial_ml, d->d_best_value, d->d_best_index, d->d_control};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) cudaFree(ptrs[i]);
    if (d->h_control) cudaFreeHost(d->h_control);
    dataflow_program_free(&d->program);
    free(d);
}

int dataflow_decode_set_control(DataflowDecode *d, int trace, int forced, cudaStream_t stream, ErrorMessage *err) {
    trace = trace != 0;
    forced = forced != 0;
    if (d->h_control[0] == trace && d->h_control[1] == forced) return 0;
    // The previous upload (if any) must have been consumed before the pinned words change.
    CUDA_CHECK(cudaStreamSynchronize(stream), "dataflow control upload");
    d->h_control[0] = trace;
    d->h_control[1] = forced;
    CUDA_CHECK(cudaMemcpyAsync(d->d_control, d->h_control, 2 * sizeof(int), cudaMemcpyHostToDevice, stream),
               "dataflow control upload");
    return 0;
}

int dataflow_decode_enqueue(DataflowDecode *d, cudaStream_t stream, ErrorMessage *err) {
    return launch_dataflow_decode(&d->program, &d->params, d->groups, d->n_pages, stream, err);
}

void dataflow_decode_describe(const DataflowDecode *d, char *out, size_t size) {
    snprintf(out, size, "dataflow: %d blocks x %d groups x %d pages of %d KB, %d instructions a token%s",
             d->program.shape.n_blocks / d->groups, d->groups, d->n_pages, d->program.shape.page_bytes / 1024,
             d->program.n_instructions,
             d->params.skeleton ? " (skeleton: no arithmetic)" : "");
}
