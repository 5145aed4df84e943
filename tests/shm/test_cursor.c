/*
 * test_cursor.c - shm/cursor.c: reader slots are taken with their kind,
 * cursor and name, given back with their waiter bit, and freed when their
 * process is dead (or its pid was reused), never when it lives; a dead
 * gating reader stops holding producers once reaped.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ring_helpers.h"
#include "t_helpers.h"

TestSuite(ring_cursor, .fini = tr_fini, .timeout = 10);

Test(ring_cursor, take_stores_owner_kind_cursor_and_name)
{
    struct evb_ring r;
    uint32_t i;
    tr_ring(&r, NULL);
    TR_ST(r.rslots[0].lost, 7); /* a previous owner's statistics */
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_CONSUMER, "billing", 4096, &i), 0);
    cr_expect_eq(i, 0);
    struct evb_reader_slot *s = &r.rslots[i];
    cr_expect_eq(TR_LD(s->owner), evb_proc_self());
    cr_expect_eq(TR_LD(s->kind), EVB_SLOT_CONSUMER);
    cr_expect_eq(TR_LD(s->cursor), 4096);
    cr_expect_eq(TR_LD(s->lost), 0);
    cr_expect_str_eq(s->name, "billing");
    uint32_t j;
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_SUBSCRIBER, NULL, 0, &j), 0);
    cr_expect_eq(j, 1);
    cr_expect_str_eq(r.rslots[j].name, "");
    evb_ring_close(&r);
}

Test(ring_cursor, long_names_are_cut_and_terminated)
{
    struct evb_ring r;
    uint32_t i;
    char name[100];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_CONSUMER, name, 0, &i), 0);
    cr_expect_eq(strlen(r.rslots[i].name), sizeof r.rslots[i].name - 1);
    evb_ring_close(&r);
}

Test(ring_cursor, release_frees_the_slot_and_its_waiter_bit)
{
    struct evb_ring r;
    uint32_t i, bell;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_LOSSLESS, "", 0, &i), 0);
    evb_ring_waiter_set(&r, i, &bell);
    cr_assert_eq(TR_LD(r.hdr->waiters), 1ull << i);
    evb_ring_slot_release(&r, i);
    cr_expect_eq(TR_LD(r.rslots[i].owner), 0);
    cr_expect_eq(TR_LD(r.hdr->waiters), 0);
    evb_ring_close(&r);
}

Test(ring_cursor, reap_frees_dead_and_reused_pid_slots_only)
{
    struct evb_ring r;
    uint32_t mine;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_LOSSLESS, "", 0, &mine), 0);
    uint64_t live = tr_owner_live();
    TR_ST(r.rslots[5].owner, tr_owner_dead());
    TR_ST(r.rslots[6].owner, tr_owner_reused());
    TR_ST(r.rslots[7].owner, live);
    /* Our own pid with a wrong start time: we are plainly not dead. */
    TR_ST(r.rslots[8].owner, evb_proc_self() ^ 0x5a5a);
    TR_ST(r.hdr->waiters, 1ull << 5 | 1ull << 6 | 1ull << 7);
    cr_expect_eq(evb_ring_reap_readers(&r), 2);
    cr_expect_eq(TR_LD(r.rslots[5].owner), 0);
    cr_expect_eq(TR_LD(r.rslots[6].owner), 0);
    cr_expect_eq(TR_LD(r.rslots[7].owner), live);
    cr_expect_neq(TR_LD(r.rslots[8].owner), 0);
    cr_expect_eq(TR_LD(r.rslots[mine].owner), evb_proc_self());
    cr_expect_eq(TR_LD(r.hdr->waiters), 1ull << 7, "the dead slots' bits are cleared");
    cr_expect_eq(TR_LD(r.hdr->reaped_readers), 2);
    cr_expect_eq(evb_ring_reap_readers(&r), 0);
    evb_ring_close(&r);
}

Test(ring_cursor, take_reaps_when_every_slot_is_held)
{
    struct evb_ring r;
    uint32_t i;
    tr_ring(&r, NULL);
    uint64_t live = tr_owner_live();
    for (uint32_t k = 0; k < EVB_RING_READER_SLOTS; k++)
        TR_ST(r.rslots[k].owner, live);
    cr_expect_eq(evb_ring_slot_take(&r, EVB_SLOT_SUBSCRIBER, "", 0, &i), -EBUSY);
    cr_expect(strstr(evb_err_get(), "reader slots are taken"), "%s", evb_err_get());
    TR_ST(r.rslots[33].owner, tr_owner_dead());
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_SUBSCRIBER, "", 0, &i), 0);
    cr_expect_eq(i, 33);
    evb_ring_close(&r);
}

/* A gating reader that died at cursor 0 holds the ring until a blocked
 * producer's slow path reaps it. */
Test(ring_cursor, dead_gating_reader_stops_gating_once_reaped)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    uint32_t i;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_LOSSLESS, "", 0, &i), 0);
    TR_ST(r.rslots[i].owner, tr_owner_dead());
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    int rc;
    uint64_t bytes = 0;
    while ((rc = tr_publish(&p, 1024, &c)) == 0)
        bytes += 1024;
    cr_expect_eq(rc, -EAGAIN);
    cr_expect_eq(bytes, TR_CAP);
    evb_ring_producer_unblock(&p);
    cr_expect_eq(TR_LD(r.rslots[i].owner), 0);
    cr_expect_eq(tr_publish(&p, 1024, &c), 0);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

/* A subscriber holds nothing even while alive. */
Test(ring_cursor, subscriber_cursor_does_not_gate)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    uint32_t i;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_slot_take(&r, EVB_SLOT_SUBSCRIBER, "", 0, &i), 0);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    for (uint64_t k = 0; k < 2 * TR_CAP / 1024; k++)
        cr_assert_eq(tr_publish(&p, 1024, &c), 0);
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}
