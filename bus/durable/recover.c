/*
 * recover.c - the end of a partition's valid log after a crash: walk the
 * newest segments, cut the torn tail (zeroed and synced), remove newer
 * segments, cut the index. Run under the partition's flush lock; restore.c
 * turns the result into ring positions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "safe_open.h"
#include "seg_internal.h"

/* Walk on from w->pos to the first position without a valid frame, or
 * the end of the segment holding w->pos. */
static int walk_on(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                   struct evb_seg_walk *w)
{
    uint64_t seg_end = w->pos - w->pos % g->segment_bytes + g->segment_bytes;
    int rc = evb_seg_hold(s, dir, g, w->pos);
    struct evb_seg_frame fr;
    while (!rc && w->pos < seg_end && evb_seg_step(s, g, w, &fr) > 0)
        ;
    return rc;
}

/* Walk segment BASE to its end when its frames run there: from its last
 * index entry if a frame on the way confirms the entry's offset, else from
 * the base. When they do not, *w is where a walk from the base stops. */
static int walk_to_end(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                       uint64_t base, struct evb_seg_walk *w)
{
    struct evb_idx *x;
    if (evb_idx_load(dir, base, &x) == 0) {
        *w = evb_seg_walk_start(x, g, base, false, UINT64_MAX);
        free(x);
        int rc = walk_on(s, dir, g, w);
        if (rc || (w->confirmed && w->pos == base + g->segment_bytes))
            return rc;
    }
    *w = (struct evb_seg_walk){.pos = base, .offset = 0, .learn = true};
    return walk_on(s, dir, g, w);
}

/* The offset of the first frame of segment BASE, EVB_SEG_NO_OFFSET when it
 * has no valid one. */
static int first_offset(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                        uint64_t base, uint64_t *off)
{
    struct evb_seg_frame fr;
    int rc = evb_seg_hold(s, dir, g, base);
    if (rc)
        return rc;
    /* A base is a ring start: any frame there has room for its header. */
    *off = evb_seg_frame(s, g, base, &fr) ? fr.offset : EVB_SEG_NO_OFFSET;
    return 0;
}

/* Cut PATH after FROM: count the bytes from FROM to the last non-zero
 * byte into *dropped and, with ZERO, overwrite them with zeros and sync. */
static int cut_tail(const char *path, uint64_t from, bool zero, uint64_t *dropped)
{
    int fd = evb_open_file(AT_FDCWD, path, zero ? O_RDWR : O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    uint8_t *buf = malloc(EVB_SEG_IO_CHUNK);
    struct stat st;
    int rc = 0;
    if (!buf || fstat(fd, &st) < 0)
        rc = buf ? -errno : -ENOMEM;
    uint64_t hi = rc ? from : (uint64_t)st.st_size, last = from;
    /* Backwards, a chunk at a time, to the last non-zero byte. */
    while (hi > from && !rc) {
        size_t k = hi - from < EVB_SEG_IO_CHUNK ? (size_t)(hi - from) : EVB_SEG_IO_CHUNK;
        hi -= k;
        if ((rc = evb_seg_read_at(fd, buf, k, (off_t)hi)))
            break;
        if (!buf[0] && !memcmp(buf, buf + 1, k - 1))
            continue;
        while (!buf[k - 1])
            k--;
        last = hi + k;
        break;
    }
    if (rc)
        evb_err_set(rc, "%s: %s", path, strerror(-rc));
    if (!rc && zero && last > from) {
        rc = evb_seg_zero_range(fd, path, from, last - from);
        if (!rc && fdatasync(fd) < 0)
            rc = evb_err_set(-errno, "%s: fdatasync: %s", path, strerror(errno));
    }
    if (!rc)
        *dropped += last - from;
    free(buf);
    close(fd);
    return rc;
}

/* Remove segment BASE (index first, so no index outlives its log). */
static int remove_segment(const char *dir, uint64_t base, uint64_t *dropped)
{
    char path[PATH_MAX];
    int rc = evb_seg_path(path, sizeof path, dir, base, "idx");
    if (rc)
        return rc;
    if (unlink(path) < 0 && errno != ENOENT)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    if ((rc = evb_seg_path(path, sizeof path, dir, base, "log")) ||
        (rc = cut_tail(path, 0, false, dropped)))
        return rc;
    if (unlink(path) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    return 0;
}

int evb_seg_recover(const char *dir, const struct evb_seg_geom *g, uint64_t hint_pos,
                    struct evb_seg_recovery *out)
{
    (void)hint_pos; /* see segment.h: the walk always starts at the base */
    uint64_t *bases;
    size_t n;
    memset(out, 0, sizeof *out);
    int rc = evb_seg_list_checked(dir, g, &bases, &n);
    if (rc || !n)
        return rc;

    /* The end: where the walk of the newest segment stops, if that
     * segment continues the previous one. It does not when it has no valid
     * frame, or its first offset is not where the previous one ended: the
     * log then ends at its base. A previous segment cut short ends it
     * inside that one, and the same question goes one segment back. */
    struct evb_seg s = {.fd = -1};
    size_t cur = n - 1;
    struct evb_seg_walk w = {.pos = bases[cur], .offset = 0, .learn = true};
    uint64_t first = EVB_SEG_NO_OFFSET, dropped = 0;
    rc = walk_on(&s, dir, g, &w);
    while (!rc && cur > 0 && bases[cur - 1] == bases[cur] - g->segment_bytes) {
        struct evb_seg_walk p;
        if ((rc = walk_to_end(&s, dir, g, bases[cur - 1], &p)))
            break;
        if (p.pos == bases[cur]) {
            if (!w.learn && (rc = first_offset(&s, dir, g, bases[cur], &first)))
                break;
            if (first != p.offset)
                w = (struct evb_seg_walk){.pos = bases[cur], .offset = p.offset, .learn = false};
            break;
        }
        cur--;
        w = p;
    }
    if (!rc && w.learn) {
        /* Nothing valid and no previous segment to ask: the index may
         * still know the offset the log stopped at. */
        struct evb_idx *x;
        w = (struct evb_seg_walk){.pos = bases[cur], .offset = 0, .learn = false};
        if (evb_idx_load(dir, bases[cur], &x) == 0) {
            w.offset = x->base_offset;
            free(x);
        }
    }
    if (!rc && w.pos == bases[cur])
        first = w.offset; /* what the next frame written at the base gets */
    else if (!rc)
        rc = first_offset(&s, dir, g, bases[cur], &first);

    /* Cut: newer segments newest first, then the tail, then the index. A
     * crash in between leaves a log that recovers to the same end. */
    char path[PATH_MAX];
    for (size_t j = n - 1; !rc && j > cur; j--)
        rc = remove_segment(dir, bases[j], &dropped);
    if (!rc && cur + 1 < n)
        rc = evb_seg_sync_dir(dir);
    if (!rc && !(rc = evb_seg_path(path, sizeof path, dir, bases[cur], "log")))
        rc = cut_tail(path, w.pos - bases[cur], true, &dropped);
    if (!rc)
        rc = evb_idx_cut(dir, bases[cur], w.pos, first);

    /* The start: the oldest segment's first frame, or its index. */
    uint64_t start = EVB_SEG_NO_OFFSET;
    if (!rc && cur == 0 && w.pos == bases[0])
        start = w.offset; /* the whole log is empty */
    else if (!rc && !(rc = first_offset(&s, dir, g, bases[0], &start)) &&
             start == EVB_SEG_NO_OFFSET) {
        struct evb_idx *x;
        if (evb_idx_load(dir, bases[0], &x) == 0) {
            start = x->base_offset;
            free(x);
        } else {
            rc = evb_err_set(-EBADMSG, "%s: oldest segment %020llu has no valid first "
                             "frame and no index", dir, (unsigned long long)bases[0]);
        }
    }
    evb_seg_unmap(&s);
    if (!rc)
        *out = (struct evb_seg_recovery){.end_pos = w.pos, .end_offset = w.offset,
                                         .start_pos = bases[0], .start_offset = start,
                                         .dropped_bytes = dropped,
                                         .segments = (uint32_t)(cur + 1)};
    free(bases);
    return rc;
}
