/*
 * safe_open.c - opening what lives in a bus or data directory without
 * trusting what is there: a FIFO must not hang us, a symlink anywhere in
 * the path must not redirect a write (root writing bus.meta through a link
 * planted by another user), a directory or device must not pass for a
 * file; directories made here get exactly the mode asked. Which files
 * those are, and what is done with them once open, is the callers'.
 */
#include "safe_open.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"

static const char *kind_found(mode_t m)
{
    if (S_ISREG(m))
        return "regular file";
    if (S_ISDIR(m))
        return "directory";
    if (S_ISLNK(m))
        return "symlink";
    if (S_ISFIFO(m))
        return "fifo";
    if (S_ISSOCK(m))
        return "socket";
    if (S_ISCHR(m))
        return "character device";
    if (S_ISBLK(m))
        return "block device";
    return "file of unknown type";
}

static bool kind_ok(mode_t m, enum evb_file_kind kind)
{
    return kind == EVB_FILE_DIR ? S_ISDIR(m) : S_ISREG(m);
}

static int refuse(const char *path, mode_t m, enum evb_file_kind kind)
{
    return evb_err_set(-EVB_EFTYPE, "%s: found a %s, expected a %s", path, kind_found(m),
                       kind == EVB_FILE_DIR ? "directory" : "regular file");
}

/* Whether this kernel has openat2(2) (5.6+); learnt on first use. Relaxed:
 * every thread that races computes the same answer. */
static _Atomic int have_openat2 = 1;

void evb_safe_open_use_walk(void)
{
    /* Relaxed: see have_openat2. */
    atomic_store_explicit(&have_openat2, 0, memory_order_relaxed);
}

/* The components of PATH before its last, walked one openat() at a time
 * with O_NOFOLLOW|O_DIRECTORY: the fallback for kernels without openat2.
 * Returns a descriptor of the parent (or DIRFD itself, *OWNED false) and
 * the last component in *LEAF, or a negative errno. */
static int walk_parent(int dirfd, const char *path, const char **leaf, bool *owned)
{
    const char *slash = strrchr(path, '/');
    *owned = false;
    *leaf = path;
    if (!slash)
        return dirfd;
    char buf[4096];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n);
    buf[n] = '\0';
    int cur = dirfd;
    char *p = buf;
    if (path[0] == '/') {
        cur = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
            return -errno;
        *owned = true;
        while (*p == '/')
            p++;
    }
    while (*p) {
        char *end = strchr(p, '/');
        if (end)
            *end = '\0';
        if (*p) {
            int next = openat(cur, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int e = errno;
            struct stat st;
            /* A symlink on the way is refused as openat2 would (ELOOP). */
            if (next < 0 && e == ENOTDIR && fstatat(cur, p, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                e = ELOOP;
            if (*owned)
                close(cur);
            if (next < 0)
                return -e;
            cur = next;
            *owned = true;
        }
        if (!end)
            break;
        p = end + 1;
    }
    *leaf = slash + 1;
    return cur;
}

/* openat() of PATH, following no symlink in any of its components. */
static int open_nofollow(int dirfd, const char *path, int flags, mode_t mode)
{
    if (atomic_load_explicit(&have_openat2, memory_order_relaxed)) {
        struct open_how how = {
            .flags = (uint64_t)flags,
            .mode = (flags & O_CREAT) ? mode : 0,
            .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
            return (int)fd;
        /* EPERM: a seccomp filter that refuses what it does not know. */
        atomic_store_explicit(&have_openat2, 0, memory_order_relaxed);
    }
    const char *leaf;
    bool owned;
    int pfd = walk_parent(dirfd, path, &leaf, &owned);
    if (pfd < 0 && pfd != AT_FDCWD) {
        errno = -pfd;
        return -1;
    }
    int fd = openat(pfd, leaf, flags, mode);
    int e = errno;
    if (owned)
        close(pfd);
    errno = e;
    return fd;
}

int evb_fid_stat(int fd, const char *path, struct evb_fid *out)
{
    const unsigned want = STATX_TYPE | STATX_MODE | STATX_INO | STATX_NLINK | STATX_SIZE;
    struct statx sx;
    int rc = path ? statx(AT_FDCWD, path, 0, want, &sx)
                  : statx(fd, "", AT_EMPTY_PATH, want, &sx);
    if (rc == 0 && (sx.stx_mask & want) == want) {
        *out = (struct evb_fid){.dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
                                .ino = sx.stx_ino, .size = sx.stx_size,
                                .nlink = sx.stx_nlink, .mode = sx.stx_mode};
        return 0;
    }
    if (rc < 0 && errno != ENOSYS && errno != EPERM && errno != EINVAL)
        return -errno;
    struct stat st;
    if ((path ? stat(path, &st) : fstat(fd, &st)) < 0)
        return -errno;
    *out = (struct evb_fid){.dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino,
                            .size = (uint64_t)st.st_size, .nlink = (uint64_t)st.st_nlink,
                            .mode = st.st_mode};
    return 0;
}

int evb_open_file(int dirfd, const char *path, int flags, mode_t mode,
                  enum evb_file_kind kind)
{
    int extra = O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (kind == EVB_FILE_DIR ? O_DIRECTORY : 0);
    if (flags & O_PATH)
        extra &= ~O_NONBLOCK; /* openat2 refuses O_PATH with other flags */
    /* Whoever may write through the descriptor must be writing the file
     * it named, not one that a hard link planted under that name shares
     * (root rewriting a file of its own through another user's bus). The
     * link count is only known after the open, so a truncation waits for
     * it too. */
    bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
    int fd = open_nofollow(dirfd, path, (flags & ~O_TRUNC) | extra, mode);
    struct stat st;
    if (fd < 0) {
        int e = errno;
        /* These are how open(2) says the kind is wrong: a symlink under
         * O_NOFOLLOW, a directory opened for writing, a non-directory
         * under O_DIRECTORY, a FIFO without reader or a socket. Look at
         * what is there (without following it) to say so. */
        if ((e == ELOOP || e == EISDIR || e == ENOTDIR || e == ENXIO) &&
            fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && !kind_ok(st.st_mode, kind))
            return refuse(path, st.st_mode, kind);
        /* Not the last component, then: a directory on the way. */
        if (e == ELOOP)
            return evb_err_set(-EVB_EFTYPE, "%s: found a symlink on the way, expected a "
                               "directory", path);
        return -e;
    }
    struct evb_fid id;
    int rc = evb_fid_stat(fd, NULL, &id);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (!kind_ok(id.mode, kind)) {
        close(fd);
        return refuse(path, id.mode, kind);
    }
    if (writes && kind == EVB_FILE_REG && id.nlink != 1) {
        close(fd);
        return evb_err_set(-EVB_EFTYPE, "%s: found a file with %lu hard links, expected a "
                           "regular file with one", path, (unsigned long)id.nlink);
    }
    if ((flags & O_TRUNC) && id.size && ftruncate(fd, 0) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    /* Blocking I/O from here on, as a plain open(2) would have given (an
     * O_PATH descriptor has no status flags to set). */
    if (!(flags & (O_NONBLOCK | O_PATH))) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    return fd;
}

int evb_open_fail(int rc, const char *path)
{
    if (rc == -EVB_EFTYPE)
        return rc; /* evb_open_file() said what it found */
    return evb_err_set(rc, "%s: %s", path, strerror(-rc));
}

int evb_open_dir(const char *path, DIR **out)
{
    *out = NULL;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_DIR);
    if (fd < 0)
        return fd;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    *out = d;
    return 0;
}

/* The parent of PATH opened O_PATH following no symlink (any component),
 * and its last component in *LEAF; AT_FDCWD for a bare name. */
static int open_parent(const char *path, const char **leaf)
{
    const char *slash = strrchr(path, '/');
    *leaf = slash ? slash + 1 : path;
    if (!slash)
        return AT_FDCWD;
    char buf[4096];
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n);
    buf[n] = '\0';
    return evb_open_file(AT_FDCWD, buf, O_PATH, 0, EVB_FILE_DIR);
}

int evb_mkdir_nofollow(const char *path, mode_t mode)
{
    const char *leaf;
    int pfd = open_parent(path, &leaf);
    if (pfd < 0 && pfd != AT_FDCWD)
        return pfd == -EVB_EFTYPE ? pfd : evb_open_fail(pfd, path);
    int rc = mkdirat(pfd, leaf, mode) < 0 ? -errno : 0;
    if (pfd >= 0)
        close(pfd);
    return rc;
}

int evb_mkdir_mode(const char *path, mode_t mode)
{
    /* Made private first, then widened to exactly MODE on the directory
     * just made (fchmod, not chmod by name): the umask must not narrow
     * what a group was given, and nothing can be created in the
     * directory before its mode is final. Made relative to its parent
     * opened without following a symlink, so nothing is ever made where
     * a link planted on the way points. */
    int rc = evb_mkdir_nofollow(path, 0700);
    if (rc)
        return rc;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_DIR);
    if (fd < 0)
        return fd;
    rc = fchmod(fd, mode) < 0 ? -errno : 0;
    close(fd);
    return rc;
}
