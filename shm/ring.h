/*
 * ring.h - the partition ring protocol, private to the library.
 *
 * shm/ knows rings, frames, slots and processes; nothing of topics or disks.
 * The format is in ring_format.h; the ordering edges are listed in claim.c.
 */
#ifndef EVB_RING_H
#define EVB_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "ring_format.h"

/* A mapped ring. Values copied out of the header at open were checked once
 * there; the hot path uses these locals, never the mapping's copies. */
struct evb_ring {
    int fd;
    uint8_t *base;
    size_t map_bytes;
    struct evb_ring_hdr *hdr;
    struct evb_producer_slot *pslots;
    struct evb_reader_slot *rslots;
    uint8_t *data;
    uint64_t capacity;
    uint64_t mask;
    uint32_t max_frame;
    uint32_t max_event; /* largest key + value a reader hands out: what
                           max_frame holds, until the topic narrows it to
                           its max_event_bytes (bus/topic_map.c); never
                           above max_frame - EVB_FRAME_HDR */
    uint32_t partition;
    bool durable;      /* EVB_RING_F_DURABLE: producers gate on flushed */
    bool readonly;     /* mapped PROT_READ (evb_ring_open_ro): never written;
                          rslots must then point at private memory */
    uint8_t *view;     /* a second, PROT_READ mapping of the whole file for
                          handing events out (evb_ring_map_view), or NULL */
    const uint8_t *rdata; /* where readers load frames (evb_ring_rframe):
                             the view's data area once mapped, else data */
    uint64_t base_pos; /* no frame below this position in this ring */
    uint32_t incarnation; /* evb_ring_incarnation() of the header at open:
                             receipts carry it (bus/producer.c) */
    uint64_t dead_ns;  /* pad holes of dead producers within this */
    uint64_t stall_ns; /* pad claims of live producers stalled this long */
};

/*
 * Which creation of a partition's ring this is: a ring rebuilt from disk
 * (a reboot, the bus directory removed) reuses the positions of the old
 * one's unsynced tail for other events, so a position alone does not say
 * which event it meant. The header's creation time (ring_format.h) and
 * base position, mixed (splitmix64's finaliser) and folded to 32 bits,
 * never 0: 0 is "no incarnation" in a receipt. Two creations share a value
 * only by a 2^-32 chance, or with the clock set back to the nanosecond.
 */
static inline uint32_t evb_ring_incarnation(uint64_t created_ns, uint64_t base_pos)
{
    uint64_t x = created_ns ^ (base_pos * 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    uint32_t v = (uint32_t)(x ^ (x >> 32));
    return v ? v : 1;
}

/* ---- map.c ---- */
/* A new ring whose first position is BASE_POS (8-aligned) with offset
 * BASE_OFFSET: 0, 0 for a new topic; where the disk log ends for a ring
 * rebuilt from segments (flushed and durable start there too). */
struct evb_ring_init {
    uint64_t capacity;
    uint32_t max_frame;
    uint32_t partition;
    uint32_t mode;
    uint32_t flags;      /* EVB_RING_F_* */
    uint64_t base_pos;
    uint64_t base_offset;
    uint64_t log_start_pos;    /* oldest position on disk (durable) */
    uint64_t log_start_offset;
    uint64_t dropped;    /* recovered_dropped to record */
    uint64_t created_ns; /* the header's created_ns (with base_pos, the
                            ring's incarnation), chosen by the caller so it
                            can name the ring elsewhere (a durable topic's
                            owner record); 0: evb_real_ns() now */
    /* Called with the new file's mapping before any of its pages exists,
     * so that a memory policy or page size set on it decides where and
     * how they are allocated (bus/placement.c: NUMA binding, huge pages).
     * NULL: none. 0 or a negative errno, which fails the creation. */
    int (*place)(void *base, uint64_t bytes, void *arg);
    void *place_arg;
};
int evb_ring_create(const char *path, const struct evb_ring_init *init);
int evb_ring_open(struct evb_ring *r, const char *path);
/* As evb_ring_open, for a caller that may only read the file: opened
 * O_RDONLY and mapped PROT_READ, so a stray store faults in this process
 * and the file cannot be truncated or punched through it. r->readonly is
 * set; the caller points r->rslots at private slots before attaching a
 * reader (a read-only reader is seen by no producer: it gates nothing and
 * gets no doorbell), and nothing pads a hole through it
 * (evb_ring_unblock says 2). */
int evb_ring_open_ro(struct evb_ring *r, const char *path);
/* Map the ring's file a second time, PROT_READ, at r->view: a reader
 * hands events out through it, so an application that stores through an
 * event pointer faults instead of changing the ring. A read-only ring is
 * its own view. 0 or a negative errno. */
int evb_ring_map_view(struct evb_ring *r);
void evb_ring_close(struct evb_ring *r);
/* Check a mapped header; fills r's locals. Exposed for the fuzz target. */
int evb_ring_validate(struct evb_ring *r, const void *base, size_t bytes);

static inline struct evb_frame *evb_ring_frame(const struct evb_ring *r, uint64_t pos)
{
    return (struct evb_frame *)(void *)(r->data + (pos & r->mask));
}

/* The frame at POS as a reader loads it: through the read-only view when
 * the ring has one, so the pointers a reader hands out are the view's and
 * it touches one mapping, not two (a second set of page-table walks and
 * TLB entries for the same bytes cost a third of 64-byte throughput).
 * Coherence is by physical page, so the view sees every store the moment
 * the writable mapping would, with the same ordering. */
static inline const struct evb_frame *evb_ring_rframe(const struct evb_ring *r, uint64_t pos)
{
    return (const struct evb_frame *)(const void *)(r->rdata + (pos & r->mask));
}

/* ---- proc.c: process identity that survives pid reuse ---- */
uint64_t evb_proc_self(void);         /* pid << 32 | start time (clock ticks) */
int evb_proc_alive(uint64_t owner);   /* 1 alive, 0 dead */
uint64_t evb_proc_start(int pid);     /* 0 when gone */
int evb_proc_stopped(uint64_t owner); /* 1: stopped (SIGSTOP), traced or frozen */
/* 1 only when OWNER is known to be gone (no such pid here, another start
 * time, a zombie); 0 when alive or when we cannot tell (its /proc hidden
 * by hidepid). A pid of another pid namespace reads as gone. */
int evb_proc_gone(uint64_t owner);
uint64_t evb_mono_ns(void);
uint64_t evb_real_ns(void);
/* This process's fork generation: a pthread_atfork handler bumps it in
 * every forked child, so a handle that kept the value of its open tells
 * with one compare, no syscall, that it runs in a child of its opener.
 * A plain word, not an atomic: it is written only in a child's atfork
 * handler, while the child has one thread, so no access ever races it.
 * (As a relaxed atomic load it cost a publish about 20 instructions under
 * GCC 12, the compiler keeping the loads around it in place; plain, 2:
 * perf/insn_guard.sh.) */
extern __attribute__((visibility("hidden"))) uint32_t evb_proc_fork_generation;
static inline uint32_t evb_proc_fork_gen(void)
{
    return evb_proc_fork_generation;
}
/* clock.h: evb_event_ns(), CLOCK_REALTIME for event timestamps, from the
 * time-stamp counter where the kernel keeps time by it (within tens of ns
 * of clock_gettime, at half its cost); thread-safe. */

/* ---- fence.c: the heavy half of the asymmetric fences (claim.c X1, X2) ---- */
/* Register this process so a heavy fence reaches it; true once it is (a
 * fenceless commit is allowed), false when the kernel refuses. */
bool evb_fence_register(void);
/* A full barrier on every CPU running a registered process, and here. 0,
 * or a negative errno when the kernel has no membarrier for us. */
int evb_fence_heavy(void);

/* ---- tail pair (claim.c) ---- */
void evb_ring_load_tail(const struct evb_ring *r, uint64_t *pos, uint64_t *offset);
/* A tail no step of the protocol writes (not aligned, or below the ring's
 * first position or offset): -EBADMSG with the reason set, else 0. What
 * producers, readers and evbus stat all call damage. */
int evb_ring_tail_check(const struct evb_ring *r, uint64_t pos, uint64_t offset);

/* ---- claim.c, pad.c: producers ---- */
struct evb_ring_producer {
    struct evb_ring *r;
    struct evb_producer_slot *slot;
    uint32_t slot_idx;
    uint32_t producer_id;
    bool fenceless;          /* commits with a plain store (X1): registered */
    bool exclusive;          /* the only producer: moves the tail by store (X3) */
    bool atomic16;           /* exclusive or leased: evb_store128 may be one store */
    bool leased;             /* holds the tail lease: moves it by store (X4) */
    bool revoking;           /* took a lease back; must see it unused (X4) */
    bool revoke_fenced;      /* revoking: ran the heavy fence after the mark */
    bool lease_lost;         /* the lease was found taken back: look at our
                                slot before the next claim (own_slot_check) */
    bool slot_lost;          /* our slot names another holder: every claim is
                                -EBADMSG, and detach leaves the slot alone */
    uint64_t lease_word;     /* leased: the word as we took it (generation) */
    uint64_t revoked;        /* revoking: the lease word as we left it */
    uint64_t revoke_since;   /* revoking: mono ns of the mark */
    uint64_t lease_next;     /* mono ns: next try at the lease (lap ends) */
    uint64_t xpos, xoff;     /* exclusive or leased: the tail, as only we move it */
    uint64_t limit;          /* cached: claims ending at or below are safe */
    uint64_t limit_from;     /* the tail snapshot LIMIT was computed at */
    uint64_t blocked_pos;    /* min position blocking us, for stall timing */
    uint64_t blocked_since;  /* mono ns */
    uint64_t next_check;     /* mono ns: next liveness/reap pass */
    /* What the last limit was computed from (refresh_limit), for the
     * message of a wait that runs out: EVB_HELD_*, the slot, its owner. */
    uint32_t held_by;
    uint32_t held_slot;
    uint64_t held_owner;
    uint64_t held_pos;       /* the position it holds (the limit's base) */
};

/* evb_ring_producer.held_by */
#define EVB_HELD_NONE 0u    /* our tail snapshot: nothing below it */
#define EVB_HELD_FLUSHER 1u /* a durable ring's flushed position */
#define EVB_HELD_READER 2u  /* a gating reader's cursor (reader slot) */
#define EVB_HELD_CLAIM 3u   /* another producer's pending claim (producer slot) */

struct evb_ring_claim {
    uint64_t pos;            /* claim start (end pad first when pad > 0) */
    uint64_t data_pos;       /* pos + pad: first data frame */
    uint64_t offset;         /* first event offset */
    uint32_t pad;            /* end-of-ring pad bytes */
    uint32_t len;            /* aligned data bytes */
    uint32_t events;
    uint64_t stale_pad;      /* stamp word found at pos before we wrote it */
};

int evb_ring_producer_attach(struct evb_ring_producer *p, struct evb_ring *r,
                             uint32_t producer_id);
void evb_ring_producer_detach(struct evb_ring_producer *p);
/* Make the attached producer P the ring's only one (claim.c X3): no other
 * producer slot may be held, none can be taken while P lives, and P moves
 * the tail with a plain 16-byte store instead of the CAS. -EBUSY (message
 * set) when another producer, or another exclusive one, holds the ring. */
int evb_ring_producer_exclusive(struct evb_ring_producer *p);
/* Claim LEN aligned data bytes for EVENTS frames; -EAGAIN when the limit
 * stops it (the caller may retry after evb_ring_producer_unblock()). */
int evb_ring_claim(struct evb_ring_producer *p, uint32_t len, uint32_t events,
                   struct evb_ring_claim *c);
/* Frames 2..n (stores their stamps), then frame 1 (CAS). 0 or -ECANCELED. */
int evb_ring_commit(struct evb_ring_producer *p, struct evb_ring_claim *c);
int evb_ring_abort(struct evb_ring_producer *p, struct evb_ring_claim *c);
/* Count, in the producer's own slot, a claim that found the ring full. */
void evb_ring_producer_count_wait(struct evb_ring_producer *p);
/* Slow path of a blocked producer: reap dead readers, pad dead holes.
 * -EBADMSG (message set) when what holds the producer is damage: an
 * impossible intent, or a hole nothing resolves (evb_ring_hole_verdict). */
int evb_ring_producer_unblock(struct evb_ring_producer *p);
/* -ETIMEDOUT, with a message naming what held P's ring (a flusher, a
 * gating reader, another producer's claim, and whether its process is
 * stopped) as P's last limit found it: for a wait of WAITED_MS for room
 * that ran out. Reads /proc. */
int evb_ring_full_detail(const struct evb_ring_producer *p, int32_t waited_ms);

/* A claimed but uncommitted frame a walk is stopped at, being timed. */
struct evb_hole_timer {
    uint64_t pos;         /* EVB_POS_NONE: none */
    uint64_t since;       /* mono ns when first seen at pos */
    uint64_t next_check;  /* mono ns of the next offer to evb_ring_unblock */
};
/* pad.c: nothing is committed at POS. While the tail is past it, time it
 * and, every dead_ns/4, offer it to evb_ring_hole_verdict(). 1: resolved
 * (read POS again), 0: keep waiting, -EBADMSG: the ring is damaged there
 * (message set; the caller should make it stick). Shared by readers and
 * the flusher. */
int evb_ring_hole_check(struct evb_ring *r, struct evb_hole_timer *h, uint64_t pos);

/* pad.c: resolve an uncommitted claim at POS that has kept a reader waiting
 * WAITED_NS. 1: resolved (padded now or already committed), 0: not allowed
 * yet (owner alive and not stalled), 2: a claim explains it and may be
 * padded, but not through R's read-only mapping (left for a writer),
 * -EBADMSG: a pending intent naming POS is one no producer can write
 * (message set). */
int evb_ring_unblock(struct evb_ring *r, uint64_t pos, uint64_t waited_ns);
/* pad.c: evb_ring_unblock(), and once WAITED_NS passed stall_ns + dead_ns
 * (every claim is padded by then), -EBADMSG for a hole still below the
 * tail that nothing resolves. */
int evb_ring_hole_verdict(struct evb_ring *r, uint64_t pos, uint64_t waited_ns);
/* Free the slots of dead producers whose claims are all resolved. */
void evb_ring_reap_producers(struct evb_ring *r);
/* pad.c: events of claims below the tail (TAIL_POS, TAIL_OFFSET) neither
 * committed nor padded yet; a statistic, each slot read on its own. */
uint64_t evb_ring_open_events(struct evb_ring *r, uint64_t tail_pos, uint64_t tail_offset);

/* ---- cursor.c: reader slots ---- */
int evb_ring_slot_take(struct evb_ring *r, uint32_t kind, const char *name,
                       uint64_t cursor, uint32_t *slot_idx);
void evb_ring_slot_release(struct evb_ring *r, uint32_t slot_idx);
/* Free slots of dead readers; returns how many. */
int evb_ring_reap_readers(struct evb_ring *r);

/* ---- read.c: readers ---- */
struct evb_frame_view {
    const struct evb_frame *f;  /* header (in the ring or a copy) */
    const uint8_t *key;
    const uint8_t *value;
    /* The lengths as the decoder loaded and checked them (frame.h,
     * evb_frame_decode). Use these, never f->len or f->key_len: F may be
     * in shared memory, and a second load could see other values than the
     * ones that were bounds-checked (a double fetch). */
    uint32_t key_len;
    uint32_t value_len;
    uint16_t flags;             /* the frame's EVB_FRAME_F_*, as decoded */
    uint64_t pos;
    uint64_t end;               /* the position after the frame */
    uint64_t lost_events;
    uint64_t lost_bytes;
};

struct evb_ring_reader {
    struct evb_ring *r;
    uint32_t slot_idx;
    uint32_t kind;            /* EVB_SLOT_* */
    uint64_t pos;             /* next position to read */
    uint64_t offset;          /* next offset expected */
    uint64_t verify_below;    /* positions below this are lap-checked */
    uint64_t skip_below;      /* after a seek: skip events below this offset */
    /* From here to lost_bytes: states evb_ring_read settles before the
     * inlined common case may read on (read_inline.h; behind is only ever
     * set on durable rings, whose readers never get there); kept together
     * so that test is a handful of loads from one line. */
    int failed;               /* sticky error */
    bool resync;              /* lapped: the next frame's offset tells the loss */
    bool learn;               /* after a seek: take the next frame's offset */
    bool behind;              /* durable ring lapped us: read from disk (-ESTALE) */
    uint64_t skip_ts;         /* after a seek by time: skip events before it, once */
    uint64_t lost_events;     /* to report with the next event */
    uint64_t lost_bytes;
    uint64_t delivered;       /* events returned; statistic */
    uint64_t published;       /* cursor value last stored in the slot */
    uint64_t hold;            /* never published past this (a queue member's
                               * floor); EVB_POS_NONE: no hold */
    uint64_t published_delivered; /* delivered value last stored there */
    struct evb_hole_timer hole; /* a claimed, uncommitted frame at pos */
    uint32_t idle_polls;      /* empty polls, to pace tail peeks */
    uint64_t learn_floor;     /* learning: the offset the seek wanted; a higher
                               * one found counts the difference lost */
    uint8_t *buf;             /* copy buffer for lap-checked reads */
};

/* The last step of delivering the data frame H (in the ring, a copy, or a
 * segment file): a seek's filters (offset below skip_below; timestamp
 * before skip_ts, once) say false to skip it; else V reports the loss
 * pending before it. Shared by evb_ring_read and the disk reader. */
static inline bool evb_ring_reader_take(struct evb_ring_reader *rd,
                                        const struct evb_frame *h,
                                        struct evb_frame_view *v)
{
    /* Relaxed atomic: H may be a ring frame whose losing padder is still
     * storing the same offset (frame.h, evb_frame_set_claim). */
    if (__atomic_load_n(&h->offset, __ATOMIC_RELAXED) < rd->skip_below)
        return false;
    if (rd->skip_ts) {
        if (h->timestamp_ns < rd->skip_ts)
            return false;
        rd->skip_ts = 0;
    }
    v->lost_events = rd->lost_events;
    v->lost_bytes = rd->lost_bytes;
    rd->lost_events = 0;
    rd->lost_bytes = 0;
    rd->delivered++;
    return true;
}

/* Attach at START_POS (EVB_POS_NONE: the tail). A start older than the
 * ring holds is moved to the oldest lap start and counted lost. */
int evb_ring_reader_attach(struct evb_ring_reader *rd, struct evb_ring *r,
                           uint32_t kind, const char *name, uint64_t start_pos,
                           uint64_t start_offset);
void evb_ring_reader_detach(struct evb_ring_reader *rd);
/* 0 and a view, -EAGAIN nothing ready, -EBADMSG corrupt (sticky),
 * -ESTALE: a durable ring no longer holds rd->pos (read it from disk, then
 * come back with evb_ring_reader_seek_pos). */
int evb_ring_read(struct evb_ring_reader *rd, struct evb_frame_view *v);
/* Publish the reader's position to its slot: frames before it may be
 * overwritten from now on. */
void evb_ring_reader_release(struct evb_ring_reader *rd);
/* The same, publishing POS (at most the reader's position): a reader that
 * may come back for frames below its position (a queue group's member,
 * which re-reads events not acknowledged) holds them so. */
void evb_ring_reader_release_to(struct evb_ring_reader *rd, uint64_t pos);
/* Move to (POS, OFFSET) like seek_pos; LEARN false trusts OFFSET rather
 * than taking the offset of the frame found at POS. POS must be one the
 * ring reached (a tail seen, a committed cursor): past the tail of a ring
 * that is not durable it is -EBADMSG (sticky, message set), where seek_pos
 * starts at the tail. */
int evb_ring_reader_seek(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset, bool learn);
/*
 * The owner of a durable ring's reader reads positions the ring no longer
 * holds from the disk log (-ESTALE above), and tells the reader:
 *   moved     - it delivered up to (POS, OFFSET) from disk; the ring is not
 *               touched and nothing is published to the slot;
 *   add_loss  - it found BYTES / EVENTS gone (retention), to report with
 *               the next event;
 *   resume    - it caught up at (POS, OFFSET): continue in the ring there,
 *               with the seek's filters still in force.
 * bus/ never writes reader fields itself.
 */
void evb_ring_reader_moved(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset);
void evb_ring_reader_add_loss(struct evb_ring_reader *rd, uint64_t bytes, uint64_t events);
/* The last event read was not handed out after all (a queue member's take
 * that another member won, an event it sends to the dead-letter topic):
 * the slot's "delivered" counts what a caller got, not what was read. */
void evb_ring_reader_uncount(struct evb_ring_reader *rd);
int evb_ring_reader_resume(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset,
                           bool learn);
/* After a seek by time: skip events stamped before TIMESTAMP_NS, once. */
void evb_ring_reader_skip_before(struct evb_ring_reader *rd, uint64_t timestamp_ns);
/* Move to the frame holding OFFSET (scanning from the oldest lap start). */
int evb_ring_reader_seek_offset(struct evb_ring_reader *rd, uint64_t offset);
int evb_ring_reader_seek_pos(struct evb_ring_reader *rd, uint64_t pos, uint64_t offset);
/*
 * The oldest frame start the ring still holds: 0 and (POS, OFFSET) of the
 * committed frame there; -EAGAIN and POS with nothing committed there yet
 * (a claim in flight, a hole, or a damaged stamp: a reader seeking there
 * learns the offset, times a hole and reports damage), OFFSET unknown;
 * -EBADMSG the tail itself is corrupt (message set).
 */
int evb_ring_oldest(struct evb_ring *r, uint64_t *pos, uint64_t *offset);
/* Move to the oldest frame start held, learning its offset there. */
int evb_ring_reader_seek_oldest(struct evb_ring_reader *rd);
/* Before sleeping: 1 ready (committed, or lapped), 2 claimed but not
 * committed (sleep at most dead_ns/4 so the hole gets timed), 0 nothing. */
int evb_ring_reader_ready(struct evb_ring_reader *rd);

/* ---- doorbell.c: every futex word is waited on and woken here ---- */
/* Bump BELL (release) and wake everyone asleep on it. */
void evb_bell_ring(_Atomic uint32_t *bell);
/* Sleep while BELL still holds VAL, at most TIMEOUT_NS (0: no limit).
 * 0 woken (or spuriously), -ETIMEDOUT, -EAGAIN (BELL moved already), -EINTR. */
int evb_bell_sleep(_Atomic uint32_t *bell, uint32_t val, uint64_t timeout_ns);
/* The same with a class: a sleeper of class bits MASK is woken by a ring
 * whose bits meet them, and by every plain evb_bell_ring. MASK != 0. */
void evb_bell_ring_mask(_Atomic uint32_t *bell, uint32_t mask);
int evb_bell_sleep_mask(_Atomic uint32_t *bell, uint32_t val, uint64_t timeout_ns,
                        uint32_t mask);
void evb_ring_wake(struct evb_ring *r);  /* bump the bell, wake all sleepers */
void evb_ring_wake_waiters(struct evb_ring *r); /* after commits: if any bit set */
/* Sleep until one of N rings rings or TIMEOUT_NS passes (0: forever). The
 * caller set its waiter bits and re-checked readiness. */
int evb_bell_wait(_Atomic uint32_t **bells, const uint32_t *vals, unsigned n,
                  uint64_t timeout_ns);
void evb_ring_waiter_set(struct evb_ring *r, uint32_t slot_idx, uint32_t *bell_val);
/* After setting every waiter bit, before the readiness checks that decide
 * to sleep: the heavy fence fenceless commits pair with (claim.c X2). 0,
 * or a negative errno when there is none: then sleep at most
 * EVB_UNFENCED_NAP_NS, which bounds a wake-up missed that way. */
int evb_ring_waiters_armed(void);
#define EVB_UNFENCED_NAP_NS 1000000ull
void evb_ring_waiter_clear(struct evb_ring *r, uint32_t slot_idx);

/* ---- crash points (test builds only) ---- */
/* Called first at every crash point, in the thread that reaches it, when
 * a test set it (NULL: none); set before the threads that reach points
 * run. Defined only in the test builds of the libraries (crash.c): tests
 * are not compiled with EVB_CRASH_POINTS, and a production build that
 * used it would not link. */
typedef void (*evb_crash_hook_fn)(const char *name);
extern _Atomic(evb_crash_hook_fn) evb_crash_hook;
#ifdef EVB_CRASH_POINTS
void evb_crash_point(const char *name);
#define EVB_CRASH_POINT(name) evb_crash_point(name)
#else
#define EVB_CRASH_POINT(name) ((void)0)
#endif

#endif /* EVB_RING_H */
