/*
 * mark.c - the durable mark of a partition (mark_format.h): the flusher
 * records where its last fdatasync reached, recovery reads it back. What
 * the mark means for a damaged log is recover.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "mark_format.h"
#include "safe_open.h"
#include "seg_internal.h"

static int mark_path(char *out, size_t cap, const char *dir)
{
    int n = snprintf(out, cap, "%s/%s", dir, EVB_MARK_NAME);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int evb_seg_mark_load(const char *dir, struct evb_seg_mark *out)
{
    char path[PATH_MAX];
    struct evb_mark m;
    if (mark_path(path, sizeof path, dir))
        return EVB_SEG_MARK_MISSING;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd == -ENOENT)
        return EVB_SEG_MARK_MISSING;
    if (fd < 0)
        return fd == -EACCES || fd == -EPERM ? EVB_SEG_MARK_INVALID : EVB_SEG_MARK_NOT_FILE;
    int rc = evb_seg_read_at(fd, &m, sizeof m, 0);
    close(fd);
    if (rc || m.magic != EVB_MARK_MAGIC || m.format != EVB_MARK_FORMAT_WORD || m.zero ||
        m.crc != evb_crc32c(0, &m, offsetof(struct evb_mark, crc)) ||
        m.pos % EVB_FRAME_ALIGN || m.start_pos % EVB_FRAME_ALIGN || m.start_pos > m.pos)
        return EVB_SEG_MARK_INVALID;
    *out = (struct evb_seg_mark){m.pos, m.offset, m.start_pos, m.start_offset};
    return EVB_SEG_MARK_OK;
}

bool evb_seg_mark_read(const char *dir, uint64_t *pos, uint64_t *offset)
{
    struct evb_seg_mark m;
    if (evb_seg_mark_load(dir, &m) != EVB_SEG_MARK_OK)
        return false;
    *pos = m.pos;
    *offset = m.offset;
    return true;
}

/* Write M as the mark of DIR: in place (one pwrite, the usual case); when
 * what is there is no regular file, a new file renamed over it, so a FIFO
 * or symlink planted there is replaced, never followed or written through
 * (an empty directory is removed first; anything else is an error). */
static int mark_write(const char *dir, const struct evb_seg_mark *v, uint32_t mode)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    if (mark_path(path, sizeof path, dir))
        return -ENAMETOOLONG;
    struct evb_mark m = {.magic = EVB_MARK_MAGIC, .format = EVB_MARK_FORMAT_WORD,
                         .pos = v->pos, .offset = v->offset, .start_pos = v->start_pos,
                         .start_offset = v->start_offset};
    m.crc = evb_crc32c(0, &m, offsetof(struct evb_mark, crc));
    int fd = evb_open_file(AT_FDCWD, path, O_WRONLY | O_CREAT, mode, EVB_FILE_REG);
    if (fd >= 0) {
        (void)fchmod(fd, mode); /* the topic's mode, not narrowed by the umask */
        /* A mark file not yet holding a whole mark is made durable with
         * its first one (file and name): after a power cut, a partition
         * without a valid mark cannot tell a torn tail from synced events
         * (recover.c), while a valid mark that lags is fine by design. So
         * once per partition, not per round; later marks are one pwrite
         * of 56 bytes inside one block. */
        struct stat st;
        bool first = fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof m;
        int rc = evb_seg_write_at(fd, &m, sizeof m, 0);
        if (!rc && first)
            rc = fdatasync(fd) < 0 ? -errno : evb_seg_sync_dir(dir);
        close(fd);
        return rc;
    }
    if (fd == -EACCES || fd == -EPERM || fd == -ENOENT || fd == -ENOSPC)
        return fd;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    (void)unlink(tmp);
    fd = evb_open_file(AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_EXCL, mode, EVB_FILE_REG);
    if (fd < 0)
        return fd;
    (void)fchmod(fd, mode);
    int rc = evb_seg_write_at(fd, &m, sizeof m, 0);
    if (!rc && fdatasync(fd) < 0)
        rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path) < 0) {
        rc = -errno;
        if ((rc == -EISDIR || rc == -ENOTEMPTY || rc == -EEXIST) && rmdir(path) == 0)
            rc = rename(tmp, path) < 0 ? -errno : 0;
    }
    if (!rc)
        rc = evb_seg_sync_dir(dir);
    if (rc)
        (void)unlink(tmp);
    return rc;
}

/* Without a valid mark the log start is the oldest segment's base. */
static void start_guess(const char *dir, struct evb_seg_mark *m)
{
    uint64_t *bases;
    size_t n;
    m->start_pos = 0;
    m->start_offset = EVB_SEG_NO_OFFSET;
    if (evb_seg_list(dir, &bases, &n) == 0 && n)
        m->start_pos = bases[0];
    if (n)
        free(bases);
    /* A log starts at position 0 with offset 0, and only then. */
    if (m->start_pos == 0)
        m->start_offset = 0;
}

int evb_seg_mark_durable(const char *dir, uint64_t pos, uint64_t offset, uint32_t mode)
{
    struct evb_seg_mark m;
    if (evb_seg_mark_load(dir, &m) != EVB_SEG_MARK_OK)
        start_guess(dir, &m);
    m.pos = pos;
    m.offset = offset;
    if (m.start_pos > pos)
        m.start_pos = pos;
    return mark_write(dir, &m, mode);
}

int evb_seg_mark_start(const char *dir, uint64_t start_pos, uint64_t start_offset,
                       uint32_t mode)
{
    struct evb_seg_mark m;
    if (evb_seg_mark_load(dir, &m) != EVB_SEG_MARK_OK)
        m = (struct evb_seg_mark){0};
    m.start_pos = start_pos;
    m.start_offset = start_offset;
    if (m.pos < start_pos) {
        /* The mark only bounds what may be torn: lower is safe. */
        m.pos = start_pos;
        m.offset = start_offset == EVB_SEG_NO_OFFSET ? 0 : start_offset;
    }
    return mark_write(dir, &m, mode);
}
