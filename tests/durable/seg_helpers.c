/*
 * seg_helpers.c - the log image built by hand and the segment-file helpers
 * shared by the tests of bus/segment.c (tests/durable/test_seg_*.c). What
 * each suite checks stays in its own file; see seg_helpers.h.
 */
#include "seg_helpers.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "t_helpers.h"

#include <errno.h>
#include <sys/syscall.h>

const struct evb_seg_geom geom = {SEG, CAP, MAX_FRAME, MAX_FRAME - EVB_FRAME_HDR};
char dir[128];
uint64_t rng;

/* xorshift64: every suite reseeds rng, so runs repeat exactly. */
uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s;
    (void)f;
    (void)w;
    remove(p);
    return 0;
}

void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/evb-seg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    rng = 0x9e3779b97f4a7c15ull;
}

void teardown(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct seg_log lg;

void log_reset(uint64_t cap)
{
    free(lg.buf);
    free(lg.fr);
    memset(&lg, 0, sizeof lg);
    lg.cap = cap;
    lg.buf = calloc(1, cap);
    lg.fr = calloc(cap / EVB_FRAME_ALIGN, sizeof *lg.fr);
    cr_assert(lg.buf && lg.fr);
}

struct evb_frame *frame_at(uint64_t pos)
{
    return (struct evb_frame *)(void *)(lg.buf + pos);
}

void put_stamp(uint64_t pos, uint64_t stamp)
{
    memcpy(lg.buf + pos, &stamp, sizeof stamp);
}

uint64_t room(void)
{
    return CAP - (lg.pos & (CAP - 1));
}

void record(bool data, uint64_t ts)
{
    lg.fr[lg.nfr++] = (struct rec){lg.pos, lg.offset, ts, data};
}

/* The end pad of the lap: a header pad, or the stamp alone when the room
 * left is smaller than a header. */
void pad_end(void)
{
    uint64_t r = room();
    cr_assert_leq(lg.pos + r, lg.cap);
    record(false, 0);
    if (r >= EVB_FRAME_HDR) {
        memset(lg.buf + lg.pos, 0, EVB_FRAME_HDR);
        frame_at(lg.pos)->offset = lg.offset;
        frame_at(lg.pos)->claim_len = (uint32_t)r;
        lg.header_pads++;
    } else {
        lg.stamp_pads++;
    }
    put_stamp(lg.pos, lg.pos | EVB_STAMP_PAD);
    lg.pos += r;
}

void put_data(uint32_t len, uint64_t ts)
{
    if (evb_align_frame(len) > room())
        pad_end();
    cr_assert_leq(lg.pos + evb_align_frame(len), lg.cap);
    struct evb_frame *f = frame_at(lg.pos);
    memset(f, 0, EVB_FRAME_HDR);
    f->offset = lg.offset;
    f->timestamp_ns = ts;
    f->producer_seq = lg.offset;
    f->len = len;
    f->claim_len = (uint32_t)evb_align_frame(len);
    f->producer_id = 7;
    f->claim_events = 1;
    f->key_len = (uint16_t)((len - EVB_FRAME_HDR) / 4);
    f->type = 3;
    for (uint32_t i = EVB_FRAME_HDR; i < len; i++)
        lg.buf[lg.pos + i] = (uint8_t)next_rand();
    f->crc32c = evb_frame_crc(f, len);
    put_stamp(lg.pos, lg.pos | EVB_STAMP_DATA);
    record(true, ts);
    lg.pos += evb_align_frame(len);
    lg.offset++;
}

/* A claim of EVENTS events over BYTES bytes that its producer aborted. */
void put_abort(uint16_t events, uint32_t bytes)
{
    if (bytes > room())
        pad_end();
    memset(lg.buf + lg.pos, 0, EVB_FRAME_HDR);
    for (uint32_t i = EVB_FRAME_HDR; i < bytes; i++)
        lg.buf[lg.pos + i] = (uint8_t)next_rand();
    frame_at(lg.pos)->offset = lg.offset;
    frame_at(lg.pos)->claim_len = bytes;
    frame_at(lg.pos)->claim_events = events;
    record(false, 0);
    put_stamp(lg.pos, lg.pos | EVB_STAMP_PAD);
    lg.pos += bytes;
    lg.offset += events;
    lg.abort_pads++;
}

/* Frames of random sizes up to about END. Even laps end with a stamp-only
 * pad, odd ones with a header pad; timestamps wobble (not monotonic). */
void build(uint64_t end)
{
    log_reset(end + 2 * SEG);
    uint64_t n = 0;
    while (lg.pos < end) {
        uint64_t r = room();
        if (r < 600) {
            if ((lg.pos / CAP) % 2 == 0 && r > 64 + EVB_FRAME_HDR)
                put_data((uint32_t)(r - 8 * (1 + next_rand() % 6)), 1000000 + n++ * 10);
            pad_end();
        } else if (next_rand() % 40 == 0) {
            put_abort((uint16_t)(1 + next_rand() % 3), (uint32_t)(8 * (8 + next_rand() % 40)));
        } else {
            put_data((uint32_t)(EVB_FRAME_HDR + next_rand() % 700),
                     1000000 + n++ * 10 + next_rand() % 3000);
        }
    }
}

uint64_t offset_at(uint64_t pos)
{
    for (size_t i = 0; i < lg.nfr; i++)
        if (lg.fr[i].pos == pos)
            return lg.fr[i].offset;
    cr_assert_fail("no frame at %llu", (unsigned long long)pos);
    return 0;
}

void write_raw(uint64_t base, const uint8_t *bytes)
{
    char path[256];
    cr_assert_eq(evb_seg_path(path, sizeof path, dir, base, "log"), 0);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, bytes, SEG, 0), (ssize_t)SEG);
    close(fd);
}

/* An index for each segment with an entry every EVERY frames; a wrong
 * offset in every entry when LIE. */
void write_indexes(unsigned every, uint64_t lie)
{
    for (uint64_t base = 0; base < lg.pos; base += SEG) {
        size_t i = 0;
        while (lg.fr[i].pos < base)
            i++;
        char path[256];
        evb_seg_path(path, sizeof path, dir, base, "idx");
        unlink(path);
        int fd = evb_idx_create(dir, base, lg.fr[i].offset + lie, 0644);
        cr_assert_geq(fd, 0, "%s", evb_last_error());
        uint64_t max_ts = 0;
        for (unsigned k = 0; i < lg.nfr && lg.fr[i].pos < base + SEG; i++, k++) {
            if (k && k % every == 0) {
                struct evb_idx_entry e = {lg.fr[i].pos, lg.fr[i].offset + lie, max_ts};
                cr_assert_eq(evb_idx_append(fd, &e, 1), 0);
            }
            if (lg.fr[i].data && lg.fr[i].ts > max_ts)
                max_ts = lg.fr[i].ts;
        }
        close(fd);
    }
}

/* Cut the image into segment files (through evb_seg_create), indexed
 * every EVERY frames unless 0. */
void write_segments(unsigned every)
{
    for (uint64_t base = 0; base < lg.pos; base += SEG) {
        int fd = evb_seg_create(dir, base, SEG, true, 0644);
        cr_assert_geq(fd, 0, "%s", evb_last_error());
        cr_assert_eq(pwrite(fd, lg.buf + base, SEG, 0), (ssize_t)SEG);
        close(fd);
    }
    if (every)
        write_indexes(every, 0);
}

void read_seg(uint64_t base, uint8_t *out)
{
    char path[256];
    evb_seg_path(path, sizeof path, dir, base, "log");
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, out, SEG, 0), (ssize_t)SEG);
    close(fd);
}

void patch_seg(uint64_t pos, const void *bytes, size_t n)
{
    char path[256];
    evb_seg_path(path, sizeof path, dir, pos - pos % SEG, "log");
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, bytes, n, (off_t)(pos % SEG)), (ssize_t)n);
    close(fd);
}

/* Bytes of segment BASE from FROM (a file offset) up to its last non-zero
 * byte, by brute force. */
uint64_t tail_bytes(const uint8_t *seg, uint64_t from)
{
    uint64_t last = from;
    for (uint64_t i = from; i < SEG; i++)
        if (seg[i])
            last = i + 1;
    return last - from;
}

bool exists(uint64_t base, const char *ext)
{
    char path[256];
    evb_seg_path(path, sizeof path, dir, base, ext);
    return access(path, F_OK) == 0;
}

/* Read from POS (learning the offset) to END: every data frame must be the
 * next one of the image, byte for byte; returns the read's final code. */
int read_all(uint64_t pos, uint64_t end, size_t *seen, struct evb_seg_reader *out)
{
    struct evb_seg_reader sr;
    cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
    evb_seg_reader_seek(&sr, pos, 0, true);
    size_t i = 0;
    while (i < lg.nfr && lg.fr[i].pos < pos)
        i++;
    struct evb_frame_view v;
    int rc;
    *seen = 0;
    while ((rc = evb_seg_read(&sr, end, &v)) == 0) {
        while (i < lg.nfr && !lg.fr[i].data)
            i++;
        cr_assert_lt(i, lg.nfr);
        const struct rec *r = &lg.fr[i++];
        cr_assert_eq(v.pos, r->pos, "event at %llu, expected %llu",
                     (unsigned long long)v.pos, (unsigned long long)r->pos);
        cr_assert_eq(v.f->offset, r->offset);
        cr_assert_eq(v.key, (const uint8_t *)v.f + EVB_FRAME_HDR);
        cr_assert_eq(v.value, v.key + v.f->key_len);
        cr_assert_eq(memcmp(v.f, lg.buf + r->pos, v.f->len), 0);
        cr_assert_eq(v.lost_events + v.lost_bytes, 0);
        (*seen)++;
    }
    if (out)
        *out = sr;
    else
        evb_seg_reader_close(&sr);
    return rc;
}

size_t events_below(uint64_t end)
{
    size_t n = 0;
    for (size_t i = 0; i < lg.nfr; i++)
        n += lg.fr[i].data && lg.fr[i].pos < end;
    return n;
}

struct evb_seg_recovery recover_ok(void)
{
    struct evb_seg_recovery rec;
    int rc = evb_seg_recover(dir, &geom, 0, &rec);
    cr_assert_eq(rc, 0, "recover: %d %s", rc, evb_last_error());
    return rec;
}

long long t_pread_fail_at = -1;
int t_pread_failed;

/* Takes the place of libc's for the whole test binary (the library is
 * linked in statically): see seg_helpers.h. */
ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    long long at = t_pread_fail_at;
    if (at >= 0 && off <= at && at < off + (off_t)n &&
        (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY) {
        t_pread_failed++;
        errno = EIO;
        return -1;
    }
    return syscall(SYS_pread64, fd, buf, n, off);
}
