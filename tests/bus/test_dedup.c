/*
 * test_dedup.c - duplicate suppression (evbus.h, "Duplicate suppression";
 * bus/producer_state.c, bus/dedup.c): a restartable producer killed with
 * SIGKILL mid-stream republishes its last 1,000 events, on a ring-only
 * topic and on a durable one rebuilt from disk, and a deduplicating reader
 * processes each event once; a named consumer keeps its tables across its
 * own death; the table bound; claims a crash left open; bad input.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dedup_format.h"
#include "producer_state_format.h"
#include "t_helpers.h"

#define ID (EVB_PRODUCER_ID_STABLE | 0x1234u)
#define REPUB 1000u

static evb_bus *bus;

static evb_bus *open_bus(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *b;
    cr_assert_eq(evb_bus_open(&b, t_bus_dir(), &o), 0, "bus: %s", evb_last_error());
    return b;
}

static void setup(void)
{
    bus = open_bus();
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(dedup, .init = setup, .fini = teardown, .timeout = 60);

static void create(const char *topic, uint32_t durability)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20, .segment_bytes = 1 << 20,
                           .durability = durability};
    cr_assert_eq(evb_topic_create(bus, topic, &tc), 0, "create: %s", evb_last_error());
}

/* Close the bus, remove its tmpfs directory (a reboot), open it again. */
static void reboot(void)
{
    evb_bus_close(bus);
    t_rmtree(t_bus_dir());
    bus = open_bus();
}

static evb_producer *stable(evb_bus *b, const char *topic, uint32_t id)
{
    evb_producer_options po = {.block_ms = -1, .producer_id = id};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, b, topic, &po), 0, "producer 0x%x: %s", id,
                 evb_last_error());
    return p;
}

/* An event whose value is V; with SEQ, published with that sequence. */
static int pub(evb_producer *p, uint64_t v, bool seq)
{
    evb_msg m = {.value = &v, .value_len = sizeof v, .partition = 0,
                 .flags = seq ? EVB_MSG_SEQ : 0, .seq = v};
    return evb_publish(p, &m);
}

struct child {
    const char *topic;
    struct t_shared *sh;
};

/* Publish 0, 1, 2, ... (value == sequence) until killed, or until
 * PUB_MAX and then wait for the kill; val[0] counts the publishes that
 * returned. PUB_MAX keeps the ring (16,384 of these frames) from lapping
 * into the range republished after the kill: a reader from the earliest
 * starts at the oldest whole lap, and on a loaded machine the publisher
 * ran 16 k events before its kill, so that lap began inside the
 * republished range (it failed once so). */
#define PUB_MAX 12000u
static int publisher(void *arg)
{
    struct child *a = arg;
    evb_bus *b;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_producer_options po = {.block_ms = -1, .producer_id = ID};
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_producer_open(&p, b, a->topic, &po))
        return 10;
    for (uint64_t i = 0; i < PUB_MAX; i++) {
        if (pub(p, i, false))
            return 11;
        atomic_store(&a->sh->val[0], i + 1);
    }
    for (;;)
        pause();
}

static pid_t kill_mid_stream(const char *topic, uint64_t at_least, uint64_t *acked)
{
    struct child a = {topic, t_shared_new()};
    pid_t pid = t_spawn(publisher, &a);
    cr_assert(t_wait_count(&a.sh->val[0], at_least, 30000), "publisher stalled");
    kill(pid, SIGKILL);
    cr_assert_eq(t_wait_exit(pid, 5000), 128 + SIGKILL);
    *acked = atomic_load(&a.sh->val[0]);
    return pid;
}

/* Reopen the id, check it knows what the log holds, republish its last
 * REPUB events with their sequences, then NEW more without one (their
 * sequences must go on after the log's). Returns the last value. */
static uint64_t republish(const char *topic, uint64_t acked, uint64_t more)
{
    evb_producer *p = stable(bus, topic, ID);
    uint64_t last;
    cr_assert_eq(evb_producer_last_seq(p, 0, &last), 0);
    /* Every acknowledged publish is there; one more may be, unacknowledged. */
    cr_assert(last + 1 >= acked && last <= acked, "last seq %llu, %llu acknowledged",
              (unsigned long long)last, (unsigned long long)acked);
    for (uint64_t v = last + 1 - REPUB; v <= last; v++)
        cr_assert_eq(pub(p, v, true), 0, "republish %llu", (unsigned long long)v);
    uint64_t again;
    cr_assert_eq(evb_producer_last_seq(p, 0, &again), 0);
    cr_assert_eq(again, last, "a republish does not move the sequence");
    for (uint64_t v = last + 1; v <= last + more; v++)
        cr_assert_eq(pub(p, v, false), 0);
    evb_producer_close(p);
    return last + more;
}

/* Read everything up to value LAST: with DEDUP each value once, in order,
 * sequence == value; returns the events delivered, *FIRST the value of the
 * first, and *DROPPED. */
static uint64_t read_all(const char *topic, uint32_t flags, uint64_t last, uint64_t *first,
                         uint64_t *dropped)
{
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                               .flags = flags};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, topic, &co), 0, "consumer: %s", evb_last_error());
    uint64_t n = 0, want = 0;
    *first = 0;
    for (;;) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 2000);
        cr_assert_eq(rc, 0, "after %llu events: %s", (unsigned long long)n, evb_strerror(rc));
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_eq(ev.producer_seq, v);
        cr_assert_eq(ev.producer_id, ID);
        if (n == 0)
            want = *first = v;
        if (flags & EVB_CONSUMER_DEDUP)
            cr_assert_eq(v, want, "event %llu delivered where %llu was due",
                         (unsigned long long)v, (unsigned long long)want);
        want = v + 1;
        n++;
        if (v == last && (flags & EVB_CONSUMER_DEDUP))
            break;
        if (v == last && n > last - *first + 1)
            break;
    }
    *dropped = 0;
    if (flags & EVB_CONSUMER_DEDUP)
        cr_assert_eq(evb_consumer_dedup_stat(c, -1, dropped, NULL), 0);
    else
        cr_assert_eq(evb_consumer_dedup_stat(c, -1, dropped, NULL), -EINVAL);
    evb_consumer_close(c);
    return n;
}

static void republish_after_crash(const char *topic, bool rebuild)
{
    uint64_t acked;
    kill_mid_stream(topic, 3000, &acked);
    if (rebuild) {
        /* The dead child was the flusher: an open finishes its flush,
         * then the tmpfs side goes (a reboot). */
        evb_producer *p;
        cr_assert_eq(evb_producer_open(&p, bus, topic, NULL), 0);
        evb_producer_close(p);
        reboot();
    }
    uint64_t last = republish(topic, acked, 500);
    uint64_t dropped, first;
    uint64_t n = read_all(topic, EVB_CONSUMER_DEDUP, last, &first, &dropped);
    /* The disk log holds it all; the ring at least the republished range
     * and what it copies. */
    cr_assert(rebuild ? first == 0 : first + REPUB + 499 <= last,
              "first event %llu of %llu", (unsigned long long)first,
              (unsigned long long)last);
    cr_assert_eq(n, last - first + 1);
    cr_assert_eq(dropped, REPUB);
    /* Without the option the copies are there to see. */
    cr_assert_eq(read_all(topic, 0, last, &first, &dropped), last - first + 1 + REPUB);
}

Test(dedup, republish_after_sigkill)
{
    create("t", EVB_DURABILITY_NONE);
    republish_after_crash("t", false);
}

Test(dedup, republish_after_rebuild_from_disk)
{
    create("d", EVB_DURABILITY_ASYNC);
    republish_after_crash("d", true);
}

/* ---- a named consumer's tables survive its own death ---- */

struct reader {
    const char *name;
    uint64_t n;
    struct t_shared *sh;
};

/* Process N events as consumer NAME, commit, say so, wait to be killed. */
static int named_reader(void *arg)
{
    struct reader *a = arg;
    evb_bus *b;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = a->name,
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_consumer_open(&c, b, "n", &co))
        return 10;
    for (uint64_t i = 0; i < a->n; i++) {
        evb_event ev;
        if (evb_consumer_next(c, &ev, 5000))
            return 11;
    }
    if (evb_consumer_commit(c))
        return 12;
    atomic_store(&a->sh->done, 1);
    for (;;)
        pause();
}

/* NAME reopened with DEDUP: the next event must be FIRST, and FIRST..LAST
 * come once each; returns the duplicates it dropped. */
static uint64_t resume(const char *name, uint64_t first, uint64_t last)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = name,
                               .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "n", &co), 0, "reopen: %s", evb_last_error());
    for (uint64_t want = first; want <= last; want++) {
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 2000), 0, "event %llu",
                     (unsigned long long)want);
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_eq(v, want, "got %llu, expected %llu", (unsigned long long)v,
                     (unsigned long long)want);
    }
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 100), -ETIMEDOUT, "an event more");
    uint64_t dropped;
    cr_assert_eq(evb_consumer_dedup_stat(c, 0, &dropped, NULL), 0);
    evb_consumer_close(c);
    return dropped;
}

static void publish_range(evb_producer *p, uint64_t from, uint64_t to, bool seq)
{
    for (uint64_t v = from; v <= to; v++)
        cr_assert_eq(pub(p, v, seq), 0);
}

static void named_restart(uint32_t durability)
{
    create("n", durability);
    evb_producer *p = stable(bus, "n", ID);
    publish_range(p, 0, 1999, false);
    cr_assert_eq(evb_producer_sync(p, 5000), 0);
    struct reader a = {"c", 2000, t_shared_new()};
    pid_t pid = t_spawn(named_reader, &a);
    cr_assert(t_wait_count(&a.sh->done, 1, 20000), "reader did not commit");
    kill(pid, SIGKILL);
    cr_assert_eq(t_wait_exit(pid, 5000), 128 + SIGKILL);
    /* The producer crashes too, unsure of its last 1,000: it resends
     * them, then goes on. */
    publish_range(p, 1000, 1999, true);
    publish_range(p, 2000, 2099, false);
    evb_producer_close(p);
    cr_assert_eq(resume("c", 2000, 2099), REPUB);
}

Test(dedup, named_consumer_keeps_its_table_across_sigkill)
{
    named_restart(EVB_DURABILITY_NONE);
}

Test(dedup, named_consumer_keeps_its_table_on_a_durable_topic)
{
    named_restart(EVB_DURABILITY_ASYNC);
}

/* A named consumer's table file has no lock of its own: the cursor file's
 * owner decides who may write it. So a second handle of the name in this
 * process, on another bus handle even, is refused before it loads or
 * saves a table, on a durable topic too (cursor and table in the data
 * directory), and the first handle's table keeps dropping copies. */
Test(dedup, a_second_handle_of_a_name_in_this_process_is_refused)
{
    create("n", EVB_DURABILITY_ASYNC);
    evb_producer *p = stable(bus, "n", ID);
    publish_range(p, 0, 9, false);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "once",
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *a, *b = NULL;
    cr_assert_eq(evb_consumer_open(&a, bus, "n", &co), 0, "%s", evb_last_error());
    evb_bus *other = open_bus();
    cr_expect_eq(evb_consumer_open(&b, other, "n", &co), -EBUSY);
    cr_expect_null(b);
    cr_expect(strstr(evb_last_error(), "this process"), "%s", evb_last_error());
    evb_event ev;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(evb_consumer_next(a, &ev, 2000), 0);
    cr_assert_eq(evb_consumer_commit(a), 0);
    /* Copies of 5..9 and one new event: only the new one comes. */
    publish_range(p, 5, 9, true);
    publish_range(p, 10, 10, false);
    evb_producer_close(p);
    cr_assert_eq(evb_consumer_next(a, &ev, 2000), 0);
    uint64_t v;
    memcpy(&v, ev.value, sizeof v);
    cr_expect_eq(v, 10u);
    cr_assert_eq(evb_consumer_commit(a), 0);
    evb_consumer_close(a);
    /* Closed: the name is free, and it resumes after its commit. */
    co.start = EVB_START_DEFAULT;
    cr_assert_eq(evb_consumer_open(&b, other, "n", &co), 0, "%s", evb_last_error());
    cr_expect_eq(evb_consumer_next(b, &ev, 100), -ETIMEDOUT);
    evb_consumer_close(b);
    evb_bus_close(other);
}

/* Killed between saving the table and storing the cursor: the cursor
 * stays at the old commit, the table it covers is the old one, so what
 * was not committed comes again (at-least-once) and copies of what was
 * are still dropped. */
static int commit_dies(void *arg)
{
    (void)arg;
    setenv("EVB_CRASH_AT", "commit.after_dedup", 1);
    setenv("EVB_CRASH_SKIP", "1", 1);
    evb_bus *b;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "k",
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_consumer_open(&c, b, "n", &co))
        return 10;
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 0; i < 100; i++) {
            evb_event ev;
            if (evb_consumer_next(c, &ev, 5000))
                return 11;
        }
        evb_consumer_commit(c); /* the second one dies */
    }
    return 12;
}

Test(dedup, commit_killed_between_table_and_cursor)
{
    create("n", EVB_DURABILITY_NONE);
    /* 0..99 from one producer, 100..199 from another, so the events read
     * again after the crash cannot rebuild the first one's entry. */
    evb_producer *p = stable(bus, "n", ID);
    publish_range(p, 0, 99, false);
    evb_producer *q = stable(bus, "n", ID + 1);
    publish_range(q, 100, 199, true);
    evb_producer_close(q);
    pid_t pid = t_spawn(commit_dies, NULL);
    cr_assert_eq(t_wait_exit(pid, 10000), 128 + SIGKILL);
    publish_range(p, 0, 99, true); /* copies of committed events */
    publish_range(p, 200, 209, false);
    evb_producer_close(p);
    /* 100..199 were read but their commit died: they come again. */
    cr_assert_eq(resume("k", 100, 209), 100);
}

/* ---- the bound ---- */

Test(dedup, table_forgets_the_least_recent_producer_beyond_its_bound)
{
    create("b", EVB_DURABILITY_NONE);
    uint32_t n = EVB_DEDUP_PRODUCERS + 1;
    for (uint32_t k = 0; k < n; k++) {
        evb_producer *p = stable(bus, "b", EVB_PRODUCER_ID_STABLE + k);
        cr_assert_eq(pub(p, 0, false), 0);
        evb_producer_close(p);
    }
    /* The first producer was evicted by the last: its copy gets through
     * (and evicts the second); the last one's is dropped. */
    evb_producer *first = stable(bus, "b", EVB_PRODUCER_ID_STABLE);
    cr_assert_eq(pub(first, 0, true), 0);
    evb_producer_close(first);
    evb_producer *lastp = stable(bus, "b", EVB_PRODUCER_ID_STABLE + n - 1);
    cr_assert_eq(pub(lastp, 0, true), 0);
    evb_producer_close(lastp);

    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                               .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "b", &co), 0);
    uint32_t got = 0;
    evb_event ev;
    while (evb_consumer_next(c, &ev, 200) == 0)
        got++;
    uint64_t dropped, evicted;
    cr_assert_eq(evb_consumer_dedup_stat(c, 0, &dropped, &evicted), 0);
    cr_expect_eq(got, n + 1, "delivered %u of %u", got, n + 2);
    cr_expect_eq(dropped, 1u);
    cr_expect_eq(evicted, 2u);
    evb_consumer_close(c);
}

/* ---- claims a crash left open ---- */

struct dying {
    const char *point;
    struct t_shared *sh;
};

/* Publish 10 events, then die at POINT inside the 11th. */
static int dying_stable(void *arg)
{
    struct dying *a = arg;
    setenv("EVB_CRASH_AT", a->point, 1);
    setenv("EVB_CRASH_SKIP", "10", 1);
    evb_bus *b;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_producer_options po = {.block_ms = -1, .producer_id = ID};
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_producer_open(&p, b, "c", &po))
        return 10;
    for (uint64_t i = 0; i < 11; i++)
        if (pub(p, i, false))
            return 11;
    return 12;
}

/* After a death at POINT the reopened id says the log ends at LAST, and
 * its next event gets LAST + 1. */
static void claim_left_open(const char *point, uint64_t last)
{
    create("c", EVB_DURABILITY_NONE);
    struct dying a = {point, t_shared_new()};
    pid_t pid = t_spawn(dying_stable, &a);
    cr_assert_eq(t_wait_exit(pid, 10000), 128 + SIGKILL, "no crash at %s", point);
    evb_producer *p = stable(bus, "c", ID);
    uint64_t seq;
    cr_assert_eq(evb_producer_last_seq(p, 0, &seq), 0);
    cr_assert_eq(seq, last, "%s: last seq %llu, expected %llu", point,
                 (unsigned long long)seq, (unsigned long long)last);
    cr_assert_eq(pub(p, 100, false), 0);
    evb_producer_close(p);
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "c", &co), 0);
    evb_event ev;
    uint64_t n = 0;
    while (evb_consumer_next(c, &ev, 500) == 0) {
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_eq(ev.producer_seq, v == 100 ? last + 1 : v);
        n++;
    }
    cr_assert_eq(n, last + 2);
    evb_consumer_close(c);
}

Test(dedup, claim_killed_before_its_position_is_known)
{
    claim_left_open("claim.after_cas", 9);
}

Test(dedup, claim_killed_before_commit_is_padded)
{
    claim_left_open("commit.before_stamp", 9);
}

Test(dedup, claim_killed_after_commit_counts)
{
    claim_left_open("finish.after_cas", 10);
}

/* ---- bad input ---- */

Test(dedup, ids_below_the_stable_range_are_refused)
{
    create("x", EVB_DURABILITY_NONE);
    evb_producer *p;
    evb_producer_options po = {.producer_id = 1};
    cr_assert_eq(evb_producer_open(&p, bus, "x", &po), -EINVAL);
    cr_assert(strstr(evb_last_error(), "stable id"), "%s", evb_last_error());
    po.producer_id = EVB_PRODUCER_ID_STABLE - 1;
    cr_assert_eq(evb_producer_open(&p, bus, "x", &po), -EINVAL);
    /* An auto producer cannot choose sequences. */
    cr_assert_eq(evb_producer_open(&p, bus, "x", NULL), 0);
    cr_assert_eq(pub(p, 5, true), -EINVAL);
    uint64_t seq;
    cr_assert_eq(evb_producer_last_seq(p, 0, &seq), -ENOENT);
    cr_assert_eq(pub(p, 5, false), 0);
    cr_assert_eq(evb_producer_last_seq(p, 0, &seq), 0);
    cr_assert_eq(seq, 0u);
    cr_assert_eq(evb_producer_last_seq(p, 1, &seq), -EINVAL);
    evb_producer_close(p);
}

static int open_busy(void *arg)
{
    (void)arg;
    evb_bus *b;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_producer_options po = {.producer_id = ID};
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), &o))
        return 10;
    return evb_producer_open(&p, b, "x", &po) == -EBUSY ? 0 : 11;
}

Test(dedup, a_stable_id_has_one_live_handle)
{
    create("x", EVB_DURABILITY_NONE);
    evb_producer *p = stable(bus, "x", ID);
    evb_producer *q;
    evb_producer_options po = {.producer_id = ID};
    cr_assert_eq(evb_producer_open(&q, bus, "x", &po), -EBUSY);
    cr_assert_eq(t_wait_exit(t_spawn(open_busy, NULL), 10000), 0, "other process got it");
    /* Another topic, another id: the same number is free there. */
    create("y", EVB_DURABILITY_NONE);
    evb_producer *r = stable(bus, "y", ID);
    evb_producer_close(r);
    publish_range(p, 0, 9, false);
    evb_producer_close(p);
    /* Reopened, it goes on: no sequence is handed out twice. */
    p = stable(bus, "x", ID);
    uint64_t seq;
    cr_assert_eq(evb_producer_last_seq(p, 0, &seq), 0);
    cr_assert_eq(seq, 9u);
    evb_msg m = {.value = &seq, .value_len = sizeof seq, .flags = EVB_MSG_SEQ,
                 .seq = EVB_SEQ_LIMIT};
    cr_assert_eq(evb_publish(p, &m), -EINVAL);
    m.seq = EVB_SEQ_LIMIT - 1;
    cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
    /* The state it leaves is accepted again. */
    p = stable(bus, "x", ID);
    cr_assert_eq(evb_producer_last_seq(p, 0, &seq), 0);
    cr_assert_eq(seq, EVB_SEQ_LIMIT - 1);
    cr_assert_eq(pub(p, 1, false), -EOVERFLOW, "a sequence past 2^63");
    evb_producer_close(p);
}

static void damage(const char *path)
{
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0, "%s", path);
    cr_assert_eq(pwrite(fd, "garbage!", 8, 0), 8);
    close(fd);
}

Test(dedup, a_damaged_producer_state_is_refused)
{
    create("x", EVB_DURABILITY_NONE);
    evb_producer *p = stable(bus, "x", ID);
    evb_producer_close(p);
    char path[512];
    snprintf(path, sizeof path, "%s/x/producers/%08x.seq", t_bus_dir(), ID);
    damage(path);
    evb_producer_options po = {.producer_id = ID};
    cr_assert_eq(evb_producer_open(&p, bus, "x", &po), -EBADMSG);
    cr_assert(strstr(evb_last_error(), ".seq") && strstr(evb_last_error(), "magic"), "%s",
              evb_last_error());
}

Test(dedup, a_damaged_table_file_is_refused_and_nothing_is_lost)
{
    create("n", EVB_DURABILITY_NONE);
    evb_producer *p = stable(bus, "n", ID);
    publish_range(p, 0, 9, false);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c",
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "n", &co), 0);
    evb_event ev;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_consumer_close(c);
    char path[512];
    snprintf(path, sizeof path, "%s/n/consumers/c.dup", t_bus_dir());
    damage(path);
    co.start = EVB_START_DEFAULT;
    cr_assert_eq(evb_consumer_open(&c, bus, "n", &co), -EBADMSG);
    cr_assert(strstr(evb_last_error(), "c.dup"), "%s", evb_last_error());
    /* Its cursor is intact: without the option it resumes at 5. */
    co.flags = 0;
    cr_assert_eq(evb_consumer_open(&c, bus, "n", &co), 0);
    for (uint64_t want = 5; want < 10; want++) {
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_eq(v, want);
    }
    evb_consumer_close(c);
    evb_producer_close(p);
}

/* A damaged slot (count or crc), not just the header. */
Test(dedup, a_damaged_table_is_refused)
{
    create("n", EVB_DURABILITY_NONE);
    evb_producer *p = stable(bus, "n", ID);
    publish_range(p, 0, 9, false);
    evb_producer_close(p);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c",
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "n", &co), 0);
    evb_event ev;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_consumer_close(c);
    char path[512];
    snprintf(path, sizeof path, "%s/n/consumers/c.dup", t_bus_dir());
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    /* Both slots' first entry seq. */
    uint64_t junk = 3;
    off_t e0 = EVB_DUP_HDR_BYTES + EVB_DUP_SLOT_HDR_BYTES + 8;
    cr_assert_eq(pwrite(fd, &junk, 8, e0), 8);
    cr_assert_eq(pwrite(fd, &junk, 8, e0 + EVB_DUP_SLOT_BYTES), 8);
    close(fd);
    co.start = EVB_START_DEFAULT;
    cr_assert_eq(evb_consumer_open(&c, bus, "n", &co), -EBADMSG);
    cr_assert(strstr(evb_last_error(), "check") && strstr(evb_last_error(), "c.dup"), "%s",
              evb_last_error());
}

/* A state or table file of the wrong kind is refused, never followed or
 * waited on (shm/safe_open.c). */
Test(dedup, files_of_the_wrong_kind_are_refused)
{
    create("x", EVB_DURABILITY_NONE);
    evb_producer *p = stable(bus, "x", ID);
    evb_producer_close(p);
    char path[512];
    snprintf(path, sizeof path, "%s/x/producers/%08x.seq", t_bus_dir(), ID);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkfifo(path, 0600), 0);
    evb_producer_options po = {.producer_id = ID};
    cr_assert_eq(evb_producer_open(&p, bus, "x", &po), -EMEDIUMTYPE, "%s", evb_last_error());

    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c", .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "x", &co), 0);
    evb_consumer_close(c);
    snprintf(path, sizeof path, "%s/x/consumers/c.dup", t_bus_dir());
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    cr_assert_eq(evb_consumer_open(&c, bus, "x", &co), -EMEDIUMTYPE, "%s", evb_last_error());
}

/* A seek asks to see events again: it forgets the partition's table. */
Test(dedup, a_seek_replays_what_the_table_had_seen)
{
    create("s", EVB_DURABILITY_NONE);
    evb_producer *p = stable(bus, "s", ID);
    publish_range(p, 0, 9, false);
    publish_range(p, 5, 9, true);
    evb_producer_close(p);
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                               .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "s", &co), 0);
    evb_event ev;
    int n = 0;
    while (evb_consumer_next(c, &ev, 200) == 0)
        n++;
    cr_assert_eq(n, 10);
    cr_assert_eq(evb_consumer_seek(c, 0, EVB_START_OFFSET, 3), 0);
    n = 0;
    while (evb_consumer_next(c, &ev, 200) == 0)
        n++;
    cr_assert_eq(n, 7, "offsets 3..9 again, then the copies of 5..9 dropped");
    uint64_t dropped;
    cr_assert_eq(evb_consumer_dedup_stat(c, -1, &dropped, NULL), 0);
    cr_assert_eq(dropped, 10u);
    evb_consumer_close(c);
}

/* Random bytes over a dedup file's tables or a producer state file's
 * entries: every open either works or fails with a message, never
 * crashes (ASan runs say so) or hangs, and what opens still reads and
 * publishes. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static void scribble(const char *path, off_t from, size_t len, uint64_t *s)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0, "%s", path);
    for (int k = 0; k < 8; k++) {
        uint64_t w = rnd(s);
        off_t at = from + (off_t)(rnd(s) % (len - 8)) / 8 * 8;
        /* Small numbers too: counts and positions that pass some checks. */
        if (k & 1)
            w &= 0xff;
        cr_assert_eq(pwrite(fd, &w, sizeof w, at), (ssize_t)sizeof w);
    }
    close(fd);
}

Test(dedup, random_bytes_in_the_files_give_an_answer)
{
    create("r", EVB_DURABILITY_NONE);
    evb_producer *p = stable(bus, "r", ID);
    publish_range(p, 0, 99, false);
    evb_producer_close(p);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c",
                               .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "r", &co), 0);
    evb_event ev;
    for (int i = 0; i < 50; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_consumer_close(c);
    co.start = EVB_START_DEFAULT;
    char dup[512], seq[512];
    snprintf(dup, sizeof dup, "%s/r/consumers/c.dup", t_bus_dir());
    snprintf(seq, sizeof seq, "%s/r/producers/%08x.seq", t_bus_dir(), ID);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int opened = 0, refused = 0;
    for (int round = 0; round < 100; round++) {
        scribble(dup, EVB_DUP_HDR_BYTES, 2 * EVB_DUP_SLOT_BYTES, &s);
        int rc = evb_consumer_open(&c, bus, "r", &co);
        cr_assert(rc == 0 || rc == -EBADMSG, "round %d: %s", round, evb_strerror(rc));
        if (rc == 0) {
            opened++;
            while (evb_consumer_next(c, &ev, 0) == 0)
                ;
            evb_consumer_close(c);
        } else {
            refused++;
            cr_assert(strstr(evb_last_error(), "c.dup"), "%s", evb_last_error());
        }
    }
    cr_assert_gt(refused, 0, "random tables never refused");
    for (int round = 0; round < 10; round++) {
        scribble(seq, EVB_PST_HDR_BYTES, EVB_PST_ENTRY_BYTES, &s);
        evb_producer_options po = {.block_ms = -1, .producer_id = ID};
        int rc = evb_producer_open(&p, bus, "r", &po);
        cr_assert(rc == 0 || rc == -EBADMSG || rc == -EINVAL, "round %d: %s", round,
                  evb_strerror(rc));
        if (rc == 0) {
            cr_assert_eq(pub(p, 0, false), 0);
            evb_producer_close(p);
        }
    }
}

/* ---- sequences are per partition ---- */

#define PARTS 4u

/* Value i goes to partition i % PARTS, so its sequence there is i / PARTS. */
static int spread_publisher(void *arg)
{
    struct child *a = arg;
    evb_bus *b;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_producer_options po = {.block_ms = -1, .producer_id = ID};
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_producer_open(&p, b, a->topic, &po))
        return 10;
    for (uint64_t i = 0;; i++) {
        evb_msg m = {.value = &i, .value_len = sizeof i, .partition = (int32_t)(i % PARTS)};
        if (evb_publish(p, &m))
            return 11;
        atomic_store(&a->sh->val[0], i + 1);
    }
}

Test(dedup, each_partition_keeps_its_own_sequence)
{
    evb_topic_config tc = {.partitions = PARTS, .ring_bytes = 1 << 20,
                           .segment_bytes = 1 << 20, .durability = EVB_DURABILITY_ASYNC};
    cr_assert_eq(evb_topic_create(bus, "m", &tc), 0);
    struct child a = {"m", t_shared_new()};
    pid_t pid = t_spawn(spread_publisher, &a);
    cr_assert(t_wait_count(&a.sh->val[0], 4000, 30000), "publisher stalled");
    kill(pid, SIGKILL);
    cr_assert_eq(t_wait_exit(pid, 5000), 128 + SIGKILL);
    uint64_t acked = atomic_load(&a.sh->val[0]);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "m", NULL), 0);
    evb_producer_close(p);
    reboot();
    p = stable(bus, "m", ID);
    uint64_t top = 0;
    for (uint32_t part = 0; part < PARTS; part++) {
        uint64_t last;
        cr_assert_eq(evb_producer_last_seq(p, part, &last), 0);
        uint64_t v = last * PARTS + part;
        cr_assert(v + PARTS >= acked && v <= acked, "partition %u: last seq %llu, %llu acked",
                  part, (unsigned long long)last, (unsigned long long)acked);
        top = v > top ? v : top;
        /* The last 100 of this partition again, with their sequences. */
        for (uint64_t s = last - 99; s <= last; s++) {
            uint64_t val = s * PARTS + part;
            evb_msg m = {.value = &val, .value_len = sizeof val, .partition = (int32_t)part,
                         .flags = EVB_MSG_SEQ, .seq = s};
            cr_assert_eq(evb_publish(p, &m), 0);
        }
    }
    evb_producer_close(p);
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                               .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "m", &co), 0);
    uint8_t *seen = calloc(top + 1, 1);
    uint64_t n = 0;
    evb_event ev;
    while (evb_consumer_next(c, &ev, 500) == 0) {
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_leq(v, top);
        cr_assert_eq(ev.partition, v % PARTS);
        cr_assert_eq(ev.producer_seq, v / PARTS);
        cr_assert_eq(seen[v]++, 0, "value %llu twice", (unsigned long long)v);
        n++;
    }
    cr_assert_eq(n, top + 1, "every value once: %llu of %llu", (unsigned long long)n,
                 (unsigned long long)(top + 1));
    uint64_t dropped;
    cr_assert_eq(evb_consumer_dedup_stat(c, -1, &dropped, NULL), 0);
    cr_assert_eq(dropped, 100u * PARTS);
    evb_consumer_close(c);
    free(seen);
}
