/*
 * test_published.c - the published statistic when producers die mid-call
 * (issue 9: after SIGKILL chaos `evbus stat` showed published one short of
 * the tail offset with nothing aborted). Producers are killed at each
 * crash point of commit and abort, then at random points while publishing
 * single events and batches; each time the statistic must equal what a
 * reader gets, and published + aborted must equal the offsets handed out.
 * Crash points themselves are test_crash.c's.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "t_helpers.h"

#define DEAD_MS 100
#define STALL_MS 400
#define VLEN 48u
#define MARKER_PRODUCER 99u

static evb_bus *bus;
static const evb_bus_options bus_opts = {.dead_ms = DEAD_MS, .stall_ms = STALL_MS};

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bus_opts), 0, "%s", evb_last_error());
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 8 << 20, .max_event_bytes = 256};
    cr_assert_eq(evb_topic_create(bus, "p", &tc), 0, "%s", evb_last_error());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(published, .init = setup, .fini = teardown, .timeout = 120);

static int publish_seq(evb_producer *p, uint32_t who, uint64_t seq)
{
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, who, seq);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
    return evb_publish(p, &m);
}

static evb_producer *child_producer(void)
{
    evb_bus *b;
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), &bus_opts) || evb_producer_open(&p, b, "p", NULL))
        return NULL;
    return p;
}

static evb_consumer *reader(void)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "p", &co), 0, "%s", evb_last_error());
    return c;
}

/*
 * What reader C gets next: every event intact, each producer's sequences
 * going on from SEQS[who] without a gap or a repeat, up to a marker
 * published now by a live producer (so C has passed, and padded, every
 * hole the dead left). Returns the events read, the marker included, and
 * moves SEQS on.
 */
static uint64_t read_on(evb_consumer *c, uint64_t *seqs, uint32_t producers)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "p", NULL), 0, "%s", evb_last_error());
    cr_assert_eq(publish_seq(p, MARKER_PRODUCER, 0), 0);
    evb_producer_close(p);
    for (uint64_t n = 1;; n++) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 5000);
        cr_assert_eq(rc, 0, "event %llu: %s (%s)", (unsigned long long)n, evb_strerror(rc),
                     evb_last_error());
        uint32_t who;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &who, &seq), "event %llu is torn",
                  (unsigned long long)ev.offset);
        if (who == MARKER_PRODUCER)
            return n;
        cr_assert_lt(who, producers, "event from producer %u", who);
        cr_assert_eq(seq, seqs[who], "producer %u: sequence %llu where %llu was due", who,
                     (unsigned long long)seq, (unsigned long long)seqs[who]);
        seqs[who]++;
    }
}

/* The invariant: every offset handed out is published or aborted once no
 * claim is open, and published is what was read. */
static void check_accounts(uint64_t read, uint64_t aborted)
{
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "p", 0, &st), 0);
    cr_expect_eq(st.published, read, "published %llu, a reader got %llu",
                 (unsigned long long)st.published, (unsigned long long)read);
    cr_expect_eq(st.aborted, aborted, "aborted %llu, expected %llu",
                 (unsigned long long)st.aborted, (unsigned long long)aborted);
    cr_expect_eq(st.published + st.aborted, st.tail_offset,
                 "published %llu + aborted %llu != tail offset %llu",
                 (unsigned long long)st.published, (unsigned long long)st.aborted,
                 (unsigned long long)st.tail_offset);
}

/* ---- killed at a chosen point ---- */

struct victim {
    const char *point;
    bool aborts; /* the 11th call is evb_claim + evb_abort, not a publish */
};

/* Child: ten events, then the call the crash point kills. */
static int die_at(void *arg)
{
    const struct victim *v = arg;
    setenv("EVB_CRASH_AT", v->point, 1);
    setenv("EVB_CRASH_SKIP", "10", 1);
    evb_producer *p = child_producer();
    if (!p)
        return 10;
    for (uint64_t i = 0; i < 10; i++)
        if (publish_seq(p, 0, i))
            return 11;
    if (!v->aborts)
        return publish_seq(p, 0, 10) ? 12 : 13;
    struct evb_claim c;
    if (evb_claim(p, 0, NULL, 0, VLEN, &c))
        return 14;
    return evb_abort(p, &c) ? 15 : 16;
}

/* Kill at V; the dead producer's calls before it count, and the killed
 * one counts as published when its stamp was written as data (COMMITTED),
 * as aborted otherwise. Checked right after the death (while a claim may
 * still be open) and after a reader went past it. */
static void killed_at(struct victim v, bool committed)
{
    cr_assert_eq(t_wait_exit(t_spawn(die_at, &v), 10000), 128 + SIGKILL,
                 "the child was not killed at %s", v.point);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "p", 0, &st), 0);
    cr_expect_eq(st.tail_offset, 11);
    cr_expect_eq(st.published, committed ? 11u : 10u, "%s: published %llu right after",
                 v.point, (unsigned long long)st.published);
    uint64_t seqs[1] = {0};
    evb_consumer *c = reader();
    uint64_t read = read_on(c, seqs, 1);
    evb_consumer_close(c);
    cr_expect_eq(seqs[0], committed ? 11u : 10u);
    check_accounts(read, committed ? 0 : 1);
}

Test(published, producer_killed_before_its_commit_stamp)
{
    killed_at((struct victim){"commit.before_stamp", false}, false);
}

/* Killed between deciding its commit (shm/claim.c X1: its frames whole,
 * committing stored) and its plain stamp store: open right after the
 * death, then finished, not padded, by whoever times the hole, so the
 * event is published and read once. */
Test(published, producer_killed_between_its_commit_decision_and_stamp)
{
    struct victim v = {"commit.decided", false};
    cr_assert_eq(t_wait_exit(t_spawn(die_at, &v), 10000), 128 + SIGKILL,
                 "the child was not killed at %s", v.point);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "p", 0, &st), 0);
    cr_expect_eq(st.tail_offset, 11);
    cr_expect_eq(st.published, 10, "the decided claim is still open");
    uint64_t seqs[1] = {0};
    evb_consumer *c = reader();
    uint64_t read = read_on(c, seqs, 1);
    evb_consumer_close(c);
    cr_expect_eq(seqs[0], 11u, "the decided event was delivered");
    check_accounts(read, 0);
    cr_assert_eq(evb_partition_stat(bus, "p", 0, &st), 0);
    cr_expect_eq(st.padded_dead, 0, "finished, not padded");
}

Test(published, producer_killed_right_after_its_commit_stamp)
{
    killed_at((struct victim){"finish.after_cas", false}, true);
}

Test(published, producer_killed_after_its_commit_resolved)
{
    killed_at((struct victim){"finish.resolved", false}, true);
}

Test(published, producer_killed_right_after_its_abort_stamp)
{
    killed_at((struct victim){"finish.after_cas", true}, false);
}

Test(published, producer_killed_after_its_abort_resolved)
{
    killed_at((struct victim){"finish.resolved", true}, false);
}

/* ---- killed at random points ---- */

#ifndef CHAOS_ROUNDS /* more for a local stress build */
#define CHAOS_ROUNDS 12
#endif
#define CHAOS_PRODUCERS 2
#define CHAOS_EVENTS 20000 /* at most, per producer and round (fits the ring) */

struct chaos {
    struct t_shared *sh;
    uint32_t who;
    uint32_t batch; /* events per evb_publish_batch, 1: evb_publish */
};

/* Child: publish from sequence sh->val[who] on, counting each success in
 * sh->val[who + 32], until killed; after CHAOS_EVENTS, wait to be. */
static int chaos_producer(void *arg)
{
    const struct chaos *ch = arg;
    evb_producer *p = child_producer();
    if (!p)
        return 10;
    uint64_t seq = atomic_load(&ch->sh->val[ch->who]);
    uint8_t v[16][VLEN];
    evb_msg m[16];
    for (uint64_t sent = 0; sent < CHAOS_EVENTS; sent += ch->batch) {
        for (uint32_t i = 0; i < ch->batch; i++) {
            t_value_fill(v[i], VLEN, ch->who, seq + i);
            m[i] = (evb_msg){.value = v[i], .value_len = VLEN, .partition = 0};
        }
        if (evb_publish_batch(p, m, ch->batch) != (int)ch->batch)
            return 11;
        seq += ch->batch;
        atomic_store(&ch->sh->val[ch->who + 32], sent + ch->batch);
        /* A breath now and then, so that on a busy machine the killer
         * runs while we are mid-run, not only after it. */
        if (sent % 256 < ch->batch)
            nanosleep(&(struct timespec){0, 20000}, NULL);
    }
    for (;;)
        pause();
}

Test(published, producers_killed_at_random_points)
{
    struct t_shared *sh = t_shared_new();
    evb_consumer *c = reader();
    uint64_t seqs[CHAOS_PRODUCERS] = {0};
    uint64_t read = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    uint32_t mid_run = 0;
    for (uint32_t round = 0; round < CHAOS_ROUNDS; round++) {
        pid_t pid[CHAOS_PRODUCERS];
        struct chaos ch[CHAOS_PRODUCERS];
        uint64_t at[CHAOS_PRODUCERS];
        for (uint32_t i = 0; i < CHAOS_PRODUCERS; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            at[i] = 1 + rng % (CHAOS_EVENTS / 2);
            /* Each goes on from the sequence after its last one read. */
            atomic_store(&sh->val[i], seqs[i]);
            atomic_store(&sh->val[i + 32], 0);
            ch[i] = (struct chaos){.sh = sh, .who = i, .batch = i ? 7 : 1};
            pid[i] = t_spawn(chaos_producer, &ch[i]);
        }
        /* Each is killed as soon as it has published its AT events. */
        uint64_t deadline = t_now_ms() + 10000;
        for (uint32_t left = CHAOS_PRODUCERS; left;) {
            cr_assert_lt(t_now_ms(), deadline, "round %u: a producer is stuck", round);
            for (uint32_t i = 0; i < CHAOS_PRODUCERS; i++)
                if (at[i] && atomic_load(&sh->val[i + 32]) >= at[i]) {
                    kill(pid[i], SIGKILL);
                    at[i] = 0;
                    left--;
                }
        }
        for (uint32_t i = 0; i < CHAOS_PRODUCERS; i++) {
            cr_assert_eq(t_wait_exit(pid[i], 10000), 128 + SIGKILL, "round %u: producer %u",
                         round, i);
            mid_run += atomic_load(&sh->val[i + 32]) < CHAOS_EVENTS;
        }
        read += read_on(c, seqs, CHAOS_PRODUCERS);
        struct evb_partition_stat st;
        cr_assert_eq(evb_partition_stat(bus, "p", 0, &st), 0);
        cr_assert_eq(st.published, read, "round %u: published %llu, a reader got %llu", round,
                     (unsigned long long)st.published, (unsigned long long)read);
        cr_assert_eq(st.published + st.aborted, st.tail_offset,
                     "round %u: published %llu + aborted %llu != tail offset %llu", round,
                     (unsigned long long)st.published, (unsigned long long)st.aborted,
                     (unsigned long long)st.tail_offset);
    }
    cr_expect_geq(mid_run, CHAOS_ROUNDS, "only %u producers were killed mid-run", mid_run);
    evb_consumer_close(c);
}
