/*
 * flush_error.c - the text of a partition's flush error, kept beside its
 * code. The ring's flush_error word carries only -errno to producers and
 * `evbus info` in other threads and processes; the flusher that failed
 * also writes what its detail said to <part>/flush.error, and the next
 * flusher to take the partition removes it. Setting and clearing the code
 * is durable_wait.c's and flush_lock.c's.
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
#include "flush_internal.h"
#include "safe_open.h"
#include "seg_internal.h"

#define FLUSH_ERROR_NAME "flush.error"
#define FLUSH_ERROR_MAX 512 /* bytes of text kept */

static int error_path(char *out, size_t cap, const char *pdir)
{
    int n = snprintf(out, cap, "%s/" FLUSH_ERROR_NAME, pdir);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

void evb_flush_error_note(const struct fpart *fp, int err)
{
    char path[PATH_MAX + 16], text[FLUSH_ERROR_MAX];
    if (error_path(path, sizeof path, fp->dir))
        return;
    const char *detail = evb_err_get();
    int n = snprintf(text, sizeof text, "%d %s\n", err, *detail ? detail : strerror(-err));
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    /* Readable by whoever may read the ring (a group that runs `info`). */
    struct stat st;
    mode_t mode = fstat(fp->r->fd, &st) == 0 ? (st.st_mode & 0666) : 0600;
    /* No O_TRUNC: what is at the name is checked (a regular file of one
     * link, no symlink) before anything in it changes. */
    int fd = evb_open_file(AT_FDCWD, path, O_WRONLY | O_CREAT, mode, EVB_FILE_REG);
    if (fd < 0)
        return; /* a report: the code is in the ring all the same */
    if (ftruncate(fd, 0) == 0)
        (void)evb_seg_write_at(fd, text, len, 0);
    close(fd);
}

void evb_flush_error_clear(const char *pdir)
{
    char path[PATH_MAX + 16];
    if (error_path(path, sizeof path, pdir) == 0)
        (void)unlink(path);
}

int evb_flush_error_text(const char *pdir, int err, char *out, size_t cap)
{
    char path[PATH_MAX + 16], buf[FLUSH_ERROR_MAX];
    if (cap)
        out[0] = '\0';
    if (!err || !cap || error_path(path, sizeof path, pdir))
        return -ENOENT;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0) {
        evb_err_clear(); /* no text: the caller says what the code means */
        return -ENOENT;
    }
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n <= 0)
        return -ENOENT;
    buf[n] = '\0';
    /* "CODE TEXT": the text of the error the ring says, not an older one. */
    char *end;
    long code = strtol(buf, &end, 10);
    if (end == buf || *end != ' ' || code != err)
        return -ENOENT;
    end++;
    size_t k = 0;
    for (; end[k] && end[k] != '\n' && k + 1 < cap; k++)
        out[k] = (end[k] >= 0x20 && end[k] < 0x7f) ? end[k] : '?'; /* one printable line */
    out[k] = '\0';
    return k ? 0 : -ENOENT;
}

void evb_flush_error_guess(const char *pdir, int err, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (err == -ENOSPC || err == -EDQUOT)
        snprintf(out, cap, "the file system of %s is full (or its quota is): the flusher "
                 "could write neither the log nor its note of why there", pdir);
    else if (err == -EROFS)
        snprintf(out, cap, "the file system of %s is read-only: the flusher could write "
                 "neither the log nor its note of why there", pdir);
    else if (err)
        snprintf(out, cap, "%s (the flusher kept no note of why in %s)", strerror(-err),
                 pdir);
}
