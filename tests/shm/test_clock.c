/*
 * test_clock.c - shm/clock.c, the event clock: CLOCK_REALTIME from the
 * time-stamp counter. It must agree with clock_gettime through its
 * calibration, across re-anchors and from many threads at once.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <time.h>

#include "ring.h"

static int64_t realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* The event clock read between two clock_gettime calls must lie between
 * them, give or take TOL_NS; a preemption between the calls only widens
 * the bracket. Returns the worst distance outside it. */
#define TOL_NS 20000ll

static int64_t outside(void)
{
    int64_t a = realtime();
    int64_t e = (int64_t)evb_event_ns();
    int64_t b = realtime();
    return e < a ? a - e : e > b ? e - b : 0;
}

/* 1.3 s: the calibration (10 ms), the 100 ms anchor and the first 1 s one. */
Test(clock, event_clock_agrees_with_clock_gettime_through_its_anchors, .timeout = 30)
{
    int64_t worst = 0, end = realtime() + 1300000000ll;
    uint64_t n = 0;
    while (realtime() < end) {
        int64_t d = outside();
        if (d > worst)
            worst = d;
        n++;
        if (n % 1024 == 0) {
            struct timespec nap = {0, 100000};
            nanosleep(&nap, NULL);
        }
    }
    cr_log_info("%llu reads, worst %lld ns outside clock_gettime", (unsigned long long)n,
                (long long)worst);
    cr_expect_leq(worst, TOL_NS, "the event clock strayed %lld ns", (long long)worst);
}

static void *hammer(void *arg)
{
    int64_t *worst = arg;
    int64_t end = realtime() + 300000000ll;
    while (realtime() < end) {
        int64_t d = outside();
        if (d > *worst)
            *worst = d;
    }
    return NULL;
}

/* Threads find the anchor due together: one re-anchors, none reads a
 * half-written anchor (TSan watches the seqlock). */
Test(clock, event_clock_from_four_threads_at_once, .timeout = 30)
{
    pthread_t t[4];
    int64_t worst[4] = {0};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, &worst[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_expect_leq(worst[i], TOL_NS, "thread %d: %lld ns off", i, (long long)worst[i]);
    }
}
