/*
 * test_queue.c - queue groups with real member processes: eight members
 * on two partitions all get work and every event is acknowledged once; a
 * nack redelivers with the count; an event nacked until max_deliveries
 * lands in the dead-letter topic with its count; an event whose member
 * was SIGKILLed mid-processing goes to another member with count 2; a
 * late ack is refused; a durable queue's state survives the death of
 * every process; bad input.
 */
#include <criterion/criterion.h>
#include <time.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "group_format.h"
#include "ring.h"
#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 120);

static void make_topic(const char *name, uint32_t parts, bool durable)
{
    evb_topic_config tc = {.partitions = parts, .ring_bytes = 1 << 20};
    if (durable) {
        tc.durability = EVB_DURABILITY_ASYNC;
        evb_bus_close(bus);
        evb_bus_options bo = {.data_dir = t_data_dir()};
        cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
    }
    cr_assert_eq(evb_topic_create(bus, name, &tc), 0, "%s", evb_last_error());
}

static void publish_n(const char *topic, uint64_t from, uint64_t n)
{
    evb_producer *p;
    evb_producer_options po = {.block_ms = 10000};
    cr_assert_eq(evb_producer_open(&p, bus, topic, &po), 0);
    for (uint64_t i = from; i < from + n; i++) {
        evb_msg m = {.value = &i, .value_len = sizeof i, .partition = EVB_PARTITION_ANY};
        int rc = evb_publish(p, &m);
        cr_assert_eq(rc, 0, "publish %llu: %d %s", (unsigned long long)i, rc, evb_last_error());
    }
    evb_producer_close(p);
}

static uint64_t val(const evb_event *ev)
{
    uint64_t v;
    memcpy(&v, ev->value, sizeof v);
    return v;
}

static evb_consumer *member(const char *topic, const char *group, uint32_t ack_wait,
                            uint32_t max_deliveries)
{
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = group,
                               .ack_wait_ms = ack_wait, .max_deliveries = max_deliveries};
    evb_consumer *c;
    int rc = evb_consumer_open(&c, bus, topic, &co);
    cr_assert_eq(rc, 0, "open: %s", evb_last_error());
    return c;
}

#define N_EVENTS 2000
#define MEMBERS 8

struct shared {
    _Atomic uint32_t acks[N_EVENTS];
    _Atomic uint32_t per_member[MEMBERS];
    _Atomic uint64_t done;
    _Atomic uint32_t go;
    _Atomic uint32_t parked; /* members done and counted, still attached */
    _Atomic uint32_t leave;
};

struct marg {
    struct shared *sh;
    int me;
};

static int worker(void *argp)
{
    struct marg *a = argp;
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        return 10;
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "work"};
    evb_consumer *c;
    if (evb_consumer_open(&c, b, "jobs", &co))
        return 11;
    while (!atomic_load(&a->sh->go))
        usleep(1000);
    while (atomic_load(&a->sh->done) < N_EVENTS) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 20);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc)
            return 12;
        if (ev.deliveries != 1)
            return 13;
        usleep(300); /* work */
        uint64_t v = val(&ev);
        if (evb_consumer_ack(c, &ev))
            return 14;
        if (v >= N_EVENTS)
            return 15;
        atomic_fetch_add(&a->sh->acks[v], 1);
        atomic_fetch_add(&a->sh->per_member[a->me], 1);
        atomic_fetch_add(&a->sh->done, 1);
    }
    /* Past a tick, one more call publishes this member's counts; it stays
     * attached until the test has read its readers' (evbus stat). */
    usleep(150000);
    evb_event ev;
    evb_consumer_next(c, &ev, 0);
    atomic_fetch_add(&a->sh->parked, 1);
    while (!atomic_load(&a->sh->leave))
        usleep(1000);
    evb_consumer_close(c);
    evb_bus_close(b);
    return 0;
}

Test(queue, eight_members_two_partitions_all_work)
{
    make_topic("jobs", 2, false);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    /* The group exists before the events, so it starts at the first. */
    evb_consumer_close(member("jobs", "work", 0, 0));
    publish_n("jobs", 0, N_EVENTS);
    struct marg args[MEMBERS];
    pid_t pids[MEMBERS];
    for (int m = 0; m < MEMBERS; m++) {
        args[m] = (struct marg){sh, m};
        pids[m] = t_spawn(worker, &args[m]);
    }
    usleep(200000);
    atomic_store(&sh->go, 1);
    /* A member that fails returns without parking: bounded, then its exit
     * status below says which and why. */
    for (uint64_t end = t_now_ms() + 30000;
         atomic_load(&sh->parked) < MEMBERS && t_now_ms() < end;)
        usleep(1000);
    /* Eight members racing for each event read far more than they take;
     * each reader's "delivered" (what `evbus stat` shows) counts the events
     * its member was handed, so they add up to the events (they added up
     * to the reads). */
    uint64_t per_reader = 0;
    for (uint32_t p = 0; p < 2; p++) {
        evb_reader_stat rs[MEMBERS];
        int nr = evb_reader_list(bus, "jobs", p, rs, MEMBERS);
        cr_expect_eq(nr, MEMBERS, "partition %u: %d readers", p, nr);
        for (int k = 0; k < nr && k < MEMBERS; k++)
            per_reader += rs[k].delivered;
    }
    atomic_store(&sh->leave, 1);
    for (int m = 0; m < MEMBERS; m++)
        cr_assert_eq(t_wait_exit(pids[m], 30000), 0, "member %d", m);
    cr_expect_eq(per_reader, N_EVENTS, "the readers' delivered add up to %llu",
                 (unsigned long long)per_reader);
    for (int i = 0; i < N_EVENTS; i++) {
        uint32_t n = atomic_load(&sh->acks[i]);
        cr_assert_eq(n, 1, "event %d acknowledged %u times", i, n);
    }
    for (int m = 0; m < MEMBERS; m++) {
        uint32_t n = atomic_load(&sh->per_member[m]);
        cr_log_info("member %d: %u events", m, n);
        cr_assert_gt(n, 0, "member %d got no work", m);
    }
    /* Everything acked: the floor is at the tail, nothing in flight. */
    evb_group_summary sum;
    evb_group_partition_stat ps[2];
    cr_assert_geq(evb_group_stat(bus, "jobs", "work", &sum, NULL, 0, ps, 2), 0);
    cr_assert_eq(sum.kind, EVB_QUEUE_MEMBER);
    cr_assert_eq(ps[0].in_flight + ps[1].in_flight, 0);
    cr_assert_eq(ps[0].acked + ps[1].acked, N_EVENTS);
    cr_assert_eq(ps[0].backlog_bytes + ps[1].backlog_bytes, 0);
    munmap(sh, sizeof *sh);
}

/* Nack: the event comes again with its count; after max_deliveries it
 * goes to <topic>.dlq with the count and is not delivered again. */
Test(queue, nack_redelivers_then_dead_letters)
{
    make_topic("jobs", 1, false);
    evb_consumer *c = member("jobs", "q", 0, 3);
    publish_n("jobs", 0, 3);
    evb_event ev;
    uint32_t seen_counts[8] = {0};
    int nacks = 0, acked = 0;
    uint64_t end = t_now_ms() + 5000;
    while (t_now_ms() < end && acked < 2) {
        int rc = evb_consumer_next(c, &ev, 50);
        if (rc == -ETIMEDOUT)
            continue;
        cr_assert_eq(rc, 0, "%s", evb_last_error());
        if (val(&ev) == 1) {
            cr_assert_leq(ev.deliveries, 3, "event 1 delivered a 4th time");
            seen_counts[ev.deliveries]++;
            cr_assert_eq(evb_consumer_nack(c, &ev, 0), 0);
            nacks++;
        } else {
            cr_assert_eq(ev.deliveries, 1);
            cr_assert_eq(evb_consumer_ack(c, &ev), 0);
            acked++;
        }
    }
    /* Let the third nack be noticed and dead-lettered. */
    cr_assert_eq(evb_consumer_next(c, &ev, 300), -ETIMEDOUT);
    cr_assert_eq(nacks, 3);
    cr_assert_eq(seen_counts[1] + seen_counts[2] + seen_counts[3], 3);
    cr_assert_eq(seen_counts[3], 1);
    /* The member's reader counts the 5 events it handed out, not the read
     * that sent event 1 to the DLQ (`evbus stat`). */
    usleep(150000);
    cr_assert_eq(evb_consumer_next(c, &ev, 0), -EAGAIN);
    evb_reader_stat rs[2];
    cr_assert_eq(evb_reader_list(bus, "jobs", 0, rs, 2), 1);
    cr_expect_eq(rs[0].delivered, 5, "delivered %llu", (unsigned long long)rs[0].delivered);
    evb_consumer_close(c);
    /* The dead-letter topic holds it, with its count. */
    evb_consumer_options so = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *d;
    cr_assert_eq(evb_consumer_open(&d, bus, "jobs.dlq", &so), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_next(d, &ev, 1000), 0);
    struct evb_dlq_record rec;
    cr_assert_eq(evb_dlq_decode(&ev, &rec), 0);
    cr_assert_eq(rec.deliveries, 3);
    cr_assert_eq(rec.value_len, sizeof(uint64_t));
    uint64_t v;
    memcpy(&v, rec.value, sizeof v);
    cr_assert_eq(v, 1);
    cr_assert_eq(evb_consumer_next(d, &ev, 100), -ETIMEDOUT);
    evb_consumer_close(d);
    evb_group_summary sum;
    evb_group_partition_stat ps[1];
    cr_assert_geq(evb_group_stat(bus, "jobs", "q", &sum, NULL, 0, ps, 1), 0);
    cr_assert_eq(ps[0].dead_lettered, 1);
    cr_assert_eq(ps[0].in_flight, 0);
    /* Each counter counts its own: 2 acked (not the dead-lettered one), 3
     * nacks, 2 redeliveries (the move to the DLQ is not one). */
    cr_assert_eq(ps[0].acked, 2, "acked %llu", (unsigned long long)ps[0].acked);
    cr_assert_eq(ps[0].nacked, 3);
    cr_assert_eq(ps[0].redelivered, 2, "redelivered %llu",
                 (unsigned long long)ps[0].redelivered);
}

/* A member SIGKILLed while it holds an event: another member gets it
 * with count 2 (its death is noticed at once; ack_wait bounds it). */
static int grab_and_die(void *arg)
{
    struct shared *sh = arg;
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        return 10;
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q", .ack_wait_ms = 1000};
    evb_consumer *c;
    if (evb_consumer_open(&c, b, "jobs", &co))
        return 11;
    evb_event ev;
    if (evb_consumer_next(c, &ev, 2000))
        return 12;
    atomic_store(&sh->done, val(&ev) + 1);
    for (;;)
        pause(); /* "processing" until killed */
}

/* Queue q of topic jobs counts EXPELLED members expelled. */
static void expelled_is(uint64_t expelled)
{
    evb_group_summary sum;
    cr_assert_geq(evb_group_stat(bus, "jobs", "q", &sum, NULL, 0, NULL, 0), 0);
    cr_expect_eq(sum.expelled, expelled);
}

Test(queue, killed_member_event_redelivered_with_count_2)
{
    make_topic("jobs", 2, false);
    evb_consumer_close(member("jobs", "q", 1000, 0));
    publish_n("jobs", 0, 1);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pid = t_spawn(grab_and_die, sh);
    cr_assert(t_wait_count(&sh->done, 1, 5000));
    evb_consumer *c = member("jobs", "q", 1000, 0);
    evb_event ev;
    /* Held by a live member: not ours. */
    cr_assert_eq(evb_consumer_next(c, &ev, 200), -ETIMEDOUT);
    uint64_t t0 = t_now_ms();
    kill(pid, SIGKILL);
    cr_assert_eq(t_wait_exit(pid, 5000), 128 + SIGKILL);
    cr_assert_eq(evb_consumer_next(c, &ev, 3000), 0, "%s", evb_last_error());
    cr_log_info("redelivered %llu ms after the kill", (unsigned long long)(t_now_ms() - t0));
    cr_assert_eq(val(&ev), 0);
    cr_assert_eq(ev.deliveries, 2);
    cr_assert_eq(evb_consumer_ack(c, &ev), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 200), -ETIMEDOUT);
    /* The killed member counts as expelled, whoever freed its slot. */
    expelled_is(1);
    evb_consumer_close(c);
    munmap(sh, sizeof *sh);
}

/* The group's only member killed, a new one joining takes its slot: that
 * is an expulsion too (a cold attack found it not counted). */
Test(queue, a_sole_member_killed_counts_as_expelled)
{
    make_topic("jobs", 1, false);
    publish_n("jobs", 0, 1);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pid = t_spawn(grab_and_die, sh);
    cr_assert(t_wait_count(&sh->done, 1, 5000));
    kill(pid, SIGKILL);
    cr_assert_eq(t_wait_exit(pid, 5000), 128 + SIGKILL);
    evb_consumer *c = member("jobs", "q", 1000, 0);
    expelled_is(1);
    evb_consumer_close(c);
    munmap(sh, sizeof *sh);
}

/* Not acknowledged within ack_wait: another member gets it (count 2) and
 * the late ack is refused. */
Test(queue, late_ack_is_refused)
{
    make_topic("jobs", 1, false);
    evb_consumer *a = member("jobs", "q", 200, 0);
    evb_consumer *b = member("jobs", "q", 200, 0);
    publish_n("jobs", 0, 1);
    evb_event ea, eb;
    cr_assert_eq(evb_consumer_next(a, &ea, 1000), 0);
    cr_assert_eq(evb_consumer_next(b, &eb, 100), -ETIMEDOUT);
    usleep(250000);
    cr_assert_eq(evb_consumer_next(b, &eb, 1000), 0);
    cr_assert_eq(eb.deliveries, 2);
    cr_assert_eq(evb_consumer_ack(a, &ea), -ESTALE);
    cr_assert_eq(evb_consumer_ack(b, &eb), 0);
    cr_assert_eq(evb_consumer_ack(b, &eb), -ESTALE, "acked twice");
    evb_consumer_close(a);
    evb_consumer_close(b);
}

/* A durable queue after every process died: acked events stay acked,
 * the ones in flight come again (count 2), the rest once. */
static int take_some_and_die(void *arg)
{
    (void)arg;
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        return 10;
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q"};
    evb_consumer *c;
    if (evb_consumer_open(&c, b, "jobs", &co))
        return 11;
    for (int i = 0; i < 30; i++) {
        evb_event ev;
        if (evb_consumer_next(c, &ev, 2000))
            return 12;
        if (i < 20 && evb_consumer_ack(c, &ev))
            return 13;
    }
    raise(SIGKILL);
    return 0;
}

Test(queue, durable_state_survives_every_process)
{
    make_topic("jobs", 2, true);
    evb_consumer_close(member("jobs", "q", 0, 0));
    publish_n("jobs", 0, 100);
    pid_t pid = t_spawn(take_some_and_die, NULL);
    cr_assert_eq(t_wait_exit(pid, 10000), 128 + SIGKILL);
    /* And the bus's tmpfs side too, as after a reboot. */
    evb_bus_close(bus);
    t_rmtree(t_bus_dir());
    evb_bus_options bo = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
    evb_consumer *c = member("jobs", "q", 0, 0);
    int n = 0, again = 0;
    bool seen[100] = {0};
    evb_event ev;
    while (evb_consumer_next(c, &ev, 500) == 0) {
        uint64_t v = val(&ev);
        cr_assert_lt(v, 100);
        cr_assert(!seen[v], "event %llu delivered twice after the restart",
                  (unsigned long long)v);
        seen[v] = true;
        if (ev.deliveries == 2)
            again++;
        else
            cr_assert_eq(ev.deliveries, 1);
        cr_assert_eq(evb_consumer_ack(c, &ev), 0);
        n++;
    }
    cr_assert_eq(n, 80, "expected the 80 events not acknowledged, got %d", n);
    cr_assert_eq(again, 10, "expected the 10 in flight at the kill again, got %d", again);
    evb_consumer_close(c);
}

Test(queue, bad_input)
{
    make_topic("jobs", 2, false);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q", .max_in_flight = 1000};
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), -EINVAL);
    co.max_in_flight = 0;
    co.max_deliveries = 300;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), -EINVAL);
    co.max_deliveries = 0;
    co.flags = EVB_CONSUMER_DEDUP;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), -EINVAL);
    co.flags = 0;
    co.only_partition = 1;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), -EINVAL);
    co.only_partition = 0;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0);
    /* A queue is not a partition group, nor the other way round. */
    evb_consumer_options go = {.kind = EVB_GROUP_MEMBER, .name = "q"};
    evb_consumer *g;
    cr_assert_eq(evb_consumer_open(&g, bus, "jobs", &go), -EINVAL);
    cr_assert(strstr(evb_last_error(), "queue"), "%s", evb_last_error());
    cr_assert_eq(evb_consumer_commit(c), -EINVAL);
    evb_event ev = {0};
    cr_assert_eq(evb_consumer_ack(c, &ev), -EINVAL);
    ev.deliveries = 1;
    ev.partition = 7;
    cr_assert_eq(evb_consumer_ack(c, &ev), -EINVAL);
    ev.partition = 0;
    ev.ack_token = 12345;
    cr_assert_eq(evb_consumer_ack(c, &ev), -ESTALE);
    evb_consumer_close(c);
    /* A plain consumer has nothing to ack. */
    evb_consumer_options so = {0};
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &so), 0);
    cr_assert_eq(evb_consumer_ack(c, &ev), -EINVAL);
    evb_consumer_close(c);
}

/* A queue member's reject sends the event to the DLQ with its count and
 * acknowledges it: no member gets it again; the group counts it. A
 * partition group counts its members' rejects per partition. */
Test(queue, reject_is_handled)
{
    make_topic("jobs", 1, false);
    evb_consumer *c = member("jobs", "q", 0, 0);
    publish_n("jobs", 0, 2);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_nack(c, &ev, 0), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    uint64_t first = val(&ev);
    if (ev.deliveries == 1) { /* the other event came first */
        cr_assert_eq(evb_consumer_ack(c, &ev), 0);
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        first = val(&ev);
    }
    cr_assert_eq(ev.deliveries, 2);
    cr_assert_eq(evb_consumer_reject(c, &ev, "bad input"), 0, "%s", evb_last_error());
    while (evb_consumer_next(c, &ev, 200) == 0) {
        cr_assert_neq(val(&ev), first, "a rejected event came again");
        cr_assert_eq(evb_consumer_ack(c, &ev), 0);
    }
    evb_group_summary sum;
    evb_group_partition_stat ps[1];
    cr_assert_geq(evb_group_stat(bus, "jobs", "q", &sum, NULL, 0, ps, 1), 0);
    cr_assert_eq(ps[0].dead_lettered, 1);
    cr_assert_eq(ps[0].in_flight, 0);
    cr_assert_eq(ps[0].acked, 1, "the rejected event counts as dead-lettered, not acked");
    evb_consumer_close(c);
    evb_consumer_options so = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *d;
    cr_assert_eq(evb_consumer_open(&d, bus, "jobs.dlq", &so), 0);
    cr_assert_eq(evb_consumer_next(d, &ev, 1000), 0);
    struct evb_dlq_record rec;
    cr_assert_eq(evb_dlq_decode(&ev, &rec), 0);
    cr_assert_eq(rec.deliveries, 2);
    evb_consumer_close(d);
    /* A partition group. */
    evb_consumer_options go = {.kind = EVB_GROUP_MEMBER, .name = "p"};
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &go), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_reject(c, &ev, "no"), 0);
    cr_assert_geq(evb_group_stat(bus, "jobs", "p", &sum, NULL, 0, ps, 1), 0);
    cr_assert_eq(ps[0].rejected, 1);
    evb_consumer_close(c);
}

/* Topic "jobs" (one partition, N events) and two members A and B of queue
 * q with ACK_WAIT; A has taken the first event into *EA. */
static void two_members(uint32_t ack_wait, uint64_t n, evb_consumer **a, evb_consumer **b,
                        evb_event *ea)
{
    make_topic("jobs", 1, false);
    *a = member("jobs", "q", ack_wait, 0);
    *b = member("jobs", "q", ack_wait, 0);
    publish_n("jobs", 0, n);
    cr_assert_eq(evb_consumer_next(*a, ea, 1000), 0);
}

/* Events in TOPIC's dead-letter topic (0 when it has none). */
static uint64_t dlq_events(const char *topic)
{
    char dn[EVB_NAME_MAX + 8];
    snprintf(dn, sizeof dn, "%s.dlq", topic);
    struct evb_partition_stat st;
    return evb_partition_stat(bus, dn, 0, &st) == 0 ? st.tail_offset : 0;
}

/* A reject of an event that is no longer the member's (acknowledged by
 * it, rejected by it already, or taken by another member after ack_wait)
 * fails with -ESTALE and writes no dead-letter record: resubmitted, the
 * record would deliver an event that was handled (a cold attack found
 * both records written, and `dlq resubmit --all` putting both back). */
Test(queue, a_reject_of_an_event_no_longer_ours_writes_no_record)
{
    evb_consumer *a, *b;
    evb_event ea, eb;
    two_members(200, 3, &a, &b, &ea);
    /* Acknowledged, then rejected. */
    cr_assert_eq(evb_consumer_ack(a, &ea), 0);
    cr_expect_eq(evb_consumer_reject(a, &ea, "after ack"), -ESTALE);
    cr_expect_eq(dlq_events("jobs"), 0, "a record for an acknowledged event");
    /* Rejected twice: one record. */
    cr_assert_eq(evb_consumer_next(a, &ea, 1000), 0);
    cr_assert_eq(evb_consumer_reject(a, &ea, "first"), 0, "%s", evb_last_error());
    cr_expect_eq(evb_consumer_reject(a, &ea, "again"), -ESTALE);
    cr_expect_eq(dlq_events("jobs"), 1, "a second record of one reject");
    /* Taken by the other member after ack_wait and acknowledged there. */
    cr_assert_eq(evb_consumer_next(a, &ea, 1000), 0);
    usleep(250000);
    cr_assert_eq(evb_consumer_next(b, &eb, 1000), 0);
    cr_assert_eq(eb.deliveries, 2);
    cr_assert_eq(evb_consumer_ack(b, &eb), 0);
    cr_expect_eq(evb_consumer_reject(a, &ea, "too late"), -ESTALE);
    cr_expect_eq(dlq_events("jobs"), 1, "a record for an event another member handled");
    evb_consumer_close(a);
    evb_consumer_close(b);
}

/* While a reject writes its record, past its ack_wait: what the other
 * member gets. */
static evb_consumer *other;
static int other_got;

static void slow_append(const char *name)
{
    if (strcmp(name, "dlq.append") != 0 || !other)
        return;
    usleep(250000);
    evb_event ev;
    evb_consumer *b = other;
    other = NULL; /* once */
    other_got = evb_consumer_next(b, &ev, 200);
}

/* A reject keeps the event its member's while the record is written: no
 * other member is handed it then, even past ack_wait. */
Test(queue, a_reject_holds_its_event_past_ack_wait)
{
    evb_consumer *a, *b;
    evb_event ea, eb;
    two_members(100, 1, &a, &b, &ea);
    other = b;
    other_got = 1;
    atomic_store(&evb_crash_hook, slow_append);
    int rc = evb_consumer_reject(a, &ea, "slow");
    atomic_store(&evb_crash_hook, NULL);
    cr_assert_eq(rc, 0, "%s", evb_last_error());
    cr_expect_eq(other_got, -ETIMEDOUT, "handed to the other member while rejected: %d",
                 other_got);
    cr_expect_eq(evb_consumer_next(b, &eb, 300), -ETIMEDOUT, "handed out after its reject");
    cr_expect_eq(dlq_events("jobs"), 1);
    evb_consumer_close(a);
    evb_consumer_close(b);
}

/* The hold is kept against expulsion too: a member whose lease was near
 * its end when it rejected is not expelled (and its event handed on)
 * while the record is written, as a reject beats first (a review found B
 * reaping A during a slow append, taking the event with deliveries 2 while
 * A's record was written and its reject said -ESTALE). */
static int slow_reject_then_check(evb_consumer *a, const evb_event *ea)
{
    other_got = 1;
    atomic_store(&evb_crash_hook, slow_append);
    int rc = evb_consumer_reject(a, ea, "slow");
    atomic_store(&evb_crash_hook, NULL);
    return rc;
}

Test(queue, a_reject_is_not_expelled_while_its_record_is_written)
{
    make_topic("jobs", 1, false);
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q", .ack_wait_ms = 500,
                               .lease_ms = 500};
    evb_consumer *a, *b;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &co), 0, "%s", evb_last_error());
    publish_n("jobs", 0, 1);
    evb_event ea, eb;
    cr_assert_eq(evb_consumer_next(a, &ea, 1000), 0);
    usleep(400000); /* busy, within ack_wait and the lease, no tick */
    other = b;
    int rc = slow_reject_then_check(a, &ea); /* b looks 250 ms into it */
    cr_expect_eq(rc, 0, "%s", evb_last_error());
    cr_expect_eq(other_got, -ETIMEDOUT, "handed to the other member while rejected: %d",
                 other_got);
    cr_expect_eq(dlq_events("jobs"), 1);
    cr_expect_eq(evb_consumer_next(b, &eb, 300), -ETIMEDOUT, "handed out after its reject");
    evb_consumer_close(a);
    evb_consumer_close(b);
}

/* A dead-letter topic that refuses the record (here its name would be too
 * long) keeps the event in the queue, tried again each ack_wait; the
 * member's calls do not fail for it. Each try is neither a nack nor a
 * delivery: the counts stay what the clients did. It counts as a refusal,
 * with its error, and the event as due for the DLQ. */
Test(queue, a_refused_dead_letter_is_tried_again_counted_once)
{
    char name[EVB_NAME_MAX + 1];
    memset(name, 'n', EVB_NAME_MAX - 3);
    name[EVB_NAME_MAX - 3] = '\0';
    make_topic(name, 1, false);
    evb_consumer *c = member(name, "q", 100, 1);
    publish_n(name, 0, 1);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_nack(c, &ev, 0), 0);
    for (uint64_t end = t_now_ms() + 1000; t_now_ms() < end;) {
        int rc = evb_consumer_next(c, &ev, 50);
        cr_assert_eq(rc, -ETIMEDOUT, "%d %s", rc, evb_last_error());
    }
    evb_group_summary sum;
    evb_group_partition_stat ps[1];
    cr_assert_geq(evb_group_stat(bus, name, "q", &sum, NULL, 0, ps, 1), 0);
    /* Not in a call now: the count is settled. Tries every ack_wait. */
    uint64_t refused = sum.dlq_refusals;
    cr_assert_geq(refused, 3, "the record was tried %llu times", (unsigned long long)refused);
    cr_expect_eq(sum.dlq_refusal_error, -ENAMETOOLONG, "last refusal %d",
                 sum.dlq_refusal_error);
    cr_expect_eq(ps[0].nacked, 1, "nacked %llu", (unsigned long long)ps[0].nacked);
    cr_expect_eq(ps[0].redelivered, 0, "redelivered %llu",
                 (unsigned long long)ps[0].redelivered);
    cr_expect_eq(ps[0].dead_lettered, 0);
    cr_expect_eq(ps[0].acked, 0);
    cr_expect_leq(refused, 12, "more tries than ack_waits: %llu", (unsigned long long)refused);
    cr_expect_eq(ps[0].dlq_due, 1, "due for the DLQ: %u", ps[0].dlq_due);
    evb_consumer_close(c);
}

/* The same with a DLQ that refuses for a while (full: a lossless reader
 * that reads nothing holds it) and then takes the record: the record says
 * max_deliveries, as if the DLQ had taken it at once. Each try gave the
 * event's delivery count one more, and the record said so. */
Test(queue, a_dead_letter_tried_again_keeps_its_delivery_count, .timeout = 60)
{
    make_topic("jobs", 1, false);
    evb_topic_config dc = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 4096};
    cr_assert_eq(evb_topic_create(bus, "jobs.dlq", &dc), 0, "%s", evb_last_error());
    evb_consumer *hold;
    cr_assert_eq(evb_consumer_open(&hold, bus, "jobs.dlq", &(evb_consumer_options){
                     .kind = EVB_SUBSCRIBER_LOSSLESS}), 0, "%s", evb_last_error());
    evb_producer *junk;
    cr_assert_eq(evb_producer_open(&junk, bus, "jobs.dlq", &(evb_producer_options){0}), 0);
    static char big[2048];
    int rc;
    while ((rc = evb_publish(junk, &(evb_msg){.value = big, .value_len = sizeof big})) == 0)
        ;
    cr_assert_eq(rc, -EAGAIN, "%s", evb_last_error());
    evb_producer_close(junk);
    evb_consumer *c = member("jobs", "q", 100, 1);
    publish_n("jobs", 0, 1);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_nack(c, &ev, 0), 0);
    /* No try waits for room: one each ack_wait. */
    for (uint64_t end = t_now_ms() + 1000; t_now_ms() < end;)
        cr_assert_eq(evb_consumer_next(c, &ev, 50), -ETIMEDOUT, "%s", evb_last_error());
    evb_group_summary sum;
    evb_group_partition_stat ps[1];
    cr_assert_geq(evb_group_stat(bus, "jobs", "q", &sum, NULL, 0, ps, 1), 0);
    cr_assert_eq(ps[0].dead_lettered, 0, "the full DLQ took the record");
    cr_expect_eq(ps[0].dlq_due, 1, "due for the DLQ: %u", ps[0].dlq_due);
    /* No try is running now (we are its only member): the count is final
     * until the next one, which finds room. */
    uint64_t refused = sum.dlq_refusals;
    cr_expect_geq(refused, 3, "refusals counted: %llu", (unsigned long long)refused);
    /* Full: its short wait for room ran out. */
    cr_expect_eq(sum.dlq_refusal_error, -ETIMEDOUT, "last refusal %d", sum.dlq_refusal_error);
    evb_consumer_close(hold); /* room: the next try is taken */
    for (uint64_t end = t_now_ms() + 3000; t_now_ms() < end;)
        evb_consumer_next(c, &ev, 50);
    cr_assert_geq(evb_group_stat(bus, "jobs", "q", &sum, NULL, 0, ps, 1), 0);
    cr_assert_eq(ps[0].dead_lettered, 1, "%s", evb_last_error());
    cr_expect_eq(sum.dlq_refusals, refused, "the try the DLQ took counted as a refusal: "
                 "%llu, %llu before", (unsigned long long)sum.dlq_refusals,
                 (unsigned long long)refused);
    cr_expect_eq(ps[0].dlq_due, 0, "still due after its record: %u", ps[0].dlq_due);
    cr_expect_eq(ps[0].nacked, 1, "nacked %llu", (unsigned long long)ps[0].nacked);
    evb_consumer_close(c);
    evb_consumer *d;
    cr_assert_eq(evb_consumer_open(&d, bus, "jobs.dlq", &(evb_consumer_options){
                     .kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST}), 0);
    int records = 0;
    while (evb_consumer_next(d, &ev, 200) == 0) {
        struct evb_dlq_record rec;
        if (evb_dlq_decode(&ev, &rec) != 0)
            continue; /* the junk */
        records++;
        cr_expect_eq(rec.deliveries, 1, "the record says %u deliveries", rec.deliveries);
    }
    cr_expect_eq(records, 1);
    evb_consumer_close(d);
}

/* Topic jobs and a jobs.dlq too small for any of its records: every
 * dead letter is refused (-EMSGSIZE). */
static void jobs_with_a_dlq_too_small(void)
{
    make_topic("jobs", 1, false);
    evb_topic_config dc = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 64};
    cr_assert_eq(evb_topic_create(bus, "jobs.dlq", &dc), 0, "%s", evb_last_error());
}

/* Healthy events behind one the DLQ refuses (its DLQ made too small for
 * the record) are handed out all the same, at once: the refusal stops
 * neither the member nor the queue (a cold attack found every CLI member
 * stopped, or hung a second per try, with healthy events waiting). */
Test(queue, healthy_events_flow_past_one_the_dlq_refuses)
{
    jobs_with_a_dlq_too_small();
    evb_consumer *c = member("jobs", "q", 200, 1);
    publish_n("jobs", 0, 1);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_nack(c, &ev, 0), 0); /* its last delivery */
    publish_n("jobs", 1, 50);
    uint64_t t0 = t_now_ms();
    int got = 0;
    while (got < 50 && t_now_ms() - t0 < 5000) {
        int rc = evb_consumer_next(c, &ev, 100);
        if (rc == -ETIMEDOUT)
            continue;
        cr_assert_eq(rc, 0, "%d %s", rc, evb_last_error());
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_neq(v, 0, "the refused event handed out again past its limit");
        cr_assert_eq(evb_consumer_ack(c, &ev), 0);
        got++;
    }
    cr_assert_eq(got, 50, "%d of 50 healthy events handed out", got);
    cr_expect_lt(t_now_ms() - t0, 3000, "the healthy events took %llu ms",
                 (unsigned long long)(t_now_ms() - t0));
    evb_group_summary sum;
    evb_group_partition_stat ps[1];
    cr_assert_geq(evb_group_stat(bus, "jobs", "q", &sum, NULL, 0, ps, 1), 0);
    cr_expect_geq(sum.dlq_refusals, 1);
    cr_expect_eq(sum.dlq_refusal_error, -EMSGSIZE, "last refusal %d", sum.dlq_refusal_error);
    cr_expect_eq(ps[0].dlq_due, 1, "due for the DLQ: %u", ps[0].dlq_due);
    cr_expect_eq(ps[0].acked, 50);
    cr_expect_eq(ps[0].dead_lettered, 0);
    evb_consumer_close(c);
}

/* Many events the DLQ refuses, with an ack_wait shorter than a scan of
 * them all: each call still returns, and the healthy events come (a
 * review found a call that refused on and on, rescanning from the floor,
 * outlast ack_wait and never return). */
Test(queue, many_refused_events_never_hold_a_call)
{
    jobs_with_a_dlq_too_small();
    enum { DUE = 4000 };
    evb_consumer *c = member("jobs", "q", 40, 1);
    publish_n("jobs", 0, DUE);
    evb_event ev;
    for (int k = 0; k < DUE; k++) {
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%d: %s", k, evb_last_error());
        cr_assert_eq(evb_consumer_nack(c, &ev, 0), 0); /* its last delivery */
    }
    publish_n("jobs", DUE, 3);
    int got = 0;
    uint64_t t0 = t_now_ms();
    while (got < 3 && t_now_ms() - t0 < 20000) {
        uint64_t c0 = t_now_ms();
        int rc = evb_consumer_next(c, &ev, 100);
        cr_assert_lt(t_now_ms() - c0, 5000, "one call took %llu ms",
                     (unsigned long long)(t_now_ms() - c0));
        if (rc == -ETIMEDOUT)
            continue;
        cr_assert_eq(rc, 0, "%d %s", rc, evb_last_error());
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_geq(v, DUE, "a refused event handed out again past its limit");
        cr_assert_eq(evb_consumer_ack(c, &ev), 0);
        got++;
    }
    cr_assert_eq(got, 3, "%d of 3 healthy events in %llu ms", got,
                 (unsigned long long)(t_now_ms() - t0));
    evb_consumer_close(c);
}

/* On a ring-only topic a queue's floor holds the ring: an event nacked
 * for a while (or one the DLQ refuses) stays below the events members
 * take past it, and producers wait before they overwrite it. A member's
 * reads ahead, its seeks and its waits all release its reader: none may
 * let producers past the floor (a cold attack lost such events, and
 * found the queue calling itself damaged). */
Test(queue, a_held_floor_holds_a_ring_only_topic)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "jobs", &tc), 0, "%s", evb_last_error());
    evb_consumer *c = member("jobs", "q", 30000, EVB_NO_MAX_DELIVERIES);
    /* Event 0 held 1.5 s; event 1 nacked again at each delivery, so that
     * the member goes back and forth between it and new events. */
    publish_n("jobs", 0, 2);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_nack(c, &ev, 1500), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_nack(c, &ev, 0), 0);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "jobs", &(evb_producer_options){.block_ms = 0}), 0);
    int rc = 0;
    uint64_t published = 0;
    for (uint64_t i = 2; i < 4000; i++) {
        rc = evb_publish(p, &(evb_msg){.value = &i, .value_len = sizeof i,
                                       .partition = EVB_PARTITION_ANY});
        if (rc)
            break;
        published++;
        /* Taken and acked at once, then a short wait (waits release the
         * member's reader too). */
        int n = 0;
        while (n++ < 8 && (rc = evb_consumer_next(c, &ev, 1)) == 0) {
            uint64_t v;
            memcpy(&v, ev.value, sizeof v);
            cr_assert_eq(v == 1 ? evb_consumer_nack(c, &ev, 0) : evb_consumer_ack(c, &ev), 0);
        }
        cr_assert(rc == 0 || rc == -ETIMEDOUT, "%d %s", rc, evb_last_error());
        rc = 0;
    }
    evb_producer_close(p);
    cr_assert_eq(rc, -EAGAIN, "the producer went on past the held event: %d, %llu published",
                 rc, (unsigned long long)published);
    cr_assert_lt(published, (64u << 10) / 64, "%llu published over a 64 KiB ring",
                 (unsigned long long)published);
    /* The held event, intact, once its delay is over. */
    uint64_t t0 = t_now_ms(), v = UINT64_MAX;
    while (t_now_ms() - t0 < 5000) {
        rc = evb_consumer_next(c, &ev, 200);
        if (rc == -ETIMEDOUT)
            continue;
        cr_assert_eq(rc, 0, "%d %s", rc, evb_last_error());
        memcpy(&v, ev.value, sizeof v);
        cr_assert_eq(evb_consumer_ack(c, &ev), 0);
        if (v == 0)
            break;
        v = UINT64_MAX;
    }
    cr_assert_eq(v, 0, "the held event never came back");
    cr_expect_eq(ev.lost_bytes, 0, "lost %llu bytes", (unsigned long long)ev.lost_bytes);
    evb_consumer_close(c);
}

/* A reject refused before it writes (a reason too long) leaves the event
 * its member's as any in flight, not held for ack_wait + 10 s: it can be
 * acknowledged, and another member takes it after ack_wait. */
Test(queue, a_refused_reject_holds_nothing)
{
    evb_consumer *a, *b;
    evb_event ea, eb;
    two_members(200, 1, &a, &b, &ea);
    char reason[EVB_DLQ_REASON_MAX + 2];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    cr_assert_eq(evb_consumer_reject(a, &ea, reason), -EINVAL);
    cr_assert_eq(dlq_events("jobs"), 0);
    usleep(300000);
    /* Within a's lease (1000 ms, no expulsion), past its ack_wait. */
    cr_expect_eq(evb_consumer_next(b, &eb, 400), 0, "not handed on after ack_wait");
    evb_consumer_close(a);
    evb_consumer_close(b);
}

/* A member busy with one event for longer than the default lease, but
 * within ack_wait, is not expelled: nobody else gets its event. */
Test(queue, busy_member_keeps_its_event_within_ack_wait)
{
    make_topic("jobs", 1, false);
    evb_consumer *a = member("jobs", "q", 3000, 0);
    evb_consumer *b = member("jobs", "q", 3000, 0);
    publish_n("jobs", 0, 1);
    evb_event ea, eb;
    cr_assert_eq(evb_consumer_next(a, &ea, 1000), 0);
    /* A works 1.5 s without a call; B looks all along. */
    uint64_t end = t_now_ms() + 1500;
    while (t_now_ms() < end)
        cr_assert_eq(evb_consumer_next(b, &eb, 50), -ETIMEDOUT, "B got A's event");
    cr_assert_eq(evb_consumer_ack(a, &ea), 0, "%s", evb_last_error());
    evb_consumer_close(a);
    evb_consumer_close(b);
}

/* An event of another group (same partition and token) cannot ack ours. */
Test(queue, ack_checks_the_event)
{
    make_topic("jobs", 1, false);
    make_topic("other", 1, false);
    evb_consumer *a = member("jobs", "q", 0, 0);
    evb_consumer *o = member("other", "q", 0, 0);
    publish_n("jobs", 0, 1);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "other", NULL), 0);
    static char big[200];
    evb_msg m = {.value = big, .value_len = sizeof big, .partition = 0};
    cr_assert_eq(evb_publish(p, &m), 0);
    cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
    evb_event ea, eo;
    cr_assert_eq(evb_consumer_next(a, &ea, 1000), 0);
    cr_assert_eq(evb_consumer_next(o, &eo, 1000), 0);
    cr_assert_eq(evb_consumer_next(o, &eo, 1000), 0); /* position != ea's */
    eo.ack_token = ea.ack_token;
    cr_assert_eq(evb_consumer_ack(a, &eo), -EINVAL, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_ack(a, &ea), 0);
    evb_consumer_close(a);
    evb_consumer_close(o);
}

/* Topic jobs (DURABLE or not) with N events, and the first member of a
 * new queue q asked to start at offset AT. */
static evb_consumer *started_at(bool durable, uint64_t n, uint64_t at)
{
    make_topic("jobs", 1, durable);
    publish_n("jobs", 0, n);
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q",
                               .start = EVB_START_OFFSET, .start_value = at};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0, "%s", evb_last_error());
    return c;
}

/* A new queue group asked to start at an offset starts there. */
Test(queue, starts_at_an_offset)
{
    evb_consumer *c = started_at(false, 20, 12);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(ev.offset, 12);
    cr_assert_eq(val(&ev), 12);
    evb_consumer_close(c);
}

/* Each member's "delivered" counts the events it was handed: two members
 * racing for the same events read more than they take (a take another
 * member won reads the event too), and the counts added up to more than
 * the events (a cold attack saw 26 for 20). */
Test(queue, members_delivered_add_up_to_the_events)
{
    make_topic("jobs", 2, false);
    publish_n("jobs", 0, 40);
    evb_consumer *m[2] = {member("jobs", "q", 0, 0), member("jobs", "q", 0, 0)};
    int got = 0;
    evb_event ev;
    for (int idle = 0; idle < 2;) {
        int any = 0;
        for (int k = 0; k < 2; k++)
            if (evb_consumer_next(m[k], &ev, 0) == 0) {
                cr_assert_eq(evb_consumer_ack(m[k], &ev), 0);
                got++;
                any = 1;
            }
        idle = any ? 0 : idle + 1;
    }
    cr_assert_eq(got, 40);
    usleep(150000); /* past a tick: the counts are as of each member's last */
    for (int k = 0; k < 2; k++)
        evb_consumer_next(m[k], &ev, 0);
    evb_group_summary sum;
    evb_group_member_stat ms[2];
    evb_group_partition_stat ps[2];
    int n = evb_group_stat(bus, "jobs", "q", &sum, ms, 2, ps, 2);
    cr_assert_eq(n, 2, "%d", n);
    cr_expect_eq(ms[0].delivered + ms[1].delivered, 40, "%llu + %llu",
                 (unsigned long long)ms[0].delivered, (unsigned long long)ms[1].delivered);
    /* And so does each member's reader of each partition (`evbus stat`),
     * which counted every read. */
    uint64_t per_reader = 0;
    for (uint32_t p = 0; p < 2; p++) {
        evb_reader_stat rs[4];
        int nr = evb_reader_list(bus, "jobs", p, rs, 4);
        cr_assert_eq(nr, 2, "partition %u: %d readers", p, nr);
        for (int k = 0; k < nr; k++)
            per_reader += rs[k].delivered;
    }
    cr_expect_eq(per_reader, 40, "readers' delivered add up to %llu",
                 (unsigned long long)per_reader);
    evb_consumer_close(m[0]);
    evb_consumer_close(m[1]);
}

/* A member's reader count moves on while its floor stays (an event it
 * has not acked holds the floor): the slot's count was published only
 * when the floor moved, so `evbus stat` showed it stuck. */
Test(queue, a_held_floor_does_not_freeze_the_count)
{
    make_topic("jobs", 1, false);
    evb_consumer *c = member("jobs", "q", 0, 0);
    publish_n("jobs", 0, 4);
    evb_event ev[4];
    for (int k = 0; k < 3; k++)
        cr_assert_eq(evb_consumer_next(c, &ev[k], 1000), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_ack(c, &ev[1]), 0);
    cr_assert_eq(evb_consumer_ack(c, &ev[2]), 0);
    cr_assert_eq(evb_consumer_next(c, &ev[3], 1000), 0, "%s", evb_last_error());
    usleep(150000); /* past a tick */
    cr_assert_eq(evb_consumer_next(c, &ev[0], 0), -EAGAIN);
    evb_reader_stat rs[2];
    cr_assert_eq(evb_reader_list(bus, "jobs", 0, rs, 2), 1);
    cr_expect_eq(rs[0].delivered, 4, "delivered %llu", (unsigned long long)rs[0].delivered);
    evb_consumer_close(c);
}

/* A queue started at or past the tail's offset starts at the tail: it
 * handed out the whole history at once (found by a cold attack). */
Test(queue, starts_past_the_end_at_the_tail)
{
    evb_consumer *c = started_at(true, 5, 6);
    evb_event ev;
    cr_expect_eq(evb_consumer_next(c, &ev, 200), -ETIMEDOUT, "handed out offset %llu",
                 (unsigned long long)ev.offset);
    publish_n("jobs", 5, 1);
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_expect_eq(ev.offset, 5, "the next event published");
    evb_consumer_close(c);
}

/* A ring-only queue whose only member died holding an event, lapped by
 * producers while nobody held the ring: the next member goes on, told
 * of the loss, instead of failing for good. */
static int hold_and_die(void *arg)
{
    (void)arg;
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        return 10;
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q"};
    evb_consumer *c;
    evb_event ev;
    if (evb_consumer_open(&c, b, "jobs", &co) || evb_consumer_next(c, &ev, 2000))
        return 11;
    raise(SIGKILL);
    return 0;
}

Test(queue, ring_lapped_while_nobody_held_it)
{
    make_topic("jobs", 1, false);
    evb_consumer_close(member("jobs", "q", 0, 0));
    publish_n("jobs", 0, 10);
    pid_t pid = t_spawn(hold_and_die, NULL);
    cr_assert_eq(t_wait_exit(pid, 10000), 128 + SIGKILL);
    /* Nobody holds the ring now (the dead member's slots are reaped):
     * lap it a few times. */
    evb_producer_options po = {.block_ms = 5000};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "jobs", &po), 0);
    static char v[1000];
    for (int i = 0; i < 4000; i++) {
        evb_msg m = {.value = v, .value_len = sizeof v, .partition = 0};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_producer_close(p);
    evb_consumer *c = member("jobs", "q", 0, 0);
    evb_event ev;
    uint64_t lost = 0;
    int n = 0, rc;
    while ((rc = evb_consumer_next(c, &ev, 200)) == 0) {
        /* A queue keeps positions, not offsets: the gap is told in bytes
         * (lost_events counts only what the offsets tell). */
        lost += ev.lost_bytes;
        cr_assert_eq(evb_consumer_ack(c, &ev), 0);
        n++;
    }
    cr_assert_eq(rc, -ETIMEDOUT, "next: %s", evb_last_error());
    cr_assert_gt(n, 0);
    cr_assert_gt(lost, 0, "the loss was not reported");
    evb_consumer_close(c);
}

/* A slot overwritten with what no lap can put there (any member may
 * write the group file): -EBADMSG naming the file, not a member spinning
 * forever on an event it can never take. */
Test(queue, damaged_slot_is_reported)
{
    make_topic("jobs", 1, false);
    evb_consumer *c = member("jobs", "q", 0, 0);
    publish_n("jobs", 0, 3);
    evb_event ev;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        cr_assert_eq(evb_consumer_ack(c, &ev), 0);
    }
    /* Slot 5 of partition 0: header, 64 member slots, one partition
     * entry, the queue head, then 32 bytes a slot. */
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/q.grp", t_bus_dir());
    FILE *f = fopen(path, "r+");
    cr_assert(f);
    uint64_t junk = 0x4141414141414141ull;
    fseek(f, 4352 + 64 + 64 + 5 * 32, SEEK_SET);
    fwrite(&junk, 8, 1, f);
    fclose(f);
    publish_n("jobs", 3, 5);
    int rc = 0;
    for (int i = 0; i < 5 && rc == 0; i++) {
        rc = evb_consumer_next(c, &ev, 500);
        if (rc == 0)
            evb_consumer_ack(c, &ev);
    }
    cr_assert_eq(rc, -EBADMSG, "next gave %d", rc);
    cr_assert(strstr(evb_last_error(), "damaged group file"), "%s", evb_last_error());
    evb_consumer_close(c);
}

/* A queue position the file gives that no event can have (a flipped low
 * bit of the floor, of fetch or of a slot's position) is damage of the
 * group file (-EBADMSG, said), at a member's open and at its takes: never
 * -EINVAL, which the CLI reports as its caller's bad argument, exit 2 (a
 * cold attack's flipped floor). */
Test(queue, a_position_off_alignment_in_the_file_is_damage)
{
    make_topic("jobs", 1, false);
    evb_consumer *c = member("jobs", "q", 0, 0);
    publish_n("jobs", 0, 3);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_ack(c, &ev), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0); /* slot 1, in flight */
    evb_consumer_close(c);
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/q.grp", t_bus_dir());
    /* The queue head after the one partition entry: fetch_pos, floor_pos;
     * slot 1's position. */
    const long head = EVB_GRP_PARTS_AT + EVB_GRP_PART_BYTES,
               words[] = {head + offsetof(struct evb_queue_head, fetch_pos),
                          head + offsetof(struct evb_queue_head, floor_pos),
                          head + EVB_QUEUE_HEAD_BYTES + EVB_QUEUE_SLOT_BYTES +
                              offsetof(struct evb_queue_slot, pos)};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        for (int bit = 0; bit < 3; bit++) {
            FILE *f = fopen(path, "r+");
            cr_assert(f);
            uint64_t v;
            fseek(f, words[w], SEEK_SET);
            cr_assert_eq(fread(&v, 8, 1, f), 1);
            uint64_t flipped = v ^ (1ull << bit);
            fseek(f, words[w], SEEK_SET);
            fwrite(&flipped, 8, 1, f);
            fflush(f);
            evb_consumer *m = NULL;
            int rc = evb_consumer_open(&m, bus, "jobs", &(evb_consumer_options){
                                           .kind = EVB_QUEUE_MEMBER, .name = "q"});
            for (int k = 0; rc == 0 && k < 4; k++) {
                rc = evb_consumer_next(m, &ev, 300);
                if (rc == 0)
                    evb_consumer_nack(m, &ev, 0);
                else if (rc == -ETIMEDOUT)
                    rc = 0;
            }
            if (m)
                evb_consumer_close(m);
            cr_expect_eq(rc, -EBADMSG, "word at %ld, bit %d: %d %s", words[w], bit, rc,
                         evb_last_error());
            cr_expect(strstr(evb_last_error(), "damaged group file"), "%s", evb_last_error());
            fseek(f, words[w], SEEK_SET);
            fwrite(&v, 8, 1, f);
            fclose(f);
        }
    }
}

/* A queue member takes a reader slot in every partition: with the
 * topic's 64 slots taken by members, the next one is refused with a
 * message that says why, and the members already in keep working. */
Test(queue, members_past_the_reader_slots_refused_clearly)
{
    make_topic("jobs", 2, false);
    enum { MAX = 80 };
    evb_consumer *m[MAX];
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q"};
    int n = 0, rc = 0;
    while (n < MAX && (rc = evb_consumer_open(&m[n], bus, "jobs", &co)) == 0)
        n++;
    cr_assert_eq(n, 64, "%d members", n);
    cr_assert_eq(rc, -EBUSY, "rc %d", rc);
    cr_assert_not_null(strstr(evb_last_error(), "reader slot in every partition"), "%s",
                       evb_last_error());
    publish_n("jobs", 0, 1);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(m[63], &ev, 1000), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_ack(m[63], &ev), 0);
    for (int k = 0; k < n; k++)
        evb_consumer_close(m[k]);
}

/* Retention removes an event still in flight (its member gone, or not):
 * when it comes up again it is reported lost (lost_bytes), counted as
 * handled, and the queue goes on with what the log still holds; nothing
 * wedges. The same for the backlog nobody had taken yet. */
Test(queue, retention_past_events_in_flight_is_loss_not_damage)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10,
                           .durability = EVB_DURABILITY_ASYNC, .segment_bytes = 64 << 10,
                           .retain_bytes = 64 << 10};
    evb_bus_close(bus);
    evb_bus_options bo = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
    cr_assert_eq(evb_topic_create(bus, "jobs", &tc), 0, "%s", evb_last_error());
    publish_n("jobs", 0, 10);
    evb_consumer *a = member("jobs", "q", 0, 0);
    evb_event ev;
    cr_assert_eq(evb_consumer_next(a, &ev, 1000), 0);
    cr_assert_eq(val(&ev), 0);
    evb_consumer_close(a); /* 0 in flight, its member gone: due at once */
    publish_n("jobs", 10, 20000);
    cr_assert_eq(evb_topic_retain(bus, "jobs"), 0, "%s", evb_last_error());
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "jobs", 0, &st), 0);
    cr_assert_gt(st.log_start_offset, 100, "retention removed nothing");
    evb_consumer *b = member("jobs", "q", 0, 0);
    uint64_t got = 0, lost_bytes = 0, lost_events = 0, first = UINT64_MAX;
    int rc;
    while ((rc = evb_consumer_next(b, &ev, 300)) == 0) {
        cr_assert_eq(ev.deliveries, 1, "event %llu: only the lost one was in flight",
                     (unsigned long long)val(&ev));
        cr_assert_geq(ev.offset, st.log_start_offset);
        if (first == UINT64_MAX)
            first = val(&ev);
        lost_bytes += ev.lost_bytes;
        lost_events += ev.lost_events;
        got++;
        cr_assert_eq(evb_consumer_ack(b, &ev), 0, "%s", evb_last_error());
    }
    cr_assert_eq(rc, -ETIMEDOUT, "%s", evb_last_error());
    cr_assert_eq(got, 20010 - st.log_start_offset, "got %llu from %llu",
                 (unsigned long long)got, (unsigned long long)first);
    cr_assert_gt(lost_bytes, 0, "the loss was not reported");
    /* A queue keeps positions: events lost are not counted, never
     * overcounted. */
    cr_assert_leq(lost_events, st.log_start_offset);
    evb_group_summary sum;
    evb_group_partition_stat ps[1];
    cr_assert_geq(evb_group_stat(bus, "jobs", "q", &sum, NULL, 0, ps, 1), 0);
    cr_assert_eq(ps[0].in_flight, 0);
    evb_consumer_close(b);
}

/* Only one event was in flight when retention removed it, every other
 * one acknowledged: its loss is that one event, not the log bytes from it
 * to the log start (most of which were delivered and acked). */
Test(queue, retention_loss_of_one_event_in_flight_is_one_event)
{
    /* Age retention: the first segment (event 0 and about 1000 more, all
     * but 0 acked) goes, the newest stays; nothing untaken is removed. */
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10,
                           .durability = EVB_DURABILITY_ASYNC, .segment_bytes = 64 << 10,
                           .retain_ms = 300};
    evb_bus_close(bus);
    evb_bus_options bo = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
    cr_assert_eq(evb_topic_create(bus, "jobs", &tc), 0, "%s", evb_last_error());
    publish_n("jobs", 0, 1500);
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q"};
    evb_consumer *a;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0, "%s", evb_last_error());
    evb_event ev;
    for (int i = 0; i < 1500; i++) {
        int rc = evb_consumer_next(a, &ev, 1000);
        cr_assert_eq(rc, 0, "event %d: %d %s", i, rc, evb_last_error());
        if (val(&ev) != 0)
            cr_assert_eq(evb_consumer_ack(a, &ev), 0);
    }
    evb_consumer_close(a); /* event 0 in flight, its member gone */
    struct timespec nap = {0, 500 * 1000000L};
    nanosleep(&nap, NULL);
    cr_assert_eq(evb_topic_retain(bus, "jobs"), 0, "%s", evb_last_error());
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "jobs", 0, &st), 0);
    cr_assert_gt(st.log_start_offset, 100, "retention removed nothing");
    cr_assert_lt(st.log_start_offset, 1500, "retention removed events never taken");
    evb_consumer *b;
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &co), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_next(b, &ev, 300), -ETIMEDOUT, "everything else was acked");
    publish_n("jobs", 1500, 1);
    cr_assert_eq(evb_consumer_next(b, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert_eq(val(&ev), 1500);
    cr_assert_eq(ev.lost_events, 1, "lost %llu events, %llu bytes",
                 (unsigned long long)ev.lost_events, (unsigned long long)ev.lost_bytes);
    cr_assert_eq(ev.lost_bytes, 0);
    cr_assert_eq(evb_consumer_ack(b, &ev), 0);
    evb_consumer_close(b);
}
