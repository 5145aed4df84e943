/*
 * flush_segment.c - the segment a partition's flusher writes: reserving
 * its disk ahead of the writes, switching to the next one (built ahead by
 * a helper thread), resuming inside one after a takeover, and noting
 * sparse index entries on the way. The files' format and checks are
 * segment.c's and index.c's.
 *
 * Disk is reserved as a segment fills, not a segment at once (256 idle
 * partitions would otherwise hold 256 whole segments): a new segment has
 * its first EVB_SEG_RESERVE_FIRST bytes reserved, and the helper thread
 * reserves the next step when the walk comes within half a step of the
 * reserved end, steps doubling up to EVB_RESERVE_STEP_MAX. No byte is
 * written past the reserved end: when the helper has not got there, the
 * flusher reserves in line, and a full disk fails the partition with
 * -ENOSPC before the write (flush_round.c), the events staying in the ring.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "flush_internal.h"
#include "safe_open.h"
#include "seg_internal.h"

void evb_flush_seg_close(struct fpart *fp)
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

/* Reserve [fp->reserved, to) of the segment being written. */
static int reserve(struct fpart *fp, uint64_t to)
{
    char path[PATH_MAX + 32];
    evb_seg_path(path, sizeof path, fp->dir, fp->seg_base, "log");
    return evb_seg_reserve(fp->seg_fd, path, fp->reserved - fp->seg_base, to - fp->reserved,
                           fp->zero_fill);
}

static void *prep_main(void *arg)
{
    struct fpart *fp = arg;
    /* The flusher joins this thread before it writes at or past
     * fp->reserved, switches segments or closes seg_fd: until then the
     * fields read here stay as they were at pthread_create. */
    if (fp->prep_to) {
        fp->prep_rc = reserve(fp, fp->prep_to);
        return NULL;
    }
    /* tmp + rename: the flusher never sees a half-built file, and waits
     * for this thread before it opens the segment itself. */
    int fd = evb_seg_create(fp->dir, fp->prep_base, fp->seg_bytes, fp->zero_fill, fp->mode);
    if (fd >= 0)
        close(fd);
    return NULL;
}

void evb_flush_prep_join(struct fpart *fp)
{
    if (fp->prep_running) {
        pthread_join(fp->prep, NULL);
        /* A failed step is tried again in line when it is needed. */
        if (fp->prep_to && !fp->prep_rc)
            fp->reserved = fp->prep_to;
    }
    fp->prep_running = false;
    fp->prep_to = 0;
}

/*
 * Whether the next reservation step of FP's segment is zero-filled (a
 * SYNC topic's). Zeros ahead spare each fdatasync the journal commit that
 * writing into unwritten extents costs (one-at-a-time sync publishes ran
 * 1.4-1.8 times as fast with them, perf/RESULTS.md). But they cost a write
 * of every byte, and zeroing a step beside the rounds stalls them: at 250 k
 * pipelined acknowledgements/s it took their p99 from ~1.5 to ~4-5 ms. So
 * only while fdatasyncs come often for the bytes written: fewer than
 * EVB_ZERO_BYTES_PER_SYNC a sync since the last step, where a commit saved
 * is worth more than the zeros' write. The fdatasync count is the ring's
 * statistic, leaders' included: a hint, a garbage one changing only this
 * choice.
 */
static bool zero_next(struct evb_flush *fl, struct fpart *fp)
{
    if (fl->cfg.durability != EVB_DURABILITY_SYNC)
        return false;
    /* Relaxed: a statistic; nothing is published through it. */
    uint64_t s = atomic_load_explicit(&fp->r->hdr->fsyncs, memory_order_relaxed);
    /* Nothing to go by yet (the first step), or gone backwards (a
     * takeover's walk, a garbage count): zeros, as before. */
    bool known = (fp->zero_walk || fp->zero_syncs) && s >= fp->zero_syncs &&
                 fp->walk >= fp->zero_walk;
    if (known && fp->walk == fp->zero_walk)
        return fp->zero_last; /* nothing written since the last look */
    uint64_t bytes = fp->walk - fp->zero_walk, syncs = s - fp->zero_syncs;
    fp->zero_walk = fp->walk;
    fp->zero_syncs = s;
    fp->zero_last = !known || bytes / EVB_ZERO_BYTES_PER_SYNC < syncs;
    return fp->zero_last;
}

static void prep_start(struct evb_flush *fl, struct fpart *fp, uint64_t to)
{
    const evb_topic_config *cfg = &fl->cfg;
    fp->prep_to = to;
    fp->prep_rc = 0;
    fp->seg_bytes = cfg->segment_bytes;
    fp->mode = cfg->file_mode;
    /* A new segment's first step is small: zeroed for any SYNC writer. */
    fp->zero_fill = to ? zero_next(fl, fp) : cfg->durability == EVB_DURABILITY_SYNC;
    fp->prep_running = pthread_create(&fp->prep, NULL, prep_main, fp) == 0;
    if (!fp->prep_running)
        fp->prep_to = 0;
}

/* The next reservation step of the segment being written, whose end it
 * never passes: as much as is reserved already, within bounds. */
static uint64_t step_end(struct evb_flush *fl, struct fpart *fp)
{
    uint64_t have = fp->reserved - fp->seg_base;
    uint64_t step = have < EVB_SEG_RESERVE_FIRST   ? EVB_SEG_RESERVE_FIRST
                    : have > EVB_RESERVE_STEP_MAX ? EVB_RESERVE_STEP_MAX
                                                  : have;
    uint64_t left = fp->seg_base + fl->cfg.segment_bytes - fp->reserved;
    return fp->reserved + (step < left ? step : left);
}

/*
 * Called after each walk: disk for everything up to the walk's end must be
 * reserved before it is written, in line if the helper did not get there
 * (-ENOSPC and the like fail the partition). Then, in the background, the
 * next step when the walk is within half a step of the reserved end, or
 * else, past half of the segment, the next segment.
 */
int evb_flush_prep_next(struct evb_flush *fl, struct fpart *fp)
{
    const evb_topic_config *cfg = &fl->cfg;
    uint64_t seg_end = fp->seg_base + cfg->segment_bytes;
    if (fp->walk > fp->reserved)
        evb_flush_prep_join(fp);
    if (fp->walk > fp->reserved)
        fp->zero_fill = zero_next(fl, fp);
    while (fp->walk > fp->reserved) {
        uint64_t to = step_end(fl, fp);
        int rc = reserve(fp, to);
        if (rc)
            return rc;
        fp->reserved = to;
    }
    if (fp->prep_running)
        return 0;
    uint64_t to = step_end(fl, fp);
    if (fp->reserved < seg_end && fp->walk + (to - fp->reserved) / 2 >= fp->reserved) {
        prep_start(fl, fp, to);
        return 0;
    }
    uint64_t next = seg_end;
    if (fp->prep_base == next || fp->written - fp->seg_base < cfg->segment_bytes / 2)
        return 0;
    fp->prep_base = next;
    prep_start(fl, fp, 0);
    return 0;
}

/* How much of segment FD, from its start, is known to be reserved: up to
 * its first hole (SEEK_HOLE; a file system without it says the end, and
 * then the writes themselves report a full disk). A hole past the log may
 * be a range reserved but never written; reserving it again changes
 * nothing. A hole below the log's end is log bytes that read as zeros (a
 * copy that made holes of zero blocks, cp -a or rsync -S): the flusher
 * never reserves below the log's end, where a zero-filling reservation
 * would write over the log; only refill_cut fills holes there, holes
 * alone, with the zeros they read as. */
static uint64_t reserved_len(int fd, uint64_t bytes)
{
    off_t h = lseek(fd, 0, SEEK_HOLE);
    return h < 0 || (uint64_t)h > bytes ? bytes : (uint64_t)h;
}

/* The holes of FD in [FROM, TO) (file offsets), and what of it lies past
 * the file's end, written with zeros: what they read as, so no byte the
 * file holds changes. A file system that cannot tell holes leaves it as
 * it is. */
static int fill_holes(int fd, const char *path, uint64_t from, uint64_t to)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return evb_err_set(-errno, "%s: fstat: %s", path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    for (uint64_t x = from; x < to;) {
        uint64_t h = x, d = to;
        if (x < size) {
            off_t hole = lseek(fd, (off_t)x, SEEK_HOLE); /* the file's end counts */
            if (hole < 0)
                return 0;
            h = (uint64_t)hole;
            if (h >= to)
                break;
            if (h < size) {
                off_t data = lseek(fd, hole, SEEK_DATA);
                d = data >= 0 ? (uint64_t)data : errno == ENXIO ? size : h;
                if (d == h)
                    return 0; /* cannot tell */
                if (d > to)
                    d = to;
            }
        }
        int rc = evb_seg_reserve(fd, path, h, d - h, true);
        if (rc)
            return rc;
        x = d;
    }
    return 0;
}

/* Where the valid frames below CUT in segment BASE end: the damage a cut
 * at CUT made starts there (a frame across the cut is the cut's). */
static uint64_t intact_below(const char *dir, const struct evb_seg_geom *g, uint64_t base,
                             uint64_t cut)
{
    struct evb_seg_reader sr;
    uint64_t end = base;
    if (cut <= base || evb_seg_reader_open(&sr, dir, g))
        return base;
    sr.skip_damage = true;
    evb_seg_reader_seek(&sr, base, 0, true);
    struct evb_frame_view v;
    int rc;
    while ((rc = evb_seg_read(&sr, cut, &v)) == 0)
        end = v.end;
    /* Pads after the last event, and no damage after them: on to there. */
    if (rc == -EAGAIN && !sr.lost_bytes && sr.lost_from == EVB_SEG_NO_OFFSET)
        end = sr.pos;
    evb_seg_reader_close(&sr);
    return end < cut ? end : cut;
}

/*
 * Segment BASE cut short (truncated by hand while a flusher wrote it, or
 * before it was used): made whole again, so that the flusher goes on in it
 * at AT, as recovery does with one (recover.c, evb_seg_fill_out). The
 * round that found the cut failed with -EIO naming the file (flush_round.c,
 * evb_seg_check_file); the log bytes the cut took below AT read as zeros:
 * damage, noted in the partition's damage record for `evbus info` and
 * reported or skipped by readers. The log goes on from
 * AT; the ring's bytes at AT and after were never flushed, so they are
 * written in full. Other sizes than a cut one (a longer file, a config
 * that does not match) are evb_seg_create()'s to refuse.
 */
static int refill_cut(struct evb_flush *fl, struct fpart *fp, uint64_t base, uint64_t at)
{
    const evb_topic_config *cfg = &fl->cfg;
    char path[PATH_MAX + 32];
    struct stat st;
    /* No detail set when it is missing: that is the common case (a new
     * segment), and evb_seg_create makes it. */
    if (evb_seg_path(path, sizeof path, fp->dir, base, "log") ||
        fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size >= cfg->segment_bytes)
        return 0; /* missing, the right size, or evb_seg_create's to refuse */
    int64_t sz = st.st_size;
    /* Where the cut is: the file's end, or the first hole below it when
     * a write of the round that found the cut extended the file past it
     * (a file system without SEEK_HOLE says the end). */
    uint64_t cut = (uint64_t)sz;
    int fd = evb_open_file(AT_FDCWD, path, O_RDWR, 0, EVB_FILE_REG);
    int rc = fd < 0 ? evb_open_fail(fd, path) : 0;
    if (!rc) {
        off_t h = lseek(fd, 0, SEEK_HOLE);
        if (h >= 0 && (uint64_t)h < cut)
            cut = (uint64_t)h;
    }
    /* The cut's range below AT, a hole now (or past the file's end), is
     * reserved as zeros, what it reads as: the flusher reserves from AT on
     * only (evb_flush_seg_open), and a hole left below the log would be
     * taken for this cut's by the next cut's look above. Holes only: CUT
     * may be an older hole's start (a copy's, recovery's), and the log
     * between is intact. Before the fill-out, so a file still short says
     * the cut is not made whole yet. */
    if (!rc && base + cut < at)
        rc = fill_holes(fd, path, cut, at - base);
    if (fd >= 0)
        close(fd);
    if (!rc)
        rc = evb_seg_fill_out(path, cfg->segment_bytes);
    if (rc)
        return evb_err_prefix(rc, "partition %u: %s was cut to %lld bytes and cannot be made "
                              "whole again", fp->part, path, (long long)sz);
    /* What the cut took lies below AT, wherever the file's size says now
     * (a write of the round that found the cut may have extended it past
     * the hole): the frames below AT are walked as a reader walks them.
     * Only what is new since the cut counts: damage below it was
     * there before (a rebuild's, an earlier cut's) and is noted already,
     * so the walk up to the end of the last valid frame before the cut
     * is taken off. When the cut added bytes but no range (it joined a
     * range that was there), that is still one range more. */
    struct evb_seg_geom g = evb_seg_geom_of(cfg->segment_bytes, cfg->ring_bytes,
                                            cfg->max_event_bytes);
    struct evb_seg_damage w, d, was = {.first_pos = UINT64_MAX};
    cut = base + cut - cut % EVB_FRAME_ALIGN;
    uint64_t intact = intact_below(fp->dir, &g, base, cut < at ? cut : at);
    if (at > base && evb_seg_verify(fp->dir, &g, base, at, &w) == 0 &&
        (intact <= base || evb_seg_verify(fp->dir, &g, base, intact, &was) == 0) &&
        w.bytes > was.bytes) {
        w.ranges = w.ranges > was.ranges ? w.ranges - was.ranges : 0;
        w.ranges = w.ranges ? w.ranges : 1;
        w.bytes -= was.bytes;
        if (evb_seg_damage_read(fp->dir, &d))
            d = (struct evb_seg_damage){.first_pos = UINT64_MAX};
        struct evb_seg_recovery r = {.damaged = (uint32_t)(d.ranges + w.ranges),
                                     .damaged_bytes = d.bytes + w.bytes,
                                     .damaged_pos = d.first_pos < w.first_pos ? d.first_pos
                                                                              : w.first_pos,
                                     .mark = d.mark, .cut_bytes = d.cut_bytes,
                                     .cut_pos = d.cut_pos,
                                     .skipped_offsets = d.skipped_offsets};
        evb_seg_damage_note(fp->dir, &r, cfg->file_mode);
    }
    return 0;
}

int evb_flush_seg_open(struct evb_flush *fl, struct fpart *fp, uint64_t base)
{
    const evb_topic_config *cfg = &fl->cfg;
    evb_flush_prep_join(fp);
    evb_flush_seg_close(fp);
    /* Where the log goes on in it: fp->written, on a takeover inside the
     * segment; its base for a new one. */
    uint64_t at = fp->written > base && fp->written - base < cfg->segment_bytes ? fp->written
                                                                                 : base;
    int rc = refill_cut(fl, fp, base, at);
    if (rc)
        return rc;
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
        int fd = evb_open_file(AT_FDCWD, path, O_RDWR | O_DIRECT, 0, EVB_FILE_REG);
        fp->dio_fd = fd < 0 ? -1 : fd;
    }
    fp->seg_base = base;
    /* Never below AT: the log is there, holes or not. */
    fp->reserved = base + reserved_len(fd, cfg->segment_bytes);
    if (fp->reserved < at)
        fp->reserved = at;
    fp->kicked = base;
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
int evb_flush_seg_resume(struct evb_flush *fl, struct fpart *fp, uint64_t at)
{
    const evb_topic_config *cfg = &fl->cfg;
    uint64_t base = at - at % cfg->segment_bytes;
    int rc = evb_flush_seg_open(fl, fp, base);
    if (rc || at == base)
        return rc;
    struct evb_seg_geom g = evb_seg_geom_of(cfg->segment_bytes, cfg->ring_bytes,
                                            cfg->max_event_bytes);
    struct evb_seg_reader sr;
    if ((rc = evb_seg_reader_open(&sr, fp->dir, &g)))
        return rc;
    evb_seg_reader_seek(&sr, base, 0, true);
    /* Damage below the resume point is recovery's to report (recover.c):
     * the flusher goes on after it. */
    sr.skip_damage = true;
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
    /* Entries a dead flusher made past the resume point are redone. The
     * index is a hint: when it cannot be cut or made, this segment goes
     * without one (seeks in it walk the frames), rather than mid-segment
     * entries under a base offset that is not the segment's first. */
    int ifd = evb_idx_cut(fp->dir, base, at, first_off);
    if (!ifd)
        ifd = evb_idx_create(fp->dir, base, first_off, cfg->file_mode);
    if (ifd < 0) {
        (void)evb_idx_remove(fp->dir, base);
        fp->idx_next = UINT64_MAX;
        return 0;
    }
    fp->idx_fd = ifd;
    return 0;
}

void evb_flush_index_note(struct evb_flush *fl, struct fpart *fp, uint64_t pos, uint64_t off)
{
    if (pos < fp->idx_next)
        return;
    fp->idx_next = pos + EVB_IDX_EVERY;
    if (fp->idx_fd < 0) {
        /* First frame of the segment: its offset is the index's base. An
         * index is a hint: when it cannot be made, the segment goes
         * without one (seeks walk), not with one started at a later frame. */
        int fd = evb_idx_cut(fp->dir, fp->seg_base, pos, off);
        if (!fd)
            fd = evb_idx_create(fp->dir, fp->seg_base, off, fl->cfg.file_mode);
        if (fd < 0) {
            fp->idx_next = UINT64_MAX;
            return;
        }
        fp->idx_fd = fd;
    }
    struct evb_idx_entry e = {.pos = pos, .offset = off, .max_ts = fp->max_ts};
    evb_idx_append(fp->idx_fd, &e, 1);
}
