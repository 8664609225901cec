// The dataflow decode engine's program: what each SM does for one decode token, computed once on the
// host when the engine is created, and the counters that model what each tile waits for.
//
// One decode token is cut into tiles. A tile is one instruction: rows of a projection (their weights
// at most tile_bytes, held in the block's registers), one kv head's attention over one chunk of
// positions (the block that finishes a kv head's last chunk also merges its q heads' chunks), the LM
// head's rows, and the argmax. Every SM runs its
// own list of instructions in order; an instruction waits only for the outputs of the tiles it reads
// (dataflow_kernel.cu: they travel tagged, so the data is the signal), never for a grid barrier. Weights depend on no activation, so
// a block issues a tile's weight loads before it waits for the tile's input.
//
// Deadlock freedom: every SM's list is a subsequence of one global order in which each tile comes
// after every tile it waits for (layer by layer: QKV, attention, o_proj, gate/up, down; then the
// LM head, the per-SM argmax partials, the argmax). The earliest unfinished tile in that order has all
// its inputs done and nothing unfinished before it on its SM, so it can always run, provided every
// block of the grid is resident at once (one block per SM, checked at launch).
//
// Tiles of a layer (R = rows per tile: as few as give every SM one tile of the op, within tile_bytes,
// so a layer is about one tile of each op per SM on a small model and several on a large one):
//   QKV     rows of W_qkv = [Wq; Wk; Wv] (qkv_width x hidden); attn_norm computed by every tile
//   ATTN    (kv head h, split k): the context [0, position] divided into `splits` ranges of span
//           positions (dataflow_split_span), range k streamed in pieces (dataflow_piece_positions)
//           with an online softmax; ranges past the context are skipped at run time. The block that counts a
//           kv head's last active split (its add returns active - 1) combines the splits' partial
//           softmax sums of the head's q heads into attn, then adds group to merge
//   OPROJ   rows of W_o (hidden x q_width), with the residual
//   GATEUP  R gate rows and the R up rows with the same indices (act needs both), mlp_norm by every tile
//   DOWN    rows of W_down (hidden x intermediate), with the residual
// then LMHEAD rows of the LM head (vocab x hidden), LMPARTIAL once per SM, ARGMAX once on SM 0.
#ifndef FUSECHECK_DATAFLOW_SCHEDULE_H
#define FUSECHECK_DATAFLOW_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "../../model/error.h"

#ifdef __CUDACC__
#define DATAFLOW_HOST_DEVICE __host__ __device__
#else
#define DATAFLOW_HOST_DEVICE
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
    DATAFLOW_QKV = 0,
    DATAFLOW_ATTN,
    DATAFLOW_OPROJ,
    DATAFLOW_GATEUP,
    DATAFLOW_DOWN,
    DATAFLOW_LMHEAD,
    DATAFLOW_LMPARTIAL,
    DATAFLOW_ARGMAX,
    DATAFLOW_N_OPS
};

// One instruction: 8 bytes. index: the tile's number within its op and layer (ATTN: split * n_kv_heads
// + kv_head; LMPARTIAL, ARGMAX: 0).
typedef struct {
    uint16_t op;
    uint16_t layer;
    uint32_t index;
} DataflowInstruction;

// The model shape the program is made for.
typedef struct {
    int hidden, intermediate, n_heads, n_kv_heads, head_dim, vocab, n_layers;
    int max_context;  // positions the KV cache holds
    int n_blocks;     // SMs, one block each
    int tile_bytes;   // most weight bytes of one projection tile (a multiple of 4096, at most
                      // DATAFLOW_MAX_TILE_BYTES): what a block holds in registers at once
    int splits;       // attention splits a kv head: 0 gives n_blocks / n_kv_heads (at least 1), one split
                      // of every kv head on each SM; else in [1, that count] (fewer, longer splits make
                      // the merge cheaper and each split's work longer)
} DataflowShape;

typedef struct {
    DataflowShape shape;
    // Rows per tile and tiles per layer of each projection; attention chunk length in positions.
    int qkv_rows, oproj_rows, gateup_rows, down_rows, lmhead_rows;
    int qkv_tiles, oproj_tiles, gateup_tiles, down_tiles, lmhead_tiles;
    int chunk;   // positions an attention tile streams at once (its K/V registers and shared memory)
    int splits;  // attention tiles a kv head: every context is divided into this many ranges
    int qkv_tiles_per_kv_head;
    // Counters (unsigned, in device memory, zero between tokens): per layer, then the LM head's and
    // the exit ticket. counters_per_layer = 2 * n_kv_heads + 4. The kernel uses only the LM head's and
    // the exit's; the others count tiles done in the CPU model of the schedule
    // (tests/test_dataflow_schedule.c), standing for the tagged values the kernel waits on.
    int counters_per_layer, n_counters;
    // Instructions of every block, block b's at instructions[offsets[b] .. offsets[b + 1]).
    DataflowInstruction *instructions;
    int *offsets;  // [n_blocks + 1]
    int n_instructions;
    int max_block_instructions;  // the longest block's list (the kernel copies a block's list to shared memory)
    // The most consecutive instructions of one projection (QKV, o_proj, gate/up, down) and layer in a
    // block's list: 1 where every block runs one tile of each a layer (qwen3-0.6b at the default tile
    // size); more, and the kernel runs them as runs (dataflow_kernel.cu, run_tiles).
    int longest_run;
    // The projections (bit op, of DATAFLOW_QKV, DATAFLOW_GATEUP, DATAFLOW_DOWN) whose tiles the kernel
    // copies into shared memory pages ahead of their turn (dataflow_kernel.cu). 0 after
    // dataflow_program_build, set by the caller. Where the pages do not fit in shared memory beside the
    // rest (large models), the kernel loads every tile into registers.
    int page_ops;
} DataflowProgram;

// Counter indices.
static inline DATAFLOW_HOST_DEVICE int dataflow_counter_qkv(const DataflowProgram *p, int layer, int kv_head) {
    return layer * p->counters_per_layer + kv_head;
}
static inline DATAFLOW_HOST_DEVICE int dataflow_counter_attn(const DataflowProgram *p, int layer, int kv_head) {
    return layer * p->counters_per_layer + p->shape.n_kv_heads + kv_head;
}
static inline DATAFLOW_HOST_DEVICE int dataflow_counter_merge(const DataflowProgram *p, int layer) {
    return layer * p->counters_per_layer + 2 * p->shape.n_kv_heads;
}
static inline DATAFLOW_HOST_DEVICE int dataflow_counter_oproj(const DataflowProgram *p, int layer) { return dataflow_counter_merge(p, layer) + 1; }
static inline DATAFLOW_HOST_DEVICE int dataflow_counter_gateup(const DataflowProgram *p, int layer) { return dataflow_counter_merge(p, layer) + 2; }
static inline DATAFLOW_HOST_DEVICE int dataflow_counter_down(const DataflowProgram *p, int layer) { return dataflow_counter_merge(p, layer) + 3; }
static inline DATAFLOW_HOST_DEVICE int dataflow_counter_lmhead(const DataflowProgram *p) { return p->shape.n_layers * p->counters_per_layer; }
static inline DATAFLOW_HOST_DEVICE int dataflow_counter_exit(const DataflowProgram *p) { return dataflow_counter_lmhead(p) + 1; }

// The kv head whose attention reads QKV tile `tile` (rows [tile * qkv_rows, +qkv_rows) of [Wq; Wk; Wv];
// qkv_rows divides head_dim, so a tile never straddles two heads).
static inline DATAFLOW_HOST_DEVICE int dataflow_qkv_tile_kv_head(const DataflowProgram *p, int tile) {
    const DataflowShape *s = &p->shape;
    int row = tile * p->qkv_rows, q_width = s->n_heads * s->head_dim, kv_width = s->n_kv_heads * s->head_dim;
    if (row < q_width) return row / s->head_dim / (s->n_heads / s->n_kv_heads);
    row -= q_width;
    if (row < kv_width) return row / s->head_dim;
    return (row - kv_width) / s->head_dim;
}

// The attention partials' tag keeps 24 bits of a launch's epoch (dataflow_kernel.h): launches whose
// epochs lie in [1, DATAFLOW_EPOCH_LIMIT) never repeat one another's tags (dataflow_decode.h).
#define DATAFLOW_EPOCH_LIMIT (1 << 24)

// Builds the program for `shape`. Refuses (one line in err, returns -1) a shape the kernel has no
// instance for: head_dim other than 64 or 128, n_heads not a multiple of n_kv_heads or more than 8 q heads
// per kv head, hidden, q width or intermediate not a multiple of 256 or above DATAFLOW_MAX_VECTOR,
// tile_bytes outside [4096, DATAFLOW_MAX_TILE_BYTES] or not a multiple of 4096, splits outside
// [0, n_blocks / n_kv_heads] (0 is the default count), or a row of any
// projection (a gate row with its up row) larger than tile_bytes.
// On success the program owns its arrays (dataflow_program_free).
#define DATAFLOW_MAX_VECTOR 16384
// Rows of one tile at most (a gate/up tile: half as many pairs), and its bytes at most.
#define DATAFLOW_MAX_TILE_ROWS 64
#define DATAFLOW_MAX_TILE_BYTES (96 * 1024)
int dataflow_program_build(const DataflowShape *shape, DataflowProgram *program, ErrorMessage *err);
void dataflow_program_free(DataflowProgram *program);

// Positions each attention split covers when the context is [0, position]: ceil((position + 1) / splits).
static inline DATAFLOW_HOST_DEVICE int dataflow_split_span(const DataflowProgram *p, int position) {
    return (position + p->splits) / p->splits;
}

// Splits with at least one position: ceil((position + 1) / span). The others are skipped.
static inline DATAFLOW_HOST_DEVICE int dataflow_active_splits(const DataflowProgram *p, int position) {
    int span = dataflow_split_span(p, position);
    return (position + span) / span;
}

// Positions one pass of attention's warps covers (the kernel's 16 warps, 4 positions each).
#define DATAFLOW_ATTENTION_PASS 64

// Positions a piece of a split of n positions streams: the whole split where it fits one K/V buffer
// (chunk positions), else one pass of every warp, so that no piece leaves most warps waiting at its
// barrier while a few take a second pass.
static inline DATAFLOW_HOST_DEVICE int dataflow_piece_positions(const DataflowProgram *p, int n) {
    return n <= p->chunk ? n : DATAFLOW_ATTENTION_PASS;
}

// Positions of [begin, begin + n) that come before `position`: the K/V history a piece streams (the
// newest row comes from this step's QKV tiles).
static inline DATAFLOW_HOST_DEVICE int dataflow_history(int begin, int n, int position) {
    int end = begin + n < position ? begin + n : position;
    return end > begin ? end - begin : 0;
}

// Bytes of weights (or K and V history, bf16) instruction `in` streams at `position`; 0: none.
static inline DATAFLOW_HOST_DEVICE size_t dataflow_tile_bytes(const DataflowProgram *p, DataflowInstruction in,
                                                              int position) {
    const DataflowShape *s = &p->shape;
    size_t row_bytes;
    int rows, first;
    switch (in.op) {
    case DATAFLOW_QKV:
        first = (int)in.index * p->qkv_rows;
        rows = (s->n_heads + 2 * s->n_kv_heads) * s->head_dim - first;
        return (size_t)(rows < p->qkv_rows ? rows : p->qkv_rows) * s->hidden * 2;
    case DATAFLOW_ATTN: {  // its largest piece, the first: K and V history of at most `chunk` positions
        int span = dataflow_split_span(p, position), begin = (int)in.index / s->n_kv_heads * span;
        if (begin > position) return 0;
        int end = begin + span < position + 1 ? begin + span : position + 1;
        int length = dataflow_piece_positions(p, end - begin);
        int history = dataflow_history(begin, length < end - begin ? length : end - begin, position);
        return (size_t)2 * history * s->head_dim * 2;
    }
    case DATAFLOW_OPROJ:
        first = (int)in.index * p->oproj_rows;
        rows = s->hidden - first;
        row_bytes = (size_t)s->n_heads * s->head_dim * 2;
        return (size_t)(rows < p->oproj_rows ? rows : p->oproj_rows) * row_bytes;
    case DATAFLOW_GATEUP:
        first = (int)in.index * p->gateup_rows;
        rows = s->intermediate - first;
        return (size_t)2 * (rows < p->gateup_rows ? rows : p->gateup_rows) * s->hidden * 2;
    case DATAFLOW_DOWN:
        first = (int)in.index * p->down_rows;
        rows = s->hidden - first;
        return (size_t)(rows < p->down_rows ? rows : p->down_rows) * s->intermediate * 2;
    case DATAFLOW_LMHEAD:
        first = (int)in.index * p->lmhead_rows;
        rows = s->vocab - first;
        return (size_t)(rows < p->lmhead_rows ? rows : p->lmhead_rows) * s->hidden * 2;
    default:
        return 0;
    }
}

/* A place in a block's run of LM head rows: row `row` (0 <= row < rows_per_tile) of the block's
 * `tile`-th LMHEAD instruction; slot number tile * rows_per_tile + row. The kernel walks its slots by
 * increments, not by division: the place `whole_tiles * rows_per_tile + rows` slots later, for
 * 0 <= rows < rows_per_tile (a step of one slot is whole_tiles 0, rows 1). Checked against division
 * by test_dataflow_schedule.c for every rows_per_tile the schedule can choose. */
typedef struct {
    int tile, row;
} DataflowLmheadSlot;

static inline DATAFLOW_HOST_DEVICE DataflowLmheadSlot dataflow_lmhead_slot_after(DataflowLmheadSlot slot,
                                                                                  int whole_tiles, int rows,
                                                                                  int rows_per_tile) {
    slot.tile += whole_tiles;
    slot.row += rows;
    if (slot.row >= rows_per_tile) {
        slot.row -= rows_per_tile;
        slot.tile++;
    }
    return slot;
}

#ifdef __cplusplus
}
#endif

#endif
