// The dataflow kernel's shared memory layout (dataflow_shared_bytes), checked on the CPU: with any set
// of weight pages a block's shared memory stays within what an sm_90 block may have, the pages are
// used where they fit (qwen3-0.6b) and left out where they do not (qwen3-8b: none fits), so no
// model is refused for them. Built only where the CUDA library is; runs without a device.
#include <criterion/criterion.h>

#include "../fused/dataflow/dataflow_kernel.h"

#define SM90_SHARED_LIMIT (227 * 1024)

static const int page_sets[] = {0, 1 << DATAFLOW_GATEUP, (1 << DATAFLOW_GATEUP) | (1 << DATAFLOW_DOWN),
                                (1 << DATAFLOW_QKV) | (1 << DATAFLOW_GATEUP),
                                (1 << DATAFLOW_QKV) | (1 << DATAFLOW_GATEUP) | (1 << DATAFLOW_DOWN)};
#define N_SETS (int)(sizeof page_sets / sizeof page_sets[0])

// Shared bytes of shape's program for each page set, in page_sets' order.
static void shared_bytes(DataflowShape shape, size_t *bytes) {
    DataflowProgram p;
    ErrorMessage err;
    cr_assert_eq(dataflow_program_build(&shape, &p, &err), 0, "%s", err.text);
    for (int i = 0; i < N_SETS; i++) {
        p.page_ops = page_sets[i];
        bytes[i] = dataflow_shared_bytes(&p);
        cr_assert_leq(bytes[i], SM90_SHARED_LIMIT, "page set %d: %zu bytes of shared memory", page_sets[i], bytes[i]);
    }
    dataflow_program_free(&p);
}

Test(dataflow_layout, qwen3_0_6b_has_room_for_every_page) {
    DataflowShape shape = {1024, 3072, 16, 8, 128, 151936, 28, 4096, 132, 96 * 1024, 0};
    size_t bytes[N_SETS];
    shared_bytes(shape, bytes);
    // gate/up's page is its tile (2 x 24 rows x 1024 x 2 bytes); QKV's 64 KB tile shares it.
    cr_assert_geq(bytes[1], bytes[0] + 96 * 1024, "gate/up's page missing: %zu against %zu", bytes[1], bytes[0]);
    cr_assert_eq(bytes[3], bytes[1], "QKV shares gate/up's page: %zu against %zu", bytes[3], bytes[1]);
    // Down's 48 KB page does not fit beside gate/up's and attention's two 40 KB K/V buffers: those sets
    // fall back to no pages at all rather than being refused.
    cr_assert_eq(bytes[2], bytes[0], "gate/up and down: %zu bytes, not the unpaged layout's %zu", bytes[2], bytes[0]);
    cr_assert_eq(bytes[4], bytes[0], "every page: %zu bytes, not the unpaged layout's %zu", bytes[4], bytes[0]);
}

Test(dataflow_layout, qwen3_8b_leaves_out_pages_that_do_not_fit) {
    DataflowShape shape = {4096, 12288, 32, 8, 128, 151936, 36, 1056, 132, 96 * 1024, 0};
    size_t bytes[N_SETS];
    shared_bytes(shape, bytes);
    // Its 8 KB rows leave no room for any page beside the K/V buffers and its 48 KB input vector.
    for (int i = 1; i < N_SETS; i++)
        cr_assert_eq(bytes[i], bytes[0], "page set %d: %zu bytes, not the unpaged layout's %zu", page_sets[i], bytes[i],
                     bytes[0]);
}
