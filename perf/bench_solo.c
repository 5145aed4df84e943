/*
 * bench_solo.c - a producer alone: the CPU cost of one 64-byte publish (or
 * claim + commit) with no reader anywhere, so no cache line is ever taken
 * from the producer. Against bench_throughput's rates (a reader spinning
 * on the next frame) it says how much of a 1 -> 1 publish is the
 * producer's own work and how much is the hand-off to the reader.
 *
 *   bench_solo [--mode publish|claim] [--exclusive] [--events N] [--runs R]
 *
 * One process on the CPU it is started on (pin it with taskset), one
 * 1-partition topic with an 8 MiB ring and no consumer, so nothing gates
 * the producer and it laps the ring freely (every page is touched in the
 * first run, which is not counted). Prints ns per event, best and median
 * of the timed runs, and the bare cost of a loop of memcpy of the same
 * value into a ring of the same size, as a baseline of the same run.
 */
#include "bench_util.h"

#include <getopt.h>

#define VALUE 64u
#define RING (8u << 20)

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "bench_solo: %s: %s (%s)\n", what, evb_strerror(rc), evb_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    print_cmdline(stdout, argc, argv);
    const char *mode = "publish";
    int exclusive = 0, runs = 7;
    uint64_t n = 4000000;
    static const struct option opts[] = {
        {"mode", required_argument, 0, 'm'}, {"exclusive", no_argument, 0, 'x'},
        {"events", required_argument, 0, 'n'}, {"runs", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': mode = optarg; break;
        case 'x': exclusive = 1; break;
        case 'n': n = strtoull(optarg, NULL, 0); break;
        case 'r': runs = atoi(optarg); break;
        case 'h':
            puts("usage: bench_solo [--mode publish|claim] [--exclusive] [--events N] "
                 "[--runs R (2..64)]");
            return 0;
        default: return 2;
        }
    }
    bool claim = !strcmp(mode, "claim");
    if ((!claim && strcmp(mode, "publish")) || runs < 2 || runs > 64 || n < 1000) {
        fprintf(stderr, "bench_solo: bad arguments (--help)\n");
        return 2;
    }
    char dir[256];
    evb_bus *bus;
    evb_producer *p;
    if (bench_one_topic("bench_solo", dir, sizeof dir, RING,
                        exclusive ? EVB_PRODUCER_EXCLUSIVE : 0, &bus, &p))
        return 1;
    int rc;
    uint64_t value[VALUE / 8] = {0};
    evb_msg m = {.value = value, .value_len = VALUE, .partition = EVB_PARTITION_ANY};
    double ns[64], base[64];
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            value[0] = i;
            if (claim) {
                struct evb_claim cl;
                if ((rc = evb_claim(p, EVB_PARTITION_ANY, NULL, 0, VALUE, &cl)))
                    return fail("evb_claim", rc);
                memcpy(cl.value, value, VALUE);
                if ((rc = evb_commit(p, &cl)))
                    return fail("evb_commit", rc);
            } else if ((rc = evb_publish(p, &m))) {
                return fail("evb_publish", rc);
            }
        }
        ns[r] = (double)(now_ns() - t0) / (double)n;
    }
    /* The baseline: the value's copy into a ring of the same size, the
     * part of a publish no design can skip. */
    uint8_t *ring = malloc(RING);
    if (!ring)
        return 1;
    memset(ring, 0, RING);
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = now_ns(), at = 0;
        for (uint64_t i = 0; i < n; i++) {
            value[0] = i;
            memcpy(ring + at, value, VALUE);
            __asm__ volatile("" ::"r"(ring) : "memory");
            at = (at + VALUE) & (RING - 1);
        }
        base[r] = (double)(now_ns() - t0) / (double)n;
    }
    free(ring);
    /* The first run of each touches every page: not counted. */
    qsort(ns + 1, (size_t)runs - 1, sizeof *ns, cmp_d);
    qsort(base + 1, (size_t)runs - 1, sizeof *base, cmp_d);
    double med = ns[1 + (runs - 1) / 2], bmed = base[1 + (runs - 1) / 2];
    printf("%s%s 64 B: %.2f ns/event median, %.2f best (%d runs of %llu); value copy alone "
           "%.2f ns median; publish / copy %.1f\n", mode, exclusive ? " exclusive" : "", med,
           ns[1], runs - 1, (unsigned long long)n, bmed, med / bmed);
    evb_producer_close(p);
    evb_bus_close(bus);
    rm_rf(dir);
    return 0;
}
