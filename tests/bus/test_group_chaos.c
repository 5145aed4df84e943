/*
 * test_group_chaos.c - a partition group under fire: 3 producers and 4
 * members on an 8-partition durable topic while a driver SIGKILLs random
 * producers and members and starts them again. From the logs the
 * processes write in shared memory, the checker proves:
 *   - every event whose publish returned success was processed;
 *   - per partition, offsets rise within each ownership span (from an
 *     assignment to the next; by more than one where a killed producer's
 *     claim was padded);
 *   - no event is delivered again after a commit covered it (repeats
 *     only of events delivered and not committed before a kill or a
 *     handover);
 *   - no partition's committed cursor stood still for longer than the
 *     bound while it had events to give.
 * The same fire on a queue group: every published event processed, none
 * delivered again after its ack, no partition's floor standing still
 * with events to give.
 * EVB_TEST_CHAOS_MS sets the length of the fire (default 20 s).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "t_helpers.h"

#define PARTS 8
#define PRODUCERS 3
#define MEMBERS 4
#define MAX_INC 512          /* incarnations per producer slot */
#define LOG_MAX (4u << 20)
#define STALL_BOUND_MS 2000  /* detection ~100 ms + handover; generous for sanitizers */

enum { REC_DELIVER = 1, REC_ASSIGN = 2, REC_COMMIT = 3, REC_ACK = 4 };
#define MAX_OFFSETS (1u << 20) /* per partition, for the queue's ack map */

static bool queue_kind; /* the fire on a queue group */

struct rec {
    _Atomic uint32_t kind;   /* stored last: the record is written */
    uint16_t member;         /* member slot * 1000 + incarnation */
    uint16_t part;
    uint32_t inc;
    uint32_t deliveries;     /* deliver/ack on a queue: the delivery count */
    uint64_t offset;         /* deliver/commit: offset; assign: 0 */
    uint64_t event;          /* deliver: producer << 56 | inc << 32 | seq */
};

struct chaos {
    _Atomic uint32_t stop_producers;
    _Atomic uint32_t stop_members;
    /* ok[p][inc]: events of producer slot p, incarnation inc, whose
     * publish returned success (seq 0 .. ok-1). */
    _Atomic uint32_t ok[PRODUCERS][MAX_INC];
    _Atomic uint32_t inc[PRODUCERS + MEMBERS];
    _Atomic uint64_t n;
    struct rec log[LOG_MAX];
};

static struct chaos *ch;

static void append2(uint32_t kind, uint32_t member, uint32_t inc, uint32_t part,
                    uint64_t off, uint64_t event, uint32_t deliveries)
{
    uint64_t i = atomic_fetch_add(&ch->n, 1);
    if (i >= LOG_MAX)
        return;
    struct rec *r = &ch->log[i];
    r->member = (uint16_t)member;
    r->inc = inc;
    r->part = (uint16_t)part;
    r->offset = off;
    r->event = event;
    r->deliveries = deliveries;
    atomic_store_explicit(&r->kind, kind, memory_order_release);
}

static void append(uint32_t kind, uint32_t member, uint32_t inc, uint32_t part, uint64_t off,
                   uint64_t event)
{
    append2(kind, member, inc, part, off, event, 0);
}

struct who {
    uint32_t slot;
    uint32_t inc;
};

static int producer_main(void *arg)
{
    struct who *w = arg;
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        return 10;
    evb_producer_options po = {.block_ms = 2000};
    evb_producer *p;
    if (evb_producer_open(&p, b, "chaos", &po))
        return 11;
    uint32_t seq = 0;
    while (!atomic_load(&ch->stop_producers)) {
        for (int k = 0; k < 10; k++, seq++) {
            uint64_t ev = (uint64_t)w->slot << 56 | (uint64_t)w->inc << 32 | seq;
            char key[8];
            memcpy(key, &seq, 4);
            memcpy(key + 4, &w->slot, 4);
            evb_msg m = {.key = key, .key_len = 8, .value = &ev, .value_len = sizeof ev,
                         .partition = EVB_PARTITION_ANY};
            if (evb_publish(p, &m))
                return 12;
            atomic_store(&ch->ok[w->slot][w->inc], seq + 1);
        }
        usleep(4000);
    }
    evb_producer_close(p);
    evb_bus_close(b);
    return 0;
}

struct mstate {
    struct who *w;
    uint64_t last[PARTS];
};

static void commit(evb_consumer *c, struct mstate *ms)
{
    if (evb_consumer_commit(c))
        return;
    for (int q = 0; q < PARTS; q++)
        if (ms->last[q] != UINT64_MAX)
            append(REC_COMMIT, ms->w->slot, ms->w->inc, (uint32_t)q, ms->last[q] + 1, 0);
}

static void rebalance(evb_consumer *c, uint32_t what, const uint32_t *parts, uint32_t n,
                      void *arg)
{
    struct mstate *ms = arg;
    if (what == EVB_PARTITIONS_REVOKED)
        commit(c, ms);
    for (uint32_t k = 0; k < n; k++) {
        ms->last[parts[k]] = UINT64_MAX;
        if (what == EVB_PARTITIONS_ASSIGNED)
            append(REC_ASSIGN, ms->w->slot, ms->w->inc, parts[k], 0, 0);
    }
}

static int member_main(void *arg)
{
    struct who *w = arg;
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        return 10;
    struct mstate ms = {.w = w};
    memset(ms.last, 0xff, sizeof ms.last);
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "crew",
                               .on_rebalance = rebalance, .rebalance_arg = &ms};
    if (queue_kind)
        co = (evb_consumer_options){.kind = EVB_QUEUE_MEMBER, .name = "crew",
                                    .ack_wait_ms = 1000};
    evb_consumer *c;
    if (evb_consumer_open(&c, b, "chaos", &co))
        return 11;
    while (queue_kind && !atomic_load(&ch->stop_members)) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 20);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc) {
            fprintf(stderr, "queue member: next: %s (%s)\n", evb_strerror(rc),
                    evb_last_error());
            return 12;
        }
        uint64_t e;
        memcpy(&e, ev.value, sizeof e);
        append2(REC_DELIVER, w->slot, w->inc, ev.partition, ev.offset, e, ev.deliveries);
        usleep(200); /* work, so that kills land on events in flight */
        if (evb_consumer_ack(c, &ev) == 0)
            append2(REC_ACK, w->slot, w->inc, ev.partition, ev.offset, e, ev.deliveries);
    }
    uint32_t since = 0;
    while (!atomic_load(&ch->stop_members)) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 20);
        if (rc == -ETIMEDOUT) {
            commit(c, &ms);
            continue;
        }
        if (rc)
            return 12;
        uint64_t e;
        memcpy(&e, ev.value, sizeof e);
        append2(REC_DELIVER, w->slot, w->inc, ev.partition, ev.offset, e, ev.deliveries);
        ms.last[ev.partition] = ev.offset;
        if (++since == 5) {
            since = 0;
            commit(c, &ms);
        }
    }
    if (!queue_kind)
        commit(c, &ms);
    evb_consumer_close(c);
    evb_bus_close(b);
    return 0;
}

static pid_t start(uint32_t slot, struct who *w)
{
    w->slot = slot < PRODUCERS ? slot : slot - PRODUCERS;
    w->inc = atomic_fetch_add(&ch->inc[slot], 1);
    cr_assert_lt(w->inc, MAX_INC);
    return slot < PRODUCERS ? t_spawn(producer_main, w) : t_spawn(member_main, w);
}

static void fire(void)
{
    evb_bus *bus;
    evb_bus_options bo = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0);
    evb_topic_config tc = {.partitions = PARTS, .ring_bytes = 1 << 20,
                           .durability = EVB_DURABILITY_ASYNC};
    cr_assert_eq(evb_topic_create(bus, "chaos", &tc), 0, "%s", evb_last_error());
    ch = mmap(NULL, sizeof *ch, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(ch, MAP_FAILED);
    enum { N = PRODUCERS + MEMBERS };
    pid_t pid[N];
    struct who who[N];
    for (uint32_t s = 0; s < N; s++)
        pid[s] = start(s, &who[s]);
    uint64_t fire_ms = t_env_u64("EVB_TEST_CHAOS_MS", 20000);
    srand(12345);
    uint64_t t0 = t_now_ms(), next_kill = t0 + 300;
    uint64_t kills[2] = {0, 0};
    /* Stall watch: each partition's committed offset and when it moved. */
    uint64_t seen_off[PARTS], moved_at[PARTS], worst_stall = 0, samples = 0, max_lag = 0;
    for (int q = 0; q < PARTS; q++) {
        seen_off[q] = UINT64_MAX;
        moved_at[q] = t0;
    }
    evb_group_partition_stat ps[PARTS];
    evb_group_summary sum;
    while (t_now_ms() < t0 + fire_ms) {
        usleep(20000);
        uint64_t now = t_now_ms();
        if (evb_group_stat(bus, "chaos", "crew", &sum, NULL, 0, ps, PARTS) >= 0 && ++samples)
            for (int q = 0; q < PARTS; q++) {
                /* Partition groups: the committed offset; queues: the
                 * floor, with the backlog and events in flight to give. */
                uint64_t lag = queue_kind ? ps[q].backlog_bytes + ps[q].in_flight
                                          : ps[q].lag_events;
                uint64_t mark = queue_kind ? ps[q].committed_position : ps[q].committed_offset;
                if (lag > max_lag)
                    max_lag = lag;
                if (mark != seen_off[q] || lag == 0) {
                    seen_off[q] = mark;
                    moved_at[q] = now;
                } else if (now - moved_at[q] > worst_stall) {
                    worst_stall = now - moved_at[q];
                }
            }
        if (now < next_kill)
            continue;
        next_kill = now + 150 + (uint64_t)(rand() % 300);
        uint32_t s = (uint32_t)rand() % N;
        kill(pid[s], SIGKILL);
        int st = t_wait_exit(pid[s], 10000);
        cr_assert(st == 128 + SIGKILL || st == 0, "slot %u exited %d", s, st);
        kills[s < PRODUCERS ? 0 : 1]++;
        pid[s] = start(s, &who[s]);
    }
    atomic_store(&ch->stop_producers, 1);
    for (uint32_t s = 0; s < PRODUCERS; s++)
        cr_assert_eq(t_wait_exit(pid[s], 10000), 0, "producer %u", s);
    /* Drain: wait until no partition lags, then stop the members. */
    uint64_t end = t_now_ms() + 30000;
    for (;;) {
        bool idle = evb_group_stat(bus, "chaos", "crew", &sum, NULL, 0, ps, PARTS) >= 0;
        for (int q = 0; idle && q < PARTS; q++)
            idle = queue_kind ? ps[q].backlog_bytes == 0 && ps[q].in_flight == 0
                              : ps[q].lag_events == 0;
        if (idle || t_now_ms() > end)
            break;
        usleep(20000);
    }
    atomic_store(&ch->stop_members, 1);
    for (uint32_t s = PRODUCERS; s < N; s++)
        cr_assert_eq(t_wait_exit(pid[s], 10000), 0, "member %u", s - PRODUCERS);

    /* The checker. */
    uint64_t n = atomic_load(&ch->n);
    cr_assert_lt(n, LOG_MAX, "the log overflowed");
    uint8_t *done[PRODUCERS][MAX_INC];
    memset(done, 0, sizeof done);
    uint64_t committed[PARTS];
    memset(committed, 0, sizeof committed);
    /* Per (member incarnation, partition): the next offset its span expects. */
    struct span { uint32_t who; uint64_t next; } span[PARTS][MEMBERS];
    memset(span, 0xff, sizeof span);
    uint64_t delivered = 0, repeats = 0, spans = 0;
    /* Queues: per partition and offset, the delivery count that was
     * acked (0: none yet). */
    uint8_t *acked[PARTS];
    for (int q = 0; q < PARTS; q++)
        acked[q] = queue_kind ? calloc(MAX_OFFSETS, 1) : NULL;
    for (uint64_t i = 0; i < n; i++) {
        struct rec *r = &ch->log[i];
        uint32_t kind = atomic_load_explicit(&r->kind, memory_order_acquire);
        if (!kind)
            continue; /* its writer was killed between claiming and writing it */
        uint32_t m = r->member, q = r->part;
        cr_assert_lt(q, PARTS);
        uint32_t who_id = r->inc;
        if (kind == REC_ASSIGN) {
            span[q][m] = (struct span){who_id, UINT64_MAX};
            spans++;
            continue;
        }
        if (kind == REC_ACK) {
            cr_assert_lt(r->offset, MAX_OFFSETS);
            cr_assert_eq(acked[q][r->offset], 0, "partition %u offset %llu acked twice", q,
                         (unsigned long long)r->offset);
            acked[q][r->offset] = (uint8_t)r->deliveries;
            continue;
        }
        if (kind == REC_COMMIT) {
            if (r->offset > committed[q])
                committed[q] = r->offset;
            continue;
        }
        delivered++;
        if (queue_kind) {
            /* A delivery after the ack is a violation, unless it is an
             * older delivery whose record was written late. */
            cr_assert_lt(r->offset, MAX_OFFSETS);
            cr_assert(!acked[q][r->offset] || r->deliveries < acked[q][r->offset],
                      "partition %u offset %llu delivered (count %u) after its ack", q,
                      (unsigned long long)r->offset, r->deliveries);
        }
        cr_assert_geq(r->offset, committed[q], "partition %u offset %llu delivered again "
                      "after a commit covered it (committed %llu)", q,
                      (unsigned long long)r->offset, (unsigned long long)committed[q]);
        struct span *sp = &span[q][m];
        cr_assert(queue_kind || sp->who == who_id, "member %u inc %u read partition %u "
                  "outside a span", m, who_id, q);
        /* Rising within a span; not always by one: a producer killed
         * between its claim and its commit leaves a hole that is padded,
         * and the pad voids the claim's offsets (nothing published is
         * lost: every event whose publish succeeded is checked below to
         * be processed, so a real event skipped is caught there). */
        cr_assert(queue_kind || sp->next == UINT64_MAX || r->offset >= sp->next,
                  "partition %u: member %u read offset %llu after %llu within one span", q, m,
                  (unsigned long long)r->offset, (unsigned long long)sp->next - 1);
        sp->next = r->offset + 1;
        uint32_t p = (uint32_t)(r->event >> 56), pinc = (uint32_t)(r->event >> 32) & 0xffffff;
        uint32_t seq = (uint32_t)r->event;
        cr_assert(p < PRODUCERS && pinc < MAX_INC, "garbage event %llx",
                  (unsigned long long)r->event);
        uint32_t okn = atomic_load(&ch->ok[p][pinc]);
        if (!done[p][pinc]) {
            done[p][pinc] = calloc((size_t)okn + 16, 1);
            cr_assert(done[p][pinc]);
        }
        if (seq < okn) {
            if (done[p][pinc][seq]) {
                repeats++;
                /* A repeat says so: a partition group's new owner knows
                 * what an earlier one was handed, a queue counts. */
                cr_assert_geq(r->deliveries, 2, "partition %u offset %llu delivered again "
                              "with deliveries %u", q, (unsigned long long)r->offset,
                              r->deliveries);
            }
            done[p][pinc][seq] = 1;
        }
    }
    uint64_t required = 0, missing = 0;
    for (int p = 0; p < PRODUCERS; p++)
        for (uint32_t k = 0; k < atomic_load(&ch->inc[p]); k++) {
            uint32_t okn = atomic_load(&ch->ok[p][k]);
            required += okn;
            for (uint32_t s = 0; s < okn; s++)
                if (!done[p][k] || !done[p][k][s]) {
                    if (missing++ < 5)
                        cr_log_error("producer %d inc %u seq %u published, never processed", p,
                                     k, s);
                }
            free(done[p][k]);
        }
    cr_log_info("chaos: %llu ms, %llu producer kills, %llu member kills, %llu published, "
                "%llu deliveries, %llu repeats, %llu spans, worst stall %llu ms",
                (unsigned long long)fire_ms, (unsigned long long)kills[0],
                (unsigned long long)kills[1], (unsigned long long)required,
                (unsigned long long)delivered, (unsigned long long)repeats,
                (unsigned long long)spans, (unsigned long long)worst_stall);
    printf("chaos (%s): %llu ms, %llu producer kills, %llu member kills, %llu published, "
           "%llu deliveries, %llu repeats, %llu spans, worst stall %llu ms\n",
           queue_kind ? "queue group" : "partition group", (unsigned long long)fire_ms, (unsigned long long)kills[0],
           (unsigned long long)kills[1], (unsigned long long)required,
           (unsigned long long)delivered, (unsigned long long)repeats,
           (unsigned long long)spans, (unsigned long long)worst_stall);
    cr_assert_eq(missing, 0, "%llu of %llu published events never processed",
                 (unsigned long long)missing, (unsigned long long)required);
    cr_assert_gt(samples, 10, "the stall watch never read the group");
    cr_log_info("stall watch: %llu samples, largest lag seen %llu events",
                (unsigned long long)samples, (unsigned long long)max_lag);
    cr_assert_leq(worst_stall, STALL_BOUND_MS, "a partition stood still %llu ms with events "
                  "to give", (unsigned long long)worst_stall);
    evb_bus_close(bus);
    t_bus_cleanup();
    for (int q = 0; q < PARTS; q++)
        free(acked[q]);
}

Test(group_chaos, kill_producers_and_members, .timeout = 240)
{
    fire();
}

Test(group_chaos, queue_kill_producers_and_members, .timeout = 240)
{
    queue_kind = true;
    fire();
}
