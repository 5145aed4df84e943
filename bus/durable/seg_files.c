/*
 * seg_files.c - a partition's segment files as files, before and while
 * recovery reads them: their sizes and modes, whether they fit topic.conf's
 * geometry, and the surgery recovery does on them (zeroing a torn tail,
 * removing a segment, trimming bytes grown past a segment's size).
 * recover.c decides what to cut; this file only does it, safely.
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

/* Cut PATH after FROM: count the bytes from FROM to the last non-zero
 * byte into *dropped and, with ZERO, overwrite them with zeros and sync. */
int evb_seg_cut_tail(const char *path, uint64_t from, bool zero, uint64_t *dropped)
{
    return evb_seg_cut_tail_below(path, from, UINT64_MAX, zero, dropped);
}

int evb_seg_cut_tail_below(const char *path, uint64_t from, uint64_t upto, bool zero,
                           uint64_t *dropped)
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
    /* Past the last range that may hold data all is a hole: zeros, not
     * read (evb_seg_data_end). */
    if (hi > upto)
        hi = upto > from ? upto : from;
    if (hi > from)
        hi = evb_seg_data_end(fd, from, hi);
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
int evb_seg_remove(const char *dir, uint64_t base, uint64_t *dropped)
{
    char path[PATH_MAX];
    /* Whatever is at the index's name; one that cannot go (a directory
     * with something in it) is no index, and no reason to keep the log. */
    (void)evb_idx_remove(dir, base);
    int rc;
    if ((rc = evb_seg_path(path, sizeof path, dir, base, "log")) ||
        (rc = evb_seg_cut_tail(path, 0, false, dropped)))
        return rc;
    if (unlink(path) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    return 0;
}

/* The mode of segment BASE's file, for a segment recovery has to make:
 * the topic's, as the flusher gave it. */
uint32_t evb_seg_file_mode(const char *dir, uint64_t base)
{
    char path[PATH_MAX];
    struct stat st;
    if (evb_seg_path(path, sizeof path, dir, base, "log") ||
        fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0600;
    return (uint32_t)st.st_mode & 07777;
}

/* The size of segment BASE in DIR: -ENOENT missing. */
int64_t evb_seg_file_size(const char *dir, uint64_t base)
{
    char path[PATH_MAX];
    struct stat st;
    if (evb_seg_path(path, sizeof path, dir, base, "log"))
        return -ENAMETOOLONG;
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) /* as safe_open.h refuses it */
        return evb_err_set(-EMEDIUMTYPE, "%s: not a regular file", path);
    return (int64_t)st.st_size;
}

/* Whether the bytes of segment BASE past G's segment size hold anything
 * but zeros (1), or not (0); -errno. */
static int past_end_used(const char *dir, const struct evb_seg_geom *g, uint64_t base)
{
    char path[PATH_MAX];
    uint64_t used = 0;
    int rc = evb_seg_path(path, sizeof path, dir, base, "log");
    if (!rc)
        rc = evb_seg_cut_tail(path, g->segment_bytes, false, &used);
    return rc ? rc : used > 0;
}

/* The segment files of DIR against geometry G, before anything is read
 * or cut: a base off the segment grid means segment_bytes is not what
 * wrote them, and so do two or more files all of one shorter size (a
 * single short one is damage, recovery's to report). A file longer than a
 * segment is one grown by hand: the flusher never writes past a segment's
 * size, so the bytes there are not log (recovery trims them), unless
 * nothing shows the size right: no file has it and bytes past it are
 * used, as they are when segment_bytes shrank since. Fills the checked
 * listing. */
int evb_seg_files_fit(const char *dir, const struct evb_seg_geom *g, uint64_t **bases,
                     size_t *n)
{
    int rc = evb_seg_geom_check(g);
    if (rc || (rc = evb_seg_list(dir, bases, n)))
        return rc;
    int64_t first = -1, seg = (int64_t)g->segment_bytes;
    bool same = true, sized = false; /* a file of exactly a segment's size */
    size_t used = *n;                /* a long one with bytes used past it */
    for (size_t i = 0; i < *n && !rc; i++) {
        uint64_t b = (*bases)[i];
        int64_t sz = evb_seg_file_size(dir, b);
        if (sz < 0) {
            rc = (int)sz;
        } else if (b % g->segment_bytes || b > UINT64_MAX - g->segment_bytes) {
            rc = evb_err_set(-EBADMSG, "%s: segment %020llu (%lld bytes) does not fit "
                             "topic.conf's segment_bytes %llu: topic.conf does not match the "
                             "log (changed since it was written?); nothing was changed", dir,
                             (unsigned long long)b, (long long)sz,
                             (unsigned long long)g->segment_bytes);
        } else {
            if (sz > seg && used == *n && (rc = past_end_used(dir, g, b)) > 0)
                used = i;
            rc = rc > 0 ? 0 : rc;
            sized = sized || sz == seg;
            sz = sz > seg ? seg : sz; /* as it will be */
            same = same && (first < 0 || sz == first);
            first = sz;
        }
    }
    if (!rc && used < *n && !sized)
        rc = evb_err_set(-EBADMSG, "%s: segment %020llu (%lld bytes) does not fit "
                         "topic.conf's segment_bytes %llu: topic.conf does not match the "
                         "log (changed since it was written?); nothing was changed", dir,
                         (unsigned long long)(*bases)[used],
                         (long long)evb_seg_file_size(dir, (*bases)[used]),
                         (unsigned long long)g->segment_bytes);
    if (!rc && *n >= 2 && same && (uint64_t)first < g->segment_bytes)
        rc = evb_err_set(-EBADMSG, "%s: every segment file has %lld bytes, topic.conf's "
                         "segment_bytes says %llu: topic.conf does not match the log (changed "
                         "since it was written?); nothing was changed", dir, (long long)first,
                         (unsigned long long)g->segment_bytes);
    if (rc) {
        free(*bases);
        *bases = NULL;
        *n = 0;
    }
    return rc;
}

/* Cut segment BASE back to G's segment size when it is longer, adding
 * the bytes cut to *TRIMMED. */
int evb_seg_trim(const char *dir, const struct evb_seg_geom *g, uint64_t base,
                        uint64_t *trimmed)
{
    char path[PATH_MAX];
    int64_t sz = evb_seg_file_size(dir, base);
    if (sz < 0 || (uint64_t)sz <= g->segment_bytes)
        return sz < 0 ? (int)sz : 0;
    int rc = evb_seg_path(path, sizeof path, dir, base, "log");
    if (rc)
        return rc;
    int fd = evb_open_file(AT_FDCWD, path, O_RDWR, 0, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    if (ftruncate(fd, (off_t)g->segment_bytes) < 0 || fdatasync(fd) < 0)
        rc = evb_err_set(-errno, "%s: cutting it back to %llu bytes: %s", path,
                         (unsigned long long)g->segment_bytes, strerror(errno));
    close(fd);
    if (!rc)
        *trimmed += (uint64_t)sz - g->segment_bytes;
    return rc;
}

