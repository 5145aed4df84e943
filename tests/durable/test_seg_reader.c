/*
 * test_seg_reader.c - the segment reader of bus/durable/seg_reader.c: it
 * walks every event of a hand-built log across segments and pads, and
 * reports a removed segment or a corrupt frame (a bad checksum, offset,
 * pad length or key length) with the right code.
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

/* A data frame whose checksum is right but whose key is longer than its
 * payload (written so by a corrupt or hostile producer, checksum and all):
 * evb_seg_frame() refuses it on the key_len bound, as the ring reader and
 * the flusher do (shm/frame.h), and a reader stops there. */
Test(seg_reader, key_longer_than_the_payload_is_refused_despite_its_checksum)
{
    log_reset(SEG);
    for (int i = 0; i < 8; i++)
        put_data(EVB_FRAME_HDR + 40, 1000 + (uint64_t)i);
    const struct rec *r = &lg.fr[3];
    cr_assert(r->data);
    struct evb_frame *f = frame_at(r->pos);
    uint32_t len = f->len;
    f->key_len = (uint16_t)(len - EVB_FRAME_HDR + 1);
    f->crc32c = evb_frame_crc(f, len);
    /* The frame before it has the largest key its payload allows. */
    struct evb_frame *prev = frame_at(lg.fr[2].pos);
    prev->key_len = (uint16_t)(prev->len - EVB_FRAME_HDR);
    prev->crc32c = evb_frame_crc(prev, prev->len);
    write_segments(0);

    struct evb_seg s;
    cr_assert_eq(evb_seg_map(&s, dir, 0, SEG), 0);
    const struct evb_frame *mf = (const struct evb_frame *)(const void *)evb_seg_bytes(&s, r->pos, len);
    cr_assert(mf);
    cr_assert_eq(mf->crc32c, evb_frame_crc(mf, len), "the checksum covers the bad key");
    struct evb_seg_frame fr;
    cr_expect_eq(evb_seg_frame(&s, &geom, lg.fr[2].pos, &fr), 1);
    cr_expect_eq(fr.key_len, prev->len - EVB_FRAME_HDR);
    cr_expect_eq(evb_seg_frame(&s, &geom, r->pos, &fr), 0);
    cr_expect_eq(evb_seg_frame(&s, &geom, lg.fr[4].pos, &fr), 1);
    evb_seg_unmap(&s);

    size_t seen;
    struct evb_seg_reader sr;
    cr_expect_eq(read_all(0, lg.pos, &seen, &sr), -EBADMSG);
    cr_expect_eq(seen, 3);
    cr_expect_eq(sr.pos, r->pos);
    evb_seg_reader_close(&sr);
}

/* A read error is no damage: the reader returns it, stays where it was,
 * neither failed (strict: no sticky -EBADMSG) nor counting the unread
 * bytes lost (skip mode: it went past them for good); once reads work
 * again it reads every event, none counted lost. */
Test(seg_reader, a_read_error_is_passed_up_and_loses_nothing)
{
    build(2 * SEG + SEG / 2);
    write_segments(0);
    for (int skip = 0; skip < 2; skip++) {
        struct evb_seg_reader sr;
        cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
        sr.skip_damage = skip;
        sr.once = skip;
        evb_seg_reader_seek(&sr, 0, 0, true);
        /* Read up to MID first: the window keeps nothing from there on,
         * so the next read of it is a pread, made to fail. */
        uint64_t mid = lg.fr[lg.nfr / 2].pos;
        struct evb_frame_view v;
        size_t seen = 0;
        int rc;
        while ((rc = evb_seg_read(&sr, mid, &v)) == 0)
            seen++;
        cr_assert_eq(rc, -EAGAIN);
        t_pread_failed = 0;
        t_pread_fail_at = (long long)((mid % SEG) + 8);
        for (int k = 0; k < 2; k++) {
            rc = evb_seg_read(&sr, lg.pos, &v);
            cr_expect_eq(rc, -EIO, "skip %d: read %d gave %d", skip, k, rc);
        }
        t_pread_fail_at = -1;
        cr_assert_gt(t_pread_failed, 0);
        cr_expect_eq(sr.failed, 0);
        cr_expect_eq(sr.pos, mid);
        cr_expect_eq(sr.lost_bytes + sr.lost_events + sr.offset_breaks, 0);
        uint64_t lost = 0;
        while ((rc = evb_seg_read(&sr, lg.pos, &v)) == 0) {
            cr_expect_eq(v.f->offset, offset_at(v.pos));
            lost += v.lost_events + v.lost_bytes;
            seen++;
        }
        cr_expect_eq(rc, -EAGAIN, "skip %d: %d (%s)", skip, rc, evb_last_error());
        cr_expect_eq(seen, events_below(lg.pos), "skip %d: %zu events", skip, seen);
        cr_expect_eq(lost, 0, "skip %d: %llu lost", skip, (unsigned long long)lost);
        evb_seg_reader_close(&sr);
    }
}

/* A reader that held a segment while it was cut short sees the frames
 * written in it once the flusher made it whole again (refill_cut) and
 * went on: it takes the file's size again, rather than calling what lies
 * past the old size lost. */
Test(seg_reader, a_segment_made_whole_again_is_read_on)
{
    build(SEG - 4096);
    write_segments(0);
    /* cut at a quarter; the flusher had written to half (its round found
     * the cut), made the file whole, and wrote on to the end */
    uint64_t cut = lg.fr[lg.nfr / 4].pos, e1 = lg.fr[lg.nfr / 2].pos, e2 = lg.pos;
    char path[256];
    evb_seg_path(path, sizeof path, dir, 0, "log");
    cr_assert_eq(truncate(path, (off_t)cut), 0);
    for (int skip = 0; skip < 2; skip++) {
        cr_assert_eq(truncate(path, (off_t)cut), 0);
        struct evb_seg_reader sr;
        cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
        sr.skip_damage = true;
        sr.once = skip;
        evb_seg_reader_seek(&sr, 0, 0, true);
        struct evb_frame_view v;
        size_t seen = 0;
        int rc;
        while ((rc = evb_seg_read(&sr, cut, &v)) == 0)
            seen++;
        cr_assert_eq(rc, -EAGAIN);
        cr_assert_eq(seen, events_below(cut));
        cr_assert_lt(sr.seg.bytes, SEG, "the reader holds the cut file");
        /* made whole: [cut, e1) zeros (lost), the flusher writes on at e1 */
        cr_assert_eq(truncate(path, SEG), 0);
        patch_seg(e1, lg.buf + e1, (size_t)(e2 - e1));
        size_t after = 0;
        uint64_t lost_bytes = 0;
        while ((rc = evb_seg_read(&sr, e2, &v)) == 0) {
            cr_expect_geq(v.pos, e1);
            cr_expect_eq(v.f->offset, offset_at(v.pos));
            lost_bytes += v.lost_bytes;
            after++;
        }
        cr_expect_eq(rc, -EAGAIN, "%d (%s)", rc, evb_last_error());
        cr_expect_eq(after, events_below(e2) - events_below(e1),
                     "read %zu events after the refill, %zu were written", after,
                     events_below(e2) - events_below(e1));
        /* the zeros of the cut, and nothing past them */
        cr_expect_eq(lost_bytes, e1 - cut, "%llu bytes lost", (unsigned long long)lost_bytes);
        evb_seg_reader_close(&sr);
    }
}

/* Skip mode: damage up to a segment's end is skipped to that end, not
 * past the segments after it (the resync's bound is the segment's). */
Test(seg_reader, damage_at_a_segment_end_skips_to_the_next_segment_only)
{
    build(2 * SEG + SEG / 2);
    write_segments(0);
    size_t k = 0;
    while (lg.fr[k].pos < 3 * SEG / 4)
        k++;
    uint64_t from = lg.fr[k].pos;
    uint8_t *zeros = calloc(1, SEG);
    cr_assert(zeros);
    patch_seg(from, zeros, (size_t)(SEG - from));
    free(zeros);
    struct evb_seg_reader sr;
    cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
    sr.skip_damage = true;
    evb_seg_reader_seek(&sr, 0, 0, true);
    struct evb_frame_view v;
    size_t seen = 0;
    uint64_t lost = 0;
    int rc;
    while ((rc = evb_seg_read(&sr, lg.pos, &v)) == 0) {
        cr_expect_eq(v.f->offset, offset_at(v.pos));
        lost += v.lost_bytes;
        seen++;
    }
    cr_expect_eq(rc, -EAGAIN);
    cr_expect_eq(seen, events_below(lg.pos) - (events_below(SEG) - events_below(from)),
                 "%zu events read", seen);
    cr_expect_eq(lost, SEG - from, "%llu bytes lost", (unsigned long long)lost);
    evb_seg_reader_close(&sr);
}
