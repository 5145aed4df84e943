/*
 * tsan_group.c - a partition group's members as threads, with a plain
 * main() so it runs under ThreadSanitizer: a producer thread publishes
 * while three member threads (each with its own bus handle, as separate
 * processes would have) share four partitions, one of them leaving and
 * joining again twice so partitions change hands under load. Every event
 * must be processed at least once. Then the same with a queue group:
 * four member threads taking and acknowledging single events from two
 * partitions, each event acknowledged exactly once.
 * EVB_TEST_THREAD_EVENTS sets the count.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t_helpers.h"

#define PARTS 4
#define MEMBERS 3

static uint64_t events;
static _Atomic uint8_t *seen;
static _Atomic uint64_t distinct;
static _Atomic int producer_done;

static const char *topic = "g";
static _Atomic uint32_t *acks;

static void *producer(void *arg)
{
    (void)arg;
    evb_bus *b;
    evb_producer *p;
    evb_producer_options po = {.block_ms = -1};
    if (evb_bus_open(&b, t_bus_dir(), NULL) || evb_producer_open(&p, b, topic, &po))
        abort();
    for (uint64_t i = 0; i < events; i++) {
        evb_msg m = {.value = &i, .value_len = sizeof i, .partition = EVB_PARTITION_ANY};
        if (evb_publish(p, &m))
            abort();
    }
    evb_producer_close(p);
    evb_bus_close(b);
    atomic_store(&producer_done, 1);
    return NULL;
}

static void on_rebalance(evb_consumer *c, uint32_t what, const uint32_t *parts, uint32_t n,
                         void *arg)
{
    (void)parts;
    (void)n;
    (void)arg;
    if (what == EVB_PARTITIONS_REVOKED)
        evb_consumer_commit(c);
}

static void *member(void *arg)
{
    int me = (int)(intptr_t)arg;
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        abort();
    evb_consumer_options co = {.kind = EVB_GROUP_MEMBER, .name = "crew",
                               .on_rebalance = on_rebalance};
    for (int life = 0; life < (me == 0 ? 3 : 1); life++) {
        evb_consumer *c;
        int rc = evb_consumer_open(&c, b, "g", &co);
        if (rc) {
            fprintf(stderr, "member %d: open: %s\n", me, evb_last_error());
            abort();
        }
        uint64_t got = 0;
        while (atomic_load(&distinct) < events) {
            evb_event ev;
            rc = evb_consumer_next(c, &ev, 10);
            if (rc == -ETIMEDOUT)
                continue;
            if (rc) {
                fprintf(stderr, "member %d: next: %d %s\n", me, rc, evb_last_error());
                abort();
            }
            uint64_t v;
            memcpy(&v, ev.value, sizeof v);
            if (v < events && !atomic_exchange(&seen[v], 1))
                atomic_fetch_add(&distinct, 1);
            if (++got % 10 == 0)
                evb_consumer_commit(c);
            /* Member 0 leaves twice while events flow. */
            if (me == 0 && life < 2 && got == events / 8)
                break;
        }
        evb_consumer_commit(c);
        evb_consumer_close(c);
    }
    evb_bus_close(b);
    return NULL;
}

static void *queue_member(void *arg)
{
    (void)arg;
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        abort();
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "work",
                               .max_in_flight = 64};
    evb_consumer *c;
    if (evb_consumer_open(&c, b, topic, &co)) {
        fprintf(stderr, "queue member: open: %s\n", evb_last_error());
        abort();
    }
    while (atomic_load(&distinct) < events) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 10);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc || ev.deliveries != 1) {
            fprintf(stderr, "queue member: next: %d %s\n", rc, evb_last_error());
            abort();
        }
        uint64_t v;
        memcpy(&v, ev.value, sizeof v);
        if (evb_consumer_ack(c, &ev)) {
            fprintf(stderr, "queue member: ack: %s\n", evb_last_error());
            abort();
        }
        if (v < events && atomic_fetch_add(&acks[v], 1) == 0)
            atomic_fetch_add(&distinct, 1);
    }
    evb_consumer_close(c);
    evb_bus_close(b);
    return NULL;
}

/* Phase 2: a queue group of four member threads on two partitions. */
static int queue_phase(evb_bus *bus)
{
    topic = "q";
    atomic_store(&distinct, 0);
    atomic_store(&producer_done, 0);
    acks = calloc(events, sizeof *acks);
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20};
    if (evb_topic_create(bus, "q", &tc))
        return 1;
    /* The group exists before the events. */
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = "work", .max_in_flight = 64};
    evb_consumer *c;
    if (evb_consumer_open(&c, bus, "q", &co))
        return 1;
    evb_consumer_close(c);
    pthread_t th[5];
    for (int m = 0; m < 4; m++)
        pthread_create(&th[m], NULL, queue_member, NULL);
    pthread_create(&th[4], NULL, producer, NULL);
    for (int m = 0; m < 5; m++)
        pthread_join(th[m], NULL);
    uint64_t twice = 0;
    for (uint64_t i = 0; i < events; i++)
        twice += atomic_load(&acks[i]) > 1;
    printf("tsan_group: queue: %llu of %llu events acknowledged, %llu twice\n",
           (unsigned long long)atomic_load(&distinct), (unsigned long long)events,
           (unsigned long long)twice);
    free((void *)acks);
    return atomic_load(&distinct) == events && twice == 0 ? 0 : 1;
}

int main(void)
{
    events = t_env_u64("EVB_TEST_THREAD_EVENTS", 200000);
    seen = calloc(events, 1);
    evb_bus *bus;
    evb_topic_config tc = {.partitions = PARTS, .ring_bytes = 1 << 20};
    if (evb_bus_open(&bus, t_bus_dir(), NULL) || evb_topic_create(bus, "g", &tc)) {
        fprintf(stderr, "setup: %s\n", evb_last_error());
        return 1;
    }
    pthread_t th[MEMBERS + 1];
    for (int m = 0; m < MEMBERS; m++)
        pthread_create(&th[m], NULL, member, (void *)(intptr_t)m);
    pthread_create(&th[MEMBERS], NULL, producer, NULL);
    for (int m = 0; m <= MEMBERS; m++)
        pthread_join(th[m], NULL);
    evb_group_summary sum;
    int n = evb_group_stat(bus, "g", "crew", &sum, NULL, 0, NULL, 0);
    printf("tsan_group: %llu of %llu events processed; %d members left, %llu handovers\n",
           (unsigned long long)atomic_load(&distinct), (unsigned long long)events, n,
           (unsigned long long)sum.handovers);
    int ok = atomic_load(&distinct) == events && n == 0 && sum.handovers >= 4;
    ok = ok && queue_phase(bus) == 0;
    evb_bus_close(bus);
    t_bus_cleanup();
    free((void *)seen);
    return ok ? 0 : 1;
}
