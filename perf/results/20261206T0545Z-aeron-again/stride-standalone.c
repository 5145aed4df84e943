// standalone: producer writes frames of STRIDE bytes (56-B header + 64-B value,
// stamp first word, release), lazy reader pauses N when caught up.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <x86intrin.h>
#define RING (8u << 20)
static uint8_t *ring;
static size_t stride = 128;
static int pauses = 512, read_value = 1, use_tsc = 1, zero_pad = 1, stamp_load = 0;
static _Atomic uint64_t rpos; // reader's position (bytes)
static _Atomic int stop;
static uint64_t produced;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void pin(int c) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(c, &s); pthread_setaffinity_np(pthread_self(), sizeof s, &s); }
static void *producer(void *a) {
    (void)a; pin(0);
    uint64_t pos = 0, seq = 1, limit = RING - 4096;
    uint8_t val[64]; memset(val, 7, 64);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (pos + stride > limit) {
            uint64_t r;
            while ((r = atomic_load_explicit(&rpos, memory_order_acquire)) + RING - 4096 < pos + stride)
                if (atomic_load_explicit(&stop, memory_order_relaxed)) return NULL;
            limit = r + RING - 4096;
        }
        uint8_t *f = ring + (pos % RING);
        uint64_t ts = use_tsc ? __rdtsc() : seq;
        uint64_t *h = (uint64_t *)f;
        h[1] = ts; h[2] = seq; h[3] = pos; h[4] = 64; h[5] = 0; h[6] = 120;
        if (zero_pad) for (size_t q = 120; q < stride; q += 8) *(uint64_t *)(f + q) = 0;
        memcpy(f + 56, val, 64);
        if (stamp_load && atomic_load_explicit((_Atomic uint64_t *)f, memory_order_relaxed) == seq)
            abort();
        atomic_store_explicit((_Atomic uint64_t *)f, seq, memory_order_release);
        pos += stride; seq++;
    }
    produced = seq - 1;
    return NULL;
}
static void *reader(void *a) {
    (void)a; pin(1);
    uint64_t pos = 0, seq = 1, sum = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint8_t *f = ring + (pos % RING);
        if (atomic_load_explicit((_Atomic uint64_t *)f, memory_order_acquire) != seq) {
            atomic_store_explicit(&rpos, pos, memory_order_release);
            for (int i = 0; i < pauses; i++) _mm_pause();
            continue;
        }
        if (read_value) { const uint64_t *v = (const uint64_t *)(f + 56); for (int i = 0; i < 8; i++) sum += v[i]; }
        pos += stride; seq++;
        if ((seq & 63) == 0) atomic_store_explicit(&rpos, pos, memory_order_release);
    }
    return (void *)(uintptr_t)sum;
}
int main(int argc, char **argv) {
    if (argc > 1) stride = strtoul(argv[1], 0, 0);
    if (argc > 2) pauses = atoi(argv[2]);
    if (argc > 3) read_value = atoi(argv[3]);
    if (argc > 4) use_tsc = atoi(argv[4]);
    if (argc > 5) zero_pad = atoi(argv[5]);
    if (argc > 6) stamp_load = atoi(argv[6]);
    ring = mmap(0, RING, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    pthread_t p, r;
    pthread_create(&r, 0, reader, 0); pthread_create(&p, 0, producer, 0);
    double t0 = now(); struct timespec d = {0, 400000000}; nanosleep(&d, 0);
    atomic_store(&stop, 1); pthread_join(p, 0); pthread_join(r, 0);
    printf("stride %zu pauses %d read_value %d tsc %d stamp_load %d: %.1f Mev/s\n", stride, pauses, read_value, use_tsc, stamp_load, produced / (now() - t0) / 1e6);
}
