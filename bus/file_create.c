/*
 * file_create.c - make a small shared file (bus.meta, a cursor file) appear
 * whole: it is sized and initialised under a temporary name in the same
 * directory, then renamed into place (never over another). Its final name
 * never shows a file mid-creation, so an opener can treat an empty or
 * zeroed file there as damage rather than as "new". What the file holds,
 * and how it is checked once open, stay with its owner (bus.c,
 * cursor_file.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "safe_open.h"

/* Threads of one process creating at once get different temporary names.
 * Relaxed: only uniqueness matters, nothing is published through it. */
static _Atomic uint32_t tmp_seq;

int evb_file_create(const char *path, mode_t mode, size_t bytes, bool sync,
                    void (*init)(void *map, void *arg), void *arg)
{
    char tmp[PATH_MAX + 64];
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path) : 1;
    const char *dir = slash ? path : ".";
    const char *base = slash ? slash + 1 : path;
    /* ".tmp.<base>.<pid>.<n>": bus.c sweeps a dead pid's out of the bus
     * directory; elsewhere (consumers/) a leftover is a few bytes that no
     * scan reads (the name does not end in .cur). */
    uint32_t n = atomic_fetch_add_explicit(&tmp_seq, 1, memory_order_relaxed);
    if (snprintf(tmp, sizeof tmp, "%.*s/.tmp.%s.%d.%u", dlen, dir, base, (int)getpid(), n) >=
        (int)sizeof tmp)
        return evb_err_set(-ENAMETOOLONG, "%s: path too long", path);
    int fd = evb_open_file(AT_FDCWD, tmp, O_RDWR | O_CREAT | O_EXCL, mode, EVB_FILE_REG);
    if (fd == -EEXIST) {
        /* Our pid's name, left by a dead process that had it before. */
        unlink(tmp);
        fd = evb_open_file(AT_FDCWD, tmp, O_RDWR | O_CREAT | O_EXCL, mode, EVB_FILE_REG);
    }
    if (fd < 0)
        return evb_open_fail(fd, tmp);
    int rc = 0;
    /* Exactly MODE: the umask must not narrow what a group was given. */
    if (fchmod(fd, mode) < 0) {
        rc = evb_err_set(-errno, "%s: fchmod: %s", tmp, strerror(errno));
        goto out;
    }
    int e = posix_fallocate(fd, 0, (off_t)bytes);
    if (e) {
        rc = evb_err_set(-e, "%s: %s", tmp, strerror(e));
        goto out;
    }
    /* The image is built in the heap and written, not through a mapping:
     * nobody else sees the file yet, and a short-lived MAP_SHARED page
     * whose address io_uring's own mmap (a raw system call) may reuse
     * leaves ThreadSanitizer stale shadow, reported as a race. */
    uint8_t *img = calloc(1, bytes);
    if (!img) {
        rc = -ENOMEM;
        goto out;
    }
    init(img, arg);
    for (size_t done = 0; done < bytes;) {
        ssize_t w = pwrite(fd, img + done, bytes - done, (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = evb_err_set(w < 0 ? -errno : -EIO, "%s: %s", tmp,
                             w < 0 ? strerror(errno) : "short write");
            break;
        }
        done += (size_t)w;
    }
    free(img);
    if (rc)
        goto out;
    /* On disk, the bytes must be there before the name: a crash must not
     * leave a linked file of zeros. */
    if (sync && fdatasync(fd) < 0) {
        rc = evb_err_set(-errno, "%s: fdatasync: %s", tmp, strerror(errno));
        goto out;
    }
    /* Never over PATH: a racing creator that got there first keeps its
     * file (and its holders their map). A rename, not link() and unlink():
     * the file never has two names, which an opener would refuse as a
     * planted hard link (safe_open.h). */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
        rc = errno == EEXIST ? -EEXIST : evb_err_set(-errno, "%s: %s", path, strerror(errno));
    else
        tmp[0] = '\0';
out:
    if (tmp[0])
        unlink(tmp);
    close(fd);
    return rc;
}

int evb_file_open_or_create(const char *path, mode_t mode, size_t bytes, bool sync,
                            void (*init)(void *map, void *arg), void *arg)
{
    /* A file at PATH is never mid-creation, so an empty or zeroed one is
     * damage for the caller to report, not a new file. Losing the race to
     * another creator is fine: its file is as good. A few tries cover a
     * file deleted between our create and our open. */
    for (int tries = 0;; tries++) {
        int fd = evb_open_file(AT_FDCWD, path, O_RDWR, 0, EVB_FILE_REG);
        if (fd >= 0)
            return fd;
        if (fd != -ENOENT || tries == 3)
            return evb_open_fail(fd, path);
        int rc = evb_file_create(path, mode, bytes, sync, init, arg);
        if (rc && rc != -EEXIST)
            return rc;
    }
}
