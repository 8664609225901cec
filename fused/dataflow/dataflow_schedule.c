// The dataflow decode program (contract in dataflow_schedule.h).
#include "dataflow_schedule.h"

#include <stdlib.h>
#include <string.h>

static int min_int(int a, int b) { return a < b ? a : b; }

// Largest power of two <= limit (limit >= 1).
static int floor_power_of_two(int limit) {
    int p = 1;
    while (p * 2 <= limit) p *= 2;
    return p;
}

// Rows per tile of a projection with `rows` rows: enough that the op has at most one tile per block,
// but no more than `most` (what tile_bytes and DATAFLOW_MAX_TILE_ROWS allow); at least 1.
static int rows_per_tile(int rows, int n_blocks, int most) {
    int r = (rows + n_blocks - 1) / n_blocks;
    if (r > most) r = most;
    return r < 1 ? 1 : r;
}

static int check_shape(const DataflowShape *s, ErrorMessage *err) {
    if (s->head_dim != 64 && s->head_dim != 128)
        return fail(err, "dataflow engine: head_dim %d (the kernel handles 64 and 128)", s->head_dim);
    if (s->n_kv_heads < 1 || s->n_heads % s->n_kv_heads || s->n_heads / s->n_kv_heads > 8)
        return fail(err, "dataflow engine: %d q heads over %d kv heads (needs a whole group of at most 8)", s->n_heads,
                    s->n_kv_heads);
    int widths[3] = {s->hidden, s->n_heads * s->head_dim, s->intermediate};
    const char *names[3] = {"hidden_size", "q width", "intermediate_size"};
    for (int i = 0; i < 3; i++)
        if (widths[i] < 256 || widths[i] % 256 || widths[i] > DATAFLOW_MAX_VECTOR)
            return fail(err, "dataflow engine: %s %d is not a multiple of 256 in [256, %d]", names[i], widths[i],
                        DATAFLOW_MAX_VECTOR);
    if (s->n_layers < 1 || s->vocab < 1 || s->max_context < 1 || s->n_blocks < 1)
        return fail(err, "dataflow engine: empty shape (%d layers, vocab %d, context %d, %d blocks)", s->n_layers,
                    s->vocab, s->max_context, s->n_blocks);
    if (s->tile_bytes < 4096 || s->tile_bytes % 4096 || s->tile_bytes > DATAFLOW_MAX_TILE_BYTES)
        return fail(err, "dataflow engine: tiles of %d bytes (a multiple of 4096 in [4096, %d] expected)",
                    s->tile_bytes, DATAFLOW_MAX_TILE_BYTES);
    int widest = s->hidden > s->intermediate ? s->hidden : s->intermediate;
    if (s->n_heads * s->head_dim > widest) widest = s->n_heads * s->head_dim;
    if ((size_t)widest * 2 > (size_t)s->tile_bytes)
        return fail(err, "dataflow engine: a row of %d bf16 weights does not fit a tile of %d bytes", widest,
                    s->tile_bytes);
    if ((size_t)4 * s->hidden > (size_t)s->tile_bytes)
        return fail(err, "dataflow engine: a gate row and its up row (hidden %d) do not fit a tile of %d bytes",
                    s->hidden, s->tile_bytes);
    return 0;
}

// Appends the tiles of one op to the blocks round robin, continuing from *cursor so that consecutive
// ops start where the last one ended and every block gets its share over a layer.
typedef struct {
    DataflowInstruction *items;  // [n_blocks][capacity]
    int *count, capacity, n_blocks, cursor;
} Lists;

static int push(Lists *lists, int block, int op, int layer, int index, ErrorMessage *err) {
    if (lists->count[block] >= lists->capacity)
        return fail(err, "dataflow engine: program of block %d exceeds %d instructions", block, lists->capacity);
    DataflowInstruction in = {(uint16_t)op, (uint16_t)layer, (uint32_t)index};
    lists->items[(size_t)block * lists->capacity + lists->count[block]++] = in;
    return 0;
}

static int deal(Lists *lists, int op, int layer, int n_tiles, ErrorMessage *err) {
    for (int t = 0; t < n_tiles; t++) {
        if (push(lists, lists->cursor, op, layer, t, err)) return -1;
        lists->cursor = (lists->cursor + 1) % lists->n_blocks;
    }
    return 0;
}

int dataflow_program_build(const DataflowShape *shape, DataflowProgram *program, ErrorMessage *err) {
    memset(program, 0, sizeof *program);
    if (check_shape(shape, err)) return -1;
    DataflowProgram *p = program;
    const DataflowShape *s = shape;
    p->shape = *s;
    int q_width = s->n_heads * s->head_dim, qkv_width = (s->n_heads + 2 * s->n_kv_heads) * s->head_dim;
    const int most = DATAFLOW_MAX_TILE_ROWS, B = s->n_blocks, T = s->tile_bytes;
    // QKV tiles never straddle a head: a power of two that divides head_dim.
    int qkv_most = floor_power_of_two(min_int(min_int(most, T / (2 * s->hidden)), s->head_dim));
    p->qkv_rows = 1;
    while (p->qkv_rows < qkv_most && p->qkv_rows * B < qkv_width) p->qkv_rows *= 2;
    p->oproj_rows = rows_per_tile(s->hidden, B, min_int(most, T / (2 * q_width)));
    p->gateup_rows = rows_per_tile(s->intermediate, B, min_int(most / 2, T / (4 * s->hidden)));
    p->down_rows = rows_per_tile(s->hidden, B, min_int(most, T / (2 * s->intermediate)));
    p->lmhead_rows = min_int(most, T / (2 * s->hidden));
    p->qkv_tiles = (qkv_width + p->qkv_rows - 1) / p->qkv_rows;
    p->oproj_tiles = (s->hidden + p->oproj_rows - 1) / p->oproj_rows;
    p->gateup_tiles = (s->intermediate + p->gateup_rows - 1) / p->gateup_rows;
    p->down_tiles = (s->hidden + p->down_rows - 1) / p->down_rows;
    p->lmhead_tiles = (s->vocab + p->lmhead_rows - 1) / p->lmhead_rows;
    p->chunk = 80;
    // One split of every kv head on each SM at once: a block streams one range a layer, however long
    // the context (a fixed chunk per tile made long contexts run many tiles an SM, each paying a
    // tile's fixed costs).
    p->splits = s->n_blocks / s->n_kv_heads > 1 ? s->n_blocks / s->n_kv_heads : 1;
    if (s->splits < 0 || s->splits > p->splits)
        return fail(err, "dataflow engine: %d attention splits a kv head outside [1, %d] (%d SMs, %d kv heads)",
                    s->splits, p->splits, s->n_blocks, s->n_kv_heads);
    if (s->splits) p->splits = s->splits;
    p->qkv_tiles_per_kv_head = qkv_width / s->n_kv_heads / p->qkv_rows;
    p->counters_per_layer = 2 * s->n_kv_heads + 4;
    p->n_counters = s->n_layers * p->counters_per_layer + 2;

    int per_layer = p->qkv_tiles + p->splits * s->n_kv_heads + p->oproj_tiles + p->gateup_tiles +
                    p->down_tiles;
    long total = (long)per_layer * s->n_layers + p->lmhead_tiles + s->n_blocks + 1;
    Lists lists = {0};
    lists.n_blocks = s->n_blocks;
    lists.capacity = (int)(total / s->n_blocks + 2 * (long)s->n_layers * 6 + 8);
    lists.items = malloc((size_t)s->n_blocks * lists.capacity * sizeof *lists.items);
    lists.count = calloc((size_t)s->n_blocks, sizeof *lists.count);
    p->offsets = malloc(((size_t)s->n_blocks + 1) * sizeof *p->offsets);
    p->instructions = malloc((size_t)total * sizeof *p->instructions);
    int rc = -1;
    if (!lists.items || !lists.count || !p->offsets || !p->instructions) {
        fail(err, "dataflow engine: out of memory for a program of %ld instructions", total);
        goto done;
    }
    for (int l = 0; l < s->n_layers; l++) {
        // QKV tiles kv head by kv head (its q rows, its k rows, its v rows), so head 0's attention can
        // start while later heads' rows still stream.
        for (int h = 0; h < s->n_kv_heads; h++)
            for (int t = 0; t < p->qkv_tiles; t++)
                if (dataflow_qkv_tile_kv_head(p, t) == h) {
                    if (push(&lists, lists.cursor, DATAFLOW_QKV, l, t, err)) goto done;
                    lists.cursor = (lists.cursor + 1) % s->n_blocks;
                }
        // Split-major, so the splits every context uses (the first ones) spread over consecutive blocks.
        if (deal(&lists, DATAFLOW_ATTN, l, p->splits * s->n_kv_heads, err) ||
            deal(&lists, DATAFLOW_OPROJ, l, p->oproj_tiles, err) ||
            deal(&lists, DATAFLOW_GATEUP, l, p->gateup_tiles, err) || deal(&lists, DATAFLOW_DOWN, l, p->down_tiles, err))
            goto done;
    }
    if (deal(&lists, DATAFLOW_LMHEAD, 0, p->lmhead_tiles, err)) goto done;
    for (int b = 0; b < s->n_blocks; b++)
        if (push(&lists, b, DATAFLOW_LMPARTIAL, 0, 0, err)) goto done;
    if (push(&lists, 0, DATAFLOW_ARGMAX, 0, 0, err)) goto done;
    p->n_instructions = 0;
    p->max_block_instructions = 0;
    for (int b = 0; b < s->n_blocks; b++) {
        p->offsets[b] = p->n_instructions;
        memcpy(p->instructions + p->n_instructions, lists.items + (size_t)b * lists.capacity,
               (size_t)lists.count[b] * sizeof *p->instructions);
        p->n_instructions += lists.count[b];
        if (lists.count[b] > p->max_block_instructions) p->max_block_instructions = lists.count[b];
    }
    p->offsets[s->n_blocks] = p->n_instructions;
    p->longest_run = 1;
    for (int b = 0; b < s->n_blocks; b++) {
        int run = 1;
        for (int i = p->offsets[b] + 1; i < p->offsets[b + 1]; i++) {
            const DataflowInstruction *in = &p->instructions[i], *before = in - 1;
            const int projection = in->op == DATAFLOW_QKV || in->op == DATAFLOW_OPROJ || in->op == DATAFLOW_GATEUP ||
                                   in->op == DATAFLOW_DOWN;
            run = projection && in->op == before->op && in->layer == before->layer ? run + 1 : 1;
            if (run > p->longest_run) p->longest_run = run;
        }
    }
    rc = 0;
done:
    free(lists.items);
    free(lists.count);
    if (rc) dataflow_program_free(p);
    return rc;
}

void dataflow_program_free(DataflowProgram *program) {
    free(program->instructions);
    free(program->offsets);
    program->instructions = NULL;
    program->offsets = NULL;
    program->n_instructions = 0;
}
