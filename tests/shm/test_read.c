/*
 * test_read.c - shm/read.c: a reader stops at a claimed but uncommitted
 * frame, never takes a stale or zero stamp for a commit, pads a dead
 * producer's hole after dead time and a live one's only after stall time,
 * reports the exact loss when lapped (or -ESTALE on a durable ring), reads
 * in place or by copy by kind, and rejects corrupt frames for good.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ring_helpers.h"
#include "t_helpers.h"

TestSuite(ring_read, .fini = tr_fini, .timeout = 10);

Test(ring_read, stops_at_an_uncommitted_frame)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
    tr_fill(&r, &c); /* everything but the stamp */
    for (int i = 0; i < 2000; i++)
        cr_assert_eq(evb_ring_read(&rd, &v), -EAGAIN, "poll %d", i);
    cr_expect_eq(evb_ring_reader_ready(&rd), 2, "claimed, not committed");
    cr_assert_eq(evb_ring_commit(&p, &c), 0);
    cr_expect_eq(evb_ring_reader_ready(&rd), 1);
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.f->offset, 0);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* Lap 0's commit at the same index names position 0, not 64 KiB. */
Test(ring_read, stale_stamp_from_a_previous_lap_is_not_a_commit)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .base_pos = TR_CAP, .base_offset = 100};
    tr_ring(&r, &init);
    tr_frame(&r, 0, 99, 64, 64, 1);
    tr_stamp(&r, 0, 0 | EVB_STAMP_DATA);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
    for (int i = 0; i < 600; i++)
        cr_assert_eq(evb_ring_read(&rd, &v), -EAGAIN);
    cr_expect_eq(evb_ring_reader_ready(&rd), 2);
    /* A pad stamp of an older lap is no commit either. */
    tr_stamp(&r, 0, 0 | EVB_STAMP_PAD);
    cr_expect_eq(evb_ring_read(&rd, &v), -EAGAIN);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A zeroed file: stamp 0 at position 0 is neither 0|DATA nor 0|PAD. */
Test(ring_read, zero_stamp_at_position_zero_is_not_a_commit)
{
    struct evb_ring r;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0),
                 0);
    tr_frame(&r, 0, 0, 64, 64, 1);
    tr_set_tail(&r, 64, 1);
    cr_expect_eq(evb_ring_read(&rd, &v), -EAGAIN);
    tr_stamp(&r, 0, 0 | EVB_STAMP_DATA);
    cr_expect_eq(evb_ring_read(&rd, &v), 0);
    evb_ring_reader_detach(&rd);
    evb_ring_close(&r);
}

Test(ring_read, lapped_subscriber_reports_the_exact_loss)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    uint64_t per_lap = TR_CAP / 64, n = per_lap * 5 / 2;
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(tr_publish(&p, 64, &c), 0);
    /* The newest lap start, 2 * cap, is where the reader lands. */
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.pos, 2 * TR_CAP);
    cr_expect_eq(v.f->offset, 2 * per_lap);
    cr_expect_eq(v.lost_events, 2 * per_lap);
    cr_expect_eq(v.lost_bytes, 2 * TR_CAP);
    cr_expect_eq(TR_LD(r.rslots[rd.slot_idx].lost), 2 * per_lap);
    for (uint64_t off = 2 * per_lap + 1; off < n; off++) {
        cr_assert_eq(evb_ring_read(&rd, &v), 0);
        cr_assert_eq(v.f->offset, off);
        cr_assert_eq(v.lost_events, 0);
    }
    cr_expect_eq(evb_ring_read(&rd, &v), -EAGAIN);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_read, durable_ring_lapped_reader_gets_estale_and_stays)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .flags = EVB_RING_F_DURABLE};
    tr_ring(&r, &init);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_CONSUMER, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    /* A flusher that keeps up: flushed follows every commit (it may never
     * pass the tail, claim.c check_flushed). */
    for (uint64_t i = 0; i < TR_CAP / 64 * 3 / 2; i++) {
        cr_assert_eq(tr_publish(&p, 64, &c), 0);
        TR_ST(r.hdr->flushed, c.data_pos + c.len);
    }
    cr_expect_eq(evb_ring_read(&rd, &v), -ESTALE);
    cr_expect_eq(rd.pos, 0, "nothing skipped: the disk log has it");
    cr_expect_eq(evb_ring_read(&rd, &v), -ESTALE);
    /* Back from the disk at the lap start. */
    cr_assert_eq(evb_ring_reader_seek_pos(&rd, TR_CAP, TR_CAP / 64), 0);
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.f->offset, TR_CAP / 64);
    cr_expect_eq(v.lost_events, 0);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_read, gating_reader_reads_in_place_and_subscriber_copies)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader lossless, sub;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&lossless, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE,
                                        0), 0);
    cr_assert_eq(evb_ring_reader_attach(&sub, &r, EVB_SLOT_SUBSCRIBER, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(tr_publish(&p, 200, &c), 0);
    cr_assert_eq(evb_ring_read(&lossless, &v), 0);
    cr_expect_eq((const void *)v.f, (const void *)evb_ring_frame(&r, 0), "zero-copy");
    cr_assert_eq(evb_ring_read(&sub, &v), 0);
    cr_expect_neq((const void *)v.f, (const void *)evb_ring_frame(&r, 0), "a copy");
    cr_expect_eq(memcmp(v.f, evb_ring_frame(&r, 0), 200), 0);
    evb_ring_reader_detach(&sub);
    evb_ring_reader_detach(&lossless);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* Producer 1 claims [0, 64) and does not commit; producer 2 commits
 * [64, 128). Producer 1's owner word is then set to OWNER. */
static void hole_then_event(struct evb_ring *r, struct evb_ring_producer *p1,
                            struct evb_ring_producer *p2, uint64_t owner)
{
    struct evb_ring_claim c;
    cr_assert_eq(evb_ring_producer_attach(p1, r, 1), 0);
    cr_assert_eq(evb_ring_producer_attach(p2, r, 2), 0);
    cr_assert_eq(evb_ring_claim(p1, 64, 1, &c), 0);
    cr_assert_eq(tr_publish(p2, 64, &c), 0);
    TR_ST(p1->slot->owner, owner);
}

Test(ring_read, dead_producers_hole_is_padded_after_dead_time)
{
    struct evb_ring r;
    struct evb_ring_producer p1, p2;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0),
                 0);
    hole_then_event(&r, &p1, &p2, tr_owner_dead());
    uint64_t t0 = evb_mono_ns();
    cr_assert_eq(tr_read_wait(&rd, &v, 5000), 0);
    uint64_t waited = evb_mono_ns() - t0;
    cr_expect_geq(waited, r.dead_ns / 4, "padded after %llu ns",
                  (unsigned long long)waited);
    cr_expect_eq(v.pos, 64);
    cr_expect_eq(v.f->offset, 1);
    cr_expect_eq(v.lost_events, 0);
    cr_expect_eq(TR_LD(r.hdr->padded_dead), 1);
    cr_expect_eq(TR_LD(r.hdr->aborted), 1);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p2);
    evb_ring_close(&r);
}

Test(ring_read, live_producers_hole_is_padded_only_after_stall_time)
{
    struct evb_ring r;
    struct evb_ring_producer p1, p2;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0),
                 0);
    uint64_t live = tr_owner_live();
    hole_then_event(&r, &p1, &p2, live);
    /* Several dead times go by: a live owner is not padded. */
    cr_expect_eq(tr_read_wait(&rd, &v, (int)(4 * r.dead_ns / 1000000)), -EAGAIN);
    cr_expect_eq(tr_stamp_at(&r, 0), 0);
    r.stall_ns = r.dead_ns;
    cr_assert_eq(tr_read_wait(&rd, &v, 5000), 0);
    cr_expect_eq(v.pos, 64);
    cr_expect_eq(TR_LD(r.hdr->padded_stalled), 1);
    cr_expect_eq(TR_LD(p1.slot->owner), live, "a stalled producer keeps its slot");
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p2);
    evb_ring_close(&r);
}

Test(ring_read, ready_says_nothing_claimed_committed_or_lapped)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_expect_eq(evb_ring_reader_ready(&rd), 0);
    cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
    cr_expect_eq(evb_ring_reader_ready(&rd), 2);
    tr_fill(&r, &c);
    cr_assert_eq(evb_ring_commit(&p, &c), 0);
    cr_expect_eq(evb_ring_reader_ready(&rd), 1);
    /* Lapped with the frame under the reader overwritten and unstamped. */
    tr_set_tail(&r, 2 * TR_CAP + 64, 1000);
    tr_stamp(&r, 0, 0);
    cr_expect_eq(evb_ring_reader_ready(&rd), 1);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_read, corrupt_frame_length_is_ebadmsg_and_sticks)
{
    struct evb_ring r;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0),
                 0);
    tr_frame(&r, 0, 0, 64, 64, 1);
    evb_ring_frame(&r, 0)->len = TR_MAX_FRAME + 8;
    tr_stamp(&r, 0, 0 | EVB_STAMP_DATA);
    tr_set_tail(&r, 64, 1);
    cr_expect_eq(evb_ring_read(&rd, &v), -EBADMSG);
    cr_expect(strstr(evb_err_get(), "frame length 4104"), "%s", evb_err_get());
    evb_ring_frame(&r, 0)->len = 64;
    cr_expect_eq(evb_ring_read(&rd, &v), -EBADMSG, "a failed reader stays failed");
    evb_ring_reader_detach(&rd);
    evb_ring_close(&r);
}

Test(ring_read, unexpected_offset_is_ebadmsg)
{
    struct evb_ring r;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0),
                 0);
    tr_frame(&r, 0, 5, 64, 64, 1);
    tr_stamp(&r, 0, 0 | EVB_STAMP_DATA);
    tr_set_tail(&r, 64, 1);
    cr_expect_eq(evb_ring_read(&rd, &v), -EBADMSG);
    cr_expect(strstr(evb_err_get(), "unexpected offset 5"), "%s", evb_err_get());
    evb_ring_reader_detach(&rd);
    evb_ring_close(&r);
}

Test(ring_read, pad_longer_than_its_room_is_ebadmsg)
{
    struct evb_ring r;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .base_pos = TR_CAP - 128};
    tr_ring(&r, &init);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0),
                 0);
    tr_frame(&r, TR_CAP - 128, 0, 64, 256, 0);
    tr_stamp(&r, TR_CAP - 128, (TR_CAP - 128) | EVB_STAMP_PAD);
    tr_set_tail(&r, TR_CAP + 128, 0);
    cr_expect_eq(evb_ring_read(&rd, &v), -EBADMSG);
    cr_expect(strstr(evb_err_get(), "pad length 256"), "%s", evb_err_get());
    evb_ring_reader_detach(&rd);
    evb_ring_close(&r);
}

Test(ring_read, seek_offset_skips_events_below_it)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(tr_publish(&p, 64, &c), 0);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_reader_seek_offset(&rd, 6), 0);
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.f->offset, 6);
    cr_expect_eq(v.lost_events, 0);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_read, oldest_is_the_oldest_whole_lap_start)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    uint64_t pos, off;
    cr_assert_eq(evb_ring_oldest(&r, &pos, &off), 0);
    cr_expect_eq(pos, 0);
    for (uint64_t i = 0; i < TR_CAP / 64 * 5 / 2; i++)
        cr_assert_eq(tr_publish(&p, 64, &c), 0);
    cr_assert_eq(evb_ring_oldest(&r, &pos, &off), 0);
    cr_expect_eq(pos, 2 * TR_CAP, "the lap from 1.5 caps up is partly overwritten");
    cr_expect_eq(off, 2 * TR_CAP / 64);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/*
 * A ring rebuilt with its base within a frame header of the lap end, and
 * a tail (hostile, or a pad alone) that ends at the lap end: the oldest
 * event was looked for at the base itself, and its offset word read past
 * the data area (found by fuzz_ring: SEGV with the base 8 bytes short of
 * the end). Nothing is there to read: the oldest is the tail, the next
 * lap's start; with an event there, that event.
 */
Test(ring_read, oldest_skips_a_base_too_near_the_lap_end_for_a_frame)
{
    for (uint64_t gap = 8; gap < EVB_FRAME_HDR; gap += 8) {
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_claim c;
        struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                     .mode = 0600, .base_pos = TR_CAP - gap,
                                     .base_offset = 4};
        tr_ring(&r, &init);
        uint64_t pos, off;
        atomic_store(&r.hdr->tail.pos, TR_CAP);
        int rc = evb_ring_oldest(&r, &pos, &off);
        cr_expect_eq(rc, 0, "gap %llu: %d", (unsigned long long)gap, rc);
        cr_expect_eq(pos, TR_CAP, "gap %llu: the oldest at %llu", (unsigned long long)gap,
                     (unsigned long long)pos);
        atomic_store(&r.hdr->tail.pos, TR_CAP - gap);
        cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
        cr_assert_eq(tr_publish(&p, 64, &c), 0);
        cr_assert_eq(evb_ring_oldest(&r, &pos, &off), 0);
        cr_expect_eq(pos, TR_CAP);
        cr_expect_eq(off, 4);
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}
