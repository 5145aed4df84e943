/*
 * test_hostile_live.c - hostile words written while a producer process
 * publishes and a gating reader (a named consumer) reads it (issue 9; the
 * attack's F4): the ring's tail moved back, the reader's cursor word
 * raised. Neither side may go on as if nothing happened: the producer
 * (a child) and the reader (this process) both end with -EBADMSG within
 * a deadline, and a reopen at the committed cursor says so too. A read
 * that never returns is caught by alarm(), a producer that never ends by
 * its deadline. Events the reader hands out before it stops are not
 * checked: a gating reader reads in place, and a hand that moves the
 * tail lets the producer overwrite what it reads (SECURITY.md).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "ring.h"
#include "t_helpers.h"

#define RING (64u << 10)
#define DEADLINE_MS 10000
#define VALUE_LEN 80 /* 192-byte frames (136, padded to lines): no claim ends a lap exactly */

static void teardown(void)
{
    alarm(0);
    t_bus_cleanup();
}

TestSuite(hostile_live, .fini = teardown, .timeout = 120);

static evb_bus *open_bus(void)
{
    /* Short liveness bounds: a producer held at its limit looks again
     * every few ms. */
    evb_bus_options o = {.dead_ms = 40, .stall_ms = 80};
    evb_bus *b;
    cr_assert_eq(evb_bus_open(&b, t_bus_dir(), &o), 0, "bus open: %s", evb_last_error());
    return b;
}

/* Child: publish until an error, waiting for ever when held back; exit
 * with -rc (0 would mean it published everything, hostile word or not). */
static int produce(void *arg)
{
    const char *topic = arg;
    evb_bus *b = open_bus();
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1};
    if (evb_producer_open(&p, b, topic, &po))
        return 100;
    char v[VALUE_LEN];
    int rc = 0;
    for (uint64_t seq = 0; seq < 100000000u && !rc; seq++) {
        t_value_fill(v, sizeof v, 1, seq);
        evb_msg m = {.value = v, .value_len = sizeof v, .partition = 0};
        rc = evb_publish(p, &m);
    }
    if (rc)
        fprintf(stderr, "producer: %s\n", evb_last_error());
    evb_producer_close(p);
    evb_bus_close(b);
    return -rc;
}

struct live {
    evb_bus *bus;
    evb_consumer *c;
    pid_t prod;
    struct evb_ring r; /* the attacker's own read-write mapping */
};

/* A ring-only topic with one partition, the named consumer "c" reading
 * it and a producer child publishing; returns once the consumer has read
 * and committed 16 rings' worth. */
static void start(struct live *l, const char *topic)
{
    l->bus = open_bus();
    evb_topic_config tc = {.partitions = 1, .ring_bytes = RING, .max_event_bytes = 1024};
    cr_assert_eq(evb_topic_create(l->bus, topic, &tc), 0, "%s", evb_last_error());
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c"};
    cr_assert_eq(evb_consumer_open(&l->c, l->bus, topic, &co), 0, "%s", evb_last_error());
    l->prod = t_spawn(produce, (void *)topic);
    cr_assert_gt(l->prod, 0);
    alarm(60);
    evb_event ev;
    uint64_t n = 0;
    while (n < 16 * RING / 72) {
        int rc = evb_consumer_next(l->c, &ev, 5000);
        cr_assert_eq(rc, 0, "before the attack: %d (%s)", rc, evb_last_error());
        n++;
    }
    cr_assert_eq(evb_consumer_commit(l->c), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/%s/0.ring", t_bus_dir(), topic);
    cr_assert_eq(evb_ring_open(&l->r, path), 0, "%s", evb_err_get());
}

/* Read on, as `evbus tail -f` does (no timeout), until the reader stops:
 * it must stop with -EBADMSG (a hang is the alarm's). Then the producer
 * must have ended with EBADMSG too. */
static void expect_both_fail(struct live *l, const char *what)
{
    evb_event ev;
    int rc;
    uint64_t after = 0;
    while ((rc = evb_consumer_next(l->c, &ev, -1)) == 0)
        after++;
    cr_expect_eq(rc, -EBADMSG, "%s: the reader got %d (%s) after %llu more events", what, rc,
                 evb_last_error(), (unsigned long long)after);
    cr_log_info("%s: reader: %s (after %llu more events)", what, evb_last_error(),
                (unsigned long long)after);
    int code = t_wait_exit(l->prod, DEADLINE_MS);
    cr_expect_neq(code, 0, "%s: the producer published everything", what);
    cr_expect_neq(code, -1, "%s: the producer was still running after %d ms", what,
                  DEADLINE_MS);
    cr_expect_eq(code, EBADMSG, "%s: the producer exited %d, not EBADMSG", what, code);
    alarm(0);
}

static void stop(struct live *l)
{
    evb_ring_close(&l->r);
    evb_consumer_close(l->c);
    evb_bus_close(l->bus);
}

/* The attack: the tail's position word set to 0, many laps after the
 * start. The producer claimed from 0 again, no longer held by the reader
 * whose cursor was now above the tail, and finished; the reader waited
 * for ever. A reopen at the committed cursor, above the tail now, read
 * nothing and exited 0. The attacker keeps writing it: a producer alone
 * on the ring moves the tail by store from its own copy (the tail lease,
 * shm/claim.c X4), so one write is undone at its next claim, harmlessly;
 * it compares the two once a lap. */
static struct t_shared *sh;
static struct evb_ring *zeroed_ring;

static int keep_zeroing(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&sh->done, memory_order_relaxed)) {
        /* Release: the others' acquire loads of the tail see it (tests). */
        atomic_store_explicit(&zeroed_ring->hdr->tail.pos, 0, memory_order_release);
        usleep(200);
    }
    return 0;
}

Test(hostile_live, tail_moved_back_is_ebadmsg_for_producer_reader_and_reopen)
{
    struct live l;
    start(&l, "tailback");
    sh = t_shared_new();
    zeroed_ring = &l.r;
    pid_t bad = t_spawn(keep_zeroing, NULL);
    expect_both_fail(&l, "tail moved back to 0");
    evb_consumer_close(l.c);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c"};
    int rc = evb_consumer_open(&l.c, l.bus, "tailback", &co);
    cr_expect_eq(rc, -EBADMSG, "reopen at a committed cursor above the tail: %d", rc);
    cr_expect(strstr(evb_last_error(), "past the tail"), "%s", evb_last_error());
    if (rc)
        l.c = NULL;
    atomic_store_explicit(&sh->done, 1, memory_order_relaxed);
    cr_expect_eq(t_wait_exit(bad, 5000), 0);
    stop(&l);
}

/* The attack's variant: the reader's cursor word raised by 2^40. The
 * producer was no longer held and overran the reader, which stopped
 * silently. Here written once between two reads, and by a process that
 * keeps writing it. */
static struct evb_reader_slot *consumer_slot(struct evb_ring *r)
{
    for (uint32_t i = 0; i < EVB_RING_READER_SLOTS; i++) {
        struct evb_reader_slot *s = &r->rslots[i];
        /* Acquire: the slot as its owner published it (tests). */
        if (atomic_load_explicit(&s->owner, memory_order_acquire) &&
            atomic_load_explicit(&s->kind, memory_order_acquire) == EVB_SLOT_CONSUMER)
            return s;
    }
    cr_assert_fail("no consumer slot");
    return NULL;
}

static void raise_cursor(struct evb_reader_slot *s)
{
    /* Acquire/release: the others see the store (tests). */
    uint64_t v = atomic_load_explicit(&s->cursor, memory_order_acquire);
    if (v < (1ull << 40))
        atomic_store_explicit(&s->cursor, v + (1ull << 40), memory_order_release);
}

static struct evb_reader_slot *hostile_slot;

static int keep_raising(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&sh->done, memory_order_relaxed)) {
        raise_cursor(hostile_slot);
        usleep(1000);
    }
    return 0;
}

Test(hostile_live, raised_cursor_word_is_ebadmsg_for_producer_and_reader)
{
    struct live l;
    start(&l, "cursor1");
    raise_cursor(consumer_slot(&l.r));
    expect_both_fail(&l, "cursor raised once");
    stop(&l);

    start(&l, "cursor2");
    sh = t_shared_new();
    hostile_slot = consumer_slot(&l.r);
    pid_t bad = t_spawn(keep_raising, NULL);
    expect_both_fail(&l, "cursor raised every ms");
    atomic_store_explicit(&sh->done, 1, memory_order_relaxed);
    cr_expect_eq(t_wait_exit(bad, DEADLINE_MS), 0);
    stop(&l);
}

/* The attack's N3 without the race: a named consumer committed at
 * (position, offset), and the frame now at that position carries another
 * offset (what a producer claiming again below a tail moved back leaves).
 * The reopen used to learn the frame's offset and read on across the gap
 * with no error and no loss; it must fail with -EBADMSG naming both
 * offsets, for a gap above the commit and an offset below it. */
Test(hostile_live, reopen_at_a_commit_whose_frame_carries_another_offset_is_ebadmsg)
{
    int64_t delta[2] = {128, -3};
    for (int k = 0; k < 2; k++) {
        char topic[32];
        snprintf(topic, sizeof topic, "gap%d", k);
        evb_bus *b = open_bus();
        evb_topic_config tc = {.partitions = 1, .ring_bytes = RING, .max_event_bytes = 1024};
        cr_assert_eq(evb_topic_create(b, topic, &tc), 0, "%s", evb_last_error());
        evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c"};
        evb_consumer *c;
        cr_assert_eq(evb_consumer_open(&c, b, topic, &co), 0, "%s", evb_last_error());
        evb_producer *p;
        cr_assert_eq(evb_producer_open(&p, b, topic, NULL), 0, "%s", evb_last_error());
        char v[VALUE_LEN];
        for (uint64_t i = 0; i < 200; i++) {
            t_value_fill(v, sizeof v, 1, i);
            evb_msg m = {.value = v, .value_len = sizeof v, .partition = 0};
            cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
        }
        evb_event ev;
        for (int i = 0; i < 100; i++)
            cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
        cr_assert_eq(evb_consumer_commit(c), 0);
        evb_consumer_close(c);
        /* One event per frame from position 0, no lap ended yet: the
         * commit is (100 frames, offset 100). */
        uint64_t at = 100 * evb_frame_bytes(0, VALUE_LEN);
        struct evb_ring r;
        char path[512];
        snprintf(path, sizeof path, "%s/%s/0.ring", t_bus_dir(), topic);
        cr_assert_eq(evb_ring_open(&r, path), 0, "%s", evb_err_get());
        struct evb_frame *f = evb_ring_frame(&r, at);
        cr_assert_eq(f->offset, 100);
        f->offset = (uint64_t)(100 + delta[k]);
        int rc = evb_consumer_open(&c, b, topic, &co);
        if (rc == 0) {
            rc = evb_consumer_next(c, &ev, 1000);
            if (rc == 0)
                cr_log_error("k %d: read offset %llu", k, (unsigned long long)ev.offset);
        }
        cr_expect_eq(rc, -EBADMSG, "k %d: %d (%s)", k, rc, evb_last_error());
        char want[96];
        snprintf(want, sizeof want, "offset %llu at position %llu, expected 100",
                 (unsigned long long)(100 + delta[k]), (unsigned long long)at);
        cr_expect(strstr(evb_last_error(), want), "%s (wanted '%s')", evb_last_error(), want);
        evb_consumer_close(c);
        evb_ring_close(&r);
        evb_producer_close(p);
        evb_bus_close(b);
    }
}
