/*
 * test_segment.c - disk segments (bus/segment.c) and CRC32C (shm/crc32c.c).
 * Logs are built by hand in memory (data frames, both kinds of end pad,
 * aborted claims, several segments of a 64 KiB ring) and cut into files;
 * the reader, recovery and lookups are checked against what was written
 * and against brute force, and random damage must give errors or valid
 * frames, never a crash (the ASan build runs this too).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "segment.h"
#include "t_helpers.h"

#define CAP (64u << 10)
#define SEG (128u << 10)
#define MAX_FRAME 4096u

static const struct evb_seg_geom geom = {SEG, CAP, MAX_FRAME};
static char dir[128];
static uint64_t rng;

static uint64_t next_rand(void)
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

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/evb-seg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    rng = 0x9e3779b97f4a7c15ull;
}

static void teardown(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- a log image built by hand ---- */

struct rec {
    uint64_t pos;
    uint64_t offset; /* offset at this frame (data: its own) */
    uint64_t ts;
    bool data;
};

static struct {
    uint8_t *buf; /* bytes of positions [0, cap) */
    uint64_t cap;
    uint64_t pos;    /* next position */
    uint64_t offset; /* next offset */
    struct rec *fr;  /* every frame, pads too */
    size_t nfr;
    unsigned stamp_pads, header_pads, abort_pads;
} lg;

static void log_reset(uint64_t cap)
{
    free(lg.buf);
    free(lg.fr);
    memset(&lg, 0, sizeof lg);
    lg.cap = cap;
    lg.buf = calloc(1, cap);
    lg.fr = calloc(cap / EVB_FRAME_ALIGN, sizeof *lg.fr);
    cr_assert(lg.buf && lg.fr);
}

static struct evb_frame *frame_at(uint64_t pos)
{
    return (struct evb_frame *)(void *)(lg.buf + pos);
}

static void put_stamp(uint64_t pos, uint64_t stamp)
{
    memcpy(lg.buf + pos, &stamp, sizeof stamp);
}

static uint64_t room(void)
{
    return CAP - (lg.pos & (CAP - 1));
}

static void record(bool data, uint64_t ts)
{
    lg.fr[lg.nfr++] = (struct rec){lg.pos, lg.offset, ts, data};
}

/* The end pad of the lap: a header pad, or the stamp alone when the room
 * left is smaller than a header. */
static void pad_end(void)
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

static void put_data(uint32_t len, uint64_t ts)
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
static void put_abort(uint16_t events, uint32_t bytes)
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
static void build(uint64_t end)
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

static uint64_t offset_at(uint64_t pos)
{
    for (size_t i = 0; i < lg.nfr; i++)
        if (lg.fr[i].pos == pos)
            return lg.fr[i].offset;
    cr_assert_fail("no frame at %llu", (unsigned long long)pos);
    return 0;
}

static void write_raw(uint64_t base, const uint8_t *bytes)
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
static void write_indexes(unsigned every, uint64_t lie)
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
static void write_segments(unsigned every)
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

static void read_seg(uint64_t base, uint8_t *out)
{
    char path[256];
    evb_seg_path(path, sizeof path, dir, base, "log");
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, out, SEG, 0), (ssize_t)SEG);
    close(fd);
}

static void patch_seg(uint64_t pos, const void *bytes, size_t n)
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
static uint64_t tail_bytes(const uint8_t *seg, uint64_t from)
{
    uint64_t last = from;
    for (uint64_t i = from; i < SEG; i++)
        if (seg[i])
            last = i + 1;
    return last - from;
}

static bool exists(uint64_t base, const char *ext)
{
    char path[256];
    evb_seg_path(path, sizeof path, dir, base, ext);
    return access(path, F_OK) == 0;
}

/* Read from POS (learning the offset) to END: every data frame must be the
 * next one of the image, byte for byte; returns the read's final code. */
static int read_all(uint64_t pos, uint64_t end, size_t *seen, struct evb_seg_reader *out)
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

static size_t events_below(uint64_t end)
{
    size_t n = 0;
    for (size_t i = 0; i < lg.nfr; i++)
        n += lg.fr[i].data && lg.fr[i].pos < end;
    return n;
}

/* ---- CRC32C ---- */

static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

Test(crc32c, check_value_and_chaining)
{
    const char *s = "123456789";
    cr_expect_eq(evb_crc32c(0, s, 9), 0xE3069283u);
    cr_expect_eq(evb_crc32c_sw(0, s, 9), 0xE3069283u);
    cr_expect_eq(crc_bitwise(0, (const uint8_t *)s, 9), 0xE3069283u);
    cr_expect_eq(evb_crc32c(evb_crc32c(0, s, 4), s + 4, 5), 0xE3069283u);
    cr_expect_eq(evb_crc32c(0, s, 0), 0);
    if (evb_crc32c_has_hw())
        cr_expect_eq(evb_crc32c_hw(0, s, 9), 0xE3069283u);
}

Test(crc32c, hardware_and_tables_agree_on_random_buffers)
{
    if (!evb_crc32c_has_hw())
        cr_skip_test("no SSE4.2 on this CPU");
    size_t big = 1 << 20;
    uint8_t *buf = malloc(big + 8);
    cr_assert_not_null(buf);
    rng = 42;
    for (size_t i = 0; i < big + 8; i++)
        buf[i] = (uint8_t)next_rand();
    for (size_t len = 0; len < 5000; len += 1 + len / 64) {
        for (size_t align = 0; align < 8; align++) {
            uint32_t seed = (uint32_t)next_rand();
            const uint8_t *p = buf + align;
            uint32_t want = crc_bitwise(seed, p, len);
            cr_assert_eq(evb_crc32c_sw(seed, p, len), want, "tables, len %zu align %zu", len,
                         align);
            cr_assert_eq(evb_crc32c_hw(seed, p, len), want, "hw, len %zu align %zu", len,
                         align);
            cr_assert_eq(evb_crc32c(seed, p, len), want);
        }
    }
    /* Long buffers: many three-stream blocks, then a ragged tail. */
    for (size_t len = big - 13; len <= big; len += 13)
        cr_assert_eq(evb_crc32c_hw(0, buf + 3, len), evb_crc32c_sw(0, buf + 3, len));
    free(buf);
}

Test(crc32c, frame_crc_covers_all_but_stamp_and_checksum)
{
    uint8_t f[200], cat[200];
    rng = 7;
    for (size_t i = 0; i < sizeof f; i++)
        f[i] = (uint8_t)next_rand();
    uint32_t len = 151;
    memcpy(cat, f + 8, 40);
    memcpy(cat + 40, f + 52, len - 52);
    struct evb_frame *fr = (struct evb_frame *)(void *)f;
    uint32_t crc = evb_frame_crc(fr, len);
    cr_expect_eq(crc, crc_bitwise(0, cat, 40 + len - 52));
    f[0] ^= 1;  /* stamp */
    f[49] ^= 1; /* the checksum field */
    f[len] ^= 1; /* past the frame */
    cr_expect_eq(evb_frame_crc(fr, len), crc);
    f[8] ^= 1;
    cr_expect_neq(evb_frame_crc(fr, len), crc);
    f[8] ^= 1;
    f[len - 1] ^= 1;
    cr_expect_neq(evb_frame_crc(fr, len), crc);
}

/* ---- files ---- */

TestSuite(seg_files, .init = setup, .fini = teardown, .timeout = 60);

Test(seg_files, list_takes_only_segment_names_in_order)
{
    const char *names[] = {"00000000000000262144.log", "00000000000000000000.log",
                           "00000000000000131072.log", "00000000000000000000.idx",
                           "00000000000000393216.log.tmp", "123.log",
                           "0000000000000000000a.log", "000000000000000000000.log",
                           "99999999999999999999.log", "00000000000000524288.logx",
                           "flush.lock"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        close(open(path, O_CREAT | O_WRONLY, 0644));
    }
    uint64_t *bases;
    size_t n;
    cr_assert_eq(evb_seg_list(dir, &bases, &n), 0);
    cr_assert_eq(n, 3);
    cr_expect_eq(bases[0], 0);
    cr_expect_eq(bases[1], 131072);
    cr_expect_eq(bases[2], 262144);
    free(bases);
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    mkdir(empty, 0755);
    cr_assert_eq(evb_seg_list(empty, &bases, &n), 0);
    cr_expect_eq(n, 0);
    free(bases);
    snprintf(empty, sizeof empty, "%s/missing", dir);
    cr_expect_eq(evb_seg_list(empty, &bases, &n), -ENOENT);
}

Test(seg_files, create_builds_aside_and_reopens_existing)
{
    char path[256], tmp[300];
    evb_seg_path(path, sizeof path, dir, SEG, "log");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* A leftover of a crashed creation is overwritten. */
    int fd = open(tmp, O_CREAT | O_WRONLY, 0644);
    cr_assert_eq(write(fd, "junk", 4), 4);
    close(fd);
    fd = evb_seg_create(dir, SEG, SEG, true, 0640);
    cr_assert_geq(fd, 0, "%s", evb_last_error());
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_expect_eq(st.st_size, SEG);
    cr_expect_eq(st.st_mode & 0777, 0640);
    cr_expect_neq(access(tmp, F_OK), 0, "the .tmp file is left behind");
    cr_assert_eq(pwrite(fd, "data", 4, 100), 4);
    close(fd);
    uint8_t seg[SEG];
    read_seg(SEG, seg);
    cr_expect_neq(memcmp(seg, "junk", 4), 0, "the old .tmp bytes survived");
    /* Existing with the right size: opened as is. */
    fd = evb_seg_create(dir, SEG, SEG, false, 0640);
    cr_assert_geq(fd, 0);
    char b[4];
    cr_assert_eq(pread(fd, b, 4, 100), 4);
    cr_expect_eq(memcmp(b, "data", 4), 0);
    close(fd);
    /* Existing with another size: refused, not clobbered. */
    cr_expect_eq(evb_seg_create(dir, SEG, 2 * SEG, false, 0640), -EBADMSG);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_size, SEG);

    struct evb_seg s;
    cr_expect_eq(evb_seg_map(&s, dir, 0, SEG), -ENOENT);
    evb_seg_unmap(&s);
    cr_expect_eq(evb_seg_map(&s, dir, SEG, 2 * SEG), -EBADMSG);
    evb_seg_unmap(&s);
    cr_assert_eq(evb_seg_map(&s, dir, SEG, SEG), 0);
    cr_expect_eq(memcmp(s.map + 100, "data", 4), 0);
    evb_seg_unmap(&s);
}

Test(seg_files, create_reports_enospc)
{
    char mnt[300];
    snprintf(mnt, sizeof mnt, "%s/small", dir);
    cr_assert_eq(mkdir(mnt, 0755), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0)
        cr_skip_test("cannot mount a small tmpfs here (needs root)");
    int rc = evb_seg_create(mnt, 0, 8u << 20, false, 0644);
    cr_expect_eq(rc, -ENOSPC, "got %d (%s)", rc, evb_last_error());
    uint64_t *bases;
    size_t n;
    cr_expect_eq(evb_seg_list(mnt, &bases, &n), 0);
    cr_expect_eq(n, 0);
    free(bases);
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/00000000000000000000.log.tmp", mnt);
    cr_expect_neq(access(tmp, F_OK), 0, "the .tmp file is left behind");
    umount(mnt);
}

Test(seg_files, index_reopen_keeps_whole_checked_entries)
{
    int fd = evb_idx_create(dir, SEG, 500, 0644);
    cr_assert_geq(fd, 0);
    struct evb_idx_entry e[3] = {{SEG + 64, 501, 10}, {SEG + 640, 520, 30}, {SEG + 4096, 560, 30}};
    cr_assert_eq(evb_idx_append(fd, e, 3), 0);
    cr_assert_eq(write(fd, "torn", 4), 4); /* a partial record */
    close(fd);
    fd = evb_idx_create(dir, SEG, 500, 0644);
    cr_assert_geq(fd, 0);
    struct evb_idx_entry bad = {SEG + 128, 600, 40}; /* goes back in pos */
    cr_assert_eq(evb_idx_append(fd, &bad, 1), 0);
    close(fd);
    struct evb_idx *x;
    cr_assert_eq(evb_idx_load(dir, SEG, &x), 0);
    cr_expect_eq(x->base_pos, SEG);
    cr_expect_eq(x->base_offset, 500);
    cr_assert_eq(x->n, 3, "loaded %zu entries", x->n);
    cr_expect_eq(memcmp(x->e, e, sizeof e), 0);
    free(x);
    /* Another base offset: the old entries are not this segment's. */
    fd = evb_idx_create(dir, SEG, 900, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(evb_idx_load(dir, SEG, &x), 0);
    cr_expect_eq(x->base_offset, 900);
    cr_expect_eq(x->n, 0);
    free(x);
    cr_expect_eq(evb_idx_load(dir, 0, &x), -ENOENT);
}

/* ---- reader ---- */

TestSuite(seg_reader, .init = setup, .fini = teardown, .timeout = 60);

Test(seg_reader, walks_every_event_across_segments_and_pads)
{
    build(2 * SEG + SEG / 2);
    write_segments(0);
    cr_assert(lg.stamp_pads && lg.header_pads && lg.abort_pads, "pads %u %u %u",
              lg.stamp_pads, lg.header_pads, lg.abort_pads);
    size_t seen;
    struct evb_seg_reader sr;
    cr_expect_eq(read_all(0, lg.pos, &seen, &sr), -EAGAIN);
    cr_expect_eq(seen, events_below(lg.pos));
    cr_expect_eq(sr.pos, lg.pos);
    cr_expect_eq(sr.offset, lg.offset);
    evb_seg_reader_close(&sr);
    /* A bound in the middle stops there, and reading on from it works. */
    uint64_t mid = lg.fr[lg.nfr / 2].pos;
    cr_expect_eq(read_all(0, mid, &seen, &sr), -EAGAIN);
    cr_expect_eq(seen, events_below(mid));
    cr_expect_eq(sr.pos, mid);
    cr_expect_eq(sr.offset, offset_at(mid));
    struct evb_frame_view v;
    cr_expect_eq(evb_seg_read(&sr, lg.pos, &v), 0);
    evb_seg_reader_close(&sr);
}

Test(seg_reader, enoent_once_retention_removed_the_segment)
{
    build(2 * SEG + SEG / 2);
    write_segments(0);
    struct evb_seg_reader sr;
    cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
    struct evb_frame_view v;
    cr_assert_eq(evb_seg_read(&sr, lg.pos, &v), 0);
    char path[256];
    evb_seg_path(path, sizeof path, dir, SEG, "log");
    cr_assert_eq(unlink(path), 0);
    int rc;
    while ((rc = evb_seg_read(&sr, lg.pos, &v)) == 0)
        cr_assert_lt(v.pos, SEG);
    cr_expect_eq(rc, -ENOENT);
    cr_expect_eq(sr.pos, SEG);
    evb_seg_reader_close(&sr);

    evb_seg_path(path, sizeof path, dir, 0, "log");
    cr_assert_eq(unlink(path), 0);
    size_t seen;
    cr_expect_eq(read_all(0, lg.pos, &seen, NULL), -ENOENT);
    cr_expect_eq(seen, 0);
    cr_expect_eq(read_all(2 * SEG, lg.pos, &seen, NULL), -EAGAIN);
    cr_expect_eq(seen, events_below(lg.pos) - events_below(2 * SEG));
}

Test(seg_reader, corrupt_frame_below_end_is_ebadmsg_and_sticks)
{
    build(2 * SEG);
    write_segments(0);
    const struct rec *r = &lg.fr[lg.nfr / 3];
    while (!r->data)
        r++;
    uint8_t b = lg.buf[r->pos + 20] ^ 0x10;
    patch_seg(r->pos + 20, &b, 1);
    struct evb_seg_reader sr;
    size_t seen;
    cr_expect_eq(read_all(0, lg.pos, &seen, &sr), -EBADMSG);
    cr_expect_eq(seen, events_below(r->pos));
    cr_expect_eq(sr.pos, r->pos);
    struct evb_frame_view v;
    evb_seg_reader_seek(&sr, 0, 0, true);
    cr_expect_eq(evb_seg_read(&sr, lg.pos, &v), -EBADMSG);
    evb_seg_reader_close(&sr);
}

Test(seg_reader, unexpected_offset_is_ebadmsg)
{
    build(SEG);
    write_segments(0);
    struct evb_seg_reader sr;
    cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
    evb_seg_reader_seek(&sr, 0, 5, false);
    struct evb_frame_view v;
    cr_expect_eq(evb_seg_read(&sr, lg.pos, &v), -EBADMSG);
    evb_seg_reader_close(&sr);
}

Test(seg_reader, pad_longer_than_its_room_is_ebadmsg)
{
    build(SEG);
    write_segments(0);
    size_t i = 0;
    while (lg.fr[i].data || CAP - lg.fr[i].pos % CAP < EVB_FRAME_HDR)
        i++;
    /* A header pad (end pad or aborted claim) that claims past the lap. */
    const struct rec *r = &lg.fr[i];
    uint32_t bad = (uint32_t)(CAP - r->pos % CAP + 8);
    patch_seg(r->pos + offsetof(struct evb_frame, claim_len), &bad, sizeof bad);
    size_t seen;
    struct evb_seg_reader sr;
    cr_expect_eq(read_all(0, lg.pos, &seen, &sr), -EBADMSG);
    cr_expect_eq(seen, events_below(r->pos));
    cr_expect_eq(sr.pos, r->pos, "stopped at %llu, the pad is at %llu",
                 (unsigned long long)sr.pos, (unsigned long long)r->pos);
    evb_seg_reader_close(&sr);
}

/* ---- recovery ---- */

TestSuite(seg_recover, .init = setup, .fini = teardown, .timeout = 60);

static struct evb_seg_recovery recover_ok(void)
{
    struct evb_seg_recovery rec;
    int rc = evb_seg_recover(dir, &geom, 0, &rec);
    cr_assert_eq(rc, 0, "recover: %d %s", rc, evb_last_error());
    return rec;
}

Test(seg_recover, clean_log_ends_where_written)
{
    build(2 * SEG + SEG / 2);
    write_segments(5);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, lg.pos);
    cr_expect_eq(rec.end_offset, lg.offset);
    cr_expect_eq(rec.start_pos, 0);
    cr_expect_eq(rec.start_offset, 0);
    cr_expect_eq(rec.dropped_bytes, 0);
    cr_expect_eq(rec.segments, 3);
}

Test(seg_recover, empty_directory_is_all_zero)
{
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos + rec.end_offset + rec.start_pos + rec.start_offset +
                 rec.dropped_bytes + rec.segments, 0);
}

Test(seg_recover, garbage_after_the_end_is_counted_and_zeroed)
{
    build(2 * SEG + SEG / 2);
    write_segments(5);
    uint8_t junk[3000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)next_rand();
    junk[sizeof junk - 1] |= 1;
    patch_seg(lg.pos, junk, sizeof junk);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, lg.pos);
    cr_expect_eq(rec.end_offset, lg.offset);
    cr_expect_eq(rec.dropped_bytes, sizeof junk);
    uint8_t seg[SEG];
    read_seg(2 * SEG, seg);
    cr_expect_eq(memcmp(seg, lg.buf + 2 * SEG, SEG), 0, "bytes not zeroed on disk");
    rec = recover_ok();
    cr_expect_eq(rec.end_pos, lg.pos);
    cr_expect_eq(rec.dropped_bytes, 0);
}

Test(seg_recover, torn_last_frame_moves_the_end_back)
{
    build(2 * SEG + SEG / 2);
    write_segments(3);
    const struct rec *r = &lg.fr[lg.nfr - 1];
    while (!r->data)
        r--;
    uint8_t junk[40];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)next_rand();
    patch_seg(r->pos + 16, junk, sizeof junk);
    uint8_t seg[SEG];
    read_seg(2 * SEG, seg);
    uint64_t want = tail_bytes(seg, r->pos - 2 * SEG);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, r->pos);
    cr_expect_eq(rec.end_offset, r->offset);
    cr_expect_eq(rec.dropped_bytes, want);
    read_seg(2 * SEG, seg);
    cr_expect_eq(tail_bytes(seg, r->pos - 2 * SEG), 0);
    struct evb_idx *x;
    cr_assert_eq(evb_idx_load(dir, 2 * SEG, &x), 0);
    cr_expect_gt(x->n, 0);
    for (size_t i = 0; i < x->n; i++)
        cr_expect_lt(x->e[i].pos, rec.end_pos, "index entry past the end survived");
    free(x);
}

Test(seg_recover, flipped_bit_in_a_middle_frame_ends_the_log_there)
{
    build(2 * SEG + SEG / 2);
    write_segments(4);
    size_t i = lg.nfr - 1;
    while (lg.fr[i].pos > 2 * SEG + SEG / 4 || !lg.fr[i].data)
        i--;
    const struct rec *r = &lg.fr[i];
    uint32_t len = frame_at(r->pos)->len;
    uint8_t b = lg.buf[r->pos + len - 1] ^ 0x04;
    patch_seg(r->pos + len - 1, &b, 1);
    uint8_t seg[SEG];
    read_seg(2 * SEG, seg);
    uint64_t want = tail_bytes(seg, r->pos - 2 * SEG);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, r->pos);
    cr_expect_eq(rec.end_offset, r->offset);
    cr_expect_eq(rec.dropped_bytes, want);
    size_t seen;
    cr_expect_eq(read_all(rec.start_pos, rec.end_pos, &seen, NULL), -EAGAIN);
    cr_expect_eq(seen, events_below(r->pos));
    /* The index keeps exactly its entries below the end. */
    struct evb_idx *x;
    cr_assert_eq(evb_idx_load(dir, 2 * SEG, &x), 0);
    size_t kept = x->n;
    cr_expect_gt(kept, 0);
    for (size_t k = 0; k < kept; k++)
        cr_expect_lt(x->e[k].pos, rec.end_pos, "index entry past the end survived");
    free(x);
    char path[256];
    evb_seg_path(path, sizeof path, dir, 2 * SEG, "idx");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq((size_t)st.st_size, sizeof(struct evb_idx_hdr) + kept * 24);
}

Test(seg_recover, empty_newest_segment_takes_the_previous_end)
{
    build(2 * SEG - CAP / 2);
    while (lg.pos < 2 * SEG)
        pad_end();
    write_segments(0);
    int fd = evb_seg_create(dir, 2 * SEG, SEG, true, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, 2 * SEG);
    cr_expect_eq(rec.end_offset, lg.offset);
    cr_expect_eq(rec.segments, 3);
    cr_expect_eq(rec.dropped_bytes, 0);
}

Test(seg_recover, newest_segment_that_does_not_continue_the_log_is_cut)
{
    build(2 * SEG + SEG / 2);
    write_segments(0);
    /* A well-formed first frame whose offset jumps: not this log's. */
    struct evb_frame *f = frame_at(2 * SEG);
    f->offset += 1000;
    f->crc32c = evb_frame_crc(f, f->len);
    patch_seg(2 * SEG, f, EVB_FRAME_HDR);
    uint8_t seg[SEG];
    read_seg(2 * SEG, seg);
    uint64_t want = tail_bytes(seg, 0);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, 2 * SEG);
    cr_expect_eq(rec.end_offset, offset_at(2 * SEG));
    cr_expect_eq(rec.dropped_bytes, want);
    cr_expect_eq(rec.segments, 3);
}

Test(seg_recover, newest_segment_after_a_torn_one_is_removed)
{
    build(2 * SEG - CAP / 2);
    while (lg.pos < 2 * SEG)
        pad_end();
    write_segments(6);
    /* The next segment got junk, and the previous one lost its last data
     * frame: writes reached the disk out of order before a crash. */
    uint8_t junk[SEG];
    memset(junk, 0, sizeof junk);
    for (size_t i = 0; i < 5000; i++)
        junk[i] = (uint8_t)(next_rand() | 1);
    write_raw(2 * SEG, junk);
    size_t i = lg.nfr - 1;
    while (!lg.fr[i].data)
        i--;
    const struct rec *r = &lg.fr[i];
    uint8_t zero[EVB_FRAME_HDR] = {0};
    patch_seg(r->pos + 8, zero, sizeof zero);
    uint8_t seg[SEG];
    read_seg(SEG, seg);
    uint64_t want = tail_bytes(seg, r->pos - SEG) + 5000;
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, r->pos);
    cr_expect_eq(rec.end_offset, r->offset);
    cr_expect_eq(rec.segments, 2);
    cr_expect_eq(rec.dropped_bytes, want);
    cr_expect(!exists(2 * SEG, "log"));
    cr_expect(exists(SEG, "idx"));
}

/* ---- lookups ---- */

TestSuite(seg_find, .init = setup, .fini = teardown, .timeout = 60);

/* Brute force: the first event below END with offset (or ts) >= T. */
static const struct rec *first_match(bool by_time, uint64_t t, uint64_t end)
{
    for (size_t i = 0; i < lg.nfr; i++) {
        const struct rec *r = &lg.fr[i];
        if (r->pos >= end)
            break;
        if (r->data && (by_time ? r->ts >= t : r->offset >= t))
            return r;
    }
    return NULL;
}

static void check_find(bool by_time, uint64_t t, uint64_t end)
{
    const struct rec *want = first_match(by_time, t, end);
    uint64_t pos = 0, off = 0;
    int rc = by_time ? evb_seg_find_time(dir, &geom, t, end, &pos, &off)
                     : evb_seg_find_offset(dir, &geom, t, end, &pos, &off);
    if (!want) {
        cr_assert_eq(rc, -ENOENT, "target %llu end %llu: rc %d pos %llu",
                     (unsigned long long)t, (unsigned long long)end, rc,
                     (unsigned long long)pos);
        return;
    }
    cr_assert_eq(rc, 0, "target %llu end %llu: %s", (unsigned long long)t,
                 (unsigned long long)end, evb_last_error());
    cr_assert_eq(pos, want->pos, "%s %llu below %llu: pos %llu, want %llu",
                 by_time ? "time" : "offset", (unsigned long long)t,
                 (unsigned long long)end, (unsigned long long)pos,
                 (unsigned long long)want->pos);
    cr_assert_eq(off, want->offset);
}

static uint64_t random_end(void)
{
    return next_rand() % 4 ? lg.pos : lg.fr[next_rand() % lg.nfr].pos;
}

Test(seg_find, offset_exact_hits_and_misses)
{
    build(3 * SEG + SEG / 3);
    write_segments(5);
    for (uint64_t t = 0; t <= lg.offset + 2; t++)
        check_find(false, t, lg.pos);
    for (int k = 0; k < 300; k++)
        check_find(false, next_rand() % (lg.offset + 3), random_end());
}

Test(seg_find, offset_without_or_with_a_lying_index)
{
    build(3 * SEG + SEG / 3);
    write_segments(0);
    for (int k = 0; k < 200; k++)
        check_find(false, next_rand() % (lg.offset + 3), random_end());
    write_indexes(3, 7); /* every offset in it is 7 too high */
    for (int k = 0; k < 200; k++)
        check_find(false, next_rand() % (lg.offset + 3), random_end());
}

Test(seg_find, offset_before_the_oldest_segment_lands_on_its_first_event)
{
    build(3 * SEG + SEG / 3);
    write_segments(5);
    char path[256];
    evb_seg_path(path, sizeof path, dir, 0, "log");
    unlink(path);
    evb_seg_path(path, sizeof path, dir, 0, "idx");
    unlink(path);
    const struct rec *first = first_match(false, offset_at(SEG), lg.pos);
    uint64_t pos, off;
    cr_assert_eq(evb_seg_find_offset(dir, &geom, 0, lg.pos, &pos, &off), 0);
    cr_expect_eq(pos, first->pos);
    cr_expect_eq(off, first->offset);
    cr_assert_eq(evb_seg_find_time(dir, &geom, 0, lg.pos, &pos, &off), 0);
    cr_expect_eq(pos, first->pos);
}

Test(seg_find, time_is_the_first_in_log_order_at_or_after)
{
    build(3 * SEG + SEG / 3);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < lg.nfr; i++)
        if (lg.fr[i].data) {
            lo = lg.fr[i].ts < lo ? lg.fr[i].ts : lo;
            hi = lg.fr[i].ts > hi ? lg.fr[i].ts : hi;
        }
    for (int pass = 0; pass < 2; pass++) {
        teardown();
        setup();
        write_segments(pass ? 4 : 0);
        for (int k = 0; k < 500; k++)
            check_find(true, lo - 10 + next_rand() % (hi - lo + 20), random_end());
        /* Exactly at recorded timestamps, where >= and > part ways. */
        for (size_t i = 0; i < lg.nfr; i += 3)
            if (lg.fr[i].data) {
                check_find(true, lg.fr[i].ts, lg.pos);
                check_find(true, lg.fr[i].ts + 1, random_end());
            }
        check_find(true, hi + 1, lg.pos);
        check_find(true, 0, lg.pos);
    }
}

/* ---- random damage ---- */

TestSuite(seg_fuzz, .init = setup, .fini = teardown, .timeout = 60);

/* Damage the image of segment BASE. Modes: 0 a random range, 1 all of it,
 * 2 sparse bit flips, 3 plausible stamps over random (sometimes
 * checksummed) headers. */
static void damage(uint8_t *seg, uint64_t base, int mode)
{
    if (mode == 0 || mode == 1) {
        uint64_t from = mode ? 0 : next_rand() % SEG;
        uint64_t n = mode ? SEG : next_rand() % (SEG - from);
        for (uint64_t i = from; i < from + n; i++)
            seg[i] = (uint8_t)next_rand();
    } else if (mode == 2) {
        for (int i = 0; i < 40; i++)
            seg[next_rand() % SEG] ^= (uint8_t)(1u << (next_rand() % 8));
    } else {
        for (uint64_t at = next_rand() % 4096 * 8; at + 64 <= SEG;
             at += 8 * (1 + next_rand() % 300)) {
            uint64_t w[7];
            for (int k = 0; k < 7; k++)
                w[k] = next_rand() % 3 ? next_rand() : next_rand() % 2048;
            memcpy(seg + at + 8, w, sizeof w);
            struct evb_frame *f = (struct evb_frame *)(void *)(seg + at);
            uint64_t r = SEG - at;
            if (next_rand() % 2) {
                f->len = (uint32_t)(EVB_FRAME_HDR + next_rand() % 700);
                if (f->len > r)
                    f->len = (uint32_t)r;
                f->crc32c = evb_frame_crc(f, f->len);
            }
            uint64_t stamp = (base + at) | (next_rand() % 2 ? EVB_STAMP_DATA : EVB_STAMP_PAD);
            memcpy(seg + at, &stamp, sizeof stamp);
        }
    }
}

Test(seg_fuzz, random_damage_gives_errors_or_valid_frames)
{
    uint64_t seeds = t_env_u64("EVB_TEST_FUZZ_SEEDS", 300);
    uint8_t *seg = malloc(SEG);
    cr_assert_not_null(seg);
    uint64_t sum = 0, recovered_to_end = 0;
    for (uint64_t seed = t_env_u64("EVB_TEST_FUZZ_FROM", 1); seed <= seeds; seed++) {
        rng = seed * 0x9e3779b97f4a7c15ull;
        teardown();
        setup();
        rng = seed * 0x9e3779b97f4a7c15ull;
        build(SEG + SEG / 2);
        for (uint64_t b = 0; b < lg.pos; b += SEG)
            write_raw(b, lg.buf + b);
        write_indexes(4, next_rand() % 4 ? 0 : 3);
        /* Damage the newest segment, sometimes the oldest too, sometimes
         * the newest index. */
        bool old_too = seed % 5 == 0;
        memcpy(seg, lg.buf + SEG, SEG);
        damage(seg, SEG, (int)(seed % 4));
        write_raw(SEG, seg);
        if (old_too) {
            memcpy(seg, lg.buf, SEG);
            damage(seg, 0, (int)(next_rand() % 4));
            write_raw(0, seg);
        }
        if (seed % 3 == 0) {
            char path[256];
            evb_seg_path(path, sizeof path, dir, SEG, "idx");
            int fd = open(path, O_WRONLY);
            uint8_t junk[200];
            for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (uint8_t)next_rand();
            cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)(next_rand() % 100)),
                         (ssize_t)sizeof junk);
            close(fd);
        }

        /* Reading: touch every delivered byte so ASan sees bad pointers. */
        struct evb_seg_reader sr;
        cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
        struct evb_frame_view v;
        int rc;
        while ((rc = evb_seg_read(&sr, 2 * SEG, &v)) == 0) {
            uint32_t len = v.f->len;
            cr_assert(len >= EVB_FRAME_HDR && len <= MAX_FRAME);
            cr_assert_eq(v.f->crc32c, evb_frame_crc(v.f, len));
            for (const uint8_t *p = v.key; p < (const uint8_t *)v.f + len; p++)
                sum += *p;
        }
        cr_assert(rc == -EBADMSG || rc == -EAGAIN, "read: %d", rc);
        evb_seg_reader_close(&sr);
        for (int k = 0; k < 10; k++) {
            uint64_t pos, off, t = next_rand() % (lg.offset + 2);
            rc = k % 2 ? evb_seg_find_time(dir, &geom, 1000000 + t * 10, 2 * SEG, &pos, &off)
                       : evb_seg_find_offset(dir, &geom, t, 2 * SEG, &pos, &off);
            cr_assert(rc == 0 || rc == -ENOENT || rc == -EBADMSG, "find: %d", rc);
            if (rc == 0)
                cr_assert_lt(pos, 2 * SEG);
        }

        /* Recovery leaves a log that reads cleanly to its end (when the
         * damage was in the newest segment only), and is idempotent. */
        struct evb_seg_recovery rec = recover_ok();
        cr_assert_leq(rec.end_pos, 2 * SEG);
        struct evb_seg_recovery again = recover_ok();
        cr_assert_eq(again.end_pos, rec.end_pos);
        cr_assert_eq(again.end_offset, rec.end_offset);
        cr_assert_eq(again.dropped_bytes, 0);
        if (old_too)
            continue;
        cr_assert_geq(rec.end_pos, SEG);
        cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
        evb_seg_reader_seek(&sr, rec.start_pos, rec.start_offset, false);
        while ((rc = evb_seg_read(&sr, rec.end_pos, &v)) == 0)
            ;
        cr_assert_eq(rc, -EAGAIN, "seed %llu: recovered log reads %d at %llu (%s)",
                     (unsigned long long)seed, rc, (unsigned long long)sr.pos,
                     evb_last_error());
        cr_assert_eq(sr.offset, rec.end_offset, "seed %llu: offset %llu at the end, "
                     "recovery said %llu (end %llu)", (unsigned long long)seed,
                     (unsigned long long)sr.offset, (unsigned long long)rec.end_offset,
                     (unsigned long long)rec.end_pos);
        evb_seg_reader_close(&sr);
        recovered_to_end += rec.end_pos == lg.pos;
    }
    cr_log_info("checksum %llu, %llu seeds kept the whole log", (unsigned long long)sum,
                (unsigned long long)recovered_to_end);
    free(seg);
}
