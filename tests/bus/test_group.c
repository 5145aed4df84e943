/*
 * test_group.c - partition groups with real member processes: an even
 * split, a SIGKILLed member's partitions taken over within the bound and
 * resumed exactly at its committed cursors (nothing committed delivered
 * again, nothing skipped), a SIGSTOPped member expelled and fenced (its
 * commit fails and the new owner's cursor stands), the rebalance
 * callbacks, and bad input.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_helpers.h"

#define PARTS 12
#define PER_PART 1500
#define MEMBERS 3

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

TestSuite(group, .init = setup, .fini = teardown, .timeout = 120);

static void make_topic(const char *name, uint32_t parts, bool durable)
{
    evb_topic_config tc = {.partitions = parts, .ring_bytes = 1 << 20};
    if (durable)
        tc.durability = EVB_DURABILITY_ASYNC;
    evb_bus_close(bus);
    evb_bus_options bo = {.data_dir = durable ? t_data_dir() : NULL};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
    cr_assert_eq(evb_topic_create(bus, name, &tc), 0, "%s", evb_last_error());
}

/* PER_PART events into each of PARTS partitions, value = offset. */
static void publish_all(const char *topic, uint32_t parts, uint64_t per_part)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, topic, NULL), 0);
    for (uint64_t i = 0; i < per_part; i++)
        for (uint32_t q = 0; q < parts; q++) {
            evb_msg m = {.value = &i, .value_len = sizeof i, .partition = (int32_t)q};
            cr_assert_eq(evb_publish(p, &m), 0);
        }
    evb_producer_close(p);
}

/* What the member processes tell the parent, in shared memory. */
struct delivery {
    uint16_t member;
    uint16_t part;
    uint32_t offset;
    _Atomic uint32_t ok; /* stored last: the entry is written */
};
struct board {
    _Atomic uint32_t owned[MEMBERS];
    _Atomic uint32_t ready[MEMBERS];
    /* Per member and partition: the offset a commit is about to record
     * (+1, 0 = none) and the one it did record. */
    _Atomic uint64_t committing[MEMBERS][PARTS];
    _Atomic uint64_t committed[MEMBERS][PARTS];
    _Atomic uint64_t delivered_n;
    _Atomic int32_t commit_rc[MEMBERS];
    char commit_msg[256];
    _Atomic uint32_t stop;
    struct delivery log[PARTS * PER_PART * 3];
};

static struct board *board_new(void)
{
    struct board *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(b, MAP_FAILED);
    return b;
}

struct member_arg {
    struct board *b;
    const char *topic;
    int me;
    uint32_t lease_ms;
    uint32_t slow_us;    /* per event */
    uint32_t commit_every;
};

struct member_state {
    struct member_arg *a;
    uint64_t last[PARTS];
};

/* Commit what was read, telling the parent before and after. */
static int member_commit(evb_consumer *c, struct member_state *ms)
{
    struct board *b = ms->a->b;
    int me = ms->a->me;
    for (int q = 0; q < PARTS; q++)
        if (ms->last[q] != UINT64_MAX)
            atomic_store(&b->committing[me][q], ms->last[q] + 1);
    int rc = evb_consumer_commit(c);
    atomic_store(&b->commit_rc[me], rc);
    if (rc == 0)
        for (int q = 0; q < PARTS; q++)
            if (ms->last[q] != UINT64_MAX)
                atomic_store(&b->committed[me][q], ms->last[q] + 1);
    return rc;
}

/* As a careful application does: commit before partitions go. */
static void member_rebalance(evb_consumer *c, uint32_t what, const uint32_t *parts,
                             uint32_t n, void *arg)
{
    struct member_state *ms = arg;
    if (what == EVB_PARTITIONS_REVOKED)
        member_commit(c, ms);
    if (what != EVB_PARTITIONS_ASSIGNED)
        for (uint32_t k = 0; k < n; k++)
            ms->last[parts[k]] = UINT64_MAX;
}

static int member_main(void *argp)
{
    struct member_arg *a = argp;
    struct board *b = a->b;
    evb_bus *mb;
    if (evb_bus_open(&mb, t_bus_dir(), NULL))
        return 10;
    struct member_state ms = {.a = a};
    memset(ms.last, 0xff, sizeof ms.last);
    uint64_t *last = ms.last;
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "workers",
                               .lease_ms = a->lease_ms, .on_rebalance = member_rebalance,
                               .rebalance_arg = &ms};
    evb_consumer *c;
    if (evb_consumer_open(&c, mb, a->topic, &co))
        return 11;
    uint32_t since = 0;
    while (!atomic_load(&b->stop)) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 20);
        int n = evb_consumer_assignment(c, NULL, 0);
        atomic_store(&b->owned[a->me], (uint32_t)n);
        atomic_store(&b->ready[a->me], 1);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc)
            return 12;
        uint64_t i = atomic_fetch_add(&b->delivered_n, 1);
        if (i < sizeof b->log / sizeof b->log[0]) {
            b->log[i].member = (uint16_t)a->me;
            b->log[i].part = (uint16_t)ev.partition;
            b->log[i].offset = (uint32_t)ev.offset;
            atomic_store_explicit(&b->log[i].ok, 1, memory_order_release);
        }
        last[ev.partition] = ev.offset;
        if (a->slow_us)
            usleep(a->slow_us);
        if (++since >= a->commit_every) {
            since = 0;
            member_commit(c, &ms);
        }
    }
    evb_consumer_commit(c);
    evb_consumer_close(c);
    evb_bus_close(mb);
    return 0;
}

static bool wait_owned(struct board *b, const uint32_t *want, const bool *alive, int ms)
{
    uint64_t end = t_now_ms() + (uint64_t)ms;
    do {
        bool ok = true;
        for (int m = 0; m < MEMBERS; m++)
            if (alive[m] && atomic_load(&b->owned[m]) != want[m])
                ok = false;
        if (ok)
            return true;
        usleep(2000);
    } while (t_now_ms() < end);
    return false;
}

/* Three members split twelve partitions 4/4/4; one is SIGKILLed mid-work;
 * the other two own 6 each within the bound; every event is processed,
 * and the only repeats are events the dead member had not committed,
 * resumed exactly at its committed cursor. */
static void kill_member(bool durable)
{
    make_topic("jobs", PARTS, durable);
    publish_all("jobs", PARTS, PER_PART);
    struct board *b = board_new();
    struct member_arg args[MEMBERS];
    pid_t pids[MEMBERS];
    for (int m = 0; m < MEMBERS; m++) {
        args[m] = (struct member_arg){b, "jobs", m, 1000, 300, 7};
        pids[m] = t_spawn(member_main, &args[m]);
    }
    bool alive[MEMBERS] = {true, true, true};
    uint32_t even[MEMBERS] = {4, 4, 4};
    cr_assert(wait_owned(b, even, alive, 10000), "no 4/4/4 split: %u %u %u",
              atomic_load(&b->owned[0]), atomic_load(&b->owned[1]),
              atomic_load(&b->owned[2]));
    usleep(150000);
    kill(pids[0], SIGKILL);
    cr_assert_eq(t_wait_exit(pids[0], 5000), 128 + SIGKILL);
    uint64_t t0 = t_now_ms();
    alive[0] = false;
    uint32_t six[MEMBERS] = {0, 6, 6};
    cr_assert(wait_owned(b, six, alive, 5000), "no 6/6 split: %u %u",
              atomic_load(&b->owned[1]), atomic_load(&b->owned[2]));
    uint64_t took = t_now_ms() - t0;
    cr_log_info("rebalance after SIGKILL took %llu ms", (unsigned long long)took);
    cr_expect_leq(took, 1000, "rebalance took %llu ms, the bound is 1000",
                  (unsigned long long)took);
    /* Drain, then stop. */
    uint64_t total = (uint64_t)PARTS * PER_PART;
    uint64_t end = t_now_ms() + 60000;
    static uint8_t seen[PARTS][PER_PART];
    memset(seen, 0, sizeof seen);
    uint64_t distinct = 0, scanned = 0;
    while (distinct < total && t_now_ms() < end) {
        uint64_t n = atomic_load(&b->delivered_n);
        for (; scanned < n; scanned++) {
            if (!atomic_load_explicit(&b->log[scanned].ok, memory_order_acquire))
                break; /* claimed, not written yet: next round */
            struct delivery d = {b->log[scanned].member, b->log[scanned].part,
                                 b->log[scanned].offset, 1};
            if (d.part < PARTS && d.offset < PER_PART && !seen[d.part][d.offset]++)
                distinct++;
        }
        usleep(5000);
    }
    atomic_store(&b->stop, 1);
    for (int m = 1; m < MEMBERS; m++)
        cr_assert_eq(t_wait_exit(pids[m], 10000), 0);
    cr_assert_eq(distinct, total, "only %llu of %llu events processed",
                 (unsigned long long)distinct, (unsigned long long)total);
    /* Repeats: only in partitions the dead member owned, only at or
     * after its commit, and the first delivery there by a survivor is
     * exactly its committed cursor. */
    uint64_t dups = 0;
    uint64_t first_after[PARTS];
    memset(first_after, 0xff, sizeof first_after);
    bool dead_had[PARTS] = {0};
    for (uint64_t i = 0; i < scanned; i++) {
        const struct delivery *d0 = &b->log[i];
        struct delivery d = {d0->member, d0->part, d0->offset, 1};
        if (d.member == 0)
            dead_had[d.part] = true;
        else if (dead_had[d.part] && first_after[d.part] == UINT64_MAX)
            first_after[d.part] = d.offset;
    }
    for (int q = 0; q < PARTS; q++) {
        uint64_t c = atomic_load(&b->committed[0][q]);
        uint64_t cing = atomic_load(&b->committing[0][q]);
        if (!dead_had[q])
            continue;
        cr_assert(first_after[q] == c || first_after[q] == cing,
                  "partition %d: successor started at %llu, dead member committed %llu "
                  "(was committing %llu)", q, (unsigned long long)first_after[q],
                  (unsigned long long)c, (unsigned long long)cing);
    }
    for (int q = 0; q < PARTS; q++)
        for (int o = 0; o < PER_PART; o++)
            if (seen[q][o] > 1) {
                cr_assert(dead_had[q], "partition %d offset %d delivered %u times, but the "
                          "dead member never owned it", q, o, seen[q][o]);
                dups += seen[q][o] - 1u;
            }
    cr_log_info("%llu repeats of uncommitted events", (unsigned long long)dups);
    munmap(b, sizeof *b);
}

Test(group, sigkill_member_ring)
{
    kill_member(false);
}

Test(group, sigkill_member_durable)
{
    kill_member(true);
}

/* A member paused past its lease loses its partitions; resumed, its
 * commit fails and the new owner's cursor stands. */
static int paused_main(void *argp)
{
    struct member_arg *a = argp;
    struct board *b = a->b;
    evb_bus *mb;
    if (evb_bus_open(&mb, t_bus_dir(), NULL))
        return 10;
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "workers",
                               .lease_ms = a->lease_ms};
    evb_consumer *c;
    if (evb_consumer_open(&c, mb, a->topic, &co))
        return 11;
    evb_event ev;
    for (int i = 0; i < 10; i++)
        if (evb_consumer_next(c, &ev, 1000))
            return 12;
    atomic_store(&b->ready[a->me], 1);
    raise(SIGSTOP);
    /* Resumed: we were expelled meanwhile. */
    int rc = evb_consumer_commit(c);
    snprintf(b->commit_msg, sizeof b->commit_msg, "%s", evb_last_error());
    atomic_store(&b->commit_rc[a->me], rc);
    evb_consumer_close(c);
    evb_bus_close(mb);
    return 0;
}

Test(group, sigstop_member_is_fenced)
{
    make_topic("jobs", 4, true);
    publish_all("jobs", 4, 200);
    struct board *b = board_new();
    struct member_arg a0 = {b, "jobs", 0, 300, 0, 1};
    pid_t p0 = t_spawn(paused_main, &a0);
    uint64_t until = t_now_ms() + 10000;
    while (!atomic_load(&b->ready[0]) && t_now_ms() < until)
        usleep(1000);
    cr_assert(atomic_load(&b->ready[0]), "the first member never got going");
    /* Wait until it stopped itself. */
    int st;
    cr_assert_eq(waitpid(p0, &st, WUNTRACED), p0);
    cr_assert(WIFSTOPPED(st));
    /* A second member takes everything once the first is past its lease,
     * and commits all it read. */
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "workers", .lease_ms = 300};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0, "%s", evb_last_error());
    uint64_t end = t_now_ms() + 5000;
    evb_event ev;
    int got = 0;
    while (t_now_ms() < end && (evb_consumer_assignment(c, NULL, 0) < 4 || got < 800)) {
        if (evb_consumer_next(c, &ev, 20) == 0)
            got++;
    }
    cr_assert_eq(evb_consumer_assignment(c, NULL, 0), 4);
    cr_assert_eq(got, 800, "the new owner read %d of 800 (it starts at the first "
                 "member's start: nothing was committed)", got);
    cr_assert_eq(evb_consumer_commit(c), 0);
    kill(p0, SIGCONT);
    cr_assert_eq(t_wait_exit(p0, 10000), 0);
    int crc = atomic_load(&b->commit_rc[0]);
    cr_assert_eq(crc, -ESTALE, "the paused member's commit gave %d", crc);
    /* It had all four: the refusal names all four. */
    cr_assert_not_null(strstr(b->commit_msg, "partitions 0,1,2,3 are no longer yours"), "%s",
                       b->commit_msg);
    evb_consumer_close(c);
    /* The cursor is the second member's: a new member has nothing left. */
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0);
    cr_assert_eq(evb_consumer_next(c, &ev, 300), -ETIMEDOUT);
    evb_consumer_close(c);
    munmap(b, sizeof *b);
}

/* Callbacks: a second member joining makes the first give back half
 * (REVOKED, while it can still commit), the joiner gets them (ASSIGNED);
 * the joiner starts exactly after what the first committed. */
struct cb_log {
    uint32_t what[16], n[16], count;
    evb_consumer *self;
    int commit_rc;
    int read_rc[2]; /* next and poll from the callback: refused */
};

static int count_ev(const evb_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
    return 0;
}

static void on_rebalance(evb_consumer *c, uint32_t what, const uint32_t *parts, uint32_t n,
                         void *arg)
{
    struct cb_log *l = arg;
    (void)parts;
    if (l->count < 16) {
        l->what[l->count] = what;
        l->n[l->count++] = n;
    }
    if (what == EVB_PARTITIONS_REVOKED)
        l->commit_rc = evb_consumer_commit(c);
    evb_event ev;
    l->read_rc[0] = evb_consumer_next(c, &ev, 0);
    l->read_rc[1] = evb_consumer_poll(c, count_ev, NULL, 4);
}

Test(group, callbacks_and_handover_at_commit)
{
    make_topic("jobs", 4, false);
    publish_all("jobs", 4, 50);
    struct cb_log l1 = {0}, l2 = {0};
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g",
                               .on_rebalance = on_rebalance, .rebalance_arg = &l1};
    evb_consumer *c1, *c2;
    cr_assert_eq(evb_consumer_open(&c1, bus, "jobs", &co), 0);
    cr_assert_eq(l1.count, 1);
    cr_assert_eq(l1.what[0], EVB_PARTITIONS_ASSIGNED);
    cr_assert_eq(l1.n[0], 4);
    evb_event ev;
    int got = 0;
    while (evb_consumer_next(c1, &ev, 0) == 0)
        got++;
    cr_assert_eq(got, 200);
    co.rebalance_arg = &l2;
    cr_assert_eq(evb_consumer_open(&c2, bus, "jobs", &co), 0);
    /* c2 joined: c1 gives back two at its next call, committing first. */
    uint64_t end = t_now_ms() + 3000;
    while (t_now_ms() < end && (evb_consumer_assignment(c1, NULL, 0) != 2 ||
                                evb_consumer_assignment(c2, NULL, 0) != 2)) {
        evb_consumer_next(c1, &ev, 10);
        evb_consumer_next(c2, &ev, 10);
    }
    cr_assert_eq(evb_consumer_assignment(c1, NULL, 0), 2);
    cr_assert_eq(evb_consumer_assignment(c2, NULL, 0), 2);
    cr_assert_eq(l1.what[1], EVB_PARTITIONS_REVOKED);
    cr_assert_eq(l1.n[1], 2);
    cr_assert_eq(l1.commit_rc, 0);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(l1.read_rc[k], -EINVAL, "call %d from the callback gave %d", k,
                     l1.read_rc[k]);
        cr_assert_eq(l2.read_rc[k], -EINVAL, "call %d from the callback gave %d", k,
                     l2.read_rc[k]);
    }
    cr_assert_eq(l2.what[l2.count - 1], EVB_PARTITIONS_ASSIGNED);
    /* Everything was committed before the handover: nothing comes again. */
    cr_assert_eq(evb_consumer_next(c2, &ev, 100), -ETIMEDOUT);
    evb_consumer_close(c1);
    /* c1 left: c2 takes all four at its next call. */
    end = t_now_ms() + 3000;
    while (t_now_ms() < end && evb_consumer_assignment(c2, NULL, 0) != 4)
        evb_consumer_next(c2, &ev, 10);
    cr_assert_eq(evb_consumer_assignment(c2, NULL, 0), 4);
    evb_consumer_close(c2);
}

Test(group, bad_input)
{
    make_topic("jobs", 2, false);
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "bad/name"};
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), -EINVAL);
    co.name = NULL;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), -EINVAL);
    co = (evb_consumer_options){.kind = EVB_GROUP_MEMBER, .name = "g", .only_partition = 1};
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), -EINVAL);
    co.only_partition = 0;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0);
    uint32_t parts[2];
    cr_assert_eq(evb_consumer_assignment(c, parts, 2), 2);
    cr_assert_eq(evb_consumer_assignment(c, NULL, 1), -EINVAL);
    evb_consumer_close(c);
    /* A plain consumer has no assignment. */
    evb_consumer_options so = {0};
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &so), 0);
    cr_assert_eq(evb_consumer_assignment(c, NULL, 0), -EINVAL);
    evb_consumer_close(c);
}

/* A damaged group file is refused with a message naming it, and
 * nothing else about the topic changes. */
Test(group, damaged_file)
{
    make_topic("jobs", 2, false);
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g"};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0);
    evb_consumer_close(c);
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/g.grp", t_bus_dir());
    for (int how = 0; how < 3; how++) {
        FILE *f = fopen(path, "r+");
        cr_assert(f, "%s", path);
        if (how == 0) {
            fputs("garbage!", f); /* the magic */
        } else if (how == 1) {
            uint32_t parts = 7; /* another topic's */
            fseek(f, 12, SEEK_SET);
            fwrite(&parts, 4, 1, f);
        } else {
            fclose(f);
            cr_assert_eq(truncate(path, 100), 0);
            f = NULL;
        }
        if (f)
            fclose(f);
        cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), -EBADMSG, "case %d", how);
        cr_assert(strstr(evb_last_error(), "g.grp"), "%s", evb_last_error());
        unlink(path);
        cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0, "case %d", how);
        evb_consumer_close(c);
    }
}

/* A queue group file whose ack_wait is 0 or whose max_deliveries is past
 * 254 is damage: no open writes either, and believed they would hand
 * every event on at once, or count deliveries past what a slot holds (a
 * cold attack planted both unnoticed). */
Test(group, queue_parameters_out_of_range_are_damage)
{
    make_topic("jobs", 1, false);
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "q"};
    evb_consumer *c;
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/q.grp", t_bus_dir());
    struct { long at; uint32_t v; const char *says; } bad[] = {
        {72, 0, "ack_wait 0"}, {76, 255, "max_deliveries 255"},
        {76, 0xffffffffu, "max_deliveries 4294967295"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0, "%s", evb_last_error());
        evb_consumer_close(c);
        FILE *f = fopen(path, "r+");
        cr_assert(f, "%s", path);
        fseek(f, bad[k].at, SEEK_SET);
        fwrite(&bad[k].v, 4, 1, f);
        fclose(f);
        cr_expect_eq(evb_consumer_open(&c, bus, "jobs", &co), -EBADMSG, "%s", bad[k].says);
        cr_expect(strstr(evb_last_error(), bad[k].says), "%s", evb_last_error());
        unlink(path);
    }
}

/* A member expelled while it still had events to read (a slow consumer,
 * silent past its lease) hears LOST before it is handed anything from
 * the partitions another member took: two members never read one
 * partition at once. */
struct order_log {
    int lost_at;  /* events handed out before LOST was heard; -1: not yet */
    int events;
};

static void note_lost(evb_consumer *c, uint32_t what, const uint32_t *parts, uint32_t n,
                      void *arg)
{
    struct order_log *l = arg;
    (void)c, (void)parts, (void)n;
    if (what == EVB_PARTITIONS_LOST && l->lost_at < 0)
        l->lost_at = l->events;
}

Test(group, expelled_member_with_backlog_reads_nothing_it_lost)
{
    make_topic("jobs", 2, false);
    publish_all("jobs", 2, 200);
    struct order_log la = {-1, 0};
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g", .lease_ms = 200,
                               .on_rebalance = note_lost, .rebalance_arg = &la};
    evb_consumer *a, *b;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0);
    evb_event ev;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(evb_consumer_next(a, &ev, 0), 0);
        la.events++;
    }
    /* A is silent past its lease; B expels it and takes both partitions. */
    usleep(300000);
    evb_consumer_options cb = {.kind = EVB_GROUP_MEMBER, .name = "g", .lease_ms = 200};
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &cb), 0);
    uint64_t end = t_now_ms() + 3000;
    while (t_now_ms() < end && evb_consumer_assignment(b, NULL, 0) < 2)
        evb_consumer_next(b, &ev, 10);
    cr_assert_eq(evb_consumer_assignment(b, NULL, 0), 2);
    /* A wakes with a backlog: the first call must not hand it an event of
     * B's partitions. */
    int rc = evb_consumer_next(a, &ev, 0);
    if (rc == 0) {
        uint32_t mine[2];
        int n = evb_consumer_assignment(a, mine, 2);
        bool owned = false;
        for (int k = 0; k < n; k++)
            owned = owned || mine[k] == ev.partition;
        cr_assert(owned, "A was handed partition %u, which it does not own", ev.partition);
    }
    cr_assert_eq(la.lost_at, 10, "LOST came after %d events (expected before any more)",
                 la.lost_at);
    evb_consumer_close(a);
    evb_consumer_close(b);
}

/* The group file removed while a member runs (to start the group over):
 * the member notices at its next tick and joins the group at the path,
 * so the old and the new members do not both own every partition. */
Test(group, removed_file_member_joins_the_new_group)
{
    make_topic("jobs", 4, false);
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g"};
    evb_consumer *a, *b;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0);
    cr_assert_eq(evb_consumer_assignment(a, NULL, 0), 4);
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/g.grp", t_bus_dir());
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &co), 0);
    evb_event ev;
    uint64_t end = t_now_ms() + 3000;
    while (t_now_ms() < end && (evb_consumer_assignment(a, NULL, 0) != 2 ||
                                evb_consumer_assignment(b, NULL, 0) != 2)) {
        evb_consumer_next(a, &ev, 10);
        evb_consumer_next(b, &ev, 10);
    }
    cr_assert_eq(evb_consumer_assignment(a, NULL, 0), 2);
    cr_assert_eq(evb_consumer_assignment(b, NULL, 0), 2);
    evb_group_summary sum;
    cr_assert_eq(evb_group_stat(bus, "jobs", "g", &sum, NULL, 0, NULL, 0), 2);
    evb_consumer_close(a);
    evb_consumer_close(b);
}

/* evbus groups' numbers: a member's delivered count moves as it reads;
 * a group file of another version is -EPROTO from evb_group_stat too; a
 * damaged committed offset is learnt again from the frame, not blamed on
 * the ring. */
Test(group, stat_counts_and_damage)
{
    make_topic("jobs", 1, false);
    publish_all("jobs", 1, 50);
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g"};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0);
    evb_event ev;
    for (int i = 0; i < 30; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 0), 0);
    usleep(150000);
    cr_assert_eq(evb_consumer_next(c, &ev, 0), 0); /* a tick */
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_group_summary sum;
    evb_group_member_stat ms[1];
    cr_assert_eq(evb_group_stat(bus, "jobs", "g", &sum, ms, 1, NULL, 0), 1);
    cr_assert_geq(ms[0].delivered, 30, "delivered %llu", (unsigned long long)ms[0].delivered);
    evb_consumer_close(c);
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/g.grp", t_bus_dir());
    /* The committed offset (low 48 bits of the tag at 4352 + 24): garbage. */
    FILE *f = fopen(path, "r+");
    cr_assert(f);
    uint64_t tag;
    fseek(f, 4352 + 24, SEEK_SET);
    cr_assert_eq(fread(&tag, 8, 1, f), 1);
    tag = (tag & ~((1ull << 48) - 1)) | 12345;
    fseek(f, 4352 + 24, SEEK_SET);
    fwrite(&tag, 8, 1, f);
    fclose(f);
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_next(c, &ev, 0), 0, "%s", evb_last_error());
    cr_assert_eq(ev.offset, 31, "resumed at offset %llu", (unsigned long long)ev.offset);
    evb_consumer_close(c);
    /* Another version. */
    f = fopen(path, "r+");
    fseek(f, 8, SEEK_SET);
    fputc(2, f);
    fclose(f);
    cr_assert_eq(evb_group_stat(bus, "jobs", "g", &sum, ms, 1, NULL, 0), -EPROTO);
    cr_assert(strstr(evb_last_error(), "g.grp"), "%s", evb_last_error());
}

/* Events handed to an earlier owner and not committed come to the next
 * owner marked as possible redeliveries (deliveries 2); the rest 1. */
Test(group, next_owner_flags_possible_redeliveries)
{
    make_topic("jobs", 1, false);
    publish_all("jobs", 1, 20);
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g"};
    evb_consumer *a, *b;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0);
    evb_event ev;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(evb_consumer_next(a, &ev, 0), 0);
        cr_assert_eq(ev.deliveries, 1);
        if (i == 4)
            cr_assert_eq(evb_consumer_commit(a), 0);
    }
    evb_consumer_close(a); /* leaves without committing 5..9 */
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &co), 0);
    for (int i = 5; i < 20; i++) {
        cr_assert_eq(evb_consumer_next(b, &ev, 0), 0);
        cr_assert_eq(ev.offset, (uint64_t)i);
        cr_assert_eq(ev.deliveries, i < 10 ? 2u : 1u, "offset %d: deliveries %u", i,
                     ev.deliveries);
    }
    evb_consumer_close(b);
}

/* Duplicate suppression in a partition group: a stable producer
 * republishes what it published before a crash, with the same sequences;
 * the group's next owner, resuming after the commit, drops every copy:
 * the tables are saved with the group's commits and loaded by whoever
 * takes a partition over. */
static void publish_seq(uint32_t id, uint64_t from, uint64_t n)
{
    evb_producer_options po = {.block_ms = -1, .producer_id = id};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "jobs", &po), 0, "%s", evb_last_error());
    for (uint64_t v = from; v < from + n; v++) {
        evb_msg m = {.value = &v, .value_len = sizeof v, .partition = (int32_t)(v % 2),
                     .flags = EVB_MSG_SEQ, .seq = v / 2};
        cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    }
    evb_producer_close(p);
}

Test(group, dedup_across_owners)
{
    make_topic("jobs", 2, false);
    const uint32_t id = EVB_PRODUCER_ID_STABLE | 7;
    publish_seq(id, 0, 100);
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g",
                               .flags = EVB_CONSUMER_DEDUP};
    evb_consumer *a;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0, "%s", evb_last_error());
    evb_event ev;
    int n = 0;
    while (evb_consumer_next(a, &ev, 0) == 0)
        n++;
    cr_assert_eq(n, 100);
    cr_assert_eq(evb_consumer_commit(a), 0);
    evb_consumer_close(a);
    /* The producer "crashed" and republishes its last 40, then goes on. */
    publish_seq(id, 60, 40);
    publish_seq(id, 100, 10);
    evb_consumer *b;
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &co), 0, "%s", evb_last_error());
    n = 0;
    while (evb_consumer_next(b, &ev, 0) == 0) {
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_geq(v, 100, "copy of %llu delivered again", (unsigned long long)v);
        n++;
    }
    cr_assert_eq(n, 10);
    uint64_t dropped = 0;
    cr_assert_eq(evb_consumer_dedup_stat(b, -1, &dropped, NULL), 0);
    cr_assert_eq(dropped, 40);
    evb_consumer_close(b);
}

/* Read every event there is with a deduplicating consumer CO: how many
 * were delivered, each checked to be at least FIRST_NEW; DROPPED gets the
 * duplicates dropped. Commits at the end. */
static int read_new(const evb_consumer_options *co, uint64_t first_new, uint64_t *dropped)
{
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", co), 0, "%s", evb_last_error());
    evb_event ev;
    int n = 0;
    while (evb_consumer_next(c, &ev, 0) == 0) {
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        cr_assert_geq(v, first_new, "%s: copy of %llu delivered again", co->name,
                      (unsigned long long)v);
        n++;
    }
    cr_assert_eq(evb_consumer_commit(c), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_dedup_stat(c, -1, dropped, NULL), 0);
    evb_consumer_close(c);
    return n;
}

/* Group g and named consumer g.grp (a legal consumer name) once shared
 * one table file, g.grp.dup: each one's commits overwrote the other's
 * table, and copies came through with no error. Each keeps its own. */
Test(group, dedup_group_and_named_consumer_of_colliding_names_keep_their_tables)
{
    make_topic("jobs", 2, false);
    const uint32_t id = EVB_PRODUCER_ID_STABLE | 9;
    publish_seq(id, 0, 40);
    evb_consumer_options named = {.kind = EVB_CONSUMER, .name = "g.grp",
                                  .start = EVB_START_EARLIEST, .flags = EVB_CONSUMER_DEDUP};
    evb_consumer_options grp = {.kind = EVB_GROUP_MEMBER, .name = "g",
                                .flags = EVB_CONSUMER_DEDUP};
    uint64_t dropped;
    cr_assert_eq(read_new(&named, 0, &dropped), 40);
    /* The group reads in three runs, committing each. */
    evb_event ev;
    for (int run = 0; run < 3; run++) {
        evb_consumer *c;
        cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &grp), 0, "%s", evb_last_error());
        for (int i = 0; i < 10 && evb_consumer_next(c, &ev, 0) == 0; i++)
            ;
        cr_assert_eq(evb_consumer_commit(c), 0, "%s", evb_last_error());
        evb_consumer_close(c);
    }
    /* The producer sends its last 10 again, then 4 new ones. */
    publish_seq(id, 30, 10);
    publish_seq(id, 40, 4);
    named.start = EVB_START_COMMITTED;
    cr_assert_eq(read_new(&named, 40, &dropped), 4);
    cr_assert_eq(dropped, 10, "the named consumer dropped %llu of 10 copies",
                 (unsigned long long)dropped);
    /* The group read 30 of the first 40 (in some order per partition):
     * what it delivers now are the originals it had not seen, and none
     * of the copies of what it had. */
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &grp), 0, "%s", evb_last_error());
    int n = 0;
    while (evb_consumer_next(c, &ev, 0) == 0)
        n++;
    cr_assert_eq(evb_consumer_dedup_stat(c, -1, &dropped, NULL), 0);
    evb_consumer_close(c);
    cr_assert_eq(n + (int)dropped, 10 + 10 + 4);
    cr_assert_eq(n, 10 + 4, "the group delivered %d, dropped %llu", n,
                 (unsigned long long)dropped);
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/g.gdup", t_bus_dir());
    cr_assert_eq(access(path, F_OK), 0, "the group's table is %s", path);
    snprintf(path, sizeof path, "%s/jobs/consumers/g.grp.dup", t_bus_dir());
    cr_assert_eq(access(path, F_OK), 0, "the named consumer's table is %s", path);
}

/* Members with and without EVB_CONSUMER_DEDUP in one group let copies
 * through: one that does not keep the table commits past events without
 * recording them. The group's setting is its first member's; a member
 * that differs is refused, whichever way round. */
static void mixed_dedup(uint32_t first_flags)
{
    make_topic("jobs", 2, false);
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g", .flags = first_flags};
    evb_consumer *a, *b;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0, "%s", evb_last_error());
    co.flags ^= EVB_CONSUMER_DEDUP;
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &co), -EINVAL);
    cr_assert(strstr(evb_last_error(), "dedup") && strstr(evb_last_error(), "group g"), "%s",
              evb_last_error());
    evb_consumer_close(a);
    /* Also when nobody is in it: the setting is the group's. */
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &co), -EINVAL);
    co.flags ^= EVB_CONSUMER_DEDUP;
    cr_assert_eq(evb_consumer_open(&b, bus, "jobs", &co), 0, "%s", evb_last_error());
    evb_consumer_close(b);
}

Test(group, a_member_without_dedup_is_refused_by_a_dedup_group)
{
    mixed_dedup(EVB_CONSUMER_DEDUP);
}

Test(group, a_member_with_dedup_is_refused_by_a_group_without)
{
    mixed_dedup(0);
}

/* A group file made before its flags word was used has 0 there: the
 * first member to open it records its setting, and the next that
 * differs is refused. */
Test(group, a_group_file_without_flags_takes_its_first_members_setting)
{
    make_topic("jobs", 2, false);
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "g"};
    evb_consumer *a;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0, "%s", evb_last_error());
    evb_consumer_close(a);
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/g.grp", t_bus_dir());
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint32_t zero = 0;
    cr_assert_eq(pwrite(fd, &zero, sizeof zero, 28), (ssize_t)sizeof zero);
    close(fd);
    co.flags = EVB_CONSUMER_DEDUP;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), 0, "%s", evb_last_error());
    evb_consumer_close(a);
    co.flags = 0;
    cr_assert_eq(evb_consumer_open(&a, bus, "jobs", &co), -EINVAL);
}

/* A member whose group file goes for good (the topic deleted) or is
 * replaced by something that is no group file fails with an error on its
 * next call, and every later call on the handle fails too: never a crash,
 * never a group file (or a deleted durable topic's directory) made anew.
 * Both kinds, every replacement. */
enum { GONE_TOPIC, GONE_DIR, GONE_GARBAGE, GONE_EMPTY, GONE_KINDS };

static void replace_group_file(int how, bool durable)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/consumers/g.grp", durable ? t_data_dir() : t_bus_dir());
    if (how == GONE_TOPIC) {
        cr_assert_eq(evb_topic_delete(bus, "jobs"), 0, "%s", evb_last_error());
        return;
    }
    cr_assert_eq(unlink(path), 0, "%s", path);
    if (how == GONE_DIR) {
        cr_assert_eq(mkdir(path, 0700), 0);
    } else {
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        cr_assert_geq(fd, 0);
        if (how == GONE_GARBAGE)
            cr_assert_eq(write(fd, "garbage!garbage!", 16), 16);
        close(fd);
    }
}

static void member_loses_its_file(uint32_t kind, int how, bool durable)
{
    make_topic("jobs", 2, durable);
    publish_all("jobs", 2, 10);
    evb_consumer_options co = {.kind = kind, .name = "g"};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0, "%s", evb_last_error());
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    replace_group_file(how, durable);
    int rc = 0;
    uint64_t end = t_now_ms() + 3000;
    while (t_now_ms() < end &&
           ((rc = evb_consumer_next(c, &ev, 50)) == 0 || rc == -ETIMEDOUT))
        if (rc == 0 && kind == EVB_QUEUE_MEMBER)
            evb_consumer_ack(c, &ev);
    cr_assert(rc < 0 && rc != -ETIMEDOUT, "kind %u, case %d, durable %d: next never failed",
              kind, how, durable);
    cr_assert_lt(evb_consumer_next(c, &ev, 0), 0, "the handle stays failed");
    if (kind == EVB_QUEUE_MEMBER)
        cr_assert_lt(evb_consumer_ack(c, &ev), 0);
    else
        cr_assert_lt(evb_consumer_commit(c), 0);
    cr_assert_lt(evb_consumer_reject(c, &ev, "x"), 0);
    evb_consumer_close(c);
    if (how == GONE_TOPIC && durable) {
        char path[4096];
        snprintf(path, sizeof path, "%s/jobs", t_data_dir());
        cr_assert_neq(access(path, F_OK), 0, "the deleted topic's directory came back");
    }
}

Test(group, member_whose_file_goes_fails_cleanly)
{
    const uint32_t kinds[2] = {EVB_GROUP_MEMBER, EVB_QUEUE_MEMBER};
    for (int k = 0; k < 2; k++)
        for (int how = 0; how < GONE_KINDS; how++)
            for (int durable = 0; durable < 2; durable++) {
                member_loses_its_file(kinds[k], how, durable);
                evb_topic_remove(bus, "jobs", EVB_DELETE_FORCE);
            }
}

/* A commit lapped (ring-only, no member alive to hold it) or removed by
 * retention (durable): the next member is told exactly what it lost,
 * counted from the committed offset, as a named consumer is. */
static void lost_from_commit(bool durable)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10};
    if (durable) {
        tc.durability = EVB_DURABILITY_ASYNC;
        tc.segment_bytes = 64 << 10;
        tc.retain_bytes = 64 << 10;
    }
    evb_bus_close(bus);
    evb_bus_options bo = {.data_dir = durable ? t_data_dir() : NULL};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
    cr_assert_eq(evb_topic_create(bus, "jobs", &tc), 0, "%s", evb_last_error());
    publish_all("jobs", 1, 10);
    const uint32_t kinds[2] = {EVB_GROUP_MEMBER, EVB_CONSUMER};
    for (int k = 0; k < 2; k++) {
        evb_consumer_options co = {.kind = kinds[k], .name = "g", .start = EVB_START_EARLIEST};
        evb_consumer *c;
        cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0, "%s", evb_last_error());
        evb_event ev;
        for (int i = 0; i < 7; i++)
            cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
        cr_assert_eq(evb_consumer_commit(c), 0);
        evb_consumer_close(c);
    }
    evb_producer *p;
    evb_producer_options po = {.block_ms = 10000};
    cr_assert_eq(evb_producer_open(&p, bus, "jobs", &po), 0);
    char v[100] = {0};
    for (int i = 0; i < 5000; i++) {
        evb_msg m = {.value = v, .value_len = sizeof v};
        cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    }
    evb_producer_close(p);
    if (durable)
        cr_assert_eq(evb_topic_retain(bus, "jobs"), 0, "%s", evb_last_error());
    for (int k = 0; k < 2; k++) {
        evb_consumer_options co = {.kind = kinds[k], .name = "g"};
        evb_consumer *c;
        cr_assert_eq(evb_consumer_open(&c, bus, "jobs", &co), 0, "%s", evb_last_error());
        evb_event ev;
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
        cr_assert_gt(ev.offset, 7, "nothing was lost: the test lost its point");
        cr_assert_eq(ev.lost_events, ev.offset - 7, "kind %u, durable %d: lost %llu before "
                     "offset %llu, committed at 7", kinds[k], durable,
                     (unsigned long long)ev.lost_events, (unsigned long long)ev.offset);
        evb_consumer_close(c);
    }
}

Test(group, lost_counted_from_the_commit_ring)
{
    lost_from_commit(false);
}

Test(group, lost_counted_from_the_commit_durable)
{
    lost_from_commit(true);
}
