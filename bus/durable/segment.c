/*
 * segment.c - segment files of a durable partition: names and listing,
 * creation (built aside and renamed in), reading (pread, into a window), and the small
 * file helpers the other segment files share (seg_internal.h). What the
 * bytes mean is seg_reader.c's; the index is index.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "err.h"
#include "nocancel.h"
#include "safe_open.h"
#include "seg_internal.h"

int evb_seg_geom_check(const struct evb_seg_geom *g)
{
    uint64_t c = g->capacity;
    if (c < 4096 || (c & (c - 1)) || !g->segment_bytes || g->segment_bytes % c ||
        g->segment_bytes > SIZE_MAX || g->max_frame < EVB_FRAME_HDR || g->max_frame > c)
        return evb_err_set(-EINVAL, "segment geometry: segment %llu bytes, ring %llu, "
                           "max frame %u", (unsigned long long)g->segment_bytes,
                           (unsigned long long)c, g->max_frame);
    return 0;
}

void evb_seg_part_dir(const char *ddir, uint32_t part, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%u", ddir, part);
}

int evb_seg_path(char *out, size_t cap, const char *dir, uint64_t base, const char *ext)
{
    int n = snprintf(out, cap, "%s/%020llu.%s", dir, (unsigned long long)base, ext);
    if (n < 0 || (size_t)n >= cap)
        return evb_err_set(-ENAMETOOLONG, "%s: segment path too long", dir);
    return 0;
}

/* NAME is exactly 20 digits (fitting 64 bits) and ".log". */
static bool parse_log_name(const char *name, uint64_t *base)
{
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        unsigned d = (unsigned)(unsigned char)name[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (strcmp(name + 20, ".log"))
        return false;
    *base = v;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int evb_seg_list(const char *dir, uint64_t **bases, size_t *n)
{
    *bases = NULL;
    *n = 0;
    DIR *d;
    int rc = evb_open_dir(dir, &d);
    if (rc < 0)
        return evb_open_fail(rc, dir);
    uint64_t *v = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                rc = evb_err_set(-errno, "%s: %s", dir, strerror(errno));
            break;
        }
        uint64_t b;
        if (!parse_log_name(e->d_name, &b))
            continue;
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            uint64_t *nv = realloc(v, ncap * sizeof *v);
            if (!nv) {
                rc = evb_err_set(-ENOMEM, "%s: listing segments", dir);
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[len++] = b;
    }
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    if (len)
        qsort(v, len, sizeof *v, cmp_u64);
    *bases = v;
    *n = len;
    return 0;
}

int evb_seg_list_checked(const char *dir, const struct evb_seg_geom *g, uint64_t **bases,
                         size_t *n)
{
    int rc = evb_seg_geom_check(g);
    if (rc || (rc = evb_seg_list(dir, bases, n)))
        return rc;
    for (size_t i = 0; i < *n; i++) {
        uint64_t b = (*bases)[i];
        if (b % g->segment_bytes == 0 && b <= UINT64_MAX - g->segment_bytes)
            continue;
        rc = evb_err_set(-EBADMSG, "%s: segment %020llu does not start at a multiple of "
                         "the segment size %llu", dir, (unsigned long long)b,
                         (unsigned long long)g->segment_bytes);
        free(*bases);
        *bases = NULL;
        *n = 0;
        return rc;
    }
    return 0;
}

int evb_seg_read_at(int fd, void *buf, size_t n, off_t off)
{
    for (uint8_t *p = buf; n;) {
        ssize_t k = pread(fd, p, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k ? -errno : -ENODATA;
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

/* Holes: a segment is made full size but reserved (written) only as the
 * log reaches it (evb_seg_create, evb_seg_reserve), so past the log's end
 * most of it is a hole. The walks that look for frames or bytes past the
 * end skip those, or a rebuild would read whole segments for a few bytes
 * of log (perf/RESULTS.md, rebuild_cost). A hole reads as zeros, which
 * hold no frame (a stamp is never 0, ring_format.h): skipping one finds
 * exactly what reading it would. lseek moves the file offset only, which
 * no reader of the segment files uses (pread); it is no cancellation
 * point. */
uint64_t evb_seg_data_at(int fd, uint64_t at, uint64_t end)
{
    if (at >= end || at > INT64_MAX)
        return at < end ? at : end;
    off_t d = lseek(fd, (off_t)at, SEEK_DATA);
    if (d < 0)
        return errno == ENXIO ? end : at; /* ENXIO: no data at or past AT */
    uint64_t u = (uint64_t)d;
    if (u <= at)
        return at;
    if (u >= end)
        return end;
    /* Never past data: down to a frame boundary, not below AT. */
    u -= u % EVB_FRAME_ALIGN;
    return u > at ? u : at;
}

uint64_t evb_seg_data_end(int fd, uint64_t from, uint64_t end)
{
    uint64_t last = from;
    for (uint64_t x = from; x < end && x <= INT64_MAX;) {
        off_t d = lseek(fd, (off_t)x, SEEK_DATA);
        if (d < 0)
            return errno == ENXIO ? last : end;
        if ((uint64_t)d >= end)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0 || h <= d)
            return end; /* cannot tell: all of it may be data */
        last = (uint64_t)h < end ? (uint64_t)h : end;
        x = (uint64_t)h;
    }
    return last;
}

int evb_seg_write_at(int fd, const void *buf, size_t n, off_t off)
{
    for (const uint8_t *p = buf; n;) {
        ssize_t k = off < 0 ? write(fd, p, n) : pwrite(fd, p, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k ? -errno : -EIO;
        p += k;
        n -= (size_t)k;
        if (off >= 0)
            off += k;
    }
    return 0;
}

int evb_seg_zero_range(int fd, const char *path, uint64_t from, uint64_t n)
{
    size_t chunk = n < EVB_SEG_IO_CHUNK ? (size_t)n : EVB_SEG_IO_CHUNK;
    uint8_t *z = calloc(1, chunk ? chunk : 1);
    if (!z)
        return evb_err_set(-ENOMEM, "%s: zeroing", path);
    int rc = 0;
    for (uint64_t done = 0; done < n && !rc; done += chunk) {
        size_t k = n - done < chunk ? (size_t)(n - done) : chunk;
        rc = evb_seg_write_at(fd, z, k, (off_t)(from + done));
    }
    free(z);
    if (rc)
        evb_err_set(rc, "%s: writing zeros: %s", path, strerror(-rc));
    return rc;
}

int evb_seg_sync_dir(const char *dir)
{
    int fd = evb_open_file(AT_FDCWD, dir, O_RDONLY, 0, EVB_FILE_DIR);
    if (fd < 0)
        return fd == -EVB_EFTYPE ? fd : evb_err_set(fd, "%s: fsync: %s", dir, strerror(-fd));
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    if (rc)
        evb_err_set(rc, "%s: fsync: %s", dir, strerror(-rc));
    return rc;
}

int evb_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        /* Relative to the parent opened following no symlink: a planted
         * link is refused (-EMEDIUMTYPE), nothing made where it points. */
        int rc = evb_mkdir_nofollow(buf, 0770);
        if (rc && rc != -EEXIST)
            return rc;
        *p = '/';
    }
    int rc = evb_mkdir_nofollow(buf, 0770);
    if (rc && rc != -EEXIST)
        return rc;
    struct stat st;
    if (stat(buf, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * Zeros over [FROM, FROM + N) of PATH written O_DIRECT, in whole blocks:
 * zeros through the page cache would be dirty pages of the very file
 * sync leaders fdatasync meanwhile (a fdatasync writes every dirty page
 * of the file, so a leader would pay for the whole step; perf/RESULTS.md,
 * issue 13, zero_fill_stall). 0 done, 1 not possible here (a file system
 * without O_DIRECT, an unaligned range: the caller goes through the page
 * cache), or -errno.
 */
static int zero_direct(const char *path, uint64_t from, uint64_t n)
{
    if (from % EVB_SEG_DIO || n % EVB_SEG_DIO)
        return 1;
    int fd = evb_open_file(AT_FDCWD, path, O_WRONLY | O_DIRECT | O_CLOEXEC, 0, EVB_FILE_REG);
    if (fd < 0)
        return 1;
    size_t chunk = n < EVB_SEG_IO_CHUNK ? (size_t)n : EVB_SEG_IO_CHUNK;
    void *z = NULL;
    int rc = posix_memalign(&z, EVB_SEG_DIO, chunk ? chunk : EVB_SEG_DIO) ? -ENOMEM : 0;
    if (!rc)
        memset(z, 0, chunk);
    for (uint64_t done = 0; done < n && !rc; done += chunk) {
        size_t k = n - done < chunk ? (size_t)(n - done) : chunk;
        rc = evb_seg_write_at(fd, z, k, (off_t)(from + done));
    }
    free(z);
    close(fd);
    /* Refused at the first write (some file systems take the open but
     * not the I/O): the page cache it is. */
    return rc == -EINVAL ? 1 : rc;
}

int evb_seg_reserve(int fd, const char *path, uint64_t from, uint64_t n, bool zero_fill)
{
    int rc = -posix_fallocate(fd, (off_t)from, (off_t)n);
    if (rc)
        return evb_err_set(rc, "%s: cannot reserve %llu bytes: %s", path,
                           (unsigned long long)n, strerror(-rc));
    if (!zero_fill)
        return 0;
    /* The whole blocks inside direct; a partial block at either end (a
     * reservation from where a taken-over log goes on, evb_flush_seg_open)
     * through the page cache: a few bytes, not the step. */
    uint64_t a = (from + EVB_SEG_DIO - 1) / EVB_SEG_DIO * EVB_SEG_DIO;
    uint64_t e = (from + n) / EVB_SEG_DIO * EVB_SEG_DIO;
    if (a >= e)
        a = e = from + n; /* no whole block: all through the page cache */
    if (a > from && (rc = evb_seg_zero_range(fd, path, from, a - from)))
        return rc;
    if (e > a) {
        rc = zero_direct(path, a, e - a);
        if (rc < 0)
            return evb_err_set(rc, "%s: writing zeros: %s", path, strerror(-rc));
        if (rc && (rc = evb_seg_zero_range(fd, path, a, e - a)))
            return rc;
    }
    if (from + n > e && (rc = evb_seg_zero_range(fd, path, e, from + n - e)))
        return rc;
    if (fdatasync(fd) < 0)
        return evb_err_set(-errno, "%s: fdatasync: %s", path, strerror(errno));
    return 0;
}

int evb_seg_create(const char *dir, uint64_t base, uint64_t bytes, bool zero_fill,
                   uint32_t mode)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    int rc = evb_seg_path(path, sizeof path, dir, base, "log");
    if (rc)
        return rc;
    if (!bytes || bytes > INT64_MAX)
        return evb_err_set(-EINVAL, "%s: segment of %llu bytes", path,
                           (unsigned long long)bytes);
    int fd = evb_open_file(AT_FDCWD, path, O_RDWR, 0, EVB_FILE_REG);
    if (fd >= 0) {
        struct stat st;
        rc = fstat(fd, &st) ? -errno : 0;
        if (!rc && (uint64_t)st.st_size == bytes)
            return fd;
        close(fd);
        if (rc)
            return evb_err_set(rc, "%s: %s", path, strerror(-rc));
        return evb_err_set(-EBADMSG, "%s: %lld bytes, a segment has %llu", path,
                           (long long)st.st_size, (unsigned long long)bytes);
    }
    if (fd != -ENOENT)
        return evb_open_fail(fd, path);

    /* Built aside and renamed in: a segment under its real name always
     * has its full size, whatever crash interrupted the building. */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = evb_open_file(AT_FDCWD, tmp, O_RDWR | O_CREAT | O_TRUNC, mode, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, tmp);
    (void)fchmod(fd, mode); /* the umask must not narrow the topic's mode */
    /* Full length, reserved only at its start: a partition takes disk as
     * it fills, not a segment at once (evb_seg_reserve). */
    if (ftruncate(fd, (off_t)bytes) < 0) {
        rc = evb_err_set(-errno, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    if ((rc = evb_seg_reserve(fd, tmp, 0, bytes < EVB_SEG_RESERVE_FIRST ? bytes
                                                                        : EVB_SEG_RESERVE_FIRST,
                              zero_fill)))
        goto fail;
    if (fdatasync(fd) < 0 || rename(tmp, path) < 0) {
        rc = evb_err_set(-errno, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    if ((rc = evb_seg_sync_dir(dir))) {
        close(fd);
        return rc;
    }
    return fd;
fail:
    close(fd);
    unlink(tmp);
    return rc;
}

int evb_seg_check_file(int fd, const char *path, uint64_t bytes, struct evb_seg_id *id)
{
    /* Without the file's times (evb_fid_stat): this runs after every
     * round's write and fdatasync. */
    struct evb_fid st, at;
    int rc = evb_fid_stat(fd, NULL, &st);
    if (rc)
        return evb_err_set(rc, "%s: fstat: %s", path, strerror(-rc));
    struct evb_seg_id was = id ? *id : (struct evb_seg_id){0};
    if (id)
        *id = (struct evb_seg_id){st.dev, st.ino};
    if (st.nlink == 0)
        return evb_err_set(-EIO, "%s: removed while being written: what was written to it "
                           "is in no file a reader or a rebuild will open", path);
    /* A segment keeps its full size from its creation on (evb_seg_create):
     * less is a cut, whatever a later write at a higher offset extended. */
    if (st.size < bytes)
        return evb_err_set(-EIO, "%s: cut to %lld bytes while being written (a segment "
                           "has %llu): what was written past the cut is lost; the flusher "
                           "makes the file whole again and goes on", path,
                           (long long)st.size, (unsigned long long)bytes);
    if (!was.ino) {
        if ((rc = evb_fid_stat(-1, path, &at)) < 0) {
            if (rc != -ENOENT)
                return evb_err_set(rc, "%s: stat: %s", path, strerror(-rc));
            return evb_err_set(-EIO, "%s: gone (renamed away?) while being written: what "
                               "was written to it is in no file a reader or a rebuild will "
                               "open", path);
        }
        was = (struct evb_seg_id){at.dev, at.ino};
    }
    if (was.dev != st.dev || was.ino != st.ino)
        return evb_err_set(-EIO, "%s: replaced while being written (now inode %llu, written "
                           "through inode %llu): what was written to the old file is lost",
                           path, (unsigned long long)(id ? st.ino : was.ino),
                           (unsigned long long)(id ? was.ino : st.ino));
    return 0;
}

/* Open segment BASE; with SHORT a file cut short (damage) is read as far
 * as it goes, in whole 8-byte words, and s->bytes says how far. */
static int map_file(struct evb_seg *s, const char *dir, uint64_t base, uint64_t bytes,
                    bool short_ok)
{
    char path[PATH_MAX];
    uint8_t *buf = s->buf;
    size_t cap = s->buf_cap;
    /* The window's buffer is kept for the next segment; its bytes are not. */
    *s = (struct evb_seg){.fd = -1, .base = base, .bytes = bytes, .stable = UINT64_MAX,
                          .buf = buf, .buf_cap = cap};
    int rc = evb_seg_path(path, sizeof path, dir, base, "log");
    if (rc)
        return rc;
    if (!bytes || bytes > SIZE_MAX || bytes > INT64_MAX)
        return evb_err_set(-EINVAL, "%s: reading %llu bytes", path, (unsigned long long)bytes);
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    uint64_t have = (uint64_t)st.st_size - (uint64_t)st.st_size % EVB_FRAME_ALIGN;
    if (short_ok && (uint64_t)st.st_size < bytes && have > 0)
        s->bytes = bytes = have;
    if ((uint64_t)st.st_size < bytes) {
        rc = evb_err_set(-EBADMSG, "%s: %lld bytes, a segment has %llu", path,
                         (long long)st.st_size, (unsigned long long)bytes);
        goto fail;
    }
    s->fd = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

int evb_seg_map(struct evb_seg *s, const char *dir, uint64_t base, uint64_t bytes)
{
    s->buf = NULL; /* S is the caller's fresh handle, not one open before */
    s->buf_cap = 0;
    return map_file(s, dir, base, bytes, false);
}

void evb_seg_unmap(struct evb_seg *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->buf);
    s->buf = NULL;
    s->buf_cap = 0;
    s->win_len = 0;
    s->fd = -1;
}

/* Bytes read into a window at a time, unless a frame needs more: a walk
 * reads a segment in steps this size (one pread each). A buffer grown far
 * past it for one large frame is given back at the next read. */
#define SEG_WINDOW (256u << 10)

const uint8_t *evb_seg_bytes(struct evb_seg *s, uint64_t at, size_t n)
{
    s->err = 0;
    if (s->fd < 0 || at > s->bytes || n > s->bytes - at)
        return NULL;
    if (at >= s->win_at && at - s->win_at <= s->win_len && n <= s->win_len - (at - s->win_at))
        return s->buf + (at - s->win_at);
    /* From a word boundary, so that frame headers in the buffer are as
     * aligned as in the file (their words are loaded as such). */
    uint64_t from = at - at % EVB_FRAME_ALIGN;
    size_t lead = (size_t)(at - from), need = n + lead;
    size_t want = need > SEG_WINDOW ? need : SEG_WINDOW;
    if (want > s->bytes - from)
        want = (size_t)(s->bytes - from);
    size_t cap = want > SEG_WINDOW ? want : SEG_WINDOW;
    if (cap > s->buf_cap || s->buf_cap > 4 * cap) {
        free(s->buf);
        s->buf_cap = 0;
        s->win_len = 0;
        if (!(s->buf = malloc(cap))) {
            s->err = evb_err_set(-ENOMEM, "segment %020llu: a read window of %zu bytes",
                                 (unsigned long long)s->base, cap);
            return NULL;
        }
        s->buf_cap = cap;
    }
    /* pread is a cancellation point; a reader's call is not (nocancel.h). */
    EVB_NO_CANCEL;
    s->win_len = 0;
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(s->fd, s->buf + got, want - got, (off_t)(from + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            /* Never -1, a step's offset break (EVB_SEG_EREAD). */
            int e = errno == EPERM || !errno ? EIO : errno;
            s->err = evb_err_set(-e, "segment %020llu: read at file offset %llu: %s",
                                 (unsigned long long)s->base, (unsigned long long)(from + got),
                                 strerror(e));
            return NULL;
        }
        if (k == 0)
            break; /* cut short since it was opened: zeros below */
        got += (size_t)k;
    }
    memset(s->buf + got, 0, want - got);
    s->win_at = from;
    /* What a later call may take from here without reading again: the
     * bytes below the stable position only, and none the file lacked (it
     * may be written there yet). What this call asked for is returned
     * either way. */
    uint64_t keep = got;
    if (s->stable != UINT64_MAX) {
        uint64_t lim = s->stable > s->base + from ? s->stable - s->base - from : 0;
        keep = keep < lim ? keep : lim;
    }
    s->win_len = (size_t)keep;
    return s->buf + lead;
}

int evb_seg_fill_out(const char *path, uint64_t bytes)
{
    int fd = evb_open_file(AT_FDCWD, path, O_RDWR, 0, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0 ||
        ((uint64_t)st.st_size < bytes &&
         (ftruncate(fd, (off_t)bytes) < 0 || fdatasync(fd) < 0)))
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

int evb_seg_hold(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                 uint64_t pos)
{
    uint64_t base = pos - pos % g->segment_bytes;
    if (s->fd >= 0 && s->base == base)
        return 0;
    /* A reader's step to the next segment (open, close: cancellation
     * points) is never cut short with the old one half let go (nocancel.h). */
    EVB_NO_CANCEL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    /* The walks read a truncated segment up to where it was cut: the
     * frames before are intact, what is missing is damage they count. */
    return map_file(s, dir, base, g->segment_bytes, true);
}

int evb_seg_regrow(struct evb_seg *s, const struct evb_seg_geom *g)
{
    if (s->fd < 0 || s->bytes >= g->segment_bytes)
        return 0;
    struct stat st;
    if (fstat(s->fd, &st) < 0)
        return evb_err_set(-errno, "segment %020llu: fstat: %s", (unsigned long long)s->base,
                           strerror(errno));
    uint64_t have = (uint64_t)st.st_size - (uint64_t)st.st_size % EVB_FRAME_ALIGN;
    if (have > g->segment_bytes)
        have = g->segment_bytes;
    /* Only ever up: bytes the window keeps lie below the old size, and
     * those a later cut takes read as zeros (evb_seg_bytes). */
    if (have > s->bytes)
        s->bytes = have;
    return 0;
}
