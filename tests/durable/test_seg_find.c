/*
 * test_seg_find.c - lookups by offset and by time over segment files and
 * their sparse indexes (bus/segment.c), checked against brute force over
 * the hand-built log, with and without a lying index.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "seg_helpers.h"
#include "t_helpers.h"

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

/* ---- one bad entry in an index (attack 3, F1) ---- */

/* The first match by brute force, against evb_seg_find with and without
 * damage skipping: a bad hint may cost a walk, never an event. */
static void check_find_both(bool by_time, uint64_t t, const char *what)
{
    const struct rec *want = first_match(by_time, t, lg.pos);
    for (int skip = 0; skip < 2; skip++) {
        uint64_t pos = 0, off = 0;
        struct evb_seg_skipped sk;
        int rc = evb_seg_find(dir, &geom, by_time, t, lg.pos, skip, &pos, &off, &sk);
        if (!want) {
            cr_assert_eq(rc, -ENOENT, "%s: %s %llu: rc %d pos %llu", what,
                         by_time ? "time" : "offset", (unsigned long long)t, rc,
                         (unsigned long long)pos);
            continue;
        }
        cr_assert_eq(rc, 0, "%s: %s", what, evb_last_error());
        cr_assert_eq(pos, want->pos, "%s, skip %d: %s %llu found at %llu, the first is at %llu",
                     what, skip, by_time ? "time" : "offset", (unsigned long long)t,
                     (unsigned long long)pos, (unsigned long long)want->pos);
        cr_assert_eq(off, want->offset, "%s", what);
        if (skip)
            cr_assert_eq(sk.bytes, 0, "%s: an intact log reported %llu bytes skipped", what,
                         (unsigned long long)sk.bytes);
    }
}

static void idx_rw(uint64_t base, struct evb_idx_entry *e, size_t *n, bool write)
{
    char path[256];
    evb_seg_path(path, sizeof path, dir, base, "idx");
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    if (write) {
        cr_assert_eq(pwrite(fd, e, *n * sizeof *e, EVB_IDX_HDR_BYTES),
                     (ssize_t)(*n * sizeof *e));
    } else {
        ssize_t got = pread(fd, e, 64 * sizeof *e, EVB_IDX_HDR_BYTES);
        cr_assert_gt(got, 0);
        *n = (size_t)got / sizeof *e;
    }
    close(fd);
}

Test(seg_find, one_bad_index_entry_costs_a_walk_never_an_event)
{
    build(3 * SEG + SEG / 3);
    write_segments(6);
    static const char *kinds[] = {"lower", "zero", "higher", "max", "below the previous",
                                  "one bit flipped", "pos moved", "offset moved"};
    for (int trial = 0; trial < 400; trial++) {
        uint64_t base = (next_rand() % (lg.pos / SEG + 1)) * SEG;
        struct evb_idx_entry e[64], keep[64];
        size_t n;
        idx_rw(base, e, &n, false);
        memcpy(keep, e, sizeof e);
        size_t k = next_rand() % n;
        unsigned kind = trial % 8;
        uint64_t *ts = &e[k].max_ts;
        switch (kind) {
        case 0: *ts -= 1 + next_rand() % (*ts ? *ts : 1); break;
        case 1: *ts = 0; break;
        case 2: *ts += 1 + next_rand() % 100000; break;
        case 3: *ts = UINT64_MAX; break;
        case 4: *ts = k ? e[k - 1].max_ts - 1 : 0; break;
        case 5: *ts ^= 1ull << (next_rand() % 64); break;
        case 6: e[k].pos = k ? e[k - 1].pos + 8 * (1 + next_rand() % 20) : base + 8; break;
        case 7: e[k].offset += next_rand() % 2 ? 1 : (uint64_t)-1; break;
        }
        idx_rw(base, e, &n, true);
        char what[128];
        snprintf(what, sizeof what, "trial %d: entry %zu of segment %llu, %s", trial, k,
                 (unsigned long long)base, kinds[kind]);
        /* Every timestamp of the frames around the entry, and just past. */
        uint64_t lo = k > 1 ? keep[k - 2].pos : base;
        uint64_t hi = k + 1 < n ? keep[k + 1].pos : base + SEG;
        for (size_t i = 0; i < lg.nfr; i++) {
            const struct rec *r = &lg.fr[i];
            if (r->pos < lo || r->pos >= hi || !r->data)
                continue;
            check_find_both(true, r->ts, what);
            check_find_both(true, r->ts + 1, what);
            check_find_both(false, r->offset, what);
        }
        check_find_both(true, keep[k].max_ts, what);
        check_find_both(true, keep[k].max_ts + 1, what);
        idx_rw(base, keep, &n, true);
    }
}

/* `info --verify` checks each index against its frames: an honest one
 * passes, one changed entry (or header) is found and named, and neither
 * counts as damage to the log. */
static struct evb_seg_damage verify_all(void)
{
    struct evb_seg_damage d;
    cr_assert_eq(evb_seg_verify(dir, &geom, 0, lg.pos, &d), 0, "%s", evb_last_error());
    cr_assert_eq(d.ranges, 0, "a bad index counted as log damage");
    return d;
}

Test(seg_find, verify_names_an_index_that_contradicts_its_frames)
{
    build(3 * SEG + SEG / 3);
    write_segments(6);
    cr_assert_eq(verify_all().bad_indexes, 0, "an honest index called bad");
    for (int trial = 0; trial < 200; trial++) {
        uint64_t base = (next_rand() % (lg.pos / SEG + 1)) * SEG;
        struct evb_idx_entry e[64], keep[64];
        size_t n;
        idx_rw(base, e, &n, false);
        memcpy(keep, e, sizeof e);
        size_t k = next_rand() % n;
        switch (trial % 6) {
        case 0: e[k].max_ts -= 1 + next_rand() % (e[k].max_ts ? e[k].max_ts : 1); break;
        case 1: e[k].max_ts += 1 + next_rand() % 100000; break;
        case 2: e[k].max_ts ^= 1ull << (next_rand() % 64); break;
        case 3: e[k].pos += 8; break; /* inside the frame */
        case 4: e[k].offset += next_rand() % 2 ? 1 : (uint64_t)-1; break;
        case 5: e[k] = e[(k + 1) % n]; break; /* a copied entry */
        }
        if (!memcmp(&e[k], &keep[k], sizeof e[k]))
            continue;
        idx_rw(base, e, &n, true);
        struct evb_seg_damage d = verify_all();
        cr_assert_eq(d.bad_indexes, 1, "trial %d: entry %zu of segment %llu changed, %llu bad",
                     trial, k, (unsigned long long)base, (unsigned long long)d.bad_indexes);
        cr_assert_eq(d.bad_index_base, base);
        idx_rw(base, keep, &n, true);
    }
    /* The header's base offset, and a header that is no index header. */
    char path[256];
    evb_seg_path(path, sizeof path, dir, SEG, "idx");
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint64_t off, bad;
    cr_assert_eq(pread(fd, &off, 8, 24), 8);
    bad = off + 1;
    cr_assert_eq(pwrite(fd, &bad, 8, 24), 8);
    cr_expect_eq(verify_all().bad_indexes, 1, "a wrong base offset passed");
    cr_assert_eq(pwrite(fd, &bad, 8, 0), 8);
    cr_expect_eq(verify_all().bad_indexes, 1, "a header that is no index passed");
    close(fd);
    /* Gone: no finding (seeks walk the frames). */
    cr_assert_eq(unlink(path), 0);
    cr_expect_eq(verify_all().bad_indexes, 0);
}
