/*
 * test_stream_threads.c - the stream body as threads in one process, so
 * ThreadSanitizer sees every access of the ring protocol.
 */
#include <criterion/criterion.h>
#include <pthread.h>

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

static void fini(void)
{
    t_bus_cleanup();
}

Test(stream_threads, producers_and_lossless_subscribers_as_threads, .fini = fini,
     .timeout = 600)
{
    struct stream_cfg cfg = {
        .bus = t_bus_dir(), .topic = "t", .producers = 3, .subscribers = 3,
        .per_producer = t_env_u64("EVB_TEST_THREAD_EVENTS", 200000), .value_len = 40,
        .sh = t_shared_new(),
    };
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, cfg.bus, NULL), 0);
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, cfg.topic, &tc), 0, "%s", evb_last_error());
    struct thr t[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        bool sub = i < cfg.subscribers;
        t[i] = (struct thr){.role = {&cfg, sub ? i : i - cfg.subscribers},
                            .fn = sub ? stream_subscriber : stream_producer};
        pthread_create(&th[i], NULL, run, &t[i]);
    }
    cr_assert(t_wait_count(&cfg.sh->ready, 6, 30000));
    atomic_store_explicit(&cfg.sh->go, 1, memory_order_release);
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(t[i].rc, 0, "thread %d: %s", i, stream_error(t[i].rc));
    }
    evb_bus_close(bus);
}
