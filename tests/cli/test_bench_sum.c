/*
 * test_bench_sum.c - `evbus bench` checksums values with bench_sum64()
 * (tools/bench_child.c), perf's benchmarks with sum64() (perf/bench_util.h):
 * two copies of one loop, kept apart by the layering, that must give the
 * same sum for the two benches to be compared (see either comment). Both
 * are summed here over the same bytes, at every alignment and at lengths
 * around the 32-byte stride, and against a plain word-by-word sum.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "bench_shm.h"  /* tools/: bench_sum64 */
#include "bench_util.h" /* perf/: sum64 */

/* The sum both should be: each whole 64-bit word once, a shorter tail
 * left out. */
static uint64_t plain_sum(const unsigned char *p, size_t len)
{
    uint64_t s = 0;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        s += w;
    }
    return s;
}

Test(bench_sum, tools_and_perf_agree)
{
    static unsigned char buf[4096 + 8];
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    static const size_t lens[] = {0, 7, 8, 24, 31, 32, 40, 63, 64, 72, 100, 1000, 4096};
    for (size_t off = 0; off < 8; off++)
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            const unsigned char *p = buf + off;
            size_t len = lens[k];
            uint64_t want = plain_sum(p, len);
            cr_assert_eq(bench_sum64(p, len), want, "tools' sum, offset %zu, %zu bytes", off,
                         len);
            cr_assert_eq(sum64(p, len), want, "perf's sum, offset %zu, %zu bytes", off, len);
        }
}
