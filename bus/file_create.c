/*
 * file_create.c - make a small shared file (bus.meta, a cursor file) appear
 * whole: it is sized and initialised under a temporary name in the same
 * directory, then renamed into place (never over another). Its final name
 * never shows a file mid-creation, so an opener can treat an empty or
 * zeroed file there as damage rather than as "new". What the file holds,
 * and how it is checked once open, stay with its owner (bus.c,
 * cursor_file.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
    /* ".tmp.<base>.<pid>.<n>": bus_dir.c sweeps a dead pid's out of the
     * bus directory; in consumers/ the next evb_file_open_or_create there
     * does (a queue group's file can be hundreds of MiB of tmpfs). */
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
    EVB_CRASH_POINT("file_create.before_rename");
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

/* Whether NAME is "<prefix><anything>.<pid>.<n>" with decimal PID and N;
 * *PID is the pid. */
static bool tmp_name_pid(const char *name, const char *prefix, long *pid)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen))
        return false;
    const char *last = strrchr(name, '.');
    if (!last || last[1] == '\0' || strspn(last + 1, "0123456789") != strlen(last + 1))
        return false;
    const char *p = last;
    while (p > name + plen && p[-1] >= '0' && p[-1] <= '9')
        p--;
    if (p == last || p <= name + plen || p[-1] != '.' || last - p > 10)
        return false;
    *pid = strtol(p, NULL, 10);
    return *pid > 0 && *pid <= INT_MAX;
}

/* Remove the ".tmp.<base>.<pid>.<n>" files in DIR whose creator is gone:
 * it was killed between its create and its rename, and nobody else will
 * ever rename or read that file. A live pid's is left alone, ours too (a
 * thread of this process may be creating it now); a reused pid only
 * delays the removal, as for the bus directory's sweep. Only regular
 * files: topic.c's temporary directories are bus_dir.c's to sweep. Who
 * may not unlink (another user's, in a sticky directory) leaves it. Best
 * effort: nothing here is the caller's failure. */
static void sweep_dead_tmps(const char *dir)
{
    DIR *d = NULL;
    if (evb_open_dir(dir, &d))
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        if (!tmp_name_pid(e->d_name, ".tmp.", &pid) || evb_proc_start((int)pid))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/*
 * The callers map the file shared and write through the mapping: a page
 * that is a hole (the file copied sparse, restored from a backup, grown by
 * hand) is allocated by the write fault, and a full file system (a full
 * tmpfs, a full disk) answers that with SIGBUS. Its blocks are made to
 * exist here instead, where a full file system is -ENOSPC and a message.
 * Only when the file has fewer blocks than bytes: one fstat otherwise. A
 * file system without fallocate gets the file as it is.
 */
static int fill_holes(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    if (st.st_size <= 0 || (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size)
        return 0;
    if (fallocate(fd, 0, 0, st.st_size) == 0)
        return 0;
    int e = errno;
    if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL || e == ENODEV)
        return 0;
    return evb_err_set(-e, "%s: it has holes, and its blocks cannot be reserved before it "
                       "is mapped: %s", path, strerror(e));
}

int evb_file_open_or_create(const char *path, mode_t mode, size_t bytes, bool sync,
                            void (*init)(void *map, void *arg), void *arg)
{
    const char *slash = strrchr(path, '/');
    if (slash && slash != path && slash - path < PATH_MAX) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        sweep_dead_tmps(dir);
    }

    /* A file at PATH is never mid-creation, so an empty or zeroed one is
     * damage for the caller to report, not a new file. Losing the race to
     * another creator is fine: its file is as good. A few tries cover a
     * file deleted between our create and our open. */
    for (int tries = 0;; tries++) {
        int fd = evb_open_file(AT_FDCWD, path, O_RDWR, 0, EVB_FILE_REG);
        if (fd >= 0) {
            int rc = fill_holes(fd, path);
            if (rc)
                close(fd);
            return rc ? rc : fd;
        }
        if (fd != -ENOENT || tries == 3)
            return evb_open_fail(fd, path);
        int rc = evb_file_create(path, mode, bytes, sync, init, arg);
        if (rc && rc != -EEXIST)
            return rc;
    }
}
