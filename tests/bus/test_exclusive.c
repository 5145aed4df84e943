/*
 * test_exclusive.c - EVB_PRODUCER_EXCLUSIVE (shm/claim.c X3): the only
 * producer of a topic moves each ring's tail with a plain store. It must
 * keep out every other producer while it lives (and be kept out by them),
 * give its rings back when closed or killed, and deliver like any other.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t_helpers.h"

#define VLEN 40u

static evb_bus *bus;

static void setup(void)
{
    evb_bus_options bo = {.dead_ms = 100, .stall_ms = 400};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0, "%s", evb_last_error());
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20, .max_event_bytes = 256};
    cr_assert_eq(evb_topic_create(bus, "x", &tc), 0, "%s", evb_last_error());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

/* One timeout for the suite: a test's own .timeout beside a suite's leaks
 * 48 bytes in Criterion's runner, which LeakSanitizer fails. */
TestSuite(exclusive, .init = setup, .fini = teardown, .timeout = 120);

static const evb_producer_options excl = {.flags = EVB_PRODUCER_EXCLUSIVE};

static int publish(evb_producer *p, uint32_t who, uint64_t seq, int32_t part)
{
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, who, seq);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = part};
    return evb_publish(p, &m);
}

/* Read every event up to now: each intact, each producer's sequences in
 * order per partition from SEQS on. Returns the count. */
static uint64_t drain_until(evb_consumer *c, uint64_t seqs[][2], uint32_t producers,
                            uint64_t end_ms)
{
    uint64_t n = 0;
    evb_event ev;
    int rc;
    while ((rc = evb_consumer_next(c, &ev, 200)) == 0) {
        if (t_now_ms() > end_ms)
            rc = -ETIMEDOUT;
        uint32_t who;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &who, &seq), "offset %llu torn",
                  (unsigned long long)ev.offset);
        cr_assert_lt(who, producers);
        cr_assert_eq(seq, seqs[who][ev.partition], "producer %u partition %u: %llu, due %llu",
                     who, ev.partition, (unsigned long long)seq,
                     (unsigned long long)seqs[who][ev.partition]);
        seqs[who][ev.partition]++;
        n++;
        if (rc)
            break;
    }
    cr_assert_eq(rc, -ETIMEDOUT, "%s", evb_strerror(rc));
    return n;
}

static uint64_t drain(evb_consumer *c, uint64_t seqs[][2], uint32_t producers)
{
    return drain_until(c, seqs, producers, UINT64_MAX);
}

static evb_consumer *reader(void)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "x", &co), 0, "%s", evb_last_error());
    return c;
}

Test(exclusive, publishes_single_batch_and_claim_like_any_producer)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "x", &excl), 0, "%s", evb_last_error());
    evb_consumer *c = reader();
    uint64_t seqs[1][2] = {{0}};
    uint64_t next[2] = {0};
    for (int round = 0; round < 50; round++) {
        for (int32_t part = 0; part < 2; part++) {
            cr_assert_eq(publish(p, 0, next[part]++, part), 0);
            uint8_t v[4][VLEN];
            evb_msg m[4];
            for (int k = 0; k < 4; k++) {
                t_value_fill(v[k], VLEN, 0, next[part]++);
                m[k] = (evb_msg){.value = v[k], .value_len = VLEN, .partition = part};
            }
            cr_assert_eq(evb_publish_batch(p, m, 4), 4);
            struct evb_claim cl;
            cr_assert_eq(evb_claim(p, part, NULL, 0, VLEN, &cl), 0);
            t_value_fill(cl.value, VLEN, 0, next[part]++);
            cr_assert_eq(evb_commit(p, &cl), 0);
        }
    }
    cr_expect_eq(drain(c, seqs, 1), 600);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "x", 1, &st), 0);
    cr_expect_eq(st.tail_offset, 300, "offsets moved with the tail");
    cr_expect_eq(st.published, 300);
    evb_consumer_close(c);
    evb_producer_close(p);
}

/* Either way round, one producer keeps the other out, with a reason. */
Test(exclusive, keeps_other_producers_out_and_is_kept_out_by_them)
{
    evb_producer *shared, *x, *x2;
    cr_assert_eq(evb_producer_open(&shared, bus, "x", NULL), 0);
    cr_assert_eq(publish(shared, 0, 0, 1), 0); /* holds partition 1 */
    cr_expect_eq(evb_producer_open(&x, bus, "x", &excl), -EBUSY);
    cr_expect(strstr(evb_last_error(), "partition 1") && strstr(evb_last_error(), "pid"),
              "%s", evb_last_error());
    evb_producer_close(shared);

    cr_assert_eq(evb_producer_open(&x, bus, "x", &excl), 0, "%s", evb_last_error());
    cr_expect_eq(evb_producer_open(&x2, bus, "x", &excl), -EBUSY);
    cr_expect(strstr(evb_last_error(), "exclusive producer"), "%s", evb_last_error());
    cr_assert_eq(evb_producer_open(&shared, bus, "x", NULL), 0);
    cr_expect_eq(publish(shared, 1, 0, 0), -EBUSY);
    cr_expect(strstr(evb_last_error(), "exclusive producer (pid"), "%s", evb_last_error());
    /* The holder is this process, and the words say so, not "another". */
    cr_expect(strstr(evb_last_error(), "this process"), "%s", evb_last_error());
    cr_expect(strstr(evb_strerror(-EBUSY), "this process or another"), "%s",
              evb_strerror(-EBUSY));
    cr_expect_eq(publish(x, 0, 0, 0), 0, "the exclusive one publishes on");

    evb_producer_close(x);
    cr_expect_eq(publish(shared, 1, 0, 0), 0, "closed, the rings are shared again");
    evb_producer_close(shared);
    evb_consumer *c = reader();
    uint64_t seqs[2][2] = {{0}};
    cr_expect_eq(drain(c, seqs, 2), 3);
    evb_consumer_close(c);
}

Test(exclusive, unknown_flags_are_refused)
{
    evb_producer *p;
    evb_producer_options o = {.flags = 2};
    cr_expect_eq(evb_producer_open(&p, bus, "x", &o), -EINVAL);
    cr_expect(strstr(evb_last_error(), "0x2"), "%s", evb_last_error());
}

/* A child publishes exclusively and is killed at a crash point: its hold
 * dies with it, its open claim is padded, and a shared producer (and a
 * new exclusive one) carries on; readers see every event it committed. */
struct victim {
    const char *point;
    uint64_t before; /* events published before the killed call */
};

static int excl_child(void *arg)
{
    const struct victim *v = arg;
    setenv("EVB_CRASH_AT", v->point, 1);
    char skip[32];
    snprintf(skip, sizeof skip, "%llu", (unsigned long long)v->before);
    setenv("EVB_CRASH_SKIP", skip, 1);
    evb_bus *b;
    evb_producer *p;
    evb_bus_options bo = {.dead_ms = 100, .stall_ms = 400};
    if (evb_bus_open(&b, t_bus_dir(), &bo) || evb_producer_open(&p, b, "x", &excl))
        return 10;
    for (uint64_t i = 0;; i++)
        if (publish(p, 0, i, 0))
            return 11;
}

static void killed_at(const char *point, bool committed)
{
    struct victim v = {point, 20};
    cr_assert_eq(t_wait_exit(t_spawn(excl_child, &v), 10000), 128 + SIGKILL,
                 "not killed at %s", point);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "x", NULL), 0);
    cr_assert_eq(publish(p, 1, 0, 0), 0, "%s: a shared producer after the death: %s", point,
                 evb_last_error());
    evb_producer_close(p);
    cr_assert_eq(evb_producer_open(&p, bus, "x", &excl), 0, "%s", evb_last_error());
    cr_assert_eq(publish(p, 1, 1, 0), 0);
    evb_producer_close(p);
    evb_consumer *c = reader();
    uint64_t seqs[2][2] = {{0}};
    drain(c, seqs, 2);
    cr_expect_eq(seqs[0][0], committed ? 21u : 20u, "%s: the dead one's events", point);
    cr_expect_eq(seqs[1][0], 2u, "%s: the living ones' events", point);
    evb_consumer_close(c);
}

Test(exclusive, killed_after_its_tail_store_is_padded_and_replaced)
{
    killed_at("claim.after_cas", false);
}

Test(exclusive, killed_between_commit_decision_and_stamp_is_finished)
{
    killed_at("commit.decided", true);
}

Test(exclusive, killed_after_its_commit_lets_go)
{
    killed_at("finish.resolved", true);
}

/*
 * X3 for real: two threads take turns at the topic as fast as they can,
 * one opening exclusive producers, one shared ones, each publishing a few
 * events per open. Whenever both opens succeed at once the tail would be
 * moved by a store and a CAS together: offsets handed out twice, events
 * overwritten. The reader must see every event each thread was told was
 * published, intact and in order.
 */
struct turns {
    _Atomic uint64_t published[2];
    _Atomic uint64_t refused[2]; /* opens or publishes told -EBUSY */
    _Atomic int stop;
    /* A thread's first unexpected code, and what it was doing (asserted by
     * the test thread: Criterion's asserts belong there). */
    int error[2];
    char what[2][160];
};

static void *take_turns(void *arg, uint32_t who)
{
    struct turns *t = arg;
    uint64_t seq = 0;
    /* Acquire: the test's stop after it saw enough. */
    while (!atomic_load_explicit(&t->stop, memory_order_acquire)) {
        evb_producer *p;
        evb_producer_options o = {.block_ms = -1, .flags = who ? 0 : EVB_PRODUCER_EXCLUSIVE};
        int rc = evb_producer_open(&p, bus, "x", &o);
        if (rc) {
            if (rc != -EBUSY) {
                t->error[who] = rc;
                snprintf(t->what[who], sizeof t->what[who], "open: %s", evb_last_error());
                return NULL;
            }
            /* Relaxed: a count for the log. */
            atomic_fetch_add_explicit(&t->refused[who], 1, memory_order_relaxed);
            continue;
        }
        for (int k = 0; k < 8; k++) {
            rc = publish(p, who, seq, 0);
            if (rc == -EBUSY) {
                /* Relaxed: a count for the log. */
                atomic_fetch_add_explicit(&t->refused[who], 1, memory_order_relaxed);
                break;
            }
            if (rc) {
                t->error[who] = rc;
                snprintf(t->what[who], sizeof t->what[who], "publish: %s", evb_last_error());
                evb_producer_close(p);
                return NULL;
            }
            seq++;
            /* Release: the count after the event. */
            atomic_store_explicit(&t->published[who], seq, memory_order_release);
        }
        evb_producer_close(p);
    }
    return NULL;
}

static void *turns_excl(void *arg)
{
    return take_turns(arg, 0);
}

static void *turns_shared(void *arg)
{
    return take_turns(arg, 1);
}

Test(exclusive, exclusive_and_shared_opens_racing_never_share_a_ring)
{
    static struct turns t;
    memset(&t, 0, sizeof t);
    evb_consumer *c = reader();
    pthread_t a, b;
    cr_assert_eq(pthread_create(&a, NULL, turns_excl, &t), 0);
    cr_assert_eq(pthread_create(&b, NULL, turns_shared, &t), 0);
    uint64_t seqs[2][2] = {{0}};
    drain_until(c, seqs, 2, t_now_ms() + 1500);
    /* Release: pairs with the threads' acquire. */
    atomic_store_explicit(&t.stop, 1, memory_order_release);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    for (int who = 0; who < 2; who++)
        cr_assert_eq(t.error[who], 0, "producer %d: %d %s", who, t.error[who], t.what[who]);
    drain(c, seqs, 2);
    for (int who = 0; who < 2; who++)
        cr_expect_eq(seqs[who][0], atomic_load_explicit(&t.published[who], memory_order_acquire),
                     "producer %d: read %llu", who, (unsigned long long)seqs[who][0]);
    cr_log_info("exclusive %llu, shared %llu events; refused %llu and %llu times",
                (unsigned long long)seqs[0][0], (unsigned long long)seqs[1][0],
                (unsigned long long)atomic_load(&t.refused[0]),
                (unsigned long long)atomic_load(&t.refused[1]));
    cr_expect_gt(seqs[0][0], 0);
    cr_expect_gt(seqs[1][0], 0);
    evb_consumer_close(c);
}
