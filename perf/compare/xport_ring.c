/*
 * xport_ring.c - the bare SPSC ring, the floor of a shared-memory hand-off:
 * slots of exactly the value size in MAP_SHARED anonymous memory (made by
 * the parent, inherited by fork), head and tail on their own 128-byte
 * lines, the publisher releasing head per value and the reader releasing
 * tail per run of values it took (as bench_throughput's "spsc-ring-b"
 * reader). No headers, no lengths, no crash handling: what is left is the
 * copy in, the two cache-line transfers and the reader's read.
 *
 * Blocking mode (the rate and round-trip tests' "block"): a reader with
 * nothing to read sleeps on a futex at once, with no spinning first, and
 * the publisher wakes it when it saw it asleep: the floor of a blocking
 * hand-off, one futex wake-up and the transfers. Spinning mode pays none
 * of it (the publisher's fence is only there when blocking).
 */
#include "xport.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../bench_util.h"

typedef struct ring_hdr {
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t head; /* next slot to write */
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t tail; /* next slot to read */
    /* Blocking mode: readers asleep or about to be, and the futex word the
     * publisher bumps when it wakes them. */
    _Alignas(BENCH_CACHELINE) _Atomic uint32_t sleepers;
    _Atomic uint32_t bell;
} ring_hdr;

typedef struct ring {
    ring_hdr *hdr;
    unsigned char *slots;
    uint64_t nslots, cached, pos;
    size_t size;
    int blocking;
} ring;

/* Made by the parent before fork, so every child has them; by name, as a
 * round trip uses two channels at once. */
#define RINGS 4
static ring rings[RINGS];
static char ring_names[RINGS][64];

static ring *ring_find(const char *name)
{
    for (int i = 0; i < RINGS; i++)
        if (!strcmp(ring_names[i], name))
            return &rings[i];
    return NULL;
}

static int ring_chan_create(const xp_cfg *cf, char *msg)
{
    if (cf->readers != 1) {
        snprintf(msg, 256, "the bare ring has one reader");
        return -EINVAL;
    }
    ring *r = ring_find("");
    if (!r) {
        snprintf(msg, 256, "more than %d rings at once", RINGS);
        return -ENOSPC;
    }
    snprintf(ring_names[r - rings], 64, "%s", cf->name);
#define the_ring (*r)
    the_ring.size = cf->size;
    the_ring.nslots = cf->buf_bytes / cf->size;
    the_ring.hdr = mmap(NULL, sizeof(ring_hdr), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    the_ring.slots = mmap(NULL, the_ring.nslots * cf->size, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (the_ring.hdr == MAP_FAILED || the_ring.slots == MAP_FAILED) {
        snprintf(msg, 256, "mmap: %s", strerror(errno));
        return -ENOMEM;
    }
    return 0;
}

static void ring_chan_destroy(const xp_cfg *cf)
{
    ring *r = ring_find(cf->name);
    if (!r)
        return;
    ring_names[r - rings][0] = 0;
    munmap(the_ring.hdr, sizeof(ring_hdr));
    munmap(the_ring.slots, the_ring.nslots * the_ring.size);
    memset(&the_ring, 0, sizeof(the_ring));
}
#undef the_ring

static int ring_open(void **h, const xp_cfg *cf, char *msg)
{
    ring *r = ring_find(cf->name);
    if (!r) {
        snprintf(msg, 256, "no ring %s", cf->name);
        return -ENOENT;
    }
    *h = r; /* each process has its own copy of the cursor fields */
    r->blocking = cf->blocking;
    return 0;
}

static int ring_sub_open(void **h, const xp_cfg *cf, int reader, char *msg)
{
    (void)reader;
    return ring_open(h, cf, msg);
}

static int ring_send(void *h, const void *v, size_t len)
{
    ring *r = h;
    uint64_t head = r->pos;
    while (head - r->cached >= r->nslots) {
        /* acquire: the reader is done with the slot we are about to reuse */
        r->cached = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
        if (head - r->cached >= r->nslots)
            cpu_relax();
    }
    memcpy(r->slots + (head % r->nslots) * r->size, v, len);
    r->pos = head + 1;
    /* release: the slot's bytes are visible before the new head */
    atomic_store_explicit(&r->hdr->head, r->pos, memory_order_release);
    if (r->blocking) {
        /* seq_cst fence: our head store before the sleepers load, as the
         * reader's seq_cst RMW of sleepers is before its head load (a
         * Dekker pair: one of us sees the other). */
        atomic_thread_fence(memory_order_seq_cst);
        /* Relaxed: ordered by the fence above. */
        if (atomic_load_explicit(&r->hdr->sleepers, memory_order_relaxed)) {
            /* Relaxed: the futex compares the word; the head store above
             * is what the woken reader acquires. */
            atomic_fetch_add_explicit(&r->hdr->bell, 1, memory_order_relaxed);
            syscall(SYS_futex, &r->hdr->bell, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        }
    }
    return 0;
}

/* Blocking mode: sleep until the head moves past TAIL or T_END (ns, 0:
 * no end) passes. */
static void ring_sleep(ring *r, uint64_t tail, uint64_t t_end)
{
    /* seq_cst: the Dekker pair of ring_send's fence (above). */
    atomic_fetch_add_explicit(&r->hdr->sleepers, 1, memory_order_seq_cst);
    /* Relaxed: the futex compares it; a bump after this load fails the
     * wait at once. */
    uint32_t bell = atomic_load_explicit(&r->hdr->bell, memory_order_relaxed);
    if (atomic_load_explicit(&r->hdr->head, memory_order_seq_cst) == tail) {
        struct timespec ts = {1, 0}, *tsp = &ts;
        if (t_end) {
            uint64_t now = now_ns(), left = t_end > now ? t_end - now : 0;
            ts.tv_sec = (time_t)(left / 1000000000u);
            ts.tv_nsec = (long)(left % 1000000000u);
        }
        syscall(SYS_futex, &r->hdr->bell, FUTEX_WAIT, bell, tsp, NULL, 0);
    }
    atomic_fetch_sub_explicit(&r->hdr->sleepers, 1, memory_order_relaxed);
}

static int ring_recv(void *h, xp_value_fn fn, void *arg, int32_t timeout_ms)
{
    ring *r = h;
    uint64_t tail = r->pos;
    uint64_t t_end = timeout_ms > 0 ? now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    for (;;) {
        /* acquire: pairs with the publisher's release of head */
        r->cached = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
        if (r->cached != tail || timeout_ms == 0 || (t_end && now_ns() > t_end))
            break;
        if (r->blocking)
            ring_sleep(r, tail, t_end);
        else
            cpu_relax();
    }
    uint64_t n = r->cached - tail;
    if (n > 256)
        n = 256;
    uint64_t i = 0;
    while (i < n) {
        int stop = fn(r->slots + (tail % r->nslots) * r->size, r->size, arg);
        tail++;
        i++;
        if (stop)
            break;
    }
    r->pos = tail;
    /* release: our reads of the slots happen before the publisher reuses them */
    atomic_store_explicit(&r->hdr->tail, tail, memory_order_release);
    return (int)i;
}

static void ring_close(void *h)
{
    (void)h;
}

const xp_ops xp_ring = {
    .name = "spsc-ring",
    .how = "fixed slots of the value size, head/tail release per value, reader "
           "releases per run; one reader; blocking: a futex wait at once, no spin",
    .can_fanout = 0, .can_block = 1,
    .chan_create = ring_chan_create, .chan_destroy = ring_chan_destroy,
    .pub_open = ring_open, .send = ring_send, .pub_close = ring_close,
    .sub_open = ring_sub_open, .recv = ring_recv, .sub_close = ring_close,
};
