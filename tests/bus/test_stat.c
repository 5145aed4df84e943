/*
 * test_stat.c - the live counters of bus/stat.c: a producer or reader
 * whose process died no longer counts as attached, while what it
 * published still counts as published.
 */
#include <criterion/criterion.h>
#include <string.h>

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
