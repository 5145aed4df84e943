/*
 * test_lapped.c - a deliberately slow anonymous subscriber on a small ring
 * is lapped again and again: every event it returns has an intact
 * checksum and its own sequence, and received + reported lost equals
 * published, exactly.
 */
#include <criterion/criterion.h>
#include <unistd.h>

#include "t_helpers.h"

#define TOPIC "lap"

struct lap {
    const char *bus;
    uint64_t events;
    struct t_shared *sh;
};

static int slow_subscriber(void *arg)
{
    struct lap *l = arg;
    evb_bus *bus;
    evb_consumer *c;
    if (evb_bus_open(&bus, l->bus, NULL))
        return 10;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .idle = EVB_IDLE_BLOCK};
    if (evb_consumer_open(&c, bus, TOPIC, &co))
        return 11;
    atomic_fetch_add(&l->sh->ready, 1);
    uint64_t received = 0, lost = 0, next_seq = 0, deadline = t_now_ms() + 120000;
    while (received + lost < l->events) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 100);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc)
            return 12;
        uint32_t tp;
        uint64_t seq;
        if (!t_value_check(ev.value, ev.value_len, &tp, &seq))
            return 13; /* torn or stale */
        lost += ev.lost_events;
        /* The single producer's sequence is the offset: what we skipped
         * is exactly what we were told we lost. */
        if (seq != ev.offset || seq != next_seq + ev.lost_events)
            return 14;
        next_seq = seq + 1;
        received++;
        if (received % 64 == 0)
            usleep(200); /* be slow: get lapped */
        if (t_now_ms() > deadline)
            return 15;
    }
    /* Relaxed: the parent reads them after waiting for this process. */
    atomic_store_explicit(&l->sh->val[0], received, memory_order_relaxed);
    atomic_store_explicit(&l->sh->val[1], lost, memory_order_relaxed);
    evb_consumer_close(c);
    evb_bus_close(bus);
    return received + lost == l->events ? 0 : 16;
}

static void fini(void)
{
    t_bus_cleanup();
}

Test(lapped, slow_subscriber_counts_exactly_what_it_lost, .fini = fini, .timeout = 300)
{
    struct lap l = {.bus = t_bus_dir(), .events = t_env_u64("EVB_TEST_EVENTS", 1000000),
                    .sh = t_shared_new()};
    evb_bus *bus;
    evb_producer *p;
    cr_assert_eq(evb_bus_open(&bus, l.bus, NULL), 0);
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 1024};
    cr_assert_eq(evb_topic_create(bus, TOPIC, &tc), 0);
    cr_assert_eq(evb_producer_open(&p, bus, TOPIC, NULL), 0);
    pid_t pid = t_spawn(slow_subscriber, &l);
    cr_assert(t_wait_count(&l.sh->ready, 1, 10000));
    uint8_t v[200];
    for (uint64_t i = 0; i < l.events; i++) {
        /* Varying sizes so frame boundaries move from lap to lap. */
        uint32_t len = 24 + (uint32_t)(i % 170);
        t_value_fill(v, len, 0, i);
        evb_msg m = {.value = v, .value_len = len, .partition = EVB_PARTITION_ANY};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    int rc = t_wait_exit(pid, 200000);
    cr_assert_eq(rc, 0, "subscriber failed with %d", rc);
    cr_expect_gt(l.sh->val[1], 0, "the subscriber was never lapped: test proves nothing");
    cr_expect_gt(l.sh->val[0], 0);
    evb_producer_close(p);
    evb_bus_close(bus);
}
