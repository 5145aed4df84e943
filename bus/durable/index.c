/*
 * index.c - the sparse index of a segment (index_format.h): read and check
 * it, create or reopen it for appending, append entries, load it for
 * lookups, and cut it back to a log end. An index is only a hint: lookup.c
 * and recover.c check every offset it claims against the frames, and
 * whatever is found at an index's name that is not a readable regular file
 * (a directory, FIFO, symlink, garbage) is removed or ignored, never a
 * reason to fail a topic.
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

int evb_idx_read(int fd, const char *path, uint64_t base, struct evb_idx **out)
{
    struct evb_idx_hdr h;
    struct stat st;
    *out = NULL;
    if (fstat(fd, &st) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    if (st.st_size < (off_t)sizeof h || evb_seg_read_at(fd, &h, sizeof h, 0))
        return evb_err_set(-EBADMSG, "%s: no index header", path);
    if (h.magic != EVB_IDX_MAGIC || h.version != EVB_IDX_VERSION || h.base_pos != base)
        return evb_err_set(-EBADMSG, "%s: index magic 0x%llx version %u base %llu, "
                           "expected 0x%llx %u %llu", path, (unsigned long long)h.magic,
                           h.version, (unsigned long long)h.base_pos,
                           (unsigned long long)EVB_IDX_MAGIC, EVB_IDX_VERSION,
                           (unsigned long long)base);
    /* 0: written before the format word existed, in this very layout. */
    if (h.format != EVB_IDX_FORMAT_WORD && h.format != 0)
        return evb_err_set(-EBADMSG, "%s: index format 0x%llx, this build reads 0x%llx",
                           path, (unsigned long long)h.format,
                           (unsigned long long)EVB_IDX_FORMAT_WORD);
    uint64_t n = ((uint64_t)st.st_size - sizeof h) / sizeof(struct evb_idx_entry);
    if (n > (SIZE_MAX - sizeof(struct evb_idx)) / sizeof(struct evb_idx_entry))
        return evb_err_set(-ENOMEM, "%s: index too large", path);
    struct evb_idx *x = malloc(sizeof *x + (size_t)n * sizeof x->e[0]);
    if (!x)
        return evb_err_set(-ENOMEM, "%s: index of %llu entries", path, (unsigned long long)n);
    if (evb_seg_read_at(fd, x->e, (size_t)n * sizeof x->e[0], sizeof h))
        n = 0;
    x->base_pos = base;
    x->base_offset = h.base_offset;
    x->stored = (size_t)n;
    uint64_t pos = base, off = h.base_offset, ts = 0;
    size_t k = 0;
    for (; k < n; k++) {
        const struct evb_idx_entry *e = &x->e[k];
        if (e->pos < pos || (k && e->pos == pos) || e->pos % EVB_FRAME_ALIGN ||
            e->offset < off || e->max_ts < ts)
            break;
        pos = e->pos;
        off = e->offset;
        ts = e->max_ts;
    }
    x->n = k;
    *out = x;
    return 0;
}

/* Remove what is at PATH, not following a symlink there: unlink, or rmdir
 * for a directory (an empty one only: what someone put in a directory
 * under an index's name is not ours to delete). */
static int remove_at(const char *path)
{
    struct stat st;
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path))
        return errno == ENOENT ? 0 : -errno;
    return 0;
}

int evb_idx_remove(const char *dir, uint64_t base)
{
    char path[PATH_MAX];
    int rc = evb_seg_path(path, sizeof path, dir, base, "idx");
    if (rc)
        return rc;
    rc = remove_at(path);
    return rc ? evb_err_set(rc, "%s: %s", path, strerror(-rc)) : 0;
}

int evb_idx_create(const char *dir, uint64_t base, uint64_t base_offset, uint32_t mode)
{
    char path[PATH_MAX];
    int rc = evb_seg_path(path, sizeof path, dir, base, "idx");
    if (rc)
        return rc;
    int fd = evb_open_file(AT_FDCWD, path, O_RDWR | O_CREAT | O_APPEND, mode, EVB_FILE_REG);
    if (fd == -EVB_EFTYPE || fd == -ELOOP) {
        /* Not a regular file: make room for one (a symlink goes, its
         * target stays as it is). */
        if (remove_at(path) == 0)
            fd = evb_open_file(AT_FDCWD, path, O_RDWR | O_CREAT | O_EXCL | O_APPEND, mode,
                               EVB_FILE_REG);
    }
    if (fd < 0)
        return evb_open_fail(fd, path);
    struct evb_idx *x = NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (st.st_size == 0)
        (void)fchmod(fd, mode);
    rc = st.st_size ? evb_idx_read(fd, path, base, &x) : -EBADMSG;
    if (rc && rc != -EBADMSG)
        goto fail;
    /* Keep what checks out; start over when the header does not. */
    if (x && x->base_offset != base_offset) {
        free(x);
        x = NULL;
    }
    off_t keep = x ? (off_t)(sizeof(struct evb_idx_hdr) + x->n * sizeof x->e[0]) : 0;
    if (keep != st.st_size && ftruncate(fd, keep) < 0) {
        rc = evb_err_set(-errno, "%s: truncate: %s", path, strerror(errno));
        goto fail;
    }
    if (!x) {
        struct evb_idx_hdr h = {.magic = EVB_IDX_MAGIC, .version = EVB_IDX_VERSION,
                                .base_pos = base, .base_offset = base_offset,
                                .format = EVB_IDX_FORMAT_WORD};
        if ((rc = evb_seg_write_at(fd, &h, sizeof h, -1))) {
            evb_err_set(rc, "%s: %s", path, strerror(-rc));
            goto fail;
        }
    }
    free(x);
    return fd;
fail:
    free(x);
    close(fd);
    return rc;
}

int evb_idx_append(int fd, const struct evb_idx_entry *e, size_t n)
{
    int rc = evb_seg_write_at(fd, e, n * sizeof *e, -1);
    if (rc)
        evb_err_set(rc, "index append: %s", strerror(-rc));
    return rc;
}

int evb_idx_load(const char *dir, uint64_t base, struct evb_idx **out)
{
    char path[PATH_MAX];
    *out = NULL;
    int rc = evb_seg_path(path, sizeof path, dir, base, "idx");
    if (rc)
        return rc;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    rc = evb_idx_read(fd, path, base, out);
    close(fd);
    return rc;
}

/* Make the index of segment BASE agree with a log ending at END: cut the
 * entries at or past it (and any bad tail); remove an index whose base
 * offset contradicts FIRST, the offset of the segment's first frame. */
int evb_idx_cut(const char *dir, uint64_t base, uint64_t end, uint64_t first)
{
    char path[PATH_MAX];
    int rc = evb_seg_path(path, sizeof path, dir, base, "idx");
    if (rc)
        return rc;
    int fd = evb_open_file(AT_FDCWD, path, O_RDWR, 0, EVB_FILE_REG);
    if (fd < 0) {
        /* Not a regular file we may open: a hint nobody can use. Gone if
         * it can be removed; else lookups fail to load it and walk. */
        if (fd != -ENOENT)
            (void)remove_at(path);
        return 0;
    }
    struct evb_idx *x;
    rc = evb_idx_read(fd, path, base, &x);
    if (rc == -EBADMSG || (!rc && first != EVB_SEG_NO_OFFSET && x->base_offset != first)) {
        rc = unlink(path) ? evb_err_set(-errno, "%s: %s", path, strerror(errno)) : 0;
    } else if (!rc) {
        size_t k = 0;
        while (k < x->n && x->e[k].pos < end)
            k++;
        off_t keep = (off_t)(sizeof(struct evb_idx_hdr) + k * sizeof x->e[0]);
        struct stat st;
        if (fstat(fd, &st) < 0 ||
            (st.st_size != keep && (ftruncate(fd, keep) < 0 || fdatasync(fd) < 0)))
            rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
    }
    free(x);
    close(fd);
    return rc;
}
