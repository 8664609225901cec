// The dataflow engine's program (fused/dataflow/dataflow_schedule.h), checked on the CPU: every tile
// of every op and layer appears exactly once; executing every block's list in order, with each
// instruction waiting on the counters the kernel waits on, finishes (no deadlock) at every position;
// every counter then holds exactly its target; no instruction streams more than a tile; and shapes
// the kernel cannot run are refused with one line.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../fused/dataflow/dataflow_schedule.h"

// The wait and the signal of one instruction, as dataflow_kernel.cu does them. Returns 1 when it can
// run (then applies its signal), 0 when it must wait; inactive attention splits run and signal nothing.
static int try_run(const DataflowProgram *p, DataflowInstruction in, int position, unsigned *counters) {
    const DataflowShape *s = &p->shape;
    int group = s->n_heads / s->n_kv_heads, l = in.layer, active = dataflow_active_splits(p, position);
    switch (in.op) {
    case DATAFLOW_QKV:
        if (l > 0 && counters[dataflow_counter_down(p, l - 1)] < (unsigned)p->down_tiles) return 0;
        counters[dataflow_counter_qkv(p, l, dataflow_qkv_tile_kv_head(p, (int)in.index))]++;
        return 1;
    case DATAFLOW_ATTN: {
        int split = (int)in.index / s->n_kv_heads, h = (int)in.index % s->n_kv_heads;
        if (split >= active) return 1;
        if (counters[dataflow_counter_qkv(p, l, h)] < (unsigned)p->qkv_tiles_per_kv_head) return 0;
        // The last active split of the head merges its q heads.
        if (++counters[dataflow_counter_attn(p, l, h)] == (unsigned)active) counters[dataflow_counter_merge(p, l)] += group;
        return 1;
    }
    case DATAFLOW_OPROJ:
        if (counters[dataflow_counter_merge(p, l)] < (unsigned)s->n_heads) return 0;
        counters[dataflow_counter_oproj(p, l)]++;
        return 1;
    case DATAFLOW_GATEUP:
        if (counters[dataflow_counter_oproj(p, l)] < (unsigned)p->oproj_tiles) return 0;
        counters[dataflow_counter_gateup(p, l)]++;
        return 1;
    case DATAFLOW_DOWN:
        if (counters[dataflow_counter_gateup(p, l)] < (unsigned)p->gateup_tiles) return 0;
        counters[dataflow_counter_down(p, l)]++;
        return 1;
    case DATAFLOW_LMHEAD:
        return counters[dataflow_counter_down(p, s->n_layers - 1)] >= (unsigned)p->down_tiles;
    case DATAFLOW_LMPARTIAL:
        counters[dataflow_counter_lmhead(p)]++;
        return 1;
    case DATAFLOW_ARGMAX:
        return counters[dataflow_counter_lmhead(p)] >= (unsigned)s->n_blocks;
    }
    return 0;
}

static void check_runs_to_completion(const DataflowProgram *p, int position) {
    const DataflowShape *s = &p->shape;
    unsigned *counters = calloc((size_t)p->n_counters, sizeof *counters);
    int *next = malloc((size_t)s->n_blocks * sizeof *next);
    cr_assert(counters && next);
    for (int b = 0; b < s->n_blocks; b++) next[b] = p->offsets[b];
    int remaining = p->n_instructions, progress = 1;
    while (remaining && progress) {
        progress = 0;
        for (int b = 0; b < s->n_blocks; b++)
            while (next[b] < p->offsets[b + 1] && try_run(p, p->instructions[next[b]], position, counters)) {
                next[b]++;
                remaining--;
                progress = 1;
            }
    }
    cr_assert_eq(remaining, 0, "position %d: %d instructions can never run (deadlock)", position, remaining);
    int active = dataflow_active_splits(p, position);
    for (int l = 0; l < s->n_layers; l++) {
        for (int h = 0; h < s->n_kv_heads; h++) {
            cr_assert_eq(counters[dataflow_counter_qkv(p, l, h)], (unsigned)p->qkv_tiles_per_kv_head, "layer %d head %d", l, h);
            cr_assert_eq(counters[dataflow_counter_attn(p, l, h)], (unsigned)active, "layer %d head %d", l, h);
        }
        cr_assert_eq(counters[dataflow_counter_merge(p, l)], (unsigned)s->n_heads);
        cr_assert_eq(counters[dataflow_counter_oproj(p, l)], (unsigned)p->oproj_tiles);
        cr_assert_eq(counters[dataflow_counter_gateup(p, l)], (unsigned)p->gateup_tiles);
        cr_assert_eq(counters[dataflow_counter_down(p, l)], (unsigned)p->down_tiles);
    }
    cr_assert_eq(counters[dataflow_counter_lmhead(p)], (unsigned)s->n_blocks);
    free(counters);
    free(next);
}

// Builds the program for `shape` and checks it; *keep receives it (the caller frees it), or it is freed
// here when keep is NULL.
static void check_program(DataflowShape shape, DataflowProgram *keep) {
    DataflowProgram p;
    ErrorMessage err;
    cr_assert_eq(dataflow_program_build(&shape, &p, &err), 0, "%s", err.text);
    const DataflowShape *s = &p.shape;
    // Every tile exactly once.
    int per_layer[DATAFLOW_N_OPS] = {p.qkv_tiles, p.splits * s->n_kv_heads, p.oproj_tiles, p.gateup_tiles,
                                     p.down_tiles, 0, 0, 0};
    for (int op = 0; op < DATAFLOW_LMHEAD; op++)
        for (int l = 0; l < s->n_layers; l++) {
            char *seen = calloc((size_t)per_layer[op], 1);
            cr_assert_not_null(seen);
            for (int i = 0; i < p.n_instructions; i++)
                if (p.instructions[i].op == op && p.instructions[i].layer == l) {
                    cr_assert_lt(p.instructions[i].index, (unsigned)per_layer[op]);
                    cr_assert_eq(seen[p.instructions[i].index]++, 0, "op %d layer %d tile %u twice", op, l,
                                 p.instructions[i].index);
                }
            for (int t = 0; t < per_layer[op]; t++) cr_assert_eq(seen[t], 1, "op %d layer %d tile %d missing", op, l, t);
            free(seen);
        }
    // What the kernel relies on in each block's list: max_block_instructions is the longest list (the
    // kernel copies a list to shared memory of that size), and a run of attention instructions of one
    // layer never goes down in split order (the kernel skips the rest of the run at the first split past the
    // token's position).
    int longest = 0;
    for (int b = 0; b < s->n_blocks; b++) {
        int length = p.offsets[b + 1] - p.offsets[b];
        if (length > longest) longest = length;
        for (int i = p.offsets[b] + 1; i < p.offsets[b + 1]; i++) {
            DataflowInstruction prev = p.instructions[i - 1], in = p.instructions[i];
            if (prev.op == DATAFLOW_ATTN && in.op == DATAFLOW_ATTN && prev.layer == in.layer)
                cr_assert_geq(in.index / s->n_kv_heads, prev.index / s->n_kv_heads,
                             "block %d: attention split %u after split %u in layer %d", b, in.index / s->n_kv_heads,
                             prev.index / s->n_kv_heads, in.layer);
        }
    }
    cr_assert_eq(p.max_block_instructions, longest);
    // The rows of each projection are covered exactly (tiles x rows >= rows, one tile fewer would not).
    int qkv_width = (s->n_heads + 2 * s->n_kv_heads) * s->head_dim;
    cr_assert(p.qkv_tiles * p.qkv_rows >= qkv_width && (p.qkv_tiles - 1) * p.qkv_rows < qkv_width);
    cr_assert(p.down_tiles * p.down_rows >= s->hidden && (p.down_tiles - 1) * p.down_rows < s->hidden);
    cr_assert(p.lmhead_tiles * p.lmhead_rows >= s->vocab && (p.lmhead_tiles - 1) * p.lmhead_rows < s->vocab);
    cr_assert_eq(s->head_dim % p.qkv_rows, 0);
    int positions[] = {0, 1, p.chunk - 1, p.chunk, p.chunk + 1, s->max_context / 2, s->max_context - 1};
    for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
        int position = positions[k];
        // The active splits cover the context [0, position] exactly, each at most span positions.
        int span = dataflow_split_span(&p, position), active = dataflow_active_splits(&p, position);
        cr_assert(active >= 1 && active <= p.splits, "position %d: %d active splits of %d", position, active, p.splits);
        cr_assert(active * span >= position + 1 && (active - 1) * span < position + 1,
                  "position %d: %d splits of %d positions", position, active, span);
        // A split's pieces fit a K/V buffer; a split longer than one is cut into whole passes of the
        // attention warps (all but its last piece), a shorter one is one piece.
        for (int split = 0; split < active; split++) {
            int begin = split * span, end = begin + span < position + 1 ? begin + span : position + 1;
            int length = dataflow_piece_positions(&p, end - begin);
            cr_assert_leq(length, p.chunk, "position %d split %d: pieces of %d positions", position, split, length);
            cr_assert_eq(length, end - begin > p.chunk ? DATAFLOW_ATTENTION_PASS : end - begin,
                         "position %d split %d of %d positions: pieces of %d", position, split, end - begin, length);
        }
        // A projection tile's weights fit the block's registers (tile_bytes); an attention piece's K and
        // V history fits a K/V buffer (chunk positions), whatever tile_bytes is.
        for (int i = 0; i < p.n_instructions; i++) {
            const size_t most = p.instructions[i].op == DATAFLOW_ATTN ? (size_t)2 * p.chunk * s->head_dim * 2
                                                                       : (size_t)s->tile_bytes;
            cr_assert_leq(dataflow_tile_bytes(&p, p.instructions[i], position), most, "instruction %d op %d", i,
                          p.instructions[i].op);
        }
        check_runs_to_completion(&p, position);
    }
    // longest_run picks the kernel (with runs or without): the longest stretch of one projection and
    // layer in a block's list, as the kernel's run_length walks it.
    int longest_in_lists = 1;
    for (int b = 0; b < s->n_blocks; b++)
        for (int i = p.offsets[b], run = 0; i < p.offsets[b + 1]; i++) {
            const DataflowInstruction in = p.instructions[i];
            const int projection = in.op == DATAFLOW_QKV || in.op == DATAFLOW_OPROJ || in.op == DATAFLOW_GATEUP ||
                                   in.op == DATAFLOW_DOWN;
            const int same = i > p.offsets[b] && p.instructions[i - 1].op == in.op && p.instructions[i - 1].layer == in.layer;
            run = projection ? (same ? run + 1 : 1) : 0;
            if (run > longest_in_lists) longest_in_lists = run;
        }
    cr_assert_eq(p.longest_run, longest_in_lists, "longest_run %d, the lists' longest run %d", p.longest_run, longest_in_lists);
    if (keep) *keep = p;
    else dataflow_program_free(&p);
}

Test(dataflow_schedule, qwen3_0_6b_on_132_sms) {
    DataflowShape shape = {1024, 3072, 16, 8, 128, 151936, 28, 1040, 132, 98304, 0};
    // A small model's layer is about one tile of each projection per SM: no SM runs two tiles of one
    // op while another idles.
    DataflowProgram p;
    check_program(shape, &p);
    int tiles[4] = {p.qkv_tiles, p.oproj_tiles, p.gateup_tiles, p.down_tiles};
    for (int op = 0; op < 4; op++) cr_assert_leq(tiles[op], 132, "projection %d: %d tiles for 132 SMs", op, tiles[op]);
    cr_assert_eq(p.qkv_rows, 32);
    cr_assert_eq(p.gateup_rows, 24);
    cr_assert_eq(p.longest_run, 1, "one tile of each projection a block a layer: the kernel without runs");
    dataflow_program_free(&p);
}

// Fewer attention splits than one a kv head per SM (FUSECHECK_DATAFLOW_SPLITS): the program runs to
// completion at every position; more than that is refused with one line.
Test(dataflow_schedule, qwen3_0_6b_with_fewer_splits) {
    for (int splits = 1; splits <= 16; splits *= 2) {
        DataflowShape shape = {1024, 3072, 16, 8, 128, 151936, 28, 1040, 132, 98304, splits};
        DataflowProgram p;
        check_program(shape, &p);
        cr_assert_eq(p.splits, splits);
        dataflow_program_free(&p);
    }
    DataflowProgram p;
    ErrorMessage err;
    DataflowShape too_many = {1024, 3072, 16, 8, 128, 151936, 28, 1040, 132, 98304, 17};
    cr_assert_eq(dataflow_program_build(&too_many, &p, &err), -1);
    cr_assert(strstr(err.text, "17 attention splits a kv head outside [1, 16] (132 SMs, 8 kv heads)"), "%s", err.text);
    cr_assert_null(strchr(err.text, '\n'), "one line: %s", err.text);
}

// 32 KB tiles (FUSECHECK_DATAFLOW_TILE_KB=32, a GPU test's way to run the large-model paths on
// qwen3-0.6b): several gate/up and down tiles a block in a layer, and the program still completes.
Test(dataflow_schedule, qwen3_0_6b_with_32_kb_tiles_runs_several_tiles_a_block) {
    DataflowShape shape = {1024, 3072, 16, 8, 128, 151936, 28, 1040, 132, 32768, 0};
    DataflowProgram p;
    check_program(shape, &p);
    cr_assert_gt(p.gateup_tiles, 2 * 132, "%d gate/up tiles", p.gateup_tiles);
    cr_assert_gt(p.down_tiles, 132, "%d down tiles", p.down_tiles);
    cr_assert_gt(p.longest_run, 1, "several tiles of an op a block run as runs");
    dataflow_program_free(&p);
}

Test(dataflow_schedule, qwen3_8b_on_132_sms) {
    DataflowProgram p;
    check_program((DataflowShape){4096, 12288, 32, 8, 128, 151936, 36, 300, 132, 98304, 0}, &p);
    cr_assert_geq(p.longest_run, 3, "qwen3-8b runs 3-16 tiles of an op a block: %d", p.longest_run);
    dataflow_program_free(&p);
}

Test(dataflow_schedule, small_on_an_odd_grid) {
    check_program((DataflowShape){256, 768, 8, 2, 64, 4096, 4, 700, 7, 98304, 0}, NULL);
}

Test(dataflow_schedule, refuses_shapes_without_an_instance) {
    DataflowProgram p;
    ErrorMessage err;
    DataflowShape tiny = {64, 192, 4, 2, 16, 256, 2, 64, 132, 98304, 0};
    cr_assert_eq(dataflow_program_build(&tiny, &p, &err), -1);
    cr_assert(strstr(err.text, "head_dim 16"), "%s", err.text);
    DataflowShape odd_group = {1024, 3072, 12, 8, 128, 1000, 2, 64, 132, 98304, 0};
    cr_assert_eq(dataflow_program_build(&odd_group, &p, &err), -1);
    cr_assert(strstr(err.text, "12 q heads over 8 kv heads"), "%s", err.text);
    DataflowShape wide = {1024, 20480, 16, 8, 128, 1000, 2, 64, 132, 98304, 0};
    cr_assert_eq(dataflow_program_build(&wide, &p, &err), -1);
    cr_assert(strstr(err.text, "intermediate_size 20480"), "%s", err.text);
}

// The LM head's walk over its row slots by increments (dataflow_lmhead_slot_after, as the kernel's
// run_lmhead steps a group's rows one slot at a time and a warp's groups many slots apart) lands
// where division puts it, for every rows-a-tile the schedule can choose and every stride up to a
// few tiles: qwen3-4b's 19 rows a tile (96 KB tiles) make groups of 4 rows straddle two tiles.
Test(dataflow_schedule, lm_head_walk_matches_division) {
    for (int rows_per_tile = 1; rows_per_tile <= DATAFLOW_MAX_TILE_ROWS; rows_per_tile++)
        for (int stride = 1; stride <= 4 * DATAFLOW_MAX_TILE_ROWS; stride++)
            for (int start = 0; start < 3 * rows_per_tile; start += 1 + rows_per_tile / 3) {
                DataflowLmheadSlot slot = {start / rows_per_tile, start % rows_per_tile};
                for (int step = 1; step <= 40; step++) {
                    int target = start + step * stride;
                    DataflowLmheadSlot by_one = slot;  // the next slot, as a group's rows are walked
                    by_one = dataflow_lmhead_slot_after(by_one, 0, 1, rows_per_tile);
                    int next = start + (step - 1) * stride + 1;
                    cr_assert(by_one.tile == next / rows_per_tile && by_one.row == next % rows_per_tile,
                              "%d rows a tile: slot %d walked to tile %d row %d", rows_per_tile, next, by_one.tile,
                              by_one.row);
                    slot = dataflow_lmhead_slot_after(slot, stride / rows_per_tile, stride % rows_per_tile, rows_per_tile);
                    cr_assert(slot.tile == target / rows_per_tile && slot.row == target % rows_per_tile,
                              "%d rows a tile, stride %d: slot %d walked to tile %d row %d", rows_per_tile, stride,
                              target, slot.tile, slot.row);
                }
            }
    DataflowProgram p;
    check_program((DataflowShape){2560, 9728, 32, 8, 128, 151936, 36, 300, 132, 98304, 0}, &p);
    cr_assert_eq(p.lmhead_rows % 4 != 0, 1, "qwen3-4b: %d LM head rows a tile, not a multiple of a group's 4", p.lmhead_rows);
    dataflow_program_free(&p);
}
