/*
 * safe_open.c - opening what lives in a bus or data directory without
 * trusting what is there: a FIFO must not hang us, a symlink must not
 * redirect a write (root writing bus.meta through a link planted by another
 * user), a directory or device must not pass for a file. Which files those
 * are, and what is done with them once open, is the callers'.
 */
#include "safe_open.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
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

int evb_open_file(int dirfd, const char *path, int flags, mode_t mode,
                  enum evb_file_kind kind)
{
    int extra = O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (kind == EVB_FILE_DIR ? O_DIRECTORY : 0);
    int fd = openat(dirfd, path, flags | extra, mode);
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
        return -e;
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!kind_ok(st.st_mode, kind)) {
        close(fd);
        return refuse(path, st.st_mode, kind);
    }
    /* Blocking I/O from here on, as a plain open(2) would have given. */
    if (!(flags & O_NONBLOCK)) {
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
