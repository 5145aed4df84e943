/*
 * producer.c - producers: pick a partition, claim, write frames, commit.
 * The ring protocol itself (limits, CAS, pads) is shm/claim.c; this file
 * owns frame contents, batching, back-pressure waiting and sequences.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "bus_internal.h"
#include "claim_inline.h"
#include "crc32c.h"
#include "dlq.h"
#include "frame.h"
#include "producer_state.h"
#include "spin.h"

/*
 * An open claim, as evb_claim left it for evb_commit. The common claim
 * (claim_one) stores only what its commit reads: every store on the way
 * from claim to commit queues behind the frame's own stores while a
 * caught-up reader holds the frame's lines, and a dozen of them cost a
 * 1 -> 1 stream about 8 % (perf/RESULTS.md, sixteenth session).
 */
enum {
    EVB_CLAIM_NONE,
    EVB_CLAIM_FULL,  /* every field of claim */
    EVB_CLAIM_PLAIN, /* data_pos, offset and len; one event, no end pad */
};

/* P's open claim: its EVB_CLAIM_* and partition, in one word so that a
 * claim opens with one store. */
#define OPEN(kind, part) ((uint32_t)(kind) << 16 | (part))
#define open_kind(p) ((p)->open >> 16)
#define open_part(p) ((p)->open & 0xffffu)
static_assert(EVB_MAX_PARTITIONS <= 0x10000, "a partition fits the open word's low half");

struct evb_producer {
    evb_bus *bus;
    struct evb_topic_map *tm;
    evb_producer_options opts;
    uint32_t producer_id;
    uint32_t rr;               /* round-robin cursor */
    uint32_t open;             /* the claim open: its kind << 16 | partition */
    struct evb_ring_claim claim;
    struct evb_ring_producer *rp; /* per partition; rp[i].slot == NULL until used */
    uint64_t *seq;             /* next producer sequence per partition */
    uint64_t *end;             /* durable: end of our last commit per partition */
    uint64_t *durable_seen;    /* highest durable position polled, per partition */
    bool durable;              /* frames carry a CRC32C; sync waits for disk */
    bool poke;                 /* ASYNC: a sync wakes the flusher early */
    struct evb_flusher *flusher; /* durable: this process flushes too */
    struct evb_sync_file *sync; /* durable: per partition, to lead fdatasyncs */
    struct evb_pstate ps;      /* stable id: its state file (map NULL otherwise) */
    uint32_t fork_gen;         /* evb_proc_fork_gen() at open: else a forked copy */
    int opener;                /* the pid that opened it, for the message */
    evb_producer *next;        /* in open_list */
};

static struct evb_ring_producer *ring_producer(evb_producer *p, uint32_t part, int *rc);

/*
 * Every producer handle of this process, so that a forked child can take
 * the claims open at the fork out of its copies: such a claim is the
 * parent's, which may still be writing its frame, and a commit in the
 * child would make it readable half written (an abort would pad it under
 * the parent). Closed in the child (open 0), evb_commit and
 * evb_abort there fall into their "no claim open" branch, which names the
 * fork (no_claim): the commit's fast path pays no fork check of its own.
 * Claims, publishes and batches are refused by ring_producer's check.
 */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static evb_producer *open_list;

static void open_fork_prepare(void)
{
    pthread_mutex_lock(&open_mu);
}

static void open_fork_parent(void)
{
    pthread_mutex_unlock(&open_mu);
}

/* The child has one thread: no handle is in use while this runs. The
 * copies stay listed, as the child may close them (and fork again). */
static void open_fork_child(void)
{
    for (evb_producer *p = open_list; p; p = p->next)
        p->open = 0;
    pthread_mutex_unlock(&open_mu);
}

__attribute__((constructor)) static void open_atfork(void)
{
    pthread_atfork(open_fork_prepare, open_fork_parent, open_fork_child);
}

static void open_link(evb_producer *p)
{
    pthread_mutex_lock(&open_mu);
    p->next = open_list;
    open_list = p;
    pthread_mutex_unlock(&open_mu);
}

static void open_unlink(evb_producer *p)
{
    pthread_mutex_lock(&open_mu);
    for (evb_producer **pp = &open_list; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    pthread_mutex_unlock(&open_mu);
}

EVB_EXPORT int evb_producer_open(evb_producer **out, evb_bus *bus, const char *topic,
                                 const evb_producer_options *opts)
{
    EVB_NO_CANCEL;
    if (!out || !bus)
        return -EINVAL;
    *out = NULL;
    evb_err_clear();
    /* Producer ids come from bus.meta, which this caller may only read. */
    if (bus->meta_ro)
        return evb_err_set(-EACCES, "bus %s: bus.meta is read-only to you, so you cannot "
                           "publish", bus->path);
    if (opts && (opts->flags & ~EVB_PRODUCER_EXCLUSIVE))
        return evb_err_set(-EINVAL, "producer flags 0x%x: unknown (EVB_PRODUCER_EXCLUSIVE "
                           "is the only one)", opts->flags & ~EVB_PRODUCER_EXCLUSIVE);
    if (opts && opts->producer_id && opts->producer_id < EVB_PRODUCER_ID_STABLE)
        return evb_err_set(-EINVAL, "producer id %u: a stable id is at least 0x%x (below "
                           "it, ids are drawn from the bus)", opts->producer_id,
                           EVB_PRODUCER_ID_STABLE);
    evb_producer *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->ps.fd = -1;
    p->fork_gen = evb_proc_fork_gen();
    p->opener = (int)getpid();
    open_link(p);
    int rc = evb_topic_map_open(bus, topic, &p->tm);
    if (!rc && p->tm->readonly) {
        rc = evb_err_set(-EACCES, "topic %s: you may read it, not publish to it", topic);
        evb_topic_map_close(p->tm);
    }
    if (rc) {
        open_unlink(p);
        free(p);
        return rc;
    }
    p->rp = calloc(p->tm->nparts, sizeof *p->rp);
    p->seq = calloc(p->tm->nparts, sizeof *p->seq);
    p->end = calloc(p->tm->nparts, sizeof *p->end);
    p->durable_seen = calloc(p->tm->nparts, sizeof *p->durable_seen);
    p->bus = bus;
    if (!p->rp || !p->seq || !p->end || !p->durable_seen) {
        evb_producer_close(p);
        return -ENOMEM;
    }
    p->durable = p->tm->cfg.durability != EVB_DURABILITY_NONE;
    p->poke = p->tm->cfg.durability == EVB_DURABILITY_ASYNC;
    if (p->durable) {
        if (!(p->sync = calloc(p->tm->nparts, sizeof *p->sync))) {
            evb_producer_close(p);
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < p->tm->nparts; i++)
            evb_sync_file_init(&p->sync[i], p->tm->ddir, i, p->tm->cfg.segment_bytes);
    }
    /* Every producer's process is a flush candidate: no daemon needed. */
    if (p->durable)
        evb_flush_orphans(p->tm);
    if (p->durable && (rc = evb_flusher_get(bus, p->tm, &p->flusher))) {
        evb_err_prefix(rc, "topic %s: flusher", topic);
        evb_producer_close(p);
        return rc;
    }
    /* Where this process holds a partition's flush lock, its sync waits
     * run the flush themselves (durable_wait.c). */
    for (uint32_t i = 0; p->durable && i < p->tm->nparts; i++)
        p->sync[i].fl = evb_flusher_flush(p->flusher);
    if (opts)
        p->opts = *opts;
    if (p->opts.producer_id) {
        p->producer_id = p->opts.producer_id;
        if ((rc = evb_pstate_open(&p->ps, bus, p->tm, p->producer_id))) {
            evb_producer_close(p);
            return rc;
        }
        for (uint32_t i = 0; i < p->tm->nparts; i++)
            p->seq[i] = p->ps.v[i].committed; /* settled: == claimed */
    } else {
        /* Relaxed: uniqueness is all that is needed. */
        uint32_t id = atomic_fetch_add_explicit(&bus->meta->next_producer_id, 1,
                                                memory_order_relaxed) + 1;
        if (id >= EVB_PRODUCER_ID_STABLE) {
            evb_producer_close(p);
            return evb_err_set(-EOVERFLOW, "bus %s: all %u producer ids were handed out; "
                               "remove the bus to start over", bus->path,
                               EVB_PRODUCER_ID_STABLE - 1);
        }
        p->producer_id = id;
    }
    p->rr = p->producer_id;
    /* Exclusive: every partition now, so a shared producer in the way is
     * this call's error, not a later publish's. */
    for (uint32_t i = 0; (p->opts.flags & EVB_PRODUCER_EXCLUSIVE) && i < p->tm->nparts; i++) {
        ring_producer(p, i, &rc);
        if (rc) {
            evb_err_prefix(rc, "topic %s", topic);
            evb_producer_close(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

EVB_EXPORT void evb_producer_close(evb_producer *p)
{
    EVB_NO_CANCEL;
    if (!p)
        return;
    /* A forked child's copy of its parent's handle frees only memory: the
     * claim, ring slots, exclusive hold and flusher thread are the
     * parent's (the thread does not even exist here). */
    bool copy = p->fork_gen != evb_proc_fork_gen();
    if (p->open && !copy)
        evb_abort(p, &(struct evb_claim){0});
    for (uint32_t i = 0; p->rp && !copy && i < p->tm->nparts; i++)
        evb_ring_producer_detach(&p->rp[i]);
    /* The last producer of this process on the topic: its flusher writes
     * and syncs what is committed, then lets another process take over. */
    if (!copy)
        evb_flusher_put(p->bus, p->flusher);
    free(p->rp);
    free(p->seq);
    free(p->end);
    free(p->sync);
    free(p->durable_seen);
    evb_pstate_close(&p->ps);
    evb_topic_map_close(p->tm);
    open_unlink(p);
    free(p);
}

EVB_EXPORT int evb_producer_last_seq(evb_producer *p, uint32_t partition, uint64_t *seq)
{
    if (!p || !seq || partition >= p->tm->nparts)
        return -EINVAL;
    uint64_t next = p->seq[partition];
    if (p->ps.map)
        next = p->ps.v[partition].committed; /* what this handle last stored */
    if (next == 0)
        return -ENOENT;
    *seq = next - 1;
    return 0;
}

/* A stable producer's state around a claim (N1, producer_state.c): before
 * it, the highest sequence it may take and where it will be (not yet). */
static void state_claiming(evb_producer *p, uint32_t part, uint64_t first_seq,
                           uint64_t next)
{
    struct evb_pst_vals v = p->ps.v[part];
    v.pending_pos = EVB_POS_NONE;
    v.pending_seq = first_seq;
    if (next > v.claimed)
        v.claimed = next;
    evb_pstate_put(&p->ps, part, &v); /* N1: before the claim's CAS */
}

static void state_claimed(evb_producer *p, uint32_t part, uint64_t pos)
{
    struct evb_pst_vals v = p->ps.v[part];
    v.pending_pos = pos;
    evb_pstate_put(&p->ps, part, &v); /* N1: before the commit CAS */
}

/* After the commit (OK) or its failure: committed is the next sequence
 * either way, and claimed comes back to it when nothing was published. */
static void state_done(evb_producer *p, uint32_t part, bool ok)
{
    struct evb_pst_vals v = p->ps.v[part];
    if (!ok)
        v.claimed = p->seq[part];
    v.committed = p->seq[part];
    evb_pstate_put(&p->ps, part, &v); /* N1: after the commit CAS */
}

/* A stable id whose sequence reached EVB_SEQ_LIMIT in PART: for good. */
static int seq_overflow(const evb_producer *p, uint32_t part)
{
    return evb_err_set(-EOVERFLOW, "partition %u: producer 0x%x's sequence would pass "
                       "2^63 - 1 (its next is %llu): this id can publish no new event there "
                       "again, only republish below that. Publish new events under another "
                       "producer id", part, p->producer_id, (unsigned long long)p->seq[part]);
}

static int pick_partition(evb_producer *p, int32_t want, const void *key, uint32_t key_len)
{
    uint32_t n = p->tm->nparts;
    if (want >= 0)
        return (uint32_t)want < n ? want : -EINVAL;
    if (want != EVB_PARTITION_ANY)
        return -EINVAL;
    if (key_len && p->opts.partitioner == EVB_PART_KEY_HASH)
        return (int)(XXH3_64bits(key, key_len) % n);
    /* Round robin without a division per event (a 32-bit divide is
     * dozens of cycles, a tenth of a publish). */
    uint32_t i = p->rr < n ? p->rr : p->rr % n;
    p->rr = i + 1 == n ? 0 : i + 1;
    return (int)i;
}

/* P used in a child forked after its open: refused, as its ring slots (an
 * exclusive producer's tail copy too), sequences and stable id state are
 * its parent's, which may go on publishing with them. Before any of them
 * is touched. */
static __attribute__((cold, noinline)) int forked_copy(const evb_producer *p)
{
    return evb_err_set(-EBUSY, "topic %s: this producer handle belongs to process %d, which "
                       "opened it; this process (%d) is a child forked since: open a "
                       "producer of its own", p->tm->name, p->opener, (int)getpid());
}

/* A commit, abort or retype with no claim open: -EINVAL, unless P is a
 * forked copy, whose claim the child's atfork handler took away (a claim
 * open at the fork is the parent's, see open_list). */
static __attribute__((cold, noinline)) int no_claim(const evb_producer *p)
{
    if (p && p->fork_gen != evb_proc_fork_gen())
        return forked_copy(p);
    return -EINVAL;
}

/* A partition's first claim takes a ring slot: liveness checks read /proc
 * (cancellation points) with the slot, or the exclusive word, ours and not
 * yet in the handle, which a reaper would not free from a live process. */
static __attribute__((cold, noinline)) int attach(evb_producer *p,
                                                  struct evb_ring_producer *rp, uint32_t part)
{
    EVB_NO_CANCEL;
    int rc = evb_ring_producer_attach(rp, &p->tm->rings[part], p->producer_id);
    if (!rc && (p->opts.flags & EVB_PRODUCER_EXCLUSIVE) &&
        (rc = evb_ring_producer_exclusive(rp)))
        evb_ring_producer_detach(rp);
    return rc;
}

static struct evb_ring_producer *ring_producer(evb_producer *p, uint32_t part, int *rc)
{
    struct evb_ring_producer *rp = &p->rp[part];
    *rc = 0;
    if (p->fork_gen != evb_proc_fork_gen()) {  /* the fork check: one compare a publish */
        *rc = forked_copy(p);
        return rp;
    }
    if (rp->slot)
        return rp;
    *rc = attach(p, rp, part);
    return rp;
}

/* The flush error -ESTALE: no flusher takes this ring any more, as the
 * data directory's log continues a ring made after it (flush_lock.c,
 * evb_flush_owner_check). */
static int rebuilt_under(const evb_producer *p, uint32_t part)
{
    return evb_err_set(-ESTALE, "topic %s partition %u: the bus was rebuilt under this "
                       "process (its bus directory was removed and the topic made again "
                       "from the data directory while this process ran): the log now "
                       "continues the new ring, so nothing this process publishes is "
                       "written any more (what was acknowledged before stays on disk); "
                       "close the bus and open it again", p->tm->name, part);
}

/* A durable ring's flusher error (sticky until a flusher takes the
 * partition over and succeeds), as the API's error with a message that
 * says the events so far are kept. Checked where a producer would wait,
 * never per event. */
static int flush_failed(const evb_producer *p, const struct evb_ring *r)
{
    /* E1 (bus/durable/durable.h): relaxed, after the caller's acquire load
     * of flush_bell; evb_flush_fail() stores it before its release bump of
     * that bell, so a failure stored before any bump we read is seen. */
    int e = evb_flush_error_load(r);
    if (e >= 0)
        return 0;
    if (e == -ESTALE)
        return rebuilt_under(p, r->partition);
    /* The flusher's own words (which file, why: flush.error) when it left
     * them, else the code's. */
    char pdir[PATH_MAX + 16], text[512];
    evb_part_dir(p->tm, r->partition, pdir, sizeof pdir);
    if (evb_flush_error_text(pdir, e, text, sizeof text) != 0)
        evb_flush_error_guess(pdir, e, text, sizeof text);
    return evb_err_set(e, "partition %u: the flusher cannot write (%s); the ring is full, "
                       "and what it holds is kept until the flush can go on",
                       r->partition, text);
}

/* Claim with back-pressure handling per block_ms: spin a little, then
 * yield, running the blocked producer's slow path between tries. */
static int claim_wait(evb_producer *p, struct evb_ring_producer *rp, uint32_t len,
                      uint32_t events, struct evb_ring_claim *c)
{
    /* Not a cancellation point (evbus.h): the slow path's looks at /proc
     * and its pads of others' holes run whole, and a claim it takes is in
     * the handle before a cancel can act. */
    EVB_NO_CANCEL;
    int rc = evb_ring_claim(rp, len, events, c);
    if (rc != -EAGAIN)
        return rc;
    /* Back-pressure, once per publish that met it (not per retry). */
    evb_ring_producer_count_wait(rp);
    if (p->opts.block_ms == 0) {
        /* Not waiting is no reason to wait for ever: a gating reader that
         * died (a crashed process's named consumer) is freed only by a
         * blocked producer's slow path, so run it (at most every
         * dead_ns/4) and try once more. */
        if ((rc = evb_ring_producer_unblock(rp)))
            return rc;
        return evb_ring_claim(rp, len, events, c);
    }
    uint64_t deadline = p->opts.block_ms > 0
                            ? evb_mono_ns() + (uint64_t)p->opts.block_ms * 1000000ull
                            : UINT64_MAX;
    struct evb_ring *r = rp->r;
    struct evb_spin spin;
    evb_spin_init(&spin, 0); /* EVB_SPIN_FREE turns, then yield or sleep */
    for (unsigned turns = 0;; turns++) {
        /* A durable ring waits for its flusher: sleep on flush_bell (read
         * before the retry, so a bump after it ends the sleep at once)
         * instead of yielding, which kept this CPU from the kernel worker
         * doing the write. At most 1 ms, so holes are still timed.
         * F2: acquire; pairs with the flusher's release bump
         * (evb_bell_ring), made after its F1 store of flushed. */
        uint32_t bell = r->durable ? atomic_load_explicit(&r->hdr->flush_bell,
                                                          memory_order_acquire) : 0;
        if (evb_spin_once(&spin)) {
            /* paused */
        } else if (r->durable) {
            /* Damage found while blocked (shm/pad.c) ends the wait. */
            if ((rc = evb_ring_producer_unblock(rp)))
                return rc;
            rc = evb_ring_claim(rp, len, events, c);
            if (rc != -EAGAIN)
                return rc;
            /* Only the flusher gates a durable ring: one that failed (a
             * full disk, an I/O error) frees no room until it is retried,
             * so waiting out block_ms would only hide why. */
            if ((rc = flush_failed(p, r)))
                return rc;
            evb_bell_sleep(&r->hdr->flush_bell, bell, 1000 * 1000);
        } else {
            sched_yield();
        }
        if ((rc = evb_ring_producer_unblock(rp)))
            return rc;
        rc = evb_ring_claim(rp, len, events, c);
        if (rc != -EAGAIN)
            return rc;
        if ((turns & 15) == 0 && evb_mono_ns() >= deadline)
            return evb_ring_full_detail(rp, p->opts.block_ms);
    }
}

static int check_size(const evb_producer *p, uint32_t key_len, uint32_t value_len)
{
    if (key_len > EVB_MAX_KEY_BYTES)
        return evb_err_set(-EMSGSIZE, "a key of %u bytes: keys are at most %u bytes", key_len,
                           EVB_MAX_KEY_BYTES);
    if ((uint64_t)key_len + value_len > p->tm->cfg.max_event_bytes)
        return -EMSGSIZE;
    return 0;
}

/*
 * A value of up to 64 bytes copied inline, as two overlapping moves of the
 * largest power of two that fits, instead of a call into libc, whose size
 * dispatch is most of a small copy: a 64-byte publish is 3-4 % faster
 * (perf/RESULTS.md, fifth session). The ring and the caller's buffer never
 * overlap.
 */
static inline void copy_value(uint8_t *d, const void *src, uint32_t n)
{
    const uint8_t *s = src;
    if (n > 64) {
        memcpy(d, s, n);
    } else if (n >= 32) {
        memcpy(d, s, 32);
        memcpy(d + n - 32, s + n - 32, 32);
    } else if (n >= 16) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/* The value of N bytes from SRC into the frame F at VALUE. A durable
 * frame gets its checksum (what recovery checks it with, ring_format.h)
 * in the same pass: evb_frame_copy_crc sums each word as it stores it,
 * rather than loading the ring bytes back after a memcpy (perf/RESULTS.md,
 * sixth session). */
static inline void fill_value(const evb_producer *p, struct evb_frame *f, uint8_t *value,
                              const void *src, uint32_t n)
{
    if (p->durable)
        f->crc32c = evb_frame_copy_crc(f, value, src, n);
    else
        copy_value(value, src, n);
}

/* Header and key of one frame (frame.h); returns where the value goes,
 * 8-aligned, for the caller to fill. The key's padding and the frame's
 * padding to its line are zeroed, so no byte of an older lap stays
 * between key and value (and the checksum of equal events is equal) or
 * after the value (where the flusher would copy it to disk, to outlive
 * the older event's own segment). */
static inline uint8_t *write_frame(struct evb_frame *f, uint64_t offset, uint64_t ts, uint64_t seq,
                            uint32_t producer_id, const void *key, uint32_t key_len,
                            uint32_t value_len, uint16_t type, uint32_t claim_len,
                            uint16_t claim_events)
{
    evb_frame_init(f, &(struct evb_frame_fields){
                          .offset = offset, .timestamp_ns = ts, .producer_seq = seq,
                          .producer_id = producer_id, .key_len = key_len,
                          .value_len = value_len, .type = type, .claim_len = claim_len,
                          .claim_events = claim_events});
    uint8_t *k = (uint8_t *)f + EVB_FRAME_HDR;
    uint8_t *value = (uint8_t *)f + evb_frame_value_at(key_len, EVB_FRAME_F_VALUE_ALIGNED);
    /* From the value's last word to the line's end; the value (written
     * after this) takes its part of that word back. One to seven words. */
    uint64_t len = evb_frame_len(key_len, value_len);
    for (uint64_t q = len & ~(uint64_t)(EVB_FRAME_ALIGN - 1); q < evb_align_line(len);
         q += EVB_FRAME_ALIGN)
        memset((uint8_t *)f + q, 0, EVB_FRAME_ALIGN);
    if (key_len) {
        /* The last aligned word of the key first, then the key over it. */
        memset(value - EVB_FRAME_ALIGN, 0, EVB_FRAME_ALIGN);
        memcpy(k, key, key_len);
    }
    return value;
}

/* Where one published event went: R gets its partition, offset, position
 * and the end of its frame (what the durable position must reach). */
static inline void receipt_fill(evb_receipt *r, const struct evb_ring *ring, uint32_t part,
                                uint64_t offset, uint64_t pos, uint64_t end)
{
    *r = (evb_receipt){.partition = part, .incarnation = ring->incarnation, .offset = offset,
                       .position = pos, .end_position = end};
}

/* The claim of PART is open: its frame's value at VALUE, C told where. */
static inline void claim_opened(evb_producer *p, uint32_t part, uint8_t kind, uint8_t *value,
                                uint32_t value_len, struct evb_claim *c)
{
    p->open = OPEN(kind, part);
    /* C's 32 bytes in two 16-byte stores rather than five (stores: see
     * EVB_CLAIM_PLAIN); value_len and partition are one little-endian word
     * (shm/arch.h refuses big-endian builds). */
    typedef uint64_t v2u64 __attribute__((vector_size(16), aligned(8)));
    static_assert(offsetof(struct evb_claim, value_len) == 8 &&
                  offsetof(struct evb_claim, partition) == 12 &&
                  offsetof(struct evb_claim, offset) == 16 &&
                  offsetof(struct evb_claim, position) == 24, "evb_claim's head as stored");
    v2u64 head = {(uint64_t)(uintptr_t)value, (uint64_t)part << 32 | value_len};
    v2u64 where = {p->claim.offset, p->claim.data_pos};
    memcpy(c, &head, sizeof head);
    memcpy(&c->offset, &where, sizeof where);
}

/* evb_claim in PART (picked) for what claim_one does not take: a key, a
 * stable id's state, a partition not attached yet, a full ring. */
static __attribute__((noinline)) int claim_part(evb_producer *p, uint32_t part,
                                                const void *key, uint32_t key_len,
                                                uint32_t value_len, struct evb_claim *c)
{
    int rc;
    struct evb_ring_producer *rp = ring_producer(p, part, &rc);
    if (rc)
        return rc;
    uint32_t len = (uint32_t)evb_frame_bytes(key_len, value_len);
    struct evb_ring_claim *rc_ = &p->claim;
    if (p->ps.map && p->seq[part] >= EVB_SEQ_LIMIT)
        return seq_overflow(p, part);
    if (p->ps.map)
        state_claiming(p, part, p->seq[part], p->seq[part] + 1);
    if (!evb_ring_claim_fast(rp, len, 1, rc_) && (rc = claim_wait(p, rp, len, 1, rc_))) {
        if (p->ps.map)
            state_done(p, part, false);
        return rc;
    }
    if (p->ps.map)
        state_claimed(p, part, rc_->data_pos);
    struct evb_frame *f = evb_ring_frame(rp->r, rc_->data_pos);
    uint8_t *value = write_frame(f, rc_->offset, evb_event_ns(), p->seq[part]++,
                                 p->producer_id, key, key_len, value_len, 0, len, 1);
    claim_opened(p, part, EVB_CLAIM_FULL, value, value_len, c);
    return 0;
}

/*
 * The common claim, as publish_one is the common publish: no key, no
 * stable id, an attached partition of this process and room under the
 * cached limit. Anything else goes on in claim_part, with the partition
 * already picked (a round robin step is taken once).
 */
static inline int claim_one(evb_producer *p, uint32_t part, uint32_t value_len,
                            struct evb_claim *c)
{
    struct evb_ring_producer *rp = &p->rp[part];
    uint32_t len = (uint32_t)evb_frame_bytes(0, value_len);
    struct evb_ring_claim rc_;
    /* The stamp first: across the claim one value is live rather than the
     * clock's six in the middle of the header's, which spilled to the
     * stack (stores, see EVB_CLAIM_PLAIN). The event's time is still its
     * claim's, to a few ns; a claim that falls through reads it again. */
    uint64_t ts = evb_event_ns();
    if (!rp->slot || p->fork_gen != evb_proc_fork_gen() ||
        !evb_ring_claim_fast(rp, len, 1, &rc_))
        return claim_part(p, part, NULL, 0, value_len, c);
    /* EVB_CLAIM_PLAIN: the rest is known (claim_whole). */
    p->claim.data_pos = rc_.data_pos;
    p->claim.offset = rc_.offset;
    p->claim.len = len;
    struct evb_frame *f = evb_ring_frame(rp->r, rc_.data_pos);
    uint8_t *value = write_frame(f, rc_.offset, ts, p->seq[part]++, p->producer_id, NULL, 0,
                                 value_len, 0, len, 1);
    claim_opened(p, part, EVB_CLAIM_PLAIN, value, value_len, c);
    return 0;
}

EVB_EXPORT int evb_claim(evb_producer *p, int32_t partition, const void *key,
                         uint32_t key_len, uint32_t value_len, struct evb_claim *c)
{
    if (!p || !c || (key_len && !key) || p->open)
        return -EINVAL;
    int rc = check_size(p, key_len, value_len);
    if (rc)
        return rc;
    int part = pick_partition(p, partition, key, key_len);
    if (part < 0)
        return part;
    if (!key_len && !p->ps.map)
        return claim_one(p, (uint32_t)part, value_len, c);
    return claim_part(p, (uint32_t)part, key, key_len, value_len, c);
}

void evb_producer_set_block_ms(evb_producer *p, int32_t block_ms)
{
    p->opts.block_ms = block_ms;
}

int evb_claim_set_type(evb_producer *p, uint16_t type)
{
    if (!p || !p->open)
        return no_claim(p);
    /* Ours until the commit, which computes a durable frame's checksum
     * after this. */
    evb_ring_frame(p->rp[open_part(p)].r, p->claim.data_pos)->type = type;
    return 0;
}

/* Durable topics: what recovery checks a frame with (ring_format.h). */
static void seal(const evb_producer *p, struct evb_frame *f)
{
    if (p->durable)
        f->crc32c = evb_frame_crc(f, f->len);
}

/* The fields of an EVB_CLAIM_PLAIN claim it did not store. */
static void claim_whole(evb_producer *p)
{
    if (open_kind(p) != EVB_CLAIM_PLAIN)
        return;
    p->claim.pos = p->claim.data_pos;
    p->claim.pad = 0;
    p->claim.events = 1;
    p->claim.stale_pad = 0;
    p->open = OPEN(EVB_CLAIM_FULL, open_part(p));
}

/* evb_commit_receipt, and evb_commit off its common case: R NULL for the
 * second; DECIDED when its plain commit found a padder at the claim (X1):
 * evb_ring_commit then (which looks once more, then lets the stamp CAS
 * decide), not evb_ring_commit_fast's plain try again. */
static __attribute__((noinline)) int commit(evb_producer *p, evb_receipt *r, bool decided)
{
    if (!p || !p->open)
        return no_claim(p);
    claim_whole(p);
    uint32_t part = open_part(p);
    p->open = 0;
    struct evb_ring_claim *rc_ = &p->claim;
    struct evb_ring_producer *rp = &p->rp[part];
    seal(p, evb_ring_frame(rp->r, rc_->data_pos));
    int rc = decided ? evb_ring_commit(rp, rc_) : evb_ring_commit_fast(rp, rc_);
    if (!rc) {
        p->end[part] = rc_->data_pos + rc_->len;
        if (r)
            receipt_fill(r, rp->r, part, rc_->offset, rc_->data_pos, rc_->data_pos + rc_->len);
    }
    if (p->ps.map)
        state_done(p, part, true); /* on -ECANCELED its sequence stays used */
    return rc;
}

/*
 * The common claim's commit (claim_one's, on a ring-only topic, by a
 * fenceless producer without a stable id), as publish_one commits: a leaf
 * that stores only what the commit must, so that no register is saved on
 * the way (stores, see EVB_CLAIM_PLAIN). Anything else, or a padder at the
 * claim, goes to commit().
 */
EVB_EXPORT int evb_commit(evb_producer *p, struct evb_claim *c)
{
    (void)c;
    if (__builtin_expect(!p || open_kind(p) != EVB_CLAIM_PLAIN || p->durable, 0))
        return commit(p, NULL, false);
    struct evb_ring_claim *rc_ = &p->claim;
    uint32_t part = open_part(p);
    struct evb_ring_producer *rp = &p->rp[part];
    if (!rp->fenceless)
        return commit(p, NULL, false);
    if (!evb_ring_commit_one(rp, rc_))
        return commit(p, NULL, true);
    p->open = 0;
    p->end[part] = rc_->data_pos + rc_->len;
    evb_commit_resolved(rp, true);
    return 0;
}

EVB_EXPORT int evb_commit_receipt(evb_producer *p, struct evb_claim *c, evb_receipt *r)
{
    (void)c;
    if (!r)
        return -EINVAL;
    return commit(p, r, false);
}

EVB_EXPORT int evb_abort(evb_producer *p, struct evb_claim *c)
{
    (void)c;
    if (!p || !p->open)
        return no_claim(p);
    claim_whole(p);
    uint32_t part = open_part(p);
    p->open = 0;
    /* The sequence number was not used by a published event: give it back
     * so per-producer sequences stay gap-free for consumers. */
    p->seq[part]--;
    int rc = evb_ring_abort(&p->rp[part], &p->claim);
    if (p->ps.map)
        state_done(p, part, false);
    return rc;
}

/* Publish msgs[0..n) into one partition as a single claim; R (NULL or n
 * entries) gets each event's receipt, meaningful once this returns 0. */
static int publish_run(evb_producer *p, uint32_t part, const evb_msg *m, size_t n,
                       evb_receipt *r)
{
    int rc;
    struct evb_ring_producer *rp = ring_producer(p, part, &rc);
    if (rc)
        return rc;
    uint64_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += evb_frame_bytes(m[i].key_len, m[i].value_len);
    /* The sequences the run will take: each message's own with
     * EVB_MSG_SEQ (checked by the caller), else the next one. */
    uint64_t first = p->seq[part], next = first;
    if (p->ps.map) {
        bool seq0 = m[0].flags & EVB_MSG_SEQ;
        for (size_t i = 0; i < n; i++) {
            uint64_t s = m[i].flags & EVB_MSG_SEQ ? m[i].seq : next;
            if (s >= next)
                next = s + 1;
        }
        if (next > EVB_SEQ_LIMIT)
            return seq_overflow(p, part);
        state_claiming(p, part, seq0 ? m[0].seq : first, next);
    }
    struct evb_ring_claim c;
    if (!evb_ring_claim_fast(rp, (uint32_t)len, (uint32_t)n, &c) &&
        (rc = claim_wait(p, rp, (uint32_t)len, (uint32_t)n, &c))) {
        if (p->ps.map)
            state_done(p, part, false);
        return rc;
    }
    if (p->ps.map)
        state_claimed(p, part, c.data_pos);
    uint64_t ts = evb_event_ns();
    uint64_t pos = c.data_pos;
    next = first;
    for (size_t i = 0; i < n; i++) {
        struct evb_frame *f = evb_ring_frame(rp->r, pos);
        uint64_t s = m[i].flags & EVB_MSG_SEQ ? m[i].seq : next;
        if (s >= next)
            next = s + 1;
        uint8_t *value = write_frame(f, c.offset + i, ts, s, p->producer_id,
                                     m[i].key, m[i].key_len, m[i].value_len, m[i].type,
                                     i ? 0 : (uint32_t)len, i ? 0 : (uint16_t)n);
        fill_value(p, f, value, m[i].value, m[i].value_len);
        pos += evb_frame_bytes(m[i].key_len, m[i].value_len);
    }
    rc = evb_ring_commit_fast(rp, &c);
    if (!rc) {
        p->seq[part] = next;
        p->end[part] = c.data_pos + c.len;
        /* From the lengths asked for, not the frames read back. */
        uint64_t at = c.data_pos;
        for (size_t i = 0; r && i < n; i++) {
            uint64_t bytes = evb_frame_bytes(m[i].key_len, m[i].value_len);
            receipt_fill(&r[i], rp->r, part, c.offset + i, at, at + bytes);
            at += bytes;
        }
    }
    if (p->ps.map)
        state_done(p, part, !rc);
    return rc;
}

/*
 * One event without key, flags or a stable id, when the claim fits under
 * the cached limit: the path most publishes take, without publish_run's
 * loops over a run and its state records. Anything else, or a claim that
 * does not fit, goes to publish_run, which starts over.
 */
static inline int publish_one(evb_producer *p, uint32_t part, const evb_msg *m)
{
    struct evb_ring_producer *rp = &p->rp[part];
    uint32_t len = (uint32_t)evb_frame_bytes(0, m->value_len);
    struct evb_ring_claim c;
    uint64_t ts = evb_event_ns(); /* first, as in claim_one */
    /* A forked copy (ring_producer's check), a partition not attached
     * yet, or a claim that does not fit: the full path. */
    if (!rp->slot || p->fork_gen != evb_proc_fork_gen() ||
        !evb_ring_claim_fast(rp, len, 1, &c))
        return publish_run(p, part, m, 1, NULL);
    struct evb_frame *f = evb_ring_frame(rp->r, c.data_pos);
    uint8_t *value = write_frame(f, c.offset, ts, p->seq[part], p->producer_id, NULL, 0,
                                 m->value_len, m->type, len, 1);
    fill_value(p, f, value, m->value, m->value_len);
    int rc = evb_ring_commit_fast(rp, &c);
    if (!rc) {
        p->seq[part]++;
        p->end[part] = c.data_pos + c.len;
    }
    return rc;
}

/* A process that holds up PART's durable position while stopped (SIGSTOP,
 * Ctrl-Z, a debugger, a frozen cgroup): the flusher, whose flock nobody
 * may take from it (it could resume and write), or a sync leader in its
 * fdatasync (the flusher syncs after EVB_LEAD_HOLD_NS without it). 0 when
 * none is seen stopped; *WHO says which. Reads /proc: only once a wait
 * ran out. */
static uint64_t stopped_holder(const evb_producer *p, uint32_t part, const char **who)
{
    const struct evb_ring_hdr *h = p->tm->rings[part].hdr;
    /* W1: relaxed; the owner word is a hint (the flock decides), good
     * enough to name the process in a message. */
    uint64_t fo = atomic_load_explicit(&h->flusher, memory_order_relaxed);
    if (fo && evb_proc_stopped(fo) == 1) {
        *who = "the flusher";
        return fo;
    }
    /* S3: relaxed, a hint as above. */
    uint64_t lo = atomic_load_explicit(&h->sync_lead[0], memory_order_relaxed);
    if (lo && evb_proc_stopped(lo) == 1) {
        *who = "a sync leader";
        return lo;
    }
    return 0;
}

/* The detail of a durable wait on PART that ran out: the event is
 * published (it has its offset) but not known durable, and why, when a
 * stopped process can be named. */
static int sync_timed_out(const evb_producer *p, uint32_t part)
{
    const char *who = NULL;
    uint64_t o = stopped_holder(p, part, &who);
    if (o)
        return evb_err_set(-ETIMEDOUT, "partition %u: published, not yet durable: %s (pid %d) "
                           "is stopped (SIGSTOP, a debugger or a frozen cgroup) and nobody may "
                           "sync for it until it runs again or dies", part, who,
                           (int)(o >> 32));
    return evb_err_set(-ETIMEDOUT, "partition %u: published, not yet durable: the flusher has "
                       "not written and synced it within the time given", part);
}

/* A sync wait on PART that failed: a flusher's error gets the text that
 * flusher kept beside the code (bus/durable/flush_error.c), wherever it
 * ran, as this call's detail. */
static int sync_failed(const evb_producer *p, uint32_t part, int rc)
{
    EVB_NO_CANCEL;
    char pdir[PATH_MAX + 16], text[512], own[512];
    if (rc == -ETIMEDOUT)
        return sync_timed_out(p, part);
    if (rc == -ESTALE)
        return rebuilt_under(p, part);
    /* What this call itself found (a leader's fdatasync, a durable word
     * that does not fit): the callers cleared the detail before it. */
    snprintf(own, sizeof own, "%s", evb_last_error());
    evb_part_dir(p->tm, part, pdir, sizeof pdir);
    if (evb_flush_error_text(pdir, rc, text, sizeof text) == 0)
        return evb_err_set(rc, "partition %u: not durable, the flusher failed: %s", part, text);
    if (*own)
        return evb_err_set(rc, "%s", own);
    /* No text kept: a full or read-only disk, say, takes the flusher's
     * report too. Then the code is all there is: its words, and where. */
    evb_flush_error_guess(pdir, rc, text, sizeof text);
    return evb_err_set(rc, "partition %u: not durable: %s", part, text);
}

/* A timeout in ms (<0: none) as a deadline on evb_mono_ns()'s clock. */
static uint64_t deadline_of(int32_t timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : evb_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/* Where a publish with EVB_MSG_SYNC stops waiting for disk: block_ms, as
 * for a full ring; with block_ms 0, no deadline of its own (a sync
 * publish is a wait for an fdatasync by definition), see durable_wait. */
#define SYNC_WHILE_RUNNING 0u
/* How often such a wait looks whether the flusher is stopped. */
#define SYNC_LOOK_NS (100ull * 1000 * 1000)

static uint64_t sync_deadline(const evb_producer *p)
{
    if (p->opts.block_ms < 0)
        return UINT64_MAX;
    if (p->opts.block_ms == 0)
        return SYNC_WHILE_RUNNING;
    return evb_mono_ns() + (uint64_t)p->opts.block_ms * 1000000ull;
}

/*
 * The one place a producer waits for disk: until PART's durable position
 * reaches TARGET (a frame end this handle committed) or DEADLINE passes;
 * for our newest event there the waiter leads the fdatasync itself once
 * the flusher wrote TARGET (S3); for an older one it follows (below). EVB_MSG_SYNC, evb_producer_sync() and evb_producer_wait_durable()
 * all come here, so how a producer gets to disk changes in this body
 * alone. DEADLINE SYNC_WHILE_RUNNING (a sync publish with block_ms 0):
 * as long as the flusher works, but not for one that is stopped: every
 * SYNC_LOOK_NS without TARGET durable it looks (/proc) whether the
 * flusher or a leader is stopped, and ends with -ETIMEDOUT if so. 0,
 * -ETIMEDOUT, or the flusher's (or our fdatasync's) error with its text
 * (sync_failed). The event is published either way.
 */
static int durable_wait(evb_producer *p, uint32_t part, uint64_t target, uint64_t deadline)
{
    /* A wait by design, and still no cancellation point (evbus.h): a cancel
     * acts once the caller has its answer, never inside a round it leads. */
    EVB_NO_CANCEL;
    /* One byte, so that a failure's detail is this wait's (sync_failed). */
    evb_err_clear();
    bool while_running = deadline == SYNC_WHILE_RUNNING;
    /* Lead (S3: run the round or the fdatasync ourselves) only for our
     * newest event here. A producer waiting for an older one has events
     * in flight behind it (pipelined acknowledgements): the flusher's
     * rounds carry them back to back, and leaders woken one after the
     * other would take the fdatasync from it (the flusher leaves it to
     * counted leaders) and its partition (inline rounds keep the thread
     * out), each hand-off a wake-up late: at 250 k pipelined acks/s the
     * p99 was twice that of following (perf/RESULTS.md, issue 13). A
     * follower leads all the same after EVB_FOLLOW_NS (durable_wait.c). */
    bool lead = target >= p->end[part];
    const char *who;
    for (;;) {
        int rc = evb_wait_durable(&p->tm->rings[part], &p->sync[part], target,
                                  while_running ? evb_mono_ns() + SYNC_LOOK_NS : deadline,
                                  p->poke, lead);
        if (rc == -ETIMEDOUT && while_running && !stopped_holder(p, part, &who))
            continue;
        return rc ? sync_failed(p, part, rc) : 0;
    }
}

/* Every partition P published to, durable by DEADLINE (durable_wait's). */
static int sync_all(evb_producer *p, uint64_t deadline)
{
    EVB_NO_CANCEL;
    for (uint32_t i = 0; i < p->tm->nparts; i++) {
        if (!p->end[i])
            continue;
        int rc = durable_wait(p, i, p->end[i], deadline);
        if (rc)
            return rc;
    }
    return 0;
}

EVB_EXPORT int evb_producer_sync(evb_producer *p, int32_t timeout_ms)
{
    if (!p)
        return -EINVAL;
    /* A forked copy would count itself in the parent's rings' waiters
     * and could lead their fdatasync, for events it did not publish. */
    if (p->fork_gen != evb_proc_fork_gen())
        return forked_copy(p);
    if (!p->durable)
        return 0;
    return sync_all(p, deadline_of(timeout_ms)); /* never SYNC_WHILE_RUNNING */
}

static int no_partition(const evb_producer *p, uint32_t part)
{
    return evb_err_set(-EINVAL, "topic %s has %u partitions, no partition %u", p->tm->name,
                       p->tm->nparts, part);
}

/* A target this handle may wait for: a frame end (8-aligned, past 0) no
 * further than what it has committed to PART, which is never past the
 * tail; anything else could only be reached by events it did not publish
 * (0 is what a failed publish leaves in its receipt, evbus.h). */
static int target_bad(const evb_producer *p, uint32_t part, uint64_t target)
{
    if (part >= p->tm->nparts)
        return no_partition(p, part);
    if (!target)
        return evb_err_set(-EINVAL, "partition %u: the receipt's end position is 0: no "
                           "publish filled it", part);
    if (target % EVB_FRAME_ALIGN == 0 && target <= p->end[part])
        return 0;
    return evb_err_set(-EINVAL, "partition %u: %llu is not the end of an event this "
                       "producer published there (it has published up to %llu)", part,
                       (unsigned long long)target, (unsigned long long)p->end[part]);
}

/*
 * R must be of the ring P has mapped for its partition: a ring rebuilt
 * from disk since R was filled starts again at the old log's synced end,
 * so R's positions may now hold other events, and the durable position of
 * this ring says nothing about R's event (-ESTALE). Incarnation 0 was
 * never filled by a publish.
 */
static int receipt_bad(const evb_producer *p, const evb_receipt *r)
{
    if (r->partition >= p->tm->nparts)
        return no_partition(p, r->partition);
    uint32_t now = p->tm->rings[r->partition].incarnation;
    if (!r->incarnation)
        return evb_err_set(-EINVAL, "partition %u: the receipt has no ring incarnation (0): "
                           "it was not filled by a publish", r->partition);
    if (r->incarnation != now)
        return evb_err_set(-ESTALE, "topic %s partition %u: the receipt is of ring "
                           "incarnation %#x, not of this ring (%#x): of another topic or "
                           "partition, or of this one before it was rebuilt (a reboot, a "
                           "removed bus directory), when its event at offset %llu may have "
                           "been lost or replaced: read the topic to know", p->tm->name,
                           r->partition, r->incarnation, now, (unsigned long long)r->offset);
    return 0;
}

EVB_EXPORT int evb_producer_wait_durable(evb_producer *p, const evb_receipt *r,
                                         int32_t timeout_ms)
{
    if (!p || !r)
        return -EINVAL;
    if (p->fork_gen != evb_proc_fork_gen())
        return forked_copy(p); /* as in evb_producer_sync() */
    int rc = receipt_bad(p, r);
    if (!rc)
        rc = target_bad(p, r->partition, r->end_position);
    if (rc || !p->durable)
        return rc;
    return durable_wait(p, r->partition, r->end_position, deadline_of(timeout_ms));
}

EVB_EXPORT int evb_producer_durable_position(evb_producer *p, const evb_receipt *r,
                                             uint64_t *pos)
{
    if (!p || !r || !pos)
        return -EINVAL;
    int rc = receipt_bad(p, r);
    if (rc)
        return rc;
    uint32_t partition = r->partition;
    /* Nothing to wait for: what it published counts as durable at once. */
    if (!p->durable) {
        *pos = p->end[partition];
        return 0;
    }
    int err;
    rc = evb_durable_poll(&p->tm->rings[partition], pos, &err);
    if (rc)
        return rc;
    /* What was synced stays synced, so the answer never goes back, even
     * if the word does: the flusher and leaders only ever raise it
     * (evb_durable_publish_max), but it is shared memory, and a process
     * that writes it lower must not make a poller think less is on disk
     * than it was told. */
    if (*pos < p->durable_seen[partition])
        *pos = p->durable_seen[partition];
    p->durable_seen[partition] = *pos;
    /* A stopped flusher moves the position no further: say so, with its
     * text, so a poller does not wait for what will not come. What is
     * below *POS stays durable. */
    if (err >= 0)
        return 0;
    evb_err_clear();
    return sync_failed(p, partition, err);
}

/* Flags this version does not know are refused (a mistyped EVB_MSG_SYNC
 * would otherwise publish without the wait for disk its caller meant);
 * EVB_MSG_SEQ is a stable producer's, below EVB_SEQ_LIMIT. */
#define MSG_FLAGS_KNOWN (EVB_MSG_SYNC | EVB_MSG_SEQ)

static bool flags_bad(const evb_producer *p, const evb_msg *m)
{
    /* No flag or SYNC alone, the common case: one test (a batch pays it
     * per message). */
    if (!(m->flags & ~EVB_MSG_SYNC))
        return false;
    return (m->flags & ~MSG_FLAGS_KNOWN) || !p->ps.map || m->seq >= EVB_SEQ_LIMIT;
}

/* -EINVAL for a message flags_bad() or a missing key or value refuses,
 * saying which when it is the flags. */
static int msg_refused(const evb_msg *m)
{
    if (m->flags & ~MSG_FLAGS_KNOWN)
        return evb_err_set(-EINVAL, "message flags 0x%x: only EVB_MSG_SYNC and EVB_MSG_SEQ "
                           "are known", (unsigned)m->flags);
    return -EINVAL;
}

/* An EVB_MSG_SYNC publish of M in PART: as a whole, not a cancellation
 * point (evbus.h): its waiter count, our lead of a flush round or the
 * round itself are never left half done by a cancel. */
static int publish_sync(evb_producer *p, uint32_t part, const evb_msg *m, evb_receipt *r)
{
    EVB_NO_CANCEL;
    /* A sync publish counts itself a waiter before its commit, so the
     * flusher that sees the commit leaves the fdatasync to it (S3). */
    evb_sync_enter(&p->tm->rings[part], &p->sync[part], true);
    int rc = publish_run(p, part, m, 1, r);
    if (!rc)
        rc = durable_wait(p, part, p->end[part], sync_deadline(p));
    evb_sync_leave(&p->tm->rings[part], &p->sync[part]);
    return rc;
}

/*
 * Any event through publish_run, R (may be NULL) getting its receipt:
 * evb_publish's path for what publish_one does not take, and every
 * evb_publish_receipt. Kept out of line so that evb_publish stays the
 * one place publish_one is inlined into (a second copy cost it its
 * inlined frame and commit helpers: 35 instructions an event).
 */
static __attribute__((noinline)) int publish_full(evb_producer *p, const evb_msg *m,
                                                  evb_receipt *r)
{
    if (!p || !m)
        return -EINVAL;
    if ((m->key_len && !m->key) || (m->value_len && !m->value) || flags_bad(p, m))
        return msg_refused(m);
    int rc = check_size(p, m->key_len, m->value_len);
    if (rc)
        return rc;
    int part = pick_partition(p, m->partition, m->key, m->key_len);
    if (part < 0)
        return part;
    if ((m->flags & EVB_MSG_SYNC) && p->durable)
        return publish_sync(p, (uint32_t)part, m, r);
    return publish_run(p, (uint32_t)part, m, 1, r);
}

EVB_EXPORT int evb_publish(evb_producer *p, const evb_msg *m)
{
    if (p && m && !m->key_len && !m->flags && (m->value || !m->value_len) && !p->ps.map &&
        m->value_len <= p->tm->cfg.max_event_bytes) {
        int part = pick_partition(p, m->partition, NULL, 0);
        return part < 0 ? part : publish_one(p, (uint32_t)part, m);
    }
    return publish_full(p, m, NULL);
}

EVB_EXPORT int evb_publish_receipt(evb_producer *p, const evb_msg *m, evb_receipt *r)
{
    if (!r)
        return -EINVAL;
    return publish_full(p, m, r);
}

/* evb_publish_batch and evb_publish_batch_receipts: R NULL or n entries. */
static int publish_batch(evb_producer *p, const evb_msg *msgs, size_t n, evb_receipt *r)
{
    if (!p || (!msgs && n))
        return -EINVAL;
    size_t done = 0;
    while (done < n) {
        const evb_msg *m = &msgs[done];
        if ((m->key_len && !m->key) || (m->value_len && !m->value) || flags_bad(p, m))
            return done ? (int)done : msg_refused(m);
        int rc = check_size(p, m->key_len, m->value_len);
        if (rc)
            return done ? (int)done : rc;
        int part = pick_partition(p, m->partition, m->key, m->key_len);
        if (part < 0)
            return done ? (int)done : part;
        /* Extend the run while messages go to the same partition and the
         * claim stays within a quarter ring, and within a claim's 32-bit
         * length (a 16 GiB ring's quarter is 4 GiB: one line less). */
        size_t k = 1;
        uint64_t bytes = evb_frame_bytes(m->key_len, m->value_len);
        uint64_t max = evb_topic_max_run(p->tm->cfg.ring_bytes);
        while (done + k < n && k < UINT16_MAX) {
            const evb_msg *x = &msgs[done + k];
            uint64_t b = evb_frame_bytes(x->key_len, x->value_len);
            if (bytes + b > max || check_size(p, x->key_len, x->value_len) ||
                (x->key_len && !x->key) || (x->value_len && !x->value) || flags_bad(p, x))
                break;
            int xp = x->partition;
            if (xp == EVB_PARTITION_ANY) {
                /* Key-hashed messages stay with their key's partition;
                 * keyless ones join the current run. */
                if (x->key_len && p->opts.partitioner == EVB_PART_KEY_HASH)
                    xp = (int)(XXH3_64bits(x->key, x->key_len) % p->tm->nparts);
                else
                    xp = part;
            }
            if (xp != part)
                break;
            bytes += b;
            k++;
        }
        rc = publish_run(p, (uint32_t)part, m, k, r ? r + done : NULL);
        if (rc)
            return done ? (int)done : rc;
        done += k;
    }
    for (size_t i = 0; p->durable && i < n; i++) {
        if (msgs[i].flags & EVB_MSG_SYNC) {
            int rc = sync_all(p, sync_deadline(p));
            if (rc)
                return rc;
            break;
        }
    }
    return (int)done;
}

EVB_EXPORT int evb_publish_batch(evb_producer *p, const evb_msg *msgs, size_t n)
{
    return publish_batch(p, msgs, n, NULL);
}

EVB_EXPORT int evb_publish_batch_receipts(evb_producer *p, const evb_msg *msgs, size_t n,
                                          evb_receipt *receipts)
{
    if (!receipts && n)
        return -EINVAL;
    return publish_batch(p, msgs, n, receipts);
}
