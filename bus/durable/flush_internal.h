/*
 * flush_internal.h - what the flusher's files share: one topic's flush
 * (struct evb_flush) and its per-partition state (struct fpart), the
 * tuning constants, and the steps each file provides. Only bus/durable
 * includes it; bus/ sees struct evb_flush as opaque (durable.h).
 *
 *   flusher.c        thread, lifecycle, fork hooks, orphan flushes
 *   flush_lock.c     flock, takeover (resume from flushed), release
 *   flush_segment.c  segment switch, build-ahead thread, index notes
 *   flush_round.c    ring walk, one io_uring round, publication (F1)
 *   durable_wait.c   durable position, sync waiters (S2)
 *   retention.c      dropping old segments
 */
#ifndef EVB_FLUSH_INTERNAL_H
#define EVB_FLUSH_INTERNAL_H

#include <liburing.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "durable.h"
#include "ring.h"

#define EVB_LOCK_RETRY_NS (50ull * 1000 * 1000)  /* takeover bound */
#define EVB_IDLE_WAIT_NS (100ull * 1000 * 1000)  /* housekeeping tick */
#define EVB_IDX_EVERY (64u << 10)                /* index entry per 64 KiB */
#define EVB_WRITE_MAX (8u << 20)                 /* bytes per O_DIRECT write op */
/* Through the page cache, writes of 2 MiB or more ran at a quarter of the
 * speed of 1 MiB ones on this VM (perf/RESULTS.md). */
#define EVB_WRITE_MAX_CACHED (1u << 20)
#define EVB_RETAIN_EVERY_NS (1000ull * 1000 * 1000)
#define EVB_FAIL_RETRY_NS (1000ull * 1000 * 1000)
/* How long the flusher leaves an fdatasync to sync waiters who lead it
 * themselves (durable_wait.c, S3) before it syncs anyway: while no round
 * runs (a count a killed waiter left), and while a leader's does (a slow
 * disk, or a leader stopped in its fdatasync). */
#define EVB_LEAD_DEFER_NS (2ull * 1000 * 1000)
#define EVB_LEAD_HOLD_NS (50ull * 1000 * 1000)
/* Flushed ends whose offsets a flusher remembers, for the mark. */
#define EVB_PUB_NOTES 4u
/* How often, at most, the durable mark follows what was synced (by
 * leaders or the flusher's rounds, flush_round.c); an idle round catches
 * it up. A mark
 * behind durable makes a rebuild take damage between the two for a torn
 * tail, as it does for the frames of a round not yet marked. */
#define EVB_MARK_EVERY_NS (5ull * 1000 * 1000)
/* How long an idle flusher polls for the next commit while sync waiters
 * are about (flusher.c): a little over one fdatasync, the time between a
 * sync producer's commits. */
#define EVB_SYNC_SPIN_NS (300ull * 1000)
/* How long the thread keeps out of a partition after a round a sync
 * waiter of its process ran there itself (flusher.c, inline_quiet): a few
 * of its publishes' time, so that it stays out while they go on, and
 * writes what others committed soon after they stop. */
#define EVB_INLINE_QUIET_NS (1000ull * 1000)
#define EVB_DIO 4096u /* O_DIRECT alignment of offsets, lengths and buffers */
/* A write through the page cache that ends inside a block of this size
 * is padded with zeros to its end (flush_round.c, tail_pad). */
#define EVB_PAD_BLOCK 4096u
/* Disk is reserved ahead of the writes in steps that double from
 * EVB_SEG_RESERVE_FIRST up to this (flush_segment.c). */
#define EVB_RESERVE_STEP_MAX (4u << 20)
/* A SYNC topic's next step is zero-filled only while its rounds wrote
 * fewer bytes than this per fdatasync over the last step (zero_next). */
#define EVB_ZERO_BYTES_PER_SYNC (64u << 10)
/* Through the page cache, write-back of what was written is started once
 * this much is written and not yet started (flush_round.c, kick). */
#define EVB_KICK_BYTES (4u << 20)
/* and in whole pages of this size (a larger page is kicked before it is
 * full at times, and then left to the fdatasync: no harm). */
#define EVB_KICK_PAGE 4096u

struct fpart {
    struct evb_ring *r;
    char dir[PATH_MAX];
    uint32_t part;
    int lock_fd;              /* -1: not held */
    uint64_t next_try;        /* mono ns of the next lock attempt */
    uint32_t slot;            /* reader slot (doorbell bit) while held */
    bool has_slot;
    int seg_fd;               /* segment being written, -1 none */
    int dio_fd;               /* the same file opened O_DIRECT, or -1 */
    uint64_t seg_base;
    int idx_fd;               /* its index, -1 none */
    uint64_t idx_next;        /* position due for the next index entry */
    uint64_t max_ts;          /* largest timestamp before the walk, this segment */
    uint64_t walk;            /* committed frontier found (>= written) */
    uint64_t written;         /* == hdr->flushed once published */
    uint64_t synced;          /* == hdr->durable once published */
    uint64_t walk_offset;     /* offset of the next event at walk_offset_at */
    uint64_t walk_offset_at;  /* == walk when walk_offset is known there */
    uint64_t last_sync;       /* mono ns */
    uint64_t unsynced_since;  /* mono ns: the write that left synced behind written */
    uint64_t mark_at;         /* mono ns: the mark's last write */
    uint64_t mark_pos;        /* and the position it recorded */
    uint64_t self_synced;     /* our own fdatasyncs (and sync_behind) reached here */
    uint64_t pub_pos[EVB_PUB_NOTES], pub_off[EVB_PUB_NOTES]; /* flushed ends, offsets */
    unsigned pub_next;
    struct evb_hole_timer hole; /* the walk is stopped at a hole (shm/pad.c) */
    /* the round's op */
    bool busy;
    bool op_sync;
    uint64_t op_end;          /* end of the write (or written, sync only) */
    int32_t wres;             /* write result, bytes or -errno */
    int32_t sres;             /* fdatasync result */
    uint32_t wlen;
    int wfd;                  /* the write's file (seg_fd or dio_fd) */
    uint64_t woff;            /* and its offset in that file */
    uint32_t wpad;            /* zeros written after the wlen bytes (flush_round.c) */
    struct iovec wiov[2];     /* the write's bytes and its zeros, while in flight */
    uint64_t cover, cover_blk; /* O_DIRECT: start of the frame that covers block cover_blk */
    int failed;               /* sticky: corrupt ring or I/O error */
    bool mark_noted;          /* a mark that could not be written is in
                                 damage.found already (flush_round.c) */
    uint64_t reserved;        /* the segment's disk is reserved below this position */
    uint64_t kicked;          /* write-back was started below this position */
    /* The next segment, built ahead by a helper thread so that the switch
     * costs no zero-filling in the flush path; the same thread reserves
     * the segment being written ahead of the writes. */
    pthread_t prep;
    bool prep_running;
    uint64_t prep_to;         /* its job: reserve up to here; 0: build prep_base */
    int prep_rc;              /* and how that went */
    uint64_t prep_base;       /* last base prepared (or being prepared) */
    uint64_t seg_bytes;
    uint32_t mode;
    bool zero_fill;
    uint64_t zero_walk, zero_syncs; /* walk and fdatasyncs at the last step (zero_next) */
    bool zero_last;           /* and what it chose */
    /* A sync waiter of this process runs rounds itself (evb_flush_inline):
     * the thread holds the flush lock (a hint, H2), and the round being
     * prepared is such a waiter's, which syncs whatever it writes. */
    _Atomic bool held;
    bool force_sync;
    _Atomic uint64_t inline_at; /* mono ns: such a waiter's last round here (H3) */
    _Atomic uint32_t inline_here; /* such waiters on their way here now (H3) */
    uint64_t rounds_inline;   /* rounds completed by such waiters, */
    uint64_t rounds_thread;   /* and by the thread (evb_flush_rounds) */
};

/* The flush of one durable topic by this process: a thread (none for an
 * orphan flush), an io_uring, and every partition's state. */
struct evb_flush {
    struct evb_flush *all_next; /* every flush of the process (fork) */
    evb_topic_config cfg;
    uint32_t nparts;
    struct evb_ring *rings;   /* the caller's mapping, nparts rings */
    uint64_t (*min_committed)(void *arg, uint32_t part);
    void *min_committed_arg;
    pthread_t thread;
    /* Every step on p[] (take, rounds, retention, drain, release) runs
     * under it: the thread holds it but while it spins or sleeps, and a
     * sync waiter of this process takes it to run a round itself. */
    pthread_mutex_t round_mu;
    _Atomic uint32_t inline_waiters; /* such waiters now (H3, a hint) */
    _Atomic bool thread_wants; /* the thread waits for round_mu (H3, a hint) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic bool stop;
    struct io_uring ring;
    bool uring_ok;
    bool direct;              /* EVBUS_FLUSH_DIRECT=1: O_DIRECT whole blocks */
    bool no_kick;             /* sync_file_range refused here: no write-back kicks */
    uint64_t next_retain;
    struct fpart p[];
};

/* The stop flag: stored once (evb_flush_stop(), or at creation for an
 * orphan flush), polled by the thread; pthread_join orders the teardown.
 * H1: acquire; pairs with evb_flush_stop()'s release store, so the drain
 * after it sees every frame committed before the stop was asked. */
static inline bool evb_flush_stopping(struct evb_flush *fl)
{
    return atomic_load_explicit(&fl->stop, memory_order_acquire);
}

/* durable_wait.c: online CPUs (sysconf, cached): spinning pays only
 * while fewer threads spin than there are CPUs. */
uint32_t evb_online_cpus(void);
/* durable_wait.c: store durable and wake sync waiters (S2). */
void evb_flush_publish_durable(struct evb_ring *r, uint64_t pos);
/* durable_wait.c: store ERR as the partition's flush error and ring
 * sync_bell and flush_bell (E1), so sync waiters and producers blocked on
 * a full ring see it now: the one place that tells them. */
void evb_flush_tell(struct evb_ring_hdr *h, int err);
/* flush_error.c: keep the text of FP's error ERR (this thread's detail)
 * beside the code the ring carries; cleared when a flusher takes over. */
void evb_flush_error_note(const struct fpart *fp, int err);
void evb_flush_error_clear(const char *pdir);
/* durable_wait.c: FP failed with ERR (sticky): publish durable, tell. */
void evb_flush_fail(struct fpart *fp, int err);

/* durable_wait.c: -EBADMSG (message set) unless FLUSHED and DURABLE, as
 * loaded from R's header, fit its tail and base (and the log start is in
 * range); at a takeover, before anything is trusted. */
int evb_flush_check_words(const struct evb_ring *r, uint64_t flushed, uint64_t durable,
                          uint64_t seg_bytes);
/* durable_wait.c: -EBADMSG unless the tail can follow FP's written
 * position; once per round. */
int evb_flush_check_tail(struct fpart *fp);

/* flush_lock.c: take FP's flush lock unless it is not time to try yet;
 * resumes from the ring's flushed position. True when held. */
bool evb_flush_take(struct evb_flush *fl, struct fpart *fp, uint64_t now);
/* flush_lock.c: close FP's files, give back its slot and its lock. */
void evb_flush_release(struct fpart *fp);
/* flush_lock.c: let go of FP's flush lock for good when its ring file was
 * removed (the bus with it), after a last round; the thread, every
 * EVB_RETAIN_EVERY_NS, with round_mu held. */
void evb_flush_check_ring(struct evb_flush *fl, struct fpart *fp, uint64_t now);

/* flush_segment.c */
int evb_flush_seg_open(struct evb_flush *fl, struct fpart *fp, uint64_t base);
int evb_flush_seg_resume(struct evb_flush *fl, struct fpart *fp, uint64_t at);
void evb_flush_seg_close(struct fpart *fp);
int evb_flush_prep_next(struct evb_flush *fl, struct fpart *fp);
void evb_flush_prep_join(struct fpart *fp);
void evb_flush_index_note(struct evb_flush *fl, struct fpart *fp, uint64_t pos, uint64_t off);

/* flush_round.c: queue FP's write and/or fdatasync (true if queued), then
 * submit every queued op and complete them. */
bool evb_flush_prepare(struct evb_flush *fl, struct fpart *fp, uint64_t now);
/* flush_round.c: whether FP's written bytes up to END are to be synced
 * now; when it leaves them to sync leaders (S3), until when, in
 * *DEFER_UNTIL (if not NULL). */
bool evb_flush_sync_due(struct evb_flush *fl, struct fpart *fp, uint64_t end, uint64_t now,
                        uint64_t *defer_until);
void evb_flush_run_ops(struct evb_flush *fl, unsigned nparts, uint64_t now);

/* flush_round.c: with round_mu held, FP held and not failed: rounds that
 * write and sync FP up to what is committed until its durable position
 * reaches TARGET (evb_flush_inline), none begun past DEADLINE. 0: durable
 * reached TARGET or a round ran; 1: nothing to write or sync (TARGET not
 * committed yet). */
int evb_flush_round_inline(struct evb_flush *fl, struct fpart *fp, uint64_t target,
                           uint64_t deadline);

/* retention.c: drop FP's old segments as the topic's retention says. */
void evb_flush_retain(struct evb_flush *fl, struct fpart *fp, uint64_t now_real);

#endif
