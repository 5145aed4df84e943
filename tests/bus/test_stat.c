/*
 * test_stat.c - the live counters of bus/stat.c: a producer or reader
 * whose process died no longer counts as attached, while what it
 * published still counts as published; a producer's own counters.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "s", &tc), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

/* In a child: attach a producer that publishes 3 events and a
 * subscriber, then die without closing either (as under SIGKILL). */
static int attach_and_die(void *arg)
{
    (void)arg;
    evb_bus *b;
    evb_producer *p;
    evb_consumer *c;
    if (evb_bus_open(&b, t_bus_dir(), NULL) ||
        evb_consumer_open(&c, b, "s", &(evb_consumer_options){.kind = EVB_SUBSCRIBER}) ||
        evb_producer_open(&p, b, "s", NULL))
        return 1;
    for (int i = 0; i < 3; i++)
        if (evb_publish(p, &(evb_msg){.value = "x", .value_len = 1, .partition = 0}))
            return 2;
    _exit(0);
}

Test(stat, dead_producers_and_readers_are_not_attached, .init = setup, .fini = teardown,
     .timeout = 20)
{
    cr_assert_eq(t_wait_exit(t_spawn(attach_and_die, NULL), 10000), 0);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "s", 0, &st), 0);
    cr_expect_eq(st.producers, 0, "a dead producer counted as attached: %u", st.producers);
    cr_expect_eq(st.readers, 0, "a dead reader counted as attached: %u", st.readers);
    cr_expect_eq(st.published, 3, "what the dead producer published: %llu",
                 (unsigned long long)st.published);
    evb_reader_stat rs[4];
    cr_expect_eq(evb_reader_list(bus, "s", 0, rs, 4), 0, "a dead reader is listed");
}

Test(stat, live_producers_and_readers_are_attached, .init = setup, .fini = teardown,
     .timeout = 20)
{
    evb_producer *p;
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "s",
                                   &(evb_consumer_options){.kind = EVB_SUBSCRIBER}), 0);
    cr_assert_eq(evb_producer_open(&p, bus, "s", NULL), 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = "x", .value_len = 1, .partition = 0}), 0);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "s", 0, &st), 0);
    cr_expect_eq(st.producers, 1);
    cr_expect_eq(st.readers, 1);
    cr_expect_eq(st.published, 1);
    evb_reader_stat rs[4];
    cr_expect_eq(evb_reader_list(bus, "s", 0, rs, 4), 1);
    evb_producer_close(p);
    evb_consumer_close(c);
}

/* A durable topic's flusher holds a reader slot for its doorbell; it is
 * no reader: not counted, not listed (it was listed as a subscriber at
 * offset 0 whose lag grew for ever, found by a cold attack). */
Test(stat, a_flusher_is_no_reader, .init = setup, .fini = teardown, .timeout = 20)
{
    evb_bus_close(bus);
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &(evb_bus_options){.data_dir = t_data_dir()}),
                 0, "%s", evb_last_error());
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20,
                           .durability = EVB_DURABILITY_ASYNC};
    cr_assert_eq(evb_topic_create(bus, "d", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "d", NULL), 0, "%s", evb_last_error());
    evb_receipt r;
    cr_assert_eq(evb_publish_receipt(p, &(evb_msg){.value = "x", .value_len = 1}, &r), 0);
    cr_assert_eq(evb_producer_wait_durable(p, &r, 5000), 0, "%s", evb_last_error());
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "d", 0, &st), 0);
    cr_expect_eq(st.readers, 0);
    evb_reader_stat rs[4];
    int n = evb_reader_list(bus, "d", 0, rs, 4);
    cr_expect_eq(n, 0, "%d listed, the first '%s'", n, n > 0 ? rs[0].name : "");
    evb_producer_close(p);
}

/* A producer's own counters: its events and ring bytes, the publishes
 * that met a full ring (a lossless subscriber that reads nothing holds
 * it), its command name; a producer that takes the slot next starts at
 * zero. */
Test(stat, producer_counters, .init = setup, .fini = teardown, .timeout = 20)
{
    evb_producer *p;
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "s",
                                   &(evb_consumer_options){.kind = EVB_SUBSCRIBER_LOSSLESS}),
                 0);
    cr_assert_eq(evb_producer_open(&p, bus, "s", &(evb_producer_options){.block_ms = 0}), 0);
    char v[200] = {0};
    uint64_t n = 0;
    int rc;
    while ((rc = evb_publish(p, &(evb_msg){.value = v, .value_len = sizeof v})) == 0)
        n++;
    cr_assert_eq(rc, -EAGAIN, "publish into a held ring: %d", rc);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = sizeof v}), -EAGAIN);
    evb_producer_stat ps[4];
    cr_assert_eq(evb_producer_list(bus, "s", 0, ps, 4), 1);
    cr_expect_eq(ps[0].published, n, "published %llu, counted %llu",
                 (unsigned long long)n, (unsigned long long)ps[0].published);
    cr_expect_eq(ps[0].published_bytes, n * 256, "ring bytes: 56 + 200 each, %llu",
                 (unsigned long long)ps[0].published_bytes);
    cr_expect_eq(ps[0].backpressure, 2, "two publishes met a full ring: %llu",
                 (unsigned long long)ps[0].backpressure);
    cr_expect_eq(ps[0].pid, (uint32_t)getpid());
    char comm[16] = {0};
    FILE *f = fopen("/proc/self/comm", "r");
    cr_assert(f && fgets(comm, sizeof comm, f));
    fclose(f);
    comm[strcspn(comm, "\n")] = 0;
    cr_expect_str_eq(ps[0].comm, comm);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "s", 0, &st), 0);
    cr_expect_eq(st.published, n);
    evb_producer_close(p);
    evb_consumer_close(c);

    cr_assert_eq(evb_producer_open(&p, bus, "s", NULL), 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = 8}), 0);
    cr_assert_eq(evb_producer_list(bus, "s", 0, ps, 4), 1);
    cr_expect_eq(ps[0].published, 1, "the next owner of the slot starts at zero: %llu",
                 (unsigned long long)ps[0].published);
    cr_expect_eq(ps[0].backpressure, 0);
    cr_expect_eq(ps[0].published_bytes, 64);
    evb_producer_close(p);
    cr_expect_eq(evb_producer_list(bus, "s", 0, ps, 4), 0, "a closed producer is listed");
}

/* Lag per reader in events and time, and which reader gates: a lossless
 * subscriber that reads nothing holds the ring (gating, lag = every event,
 * its next event's timestamp from the publish); one that read everything
 * holds nothing. A named consumer that committed one event and closed is
 * still listed, from its cursor file, with its lag. */
Test(stat, reader_lag_gating_and_closed_consumers, .init = setup, .fini = teardown,
     .timeout = 20)
{
    evb_consumer *slow, *fast, *named;
    evb_producer *p;
    evb_consumer_options lo = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    cr_assert_eq(evb_consumer_open(&slow, bus, "s", &lo), 0);
    cr_assert_eq(evb_consumer_open(&fast, bus, "s", &lo), 0);
    cr_assert_eq(evb_consumer_open(&named, bus, "s",
                                   &(evb_consumer_options){.kind = EVB_CONSUMER, .name = "n1",
                                                           .start = EVB_START_EARLIEST}), 0);
    cr_assert_eq(evb_producer_open(&p, bus, "s", NULL), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(evb_publish(p, &(evb_msg){.value = "x", .value_len = 1}), 0);
    clock_gettime(CLOCK_REALTIME, &t1);
    evb_event ev;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(evb_consumer_next(fast, &ev, 1000), 0);
    /* The last event is the application's until the next call. */
    cr_assert_neq(evb_consumer_next(fast, &ev, 0), 0);
    cr_assert_eq(evb_consumer_next(named, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_commit(named), 0);
    evb_consumer_close(named);

    evb_reader_stat rs[4];
    cr_assert_eq(evb_reader_list(bus, "s", 0, rs, 4), 2);
    const evb_reader_stat *rslow = rs[0].lag_events ? &rs[0] : &rs[1];
    const evb_reader_stat *rfast = rs[0].lag_events ? &rs[1] : &rs[0];
    cr_expect_eq(rslow->lag_events, 5);
    cr_expect_eq(rslow->gating, 1, "the reader holding the ring is not marked");
    uint64_t a = (uint64_t)t0.tv_sec * 1000000000u + (uint64_t)t0.tv_nsec;
    uint64_t b = (uint64_t)t1.tv_sec * 1000000000u + (uint64_t)t1.tv_nsec;
    cr_expect(rslow->next_timestamp_ns >= a && rslow->next_timestamp_ns <= b,
              "its next event's time %llu is not the first publish's [%llu, %llu]",
              (unsigned long long)rslow->next_timestamp_ns, (unsigned long long)a,
              (unsigned long long)b);
    cr_expect_eq(rfast->lag_events, 0);
    cr_expect_eq(rfast->gating, 0, "a reader at the tail marked as gating");
    cr_expect_eq(rfast->next_timestamp_ns, 0);

    evb_named_consumer_stat nc[4];
    cr_assert_eq(evb_named_consumer_list(bus, "s", 0, nc, 4), 1);
    cr_expect_str_eq(nc[0].name, "n1");
    cr_expect_eq(nc[0].pid, 0, "a closed consumer shown as open by %u", nc[0].pid);
    cr_expect_eq(nc[0].committed_offset, 1);
    cr_expect_eq(nc[0].lag_events, 4);
    cr_expect_eq(evb_named_consumer_list(bus, "s", 1, nc, 4), -EINVAL);
    evb_producer_close(p);
    evb_consumer_close(slow);
    evb_consumer_close(fast);
}

/* A closed named consumer that never committed past its start, lapped
 * since: its offset is not known, yet its lag in events is never 0 while
 * it is behind (at least the events the ring still holds). */
Test(stat, closed_consumer_lapped_without_offset_still_lags, .init = setup, .fini = teardown)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "l", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "l", NULL), 0);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "nc", .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "l", &co), 0, "%s", evb_last_error());
    evb_consumer_close(c); /* its start is its commit, without an offset */
    for (int i = 0; i < 20000; i++)
        cr_assert_eq(evb_publish(p, &(evb_msg){.value = "xxxxxxxx", .value_len = 8}), 0);
    evb_producer_close(p);
    evb_named_consumer_stat nc[2];
    cr_assert_eq(evb_named_consumer_list(bus, "l", 0, nc, 2), 1);
    cr_expect_gt(nc[0].lag_bytes, 64 << 10);
    cr_expect_gt(nc[0].lag_events, 0, "a lapped consumer shown with no lag in events");
    cr_expect_leq(nc[0].lag_events, 20000);
}

/* In a child: open the named consumer "gone" and die without closing it
 * (a crashed analytics process): its slot gates the ring from where it
 * stood. */
static int gate_and_die(void *arg)
{
    (void)arg;
    evb_bus *b;
    evb_consumer *c;
    if (evb_bus_open(&b, t_bus_dir(), NULL) ||
        evb_consumer_open(&c, b, "s",
                          &(evb_consumer_options){.kind = EVB_CONSUMER, .name = "gone"}))
        return 1;
    _exit(0);
}

/* A producer that does not wait (block_ms 0) frees a dead reader's slot
 * too: before, only a blocked producer's slow path did, so such a
 * producer got -EAGAIN for ever once the ring was full. A live gating
 * reader still holds it. */
Test(stat, no_wait_producer_frees_a_dead_gating_reader, .init = setup, .fini = teardown,
     .timeout = 20)
{
    cr_assert_eq(t_wait_exit(t_spawn(gate_and_die, NULL), 10000), 0);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "s", &(evb_producer_options){.block_ms = 0}), 0);
    char v[200] = {0};
    /* Two rings' worth: the dead reader held the first one full. */
    for (int i = 0; i < 2 * (1 << 20) / 256; i++) {
        int rc = evb_publish(p, &(evb_msg){.value = v, .value_len = sizeof v});
        cr_assert_eq(rc, 0, "publish %d past a dead reader: %d", i, rc);
    }
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "s", 0, &st), 0);
    cr_expect_eq(st.reaped_readers, 1, "reaped %llu", (unsigned long long)st.reaped_readers);

    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "s",
                                   &(evb_consumer_options){.kind = EVB_SUBSCRIBER_LOSSLESS}),
                 0);
    int rc;
    int n = 0;
    while ((rc = evb_publish(p, &(evb_msg){.value = v, .value_len = sizeof v})) == 0)
        n++;
    cr_expect_eq(rc, -EAGAIN, "a live lossless reader holds the ring: %d", rc);
    cr_expect_eq(n, (1 << 20) / 256, "published %d before it held", n);
    evb_consumer_close(c);
    evb_producer_close(p);
}

/* A reader whose next frame is the pad that ends a lap: its lag in time is
 * the age of the first event after the pad (pads carry no timestamp), not
 * unknown. Frames of a 1000-byte value do not divide a 64 KiB lap, so the
 * producer that starts the second lap pads the first one's end. */
Test(stat, lag_time_steps_over_the_lap_end_pad, .init = setup, .fini = teardown,
     .timeout = 20)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "pad", &tc), 0, "%s", evb_last_error());
    evb_consumer *c;
    evb_producer *p;
    cr_assert_eq(evb_consumer_open(&c, bus, "pad",
                                   &(evb_consumer_options){.kind = EVB_SUBSCRIBER_LOSSLESS}),
                 0);
    cr_assert_eq(evb_producer_open(&p, bus, "pad", NULL), 0);
    char v[1000] = {0};
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = sizeof v}), 0);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "pad", 0, &st), 0);
    uint64_t frame = st.tail_position, per_lap = (64 << 10) / frame;
    cr_assert_neq((64 << 10) % frame, 0, "frames of %llu bytes fill a lap exactly",
                  (unsigned long long)frame);
    for (uint64_t i = 1; i < per_lap; i++)
        cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = sizeof v}), 0);
    evb_event ev;
    for (uint64_t i = 0; i < per_lap; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    /* Releases the last one: the cursor stands where the pad will be. */
    cr_assert_eq(evb_consumer_next(c, &ev, 0), -EAGAIN);
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = sizeof v}), 0);
    clock_gettime(CLOCK_REALTIME, &t1);
    cr_assert_eq(evb_partition_stat(bus, "pad", 0, &st), 0);
    cr_assert_eq(st.tail_position, (64 << 10) + frame, "the last event did not start a lap");
    evb_reader_stat rs[2];
    cr_assert_eq(evb_reader_list(bus, "pad", 0, rs, 2), 1);
    cr_assert_eq(rs[0].position, per_lap * frame, "reader at %llu, not at the pad",
                 (unsigned long long)rs[0].position);
    cr_expect_eq(rs[0].lag_events, 1);
    uint64_t a = (uint64_t)t0.tv_sec * 1000000000u + (uint64_t)t0.tv_nsec;
    uint64_t b = (uint64_t)t1.tv_sec * 1000000000u + (uint64_t)t1.tv_nsec;
    cr_expect(rs[0].next_timestamp_ns >= a && rs[0].next_timestamp_ns <= b,
              "next event's time %llu, the one after the pad was published in [%llu, %llu]",
              (unsigned long long)rs[0].next_timestamp_ns, (unsigned long long)a,
              (unsigned long long)b);
    evb_producer_close(p);
    evb_consumer_close(c);
}
