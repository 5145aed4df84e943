/*
 * test_producer_fork.c - a producer handle copied into a forked child
 * (evbus.h, "Fork"): the child's publish, batch and claim are refused with
 * -EBUSY before anything shared is written, its close frees only its own
 * memory, and the parent publishes on as if the child had never been:
 * an exclusive producer's tail, a shared one's slot, a stable id's
 * sequences and state file stay the parent's.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "t_helpers.h"

#define VLEN 40u
#define STABLE (EVB_PRODUCER_ID_STABLE | 5u)

static evb_bus *bus;

static void setup(void)
{
    evb_bus_options bo = {.dead_ms = 100, .stall_ms = 400};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0, "%s", evb_last_error());
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20, .max_event_bytes = 256};
    cr_assert_eq(evb_topic_create(bus, "f", &tc), 0, "%s", evb_last_error());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(producer_fork, .init = setup, .fini = teardown, .timeout = 60);

static int publish(evb_producer *p, uint64_t seq, int32_t part)
{
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 0, seq);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = part};
    return evb_publish(p, &m);
}

/* In the child: every way to publish through the parent's handle P is
 * refused, naming the fork; then the child closes its copy. 0 when so,
 * else which step went wrong. */
static int child_uses_copy(void *arg)
{
    evb_producer *p = arg;
    if (publish(p, 1000, 0) != -EBUSY)
        return 1;
    if (!strstr(evb_last_error(), "forked"))
        return 2;
    uint8_t v[VLEN] = {0};
    evb_msg m[2] = {{.value = v, .value_len = VLEN, .partition = 1},
                    {.value = v, .value_len = VLEN, .partition = 1}};
    if (evb_publish_batch(p, m, 2) != -EBUSY)
        return 3;
    struct evb_claim c;
    if (evb_claim(p, 0, NULL, 0, VLEN, &c) != -EBUSY)
        return 4;
    evb_producer_close(p);
    return 0;
}

/* The parent's events, read back: SEQ 0.. in order, N of them, none from
 * the child (seq 1000), each intact. */
static void expect_only_parents(uint64_t n)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "f", &co), 0, "%s", evb_last_error());
    uint64_t next[2] = {0, 0}, got = 0;
    evb_event ev;
    while (evb_consumer_next(c, &ev, 0) == 0) {
        uint32_t who;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &who, &seq), "offset %llu torn",
                  (unsigned long long)ev.offset);
        cr_expect_eq(seq, next[ev.partition], "partition %u: seq %llu, due %llu",
                     ev.partition, (unsigned long long)seq,
                     (unsigned long long)next[ev.partition]);
        next[ev.partition] = seq + 1;
        got++;
    }
    cr_expect_eq(got, n);
    evb_consumer_close(c);
}

Test(producer_fork, exclusive_handle_is_refused_in_the_child)
{
    evb_producer *x;
    evb_producer_options xo = {.flags = EVB_PRODUCER_EXCLUSIVE};
    cr_assert_eq(evb_producer_open(&x, bus, "f", &xo), 0, "%s", evb_last_error());
    for (uint64_t i = 0; i < 10; i++)
        cr_assert_eq(publish(x, i, 0), 0);
    cr_expect_eq(t_wait_exit(t_spawn(child_uses_copy, x), 10000), 0);
    /* The child's close let go of nothing: the parent still holds every
     * ring alone, and its own copy of the tail is still the tail. */
    evb_producer *shared;
    cr_assert_eq(evb_producer_open(&shared, bus, "f", NULL), 0);
    cr_expect_eq(publish(shared, 0, 1), -EBUSY);
    evb_producer_close(shared);
    for (uint64_t i = 10; i < 20; i++)
        cr_assert_eq(publish(x, i, 0), 0, "%s", evb_last_error());
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "f", 0, &st), 0);
    cr_expect_eq(st.tail_offset, 20);
    evb_producer_close(x);
    expect_only_parents(20);
}

Test(producer_fork, shared_handle_is_refused_in_the_child)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "f", NULL), 0, "%s", evb_last_error());
    for (uint64_t i = 0; i < 10; i++)
        cr_assert_eq(publish(p, i, 0), 0);
    /* Partition 1 has no slot yet: the child would take one of its own
     * there, and still publish the parent's sequences. */
    cr_expect_eq(t_wait_exit(t_spawn(child_uses_copy, p), 10000), 0);
    /* Still the parent's slot: an exclusive producer is kept out. */
    evb_producer *x;
    evb_producer_options xo = {.flags = EVB_PRODUCER_EXCLUSIVE};
    cr_expect_eq(evb_producer_open(&x, bus, "f", &xo), -EBUSY);
    evb_producer_stat ps[4];
    cr_expect_eq(evb_producer_list(bus, "f", 0, ps, 4), 1);
    cr_expect_eq(ps[0].pid, (uint32_t)getpid());
    cr_expect_eq(evb_producer_list(bus, "f", 1, ps, 4), 0, "the child attached nowhere");
    for (uint64_t i = 10; i < 20; i++)
        cr_assert_eq(publish(p, i, 0), 0);
    evb_producer_close(p);
    expect_only_parents(20);
}

/* A stable id: refused before its state file is touched, so the parent's
 * sequences go on gap-free and a reopen continues after them. */
Test(producer_fork, stable_id_state_is_left_to_the_parent)
{
    evb_producer *p;
    evb_producer_options po = {.producer_id = STABLE};
    cr_assert_eq(evb_producer_open(&p, bus, "f", &po), 0, "%s", evb_last_error());
    for (uint64_t i = 0; i < 5; i++)
        cr_assert_eq(publish(p, i, 0), 0);
    cr_expect_eq(t_wait_exit(t_spawn(child_uses_copy, p), 10000), 0);
    for (uint64_t i = 5; i < 8; i++)
        cr_assert_eq(publish(p, i, 0), 0);
    uint64_t seq = 0;
    cr_expect_eq(evb_producer_last_seq(p, 0, &seq), 0);
    cr_expect_eq(seq, 7);
    evb_producer_close(p);
    cr_assert_eq(evb_producer_open(&p, bus, "f", &po), 0, "%s", evb_last_error());
    cr_expect_eq(evb_producer_last_seq(p, 0, &seq), 0);
    cr_expect_eq(seq, 7, "the state file holds the parent's sequence");
    cr_expect_eq(evb_producer_last_seq(p, 1, &seq), -ENOENT, "and nothing in partition 1");
    evb_producer_close(p);
    /* Every event's producer sequence once, in order. */
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "f", &co), 0);
    evb_event ev;
    uint64_t want = 0;
    while (evb_consumer_next(c, &ev, 0) == 0) {
        cr_expect_eq(ev.partition, 0);
        cr_expect_eq(ev.producer_seq, want, "seq %llu, due %llu",
                     (unsigned long long)ev.producer_seq, (unsigned long long)want);
        want = ev.producer_seq + 1;
    }
    cr_expect_eq(want, 8);
    evb_consumer_close(c);
}

/* A handle the child opens itself is its own (when no exclusive producer
 * is in the way): the check is per handle, not per process. */
static int child_opens_own(void *arg)
{
    (void)arg;
    evb_bus *b;
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), NULL) || evb_producer_open(&p, b, "f", NULL))
        return 1;
    int rc = publish(p, 0, 1);
    evb_producer_close(p);
    evb_bus_close(b);
    return rc ? 2 : 0;
}

Test(producer_fork, child_publishes_through_a_handle_of_its_own)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "f", NULL), 0);
    cr_assert_eq(publish(p, 0, 0), 0);
    cr_expect_eq(t_wait_exit(t_spawn(child_opens_own, NULL), 10000), 0);
    cr_assert_eq(publish(p, 1, 0), 0, "the parent's handle still works");
    evb_producer_close(p);
    expect_only_parents(3);
}
