/*
 * test_claim.c - shm/claim.c: claims move (position, offset) together,
 * batches, the end-of-ring pad, the producer limit (gating readers, other
 * producers' pending claims, flushed on durable rings, S1 registration),
 * and commit and abort against a pad that won the stamp's CAS. States are
 * written into the mapping by hand (STYLE.md 2.9).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ring_helpers.h"
#include "t_helpers.h"

TestSuite(ring_claim, .fini = tr_fini, .timeout = 10);

Test(ring_claim, moves_position_and_offset_together)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
    cr_expect_eq(c.pos, 0);
    cr_expect_eq(c.data_pos, 0);
    cr_expect_eq(c.offset, 0);
    cr_expect_eq(c.pad, 0);
    uint64_t pos, off;
    evb_ring_load_tail(&r, &pos, &off);
    cr_expect_eq(pos, 64);
    cr_expect_eq(off, 1);
    cr_expect_eq(TR_LD(p.slot->pending), 0, "a claim is pending until committed");
    cr_expect_eq(evb_ring_open_events(&r, pos, off), 1, "and open");
    tr_fill(&r, &c);
    cr_assert_eq(evb_ring_commit(&p, &c), 0);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_DATA);
    cr_expect_eq(TR_LD(p.slot->pending), EVB_POS_NONE);
    cr_expect_eq(evb_ring_open_events(&r, pos, off), 0, "a committed claim is not open");
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_claim, batch_claim_reserves_many_events_in_one_cas)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 3 * 96, 3, &c), 0);
    uint64_t pos, off;
    evb_ring_load_tail(&r, &pos, &off);
    cr_expect_eq(pos, 288);
    cr_expect_eq(off, 3);
    tr_fill(&r, &c);
    cr_assert_eq(evb_ring_commit(&p, &c), 0);
    /* R2: every frame of the batch carries its own stamp. */
    for (uint64_t q = 0; q < 288; q += 96)
        cr_expect_eq(tr_stamp_at(&r, q), q | EVB_STAMP_DATA, "frame at %llu",
                     (unsigned long long)q);

    struct evb_ring_reader rd;
    struct evb_frame_view v;
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", 0, 0), 0);
    for (uint64_t i = 0; i < 3; i++) {
        cr_assert_eq(evb_ring_read(&rd, &v), 0);
        cr_expect_eq(v.f->offset, i);
        cr_expect_eq(v.pos, i * 96);
    }
    cr_expect_eq(evb_ring_read(&rd, &v), -EAGAIN);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_claim, rejects_bad_lengths_and_event_counts)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_expect_eq(evb_ring_claim(&p, 0, 1, &c), -EINVAL);
    cr_expect_eq(evb_ring_claim(&p, 60, 1, &c), -EINVAL);
    cr_expect_eq(evb_ring_claim(&p, TR_CAP / 2 + 8, 1, &c), -EINVAL);
    cr_expect_eq(evb_ring_claim(&p, 64, 0, &c), -EINVAL);
    cr_expect_eq(evb_ring_claim(&p, 64, UINT16_MAX + 1u, &c), -EINVAL);
    uint64_t pos, off;
    evb_ring_load_tail(&r, &pos, &off);
    cr_expect_eq(pos, 0, "a rejected claim moves nothing");
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A claim that does not fit before the ring's end starts with a pad to
 * it; the pad is stamped PAD at commit and says how far it reaches. */
Test(ring_claim, claim_across_the_end_starts_with_a_pad_frame)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .base_pos = TR_CAP - 64, .base_offset = 10};
    tr_ring(&r, &init);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 128, 1, &c), 0);
    cr_expect_eq(c.pos, TR_CAP - 64);
    cr_expect_eq(c.pad, 64);
    cr_expect_eq(c.data_pos, TR_CAP);
    cr_expect_eq(c.offset, 10);
    uint64_t pos, off;
    evb_ring_load_tail(&r, &pos, &off);
    cr_expect_eq(pos, TR_CAP + 128);
    cr_expect_eq(off, 11, "the pad holds no event");
    tr_fill(&r, &c);
    cr_assert_eq(evb_ring_commit(&p, &c), 0);
    struct evb_frame *pad = evb_ring_frame(&r, TR_CAP - 64);
    cr_expect_eq(tr_stamp_at(&r, TR_CAP - 64), (TR_CAP - 64) | EVB_STAMP_PAD);
    cr_expect_eq(pad->claim_len, 64);
    cr_expect_eq(pad->claim_events, 0);
    cr_expect_eq(pad->offset, 10);
    cr_expect_eq(tr_stamp_at(&r, TR_CAP), TR_CAP | EVB_STAMP_DATA);

    struct evb_ring_reader rd;
    struct evb_frame_view v;
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", TR_CAP - 64, 10),
                 0);
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.pos, TR_CAP);
    cr_expect_eq(v.f->offset, 10);
    cr_expect_eq(v.lost_events, 0);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* Room smaller than a frame header at the end: the pad is a stamp alone. */
Test(ring_claim, end_gap_smaller_than_a_header_is_a_bare_pad_stamp)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .base_pos = TR_CAP - 16, .base_offset = 4};
    tr_ring(&r, &init);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
    cr_expect_eq(c.pad, 16);
    tr_fill(&r, &c);
    cr_assert_eq(evb_ring_commit(&p, &c), 0);
    cr_expect_eq(tr_stamp_at(&r, TR_CAP - 16), (TR_CAP - 16) | EVB_STAMP_PAD);

    struct evb_ring_reader rd;
    struct evb_frame_view v;
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", TR_CAP - 16, 4),
                 0);
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.pos, TR_CAP);
    cr_expect_eq(v.f->offset, 4);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* Fill until the limit stops us: exactly one capacity past the reader. */
static uint64_t fill_until_eagain(struct evb_ring_producer *p)
{
    struct evb_ring_claim c;
    uint64_t bytes = 0;
    int rc;
    while ((rc = tr_publish(p, 1024, &c)) == 0)
        bytes += 1024;
    cr_assert_eq(rc, -EAGAIN);
    cr_expect_eq(TR_LD(p->slot->pending), EVB_POS_NONE,
                 "a refused claim leaves nothing pending");
    return bytes;
}

Test(ring_claim, returns_eagain_when_full)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_reader rd;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "c", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_expect_eq(fill_until_eagain(&p), TR_CAP);

    /* R3/A3: the reader moves its cursor on; the producer follows. */
    struct evb_frame_view v;
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    evb_ring_reader_release(&rd);
    cr_expect_eq(TR_LD(r.rslots[rd.slot_idx].cursor), 2048);
    cr_expect_eq(fill_until_eagain(&p), 2048);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_claim, subscribers_do_not_gate)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_reader rd;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    for (int i = 0; i < 3 * (int)(TR_CAP / 1024); i++)
        cr_assert_eq(tr_publish(&p, 1024, &c), 0, "claim %d", i);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* Another producer's pending claim holds the ring as a cursor would: its
 * owner may still be writing there. */
Test(ring_claim, another_producers_pending_claim_limits_us)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    tr_ring(&r, NULL);
    tr_frame(&r, 0, 0, 64, 64, 1);
    tr_intent(&r, 5, tr_owner_live(), 0, 0, 0, 64, 1);
    tr_set_tail(&r, 64, 1);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_neq(p.slot_idx, 5);
    struct evb_ring_claim c;
    uint64_t bytes = 0;
    int rc;
    while ((rc = tr_publish(&p, 1024, &c)) == 0)
        bytes += 1024;
    cr_expect_eq(rc, -EAGAIN);
    cr_expect_eq(64 + bytes + 1024 > TR_CAP, true);
    cr_expect_leq(64 + bytes, TR_CAP, "a claim ran past pending + capacity");

    /* Once the other claim is committed and its owner gone, the slot is
     * a leftover: the limit scan frees it and we go on. */
    tr_stamp(&r, 0, 0 | EVB_STAMP_DATA);
    TR_ST(r.pslots[5].owner, tr_owner_dead());
    cr_expect_eq(tr_publish(&p, 1024, &c), 0);
    cr_expect_eq(TR_LD(r.pslots[5].owner), 0);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* S1: a gating reader whose slot is stored before the producer refreshes
 * its limit is seen by that refresh. */
Test(ring_claim, reader_registered_before_refresh_gates_the_producer)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(tr_publish(&p, 1024, &c), 0);
    cr_expect_eq(p.limit, TR_CAP, "first claim computed the limit with no reader");

    uint32_t slot;
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_CONSUMER, "late", 1024, &slot), 0);
    p.limit = 0; /* the next claim refreshes, as it would once a lap */
    uint64_t bytes = 1024;
    int rc;
    while ((rc = tr_publish(&p, 1024, &c)) == 0)
        bytes += 1024;
    cr_expect_eq(rc, -EAGAIN);
    cr_expect_eq(bytes, 1024 + TR_CAP, "gated at the reader's cursor plus capacity");
    evb_ring_slot_release(&r, slot);
    cr_expect_eq(tr_publish(&p, 1024, &c), 0);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* S1, the other side: a producer that refreshed its limit before a
 * reader registered at an older position may overwrite up to that limit,
 * so the reader lap-checks everything below the tail it saw at
 * registration and reports what it lost instead of reading stale bytes. */
Test(ring_claim, reader_registered_after_refresh_verifies_below_its_tail)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(tr_publish(&p, 1024, &c), 0);
    p.limit = 0; /* refresh now, at tail 4096, with no reader */
    cr_assert_eq(tr_publish(&p, 1024, &c), 0);
    cr_expect_eq(p.limit, 4096 + TR_CAP);

    struct evb_ring_reader rd;
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", 0, 0), 0);
    cr_expect_eq(rd.verify_below, 5120, "registration tail");
    /* Offset 0 is known to be at position 0: count lost events from it
     * (bus/consumer.c seek_to() says the same for a trusted offset). */
    rd.learn = false;
    uint64_t end = 5120;
    while (tr_publish(&p, 1024, &c) == 0)
        end += 1024;
    cr_expect_eq(end, 4096 + TR_CAP, "ran on its old limit, then the reader gated it");

    struct evb_frame_view v;
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.pos, TR_CAP, "jumped to the newest lap start");
    cr_expect_eq(v.f->offset, 64);
    cr_expect_eq(v.lost_events, 64);
    cr_expect_eq(v.lost_bytes, TR_CAP);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_claim, durable_ring_gates_on_flushed_not_readers)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_reader rd;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .flags = EVB_RING_F_DURABLE};
    tr_ring(&r, &init);
    cr_assert(r.durable);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0),
                 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_expect_eq(fill_until_eagain(&p), TR_CAP);
    /* F1: the flusher moves flushed; the reader never moved. */
    atomic_store_explicit(&r.hdr->flushed, 8192, memory_order_release);
    cr_expect_eq(fill_until_eagain(&p), 8192);
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* R1 against pad.c: the padder's CAS came first, so the commit's fails. */
Test(ring_claim, commit_returns_ecanceled_when_a_pad_won)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 2 * 64, 2, &c), 0);
    tr_fill(&r, &c);
    r.stall_ns = 1000; /* this producer now counts as stalled */
    cr_assert_eq(evb_ring_unblock(&r, 0, 2000), 1);
    cr_assert_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    cr_expect_eq(evb_ring_commit(&p, &c), -ECANCELED);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD, "the pad stands");
    cr_expect_eq(TR_LD(p.slot->pending), EVB_POS_NONE);
    cr_expect_eq(evb_ring_open_events(&r, 2 * 64, 2), 0, "a padded claim is not open");
    cr_expect_eq(TR_LD(r.hdr->aborted), 2);
    cr_expect_eq(TR_LD(r.hdr->padded_stalled), 1);

    /* Readers skip both events; the next claim continues the offsets. */
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", 0, 0), 0);
    cr_assert_eq(tr_publish(&p, 64, &c), 0);
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.pos, 128);
    cr_expect_eq(v.f->offset, 2);
    cr_expect_eq(v.lost_events, 0, "aborted events are not lost ones");
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_claim, abort_pads_the_claim_and_counts_its_events)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 3 * 64, 3, &c), 0);
    cr_assert_eq(evb_ring_abort(&p, &c), 0);
    struct evb_frame *f = evb_ring_frame(&r, 0);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    cr_expect_eq(f->claim_len, 192);
    cr_expect_eq(f->claim_events, 3);
    cr_expect_eq(TR_LD(r.hdr->aborted), 3);
    cr_expect_eq(TR_LD(p.slot->pending), EVB_POS_NONE);
    /* An abort after a pad loses the CAS like a commit. */
    cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
    r.stall_ns = 1;
    cr_assert_eq(evb_ring_unblock(&r, c.data_pos, 10), 1);
    cr_expect_eq(evb_ring_abort(&p, &c), -ECANCELED);
    cr_expect_eq(TR_LD(r.hdr->aborted), 4, "voided once, not twice");
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A stale stamp from the previous lap is not a commit at this position
 * (a padder's would be one): the commit, which loads it then (the claim
 * does not: claim_inline.h), replaces it. */
Test(ring_claim, commit_replaces_a_stale_stamp_from_the_previous_lap)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .base_pos = TR_CAP, .base_offset = 1000};
    tr_ring(&r, &init);
    tr_frame(&r, 0, 999, 64, 64, 1);
    tr_stamp(&r, 0, 0 | EVB_STAMP_DATA); /* lap 0's commit at index 0 */
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
    cr_expect_eq(c.data_pos, TR_CAP);
    tr_fill(&r, &c);
    cr_assert_eq(evb_ring_commit(&p, &c), 0);
    cr_expect_eq(tr_stamp_at(&r, TR_CAP), TR_CAP | EVB_STAMP_DATA);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* The claimant itself finds the stamp already a commit of its position:
 * someone padded it between claim and commit. */
Test(ring_claim, commit_sees_a_pad_written_before_its_claim_returned)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
    tr_stamp(&r, 0, 0 | EVB_STAMP_PAD); /* a padder's CAS after our claim */
    tr_fill(&r, &c);
    cr_expect_eq(evb_ring_commit(&p, &c), -ECANCELED);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_claim, attach_takes_a_dead_producers_slot_when_all_are_taken)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    tr_ring(&r, NULL);
    uint64_t live = tr_owner_live();
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++)
        TR_ST(r.pslots[i].owner, live);
    cr_expect_eq(evb_ring_producer_attach(&p, &r, 1), -EBUSY);
    cr_expect(strstr(evb_err_get(), "producer slots"), "%s", evb_err_get());
    TR_ST(r.pslots[17].owner, tr_owner_dead());
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_expect_eq(p.slot_idx, 17);
    cr_expect_eq(TR_LD(r.hdr->reaped_producers), 1);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}
