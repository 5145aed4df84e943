/*
 * test_stat.c - the live counters of bus/stat.c: a producer or reader
 * whose process died no longer counts as attached, while what it
 * published still counts as published; a producer's own counters.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
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
