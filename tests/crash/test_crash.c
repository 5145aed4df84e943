/*
 * test_crash.c - processes die at chosen points (EVB_CRASH_POINT, armed
 * through the environment in the child) or are stopped; the topic must
 * keep flowing within the bounds of DESIGN.md section 4.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring.h"
#include "t_helpers.h"

#define DEAD_MS 200
#define STALL_MS 600

static evb_bus *bus;
static const evb_bus_options bus_opts = {.dead_ms = DEAD_MS, .stall_ms = STALL_MS};

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bus_opts), 0);
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 256};
    cr_assert_eq(evb_topic_create(bus, "k", &tc), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 60);

static int publish_value(evb_producer *p, uint64_t seq)
{
    uint8_t v[48];
    t_value_fill(v, sizeof v, 7, seq);
    evb_msg m = {.value = v, .value_len = sizeof v, .partition = 0};
    return evb_publish(p, &m);
}

/* Child: publish 10 events, then a claim whose crash point fires. */
static int dying_producer(void *arg)
{
    const char *mode = arg;
    setenv("EVB_CRASH_AT", "claim.after_cas", 1);
    setenv("EVB_CRASH_SKIP", "10", 1);
    if (!strcmp(mode, "stop"))
        setenv("EVB_CRASH_SIGNAL", "STOP", 1);
    evb_bus *b;
    evb_producer *p;
    if (evb_bus_open(&b, t_bus_dir(), &bus_opts) || evb_producer_open(&p, b, "k", NULL))
        return 10;
    for (uint64_t i = 0; i < 10; i++)
        if (publish_value(p, i))
            return 11;
    struct evb_claim c;
    /* Killed (or stopped) inside this call, right after the tail CAS. */
    if (evb_claim(p, 0, NULL, 0, 48, &c))
        return 12;
    /* Only the stopped child gets here, after SIGCONT: a late writer. */
    t_value_fill(c.value, 48, 7, 999);
    int rc = evb_commit(p, &c);
    return rc == -ECANCELED ? 42 : rc == 0 ? 0 : 13;
}

static void read_n(evb_consumer *c, int n, uint64_t first_seq)
{
    for (int i = 0; i < n; i++) {
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 5000), 0, "event %d missing", i);
        uint32_t tp;
        uint64_t seq;
        cr_assert(t_value_check(ev.value, ev.value_len, &tp, &seq), "torn event");
        cr_assert_eq(seq, first_seq + (uint64_t)i);
    }
}

Test(crash, producer_killed_between_claim_and_commit_is_padded_in_time)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    cr_assert_eq(evb_consumer_open(&c, bus, "k", &co), 0);
    pid_t pid = t_spawn(dying_producer, "kill");
    cr_assert_eq(t_wait_exit(pid, 10000), 128 + SIGKILL);
    uint64_t died = t_now_ms();
    read_n(c, 10, 0);

    /* A later producer's events flow past the hole within the bound. */
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "k", NULL), 0);
    cr_assert_eq(publish_value(p, 100), 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 5000), 0, "hole never padded");
    uint64_t waited = t_now_ms() - died;
    cr_expect_leq(waited, 2 * DEAD_MS + 300, "padding took %llu ms", (unsigned long long)waited);
    cr_expect_eq(ev.offset, 11, "the aborted claim keeps its offset");
    struct evb_partition_stat ps;
    cr_assert_eq(evb_partition_stat(bus, "k", 0, &ps), 0);
    cr_expect_eq(ps.aborted, 1);
    cr_expect_eq(ps.padded_dead, 1);
    cr_expect_eq(ps.published, 11, "the dead producer's 10 events still count");
    evb_producer_close(p);
    evb_consumer_close(c);
}

Test(crash, stopped_producer_is_padded_after_stall_and_its_commit_fails)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    cr_assert_eq(evb_consumer_open(&c, bus, "k", &co), 0);
    pid_t pid = t_spawn(dying_producer, "stop");
    int st;
    cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(st), "child did not stop at the crash point");
    read_n(c, 10, 0);

    /* Within dead_ms a live producer keeps its claim: nothing passes. */
    evb_event ev;
    cr_expect_eq(evb_consumer_next(c, &ev, DEAD_MS), -ETIMEDOUT);
    /* Past stall_ms the reader pads it and moves on. */
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "k", NULL), 0);
    cr_assert_eq(publish_value(p, 100), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, STALL_MS * 4), 0, "stalled claim never padded");
    uint32_t tp;
    uint64_t seq;
    cr_assert(t_value_check(ev.value, ev.value_len, &tp, &seq));
    cr_expect_eq(seq, 100, "readers must never see the stalled producer's event");

    kill(pid, SIGCONT);
    cr_expect_eq(t_wait_exit(pid, 10000), 42, "late commit must fail with -ECANCELED");
    cr_expect_eq(evb_consumer_next(c, &ev, 100), -ETIMEDOUT, "late event leaked");
    struct evb_partition_stat ps;
    cr_assert_eq(evb_partition_stat(bus, "k", 0, &ps), 0);
    cr_expect_eq(ps.padded_stalled, 1);
    /* The ring laps past the zombie's old claim safely afterwards. */
    for (uint64_t i = 0; i < 5000; i++) {
        cr_assert_eq(publish_value(p, 200 + i), 0);
        read_n(c, 1, 200 + i);
    }
    evb_producer_close(p);
    evb_consumer_close(c);
}

static int idle_lossless(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus *b;
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    if (evb_bus_open(&b, t_bus_dir(), &bus_opts) || evb_consumer_open(&c, b, "k", &co))
        return 10;
    atomic_fetch_add(&sh->ready, 1);
    for (;;)
        pause(); /* never reads: gates the producer until killed */
}

Test(crash, killed_lossless_subscriber_stops_gating)
{
    struct t_shared *sh = t_shared_new();
    pid_t pid = t_spawn(idle_lossless, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 10000));
    evb_producer *p;
    evb_producer_options po = {.block_ms = 0};
    cr_assert_eq(evb_producer_open(&p, bus, "k", &po), 0);
    uint64_t n = 0;
    int rc;
    while ((rc = publish_value(p, n)) == 0)
        n++;
    cr_assert_eq(rc, -EAGAIN, "a gating subscriber must hold the producer");
    cr_assert_gt(n, 100);
    kill(pid, SIGKILL);
    cr_assert_eq(t_wait_exit(pid, 5000), 128 + SIGKILL);
    uint64_t t0 = t_now_ms();
    evb_producer_close(p);
    po.block_ms = 5000;
    cr_assert_eq(evb_producer_open(&p, bus, "k", &po), 0);
    cr_assert_eq(publish_value(p, n), 0, "producer still gated by a dead subscriber");
    uint64_t waited = t_now_ms() - t0;
    cr_expect_leq(waited, 2 * DEAD_MS + 300, "reaping took %llu ms", (unsigned long long)waited);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(publish_value(p, n + 1 + (uint64_t)i), 0);
    struct evb_partition_stat ps;
    cr_assert_eq(evb_partition_stat(bus, "k", 0, &ps), 0);
    cr_expect_eq(ps.reaped_readers, 1);
    evb_producer_close(p);
}

Test(crash, reused_pid_with_other_start_time_reads_dead)
{
    /* Our own pid with a start time that is not ours: pid reuse. */
    uint64_t self = (uint64_t)(uint32_t)getpid() << 32;
    uint64_t real = self | (uint32_t)evb_proc_start(getpid());
    cr_expect(evb_proc_alive(real));
    cr_expect(!evb_proc_alive(self | ((uint32_t)real + 12345)));
}
