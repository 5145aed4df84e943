/*
 * test_stream.c - many producer processes, many lossless subscriber
 * processes, every event checked (stream_body.c). Counts from
 * EVB_TEST_EVENTS (events per producer; default 1,000,000).
 */
#include <criterion/criterion.h>

#include "stream_body.h"

static void fini(void)
{
    t_bus_cleanup();
}

Test(stream, four_producers_three_lossless_subscribers_lose_nothing, .fini = fini,
     .timeout = 600)
{
    struct stream_cfg cfg = {
        .bus = t_bus_dir(), .topic = "orders", .producers = 4, .subscribers = 3,
        .per_producer = t_env_u64("EVB_TEST_EVENTS", 1000000), .value_len = 64,
        .sh = t_shared_new(),
    };
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, cfg.bus, NULL), 0);
    evb_topic_config tc = {.partitions = 4, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, cfg.topic, &tc), 0, "%s", evb_last_error());

    struct stream_role roles[8];
    pid_t subs[3], prods[4];
    for (int i = 0; i < cfg.subscribers; i++) {
        roles[i] = (struct stream_role){&cfg, i};
        subs[i] = t_spawn(stream_subscriber, &roles[i]);
    }
    for (int i = 0; i < cfg.producers; i++) {
        roles[4 + i] = (struct stream_role){&cfg, i};
        prods[i] = t_spawn(stream_producer, &roles[4 + i]);
    }
    cr_assert(t_wait_count(&cfg.sh->ready, 7, 30000), "children did not start");
    atomic_store_explicit(&cfg.sh->go, 1, memory_order_release);
    for (int i = 0; i < cfg.producers; i++) {
        int rc = t_wait_exit(prods[i], 300000);
        cr_expect_eq(rc, 0, "producer %d: %s (%d)", i, stream_error(rc), rc);
    }
    for (int i = 0; i < cfg.subscribers; i++) {
        int rc = t_wait_exit(subs[i], 300000);
        cr_expect_eq(rc, 0, "subscriber %d: %s (%d)", i, stream_error(rc), rc);
    }
    for (uint32_t p = 0; p < 4; p++) {
        struct evb_partition_stat ps;
        cr_assert_eq(evb_partition_stat(bus, cfg.topic, p, &ps), 0);
        cr_expect_eq(ps.aborted, 0);
    }
    evb_bus_close(bus);
}
