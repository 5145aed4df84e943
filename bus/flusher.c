/*
 * flusher.c - durable topics: copy committed ring bytes to segment files
 * with io_uring, fdatasync them, and publish how far that went.
 *
 * Who flushes. Each partition has a lock file, <data>/<topic>/<p>/flush.lock.
 * Every process with a producer on a durable topic runs one flusher thread
 * for the topic (refcounted per bus handle); the thread flushes the
 * partitions whose flock it holds and retries the others every
 * EVB_LOCK_RETRY_NS. The kernel drops a dead holder's flock, so a survivor
 * takes over within that bound and resumes from the ring's flushed
 * position: bytes below it are on disk, bytes above are rewritten, which
 * is harmless because a position's bytes never change once committed.
 * When no candidate is left, evb_flush_orphans() (run by every topic open)
 * finishes the job.
 *
 * What is published (ring header line 3):
 *   flushed  positions below are written; producers gate on it (F1 in
 *            shm/claim.c), so the ring never overwrites unwritten bytes;
 *   durable  positions below are fdatasync'ed; evb_wait_durable() sleeps on
 *            sync_bell until it passes a target (S2 below).
 *
 * One round of the thread: for each held partition find the committed
 * extent after what was written (walking stamps, as a reader does, and
 * noting sparse index entries on the way), submit one write of it straight
 * from the ring mapping, with an fdatasync linked behind when the topic is
 * SYNC, a producer waits, the interval passed or a segment is finished;
 * wait for the completions; publish. Commits made while a write and its
 * fdatasync are in flight go out together in the next round: that is the
 * group commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bus_internal.h"
#include "segment.h"

#define EVB_LOCK_RETRY_NS (50ull * 1000 * 1000)  /* takeover bound */
#define EVB_IDLE_WAIT_NS (100ull * 1000 * 1000)  /* housekeeping tick */
#define EVB_IDX_EVERY (64u << 10)                /* index entry per 64 KiB */
#define EVB_WRITE_MAX (8u << 20)                 /* bytes per O_DIRECT write op */
/* Through the page cache, writes of 2 MiB or more ran at a quarter of the
 * speed of 1 MiB ones on this VM (perf/RESULTS.md). */
#define EVB_WRITE_MAX_CACHED (1u << 20)
#define EVB_RETAIN_EVERY_NS (1000ull * 1000 * 1000)
#define EVB_FAIL_RETRY_NS (1000ull * 1000 * 1000)
#define EVB_DIO 4096u /* O_DIRECT alignment of offsets, lengths and buffers */

/* io_uring user_data: partition index << 1 | 1 for the fdatasync. */
#define OP_SYNC 1u

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
    uint64_t last_sync;       /* mono ns */
    uint64_t hole_pos, hole_since, hole_next;
    /* the round's op */
    bool busy;
    bool op_sync;
    uint64_t op_end;          /* end of the write (or written, sync only) */
    int32_t wres;             /* write result, bytes or -errno */
    int32_t sres;             /* fdatasync result */
    uint32_t wlen;
    uint64_t cover, cover_blk; /* O_DIRECT: start of the frame that covers block cover_blk */
    int failed;               /* sticky: corrupt ring or I/O error */
    /* The next segment, built ahead by a helper thread so that the switch
     * costs no zero-filling in the flush path. */
    pthread_t prep;
    bool prep_running;
    uint64_t prep_base;       /* last base prepared (or being prepared) */
    uint64_t seg_bytes;
    uint32_t mode;
    bool zero_fill;
};

struct evb_flusher {
    struct evb_flusher *next;
    struct evb_flusher *all_next; /* every flusher of the process (fork) */
    evb_bus *bus;
    unsigned refs;
    struct evb_topic_map *tm;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic bool stop;
    struct io_uring ring;
    bool uring_ok;
    bool direct;              /* EVBUS_FLUSH_DIRECT=1: O_DIRECT whole blocks */
    uint64_t next_retain;
    struct fpart p[];
};

/*
 * fork(): a flock belongs to the open file, so a child that inherits a
 * lock fd would keep the partition locked after this process died, with no
 * flusher thread behind it. Children close every inherited lock fd. (The
 * child must not use the parent's evbus handles, as with LMDB.)
 */
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static struct evb_flusher *all_flushers;

static void fork_prepare(void)
{
    pthread_mutex_lock(&all_mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&all_mu);
}

static void fork_child(void)
{
    for (struct evb_flusher *f = all_flushers; f; f = f->all_next)
        for (uint32_t i = 0; i < f->tm->nparts; i++)
            if (f->p[i].lock_fd >= 0)
                close(f->p[i].lock_fd);
    pthread_mutex_unlock(&all_mu);
}

__attribute__((constructor)) static void flusher_atfork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void all_add(struct evb_flusher *f)
{
    pthread_mutex_lock(&all_mu);
    f->all_next = all_flushers;
    all_flushers = f;
    pthread_mutex_unlock(&all_mu);
}

static void all_remove(struct evb_flusher *f)
{
    pthread_mutex_lock(&all_mu);
    for (struct evb_flusher **pp = &all_flushers; *pp; pp = &(*pp)->all_next) {
        if (*pp == f) {
            *pp = f->all_next;
            break;
        }
    }
    pthread_mutex_unlock(&all_mu);
}

void evb_part_dir(const struct evb_topic_map *tm, uint32_t part, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%u", tm->ddir, part);
}

int evb_flush_lock(const char *pdir, int wait_ms)
{
    char path[PATH_MAX + 16];
    int rc = evb_mkdirs(pdir);
    if (rc)
        return evb_err_set(rc, "%s: %s", pdir, strerror(-rc));
    snprintf(path, sizeof path, "%s/flush.lock", pdir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (fd < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    uint64_t deadline = evb_mono_ns() + (uint64_t)wait_ms * 1000000ull;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        int e = errno;
        if (e != EWOULDBLOCK || evb_mono_ns() >= deadline) {
            close(fd);
            return e == EWOULDBLOCK ? -EWOULDBLOCK
                                    : evb_err_set(-e, "%s: flock: %s", path, strerror(e));
        }
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

/* ---- durable position and its waiters (S2) ---- */

/*
 * S2, the sync doorbell: a waiter reads sync_bell (acquire), then loads
 * durable (seq_cst) and sleeps on the bell value it read; the flusher
 * stores durable (seq_cst), then bumps the bell (release) and wakes. A
 * bump after the waiter's read makes its futex wait return at once, so no
 * waiter sleeps through its durable update. sync_waiters only tells an
 * ASYNC flusher that someone waits, so it syncs now rather than at
 * flush_ms; a count left behind by a killed waiter makes it sync more
 * often, nothing worse.
 */
static void publish_durable(struct evb_ring *r, uint64_t pos)
{
    struct evb_ring_hdr *h = r->hdr;
    atomic_store_explicit(&h->durable, pos, memory_order_seq_cst);
    /* Always wake: one system call per fdatasync is noise, and so a
     * waiter SIGKILLed before it could decrement sync_waiters (which then
     * only asks ASYNC flushers to sync at once) costs no lost wake-up. */
    atomic_fetch_add_explicit(&h->sync_bell, 1, memory_order_release);
    syscall(SYS_futex, &h->sync_bell, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void set_error(struct fpart *fp, int err)
{
    fp->failed = err;
    /* Relaxed store, then publish_durable()'s wake makes waiters look. */
    atomic_store_explicit(&fp->r->hdr->flush_error, err, memory_order_relaxed);
    publish_durable(fp->r, fp->synced);
}

int evb_wait_durable(struct evb_ring *r, uint64_t target, uint64_t deadline, bool poke)
{
    struct evb_ring_hdr *h = r->hdr;
    /* A short spin first: a group commit in flight lands within one
     * fdatasync, and a futex sleep would add a wake-up to that. */
    uint64_t spin_until = evb_mono_ns() + 50000;
    for (unsigned i = 0;; i++) {
        /* Acquire: pairs with the flusher's store; nothing is read after
         * it, but a caller may act on "durable" at once. */
        if (atomic_load_explicit(&h->durable, memory_order_acquire) >= target)
            return 0;
        int e = atomic_load_explicit(&h->flush_error, memory_order_relaxed);
        if (e)
            return e;
        if ((i & 63) == 63 && evb_mono_ns() >= spin_until)
            break;
        __builtin_ia32_pause();
    }
    bool poked = !poke;
    for (;;) {
        atomic_fetch_add_explicit(&h->sync_waiters, 1, memory_order_seq_cst);
        uint32_t bell = atomic_load_explicit(&h->sync_bell, memory_order_acquire);
        if (!poked) {
            /* An ASYNC flusher asleep until its interval: ring the ring's
             * doorbell so it sees a waiter and syncs now. */
            evb_ring_wake(r);
            poked = true;
        }
        uint64_t d = atomic_load_explicit(&h->durable, memory_order_seq_cst);
        int e = atomic_load_explicit(&h->flush_error, memory_order_relaxed);
        uint64_t now = evb_mono_ns();
        if (d >= target || e || now >= deadline) {
            atomic_fetch_sub_explicit(&h->sync_waiters, 1, memory_order_relaxed);
            return d >= target ? 0 : e ? e : -ETIMEDOUT;
        }
        /* Wake at least every 100 ms: a flusher that died is replaced by
         * another process, which bumps the bell only if it sees us. */
        uint64_t wait = deadline - now;
        if (wait > EVB_IDLE_WAIT_NS)
            wait = EVB_IDLE_WAIT_NS;
        struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
        syscall(SYS_futex, &h->sync_bell, FUTEX_WAIT, bell, &ts, NULL, 0);
        atomic_fetch_sub_explicit(&h->sync_waiters, 1, memory_order_relaxed);
    }
}

/* ---- segments and the index ---- */

static void close_segment(struct fpart *fp)
{
    if (fp->dio_fd >= 0)
        close(fp->dio_fd);
    fp->dio_fd = -1;
    if (fp->seg_fd >= 0)
        close(fp->seg_fd);
    if (fp->idx_fd >= 0)
        close(fp->idx_fd);
    fp->seg_fd = fp->idx_fd = -1;
}

static void *prep_main(void *arg)
{
    struct fpart *fp = arg;
    /* tmp + rename: the flusher never sees a half-built file, and waits
     * for this thread before it opens the segment itself. */
    int fd = evb_seg_create(fp->dir, fp->prep_base, fp->seg_bytes, fp->zero_fill, fp->mode);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void prep_join(struct fpart *fp)
{
    if (fp->prep_running)
        pthread_join(fp->prep, NULL);
    fp->prep_running = false;
}

/* Past half of the current segment: build the next one in the background. */
static void prep_next(struct evb_flusher *fl, struct fpart *fp)
{
    const evb_topic_config *cfg = &fl->tm->cfg;
    uint64_t next = fp->seg_base + cfg->segment_bytes;
    if (fp->prep_running || fp->prep_base == next ||
        fp->written - fp->seg_base < cfg->segment_bytes / 2)
        return;
    fp->prep_base = next;
    fp->seg_bytes = cfg->segment_bytes;
    fp->mode = cfg->file_mode;
    fp->zero_fill = cfg->durability == EVB_DURABILITY_SYNC;
    fp->prep_running = pthread_create(&fp->prep, NULL, prep_main, fp) == 0;
}

static int open_segment(struct evb_flusher *fl, struct fpart *fp, uint64_t base)
{
    const evb_topic_config *cfg = &fl->tm->cfg;
    prep_join(fp);
    close_segment(fp);
    int fd = evb_seg_create(fp->dir, base, cfg->segment_bytes,
                            cfg->durability == EVB_DURABILITY_SYNC, cfg->file_mode);
    if (fd < 0)
        return fd;
    fp->seg_fd = fd;
    if (fl->direct) {
        /* Not every file system takes O_DIRECT (tmpfs does not): then the
         * page cache it is. */
        char path[PATH_MAX + 32];
        evb_seg_path(path, sizeof path, fp->dir, base, "log");
        fp->dio_fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
    }
    fp->seg_base = base;
    fp->max_ts = 0;
    fp->idx_next = base;
    return 0;
}

/*
 * Taking over in the middle of a segment: the index of what is already on
 * disk is trusted up to its last entry below the resume point; the frames
 * from there to the resume point are read back from disk for the running
 * maximum timestamp, so time seeks stay exact.
 */
static int resume_segment(struct evb_flusher *fl, struct fpart *fp, uint64_t at)
{
    const evb_topic_config *cfg = &fl->tm->cfg;
    uint64_t base = at - at % cfg->segment_bytes;
    int rc = open_segment(fl, fp, base);
    if (rc || at == base)
        return rc;
    struct evb_seg_geom g = {cfg->segment_bytes, cfg->ring_bytes, fl->tm->rings[0].max_frame};
    struct evb_seg_reader sr;
    if ((rc = evb_seg_reader_open(&sr, fp->dir, &g)))
        return rc;
    evb_seg_reader_seek(&sr, base, 0, true);
    struct evb_frame_view v;
    uint64_t first_off = 0;
    bool first = true;
    while ((rc = evb_seg_read(&sr, at, &v)) == 0) {
        if (first)
            first_off = v.f->offset;
        first = false;
        if (v.pos >= fp->idx_next)
            fp->idx_next = v.pos + EVB_IDX_EVERY;
        if (v.f->timestamp_ns > fp->max_ts)
            fp->max_ts = v.f->timestamp_ns;
    }
    evb_seg_reader_close(&sr);
    if (rc != -EAGAIN)
        return rc;
    /* Entries a dead flusher made past the resume point are redone. */
    if ((rc = evb_idx_cut(fp->dir, base, at, first_off)))
        return rc;
    int ifd = evb_idx_create(fp->dir, base, first_off, cfg->file_mode);
    if (ifd < 0)
        return ifd;
    fp->idx_fd = ifd;
    return 0;
}

static void index_note(struct evb_flusher *fl, struct fpart *fp, uint64_t pos, uint64_t off)
{
    if (pos < fp->idx_next)
        return;
    fp->idx_next = pos + EVB_IDX_EVERY;
    if (fp->idx_fd < 0) {
        /* First frame of the segment: its offset is the index's base. */
        if (evb_idx_cut(fp->dir, fp->seg_base, pos, off))
            return; /* an index is a hint: seeks fall back to walking */
        int fd = evb_idx_create(fp->dir, fp->seg_base, off, fl->tm->cfg.file_mode);
        if (fd < 0)
            return;
        fp->idx_fd = fd;
    }
    struct evb_idx_entry e = {.pos = pos, .offset = off, .max_ts = fp->max_ts};
    evb_idx_append(fp->idx_fd, &e, 1);
}

/* ---- the committed extent ---- */

/*
 * Walk committed frames from fp->walk, at most to LIMIT, as a reader
 * would: stamps with acquire (pairs with R1/R2 of the producers and the
 * padders' CAS), every length checked against the ring. Stops at the first
 * frame not committed, and times it: a hole left by a dead producer is
 * padded within dead_ns like any reader would (evb_ring_unblock).
 */
static void walk(struct evb_flusher *fl, struct fpart *fp, uint64_t limit, uint64_t now)
{
    struct evb_ring *r = fp->r;
    uint64_t pos = fp->walk;
    while (pos < limit) {
        struct evb_frame *f = evb_ring_frame(r, pos);
        uint64_t room = r->capacity - (pos & r->mask);
        uint64_t st = atomic_load_explicit(&f->stamp, memory_order_acquire);
        uint64_t skip;
        if (st == (pos | EVB_STAMP_PAD)) {
            skip = room;
            if (room >= EVB_FRAME_HDR) {
                /* Relaxed atomics: a woken stalled producer may rewrite
                 * these with the same values (see shm/read.c). */
                skip = __atomic_load_n(&f->claim_len, __ATOMIC_RELAXED);
                index_note(fl, fp, pos, __atomic_load_n(&f->offset, __ATOMIC_RELAXED));
            }
            if (skip < EVB_FRAME_ALIGN || skip % EVB_FRAME_ALIGN || skip > room)
                goto corrupt;
        } else if (st == (pos | EVB_STAMP_DATA)) {
            uint32_t len = f->len;
            if (room < EVB_FRAME_HDR || len < EVB_FRAME_HDR || len > r->max_frame ||
                evb_align_frame(len) > room)
                goto corrupt;
            index_note(fl, fp, pos, f->offset);
            if (f->timestamp_ns > fp->max_ts)
                fp->max_ts = f->timestamp_ns;
            skip = evb_align_frame(len);
        } else {
            /* Not committed: a hole if the tail is past it. */
            uint64_t t = atomic_load_explicit(&r->hdr->tail.pos, memory_order_acquire);
            if (t <= pos) {
                fp->hole_pos = EVB_POS_NONE;
                break;
            }
            if (fp->hole_pos != pos) {
                fp->hole_pos = pos;
                fp->hole_since = now;
                fp->hole_next = now + r->dead_ns / 4;
            } else if (now >= fp->hole_next) {
                fp->hole_next = now + r->dead_ns / 4;
                if (evb_ring_unblock(r, pos, now - fp->hole_since) == 1)
                    continue; /* padded or committed now: look again */
            }
            break;
        }
        /* The frame [pos, pos + skip) covers the block start blk: a frame
         * boundary flushed may be published at under O_DIRECT. */
        uint64_t blk = (pos + skip - 1) & ~(uint64_t)(EVB_DIO - 1);
        if (blk >= pos) {
            fp->cover = pos;
            fp->cover_blk = blk;
        }
        pos += skip;
        fp->hole_pos = EVB_POS_NONE;
    }
    fp->walk = pos;
    return;
corrupt:
    fp->walk = pos;
    set_error(fp, evb_err_set(-EBADMSG, "partition %u: corrupt frame at position %llu; "
                              "flushing stopped", fp->part, (unsigned long long)pos));
}

/* ---- lock, takeover, release ---- */

static void release_part(struct fpart *fp)
{
    prep_join(fp);
    close_segment(fp);
    if (fp->lock_fd >= 0) {
        /* No longer the flusher: orphan flushes may look at it again. */
        uint64_t self = evb_proc_self();
        atomic_compare_exchange_strong_explicit(&fp->r->hdr->flusher, &self, 0,
                                                memory_order_relaxed, memory_order_relaxed);
    }
    if (fp->has_slot)
        evb_ring_slot_release(fp->r, fp->slot);
    fp->has_slot = false;
    if (fp->lock_fd >= 0)
        close(fp->lock_fd);
    fp->lock_fd = -1;
}

/*
 * A predecessor may have died (or failed) after writing past durable into
 * earlier segments than the one it was writing: those files are synced
 * here, before anything above durable can be published as durable. (After
 * an fdatasync error Linux may report success on a retry while the pages
 * were never written; a partition whose flusher saw an error keeps it in
 * flush_error until a new flusher takes over, and that is all it can do.)
 */
static int sync_behind(struct evb_flusher *fl, struct fpart *fp)
{
    uint64_t seg = fl->tm->cfg.segment_bytes;
    uint64_t cur = fp->written - fp->written % seg;
    for (uint64_t b = fp->synced - fp->synced % seg; fp->synced < cur && b < cur; b += seg) {
        char path[PATH_MAX + 32];
        evb_seg_path(path, sizeof path, fp->dir, b, "log");
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            continue; /* removed by retention: nothing left to sync */
        if (fd < 0 || fdatasync(fd) < 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return evb_err_set(-e, "%s: fdatasync: %s", path, strerror(e));
        }
        close(fd);
    }
    if (fp->synced < cur)
        fp->synced = cur;
    return 0;
}

static bool try_take(struct evb_flusher *fl, struct fpart *fp, uint64_t now)
{
    if (now < fp->next_try)
        return false;
    fp->next_try = now + EVB_LOCK_RETRY_NS;
    int fd = evb_flush_lock(fp->dir, 0);
    if (fd < 0)
        return false;
    struct evb_ring_hdr *h = fp->r->hdr;
    fp->lock_fd = fd;
    /* Acquire: the previous holder's writes below flushed happened before
     * its store; we only append after them. */
    fp->written = atomic_load_explicit(&h->flushed, memory_order_acquire);
    fp->synced = atomic_load_explicit(&h->durable, memory_order_acquire);
    if (fp->synced > fp->written)
        fp->synced = fp->written;
    fp->walk = fp->written;
    fp->hole_pos = EVB_POS_NONE;
    fp->failed = 0;
    fp->last_sync = now;
    atomic_store_explicit(&h->flush_error, 0, memory_order_relaxed);
    int rc = sync_behind(fl, fp);
    if (!rc)
        rc = resume_segment(fl, fp, fp->written);
    if (!rc)
        rc = evb_ring_slot_take(fp->r, EVB_SLOT_FLUSHER, "flusher", 0, &fp->slot);
    if (rc) {
        set_error(fp, rc);
        release_part(fp);
        return false;
    }
    fp->has_slot = true;
    if (!atomic_load(&fl->stop)) /* not for an orphan flush: it lets go soon */
        atomic_store_explicit(&h->flusher, evb_proc_self(), memory_order_relaxed);
    return true;
}

/* ---- one round ---- */

static bool sync_due(struct evb_flusher *fl, struct fpart *fp, uint64_t end, uint64_t now)
{
    if (end <= fp->synced)
        return false;
    const evb_topic_config *cfg = &fl->tm->cfg;
    return cfg->durability == EVB_DURABILITY_SYNC ||
           atomic_load_explicit(&fp->r->hdr->sync_waiters, memory_order_seq_cst) ||
           now - fp->last_sync >= (uint64_t)cfg->flush_ms * 1000000ull ||
           end % cfg->segment_bytes == 0 || atomic_load(&fl->stop);
}

/* Queue this round's write and/or fdatasync for FP. True if queued. */
static bool prepare(struct evb_flusher *fl, struct fpart *fp, uint64_t now)
{
    const evb_topic_config *cfg = &fl->tm->cfg;
    struct evb_ring *r = fp->r;
    fp->busy = false;
    if (fp->lock_fd >= 0 && fp->failed && !atomic_load(&fl->stop)) {
        /* Let go after a failure (a full disk, an I/O error): another
         * process, or this one a second later, tries again from flushed.
         * flush_error stays set for sync waiters until then. */
        release_part(fp);
        fp->next_try = now + EVB_FAIL_RETRY_NS;
        return false;
    }
    if (fp->lock_fd < 0 || fp->failed)
        return false;
    /* Segment full and synced: start the next. */
    if (fp->written == fp->seg_base + cfg->segment_bytes && fp->synced == fp->written) {
        int rc = open_segment(fl, fp, fp->written);
        if (rc) {
            set_error(fp, rc);
            return false;
        }
    }
    /* One write: contiguous in the ring (not past a lap end), inside the
     * segment, at most EVB_WRITE_MAX. */
    uint64_t lap_end = (fp->written | r->mask) + 1;
    uint64_t limit = fp->seg_base + cfg->segment_bytes;
    if (limit > lap_end)
        limit = lap_end;
    uint64_t max = fp->dio_fd >= 0 ? EVB_WRITE_MAX : EVB_WRITE_MAX_CACHED;
    if (limit > fp->written + max)
        limit = fp->written + max;
    walk(fl, fp, limit, now);
    if (fp->failed)
        return false;
    prep_next(fl, fp);
    uint64_t end = fp->walk;
    bool sync = sync_due(fl, fp, end, now);
    if (end == fp->written && !sync)
        return false;
    /* Under O_DIRECT only whole blocks go direct; a partial block at either
     * end goes through the page cache. Every byte is written once, from
     * committed ring bytes at or above written, so nothing below written
     * needs to stay in the ring and nothing past the log's end reaches the
     * file. (Lap and segment ends are block-aligned.) */
    int wfd = fp->seg_fd;
    uint64_t we = end;
    if (fp->dio_fd >= 0 && end > fp->written) {
        uint64_t up = (fp->written + EVB_DIO - 1) & ~(uint64_t)(EVB_DIO - 1);
        uint64_t down = end & ~(uint64_t)(EVB_DIO - 1);
        if (fp->written != up) {
            we = end < up ? end : up;
        } else if (down > fp->written) {
            we = down;
            wfd = fp->dio_fd;
        }
    }
    /* A sync waits for the write that reaches the walk's end. */
    if (we != end)
        sync = false;
    if (we > fp->written) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&fl->ring);
        fp->wlen = (uint32_t)(we - fp->written);
        io_uring_prep_write(sqe, wfd, r->data + (fp->written & r->mask), fp->wlen,
                            fp->written - fp->seg_base);
        io_uring_sqe_set_data64(sqe, (uint64_t)(fp - fl->p) << 1);
        if (sync)
            sqe->flags |= IOSQE_IO_LINK; /* no fdatasync after a failed write */
    }
    if (sync) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&fl->ring);
        io_uring_prep_fsync(sqe, fp->seg_fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, (uint64_t)(fp - fl->p) << 1 | OP_SYNC);
    }
    end = we;
    fp->busy = true;
    fp->op_sync = sync;
    fp->op_end = end;
    fp->wres = end > fp->written ? INT32_MIN : 0;
    fp->sres = sync ? INT32_MIN : 0;
    return true;
}

static void complete(struct evb_flusher *fl, struct fpart *fp, uint64_t now)
{
    fp->busy = false;
    uint64_t start = fp->written;
    if (fp->op_end > start) {
        if (fp->wres < 0) {
            set_error(fp, evb_err_set(fp->wres, "partition %u: segment write: %s", fp->part,
                                      strerror(-fp->wres)));
            return;
        }
        /* A short write (rare: a full disk half-way) is done again whole:
         * written and flushed stay on frame boundaries. */
        if ((uint32_t)fp->wres < fp->wlen)
            return;
        fp->written = fp->op_end;
        /* A death here leaves bytes written past flushed: the next flusher
         * writes them again, the same bytes at the same place. */
        EVB_CRASH_POINT("flush.written");
        /* F1: the write completed, so the kernel has read those bytes of
         * the ring; release lets producers overwrite them. */
        /* flushed must be a frame boundary (readers stop there, a new
         * flusher resumes there); a direct write may end inside a frame,
         * then the boundary below it, recorded by walk(), is published. */
        uint64_t pub = fp->written;
        if (fp->written < fp->walk) {
            if (fp->cover_blk == fp->written)
                pub = fp->cover;
            else
                pub = atomic_load_explicit(&fp->r->hdr->flushed, memory_order_relaxed);
        }
        atomic_store_explicit(&fp->r->hdr->flushed, pub, memory_order_release);
        /* Producers blocked on a full ring sleep on flush_bell (producer.c):
         * one wake per completed write, a few per MiB at most. */
        atomic_fetch_add_explicit(&fp->r->hdr->flush_bell, 1, memory_order_release);
        syscall(SYS_futex, &fp->r->hdr->flush_bell, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
    if (fp->op_sync) {
        if (fp->sres == 0 && fp->written == fp->op_end) {
            fp->synced = fp->written;
            fp->last_sync = now;
            atomic_fetch_add_explicit(&fp->r->hdr->fsyncs, 1, memory_order_relaxed);
            publish_durable(fp->r, fp->synced);
        } else if (fp->sres < 0 && fp->sres != -ECANCELED) {
            set_error(fp, evb_err_set(fp->sres, "partition %u: fdatasync: %s", fp->part,
                                      strerror(-fp->sres)));
        }
    }
    (void)fl;
}

/* Submit what prepare() queued and wait for every completion. */
static void run_ops(struct evb_flusher *fl, unsigned nparts, uint64_t now)
{
    unsigned want = 0;
    for (unsigned i = 0; i < nparts; i++)
        if (fl->p[i].busy)
            want += (fl->p[i].op_end > fl->p[i].written) + fl->p[i].op_sync;
    EVB_CRASH_POINT("flush.submit");
    int rc = io_uring_submit(&fl->ring);
    while (rc == -EINTR || rc == -EAGAIN)
        rc = io_uring_submit(&fl->ring);
    if (rc < 0) {
        for (unsigned i = 0; i < nparts; i++)
            fl->p[i].wres = fl->p[i].sres = rc;
        want = 0;
    }
    for (unsigned got = 0; got < want;) {
        struct io_uring_cqe *cqe;
        rc = io_uring_wait_cqe(&fl->ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (rc < 0)
            break;
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        struct fpart *fp = &fl->p[ud >> 1];
        if (ud & OP_SYNC)
            fp->sres = cqe->res;
        else
            fp->wres = cqe->res;
        io_uring_cqe_seen(&fl->ring, cqe);
        got++;
    }
    for (unsigned i = 0; i < nparts; i++)
        if (fl->p[i].busy)
            complete(fl, &fl->p[i], now);
}

/* ---- retention ---- */

/* Smallest position any named consumer of the topic has committed, from
 * the cursor files on disk; UINT64_MAX when there is none. */

static void retain(struct evb_flusher *fl, struct fpart *fp, uint64_t now_real)
{
    const evb_topic_config *cfg = &fl->tm->cfg;
    bool until_consumed = cfg->flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED;
    if (!cfg->retain_bytes && !cfg->retain_ms && !(until_consumed && cfg->retain_cap_bytes))
        return;
    uint64_t *bases;
    size_t n;
    if (evb_seg_list(fp->dir, &bases, &n) < 0)
        return;
    uint64_t keep_from = fp->seg_base; /* never the segment being written */
    uint64_t floor = until_consumed ? evb_consumers_min_committed(fl->tm, fp->part)
                                    : UINT64_MAX;
    size_t drop = 0;
    uint64_t unconsumed = 0;
    /* Segments built ahead of the one being written hold nothing yet. */
    size_t used = n;
    while (used > 1 && bases[used - 1] > keep_from)
        used--;
    for (; drop < n && bases[drop] < keep_from; drop++) {
        uint64_t total = (used - drop) * cfg->segment_bytes;
        bool big = cfg->retain_bytes && total > cfg->retain_bytes;
        bool old = false;
        if (cfg->retain_ms) {
            char path[PATH_MAX + 32];
            struct stat st;
            evb_seg_path(path, sizeof path, fp->dir, bases[drop], "log");
            old = stat(path, &st) == 0 &&
                  now_real - ((uint64_t)st.st_mtim.tv_sec * 1000000000ull +
                              (uint64_t)st.st_mtim.tv_nsec) >
                      cfg->retain_ms * 1000000ull;
        }
        bool capped = until_consumed && cfg->retain_cap_bytes && total > cfg->retain_cap_bytes;
        bool consumed = bases[drop] + cfg->segment_bytes <= floor;
        if (!((big || old) && (consumed || capped)) && !capped)
            break;
        if (!consumed) {
            /* The cap wins over a consumer that is behind: count it. */
            uint64_t from = floor > bases[drop] ? floor : bases[drop];
            unconsumed += bases[drop] + cfg->segment_bytes - from;
        }
    }
    if (drop == n)
        drop = n - 1; /* keep at least one segment, whatever the listing says */
    if (drop) {
        /* The new log start, the oldest kept segment's first event, is
         * published before anything is removed: a reader that finds a
         * segment gone moves to the log start (bus/consumer.c), which
         * must not name a removed segment. Relaxed: readers take the pair
         * as a hint that the seek or read then checks against the files. */
        uint64_t start = bases[drop], off = UINT64_MAX;
        struct evb_idx *idx;
        if (evb_idx_load(fp->dir, start, &idx) == 0) {
            off = idx->base_offset;
            free(idx);
        } else {
            struct evb_seg s;
            struct evb_seg_frame sf;
            struct evb_seg_geom g = {cfg->segment_bytes, cfg->ring_bytes, fp->r->max_frame};
            if (evb_seg_map(&s, fp->dir, start, cfg->segment_bytes) == 0 &&
                evb_seg_frame(&s, &g, start, &sf) && sf.offset != EVB_SEG_NO_OFFSET)
                off = sf.offset;
            evb_seg_unmap(&s);
        }
        if (off == UINT64_MAX) {
            free(bases);
            return; /* cannot tell where the log would start: keep it all */
        }
        struct evb_ring_hdr *h = fp->r->hdr;
        atomic_store_explicit(&h->log_start_offset, off, memory_order_relaxed);
        atomic_store_explicit(&h->log_start_pos, start, memory_order_relaxed);
        /* Statistic: relaxed. */
        atomic_fetch_add_explicit(&h->retention_unconsumed, unconsumed, memory_order_relaxed);
    }
    for (size_t i = 0; i < drop; i++) {
        char path[PATH_MAX + 32];
        evb_seg_path(path, sizeof path, fp->dir, bases[i], "idx");
        unlink(path);
        evb_seg_path(path, sizeof path, fp->dir, bases[i], "log");
        unlink(path);
    }
    free(bases);
}


/* ---- the thread ---- */

static void sleep_idle(struct evb_flusher *fl, uint64_t now)
{
    struct evb_topic_map *tm = fl->tm;
    _Atomic uint32_t *bells[EVB_MAX_PARTITIONS];
    uint32_t vals[EVB_MAX_PARTITIONS];
    struct fpart *held[EVB_MAX_PARTITIONS];
    unsigned n = 0;
    uint64_t wait = EVB_IDLE_WAIT_NS;
    bool ready = false;
    for (uint32_t i = 0; i < tm->nparts; i++) {
        struct fpart *fp = &fl->p[i];
        if (fp->lock_fd < 0) {
            if (wait > EVB_LOCK_RETRY_NS)
                wait = EVB_LOCK_RETRY_NS;
            continue;
        }
        if (fp->failed)
            continue;
        evb_ring_waiter_set(fp->r, fp->slot, &vals[n]);
        bells[n] = &fp->r->hdr->bell;
        held[n++] = fp;
        /* D1: seq_cst load after the waiter bit's seq_cst RMW. */
        uint64_t st = atomic_load_explicit(&evb_ring_frame(fp->r, fp->walk)->stamp,
                                           memory_order_seq_cst);
        if (st == (fp->walk | EVB_STAMP_DATA) || st == (fp->walk | EVB_STAMP_PAD) ||
            (fp->synced < fp->written &&
             atomic_load_explicit(&fp->r->hdr->sync_waiters, memory_order_seq_cst)))
            ready = true;
        if (fp->hole_pos != EVB_POS_NONE && wait > fp->r->dead_ns / 4)
            wait = fp->r->dead_ns / 4;
        if (fp->synced < fp->written) {
            uint64_t due = fp->last_sync + (uint64_t)tm->cfg.flush_ms * 1000000ull;
            uint64_t left = due > now ? due - now : 1;
            if (wait > left)
                wait = left;
        }
    }
    if (!ready && !atomic_load(&fl->stop)) {
        if (n) {
            evb_bell_wait(bells, vals, n, wait);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + wait;
            ts.tv_sec += (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            pthread_mutex_lock(&fl->mu);
            if (!atomic_load(&fl->stop))
                pthread_cond_timedwait(&fl->cv, &fl->mu, &ts);
            pthread_mutex_unlock(&fl->mu);
        }
    }
    for (unsigned i = 0; i < n; i++)
        evb_ring_waiter_clear(held[i]->r, held[i]->slot);
}

/* Flush every held partition up to its committed frontier and sync it:
 * the last thing a stopping flusher does before letting go. */
static void drain_once(struct evb_flusher *fl)
{
    for (int rounds = 0; rounds < 1000; rounds++) {
        uint64_t now = evb_mono_ns();
        bool any = false;
        for (uint32_t i = 0; i < fl->tm->nparts; i++)
            any |= prepare(fl, &fl->p[i], now);
        if (!any)
            return;
        run_ops(fl, fl->tm->nparts, now);
    }
}

/* Drain, and when a dead producer's hole stops it short of the tail, wait
 * the bound (2 dead_ns) for the hole to be padded and drain again. */
static void drain(struct evb_flusher *fl)
{
    uint64_t until = evb_mono_ns() + 2 * fl->tm->rings[0].dead_ns;
    for (;;) {
        drain_once(fl);
        bool short_of_tail = false;
        for (uint32_t i = 0; i < fl->tm->nparts; i++) {
            struct fpart *fp = &fl->p[i];
            uint64_t t, toff;
            evb_ring_load_tail(fp->r, &t, &toff);
            if (fp->lock_fd >= 0 && !fp->failed && fp->written < t)
                short_of_tail = true;
        }
        if (!short_of_tail || evb_mono_ns() >= until)
            return;
        struct timespec nap = {0, 2 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

static void *flusher_main(void *arg)
{
    struct evb_flusher *fl = arg;
    uint32_t n = fl->tm->nparts;
    while (!atomic_load(&fl->stop)) {
        uint64_t now = evb_mono_ns();
        for (uint32_t i = 0; i < n; i++)
            if (fl->p[i].lock_fd < 0)
                try_take(fl, &fl->p[i], now);
        bool any = false;
        for (uint32_t i = 0; i < n; i++)
            any |= prepare(fl, &fl->p[i], now);
        if (any)
            run_ops(fl, n, now);
        if (now >= fl->next_retain) {
            fl->next_retain = now + EVB_RETAIN_EVERY_NS;
            uint64_t real = evb_real_ns();
            for (uint32_t i = 0; i < n; i++)
                if (fl->p[i].lock_fd >= 0)
                    retain(fl, &fl->p[i], real);
        }
        if (!any)
            sleep_idle(fl, now);
    }
    drain(fl);
    for (uint32_t i = 0; i < n; i++)
        release_part(&fl->p[i]);
    return NULL;
}

static struct evb_flusher *flusher_new(struct evb_topic_map *tm)
{
    struct evb_flusher *fl = calloc(1, sizeof *fl + tm->nparts * sizeof fl->p[0]);
    if (!fl)
        return NULL;
    fl->tm = tm;
    for (uint32_t i = 0; i < tm->nparts; i++) {
        struct fpart *fp = &fl->p[i];
        fp->r = &tm->rings[i];
        fp->part = i;
        fp->lock_fd = fp->seg_fd = fp->idx_fd = fp->dio_fd = -1;
        fp->hole_pos = EVB_POS_NONE;
        evb_part_dir(tm, i, fp->dir, sizeof fp->dir);
    }
    int rc = io_uring_queue_init(2 * tm->nparts + 2, &fl->ring, 0);
    if (rc < 0) {
        free(fl);
        evb_err_set(rc, "io_uring_queue_init: %s", strerror(-rc));
        return NULL;
    }
    fl->uring_ok = true;
    /* The page cache by default: with 1 MiB writes and producers that
     * sleep while blocked it measured 1.37-1.51 GB/s of 1 KiB events
     * against 1.22-1.34 GB/s for O_DIRECT (perf/RESULTS.md), though
     * O_DIRECT costs the flusher a third of the CPU and leaves less to
     * sync at the end. EVBUS_FLUSH_DIRECT=1 selects O_DIRECT. */
    const char *d = getenv("EVBUS_FLUSH_DIRECT");
    fl->direct = d && *d == '1';
    /* SYNC topics write small groups: split into head, blocks and tail
     * under O_DIRECT they took 2.5 writes per fdatasync and lost ~30% to
     * the page cache path (perf/RESULTS.md). */
    if (tm->cfg.durability == EVB_DURABILITY_SYNC)
        fl->direct = false;
    all_add(fl);
    return fl;
}

static void flusher_free(struct evb_flusher *fl)
{
    all_remove(fl);
    if (fl->uring_ok)
        io_uring_queue_exit(&fl->ring);
    free(fl);
}

int evb_flusher_get(evb_bus *bus, struct evb_topic_map *tm, struct evb_flusher **out)
{
    pthread_mutex_lock(&bus->lock);
    for (struct evb_flusher *f = bus->flushers; f; f = f->next) {
        if (!strcmp(f->tm->ddir, tm->ddir)) {
            f->refs++;
            pthread_mutex_unlock(&bus->lock);
            *out = f;
            return 0;
        }
    }
    struct evb_topic_map *own;
    int rc = evb_topic_map_open(bus, tm->name, &own);
    if (rc) {
        pthread_mutex_unlock(&bus->lock);
        return rc;
    }
    struct evb_flusher *fl = flusher_new(own);
    if (!fl) {
        evb_topic_map_close(own);
        pthread_mutex_unlock(&bus->lock);
        return -ENOMEM;
    }
    fl->bus = bus;
    fl->refs = 1;
    pthread_mutex_init(&fl->mu, NULL);
    pthread_cond_init(&fl->cv, NULL);
    /* Take what locks are free before returning, so a producer that
     * publishes and syncs at once does not wait for the first retry. */
    uint64_t now = evb_mono_ns();
    for (uint32_t i = 0; i < own->nparts; i++)
        try_take(fl, &fl->p[i], now);
    rc = pthread_create(&fl->thread, NULL, flusher_main, fl);
    if (rc) {
        for (uint32_t i = 0; i < own->nparts; i++)
            release_part(&fl->p[i]);
        flusher_free(fl);
        evb_topic_map_close(own);
        pthread_mutex_unlock(&bus->lock);
        return -rc;
    }
    fl->next = bus->flushers;
    bus->flushers = fl;
    pthread_mutex_unlock(&bus->lock);
    *out = fl;
    return 0;
}

void evb_flusher_put(evb_bus *bus, struct evb_flusher *fl)
{
    if (!fl)
        return;
    pthread_mutex_lock(&bus->lock);
    if (--fl->refs) {
        pthread_mutex_unlock(&bus->lock);
        return;
    }
    for (struct evb_flusher **pp = &bus->flushers; *pp; pp = &(*pp)->next) {
        if (*pp == fl) {
            *pp = fl->next;
            break;
        }
    }
    pthread_mutex_unlock(&bus->lock);
    pthread_mutex_lock(&fl->mu);
    atomic_store(&fl->stop, true);
    pthread_cond_broadcast(&fl->cv);
    pthread_mutex_unlock(&fl->mu);
    /* Out of its doorbell sleep. (Every ring: which locks the thread holds
     * is the thread's business; a spare wake costs nothing.) */
    for (uint32_t i = 0; i < fl->tm->nparts; i++)
        evb_ring_wake(&fl->tm->rings[i]);
    pthread_join(fl->thread, NULL);
    struct evb_topic_map *tm = fl->tm;
    pthread_mutex_destroy(&fl->mu);
    pthread_cond_destroy(&fl->cv);
    flusher_free(fl);
    evb_topic_map_close(tm);
}

int evb_flush_orphans(struct evb_topic_map *tm)
{
    struct evb_flusher *fl = NULL;
    int rc = 0;
    for (uint32_t i = 0; i < tm->nparts; i++) {
        struct evb_ring_hdr *h = tm->rings[i].hdr;
        uint64_t t, toff;
        evb_ring_load_tail(&tm->rings[i], &t, &toff);
        uint64_t d = atomic_load_explicit(&h->durable, memory_order_acquire);
        if (d >= t)
            continue; /* nothing to do: don't even try the lock */
        /* A live flusher is between lock retries, or busy: its job. */
        uint64_t fo = atomic_load_explicit(&h->flusher, memory_order_relaxed);
        if (fo && evb_proc_alive(fo))
            continue;
        if (!fl) {
            if (!(fl = flusher_new(tm)))
                return -ENOMEM;
            /* No thread: stop set means "sync what you write" (sync_due). */
            atomic_store(&fl->stop, true);
        }
        struct fpart *fp = &fl->p[i];
        if (!try_take(fl, fp, evb_mono_ns()))
            continue; /* someone is flushing it */
        /* Up to what is committed now; a dead producer's hole at the
         * frontier is padded within dead_ns, so drain() waits that much. */
        drain(fl);
        if (fp->failed && !rc)
            rc = fp->failed;
        release_part(fp);
    }
    if (fl)
        flusher_free(fl);
    return rc;
}

/* ---- evbus flushd ---- */

struct flushd_topic {
    char name[EVB_NAME_MAX + 1];
    struct evb_flusher *fl;
    bool seen;
};

struct flushd {
    struct flushd_topic *t;
    size_t n, cap;
};

static int flushd_seen(const char *topic, void *arg)
{
    struct flushd *d = arg;
    for (size_t i = 0; i < d->n; i++) {
        if (!strcmp(d->t[i].name, topic)) {
            d->t[i].seen = true;
            return 0;
        }
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct flushd_topic *t = realloc(d->t, cap * sizeof *t);
        if (!t)
            return 0;
        d->t = t;
        d->cap = cap;
    }
    struct flushd_topic *t = &d->t[d->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", topic);
    t->seen = true;
    return 0;
}

EVB_EXPORT int evb_bus_flushd(evb_bus *bus, const volatile int *stop)
{
    if (!bus || !stop)
        return -EINVAL;
    struct flushd d = {0};
    int rc = 0;
    while (!*stop) {
        for (size_t i = 0; i < d.n; i++)
            d.t[i].seen = false;
        int n = evb_topic_list(bus, flushd_seen, &d);
        if (n < 0) {
            rc = n;
            break;
        }
        for (size_t i = 0; i < d.n; i++) {
            struct flushd_topic *t = &d.t[i];
            if (!t->seen && t->fl) {
                /* Deleted: let its flusher go. */
                evb_flusher_put(bus, t->fl);
                t->fl = NULL;
            } else if (t->seen && !t->fl) {
                struct evb_topic_map *tm;
                if (evb_topic_map_open(bus, t->name, &tm))
                    continue;
                if (tm->ddir[0])
                    evb_flusher_get(bus, tm, &t->fl);
                evb_topic_map_close(tm);
            }
        }
        for (int i = 0; i < 10 && !*stop; i++) {
            struct timespec nap = {0, 100 * 1000 * 1000};
            nanosleep(&nap, NULL);
        }
    }
    for (size_t i = 0; i < d.n; i++)
        evb_flusher_put(bus, d.t[i].fl);
    free(d.t);
    return rc;
}
