/*
 * test_hostile.c - shm/ against hostile words in a producer slot (issue 9,
 * defect 3): a pending word that is unaligned, far past the tail or more
 * than a lap below it. Claim, reap and a blocked producer's unblock must
 * give a defined result without touching a frame through the bad word
 * (the ASan+UBSan build reports any misaligned or stray load).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ring_helpers.h"
#include "t_helpers.h"

TestSuite(ring_hostile, .fini = tr_fini, .timeout = 10);

#define BAD_SLOT 5u

/* A ring whose tail is at lap TAIL_LAPS, with slot BAD_SLOT owned by OWNER
 * and its pending word set to PEND by hand. */
#define TAIL_LAPS 10u
static void hostile_ring(struct evb_ring *r, uint64_t owner, uint64_t pend)
{
    tr_ring(r, NULL);
    tr_set_tail(r, TAIL_LAPS * (uint64_t)TR_CAP, 1000);
    TR_ST(r->pslots[BAD_SLOT].pending, pend);
    TR_ST(r->pslots[BAD_SLOT].owner, owner);
}

/* Claim one event of 64 bytes from a fresh producer. */
static int claim_one(struct evb_ring *r, struct evb_ring_producer *p, struct evb_ring_claim *c)
{
    cr_assert_eq(evb_ring_producer_attach(p, r, 1), 0);
    cr_assert_neq(p->slot_idx, BAD_SLOT);
    return evb_ring_claim(p, 64, 1, c);
}

/* Unaligned: no protocol step writes that, so the ring is corrupt: the
 * claim says -EBADMSG (naming the slot), the reaper keeps the slot as
 * evidence, and nothing reads the frame at the word (the value sits 4
 * bytes before the data's end: an 8-byte load there leaves the mapping). */
Test(ring_hostile, unaligned_pending_is_ebadmsg_and_never_dereferenced)
{
    uint64_t owners[2] = {tr_owner_live(), tr_owner_dead()};
    for (int k = 0; k < 2; k++) {
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_claim c;
        uint64_t pend = TAIL_LAPS * (uint64_t)TR_CAP - 4;
        hostile_ring(&r, owners[k], pend);
        cr_expect_eq(claim_one(&r, &p, &c), -EBADMSG, "owner %d", k);
        cr_expect(strstr(evb_err_get(), "pending"), "%s", evb_err_get());
        evb_ring_reap_producers(&r);
        cr_expect_eq(TR_LD(r.pslots[BAD_SLOT].owner), owners[k], "corrupt slot kept");
        evb_ring_producer_unblock(&p);
        cr_expect_eq(evb_ring_claim(&p, 64, 1, &c), -EBADMSG, "and it stays reported");
        cr_expect_eq(TR_LD(r.hdr->tail.pos), TAIL_LAPS * (uint64_t)TR_CAP, "nothing claimed");
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}

/* Far past the tail: not a claim at our snapshot; claims go on, and a dead
 * owner's slot is freed as one that died before its CAS. */
Test(ring_hostile, pending_far_past_the_tail_is_no_claim)
{
    uint64_t owners[2] = {tr_owner_live(), tr_owner_dead()};
    for (int k = 0; k < 2; k++) {
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_claim c;
        hostile_ring(&r, owners[k], (1ull << 62) + 8);
        cr_expect_eq(claim_one(&r, &p, &c), 0, "owner %d", k);
        tr_fill(&r, &c);
        cr_expect_eq(evb_ring_commit(&p, &c), 0);
        evb_ring_reap_producers(&r);
        cr_expect_eq(TR_LD(r.pslots[BAD_SLOT].owner), k ? 0 : owners[k]);
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}

/* More than a lap below the tail: a real pending claim cannot be lapped
 * (every limit counts it), so the word holds nothing any more. Honouring
 * it would put the limit below the tail for good: a wedged ring. It is
 * ignored, a blocked producer's unblock stays defined, and a dead owner's
 * slot is freed (there is no hole left to pad). */
Test(ring_hostile, pending_more_than_a_lap_below_the_tail_does_not_wedge)
{
    uint64_t owners[2] = {tr_owner_live(), tr_owner_dead()};
    for (int k = 0; k < 2; k++) {
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_claim c;
        hostile_ring(&r, owners[k], 64);
        int rc = claim_one(&r, &p, &c);
        if (rc == -EAGAIN) {
            /* What a blocked producer does next; must not help a wedge. */
            evb_ring_producer_unblock(&p);
            rc = evb_ring_claim(&p, 64, 1, &c);
        }
        cr_expect_eq(rc, 0, "owner %d: a lapped pending word wedged the ring", k);
        if (rc == 0) {
            tr_fill(&r, &c);
            cr_expect_eq(evb_ring_commit(&p, &c), 0);
        }
        evb_ring_reap_producers(&r);
        cr_expect_eq(TR_LD(r.pslots[BAD_SLOT].owner), k ? 0 : owners[k],
                     "owner %d: a dead owner's lapped slot is freed", k);
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}

/* Claim as a blocked producer does (claim, unblock, claim again) until
 * something other than -EAGAIN, or TIMEOUT_MS. */
static int claim_blocked(struct evb_ring_producer *p, struct evb_ring_claim *c,
                         int timeout_ms)
{
    uint64_t end = evb_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    int rc;
    while ((rc = evb_ring_claim(p, 64, 1, c)) == -EAGAIN && evb_mono_ns() < end) {
        int u = evb_ring_producer_unblock(p);
        if (u)
            return u;
    }
    return rc;
}

/*
 * Issue 9, defect 2, the timing half: a dead owner's slot pending at the
 * old tail whose intent can never be read (its seqlock stuck odd), the
 * tail a whole ring further. Nothing can pad the hole and the limit sits
 * on it. Every claim is padded within stall_ns + dead_ns if it is one at
 * all, so from then on the producer gets -EBADMSG, not an endless wait;
 * and not before (a slow claimant is not damage).
 */
Test(ring_hostile, hole_no_intent_explains_is_ebadmsg_after_the_padding_bound)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    r.stall_ns = 100ull * 1000 * 1000;
    tr_set_tail(&r, 4096, 64);
    struct evb_producer_slot *s = &r.pslots[BAD_SLOT];
    TR_ST(s->intent_seq, 3);
    TR_ST(s->pending, 4096);
    TR_ST(s->owner, tr_owner_dead());
    tr_set_tail(&r, 4096 + TR_CAP, 65);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    uint64_t t0 = evb_mono_ns();
    int rc = claim_blocked(&p, &c, 3000);
    uint64_t took = (evb_mono_ns() - t0) / 1000000u;
    cr_expect_eq(rc, -EBADMSG, "still %d after %llu ms", rc, (unsigned long long)took);
    cr_expect_geq(took * 1000000u, r.stall_ns + r.dead_ns, "reported after %llu ms only",
                  (unsigned long long)took);
    cr_expect(strstr(evb_err_get(), "no claim covers it"), "%s", evb_err_get());
    /* The hole is damage, and stays reported. */
    cr_expect_eq(claim_blocked(&p, &c, 1000), -EBADMSG);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* The same hole with a readable intent that no claim can have: reported
 * at the first offer, by the producer and by a reader, without waiting
 * for the padding bound (here an hour). */
Test(ring_hostile, impossible_intent_is_ebadmsg_at_once_for_producer_and_reader)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    tr_set_tail(&r, 4096, 64);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_SUBSCRIBER, "", EVB_POS_NONE, 0),
                 0);
    tr_intent(&r, BAD_SLOT, tr_owner_dead(), 4096, 64, 0, 1u << 20, 1);
    tr_set_tail(&r, 4096 + TR_CAP, 65);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_expect_eq(claim_blocked(&p, &c, 2000), -EBADMSG);
    cr_expect(strstr(evb_err_get(), "intent length"), "%s", evb_err_get());
    cr_expect_eq(tr_read_wait(&rd, &v, 2000), -EBADMSG);
    cr_expect(strstr(evb_err_get(), "intent length"), "%s", evb_err_get());
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A gating reader slot of a live owner whose cursor is garbage: far below
 * the tail (no real gating cursor can be lapped) or unaligned. The limit
 * sits on it for good; past the padding bound the producer is told. */
Test(ring_hostile, garbage_gating_cursor_is_ebadmsg_after_the_padding_bound)
{
    uint64_t cursors[2] = {64, (TAIL_LAPS - 1) * (uint64_t)TR_CAP + 4};
    for (int k = 0; k < 2; k++) {
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_claim c;
        tr_ring(&r, NULL);
        r.stall_ns = 50ull * 1000 * 1000;
        tr_set_tail(&r, TAIL_LAPS * (uint64_t)TR_CAP, 1000);
        struct evb_reader_slot *s = &r.rslots[7];
        TR_ST(s->kind, EVB_SLOT_LOSSLESS);
        TR_ST(s->cursor, cursors[k]);
        TR_ST(s->owner, tr_owner_live());
        cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
        int rc = claim_blocked(&p, &c, 3000);
        cr_expect_eq(rc, -EBADMSG, "cursor %llu: %d", (unsigned long long)cursors[k], rc);
        cr_expect(strstr(evb_err_get(), "held at position"), "%s", evb_err_get());
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}

/*
 * The tail moved back, and gating cursors that say the ring reached more
 * than the tail (the attack's F4). A reader and a producer only ever see
 * the tail grow, and a gating cursor only ever names a position below a
 * tail its reader saw: anything else is a hand in the mapping, -EBADMSG,
 * found where the code already looks at the tail (a waiting reader's peek,
 * a limit refresh, a seek), never on the per-event path.
 */

/* A ring with LAPS rings' worth of 64-byte events published and read by
 * a gating reader RD, which is caught up at the tail. */
static void traffic(struct evb_ring *r, struct evb_ring_producer *p,
                    struct evb_ring_reader *rd, uint32_t kind, int laps)
{
    struct evb_ring_claim c;
    struct evb_frame_view v;
    tr_ring(r, NULL);
    cr_assert_eq(evb_ring_reader_attach(rd, r, kind, "", EVB_POS_NONE, 0), 0);
    cr_assert_eq(evb_ring_producer_attach(p, r, 1), 0);
    for (uint64_t i = 0; i < (uint64_t)laps * TR_CAP / 64; i++) {
        cr_assert_eq(tr_publish(p, 64, &c), 0, "event %llu", (unsigned long long)i);
        cr_assert_eq(evb_ring_read(rd, &v), 0);
        evb_ring_reader_release(rd);
    }
}

/* A reader at a position above the tail: a waiting reader finds it both
 * where it peeks while polling and where it looks before sleeping; every
 * reader kind, sticky. */
Test(ring_hostile, reader_above_the_tail_is_ebadmsg_when_it_waits)
{
    uint32_t kinds[3] = {EVB_SLOT_CONSUMER, EVB_SLOT_LOSSLESS, EVB_SLOT_SUBSCRIBER};
    for (int k = 0; k < 3; k++) {
        for (int via_ready = 0; via_ready < 2; via_ready++) {
            struct evb_ring r;
            struct evb_ring_producer p;
            struct evb_ring_reader rd;
            struct evb_frame_view v;
            traffic(&r, &p, &rd, kinds[k], 3);
            uint64_t t, off;
            evb_ring_load_tail(&r, &t, &off);
            tr_set_tail(&r, t - 2 * TR_CAP, off); /* moved back by hand */
            if (via_ready) {
                cr_expect_eq(evb_ring_reader_ready(&rd), 1, "kind %u: not for sleeping",
                             kinds[k]);
                cr_expect_eq(evb_ring_read(&rd, &v), -EBADMSG, "kind %u", kinds[k]);
            } else {
                cr_expect_eq(tr_read_wait(&rd, &v, 2000), -EBADMSG, "kind %u", kinds[k]);
            }
            cr_expect(strstr(evb_err_get(), "the tail went back"), "%s", evb_err_get());
            tr_set_tail(&r, t, off);
            cr_expect_eq(evb_ring_read(&rd, &v), -EBADMSG, "kind %u: sticky", kinds[k]);
            evb_ring_reader_detach(&rd);
            evb_ring_producer_detach(&p);
            evb_ring_close(&r);
        }
    }
}

/* A producer whose cached limit was computed at a higher tail: the claim
 * that ends the next lap refreshes it, which says so. Not one lap more of
 * claims over unread frames. (A producer that shares the ring: it claims
 * from the tail it loads, by CAS.) */
Test(ring_hostile, tail_moved_back_is_ebadmsg_for_the_producer_within_a_lap)
{
    for (uint32_t len = 64; len <= 72; len += 8) { /* ending laps exactly, or padding */
        struct evb_ring r;
        struct evb_ring_producer p, other;
        struct evb_ring_reader rd;
        struct evb_ring_claim c;
        traffic(&r, &p, &rd, EVB_SLOT_CONSUMER, 4);
        cr_assert_eq(evb_ring_producer_attach(&other, &r, 2), 0); /* takes any lease back */
        uint64_t t, off;
        evb_ring_load_tail(&r, &t, &off);
        tr_set_tail(&r, 0, off);
        uint64_t claims = 0;
        int rc;
        while ((rc = tr_publish(&p, len, &c)) == 0 && claims < 4 * TR_CAP / len)
            claims++;
        cr_expect_eq(rc, -EBADMSG, "len %u: %d after %llu claims", len, rc,
                     (unsigned long long)claims);
        cr_expect_leq(claims * len, TR_CAP, "len %u: claimed past one lap", len);
        cr_expect(strstr(evb_err_get(), "the tail went back"), "%s", evb_err_get());
        evb_ring_producer_detach(&other);
        evb_ring_reader_detach(&rd);
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}

/* A producer alone on the ring holds the tail lease (claim.c X4) and
 * claims from its own copy: a tail written back by hand between its
 * stores is undone by its next one, and nothing is claimed twice (the
 * reader reads every event once, in order). */
Test(ring_hostile, tail_moved_back_under_a_lease_holder_is_undone_by_its_next_store)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_reader rd;
    struct evb_ring_claim c;
    struct evb_frame_view v;
    if (!EVB_STORE128_PLAIN)
        cr_skip_test("the holder moves the tail by CAS here (TSan, or no single-copy "
                     "16-byte store): a write between its claims makes it share the ring, "
                     "as tail_moved_back_is_ebadmsg_for_the_producer_within_a_lap tests");
    traffic(&r, &p, &rd, EVB_SLOT_CONSUMER, 2);
    if (!p.leased)
        cr_skip_test("no membarrier here: no lease");
    uint64_t t, off;
    evb_ring_load_tail(&r, &t, &off);
    tr_set_tail(&r, 0, off);
    cr_assert_eq(tr_publish(&p, 64, &c), 0, "%s", evb_err_get());
    uint64_t t2, off2;
    evb_ring_load_tail(&r, &t2, &off2);
    cr_expect_eq(t2, t + 64, "the holder's store put the tail where its copy says");
    cr_expect_eq(off2, off + 1);
    cr_assert_eq(evb_ring_read(&rd, &v), 0);
    cr_expect_eq(v.pos, t, "the event claimed after the write, at the true tail");
    cr_expect_eq(evb_ring_read(&rd, &v), -EAGAIN, "and nothing else");
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A gating cursor above the tail: the limit refresh reports it (it used to
 * ignore it, which freed the producer to overrun that reader); a cursor at
 * the tail is a reader that is caught up. */
Test(ring_hostile, gating_cursor_past_the_tail_is_ebadmsg_at_the_limit_refresh)
{
    uint64_t above[3] = {0, 8, 1ull << 40};
    for (int k = 0; k < 3; k++) {
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_claim c;
        tr_ring(&r, NULL);
        tr_set_tail(&r, 3 * (uint64_t)TR_CAP, 1000);
        struct evb_reader_slot *s = &r.rslots[7];
        TR_ST(s->kind, EVB_SLOT_CONSUMER);
        TR_ST(s->cursor, 3 * (uint64_t)TR_CAP + above[k]);
        TR_ST(s->owner, tr_owner_live());
        cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
        int rc = evb_ring_claim(&p, 64, 1, &c);
        if (!above[k]) {
            cr_expect_eq(rc, 0, "a cursor at the tail: %d (%s)", rc, evb_err_get());
            tr_fill(&r, &c);
            cr_expect_eq(evb_ring_commit(&p, &c), 0);
        } else {
            cr_expect_eq(rc, -EBADMSG, "cursor tail + %llu: %d",
                         (unsigned long long)above[k], rc);
            cr_expect(strstr(evb_err_get(), "is past the tail"), "%s", evb_err_get());
            cr_expect_eq(TR_LD(r.hdr->tail.pos), 3 * (uint64_t)TR_CAP, "nothing claimed");
            cr_expect_eq(evb_ring_producer_unblock(&p), -EBADMSG, "blocked: the same");
        }
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}

/* A gating reader's own cursor word written by someone else: it says so
 * when it next publishes its cursor, or before it sleeps, and leaves the
 * foreign value for producers to find. Raised or lowered alike. */
Test(ring_hostile, gating_reader_sees_its_cursor_word_written_by_another)
{
    for (int k = 0; k < 4; k++) {
        bool raise = k & 1, via_ready = k & 2;
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_reader rd;
        struct evb_ring_claim c;
        struct evb_frame_view v;
        traffic(&r, &p, &rd, EVB_SLOT_CONSUMER, 2);
        if (!via_ready) /* an event to read, published before the damage */
            cr_assert_eq(tr_publish(&p, 64, &c), 0);
        struct evb_reader_slot *s = &r.rslots[rd.slot_idx];
        uint64_t was = TR_LD(s->cursor);
        uint64_t bad = raise ? was + (1ull << 40) : was - 640;
        TR_ST(s->cursor, bad);
        if (via_ready) {
            cr_expect_eq(evb_ring_reader_ready(&rd), 1, "k %d", k);
        } else {
            cr_expect_eq(evb_ring_read(&rd, &v), 0, "k %d: an event", k);
            evb_ring_reader_release(&rd);
        }
        cr_expect_eq(evb_ring_read(&rd, &v), -EBADMSG, "k %d", k);
        cr_expect(strstr(evb_err_get(), "written by another process"), "%s", evb_err_get());
        cr_expect_eq(TR_LD(s->cursor), bad, "k %d: the foreign value stays", k);
        evb_ring_reader_detach(&rd);
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}

/* Starting at a committed cursor above the tail (evb_ring_reader_seek)
 * is damage on a ring-only ring; a position the caller asked for
 * (seek_pos) still starts at the tail, and so does a commit above a
 * durable ring's tail (rebuilt after a reboot without its async end). */
Test(ring_hostile, seek_to_a_reached_position_past_the_tail_is_ebadmsg)
{
    for (int k = 0; k < 3; k++) {
        struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                     .mode = 0600,
                                     .flags = k == 2 ? EVB_RING_F_DURABLE : 0};
        struct evb_ring r;
        struct evb_ring_reader rd;
        struct evb_frame_view v;
        tr_ring(&r, &init);
        tr_set_tail(&r, 4096, 64);
        cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_CONSUMER, "", EVB_POS_NONE, 0),
                     0);
        int rc = k == 1 ? evb_ring_reader_seek_pos(&rd, 8192, 0)
                        : evb_ring_reader_seek(&rd, 8192, 128, true);
        if (k == 0) {
            cr_expect_eq(rc, -EBADMSG);
            cr_expect(strstr(evb_err_get(), "past the tail"), "%s", evb_err_get());
            cr_expect_eq(evb_ring_read(&rd, &v), -EBADMSG, "sticky");
        } else {
            cr_expect_eq(rc, 0, "k %d", k);
            cr_expect_eq(rd.pos, 4096, "k %d: at the tail", k);
        }
        evb_ring_reader_detach(&rd);
        evb_ring_close(&r);
    }
}

/* A committed (position, offset) whose frame carries another offset: the
 * tail went back and a producer claimed those bytes again (the attack's
 * N3), or the ring is damaged. A seek that trusts the offset
 * (evb_ring_reader_seek, LEARN false, as a named consumer's resume does)
 * fails on the first read and names both offsets; a gap above the commit
 * and an offset below it alike, never a silent skip. */
Test(ring_hostile, seek_to_a_commit_whose_frame_carries_another_offset_is_ebadmsg)
{
    int64_t delta[4] = {64, 1, -1, -64};
    for (int k = 0; k < 4; k++) {
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_reader rd, rd2;
        struct evb_frame_view v;
        traffic(&r, &p, &rd, EVB_SLOT_CONSUMER, 1);
        /* 64-byte single events from 0: the frame at 6400 is offset 100. */
        uint64_t pos = 6400, off = 100;
        cr_assert_eq(evb_ring_reader_attach(&rd2, &r, EVB_SLOT_CONSUMER, "c2", EVB_POS_NONE,
                                            0), 0);
        cr_assert_eq(evb_ring_reader_seek(&rd2, pos, off, false), 0);
        cr_assert_eq(evb_ring_read(&rd2, &v), 0, "the true pair reads");
        cr_assert_eq(v.f->offset, off);
        uint64_t bad = off + (uint64_t)delta[k];
        cr_assert_eq(evb_ring_reader_seek(&rd2, pos, bad, false), 0);
        cr_expect_eq(evb_ring_read(&rd2, &v), -EBADMSG, "delta %lld",
                     (long long)delta[k]);
        char want[128];
        snprintf(want, sizeof want, "offset %llu at position %llu, expected %llu",
                 (unsigned long long)off, (unsigned long long)pos, (unsigned long long)bad);
        cr_expect(strstr(evb_err_get(), want), "%s (wanted '%s')", evb_err_get(), want);
        cr_expect_eq(evb_ring_read(&rd2, &v), -EBADMSG, "sticky");
        evb_ring_reader_detach(&rd2);
        evb_ring_reader_detach(&rd);
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}

/* A commit whose claim was padded while the tail had gone back below the
 * claim: not a stall of ours (-ECANCELED) but a hand that moved the tail,
 * -EBADMSG naming it. With the tail where our claim left it, a padded
 * claim is still the stall it always was. */
Test(ring_hostile, commit_after_pad_with_the_tail_moved_back_names_the_tail)
{
    for (int back = 0; back < 2; back++) {
        struct evb_ring r;
        struct evb_ring_producer p;
        struct evb_ring_reader rd;
        struct evb_ring_claim c;
        traffic(&r, &p, &rd, EVB_SLOT_CONSUMER, 2);
        cr_assert_eq(evb_ring_claim(&p, 64, 1, &c), 0);
        tr_fill(&r, &c);
        uint64_t t, off;
        evb_ring_load_tail(&r, &t, &off);
        if (back)
            tr_set_tail(&r, c.data_pos - 4096, off - 64);
        /* A padder's win: it announced itself in the slot (shm/claim.c
         * X1), then the claim's first stamp says pad. */
        TR_ST(p.slot->robbing, c.data_pos);
        tr_stamp(&r, c.data_pos, c.data_pos | EVB_STAMP_PAD);
        int rc = evb_ring_commit(&p, &c);
        if (!back) {
            cr_expect_eq(rc, -ECANCELED, "a plain stall");
        } else {
            cr_expect_eq(rc, -EBADMSG, "the tail went back: %d", rc);
            char want[64];
            snprintf(want, sizeof want, "the tail %llu",
                     (unsigned long long)(c.data_pos - 4096));
            cr_expect(strstr(evb_err_get(), want), "%s", evb_err_get());
            cr_expect(strstr(evb_err_get(), "went back"), "%s", evb_err_get());
        }
        evb_ring_reader_detach(&rd);
        evb_ring_producer_detach(&p);
        evb_ring_close(&r);
    }
}
