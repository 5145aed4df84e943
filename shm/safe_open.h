/*
 * safe_open.h - the one way to open a file or directory that lives inside a
 * bus or data directory: never through a symlink in its last component,
 * never blocking on a FIFO, and only when it is of the kind the caller
 * expects. Which paths count as "inside" is the caller's business.
 */
#ifndef EVB_SAFE_OPEN_H
#define EVB_SAFE_OPEN_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

/* What the caller expects to find at the path. */
enum evb_file_kind {
    EVB_FILE_REG, /* a regular file */
    EVB_FILE_DIR, /* a directory */
};

/* The code for "something other than the expected kind is there" (a FIFO,
 * socket, device, symlink, or a directory where a file belongs). Linux has
 * no EFTYPE; EMEDIUMTYPE ("wrong medium type") is the nearest and nothing
 * else in evbus returns it. evbus.h documents it. */
#define EVB_EFTYPE EMEDIUMTYPE

/*
 * Open PATH (relative to DIRFD, or AT_FDCWD) following no symlink in any
 * component (openat2 with RESOLVE_NO_SYMLINKS, else a walk of
 * O_NOFOLLOW|O_DIRECTORY opens; a symlink on the way is -ELOOP), with
 * FLAGS plus O_NOFOLLOW,
 * O_NONBLOCK and O_CLOEXEC (O_DIRECTORY too for EVB_FILE_DIR); MODE is
 * used with O_CREAT. The file is fstat'ed and anything but KIND is closed
 * and refused with -EVB_EFTYPE, the detail naming PATH and what was found
 * ("fifo", "symlink", "directory", ...). A regular file opened for writing
 * (or O_TRUNC) must have one link: a hard link is refused the same way
 * before anything is truncated. O_NONBLOCK is cleared again unless
 * FLAGS asked for it, so a regular file behaves exactly as after open(2).
 * Returns the descriptor or a negative errno. Only a refusal sets the
 * detail for evb_last_error(): callers that expect a failure (ENOENT,
 * O_DIRECT refused) keep whatever detail was there.
 */
int evb_open_file(int dirfd, const char *path, int flags, mode_t mode,
                  enum evb_file_kind kind);

/* What a check of a file's identity needs, without its times. */
struct evb_fid {
    uint64_t dev, ino, size, nlink;
    mode_t mode;
};
/* Fill *OUT for FD (PATH NULL) or for PATH (followed, as stat(2)): 0 or
 * -errno. statx(2) asked for type, mode, inode, links and size only: on
 * kernels with fine-grained timestamps (Linux 6.13 on) a stat that reads
 * a file's ctime marks the inode, and the next write stamps it anew,
 * which made the next fdatasync of a segment a third slower on this VM
 * (perf/RESULTS.md, 2026-12-04 seventh session). fstat(2) where statx is
 * refused (an old kernel, a seccomp filter). */
int evb_fid_stat(int fd, const char *path, struct evb_fid *out);

/* The detail for a failed evb_open_file() of PATH the caller reports:
 * "PATH: <strerror>", or the refusal already set. Returns RC. */
int evb_open_fail(int rc, const char *path);

/* evb_open_file(AT_FDCWD, PATH, O_RDONLY, 0, EVB_FILE_DIR) wrapped in a
 * DIR stream, for walking a directory inside a bus or data directory.
 * 0 or a negative errno, detail as evb_open_file(); *OUT is NULL on
 * failure. */
int evb_open_dir(const char *path, DIR **out);

/* Tests: take the fallback walk (as on kernels without openat2) from now
 * on in this process. */
void evb_safe_open_use_walk(void);

/* mkdir PATH (MODE less the umask) relative to its parent, opened
 * following no symlink in any component: a link on the way is -EMEDIUMTYPE
 * (with the detail) and nothing is made. 0, -EEXIST, or another negative
 * errno. */
int evb_mkdir_nofollow(const char *path, mode_t mode);

/* evb_mkdir_nofollow(), then exactly MODE (permission, set-gid and sticky
 * bits) whatever the umask, set on the directory opened without following
 * a symlink. 0, -EEXIST, or another negative errno (detail only for a
 * refusal). */
int evb_mkdir_mode(const char *path, mode_t mode);

#endif
