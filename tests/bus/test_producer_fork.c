/*
 * test_producer_fork.c - a producer handle copied into a forked child
 * (evbus.h, "Fork"): the child's publish, batch and claim are refused with
 * -EBUSY before anything shared is written, its close frees only its own
 * memory, and the parent publishes on as if the child had never been:
 * an exclusive producer's tail, a shared one's slot, a stable id's
 * sequences and state file stay the parent's. A claim open at the fork
 * is the parent's too: the child can neither commit, abort nor retype it,
 * nor wait through the handle for disk.
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
    evb_bus_options bo = {.dead_ms = 100, .stall_ms = 400, .data_dir = t_data_dir()};
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

/* The parent's handle P with its claim CL open, and the receipt R of an
 * event P published before it. */
struct open_claim {
    evb_producer *p;
    struct evb_claim cl;
    evb_receipt r;
};

/* In the child: every call through the parent's handle that would write
 * to the ring or wait on it is refused with -EBUSY, the claim open at the
 * fork included (committing it would stamp a frame the parent is still
 * writing; aborting it would pad it under the parent). A bit per call
 * that was not refused so (2 commit, 4 commit with receipt, 8 abort, 16
 * claim, 32 publish, 64 the waits for disk), 0 when all were. */
static int child_finds_claim_open(void *arg)
{
    struct open_claim *oc = arg;
    evb_producer *p = oc->p;
    int bad = 0;
    if (evb_commit(p, &oc->cl) != -EBUSY || !strstr(evb_last_error(), "forked"))
        bad |= 2;
    evb_receipt r;
    if (evb_commit_receipt(p, &oc->cl, &r) != -EBUSY)
        bad |= 4;
    if (evb_abort(p, &oc->cl) != -EBUSY)
        bad |= 8;
    struct evb_claim c;
    if (evb_claim(p, 1, NULL, 0, VLEN, &c) != -EBUSY)
        bad |= 16;
    if (publish(p, 1000, 1) != -EBUSY)
        bad |= 32;
    if (evb_producer_sync(p, 0) != -EBUSY || evb_producer_wait_durable(p, &oc->r, 0) != -EBUSY)
        bad |= 64;
    evb_producer_close(p);
    return bad;
}

/* Read C on until nothing more is committed: each event intact, from the
 * parent (partition 0, the next of *NEXT); the count. */
static uint64_t read_parents(evb_consumer *c, uint64_t *next)
{
    uint64_t got = 0;
    evb_event ev;
    while (evb_consumer_next(c, &ev, 0) == 0) {
        uint32_t who;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &who, &seq), "offset %llu torn",
                  (unsigned long long)ev.offset);
        cr_expect_eq(ev.partition, 0, "an event in partition %u", ev.partition);
        cr_expect_eq(seq, *next, "seq %llu, due %llu", (unsigned long long)seq,
                     (unsigned long long)*next);
        *next = seq + 1;
        got++;
    }
    return got;
}

/* A producer of TOPIC (FLAGS) forks with a claim open: the child's calls
 * all fail, the claim stays open to readers until the parent commits it,
 * and the parent goes on as if there had been no child. */
static void claim_open_at_fork(const char *topic, uint32_t flags)
{
    evb_producer *p;
    evb_producer_options po = {.flags = flags};
    cr_assert_eq(evb_producer_open(&p, bus, topic, &po), 0, "%s", evb_last_error());
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0, "%s", evb_last_error());
    for (uint64_t i = 0; i < 5; i++)
        cr_assert_eq(publish(p, i, 0), 0, "%s", evb_last_error());
    struct open_claim oc = {.p = p};
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 0, 5);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
    cr_assert_eq(evb_publish_receipt(p, &m, &oc.r), 0, "%s", evb_last_error());
    /* Claimed, value not written yet: the child must not make it readable. */
    cr_assert_eq(evb_claim(p, 0, NULL, 0, VLEN, &oc.cl), 0, "%s", evb_last_error());
    int bad = t_wait_exit(t_spawn(child_finds_claim_open, &oc), 10000);
    cr_expect_eq(bad, 0, "the child's calls not refused: %d", bad);
    uint64_t next = 0;
    cr_expect_eq(read_parents(c, &next), 6, "the claim is still open");
    t_value_fill(oc.cl.value, VLEN, 0, 6);
    cr_assert_eq(evb_commit(p, &oc.cl), 0, "%s", evb_last_error());
    for (uint64_t i = 7; i < 10; i++)
        cr_assert_eq(publish(p, i, 0), 0, "%s", evb_last_error());
    cr_expect_eq(read_parents(c, &next), 4);
    cr_expect_eq(next, 10);
    cr_expect_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, topic, 1, &st), 0);
    cr_expect_eq(st.tail_offset, 0, "the child published nothing");
    evb_consumer_close(c);
    evb_producer_close(p);
}

Test(producer_fork, claim_open_at_fork_is_the_parents_exclusive)
{
    claim_open_at_fork("f", EVB_PRODUCER_EXCLUSIVE);
}

Test(producer_fork, claim_open_at_fork_is_the_parents_shared)
{
    claim_open_at_fork("f", 0);
}

/* On a durable topic the child's sync waits are refused too: they count
 * themselves in the ring's header and may lead its fdatasync. */
Test(producer_fork, claim_open_at_fork_is_the_parents_durable)
{
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20, .max_event_bytes = 256,
                           .durability = EVB_DURABILITY_SYNC};
    cr_assert_eq(evb_topic_create(bus, "d", &tc), 0, "%s", evb_last_error());
    claim_open_at_fork("d", EVB_PRODUCER_EXCLUSIVE);
}
