/*
 * test_pad.c - shm/pad.c: who may pad a claimed but uncommitted frame and
 * when (a dead owner now, a live one only after stall_ns, never from a
 * torn or implausible intent), the exact extent a pad takes from the
 * claimant's intent, end pads of wrapped claims, the race with a commit,
 * and freeing dead producers' slots. Slots and tails are written by hand.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

#include "claim_inline.h"
#include "frame.h"
#include "ring_helpers.h"
#include "t_helpers.h"

TestSuite(ring_pad, .fini = tr_fini, .timeout = 10);

/* A producer that died after its CAS: intent [0, 192) for 3 events,
 * pending, tail past it, nothing written. */
static void dead_claim(struct evb_ring *r, uint64_t owner)
{
    tr_intent(r, 3, owner, 0, 0, 0, 192, 3);
    tr_set_tail(r, 192, 3);
}

Test(ring_pad, dead_producers_hole_is_padded_at_once_with_its_intent)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    dead_claim(&r, tr_owner_dead());
    cr_assert_eq(evb_ring_unblock(&r, 0, 0), 1);
    struct evb_frame *f = evb_ring_frame(&r, 0);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    cr_expect_eq(f->claim_len, 192, "the pad covers the intent's extent");
    cr_expect_eq(f->claim_events, 3);
    cr_expect_eq(f->offset, 0);
    cr_expect_eq(TR_LD(r.hdr->aborted), 3);
    cr_expect_eq(TR_LD(r.hdr->padded_dead), 1);
    /* The dead claimant's slot is freed with its last claim resolved. */
    cr_expect_eq(TR_LD(r.pslots[3].owner), 0);
    cr_expect_eq(TR_LD(r.pslots[3].pending), EVB_POS_NONE);
    cr_expect_eq(TR_LD(r.hdr->reaped_producers), 1);
    evb_ring_close(&r);
}

/* pid reuse: the pid lives, but with another start time it is not the
 * process that claimed. */
Test(ring_pad, owner_with_a_reused_pid_counts_as_dead)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    dead_claim(&r, tr_owner_reused());
    cr_expect_eq(evb_ring_unblock(&r, 0, 0), 1);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    cr_expect_eq(TR_LD(r.hdr->padded_dead), 1);
    evb_ring_close(&r);
}

Test(ring_pad, live_producers_hole_waits_for_stall_time)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    uint64_t live = tr_owner_live();
    dead_claim(&r, live);
    r.stall_ns = 1000000;
    cr_expect_eq(evb_ring_unblock(&r, 0, 0), 0);
    cr_expect_eq(evb_ring_unblock(&r, 0, r.stall_ns - 1), 0);
    cr_expect_eq(tr_stamp_at(&r, 0), 0, "not padded before stall time");
    cr_expect_eq(evb_ring_unblock(&r, 0, r.stall_ns), 1);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    cr_expect_eq(TR_LD(r.hdr->padded_stalled), 1);
    cr_expect_eq(TR_LD(r.hdr->padded_dead), 0);
    /* A live owner keeps its slot and its pending claim: it may still be
     * writing there, so the limit must keep counting it. */
    cr_expect_eq(TR_LD(r.pslots[3].owner), live);
    cr_expect_eq(TR_LD(r.pslots[3].pending), 0);
    evb_ring_close(&r);
}

/* Our own pid is never dead to us, whatever the start time says. */
Test(ring_pad, own_process_claim_is_not_treated_as_dead)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    dead_claim(&r, evb_proc_self() ^ 0x5a5a);
    cr_expect_eq(evb_ring_unblock(&r, 0, 0), 0);
    cr_expect_eq(tr_stamp_at(&r, 0), 0);
    evb_ring_close(&r);
}

/* The commit won the CAS: a late padder reports the frame resolved and
 * leaves it alone. */
Test(ring_pad, says_resolved_when_the_commit_won)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(tr_publish(&p, 64, &c), 0);
    r.stall_ns = 0;
    cr_expect_eq(evb_ring_unblock(&r, 0, 1), 1);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_DATA);
    cr_expect_eq(TR_LD(r.hdr->aborted), 0);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* C1/A2: a producer that wrote its intent and pending but died before its
 * CAS claimed nothing: no hole to pad, and its slot may go. */
Test(ring_pad, intent_without_a_claim_is_not_a_hole)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    tr_intent(&r, 3, tr_owner_dead(), 0, 0, 0, 192, 3);
    cr_expect_eq(evb_ring_unblock(&r, 0, 0), 0, "nothing claimed at the tail");
    evb_ring_reap_producers(&r);
    cr_expect_eq(TR_LD(r.pslots[3].owner), 0);
    evb_ring_close(&r);
}

/* A padder reading the intent while its seqlock is odd must not use it. */
Test(ring_pad, torn_intent_is_not_used)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    dead_claim(&r, tr_owner_dead());
    TR_ST(r.pslots[3].intent_seq, 3);
    cr_expect_eq(evb_ring_unblock(&r, 0, 0), 0);
    cr_expect_eq(tr_stamp_at(&r, 0), 0);
    TR_ST(r.pslots[3].intent_seq, 4);
    cr_expect_eq(evb_ring_unblock(&r, 0, 0), 1);
    evb_ring_close(&r);
}

/* An intent that does not end at a claim boundary (tail, committed frame
 * with the next offset, or another intent) is not the claim at pos. */
Test(ring_pad, intent_not_ending_at_a_boundary_is_not_trusted)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    tr_intent(&r, 3, tr_owner_dead(), 0, 0, 0, 128, 2);
    tr_set_tail(&r, 192, 3);
    cr_expect_eq(evb_ring_unblock(&r, 0, 0), 0, "nothing starts at 128");
    /* A committed frame at 128 with offset 2 makes it a boundary. */
    tr_frame(&r, 128, 2, 64, 64, 1);
    tr_stamp(&r, 128, 128 | EVB_STAMP_DATA);
    cr_expect_eq(evb_ring_unblock(&r, 0, 0), 1);
    cr_expect_eq(evb_ring_frame(&r, 0)->claim_len, 128);
    evb_ring_close(&r);
}

/* Two dead claims back to back: the second's intent marks the first's end. */
Test(ring_pad, pending_intent_of_the_next_claim_is_a_boundary)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    uint64_t dead = tr_owner_dead();
    tr_intent(&r, 3, dead, 0, 0, 0, 128, 2);
    tr_intent(&r, 4, dead, 128, 2, 0, 64, 1);
    tr_set_tail(&r, 192, 3);
    cr_assert_eq(evb_ring_unblock(&r, 0, 0), 1);
    cr_assert_eq(evb_ring_unblock(&r, 128, 0), 1);
    cr_expect_eq(evb_ring_frame(&r, 0)->claim_len, 128);
    cr_expect_eq(evb_ring_frame(&r, 128)->claim_len, 64);
    cr_expect_eq(TR_LD(r.hdr->aborted), 3);
    evb_ring_close(&r);
}

Test(ring_pad, intent_that_would_wrap_or_misalign_is_refused)
{
    struct evb_ring r;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .base_pos = TR_CAP - 64};
    tr_ring(&r, &init);
    /* Says 128 data bytes from cap - 64 without an end pad: would wrap. */
    tr_intent(&r, 3, tr_owner_dead(), TR_CAP - 64, 0, 0, 128, 1);
    tr_set_tail(&r, TR_CAP + 64, 1);
    cr_expect_eq(evb_ring_unblock(&r, TR_CAP - 64, 0), 0);
    cr_expect_eq(evb_ring_unblock(&r, TR_CAP - 60, 0), 0, "unaligned position");
    cr_expect_eq(evb_ring_unblock(&r, TR_CAP + 64, 0), 0, "at the tail");
    cr_expect_eq(tr_stamp_at(&r, TR_CAP - 64), 0);
    evb_ring_close(&r);
}

/* A wrapped claim resolves in two steps: its end pad, then its data part,
 * and only the data part frees the dead claimant's slot. */
Test(ring_pad, wrapped_dead_claim_pads_end_then_data)
{
    struct evb_ring r;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME,
                                 .mode = 0600, .base_pos = TR_CAP - 64, .base_offset = 7};
    tr_ring(&r, &init);
    tr_intent(&r, 3, tr_owner_dead(), TR_CAP - 64, 7, 64, 128, 2);
    tr_set_tail(&r, TR_CAP + 128, 9);
    cr_assert_eq(evb_ring_unblock(&r, TR_CAP - 64, 0), 1);
    struct evb_frame *endpad = evb_ring_frame(&r, TR_CAP - 64);
    cr_expect_eq(tr_stamp_at(&r, TR_CAP - 64), (TR_CAP - 64) | EVB_STAMP_PAD);
    cr_expect_eq(endpad->claim_len, 64);
    cr_expect_eq(endpad->claim_events, 0);
    cr_expect_eq(endpad->offset, 7);
    cr_expect_neq(TR_LD(r.pslots[3].owner), 0, "data part still a hole");
    evb_ring_reap_producers(&r);
    cr_expect_neq(TR_LD(r.pslots[3].owner), 0, "reaping keeps the only record of it");

    cr_assert_eq(evb_ring_unblock(&r, TR_CAP, 0), 1);
    cr_expect_eq(tr_stamp_at(&r, TR_CAP), TR_CAP | EVB_STAMP_PAD);
    cr_expect_eq(evb_ring_frame(&r, TR_CAP)->claim_len, 128);
    cr_expect_eq(evb_ring_frame(&r, TR_CAP)->claim_events, 2);
    cr_expect_eq(TR_LD(r.pslots[3].owner), 0);
    cr_expect_eq(TR_LD(r.hdr->aborted), 2);
    evb_ring_close(&r);
}

Test(ring_pad, reap_frees_dead_slots_whose_claims_are_resolved)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    uint64_t dead = tr_owner_dead();
    /* 3: unresolved hole, kept. 4: committed, freed. 5: idle, freed.
     * 6: live, kept. */
    tr_intent(&r, 3, dead, 0, 0, 0, 64, 1);
    tr_intent(&r, 4, dead, 64, 1, 0, 64, 1);
    tr_frame(&r, 64, 1, 64, 64, 1);
    tr_stamp(&r, 64, 64 | EVB_STAMP_DATA);
    TR_ST(r.pslots[5].owner, dead);
    uint64_t live = tr_owner_live();
    tr_intent(&r, 6, live, 128, 2, 0, 64, 1);
    tr_set_tail(&r, 192, 3);
    /* Open: the dead hole and the live claim; the committed one is not. */
    cr_expect_eq(evb_ring_open_events(&r, 192, 3), 2);
    evb_ring_reap_producers(&r);
    cr_expect_eq(TR_LD(r.pslots[3].owner), dead);
    cr_expect_eq(TR_LD(r.pslots[4].owner), 0);
    cr_expect_eq(TR_LD(r.pslots[5].owner), 0);
    cr_expect_eq(TR_LD(r.pslots[6].owner), live);
    cr_expect_eq(TR_LD(r.hdr->reaped_producers), 2);
    cr_expect_eq(evb_ring_open_events(&r, 192, 3), 2, "reaping changed what is open");
    evb_ring_close(&r);
}

/* The open claims the published statistic subtracts (bus/stat.c): only
 * intents the tail explains count, so hostile slots cannot make published
 * wrap. Tail (256, 4); each slot below is checked alone. */
Test(ring_pad, open_events_count_only_claims_below_the_tail)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    uint64_t live = tr_owner_live();
    tr_set_tail(&r, 256, 4);
    struct {
        uint64_t pos, offset;
        uint32_t pad, events;
        uint64_t open;
        const char *what;
    } cases[] = {
        {192, 3, 0, 1, 1, "an open claim below the tail"},
        {128, 2, 0, 2, 2, "two events, both handed out"},
        {64, 1, 64, 1, 1, "an end pad first, its data part open"},
        {256, 4, 0, 1, 0, "at the tail: not made yet"},
        {192, 4, 0, 1, 0, "an offset the tail has not handed out"},
        {192, 3, 0, 7, 0, "more events than the tail has handed out"},
        {196, 3, 0, 1, 0, "misaligned"},
        {192, 3, 96, 1, 0, "its data part past the tail"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tr_intent(&r, 7, live, cases[i].pos, cases[i].offset, cases[i].pad, 64,
                  cases[i].events);
        cr_expect_eq(evb_ring_open_events(&r, 256, 4), cases[i].open, "%s", cases[i].what);
        TR_ST(r.pslots[7].owner, 0);
    }
    /* A lapped intent: the tail one lap and more past it. */
    tr_intent(&r, 7, live, 0, 0, 0, 64, 1);
    cr_expect_eq(evb_ring_open_events(&r, r.capacity + 64, 4), 0, "a lapped claim");
    evb_ring_close(&r);
}

/* A producer blocked behind a dead claim pads it from its slow path and
 * goes on. */
Test(ring_pad, blocked_producer_pads_a_dead_claim_and_proceeds)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    tr_intent(&r, 3, tr_owner_dead(), 0, 0, 0, 1024, 1);
    tr_set_tail(&r, 1024, 1);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    int rc;
    while ((rc = tr_publish(&p, 1024, &c)) == 0)
        ;
    cr_assert_eq(rc, -EAGAIN, "the dead claim at 0 holds the ring");
    evb_ring_producer_unblock(&p);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    cr_expect_eq(tr_publish(&p, 1024, &c), 0);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A pad is a commit to sleeping readers too: it rings when a bit is set. */
Test(ring_pad, pad_wakes_flagged_waiters)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    dead_claim(&r, tr_owner_dead());
    uint32_t bell;
    evb_ring_waiter_set(&r, 9, &bell);
    cr_assert_eq(evb_ring_unblock(&r, 0, 0), 1);
    cr_expect_eq(TR_LD(r.hdr->bell), bell + 1);
    cr_expect_eq(TR_LD(r.hdr->waiters), 0);
    evb_ring_close(&r);
}

/* The race with a commit as threads sharing one mapping, so TSan watches
 * C1/A2 and R1: this thread claims, fills and commits RACE_CLAIMS claims
 * while a padder thread (stall time 0) pads each as soon as it is claimed.
 * One CAS decides each frame: commit 0 leaves a data stamp and a readable
 * event, -ECANCELED a pad. Which side wins is timing; the test checks that
 * they agree. Here the reader reads after both threads ended; the next
 * test reads along in a third thread. */
#define RACE_CLAIMS 400u
#define RACE_LEN 64u

static void *pad_each_claim(void *arg)
{
    struct evb_ring *r = arg;
    int errors = 0;
    for (uint64_t pos = 0; pos < (uint64_t)RACE_CLAIMS * RACE_LEN; pos += RACE_LEN) {
        int rc;
        /* 0 until the claim at pos exists, then 1: padded or committed. */
        while ((rc = evb_ring_unblock(r, pos, 1)) == 0)
            sched_yield();
        if (rc != 1)
            errors++;
    }
    return (void *)(intptr_t)errors;
}

Test(ring_pad, commit_and_pad_race_as_threads_agree)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_reader rd;
    struct evb_ring_claim c;
    static int commit_rc[RACE_CLAIMS];
    tr_ring(&r, NULL);
    r.stall_ns = 0;
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0), 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    pthread_t padder;
    cr_assert_eq(pthread_create(&padder, NULL, pad_each_claim, &r), 0);
    for (uint32_t i = 0; i < RACE_CLAIMS; i++) {
        cr_assert_eq(evb_ring_claim(&p, RACE_LEN, 1, &c), 0);
        tr_fill(&r, &c);
        if (i % 2)
            sched_yield(); /* widen the window for the padder */
        commit_rc[i] = evb_ring_commit(&p, &c);
    }
    void *pad_errors;
    pthread_join(padder, &pad_errors);
    cr_expect_eq((intptr_t)pad_errors, 0);

    uint32_t committed = 0;
    for (uint32_t i = 0; i < RACE_CLAIMS; i++) {
        uint64_t pos = (uint64_t)i * RACE_LEN;
        if (commit_rc[i] == 0) {
            committed++;
            cr_expect_eq(tr_stamp_at(&r, pos), pos | EVB_STAMP_DATA, "claim %u", i);
            struct evb_frame_view v;
            cr_assert_eq(evb_ring_read(&rd, &v), 0, "claim %u committed but not read", i);
            cr_expect_eq(v.f->offset, i, "events in order, pads skipped");
            cr_expect_eq(v.f->len, RACE_LEN);
            cr_expect_eq(((const uint8_t *)v.f)[EVB_FRAME_HDR], (uint8_t)(i + EVB_FRAME_HDR));
        } else {
            cr_expect_eq(commit_rc[i], -ECANCELED, "claim %u", i);
            cr_expect_eq(tr_stamp_at(&r, pos), pos | EVB_STAMP_PAD, "claim %u", i);
        }
    }
    struct evb_frame_view v;
    cr_expect_eq(evb_ring_read(&rd, &v), -EAGAIN, "no event beyond the committed ones");
    cr_expect_eq(TR_LD(r.hdr->aborted), RACE_CLAIMS - committed);
    evb_ring_producer_detach(&p);
    evb_ring_reader_detach(&rd);
    evb_ring_close(&r);
}

/* The same race with a lossless reader thread reading along, so TSan also
 * watches A1 and the read path's loads of the claim fields that a losing
 * padder may still be storing (frame.h, evb_frame_set_claim). */
struct race {
    struct evb_ring *r;
    struct evb_ring_reader rd;
    _Atomic bool producer_done;
    _Atomic bool padder_done;
    int pad_errors;
    uint64_t read_offsets[RACE_CLAIMS];
    uint32_t reads;
    int read_errors;
};

static void *pad_each_claim_then_say(void *arg)
{
    struct race *x = arg;
    x->pad_errors = (int)(intptr_t)pad_each_claim(x->r);
    /* Release: pairs with the reader's acquire load of padder_done. */
    atomic_store_explicit(&x->padder_done, true, memory_order_release);
    return NULL;
}

static void *read_along(void *arg)
{
    struct race *x = arg;
    for (;;) {
        /* Acquire, before the read: both done and then nothing left to
         * read means every frame was resolved before this last read. */
        bool done = atomic_load_explicit(&x->producer_done, memory_order_acquire) &&
                    atomic_load_explicit(&x->padder_done, memory_order_acquire);
        struct evb_frame_view v;
        int rc = evb_ring_read(&x->rd, &v);
        if (rc == -EAGAIN) {
            if (done)
                return NULL;
            sched_yield();
            continue;
        }
        if (rc || x->reads == RACE_CLAIMS) {
            x->read_errors++;
            return NULL;
        }
        /* Relaxed atomic: the padder may still be storing this offset. */
        uint64_t off = __atomic_load_n(&v.f->offset, __ATOMIC_RELAXED);
        const uint8_t *b = (const uint8_t *)v.f;
        if (v.f->len != RACE_LEN || b[EVB_FRAME_HDR] != (uint8_t)(off + EVB_FRAME_HDR))
            x->read_errors++;
        x->read_offsets[x->reads++] = off;
    }
}

Test(ring_pad, commit_and_pad_race_as_threads_agree_with_a_reader_thread)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    static struct race x;
    static int commit_rc[RACE_CLAIMS];
    tr_ring(&r, NULL);
    r.stall_ns = 0;
    x.r = &r;
    cr_assert_eq(evb_ring_reader_attach(&x.rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0), 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    pthread_t padder, reader;
    cr_assert_eq(pthread_create(&padder, NULL, pad_each_claim_then_say, &x), 0);
    cr_assert_eq(pthread_create(&reader, NULL, read_along, &x), 0);
    for (uint32_t i = 0; i < RACE_CLAIMS; i++) {
        cr_assert_eq(evb_ring_claim(&p, RACE_LEN, 1, &c), 0);
        tr_fill(&r, &c);
        if (i % 2)
            sched_yield(); /* widen the window for the padder */
        commit_rc[i] = evb_ring_commit(&p, &c);
    }
    /* Release: pairs with the reader's acquire load of producer_done. */
    atomic_store_explicit(&x.producer_done, true, memory_order_release);
    pthread_join(padder, NULL);
    pthread_join(reader, NULL);
    cr_expect_eq(x.pad_errors, 0);
    cr_expect_eq(x.read_errors, 0);

    uint32_t committed = 0;
    for (uint32_t i = 0; i < RACE_CLAIMS; i++) {
        uint64_t pos = (uint64_t)i * RACE_LEN;
        if (commit_rc[i] == 0) {
            cr_expect_eq(tr_stamp_at(&r, pos), pos | EVB_STAMP_DATA, "claim %u", i);
            cr_assert_lt(committed, x.reads, "claim %u committed but not read", i);
            cr_expect_eq(x.read_offsets[committed], i, "events in order, pads skipped");
            committed++;
        } else {
            cr_expect_eq(commit_rc[i], -ECANCELED, "claim %u", i);
            cr_expect_eq(tr_stamp_at(&r, pos), pos | EVB_STAMP_PAD, "claim %u", i);
        }
    }
    cr_expect_eq(x.reads, committed, "the reader got exactly the committed events");
    cr_expect_eq(TR_LD(r.hdr->aborted), RACE_CLAIMS - committed);
    evb_ring_producer_detach(&p);
    evb_ring_reader_detach(&x.rd);
    evb_ring_close(&r);
}

/* ---- fenceless commits (claim.c X1) ---- */

/* This machine's kernel has membarrier: producers commit with a plain
 * store, and their slot says so to padders. */
Test(ring_pad, producers_commit_fenceless_where_the_kernel_has_membarrier)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_expect(p.fenceless);
    cr_expect_eq(TR_LD(p.slot->commit_mode), EVB_COMMIT_FENCELESS);
    cr_expect_eq(TR_LD(p.slot->committing), EVB_POS_NONE, "0 would name position 0");
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A producer stopped between deciding its commit (committing stored, its
 * frames whole) and its stamp store is not robbed: the padder stores the
 * same DATA stamp for it, counts no pad, and the producer's commit, when
 * it wakes, succeeds; readers get the event once. Owner dead, or live and
 * stalled: the same. */
static void decided_then_stopped(bool dead)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0), 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert(p.fenceless);
    cr_assert_eq(evb_ring_claim(&p, 2 * 64, 2, &c), 0);
    tr_fill(&r, &c);
    tr_stamp(&r, 64, 64 | EVB_STAMP_DATA); /* R2: the second frame first */
    TR_ST(p.slot->committing, c.data_pos); /* X1: decided; the stamp store never came */
    if (dead)
        TR_ST(p.slot->owner, tr_owner_dead());
    else
        r.stall_ns = 1000;
    cr_assert_eq(evb_ring_unblock(&r, 0, 2000), 1);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_DATA, "finished, not padded");
    cr_expect_eq(TR_LD(p.slot->robbing), 0, "the padder announced itself");
    cr_expect_eq(TR_LD(r.hdr->aborted), 0);
    cr_expect_eq(TR_LD(r.hdr->padded_stalled) + TR_LD(r.hdr->padded_dead), 0);
    if (!dead) {
        cr_expect_eq(evb_ring_commit(&p, &c), 0, "its commit stands");
        cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_DATA);
    }
    for (uint64_t off = 0; off < 2; off++) {
        cr_assert_eq(tr_read_wait(&rd, &v, 1000), 0);
        cr_expect_eq(v.f->offset, off);
    }
    cr_expect_eq(evb_ring_read(&rd, &v), -EAGAIN, "each event once");
    evb_ring_reader_detach(&rd);
    if (!dead)
        evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A producer that lost the tail CAS at a position keeps an intent naming
 * it until its next one; dead there, its slot and the winner's both name
 * the claim. The dead loser must not make the live winner's claim look
 * dead (padded at once, unstalled), and the winner must be told: padded
 * only once it stalled, its commit then -ECANCELED, the pad standing.
 * (Before, the loser's slot alone was marked, and the winner's plain
 * commit could store DATA over a pad a reader had already skipped.) */
/* Slot 0 a CAS loser dead with its intent naming position 0, P (slot 1,
 * fenceless, live) the winner with C claimed there and its frame written. */
static void loser_and_winner(struct evb_ring *r, struct evb_ring_producer *p,
                             struct evb_ring_claim *c)
{
    tr_intent(r, 0, tr_owner_dead(), 0, 0, 0, 64, 1);
    cr_assert_eq(evb_ring_producer_attach(p, r, 1), 0);
    cr_assert(p->fenceless);
    cr_assert_eq(p->slot_idx, 1);
    cr_assert_eq(evb_ring_claim(p, 64, 1, c), 0);
    cr_assert_eq(c->data_pos, 0);
    tr_fill(r, c);
}

Test(ring_pad, a_dead_cas_losers_intent_does_not_hide_the_live_winner)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0), 0);
    loser_and_winner(&r, &p, &c);
    r.stall_ns = 1000000;
    cr_expect_eq(evb_ring_unblock(&r, 0, 1), 0, "a live claimant is waited for");
    cr_expect_not(evb_stamp_is_committed(tr_stamp_at(&r, 0), 0));
    cr_expect_eq(evb_ring_unblock(&r, 0, r.stall_ns), 1, "stalled: padded");
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    cr_expect_eq(TR_LD(p.slot->robbing), 0, "the winner was told");
    cr_expect_eq(TR_LD(r.hdr->padded_stalled), 1, "counted as a stall, not a death");
    cr_expect_eq(TR_LD(r.hdr->padded_dead), 0);
    cr_expect_eq(evb_ring_commit(&p, &c), -ECANCELED, "the winner learns it was padded");
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD, "the pad stands");
    cr_expect_eq(evb_ring_read(&rd, &v), -EAGAIN, "the pad is skipped, nothing delivered");
    evb_ring_reader_detach(&rd);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* The same two slots, the winner's commit decided (committing stored, its
 * frames whole) when it stalled: finished with DATA, not padded. */
Test(ring_pad, a_dead_cas_losers_intent_does_not_hide_a_decided_commit)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    tr_ring(&r, NULL);
    loser_and_winner(&r, &p, &c);
    TR_ST(p.slot->committing, c.data_pos);
    r.stall_ns = 1000;
    cr_expect_eq(evb_ring_unblock(&r, 0, 2000), 1);
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_DATA, "finished, not padded");
    cr_expect_eq(TR_LD(r.hdr->padded_stalled) + TR_LD(r.hdr->padded_dead), 0);
    cr_expect_eq(evb_ring_commit(&p, &c), 0, "its commit stands");
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* The end of a hole is checked slot by slot, at different moments. A
 * claim N right after it that commits and writes its next intent between
 * two of those looks must not drop the live winner's slot and leave the
 * dead CAS loser's to say the claim is dead (padded at once, the winner
 * never told). A thread moves N back and forth while we offer the hole:
 * a live claim not stalled yet is never padded. */
static _Atomic int n_stop;

/* Where N's claim starts (and its offset), for n_moves_on. */
static uint64_t n_pos = 64, n_off = 1;

static void *n_moves_on(void *arg)
{
    struct evb_ring *r = arg;
    struct evb_producer_slot *n = &r->pslots[5];
    while (!atomic_load_explicit(&n_stop, memory_order_acquire)) {
        /* N pending at n_pos, uncommitted (intent first, as a claim) */
        evb_claim_write_intent(n, n_pos, n_off, 0, 64, 1);
        atomic_store_explicit(&n->pending, n_pos, memory_order_release);
        tr_stamp(r, n_pos, 0);
        for (volatile int i = 0; i < 50; i++)
            ;
        /* N committed, resolved, and its next claim's intent written */
        tr_stamp(r, n_pos, n_pos | EVB_STAMP_DATA);
        atomic_store_explicit(&n->pending, EVB_POS_NONE, memory_order_release);
        evb_claim_write_intent(n, 4096, 7, 0, 64, 1);
        atomic_store_explicit(&n->pending, 4096, memory_order_release);
        for (volatile int i = 0; i < 50; i++)
            ;
    }
    return NULL;
}

/* Offer the hole at POS while N moves on; the offer's code once it is not
 * 0, or 0 after EVB_T_PAD_RACE_MS (3 s). */
static int offer_while_n_moves(struct evb_ring *r, uint64_t pos, uint64_t *tries)
{
    atomic_store(&n_stop, 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, n_moves_on, r), 0);
    uint64_t t0 = t_now_ms();
    int rc = 0;
    *tries = 0;
    while (!rc && t_now_ms() - t0 < t_env_u64("EVB_T_PAD_RACE_MS", 3000)) {
        rc = evb_ring_unblock(r, pos, 1);
        ++*tries;
    }
    atomic_store_explicit(&n_stop, 1, memory_order_release);
    pthread_join(t, NULL);
    return rc;
}

Test(ring_pad, a_claim_next_to_the_hole_moving_on_does_not_hide_its_live_owner)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    tr_intent(&r, 0, tr_owner_dead(), 0, 0, 0, 64, 1); /* the loser, dead */
    tr_intent(&r, 3, tr_owner_live(), 0, 0, 0, 64, 1); /* the winner, live */
    TR_ST(r.pslots[3].commit_mode, EVB_COMMIT_FENCELESS);
    TR_ST(r.pslots[3].committing, EVB_POS_NONE);
    TR_ST(r.pslots[3].robbing, EVB_POS_NONE);
    tr_intent(&r, 5, tr_owner_live(), 64, 1, 0, 64, 1); /* N */
    tr_frame(&r, 64, 1, 64, 64, 1);
    tr_set_tail(&r, 128, 2);
    r.stall_ns = UINT64_MAX / 2;
    n_pos = 64, n_off = 1;
    uint64_t tries;
    int rc = offer_while_n_moves(&r, 0, &tries);
    cr_expect_eq(rc, 0, "padded after %llu offers: stamp %#llx, winner's robbing %#llx",
                 (unsigned long long)tries, (unsigned long long)tr_stamp_at(&r, 0),
                 (unsigned long long)TR_LD(r.pslots[3].robbing));
    cr_expect_eq(TR_LD(r.hdr->padded_dead), 0);
}

/* The same race where the dead CAS loser's intent has another shape: its
 * long claim needed an end pad at P (to the lap's end), the live winner's
 * short one at P none. The loser's end-pad reading is confirmed by its own
 * intent; the winner's by N, the claim after it. When N committed and
 * moved on between the look at its stamp and the look at its slot, the
 * winner's reading failed, the loser's stood alone, and the claim was
 * padded at once as the loser's end pad: its claim_len covering N, whose
 * committed event readers then skipped, and the winner not told. Both
 * readings standing is no verdict: nothing is padded while the winner
 * lives (found by review). Each trial sets N pending again (a committed
 * stamp never goes back in a real ring, so not while an offer runs) and
 * lets a thread commit it and move on while we offer the hole. */
static _Atomic int n_go, n_done;

static void *n_commits_once(void *arg)
{
    struct evb_ring *r = arg;
    struct evb_producer_slot *n = &r->pslots[5];
    for (;;) {
        int go;
        while (!(go = atomic_load_explicit(&n_go, memory_order_acquire)))
            ;
        if (go < 0)
            return NULL;
        atomic_store_explicit(&n_go, 0, memory_order_relaxed);
        for (volatile int i = 0; i < (int)(random() % 2000); i++)
            ;
        tr_stamp(r, n_pos, n_pos | EVB_STAMP_DATA);
        atomic_store_explicit(&n->pending, EVB_POS_NONE, memory_order_release);
        evb_claim_write_intent(n, 4096, 7, 0, 64, 1);
        atomic_store_explicit(&n->pending, 4096, memory_order_release);
        atomic_store_explicit(&n_done, 1, memory_order_release);
    }
}

Test(ring_pad, a_claim_after_the_hole_moving_on_does_not_let_a_dead_losers_end_pad_stand)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    const uint64_t P = TR_CAP - 256, off = 7;
    tr_intent(&r, 0, tr_owner_dead(), P, off, 256, 1024, 1); /* the loser */
    tr_intent(&r, 3, tr_owner_live(), P, off, 0, 64, 1);     /* the winner */
    TR_ST(r.pslots[3].commit_mode, EVB_COMMIT_FENCELESS);
    TR_ST(r.pslots[3].committing, EVB_POS_NONE);
    TR_ST(r.pslots[3].robbing, EVB_POS_NONE);
    tr_intent(&r, 5, tr_owner_live(), P + 64, off + 1, 0, 64, 1); /* N */
    tr_frame(&r, P + 64, off + 1, 64, 64, 1);
    tr_set_tail(&r, TR_CAP + 64, off + 3);
    r.stall_ns = UINT64_MAX / 2;
    n_pos = P + 64;
    atomic_store(&n_go, 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, n_commits_once, &r), 0);
    uint64_t t0 = t_now_ms(), tries = 0, trials = 0;
    int rc = 0;
    while (!rc && t_now_ms() - t0 < t_env_u64("EVB_T_PAD_RACE_MS", 3000)) {
        /* N pending and uncommitted again (intent first, as a claim) */
        evb_claim_write_intent(&r.pslots[5], P + 64, off + 1, 0, 64, 1);
        atomic_store_explicit(&r.pslots[5].pending, P + 64, memory_order_release);
        tr_stamp(&r, P + 64, 0);
        atomic_store_explicit(&n_done, 0, memory_order_relaxed);
        atomic_store_explicit(&n_go, 1, memory_order_release);
        do {
            rc = evb_ring_unblock(&r, P, 1);
            tries++;
        } while (!rc && !atomic_load_explicit(&n_done, memory_order_acquire));
        trials++;
    }
    atomic_store_explicit(&n_go, -1, memory_order_release);
    pthread_join(t, NULL);
    cr_expect_eq(rc, 0, "padded after %llu offers in %llu trials: stamp %#llx, claim_len %u",
                 (unsigned long long)tries, (unsigned long long)trials,
                 (unsigned long long)tr_stamp_at(&r, P), evb_ring_frame(&r, P)->claim_len);
    cr_expect_eq(TR_LD(r.hdr->padded_dead), 0);
}

Test(ring_pad, stalled_producers_decided_commit_is_finished_not_padded)
{
    decided_then_stopped(false);
}

Test(ring_pad, dead_producers_decided_commit_is_finished_not_padded)
{
    decided_then_stopped(true);
}

/*
 * X1 for real: a producer thread commits events while a padder thread,
 * for which every claim counts as stalled at once, keeps trying to pad the
 * frame the reader waits at. Every event must end one way only: its commit
 * returned 0 and the reader got it, whole, or -ECANCELED and the reader
 * skipped it. A plain stamp store that landed on a pad (the race X1
 * closes) shows as an event both cancelled and delivered, or as a reader
 * that skipped a committed one.
 */
#define RACE_EVENTS 20000u

struct fl_race {
    struct evb_ring *r;
    _Atomic uint64_t at;     /* the reader's position, for the padder */
    _Atomic int done;
    int error;               /* the producer's first surprise (asserted by the
                                test thread: Criterion's asserts belong there) */
    int8_t result[RACE_EVENTS]; /* 1 committed, -1 cancelled, by the producer */
};

static void *fl_producer(void *arg)
{
    struct fl_race *x = arg;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    if (evb_ring_producer_attach(&p, x->r, 1) || !p.fenceless)
        x->error = 1;
    for (uint32_t i = 0; !x->error && i < RACE_EVENTS;) {
        int rc = evb_ring_claim(&p, 64, 1, &c);
        if (rc == -EAGAIN) {
            sched_yield();
            continue;
        }
        if (rc || c.offset != i) {
            x->error = 2;
            break;
        }
        tr_fill(x->r, &c);
        if (i % 3 == 0)
            sched_yield(); /* widen the window for the padder */
        rc = evb_ring_commit(&p, &c);
        if (rc != 0 && rc != -ECANCELED)
            x->error = 3;
        x->result[i++] = rc == 0 ? 1 : -1;
    }
    if (x->error != 1)
        evb_ring_producer_detach(&p);
    /* Tests share this flag between threads; release: results first. */
    atomic_store_explicit(&x->done, 1, memory_order_release);
    return NULL;
}

static void *fl_padder(void *arg)
{
    struct fl_race *x = arg;
    /* Acquire pairs with the producer's release of done. */
    while (!atomic_load_explicit(&x->done, memory_order_acquire)) {
        evb_ring_unblock(x->r, atomic_load_explicit(&x->at, memory_order_acquire), 1000000);
        sched_yield();
    }
    return NULL;
}

Test(ring_pad, fenceless_commits_racing_padders_end_one_way_each)
{
    struct evb_ring r;
    struct evb_ring_reader rd;
    struct evb_frame_view v;
    static struct fl_race x;
    memset(&x, 0, sizeof x);
    tr_ring(&r, NULL);
    r.stall_ns = 0; /* every claim may be robbed at once */
    x.r = &r;
    cr_assert_eq(evb_ring_reader_attach(&rd, &r, EVB_SLOT_LOSSLESS, "", EVB_POS_NONE, 0), 0);
    pthread_t tp, tq;
    cr_assert_eq(pthread_create(&tp, NULL, fl_producer, &x), 0);
    cr_assert_eq(pthread_create(&tq, NULL, fl_padder, &x), 0);
    static int8_t seen[RACE_EVENTS];
    memset(seen, 0, sizeof seen);
    uint64_t next = 0, skipped = 0, delivered = 0;
    for (;;) {
        int rc = evb_ring_read(&rd, &v);
        if (rc == -EAGAIN) {
            evb_ring_reader_release(&rd);
            /* Release: the position the padder should look at. */
            atomic_store_explicit(&x.at, rd.pos, memory_order_release);
            /* Acquire pairs with the producer's release of done. */
            if (atomic_load_explicit(&x.done, memory_order_acquire) &&
                rd.pos == atomic_load_explicit(&r.hdr->tail.pos, memory_order_acquire))
                break;
            sched_yield();
            continue;
        }
        cr_assert_eq(rc, 0, "read: %d", rc);
        /* Relaxed atomic: a padder that lost may still be storing the same
         * offset (frame.h, evb_frame_set_claim). */
        uint64_t off = __atomic_load_n(&v.f->offset, __ATOMIC_RELAXED);
        cr_assert_lt(off, RACE_EVENTS);
        cr_assert_geq(off, next, "offset %llu again", (unsigned long long)off);
        skipped += off - next;
        for (uint32_t i = EVB_FRAME_HDR; i < 64; i++)
            cr_assert_eq(v.value[i - EVB_FRAME_HDR], (uint8_t)(off + i), "event %llu torn",
                         (unsigned long long)off);
        seen[off] = 1;
        delivered++;
        next = off + 1;
    }
    pthread_join(tp, NULL);
    pthread_join(tq, NULL);
    cr_assert_eq(x.error, 0, "the producer thread failed (step %d)", x.error);
    uint64_t cancelled = 0;
    for (uint32_t i = 0; i < RACE_EVENTS; i++) {
        cr_assert(x.result[i] == 1 || x.result[i] == -1);
        cr_assert_eq(seen[i] == 1, x.result[i] == 1, "event %u: commit said %s, reader %s",
                     i, x.result[i] == 1 ? "committed" : "cancelled",
                     seen[i] ? "got it" : "skipped it");
        cancelled += x.result[i] == -1;
    }
    cr_expect_eq(TR_LD(r.hdr->aborted), cancelled);
    cr_log_info("%llu delivered, %llu padded, %llu skipped by the reader",
                (unsigned long long)delivered, (unsigned long long)cancelled,
                (unsigned long long)skipped);
    evb_ring_reader_detach(&rd);
    evb_ring_close(&r);
}

/* A dead CAS loser whose long claim at P needed an end pad names P too,
 * and its end-pad reading is confirmed by a planned data start alone (its
 * own, or a second such loser's). The winner's reading is confirmed by the claim after it, which
 * proves the claim at P ended there: that reading is the one padded, with
 * the winner's length, at once when the winner is dead and once it has
 * stalled when it lives (and it is told). Before, the two readings made
 * the hole ambiguous while the claim at the lap start was pending: never
 * padded, and damage after stall + dead. */
static void end_pad_loser(struct evb_ring *r, uint64_t winner, uint64_t P)
{
    tr_ring(r, NULL);
    tr_intent(r, 0, tr_owner_dead(), P, 7, 256, 1024, 1); /* the loser */
    tr_intent(r, 3, winner, P, 7, 0, 64, 1);              /* the winner */
    TR_ST(r->pslots[3].commit_mode, EVB_COMMIT_FENCELESS);
    TR_ST(r->pslots[3].committing, EVB_POS_NONE);
    TR_ST(r->pslots[3].robbing, EVB_POS_NONE);
    tr_frame(r, P + 64, 8, 64, 64, 1); /* X, the claim after the winner's */
    tr_stamp(r, P + 64, (P + 64) | EVB_STAMP_DATA);
    /* Y, pending after X: it wraps, its data at the lap start not yet
     * committed, where the loser's end-pad reading would end. */
    tr_intent(r, 5, tr_owner_live(), P + 128, 9, 128, 64, 1);
    tr_set_tail(r, TR_CAP + 64, 10);
}

Test(ring_pad, a_dead_losers_planned_end_pad_yields_to_the_winners_reading)
{
    const uint64_t P = TR_CAP - 256;
    struct evb_ring r;
    end_pad_loser(&r, tr_owner_dead(), P);
    cr_expect_eq(evb_ring_hole_verdict(&r, P, 1), 1, "%s", evb_last_error());
    cr_expect_eq(tr_stamp_at(&r, P), P | EVB_STAMP_PAD);
    cr_expect_eq(evb_ring_frame(&r, P)->claim_len, 64, "the winner's length");
    cr_expect_eq(TR_LD(r.hdr->padded_dead), 1);
    evb_ring_close(&r);

    end_pad_loser(&r, tr_owner_live(), P);
    r.stall_ns = 1000000;
    cr_expect_eq(evb_ring_unblock(&r, P, 1), 0, "a live winner is waited for");
    cr_expect_eq(evb_ring_unblock(&r, P, r.stall_ns), 1, "stalled: padded");
    cr_expect_eq(tr_stamp_at(&r, P), P | EVB_STAMP_PAD);
    cr_expect_eq(evb_ring_frame(&r, P)->claim_len, 64, "the winner's length");
    cr_expect_eq(TR_LD(r.pslots[3].robbing), P, "the winner was told");
    cr_expect_eq(TR_LD(r.hdr->padded_stalled), 1);
    evb_ring_close(&r);

    /* Two dead wrapping losers plan the same data start: still only a
     * plan, and the winner's reading stands (found by review). */
    end_pad_loser(&r, tr_owner_dead(), P);
    tr_intent(&r, 1, tr_owner_dead(), P, 7, 256, 512, 2);
    cr_expect_eq(evb_ring_hole_verdict(&r, P, 1), 1, "%s", evb_last_error());
    cr_expect_eq(evb_ring_frame(&r, P)->claim_len, 64, "the winner's length");
    evb_ring_close(&r);
}

/* A live producer held mid-way through writing its intent (seq odd:
 * preempted, stopped, frozen) holds no claim, and must not keep a hole
 * elsewhere on the ring from its verdict. Here a dead winner owns [0, 64)
 * and a dead CAS loser named [0, 128), whose end falls inside the
 * committed claim after the hole: the winner's reading is the only one
 * believed, and the hole is padded, whether or not a slot is torn; nor may
 * the verdict at stall + dead call it damage. Likewise a slot torn by a
 * producer killed there whose pid this process has since (dead to all,
 * "us" by pid alone). (Found by review of the first is_boundary fix,
 * which left such holes undecided.) */
static void torn_setup(struct evb_ring *r, uint64_t torn_owner)
{
    tr_ring(r, NULL);
    uint64_t dead = tr_owner_dead();
    tr_intent(r, 3, dead, 0, 0, 0, 64, 1);  /* the winner, [0, 64) */
    tr_intent(r, 4, dead, 0, 0, 0, 128, 2); /* the loser, [0, 128) */
    tr_frame(r, 64, 1, 128, 128, 1);        /* the claim after: [64, 192) */
    tr_stamp(r, 64, 64 | EVB_STAMP_DATA);
    tr_set_tail(r, 192, 2);
    if (torn_owner) {                       /* mid-intent, nothing pending */
        tr_intent(r, 6, torn_owner, 192, 2, 0, 64, 1);
        TR_ST(r->pslots[6].pending, EVB_POS_NONE);
        TR_ST(r->pslots[6].intent_seq, 5);
    }
}

Test(ring_pad, a_slot_torn_mid_intent_does_not_keep_a_hole_from_its_verdict)
{
    const uint64_t torn[] = {0, tr_owner_live(), evb_proc_self() ^ 0x5a5a};
    for (size_t k = 0; k < sizeof torn / sizeof torn[0]; k++) {
        struct evb_ring r;
        torn_setup(&r, torn[k]);
        int rc = evb_ring_hole_verdict(&r, 0, r.stall_ns + r.dead_ns);
        cr_expect_eq(rc, 1, "torn owner %zu: verdict %d (%s)", k, rc, evb_last_error());
        cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD, "torn owner %zu", k);
        cr_expect_eq(evb_ring_frame(&r, 0)->claim_len, 64, "the winner's length");
        evb_ring_close(&r);
    }
}

/* Children of the test below: the first is killed inside its second
 * intent write (its seqlock left odd), the second claims and exits
 * without committing. */
static int killed_mid_intent(void *arg)
{
    struct evb_ring *r = arg;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    setenv("EVB_CRASH_AT", "intent.torn", 1);
    setenv("EVB_CRASH_SKIP", "1", 1);
    if (evb_ring_producer_attach(&p, r, 7))
        return 10;
    if (tr_publish(&p, 64, &c))
        return 11;
    tr_publish(&p, 64, &c);
    return 12;
}

static int claims_and_dies(void *arg)
{
    struct evb_ring *r = arg;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    if (evb_ring_producer_attach(&p, r, 8))
        return 10;
    return evb_ring_claim(&p, 128, 2, &c) ? 11 : 0;
}

/* What a producer killed at any point leaves in its slot must not harm
 * the slot's next owner. Killed mid-intent, it left the seqlock odd, and
 * the next owner carried it on inverted: every intent of its read as
 * torn, so when it died holding a claim, nothing could pad the hole, and
 * readers called it damage (found by the published crash test in CI).
 * The next owner's claim must be counted open and padded at once. */
Test(ring_pad, a_slot_left_by_a_producer_killed_mid_intent_serves_its_next_owner)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    cr_assert_eq(t_wait_exit(t_spawn(killed_mid_intent, &r), 5000), 128 + SIGKILL);
    cr_assert_eq(TR_LD(r.pslots[0].intent_seq) & 1, 1, "not killed mid-intent");
    evb_ring_reap_producers(&r); /* nothing was pending: the slot is free */
    cr_assert_eq(TR_LD(r.pslots[0].owner), 0);
    cr_assert_eq(t_wait_exit(t_spawn(claims_and_dies, &r), 5000), 0);
    cr_assert_neq(TR_LD(r.pslots[0].owner), 0, "the next owner took another slot");
    cr_expect_eq(evb_ring_open_events(&r, 192, 3), 2, "its claim is not counted open");
    cr_expect_eq(evb_ring_unblock(&r, 64, 0), 1, "its hole is not padded: %s",
                 evb_last_error());
    cr_expect_eq(tr_stamp_at(&r, 64), 64 | EVB_STAMP_PAD);
    cr_expect_eq(evb_ring_frame(&r, 64)->claim_len, 128);
    cr_expect_eq(TR_LD(r.pslots[0].owner), 0, "the dead owner's slot is freed");
    evb_ring_close(&r);
}

/* A ring whose largest frame is not a whole line (120: a 64-byte value's
 * frame): its producers claim the frame padded to 128, and a dead one's
 * claim of two such frames (256 bytes, more than 2 x 120) is padded, not
 * called an impossible intent. One line more is. */
Test(ring_pad, claim_of_line_padded_frames_over_max_frame_is_padded)
{
    struct evb_ring r;
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = 120, .mode = 0600};
    tr_ring(&r, &init);
    tr_intent(&r, 3, tr_owner_dead(), 0, 0, 0, 256, 2);
    tr_set_tail(&r, 256, 2);
    cr_assert_eq(evb_ring_unblock(&r, 0, 0), 1, "%s", evb_err_get());
    cr_expect_eq(tr_stamp_at(&r, 0), 0 | EVB_STAMP_PAD);
    cr_expect_eq(evb_ring_frame(&r, 0)->claim_len, 256);
    evb_ring_close(&r);

    tr_ring(&r, &init);
    tr_intent(&r, 3, tr_owner_dead(), 0, 0, 0, 320, 2);
    tr_set_tail(&r, 320, 2);
    evb_err_clear();
    evb_ring_unblock(&r, 0, 0);
    cr_expect(strstr(evb_err_get(), "intent length"), "'%s'", evb_err_get());
    cr_expect_eq(tr_stamp_at(&r, 0), 0, "an impossible intent is not padded");
    evb_ring_close(&r);
}
