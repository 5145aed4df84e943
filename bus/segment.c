/*
 * segment.c - segment files of a durable partition: names, creation,
 * mappings and frame checks, the segment reader, the sparse index, lookups
 * and recovery of the log end. The flusher (flusher.c) writes the bytes;
 * nothing here trusts them: every frame is checked as read.c checks the
 * ring's, plus its checksum, and an index only suggests where to start.
 */
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "err.h"

#define IO_CHUNK (1u << 20) /* bytes per read or write when scanning, zeroing */

static int geom_check(const struct evb_seg_geom *g)
{
    uint64_t c = g->capacity;
    if (c < 4096 || (c & (c - 1)) || !g->segment_bytes || g->segment_bytes % c ||
        g->segment_bytes > SIZE_MAX || g->max_frame < EVB_FRAME_HDR || g->max_frame > c)
        return evb_err_set(-EINVAL, "segment geometry: segment %llu bytes, ring %llu, "
                           "max frame %u", (unsigned long long)g->segment_bytes,
                           (unsigned long long)c, g->max_frame);
    return 0;
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
    DIR *d = opendir(dir);
    if (!d)
        return evb_err_set(-errno, "%s: %s", dir, strerror(errno));
    uint64_t *v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
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

/* The segment list for geometry G: a base that is no multiple of the
 * segment size means another geometry wrote it; refuse rather than guess. */
static int list_checked(const char *dir, const struct evb_seg_geom *g, uint64_t **bases,
                        size_t *n)
{
    int rc = geom_check(g);
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

/* All N bytes at OFF; -ENODATA when the file ends first. */
static int read_at(int fd, void *buf, size_t n, off_t off)
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

/* All N bytes at OFF, or at the end of an O_APPEND file when OFF < 0. */
static int write_at(int fd, const void *buf, size_t n, off_t off)
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

static int zero_range(int fd, const char *path, uint64_t from, uint64_t n)
{
    size_t chunk = n < IO_CHUNK ? (size_t)n : IO_CHUNK;
    uint8_t *z = calloc(1, chunk ? chunk : 1);
    if (!z)
        return evb_err_set(-ENOMEM, "%s: zeroing", path);
    int rc = 0;
    for (uint64_t done = 0; done < n && !rc; done += chunk) {
        size_t k = n - done < chunk ? (size_t)(n - done) : chunk;
        rc = write_at(fd, z, k, (off_t)(from + done));
    }
    free(z);
    if (rc)
        evb_err_set(rc, "%s: writing zeros: %s", path, strerror(-rc));
    return rc;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 || fsync(fd) ? -errno : 0;
    if (fd >= 0)
        close(fd);
    if (rc)
        evb_err_set(rc, "%s: fsync: %s", dir, strerror(-rc));
    return rc;
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
    int fd = open(path, O_RDWR | O_CLOEXEC);
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
    if (errno != ENOENT)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));

    /* Built aside and renamed in: a segment under its real name always
     * has its full size, whatever crash interrupted the building. */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return evb_err_set(-errno, "%s: %s", tmp, strerror(errno));
    (void)fchmod(fd, mode); /* the umask must not narrow the topic's mode */
    rc = -posix_fallocate(fd, 0, (off_t)bytes);
    if (rc) {
        evb_err_set(rc, "%s: cannot reserve %llu bytes: %s", tmp,
                    (unsigned long long)bytes, strerror(-rc));
        goto fail;
    }
    if (zero_fill && (rc = zero_range(fd, tmp, 0, bytes)))
        goto fail;
    if (fdatasync(fd) < 0 || rename(tmp, path) < 0) {
        rc = evb_err_set(-errno, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    if ((rc = sync_dir(dir))) {
        close(fd);
        return rc;
    }
    return fd;
fail:
    close(fd);
    unlink(tmp);
    return rc;
}

int evb_seg_map(struct evb_seg *s, const char *dir, uint64_t base, uint64_t bytes)
{
    char path[PATH_MAX];
    *s = (struct evb_seg){.fd = -1, .base = base, .bytes = bytes};
    int rc = evb_seg_path(path, sizeof path, dir, base, "log");
    if (rc)
        return rc;
    if (!bytes || bytes > SIZE_MAX)
        return evb_err_set(-EINVAL, "%s: mapping %llu bytes", path, (unsigned long long)bytes);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if ((uint64_t)st.st_size < bytes) {
        rc = evb_err_set(-EBADMSG, "%s: %lld bytes, a segment has %llu", path,
                         (long long)st.st_size, (unsigned long long)bytes);
        goto fail;
    }
    void *m = mmap(NULL, (size_t)bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rc = evb_err_set(-errno, "%s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    s->fd = fd;
    s->map = m;
    return 0;
fail:
    close(fd);
    return rc;
}

void evb_seg_unmap(struct evb_seg *s)
{
    if (s->map)
        munmap((void *)s->map, (size_t)s->bytes);
    if (s->fd >= 0)
        close(s->fd);
    s->map = NULL;
    s->fd = -1;
}

/* Keep S mapped on the segment holding POS. */
static int hold(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                uint64_t pos)
{
    uint64_t base = pos - pos % g->segment_bytes;
    if (s->map && s->base == base)
        return 0;
    evb_seg_unmap(s);
    return evb_seg_map(s, dir, base, g->segment_bytes);
}

int evb_seg_frame(const struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos,
                  struct evb_seg_frame *out)
{
    if (!s->map || pos < s->base || pos - s->base >= s->bytes || pos % EVB_FRAME_ALIGN)
        return 0;
    uint64_t at = pos - s->base;
    /* Bytes to the ring end; the segment end as well, should a damaged
     * file name put a segment off the ring's grid. */
    uint64_t room = g->capacity - (pos & (g->capacity - 1));
    if (room > s->bytes - at)
        room = s->bytes - at;
    if (room < sizeof(uint64_t))
        return 0;
    const uint8_t *p = s->map + at;
    const struct evb_frame *f = (const struct evb_frame *)(const void *)p;
    uint64_t stamp;
    memcpy(&stamp, p, sizeof stamp);

    if (stamp == (pos | EVB_STAMP_PAD)) {
        if (room < EVB_FRAME_HDR) {
            /* Too little room for a header: the stamp alone pads to the end. */
            *out = (struct evb_seg_frame){.skip = room, .offset = EVB_SEG_NO_OFFSET};
            return 2;
        }
        uint32_t skip = f->claim_len;
        if (skip < EVB_FRAME_ALIGN || skip % EVB_FRAME_ALIGN || skip > room)
            return 0;
        *out = (struct evb_seg_frame){.f = f, .skip = skip, .events = f->claim_events,
                                      .offset = f->offset};
        return 2;
    }
    if (stamp != (pos | EVB_STAMP_DATA) || room < EVB_FRAME_HDR)
        return 0;
    uint32_t len = f->len, key_len = f->key_len;
    if (len < EVB_FRAME_HDR || len > g->max_frame || evb_align_frame(len) > room ||
        key_len > len - EVB_FRAME_HDR)
        return 0;
    if (f->crc32c != evb_frame_crc(f, len))
        return 0;
    *out = (struct evb_seg_frame){.f = f, .skip = evb_align_frame(len), .events = 1,
                                  .offset = f->offset, .len = len, .key_len = key_len};
    return 1;
}

/* A walk through the log: next position, next offset (unknown while
 * learn is set; only a hint until a frame's own offset confirmed it). */
struct walk {
    uint64_t pos;
    uint64_t offset;
    bool learn;
    bool confirmed;
};

/* Take the frame at w->pos and move past it: 1 data, 2 pad, with
 * fr->offset the frame's offset; 0 no valid frame, -1 an offset other than
 * the expected one (W unchanged on both). */
static int step(const struct evb_seg *s, const struct evb_seg_geom *g, struct walk *w,
                struct evb_seg_frame *fr)
{
    int kind = evb_seg_frame(s, g, w->pos, fr);
    if (!kind)
        return 0;
    if (fr->offset == EVB_SEG_NO_OFFSET) {
        fr->offset = w->offset; /* a stamp-only pad voids nothing */
    } else if (w->learn || fr->offset == w->offset) {
        w->offset = fr->offset;
        w->learn = false;
        w->confirmed = true;
    } else {
        return -1;
    }
    w->pos += fr->skip;
    w->offset += fr->events;
    return kind;
}

static int corrupt(const char *dir, const struct walk *w, int kind,
                   const struct evb_seg_frame *fr)
{
    if (kind < 0)
        return evb_err_set(-EBADMSG, "%s: offset %llu at position %llu, expected %llu", dir,
                           (unsigned long long)fr->offset, (unsigned long long)w->pos,
                           (unsigned long long)w->offset);
    return evb_err_set(-EBADMSG, "%s: no valid frame at position %llu", dir,
                       (unsigned long long)w->pos);
}

int evb_seg_reader_open(struct evb_seg_reader *sr, const char *dir,
                        const struct evb_seg_geom *g)
{
    memset(sr, 0, sizeof *sr);
    sr->seg.fd = -1;
    sr->learn = true;
    int rc = geom_check(g);
    if (rc)
        return rc;
    sr->g = *g;
    sr->dir = strdup(dir);
    return sr->dir ? 0 : evb_err_set(-ENOMEM, "%s: segment reader", dir);
}

void evb_seg_reader_close(struct evb_seg_reader *sr)
{
    evb_seg_unmap(&sr->seg);
    free(sr->dir);
    sr->dir = NULL;
}

void evb_seg_reader_seek(struct evb_seg_reader *sr, uint64_t pos, uint64_t offset, bool learn)
{
    sr->pos = pos;
    sr->offset = offset;
    sr->learn = learn;
}

int evb_seg_read(struct evb_seg_reader *sr, uint64_t end, struct evb_frame_view *v)
{
    if (sr->failed)
        return sr->failed;
    if (sr->pos % EVB_FRAME_ALIGN)
        return evb_err_set(-EINVAL, "%s: position %llu is not a frame start", sr->dir,
                           (unsigned long long)sr->pos);
    struct walk w = {.pos = sr->pos, .offset = sr->offset, .learn = sr->learn};
    int rc;
    for (;;) {
        if (w.pos >= end) {
            rc = -EAGAIN;
            break;
        }
        rc = hold(&sr->seg, sr->dir, &sr->g, w.pos);
        if (rc) {
            if (rc == -EBADMSG)
                sr->failed = rc;
            else if (rc == -ENOENT)
                evb_err_prefix(rc, "position %llu is no longer on disk",
                               (unsigned long long)w.pos);
            break;
        }
        struct evb_seg_frame fr;
        uint64_t at = w.pos;
        int kind = step(&sr->seg, &sr->g, &w, &fr);
        if (kind <= 0) {
            rc = sr->failed = corrupt(sr->dir, &w, kind, &fr);
            break;
        }
        if (kind == 1) {
            v->f = fr.f;
            v->key = (const uint8_t *)fr.f + EVB_FRAME_HDR;
            v->value = v->key + fr.key_len;
            v->pos = at;
            v->lost_events = 0;
            v->lost_bytes = 0;
            break;
        }
    }
    sr->pos = w.pos;
    sr->offset = w.offset;
    sr->learn = w.learn;
    return rc;
}

/* ---- sparse index ---- */

/* Read the index in FD for segment BASE: the header must match, entries
 * are kept while they ascend and stay at or above the base. */
static int idx_read(int fd, const char *path, uint64_t base, struct evb_idx **out)
{
    struct evb_idx_hdr h;
    struct stat st;
    *out = NULL;
    if (fstat(fd, &st) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    if (st.st_size < (off_t)sizeof h || read_at(fd, &h, sizeof h, 0))
        return evb_err_set(-EBADMSG, "%s: no index header", path);
    if (h.magic != EVB_IDX_MAGIC || h.version != EVB_IDX_VERSION || h.base_pos != base)
        return evb_err_set(-EBADMSG, "%s: index magic 0x%llx version %u base %llu, "
                           "expected 0x%llx %u %llu", path, (unsigned long long)h.magic,
                           h.version, (unsigned long long)h.base_pos,
                           (unsigned long long)EVB_IDX_MAGIC, EVB_IDX_VERSION,
                           (unsigned long long)base);
    uint64_t n = ((uint64_t)st.st_size - sizeof h) / sizeof(struct evb_idx_entry);
    if (n > (SIZE_MAX - sizeof(struct evb_idx)) / sizeof(struct evb_idx_entry))
        return evb_err_set(-ENOMEM, "%s: index too large", path);
    struct evb_idx *x = malloc(sizeof *x + (size_t)n * sizeof x->e[0]);
    if (!x)
        return evb_err_set(-ENOMEM, "%s: index of %llu entries", path, (unsigned long long)n);
    if (read_at(fd, x->e, (size_t)n * sizeof x->e[0], sizeof h))
        n = 0;
    x->base_pos = base;
    x->base_offset = h.base_offset;
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

int evb_idx_create(const char *dir, uint64_t base, uint64_t base_offset, uint32_t mode)
{
    char path[PATH_MAX];
    int rc = evb_seg_path(path, sizeof path, dir, base, "idx");
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, mode);
    if (fd < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    struct evb_idx *x = NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (st.st_size == 0)
        (void)fchmod(fd, mode);
    rc = st.st_size ? idx_read(fd, path, base, &x) : -EBADMSG;
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
                                .base_pos = base, .base_offset = base_offset};
        if ((rc = write_at(fd, &h, sizeof h, -1))) {
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
    int rc = write_at(fd, e, n * sizeof *e, -1);
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
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    rc = idx_read(fd, path, base, out);
    close(fd);
    return rc;
}

/* ---- lookups ---- */

/* Where a walk of segment BASE may start so that it misses no match: the
 * last index entry before which no event can match. For offsets, events
 * before an entry have offsets below the entry's; for times, max_ts bounds
 * every timestamp before it. Without an index: the base, offset unknown. */
static struct walk walk_start(const struct evb_idx *x, const struct evb_seg_geom *g,
                              uint64_t base, bool by_time, uint64_t target)
{
    struct walk w = {.pos = base, .offset = 0, .learn = true};
    if (!x)
        return w;
    w = (struct walk){.pos = base, .offset = x->base_offset, .learn = false};
    for (size_t i = 0; i < x->n; i++) {
        const struct evb_idx_entry *e = &x->e[i];
        if (e->pos - base >= g->segment_bytes ||
            (by_time ? e->max_ts >= target : e->offset > target))
            break;
        w.pos = e->pos;
        w.offset = e->offset;
    }
    return w;
}

/* The first event below END matching TARGET. With HINTS the index picks
 * the starting points; the offsets it claims are checked against the
 * first frame walked, so a stale index gives -EBADMSG, never a wrong
 * answer about offsets. */
static int find(const char *dir, const struct evb_seg_geom *g, bool by_time,
                uint64_t target, uint64_t end, bool hints, uint64_t *pos, uint64_t *off)
{
    uint64_t *bases;
    size_t n, i = 0;
    int rc = list_checked(dir, g, &bases, &n);
    if (rc)
        return rc;
    /* By offset, the newest segment said to start at or below TARGET. */
    for (size_t j = n; hints && !by_time && j-- > 0;) {
        struct evb_idx *x;
        if (bases[j] >= end || evb_idx_load(dir, bases[j], &x))
            continue;
        bool below = x->base_offset <= target;
        free(x);
        if (below) {
            i = j;
            break;
        }
    }
    struct evb_seg s = {.fd = -1};
    rc = -ENOENT;
    for (; i < n && bases[i] < end; i++) {
        struct evb_idx *x = NULL;
        if (hints)
            (void)evb_idx_load(dir, bases[i], &x);
        struct walk w = walk_start(x, g, bases[i], by_time, target);
        free(x);
        if ((rc = hold(&s, dir, g, bases[i])))
            break;
        uint64_t seg_end = bases[i] + g->segment_bytes;
        while (w.pos < seg_end && w.pos < end) {
            struct evb_seg_frame fr;
            uint64_t at = w.pos;
            int kind = step(&s, g, &w, &fr);
            if (kind <= 0) {
                rc = corrupt(dir, &w, kind, &fr);
                goto out;
            }
            if (kind == 1 && (by_time ? fr.f->timestamp_ns >= target : fr.offset >= target)) {
                *pos = at;
                *off = fr.offset;
                rc = 0;
                goto out;
            }
        }
        rc = -ENOENT;
    }
out:
    if (rc == -ENOENT)
        evb_err_set(rc, "%s: no event with %s >= %llu below position %llu", dir,
                    by_time ? "timestamp" : "offset", (unsigned long long)target,
                    (unsigned long long)end);
    evb_seg_unmap(&s);
    free(bases);
    return rc;
}

int evb_seg_find_offset(const char *dir, const struct evb_seg_geom *g, uint64_t offset,
                        uint64_t end, uint64_t *pos, uint64_t *off)
{
    int rc = find(dir, g, false, offset, end, true, pos, off);
    return rc == -EBADMSG ? find(dir, g, false, offset, end, false, pos, off) : rc;
}

int evb_seg_find_time(const char *dir, const struct evb_seg_geom *g, uint64_t ts,
                      uint64_t end, uint64_t *pos, uint64_t *off)
{
    int rc = find(dir, g, true, ts, end, true, pos, off);
    return rc == -EBADMSG ? find(dir, g, true, ts, end, false, pos, off) : rc;
}

/* ---- recovery ---- */

/* Walk on from w->pos to the first position without a valid frame, or
 * the end of the segment holding w->pos. */
static int walk_on(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                   struct walk *w)
{
    uint64_t seg_end = w->pos - w->pos % g->segment_bytes + g->segment_bytes;
    int rc = hold(s, dir, g, w->pos);
    struct evb_seg_frame fr;
    while (!rc && w->pos < seg_end && step(s, g, w, &fr) > 0)
        ;
    return rc;
}

/* Walk segment BASE to its end when its frames run there: from its last
 * index entry if a frame on the way confirms the entry's offset, else from
 * the base. When they do not, *w is where a walk from the base stops. */
static int walk_to_end(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                       uint64_t base, struct walk *w)
{
    struct evb_idx *x;
    if (evb_idx_load(dir, base, &x) == 0) {
        *w = walk_start(x, g, base, false, UINT64_MAX);
        free(x);
        int rc = walk_on(s, dir, g, w);
        if (rc || (w->confirmed && w->pos == base + g->segment_bytes))
            return rc;
    }
    *w = (struct walk){.pos = base, .offset = 0, .learn = true};
    return walk_on(s, dir, g, w);
}

/* The offset of the first frame of segment BASE, EVB_SEG_NO_OFFSET when it
 * has no valid one. */
static int first_offset(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                        uint64_t base, uint64_t *off)
{
    struct evb_seg_frame fr;
    int rc = hold(s, dir, g, base);
    if (rc)
        return rc;
    /* A base is a ring start: any frame there has room for its header. */
    *off = evb_seg_frame(s, g, base, &fr) ? fr.offset : EVB_SEG_NO_OFFSET;
    return 0;
}

/* Cut PATH after FROM: count the bytes from FROM to the last non-zero
 * byte into *dropped and, with ZERO, overwrite them with zeros and sync. */
static int cut_tail(const char *path, uint64_t from, bool zero, uint64_t *dropped)
{
    int fd = open(path, (zero ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    uint8_t *buf = malloc(IO_CHUNK);
    struct stat st;
    int rc = 0;
    if (!buf || fstat(fd, &st) < 0)
        rc = buf ? -errno : -ENOMEM;
    uint64_t hi = rc ? from : (uint64_t)st.st_size, last = from;
    /* Backwards, a chunk at a time, to the last non-zero byte. */
    while (hi > from && !rc) {
        size_t k = hi - from < IO_CHUNK ? (size_t)(hi - from) : IO_CHUNK;
        hi -= k;
        if ((rc = read_at(fd, buf, k, (off_t)hi)))
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
        rc = zero_range(fd, path, from, last - from);
        if (!rc && fdatasync(fd) < 0)
            rc = evb_err_set(-errno, "%s: fdatasync: %s", path, strerror(errno));
    }
    if (!rc)
        *dropped += last - from;
    free(buf);
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
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : evb_err_set(-errno, "%s: %s", path, strerror(errno));
    struct evb_idx *x;
    rc = idx_read(fd, path, base, &x);
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

/* Remove segment BASE (index first, so no index outlives its log). */
static int remove_segment(const char *dir, uint64_t base, uint64_t *dropped)
{
    char path[PATH_MAX];
    int rc = evb_seg_path(path, sizeof path, dir, base, "idx");
    if (rc)
        return rc;
    if (unlink(path) < 0 && errno != ENOENT)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    if ((rc = evb_seg_path(path, sizeof path, dir, base, "log")) ||
        (rc = cut_tail(path, 0, false, dropped)))
        return rc;
    if (unlink(path) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    return 0;
}

int evb_seg_recover(const char *dir, const struct evb_seg_geom *g, uint64_t hint_pos,
                    struct evb_seg_recovery *out)
{
    (void)hint_pos; /* see segment.h: the walk always starts at the base */
    uint64_t *bases;
    size_t n;
    memset(out, 0, sizeof *out);
    int rc = list_checked(dir, g, &bases, &n);
    if (rc || !n)
        return rc;

    /* The end: where the walk of the newest segment stops, if that
     * segment continues the previous one. It does not when it has no valid
     * frame, or its first offset is not where the previous one ended: the
     * log then ends at its base. A previous segment cut short ends it
     * inside that one, and the same question goes one segment back. */
    struct evb_seg s = {.fd = -1};
    size_t cur = n - 1;
    struct walk w = {.pos = bases[cur], .offset = 0, .learn = true};
    uint64_t first = EVB_SEG_NO_OFFSET, dropped = 0;
    rc = walk_on(&s, dir, g, &w);
    while (!rc && cur > 0 && bases[cur - 1] == bases[cur] - g->segment_bytes) {
        struct walk p;
        if ((rc = walk_to_end(&s, dir, g, bases[cur - 1], &p)))
            break;
        if (p.pos == bases[cur]) {
            if (!w.learn && (rc = first_offset(&s, dir, g, bases[cur], &first)))
                break;
            if (first != p.offset)
                w = (struct walk){.pos = bases[cur], .offset = p.offset, .learn = false};
            break;
        }
        cur--;
        w = p;
    }
    if (!rc && w.learn) {
        /* Nothing valid and no previous segment to ask: the index may
         * still know the offset the log stopped at. */
        struct evb_idx *x;
        w = (struct walk){.pos = bases[cur], .offset = 0, .learn = false};
        if (evb_idx_load(dir, bases[cur], &x) == 0) {
            w.offset = x->base_offset;
            free(x);
        }
    }
    if (!rc && w.pos == bases[cur])
        first = w.offset; /* what the next frame written at the base gets */
    else if (!rc)
        rc = first_offset(&s, dir, g, bases[cur], &first);

    /* Cut: newer segments newest first, then the tail, then the index. A
     * crash in between leaves a log that recovers to the same end. */
    char path[PATH_MAX];
    for (size_t j = n - 1; !rc && j > cur; j--)
        rc = remove_segment(dir, bases[j], &dropped);
    if (!rc && cur + 1 < n)
        rc = sync_dir(dir);
    if (!rc && !(rc = evb_seg_path(path, sizeof path, dir, bases[cur], "log")))
        rc = cut_tail(path, w.pos - bases[cur], true, &dropped);
    if (!rc)
        rc = evb_idx_cut(dir, bases[cur], w.pos, first);

    /* The start: the oldest segment's first frame, or its index. */
    uint64_t start = EVB_SEG_NO_OFFSET;
    if (!rc && cur == 0 && w.pos == bases[0])
        start = w.offset; /* the whole log is empty */
    else if (!rc && !(rc = first_offset(&s, dir, g, bases[0], &start)) &&
             start == EVB_SEG_NO_OFFSET) {
        struct evb_idx *x;
        if (evb_idx_load(dir, bases[0], &x) == 0) {
            start = x->base_offset;
            free(x);
        } else {
            rc = evb_err_set(-EBADMSG, "%s: oldest segment %020llu has no valid first "
                             "frame and no index", dir, (unsigned long long)bases[0]);
        }
    }
    evb_seg_unmap(&s);
    if (!rc)
        *out = (struct evb_seg_recovery){.end_pos = w.pos, .end_offset = w.offset,
                                         .start_pos = bases[0], .start_offset = start,
                                         .dropped_bytes = dropped,
                                         .segments = (uint32_t)(cur + 1)};
    free(bases);
    return rc;
}
