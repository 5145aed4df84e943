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
