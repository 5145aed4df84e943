/*
 * bench_shm.h - what the parent of an `evbus bench` run (bench_run.c) and
 * its producer and consumer processes (bench_child.c) share: one
 * MAP_SHARED block of start times and per-child counters, the consumers'
 * histograms beside it, and the value's layout (send time, producer and
 * sequence, then a fixed pattern whose word sum the consumers check).
 */
#ifndef EVBUS_BENCH_SHM_H
#define EVBUS_BENCH_SHM_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "bench.h"

#define LINE 128

enum { SLOT_STARTING, SLOT_READY, SLOT_DONE };

/* One child's counters, on their own lines: written by that child only. */
typedef struct bench_slot {
    _Alignas(LINE) _Atomic uint64_t events; /* published, or delivered */
    _Atomic uint64_t timed;                 /* of those, in the timed window */
    _Atomic uint32_t state;                 /* SLOT_* */
    uint64_t lost, bad, redelivered;        /* consumers; final at SLOT_DONE */
    uint64_t t_last;                        /* by events: clock of the last timed one */
    char msg[256];                          /* why it failed */
} bench_slot;

/*
 * Ordering edges between the parent and its children:
 *   B1  a child's final fields (lost, bad, t_last, its histogram) before
 *       state = SLOT_DONE (release); the parent loads state (acquire)
 *       before reading them.
 *   B2  the parent's start times (t_go, t_measure, t_end) before go = 1
 *       (release); children load go (acquire) before reading them.
 * Counters (events, timed), halt and stop are relaxed: statistics, or a
 * request to leave that publishes no data.
 */
typedef struct bench_shm {
    _Alignas(LINE) _Atomic uint32_t go;
    uint64_t t_go, t_measure, t_end;       /* CLOCK_MONOTONIC ns; t_end UINT64_MAX by events */
    _Alignas(LINE) _Atomic uint32_t halt;  /* producers: stop now (Ctrl-C) */
    _Alignas(LINE) _Atomic uint32_t stop;  /* consumers: drained, leave */
    bench_slot slot[2 * BENCH_MAX_PROCS];  /* producers, then consumers */
} bench_shm;

typedef struct bench_child {
    const bench_cfg *cfg;
    const char *bus_path, *data_dir, *topic;
    uint64_t size;
    bench_shm *shm;
    hist *hist;               /* consumers: theirs, in shared memory */
    bench_slot *slot;
    uint32_t index;           /* among producers, or among consumers */
    bool crowded;             /* more processes than CPUs: yield when idle */
    uint64_t pattern_sum;     /* sum64 of a value's words after the header */
} bench_child;

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sum of the whole 64-bit words of P[0..LEN). */
uint64_t bench_sum64(const void *p, size_t len);
/* The fixed filling of a value's bytes after the header. */
void bench_fill_pattern(unsigned char *p, size_t len);
/* Say in K's slot why it failed; returns 1, its exit code. */
int bench_child_fail(bench_child *k, const char *what, int rc);
/* A producer's or consumer's process; they return its exit code. */
int bench_producer_main(bench_child *k);
int bench_consumer_main(bench_child *k);

#endif /* EVBUS_BENCH_SHM_H */
