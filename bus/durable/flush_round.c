/*
 * flush_round.c - one round of a flusher: walk each held partition's
 * committed frames, queue a write of them straight from the ring mapping
 * (and a linked fdatasync when due) on io_uring, wait for the completions
 * and publish flushed (F1, F2) and durable (S2; edges in durable.h);
 * through the page cache, start write-back of what was written (kick).
 * Locks are flush_lock.c's, segment switches flush_segment.c's, the
 * thread flusher.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "flush_internal.h"
#include "mark_format.h"

/* io_uring user_data: partition index << 1 | 1 for the fdatasync. */
#define OP_SYNC 1u

/*
 * Walk committed frames from fp->walk, at most to LIMIT, as a reader
 * would: stamps with acquire (pairs with R1/R2 of the producers and the
 * padders' CAS), every length checked against the ring. Stops at the first
 * frame not committed, and times it: a hole left by a dead producer is
 * padded within dead_ns like any reader would (evb_ring_unblock).
 */
static void walk(struct evb_flush *fl, struct fpart *fp, uint64_t limit)
{
    struct evb_ring *r = fp->r;
    uint64_t pos = fp->walk;
    while (pos < limit) {
        struct evb_frame *f = evb_ring_frame(r, pos);
        uint64_t room = r->capacity - (pos & r->mask);
        /* A1: acquire pairs with the commit (R1/R2) or a padder's CAS. */
        uint64_t stamp = atomic_load_explicit(&f->stamp, memory_order_acquire);
        struct evb_frame_step st;
        int kind = evb_frame_decode(f, stamp, pos, room, r->max_frame, r->max_event, &st);
        if (kind == EVB_FRAME_NONE) {
            /* Not committed: time it if it is a hole (shm/pad.c). */
            int rc = evb_ring_hole_check(r, &fp->hole, pos);
            if (rc == 1)
                continue; /* padded or committed now: look again */
            if (rc < 0) {
                /* Damage no padder can explain: stop, and tell the sync
                 * waiters and producers rather than wait for ever. */
                fp->walk = pos;
                evb_flush_fail(fp, evb_err_prefix(rc, "flushing stopped"));
                return;
            }
            break;
        }
        if (kind == EVB_FRAME_BAD) {
            fp->walk = pos;
            evb_flush_fail(fp, evb_err_set(-EBADMSG, "partition %u: %s %llu at position "
                                           "%llu; flushing stopped", fp->part, st.bad,
                                           (unsigned long long)st.bad_value,
                                           (unsigned long long)pos));
            return;
        }
        if (st.offset != EVB_FRAME_NO_OFFSET) {
            evb_flush_index_note(fl, fp, pos, st.offset);
            fp->walk_offset = st.offset + st.events;
            fp->walk_offset_at = pos + st.skip;
        } else if (fp->walk_offset_at == pos) {
            fp->walk_offset_at = pos + st.skip; /* a stamp-only pad voids none */
        }
        if (kind == EVB_FRAME_DATA && f->timestamp_ns > fp->max_ts)
            fp->max_ts = f->timestamp_ns;
        /* The frame [pos, pos + skip) covers the block start blk: a frame
         * boundary flushed may be published at under O_DIRECT. */
        uint64_t blk = (pos + st.skip - 1) & ~(uint64_t)(EVB_DIO - 1);
        if (blk >= pos) {
            fp->cover = pos;
            fp->cover_blk = blk;
        }
        pos += st.skip;
        fp->hole.pos = EVB_POS_NONE;
    }
    fp->walk = pos;
}

bool evb_flush_sync_due(struct evb_flush *fl, struct fpart *fp, uint64_t end, uint64_t now,
                        uint64_t *defer_until)
{
    const evb_topic_config *cfg = &fl->cfg;
    /* A segment's end is ours to sync, whoever synced it: its switch
     * waits for our own fdatasync, so that "every segment below the one
     * being written is synced" holds whatever the durable word says
     * (leaders rely on it, durable_wait.c). */
    bool seg_end = end % cfg->segment_bytes == 0 && end == fp->written;
    if (end <= fp->synced && !(seg_end && fp->self_synced < end))
        return false;
    bool must = seg_end || evb_flush_stopping(fl);
    struct evb_ring_hdr *h = fp->r->hdr;
    /* S3: seq_cst, as the waiter's count made before its commit (which
     * our walk saw with acquire). */
    if (!must && atomic_load_explicit(&h->lead_waiters, memory_order_seq_cst)) {
        /* Waiters who lead fdatasync what we wrote themselves, while we
         * go on writing. We sync only if none has for a while: a short
         * while when no round runs (a count left by a killed waiter), a
         * long one while a leader's round runs (a slow disk; a leader
         * stopped in its fdatasync). S3: relaxed, a hint. */
        bool running = atomic_load_explicit(&h->sync_lead[0], memory_order_relaxed) != 0;
        uint64_t since = fp->synced < fp->written ? fp->unsynced_since : now;
        uint64_t until = since + (running ? EVB_LEAD_HOLD_NS : EVB_LEAD_DEFER_NS);
        if (now < until) {
            if (defer_until)
                *defer_until = until;
            return false;
        }
        return true;
    }
    /* S2: seq_cst load of sync_waiters; Dekker with the waiter's seq_cst
     * count then load of durable (durable_wait.c). */
    return must || cfg->durability == EVB_DURABILITY_SYNC ||
           atomic_load_explicit(&h->sync_waiters, memory_order_seq_cst) ||
           now - fp->last_sync >= (uint64_t)cfg->flush_ms * 1000000ull;
}

/* The durable mark tells recovery what cannot be a torn tail (recover.c);
 * written once the position is synced, so never ahead of it. */
static void mark_write(struct evb_flush *fl, struct fpart *fp, uint64_t pos, uint64_t off);

/*
 * S3: what sync leaders synced (durable_wait.c) is ours too: no second
 * fdatasync for it, and the mark follows. Believed only up to what we
 * wrote, on a frame boundary: anything else is not a leader's (a leader
 * publishes a flushed position, and only we publish flushed). A leader's
 * error (flush_error, set by evb_flush_tell) stops us as our own would:
 * after a write-back error the kernel reports success for those pages.
 */
static void absorb_durable(struct evb_flush *fl, struct fpart *fp, uint64_t now)
{
    struct evb_ring_hdr *h = fp->r->hdr;
    /* E1: set by a leader before it rang the bells. */
    int e = evb_flush_error_load(fp->r);
    if (e) {
        fp->failed = e;
        return;
    }
    /* S2: acquire, pairs with the leader's seq_cst CAS of durable, made
     * after its fdatasync returned. */
    uint64_t d = atomic_load_explicit(&h->durable, memory_order_acquire);
    if (d <= fp->synced || d > fp->written || d % EVB_FRAME_ALIGN)
        return;
    fp->synced = d;
    fp->unsynced_since = now; /* what is left unsynced waits from now */
    /* The mark names the latest written end whose offset we noted below
     * D, every EVB_MARK_EVERY_NS at most here: a system call per round in
     * front of the next write is what a leader saves the round. */
    if (now - fp->mark_at < EVB_MARK_EVERY_NS)
        return;
    uint64_t best = 0, off = 0;
    for (unsigned i = 0; i < EVB_PUB_NOTES; i++) {
        if (fp->pub_pos[i] <= d && fp->pub_pos[i] > best) {
            best = fp->pub_pos[i];
            off = fp->pub_off[i];
        }
    }
    if (best > fp->mark_pos)
        mark_write(fl, fp, best, off);
}

/*
 * Zeros to write after a SYNC topic's write through the page cache that
 * ends at END, inside a block: up to the block's end. A write that covers
 * only part of a block whose page is not cached makes the file system
 * read the block from disk first, inside the write: one synchronous read
 * a round, since each round ends inside a new block (a SYNC topic's
 * segments are zeroed O_DIRECT ahead of the writes, so none of their pages
 * is cached), on the path of every acknowledgement (perf/RESULTS.md, issue
 * 13). Covered whole, the block needs no read. The file holds zeros there
 * already (reserved: zeroed or allocated unwritten, both read as zeros),
 * or bytes past flushed that an earlier flusher wrote and no one was told
 * are durable (durable never passes flushed), which this round's
 * successors write again: so nothing a reader or a rebuild may rely on
 * changes. Never past the reserved disk, nor past the segment. Not for
 * ASYNC topics: their reserved disk is never zeroed (unwritten extents
 * are not read), and there, padded, some written pages escaped the
 * write-back kicks for good (test writeback/near_the_segment_end_*).
 */
static uint32_t tail_pad(const struct evb_flush *fl, const struct fpart *fp, int wfd, uint64_t end)
{
    if (fl->cfg.durability != EVB_DURABILITY_SYNC || wfd != fp->seg_fd ||
        end % EVB_PAD_BLOCK == 0)
        return 0;
    uint64_t up = (end | (EVB_PAD_BLOCK - 1)) + 1;
    if (up > fp->reserved || up > fp->seg_base + fl->cfg.segment_bytes)
        return 0;
    return (uint32_t)(up - end);
}

/* Queue this round's write and/or fdatasync for FP. True if queued. */
bool evb_flush_prepare(struct evb_flush *fl, struct fpart *fp, uint64_t now)
{
    const evb_topic_config *cfg = &fl->cfg;
    struct evb_ring *r = fp->r;
    fp->busy = false;
    if (fp->lock_fd >= 0 && fp->failed && !evb_flush_stopping(fl)) {
        /* Let go after a failure (a full disk, an I/O error): another
         * process, or this one a second later, tries again from flushed.
         * flush_error stays set for sync waiters until then. */
        evb_flush_release(fp);
        fp->next_try = now + EVB_FAIL_RETRY_NS;
        return false;
    }
    if (fp->lock_fd < 0 || fp->failed)
        return false;
    evb_sync_heal(r, now);
    absorb_durable(fl, fp, now);
    if (fp->failed)
        return false; /* let go at the next round, as after our own error */
    /* Once a round, not per frame: a tail that cannot follow what this
     * flusher wrote is a garbage word, not a reason to walk. */
    int bad = evb_flush_check_tail(fp);
    if (bad) {
        evb_flush_fail(fp, bad);
        return false;
    }
    /* Segment full and synced by our own fdatasync: start the next. */
    if (fp->written == fp->seg_base + cfg->segment_bytes && fp->self_synced == fp->written) {
        int rc = evb_flush_seg_open(fl, fp, fp->written);
        if (rc) {
            evb_flush_fail(fp, rc);
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
    walk(fl, fp, limit);
    if (fp->failed)
        return false;
    /* Disk for the walk reserved before a byte of it is written
     * (flush_segment.c): a full disk stops here, nothing lost. */
    int rc = evb_flush_prep_next(fl, fp);
    if (rc) {
        evb_flush_fail(fp, rc);
        return false;
    }
    uint64_t end = fp->walk;
    /* A sync waiter's own round syncs what it writes (evb_flush_inline). */
    bool sync = (fp->force_sync && end > fp->synced) ||
                evb_flush_sync_due(fl, fp, end, now, NULL);
    if (end == fp->written && !sync) {
        /* Idle: the mark catches up with what leaders synced. */
        if (fp->mark_pos != fp->synced && fp->walk_offset_at == fp->synced)
            mark_write(fl, fp, fp->synced, fp->walk_offset);
        return false;
    }
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
    fp->wpad = 0;
    if (we > fp->written) {
        fp->wlen = (uint32_t)(we - fp->written);
        fp->wfd = wfd;
        fp->woff = fp->written - fp->seg_base;
        fp->wpad = tail_pad(fl, fp, wfd, we);
    }
    end = we;
    fp->busy = true;
    fp->op_sync = sync;
    fp->op_end = end;
    fp->wres = end > fp->written ? INT32_MIN : 0;
    fp->sres = sync ? INT32_MIN : 0;
    return true;
}

/*
 * The mark could not be written (EIO, ENOSPC, EACCES, a directory planted
 * at its name): the events are synced all the same, so producers and
 * sync waiters are not failed for it. What must not happen is a rebuild
 * trusting the older mark left there as the end of what was synced: it
 * would cut damaged synced frames past it as a torn tail and hand their
 * offsets out again. So the old mark is removed; without a valid one a
 * rebuild treats its cut as unbounded, reports it and skips the offsets
 * (recover.c). Where it cannot be removed and still reads as valid, the
 * partition fails as a write error would (flush_error): syncing on would
 * promise what a rebuild cannot keep. Either way the partition's damage
 * report says, once, that its mark is not being kept (`evbus info`).
 */
static void mark_failed(struct evb_flush *fl, struct fpart *fp, int err)
{
    char path[PATH_MAX + 16];
    struct evb_seg_mark m;
    snprintf(path, sizeof path, "%s/" EVB_MARK_NAME, fp->dir);
    (void)unlink(path); /* a regular file or a symlink itself; nothing else */
    int state = evb_seg_mark_load(fp->dir, &m);
    if (!fp->mark_noted) {
        fp->mark_noted = true;
        evb_seg_damage_mark(fp->dir, state == EVB_SEG_MARK_OK ? EVB_SEG_MARK_INVALID : state,
                            fl->cfg.file_mode);
    }
    if (state == EVB_SEG_MARK_OK)
        evb_flush_fail(fp, evb_err_set(err, "partition %u: %s cannot be written (%s) nor "
                                       "removed: a rebuild would take its older position for "
                                       "the synced end; flushing stopped", fp->part, path,
                                       strerror(-err)));
}

static void mark_write(struct evb_flush *fl, struct fpart *fp, uint64_t pos, uint64_t off)
{
    fp->mark_at = evb_mono_ns();
    fp->mark_pos = pos;
    int rc = evb_seg_mark_durable(fp->dir, pos, off, fl->cfg.file_mode);
    if (rc)
        mark_failed(fl, fp, rc);
}

/* Before what a round wrote or synced is published: the file written
 * through must still be the segment its name holds (evb_seg_check_file),
 * else readers and a rebuild would miss what we call flushed and durable.
 * Two system calls (fstat, stat) a round, next to its write and fdatasync. */
static int seg_still_ours(struct evb_flush *fl, struct fpart *fp)
{
    char path[PATH_MAX + 32];
    if (evb_seg_path(path, sizeof path, fp->dir, fp->seg_base, "log"))
        return 0;
    int rc = evb_seg_check_file(fp->seg_fd, path, fl->cfg.segment_bytes, NULL);
    return rc ? evb_err_prefix(rc, "partition %u: flushing stopped", fp->part) : 0;
}

/*
 * Through the page cache the kernel starts writing dirty pages back only
 * past dirty_background_ratio (gigabytes on a large host) or after
 * dirty_expire (30 s), so the fdatasync at a segment end (or a sync
 * waiter's) found the whole segment dirty and wrote it all while the
 * flusher's one write stream stood still. Write-back of what was written
 * is started every EVB_KICK_BYTES instead: SYNC_FILE_RANGE_WRITE queues
 * the pages and waits for none, and no WAIT flag is passed, so it takes
 * no write-back error from this file's fdatasync (that reports it as
 * before). Nothing is promised on it; an error only ends the kicks where
 * the call is refused (a file system or a seccomp filter without it).
 */
static void kick(struct evb_flush *fl, struct fpart *fp)
{
    if (fl->no_kick || fp->dio_fd >= 0 || fp->synced >= fp->written)
        return;
    /* Below synced nothing is dirty (an fdatasync of ours or a leader's).
     * Whole pages only: a page the next write fills further would be
     * dirtied again while its write-back runs, and the next kick skips a
     * page under write-back (it waits for none), leaving it to the
     * fdatasync. So the page a write ends inside waits for a later kick,
     * and a kick starts at the page its last one stopped in. */
    uint64_t from = fp->kicked > fp->synced ? fp->kicked : fp->synced;
    if (from < fp->seg_base)
        from = fp->seg_base;
    from &= ~(uint64_t)(EVB_KICK_PAGE - 1);
    uint64_t to = fp->written & ~(uint64_t)(EVB_KICK_PAGE - 1);
    /* Near the segment's end every write is kicked: what its fdatasync
     * waits for is then at most one write's worth still in the cache. */
    uint64_t seg_end = fp->seg_base + fl->cfg.segment_bytes;
    if (to <= from || (to < from + EVB_KICK_BYTES && fp->written + EVB_KICK_BYTES < seg_end))
        return;
    if (sync_file_range(fp->seg_fd, (off_t)(from - fp->seg_base), (off_t)(to - from),
                        SYNC_FILE_RANGE_WRITE) == 0) {
        fp->kicked = to;
        return;
    }
    int e = errno;
    if (e == EINVAL || e == ENOSYS || e == EPERM || e == EOPNOTSUPP || e == ESPIPE)
        fl->no_kick = true;
    else
        fp->kicked = to; /* EIO and the like: fdatasync will say */
}

static void complete(struct evb_flush *fl, struct fpart *fp, uint64_t now)
{
    fp->busy = false;
    if (fp->force_sync)
        fp->rounds_inline++;
    else
        fp->rounds_thread++;
    uint64_t start = fp->written;
    bool wrote = fp->op_end > start && fp->wres >= 0 && (uint32_t)fp->wres >= fp->wlen;
    if (wrote || (fp->op_sync && fp->sres == 0)) {
        int rc = seg_still_ours(fl, fp);
        if (rc) {
            evb_flush_fail(fp, rc);
            return;
        }
    }
    if (fp->op_end > start) {
        if (fp->wres < 0) {
            evb_flush_fail(fp, evb_err_set(fp->wres, "partition %u: segment write: %s", fp->part,
                                      strerror(-fp->wres)));
            return;
        }
        /* A short write (rare: a full disk half-way) is done again whole:
         * written and flushed stay on frame boundaries. */
        if ((uint32_t)fp->wres < fp->wlen)
            return;
        if (fp->synced >= fp->written)
            fp->unsynced_since = now; /* the oldest unsynced byte's time */
        fp->written = fp->op_end;
        /* A death here leaves bytes written past flushed: the next flusher
         * writes them again, the same bytes at the same place. */
        EVB_CRASH_POINT("flush.written");
        /* flushed must be a frame boundary (readers stop there, a new
         * flusher resumes there); a direct write may end inside a frame,
         * then the boundary below it, recorded by walk(), is published. */
        uint64_t pub = fp->written;
        if (fp->written < fp->walk) {
            if (fp->cover_blk == fp->written)
                pub = fp->cover;
            else
                /* Relaxed: only this flusher stores flushed. */
                pub = atomic_load_explicit(&fp->r->hdr->flushed, memory_order_relaxed);
        }
        /* F1: release; the write completed, so the kernel has read those
         * bytes of the ring: producers may overwrite them, consumers find
         * them in the segment, a new flusher resumes after them. */
        atomic_store_explicit(&fp->r->hdr->flushed, pub, memory_order_release);
        /* Producers blocked on a full ring sleep on flush_bell (producer.c):
         * one wake per completed write, a few per MiB at most.
         * F2: release bump after the F1 store; pairs with the producer's
         * acquire load of the bell before its retry. */
        evb_bell_ring(&fp->r->hdr->flush_bell);
        /* Sync waiters sleep on sync_bell alone (one futex word: no
         * futex_waitv needed) and lead once their bytes are written (S3).
         * S2: release bump after the F1 store, as above; S5: the classes
         * of the targets now written and not durable. Relaxed: any
         * durable position will do (durable_wait.c, S5). */
        evb_sync_ring(fp->r, atomic_load_explicit(&fp->r->hdr->durable, memory_order_relaxed));
        /* The offset at this end, for the mark a leader's sync lets us
         * write (absorb_durable). */
        if (fp->walk_offset_at == pub) {
            unsigned k = fp->pub_next++ % EVB_PUB_NOTES;
            fp->pub_pos[k] = pub;
            fp->pub_off[k] = fp->walk_offset;
        }
    }
    if (fp->op_sync) {
        if (fp->sres == 0 && fp->written == fp->op_end) {
            fp->synced = fp->written;
            fp->last_sync = now;
            /* Relaxed: a statistic, publishes nothing. */
            atomic_fetch_add_explicit(&fp->r->hdr->fsyncs, 1, memory_order_relaxed);
            fp->self_synced = fp->synced;
            evb_flush_publish_durable(fp->r, fp->synced);
            /* The mark is written every EVB_MARK_EVERY_NS at most, as for
             * a leader's sync (absorb_durable): its dozen system calls
             * would stand between this round and the next one's write
             * (a waiter's round: between the waiter and its answer), a
             * round every ~150 us under a stream of acknowledgements. The
             * idle round catches up. */
            if (fp->walk_offset_at == fp->synced && now >= fp->mark_at + EVB_MARK_EVERY_NS)
                mark_write(fl, fp, fp->synced, fp->walk_offset);
        } else if (fp->sres < 0 && fp->sres != -ECANCELED) {
            evb_flush_fail(fp, evb_err_set(fp->sres, "partition %u: fdatasync: %s", fp->part,
                                      strerror(-fp->sres)));
        }
    }
    if (!fp->failed)
        kick(fl, fp);
}

static const unsigned char pad_zeros[EVB_PAD_BLOCK];

/* The round's write as iovecs in IOV[2] (alive until it completes): its
 * ring bytes, then its pad of zeros (tail_pad). How many. */
static int write_iov(const struct fpart *fp, struct iovec *iov)
{
    iov[0] = (struct iovec){fp->r->data + (fp->written & fp->r->mask), fp->wlen};
    iov[1] = (struct iovec){(void *)pad_zeros, fp->wpad};
    return fp->wpad ? 2 : 1;
}

/*
 * Without io_uring (not built into the kernel, disabled by sysctl, refused
 * by a seccomp filter or an emulator): the same ops with plain system
 * calls, one partition after the other, with the same results io_uring
 * would report, a failed or short write cancelling its linked fdatasync.
 */
static void run_plain(struct fpart *fp)
{
    bool wrote_all = true;
    if (fp->op_end > fp->written) {
        ssize_t n;
        struct iovec iov[2];
        int iovs = write_iov(fp, iov);
        do
            n = pwritev(fp->wfd, iov, iovs, (off_t)fp->woff);
        while (n < 0 && errno == EINTR);
        fp->wres = n < 0 ? -errno : (int32_t)n;
        wrote_all = n >= (ssize_t)fp->wlen;
    }
    if (fp->op_sync)
        fp->sres = !wrote_all ? -ECANCELED : fdatasync(fp->seg_fd) ? -errno : 0;
}

static void run_ops_plain(struct evb_flush *fl, unsigned nparts)
{
    for (unsigned i = 0; i < nparts; i++)
        if (fl->p[i].busy)
            run_plain(&fl->p[i]);
}

/*
 * A sync waiter's rounds (evb_flush_inline, round_mu held): the thread's
 * steps, from the waiter's thread, each syncing what it writes, so its
 * acknowledgement costs one write and one fdatasync and no hand-off. A
 * few rounds at most: a write is cut at a lap's or a segment's end and
 * at EVB_WRITE_MAX_CACHED.
 */
int evb_flush_round_inline(struct evb_flush *fl, struct fpart *fp, uint64_t target,
                           uint64_t deadline)
{
    int rc = 1;
    for (int round = 0; round < 4 && !fp->failed; round++) {
        /* S2: acquire, as a waiter's load of durable. */
        if (atomic_load_explicit(&fp->r->hdr->durable, memory_order_acquire) >= target)
            return 0;
        uint64_t now = evb_mono_ns();
        if (round && now >= deadline)
            break;
        fp->force_sync = true;
        bool queued = evb_flush_prepare(fl, fp, now);
        if (queued) {
            EVB_CRASH_POINT("flush.inline");
            run_plain(fp);
            complete(fl, fp, now);
        }
        fp->force_sync = false;
        if (!queued)
            break;
        rc = 0;
    }
    return rc;
}

/* Submit what evb_flush_prepare() queued and wait for every completion. */
void evb_flush_run_ops(struct evb_flush *fl, unsigned nparts, uint64_t now)
{
    unsigned busy = 0;
    for (unsigned i = 0; i < nparts; i++)
        busy += fl->p[i].busy;
    /* One partition's write (and fdatasync) gains nothing from io_uring
     * but a hand-off to its worker thread and back (~2 wake-ups on the
     * sync path); several run side by side there. */
    if (!fl->uring_ok || busy == 1) {
        EVB_CRASH_POINT("flush.submit");
        run_ops_plain(fl, nparts);
        for (unsigned i = 0; i < nparts; i++)
            if (fl->p[i].busy)
                complete(fl, &fl->p[i], now);
        return;
    }
    unsigned want = 0;
    for (unsigned i = 0; i < nparts; i++) {
        struct fpart *fp = &fl->p[i];
        if (!fp->busy)
            continue;
        if (fp->op_end > fp->written) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&fl->ring);
            unsigned iovs = (unsigned)write_iov(fp, fp->wiov);
            io_uring_prep_writev(sqe, fp->wfd, fp->wiov, iovs, fp->woff);
            io_uring_sqe_set_data64(sqe, (uint64_t)i << 1);
            if (fp->op_sync)
                sqe->flags |= IOSQE_IO_LINK; /* no fdatasync after a failed write */
            want++;
        }
        if (fp->op_sync) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&fl->ring);
            io_uring_prep_fsync(sqe, fp->seg_fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(sqe, (uint64_t)i << 1 | OP_SYNC);
            want++;
        }
    }
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
