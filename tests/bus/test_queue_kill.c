/*
 * test_queue_kill.c - a queue member SIGKILLed right after each CAS of
 * the queue's protocol (the crash points of bus/queue.c), before the steps
 * that follow it: claim (queue.claimed), publish its state (queue.taken),
 * retake (queue.retaken), nack (queue.nacked), and ack, reject or
 * dead-letter (queue.acked, before the floor moves). A new member then
 * gets every event the dead one had not handled, with the delivery count
 * the protocol promises, never one it had handled, and the floor ends at
 * the tail: nothing is left for ever to an ack_wait (60 s here, longer
 * than any wait in these tests) or to a member that will never come back.
 * With max_in_flight 1 and with a window of 4 whose head is acked last,
 * so that a floor left on an acked event fills the window; ring-only, and
 * a durable topic after a restart of the bus's tmpfs side.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "kill_fixture.h"
#include "t_helpers.h"

TestSuite(queue_kill, .init = kf_setup, .fini = kf_teardown, .timeout = 120);

#define N_EVENTS 8
#define ACK_WAIT_MS 60000u

/* What the member does until the crash point kills it. */
enum script {
    TAKE,        /* takes event 0 (killed inside the take) */
    ACK,         /* takes a window's worth (all events at most), acks them,
                  * event 0 last */
    REJECT,      /* takes event 0 and rejects it (to the DLQ, acked) */
    NACK,        /* takes event 0 and nacks it, no delay */
    RETAKE,      /* takes event 0, nacks it, takes it again */
    DEAD_LETTER, /* as RETAKE, max_deliveries 1: the retake dead-letters it */
};

struct kill_case {
    const char *point;
    const char *skip;        /* passes of the point let go first */
    enum script script;
    uint32_t window;         /* max_in_flight */
    bool durable;
    uint32_t again;          /* event 0's deliveries to the new member; 0: handled */
};

static void make_topic(bool durable)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20,
                           .durability = durable ? EVB_DURABILITY_ASYNC : EVB_DURABILITY_NONE};
    cr_assert_eq(evb_topic_create(bus, "jobs", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "jobs", NULL), 0);
    for (uint64_t i = 0; i < N_EVENTS; i++) {
        evb_msg m = {.value = &i, .value_len = sizeof i, .partition = 0};
        cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    }
    evb_producer_close(p);
}

static uint64_t val(const evb_event *ev)
{
    uint64_t v;
    memcpy(&v, ev->value, sizeof v);
    return v;
}

/* Events a member of script ACK takes and acks. */
static uint32_t acks_of(const struct kill_case *k)
{
    return k->window < N_EVENTS ? k->window : N_EVENTS;
}

static int open_member(evb_bus *b, const struct kill_case *k, evb_consumer **out)
{
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q",
                               .ack_wait_ms = ACK_WAIT_MS, .max_in_flight = k->window,
                               .max_deliveries = k->script == DEAD_LETTER ? 1 : 0};
    return evb_consumer_open(out, b, "jobs", &co);
}

/* Child: the crash point armed before the first call into the library
 * (crash.c caches whether one is), then the script. Returning at all
 * means it was not killed where it should have been. */
static int member_dies(void *arg)
{
    const struct kill_case *k = arg;
    setenv("EVB_CRASH_AT", k->point, 1);
    setenv("EVB_CRASH_SKIP", k->skip, 1);
    evb_bus *b;
    evb_consumer *c;
    if (kf_bus_open(&b) || open_member(b, k, &c))
        return 10;
    evb_event ev[N_EVENTS];
    uint32_t n = k->script == ACK ? acks_of(k) : 1;
    for (uint32_t i = 0; i < n; i++)
        if (evb_consumer_next(c, &ev[i], 2000) || val(&ev[i]) != i)
            return 11;
    switch (k->script) {
    case TAKE:
        return 12;
    case ACK:
        for (uint32_t i = 1; i <= n; i++)
            if (evb_consumer_ack(c, &ev[i % n]))
                return 13;
        return 14;
    case REJECT:
        evb_consumer_reject(c, &ev[0], "killed at queue.acked");
        return 15;
    case NACK:
    case RETAKE:
    case DEAD_LETTER:
        if (evb_consumer_nack(c, &ev[0], 0))
            return 16;
        if (k->script == NACK)
            return 17;
        evb_consumer_next(c, &ev[0], 2000);
        return 18;
    }
    return 19;
}

/* How many records the dead-letter topic holds for event 0. */
static int dlq_holds_event_0(void)
{
    evb_consumer_options so = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *d;
    if (evb_consumer_open(&d, bus, "jobs.dlq", &so))
        return 0;
    int n = 0;
    evb_event ev;
    while (evb_consumer_next(d, &ev, 200) == 0) {
        struct evb_dlq_record rec;
        cr_assert_eq(evb_dlq_decode(&ev, &rec), 0);
        uint64_t v;
        cr_assert_eq(rec.value_len, sizeof v);
        memcpy(&v, rec.value, sizeof v);
        cr_assert_eq(v, 0, "the DLQ holds event %llu", (unsigned long long)v);
        n++;
    }
    evb_consumer_close(d);
    return n;
}

static void killed_then_new_member(const struct kill_case *k)
{
    make_topic(k->durable);
    pid_t pid = t_spawn(member_dies, (void *)k);
    cr_assert_eq(t_wait_exit(pid, 10000), 128 + SIGKILL, "not killed at %s", k->point);
    if (k->durable) {
        /* The tmpfs side gone too, as after a reboot: the group file on
         * disk is all the queue has. */
        evb_bus_close(bus);
        t_rmtree(t_bus_dir());
        cr_assert_eq(kf_bus_open(&bus), 0);
    }
    evb_consumer *c;
    cr_assert_eq(open_member(bus, k, &c), 0, "%s", evb_last_error());
    /* The dead member handled events 0..handled-1. */
    uint32_t handled = k->again ? 0 : k->script == ACK ? acks_of(k) : 1;
    uint32_t seen[N_EVENTS] = {0};
    evb_event ev;
    for (uint32_t got = handled; got < N_EVENTS; got++) {
        int rc = evb_consumer_next(c, &ev, 3000);
        cr_assert_eq(rc, 0, "killed at %s (window %u): event %u of %u did not come: %d %s",
                     k->point, k->window, got, N_EVENTS, rc, rc ? evb_last_error() : "");
        uint64_t v = val(&ev);
        cr_assert(v >= handled && v < N_EVENTS, "killed at %s: event %llu again, handled "
                  "before the kill", k->point, (unsigned long long)v);
        cr_assert_eq(seen[v]++, 0, "event %llu delivered twice", (unsigned long long)v);
        cr_assert_eq(ev.deliveries, v == 0 && k->again ? k->again : 1,
                     "killed at %s: event %llu delivery %u", k->point,
                     (unsigned long long)v, ev.deliveries);
        cr_assert_eq(evb_consumer_ack(c, &ev), 0, "%s", evb_last_error());
    }
    cr_assert_eq(evb_consumer_next(c, &ev, 200), -ETIMEDOUT);
    /* Every event acknowledged: the floor is at the tail. */
    evb_group_summary sum;
    evb_group_partition_stat ps[1];
    struct evb_partition_stat st;
    cr_assert_geq(evb_group_stat(bus, "jobs", "q", &sum, NULL, 0, ps, 1), 0);
    cr_assert_eq(evb_partition_stat(bus, "jobs", 0, &st), 0);
    cr_assert_eq(ps[0].in_flight, 0);
    cr_assert_eq(ps[0].committed_position, st.tail_position,
                 "killed at %s: the floor stays at %llu, the tail is %llu", k->point,
                 (unsigned long long)ps[0].committed_position,
                 (unsigned long long)st.tail_position);
    evb_consumer_close(c);
    if (k->script == REJECT || k->script == DEAD_LETTER)
        cr_assert_eq(dlq_holds_event_0(), 1);
}

/* ---- killed between an ack's CAS and the floor's move ---- */

Test(queue_kill, acked_serial_queue)
{
    struct kill_case k = {"queue.acked", "0", ACK, 1, false, 0};
    killed_then_new_member(&k);
}

Test(queue_kill, acked_head_last_of_a_full_window)
{
    /* Events 1, 2, 3 acked (the floor stays at 0, in flight), then 0:
     * killed there, with every event of the window acked. */
    struct kill_case k = {"queue.acked", "3", ACK, 4, false, 0};
    killed_then_new_member(&k);
}

Test(queue_kill, acked_serial_durable_queue_after_restart)
{
    struct kill_case k = {"queue.acked", "0", ACK, 1, true, 0};
    killed_then_new_member(&k);
}

Test(queue_kill, rejected_serial_queue)
{
    struct kill_case k = {"queue.acked", "0", REJECT, 1, false, 0};
    killed_then_new_member(&k);
}

Test(queue_kill, dead_lettered_serial_queue)
{
    struct kill_case k = {"queue.acked", "0", DEAD_LETTER, 1, false, 0};
    killed_then_new_member(&k);
}

Test(queue_kill, acked_head_last_window_not_full)
{
    /* Every event taken and acked, 0 last, in a window of 16: nothing
     * is left to take, so no take finds the window full; the floor must
     * still reach the tail (ring-only topics are held at it, retention
     * of durable ones too). */
    struct kill_case k = {"queue.acked", "7", ACK, 16, false, 0};
    killed_then_new_member(&k);
}

/* ---- killed after the other CASes ---- */

Test(queue_kill, claimed_state_not_published)
{
    /* The claim is the take; the state still shows the previous lap's:
     * a retaker's CAS finishes the take, as a first delivery. */
    struct kill_case k = {"queue.claimed", "0", TAKE, 1, false, 1};
    killed_then_new_member(&k);
}

Test(queue_kill, claimed_state_not_published_window)
{
    struct kill_case k = {"queue.claimed", "0", TAKE, 4, false, 1};
    killed_then_new_member(&k);
}

Test(queue_kill, taken_fetch_not_moved)
{
    struct kill_case k = {"queue.taken", "0", TAKE, 1, false, 2};
    killed_then_new_member(&k);
}

Test(queue_kill, taken_fetch_not_moved_window)
{
    struct kill_case k = {"queue.taken", "0", TAKE, 4, false, 2};
    killed_then_new_member(&k);
}

Test(queue_kill, nacked)
{
    struct kill_case k = {"queue.nacked", "0", NACK, 1, false, 2};
    killed_then_new_member(&k);
}

Test(queue_kill, retaken)
{
    struct kill_case k = {"queue.retaken", "0", RETAKE, 1, false, 3};
    killed_then_new_member(&k);
}
