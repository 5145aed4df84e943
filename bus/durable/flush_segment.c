/*
 * flush_segment.c - the segment a partition's flusher writes: switching
 * to the next one (built ahead by a helper thread), resuming inside one
 * after a takeover, and noting sparse index entries on the way. The files'
 * format and checks are segment.c's and index.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "flush_internal.h"
#include "safe_open.h"

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

void evb_flush_prep_join(struct fpart *fp)
{
    if (fp->prep_running)
        pthread_join(fp->prep, NULL);
    fp->prep_running = false;
}

/* Past half of the current segment: build the next one in the background. */
void evb_flush_prep_next(struct evb_flush *fl, struct fpart *fp)
{
    const evb_topic_config *cfg = &fl->cfg;
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

int evb_flush_seg_open(struct evb_flush *fl, struct fpart *fp, uint64_t base)
{
    const evb_topic_config *cfg = &fl->cfg;
    evb_flush_prep_join(fp);
    evb_flush_seg_close(fp);
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
    struct evb_seg_geom g = {cfg->segment_bytes, cfg->ring_bytes, fl->rings[0].max_frame};
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
    /* Entries a dead flusher made past the resume point are redone. */
    if ((rc = evb_idx_cut(fp->dir, base, at, first_off)))
        return rc;
    int ifd = evb_idx_create(fp->dir, base, first_off, cfg->file_mode);
    if (ifd < 0)
        return ifd;
    fp->idx_fd = ifd;
    return 0;
}

void evb_flush_index_note(struct evb_flush *fl, struct fpart *fp, uint64_t pos, uint64_t off)
{
    if (pos < fp->idx_next)
        return;
    fp->idx_next = pos + EVB_IDX_EVERY;
    if (fp->idx_fd < 0) {
        /* First frame of the segment: its offset is the index's base. */
        if (evb_idx_cut(fp->dir, fp->seg_base, pos, off))
            return; /* an index is a hint: seeks fall back to walking */
        int fd = evb_idx_create(fp->dir, fp->seg_base, off, fl->cfg.file_mode);
        if (fd < 0)
            return;
        fp->idx_fd = fd;
    }
    struct evb_idx_entry e = {.pos = pos, .offset = off, .max_ts = fp->max_ts};
    evb_idx_append(fp->idx_fd, &e, 1);
}
