/*
 * tsan_stream.c - the stream body as threads, with a plain main() so it
 * runs under ThreadSanitizer (Criterion's runner maps a fixed arena that
 * TSan's address layout refuses). Also a lapped anonymous subscriber
 * thread against a fast producer thread on a small ring.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "stream_body.h"

struct thr {
    struct stream_role role;
    int (*fn)(void *);
    int rc;
};

static void *run(void *arg)
{
    struct thr *t = arg;
    t->rc = t->fn(&t->role);
    return NULL;
}

/* A lossy subscriber that reads slowly while a producer laps it. */
struct lap_arg {
    const char *bus;
    uint64_t events;
    _Atomic int ready;
    int rc;
};

static void *lapped_reader(void *arg)
{
    struct lap_arg *a = arg;
    evb_bus *bus;
    evb_consumer *c;
    if (evb_bus_open(&bus, a->bus, NULL) ||
        evb_consumer_open(&c, bus, "lap", &(evb_consumer_options){.kind = EVB_SUBSCRIBER})) {
        a->rc = 1;
        atomic_store(&a->ready, 1);
        return NULL;
    }
    atomic_store(&a->ready, 1);
    uint64_t got = 0, lost = 0;
    while (got + lost < a->events) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, 1000);
        if (rc == -ETIMEDOUT)
            break;
        uint32_t tp;
        uint64_t seq;
        if (rc || !t_value_check(ev.value, ev.value_len, &tp, &seq) || seq != ev.offset) {
            a->rc = 2;
            break;
        }
        got++;
        lost += ev.lost_events;
    }
    if (!a->rc && got + lost != a->events)
        a->rc = 3;
    evb_consumer_close(c);
    evb_bus_close(bus);
    return NULL;
}

int main(void)
{
    int passed = 0, failed = 0;
    struct stream_cfg cfg = {
        .bus = t_bus_dir(), .topic = "t", .producers = 3, .subscribers = 3,
        .per_producer = t_env_u64("EVB_TEST_THREAD_EVENTS", 200000), .value_len = 40,
        .sh = t_shared_new(),
    };
    /* Durable topics' segments go here (every thread's evb_bus_open). */
    setenv("EVBUS_DATA_DIR", t_data_dir(), 1);
    evb_bus *bus;
    if (evb_bus_open(&bus, cfg.bus, NULL) ||
        evb_topic_create(bus, cfg.topic, &(evb_topic_config){.partitions = 2,
                                                             .ring_bytes = 64 << 10}) ||
        evb_topic_create(bus, "lap", &(evb_topic_config){.ring_bytes = 64 << 10})) {
        fprintf(stderr, "setup: %s\n", evb_last_error());
        return 1;
    }
    struct thr t[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        int sub = i < cfg.subscribers;
        t[i] = (struct thr){.role = {&cfg, sub ? i : i - cfg.subscribers},
                            .fn = sub ? stream_subscriber : stream_producer};
        pthread_create(&th[i], NULL, run, &t[i]);
    }
    t_wait_count(&cfg.sh->ready, 6, 30000);
    atomic_store_explicit(&cfg.sh->go, 1, memory_order_release);
    int ok = 1;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        if (t[i].rc) {
            fprintf(stderr, "thread %d: %s\n", i, stream_error(t[i].rc));
            ok = 0;
        }
    }
    ok ? passed++ : failed++;
    printf("%s: stream as threads\n", ok ? "PASS" : "FAIL");

    struct lap_arg la = {.bus = cfg.bus, .events = cfg.per_producer};
    pthread_t lt;
    pthread_create(&lt, NULL, lapped_reader, &la);
    while (!atomic_load(&la.ready))
        ;
    evb_producer *p;
    evb_producer_open(&p, bus, "lap", NULL);
    uint8_t v[100];
    for (uint64_t i = 0; i < la.events; i++) {
        t_value_fill(v, 24 + (uint32_t)(i % 70), 0, i);
        evb_publish(p, &(evb_msg){.value = v, .value_len = 24 + (uint32_t)(i % 70)});
    }
    pthread_join(lt, NULL);
    evb_producer_close(p);
    la.rc ? failed++ : passed++;
    printf("%s: lapped subscriber as a thread (rc %d)\n", la.rc ? "FAIL" : "PASS", la.rc);

    /* The same stream on a durable topic with a small ring: producers are
     * gated by the flusher thread, lossless subscribers fall behind the
     * ring and read from disk, then cross back (bus/consumer.c). */
    struct stream_cfg dcfg = cfg;
    dcfg.topic = "dur";
    dcfg.sh = t_shared_new();
    dcfg.per_producer = cfg.per_producer / 4;
    if (evb_topic_create(bus, "dur", &(evb_topic_config){.partitions = 2,
                                                          .ring_bytes = 64 << 10,
                                                          .segment_bytes = 256 << 10,
                                                          .durability = EVB_DURABILITY_ASYNC})) {
        fprintf(stderr, "durable topic: %s\n", evb_last_error());
        return 1;
    }
    for (int i = 0; i < 6; i++) {
        int sub = i < dcfg.subscribers;
        t[i] = (struct thr){.role = {&dcfg, sub ? i : i - dcfg.subscribers},
                            .fn = sub ? stream_subscriber : stream_producer};
        pthread_create(&th[i], NULL, run, &t[i]);
    }
    t_wait_count(&dcfg.sh->ready, 6, 30000);
    atomic_store_explicit(&dcfg.sh->go, 1, memory_order_release);
    ok = 1;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        if (t[i].rc) {
            fprintf(stderr, "durable thread %d: %s\n", i, stream_error(t[i].rc));
            ok = 0;
        }
    }
    ok ? passed++ : failed++;
    printf("%s: durable stream as threads (flusher thread, disk catch-up)\n",
           ok ? "PASS" : "FAIL");
    evb_bus_close(bus);
    t_bus_cleanup();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
