/*
 * test_hostile.c - the consumer against issue 9's defects 5 and 6: a
 * blocked reader of more rings than one futex_waitv call takes is woken
 * by an event on any of them, and an event's key and value lengths are
 * the ones the decoder checked, whatever the ring says by the time the
 * event is filled in.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "frame.h"
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

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 60);

/* Map partition PART of TOPIC on the test's own account. */
static void open_ring(struct evb_ring *r, const char *topic, uint32_t part)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%u.ring", t_bus_dir(), topic, part);
    cr_assert_eq(evb_ring_open(r, path), 0, "%s: %s", path, evb_err_get());
}

/* ---- defect 5: more than 128 partitions ---- */

#define WIDE_PARTS 200u
#define WIDE_PART 150u /* beyond the 128 words of one futex_waitv call */

struct late_pub {
    struct evb_ring ring; /* partition WIDE_PART, to see the reader's bit */
    int rc;
};

/* Wait until the reader has set its waiter bit on WIDE_PART (it is about
 * to sleep), give it time to get into the kernel, then publish there. */
static void *publish_when_asleep(void *arg)
{
    struct late_pub *lp = arg;
    uint64_t end = t_now_ms() + 5000;
    /* Acquire: any value will do, the reader's fetch_or makes it nonzero. */
    while (!atomic_load_explicit(&lp->ring.hdr->waiters, memory_order_acquire) &&
           t_now_ms() < end)
        usleep(1000);
    usleep(100 * 1000);
    evb_producer *p;
    lp->rc = evb_producer_open(&p, bus, "wide", NULL);
    if (lp->rc)
        return NULL;
    evb_msg m = {.value = "late", .value_len = 4, .partition = (int32_t)WIDE_PART};
    lp->rc = evb_publish(p, &m);
    evb_producer_close(p);
    return NULL;
}

Test(hostile, blocked_reader_of_200_partitions_wakes_for_partition_150)
{
    evb_topic_config tc = {.partitions = WIDE_PARTS, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "wide", &tc), 0, "%s", evb_err_get());
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .idle = EVB_IDLE_BLOCK};
    cr_assert_eq(evb_consumer_open(&c, bus, "wide", &co), 0);
    struct late_pub lp = {0};
    open_ring(&lp.ring, "wide", WIDE_PART);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, publish_when_asleep, &lp), 0);
    evb_event ev;
    uint64_t t0 = t_now_ms();
    int rc = evb_consumer_next(c, &ev, 10000);
    uint64_t took = t_now_ms() - t0;
    pthread_join(th, NULL);
    cr_assert_eq(lp.rc, 0, "publish: %d", lp.rc);
    cr_assert_eq(rc, 0, "next: %d", rc);
    cr_expect_eq(ev.partition, WIDE_PART);
    /* The publisher waits ~100 ms; the wake must not wait for the 10 s
     * timeout. */
    cr_expect_lt(took, 1000, "woken after %llu ms: the event waited for the timeout",
                 (unsigned long long)took);
    evb_ring_close(&lp.ring);
    evb_consumer_close(c);
}

/* ---- defect 6: the lengths checked are the lengths used ---- */

static const char KEY[] = "k";
static const char VALUE[] = "hello-value";

/* Child: a lossless subscriber (reads the ring in place, no private copy)
 * stopped by the crash point between the frame's decoding and the event's
 * filling; reports the lengths it was given. */
static int stopped_reader(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus *b;
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    if (evb_bus_open(&b, t_bus_dir(), NULL) || evb_consumer_open(&c, b, "df", &co))
        return 10;
    setenv("EVB_CRASH_AT", "consumer.before_fill", 1);
    setenv("EVB_CRASH_SIGNAL", "STOP", 1);
    atomic_store_explicit(&sh->ready, 1, memory_order_release);
    evb_event ev;
    if (evb_consumer_next(c, &ev, 10000))
        return 11;
    atomic_store_explicit(&sh->val[0], ev.key_len, memory_order_relaxed);
    atomic_store_explicit(&sh->val[1], ev.value_len, memory_order_relaxed);
    bool same = ev.key_len == sizeof KEY - 1 && ev.value_len == sizeof VALUE - 1 &&
                !memcmp(ev.key, KEY, ev.key_len) && !memcmp(ev.value, VALUE, ev.value_len);
    return same ? 0 : 12;
}

Test(hostile, event_lengths_are_the_validated_ones)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "df", &tc), 0);
    struct t_shared *sh = t_shared_new();
    pid_t pid = t_spawn(stopped_reader, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 5000), "reader never opened");
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "df", NULL), 0);
    evb_msg m = {.key = KEY, .key_len = sizeof KEY - 1, .value = VALUE,
                 .value_len = sizeof VALUE - 1, .partition = 0};
    cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
    int st;
    cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(st), "reader did not stop between decode and fill");
    /* A hostile writer changes both lengths of the decoded frame. */
    struct evb_ring r;
    open_ring(&r, "df", 0);
    struct evb_frame *f = evb_ring_frame(&r, 0);
    cr_assert_eq(f->len, evb_frame_len(sizeof KEY - 1, sizeof VALUE - 1));
    f->len = UINT32_MAX - 7;
    f->key_len = UINT16_MAX;
    evb_ring_close(&r);
    kill(pid, SIGCONT);
    int code = t_wait_exit(pid, 10000);
    cr_expect_eq(atomic_load_explicit(&sh->val[0], memory_order_relaxed), sizeof KEY - 1,
                 "key_len fetched again from the ring");
    cr_expect_eq(atomic_load_explicit(&sh->val[1], memory_order_relaxed), sizeof VALUE - 1,
                 "value_len fetched again from the ring");
    cr_expect_eq(code, 0, "reader exit %d", code);
}
