/*
 * test_sync_stall.c - a sync publish whose partition's flusher is stopped
 * (SIGSTOP, Ctrl-Z: the process is alive and keeps its flush lock, which
 * nobody may take from it). The publish honours the producer's block_ms:
 * -ETIMEDOUT after it, naming the stopped pid, the event published all
 * the same and durable once the flusher runs again; block_ms -1 waits it
 * out; block_ms 0 gives up once it sees the flusher stopped. Found by the
 * cold attack of issue 13 (D4: EVB_MSG_SYNC had no timeout at all).
 * Likewise a sync wait in the flushing process itself, whose flusher
 * thread is inside a slow fdatasync of another partition.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "durable_fixture.h"

#define TOPIC "st"

TestSuite(sync_stall, .init = df_setup, .fini = df_teardown, .timeout = 60);

static pid_t flusher_pid;

static uint64_t flusher_word(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" TOPIC "/0.ring", t_bus_dir());
    struct evb_ring r;
    cr_assert_eq(evb_ring_open(&r, path), 0, "%s", path);
    uint64_t w = atomic_load(&r.hdr->flusher);
    evb_ring_close(&r);
    return w;
}

/* A sync topic whose flusher is another process, stopped. */
static void stopped_flusher(void)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    flusher_pid = df_start_flusher(TOPIC);
    cr_assert_eq(flusher_word() >> 32, (uint64_t)flusher_pid, "the child is not the flusher");
    cr_assert_eq(kill(flusher_pid, SIGSTOP), 0);
    /* Stopped for sure before we publish: /proc says 'T'. */
    for (int i = 0; i < 200 && evb_proc_stopped(flusher_word()) != 1; i++)
        usleep(5000);
    cr_assert_eq(evb_proc_stopped(flusher_word()), 1, "the child did not stop");
}

static void flusher_gone(void)
{
    df_stop_flusher(flusher_pid);
}

static evb_producer *producer(int32_t block_ms)
{
    evb_producer_options po = {.block_ms = block_ms};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, TOPIC, &po), 0, "%s", evb_last_error());
    return p;
}

static int publish_sync(evb_producer *p, uint64_t seq, evb_receipt *r)
{
    uint8_t v[DF_VLEN];
    t_value_fill(v, DF_VLEN, 1, seq);
    evb_msg m = {.value = v, .value_len = DF_VLEN, .partition = 0, .flags = EVB_MSG_SYNC};
    *r = (evb_receipt){0};
    return evb_publish_receipt(p, &m, r);
}

/* -ETIMEDOUT after BLOCK_MS (0: after the flusher is seen stopped), not
 * much later, naming the stopped pid; the event published all the same,
 * durable once the flusher runs again. */
static void times_out(int32_t block_ms, uint64_t min_ms)
{
    stopped_flusher();
    evb_producer *p = producer(block_ms);
    evb_receipt r;
    uint64_t t0 = t_now_ms();
    int rc = publish_sync(p, 1, &r);
    uint64_t ms = t_now_ms() - t0;
    char want[64];
    snprintf(want, sizeof want, "pid %d", (int)flusher_pid);
    cr_expect_eq(rc, -ETIMEDOUT, "block_ms %d: %d %s after %llu ms", block_ms, rc,
                 evb_last_error(), (unsigned long long)ms);
    cr_expect_geq(ms, min_ms, "returned after %llu ms", (unsigned long long)ms);
    cr_expect_lt(ms, min_ms + 1500, "returned after %llu ms", (unsigned long long)ms);
    cr_expect(strstr(evb_last_error(), want) && strstr(evb_last_error(), "stopped"),
              "the detail names the stopped flusher: %s", evb_last_error());
    cr_expect_eq(r.offset, 1u, "published, with its offset");
    cr_expect_gt(r.end_position, 0u, "published: the receipt is filled");
    /* A batch with EVB_MSG_SYNC is bounded the same way. */
    if (block_ms > 0) {
        uint8_t v[DF_VLEN];
        t_value_fill(v, DF_VLEN, 1, 2);
        evb_msg m = {.value = v, .value_len = DF_VLEN, .partition = 0, .flags = EVB_MSG_SYNC};
        t0 = t_now_ms();
        rc = evb_publish_batch(p, &m, 1);
        ms = t_now_ms() - t0;
        cr_expect_eq(rc, -ETIMEDOUT, "batch: %d after %llu ms", rc, (unsigned long long)ms);
        cr_expect_lt(ms, min_ms + 1500, "batch returned after %llu ms", (unsigned long long)ms);
    }
    cr_assert_eq(kill(flusher_pid, SIGCONT), 0);
    rc = evb_producer_wait_durable(p, &r, 10000);
    cr_expect_eq(rc, 0, "durable after SIGCONT: %s", evb_last_error());
    cr_expect_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    evb_producer_close(p);
    flusher_gone();
}

Test(sync_stall, a_stopped_flusher_times_a_sync_publish_out_after_block_ms)
{
    times_out(200, 190);
}

Test(sync_stall, with_block_ms_0_a_stopped_flusher_ends_the_wait)
{
    times_out(0, 0);
}

/* A full durable ring whose flusher is stopped: a publish's wait for room
 * runs out after block_ms with a text naming the flusher, by pid, as
 * stopped, and the position it has not written. */
Test(sync_stall, a_full_ring_s_timeout_names_its_stopped_flusher)
{
    stopped_flusher();
    evb_producer *fill = producer(0), *w = producer(100);
    uint8_t v[DF_VLEN];
    evb_msg m = {.value = v, .value_len = DF_VLEN, .partition = 0};
    int rc;
    for (uint64_t n = 0; (rc = evb_publish(fill, &m)) == 0; n++) {
        cr_assert_lt(n, 1000000u, "the ring never filled");
        t_value_fill(v, DF_VLEN, 1, n);
    }
    cr_assert_eq(rc, -EAGAIN, "%s", evb_last_error());
    evb_clear_error();
    cr_assert_eq(evb_publish(w, &m), -ETIMEDOUT, "%s", evb_last_error());
    char want[64];
    snprintf(want, sizeof want, "its flusher (pid %d, which is stopped", (int)flusher_pid);
    cr_expect(strstr(evb_last_error(), want) &&
              strstr(evb_last_error(), "has not written position"),
              "the detail names the stopped flusher: %s", evb_last_error());
    cr_assert_eq(kill(flusher_pid, SIGCONT), 0);
    evb_producer_close(w);
    evb_producer_close(fill);
    flusher_gone();
}

static void *resume_later(void *arg)
{
    (void)arg;
    usleep(600 * 1000);
    kill(flusher_pid, SIGCONT);
    return NULL;
}

/* block_ms -1: as long as it takes; the stop is waited out. */
Test(sync_stall, block_ms_forever_waits_for_the_stopped_flusher)
{
    stopped_flusher();
    evb_producer *p = producer(-1);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, resume_later, NULL), 0);
    evb_receipt r;
    uint64_t t0 = t_now_ms();
    int rc = publish_sync(p, 1, &r);
    uint64_t ms = t_now_ms() - t0;
    pthread_join(t, NULL);
    cr_expect_eq(rc, 0, "%s", evb_last_error());
    cr_expect_geq(ms, 500u, "returned after %llu ms, before the flusher ran again",
                  (unsigned long long)ms);
    uint64_t d;
    cr_expect_eq(evb_producer_durable_position(p, &r, &d), 0);
    cr_expect_geq(d, r.end_position);
    evb_producer_close(p);
    flusher_gone();
}

/* With the flusher running, block_ms 0 is no reason to fail a sync
 * publish: it waits for the fdatasync as it always did. */
Test(sync_stall, block_ms_0_waits_for_a_running_flusher)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    evb_producer *p = producer(0);
    for (uint64_t i = 0; i < 50; i++) {
        evb_receipt r;
        cr_assert_eq(publish_sync(p, i, &r), 0, "%llu: %s", (unsigned long long)i,
                     evb_last_error());
    }
    evb_producer_close(p);
}

/* A slow disk for every thread but the test's: the flusher thread's
 * fdatasync takes 2 s while SLOW is set. */
static _Atomic int slow;
static pid_t test_tid;

int fdatasync(int fd)
{
    if (atomic_load(&slow) && (pid_t)syscall(SYS_gettid) != test_tid)
        sleep(2);
    return (int)syscall(SYS_fdatasync, fd);
}

/*
 * A sync waiter in the process whose flusher holds its partition runs the
 * round itself (evb_flush_inline), but never waits for the round lock:
 * the thread holds it through another partition's fdatasync (2 s here),
 * and a waiter that waited for it kept no deadline at all (found by the
 * inline round's review: -ETIMEDOUT after 201 ms before it, success after
 * 5.9 s with it). The wait ends at its timeout.
 */
Test(sync_stall, a_sync_wait_beside_a_slow_flusher_round_keeps_its_deadline)
{
    test_tid = (pid_t)syscall(SYS_gettid);
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    tc.partitions = 2;
    df_create(TOPIC, &tc);
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, TOPIC, &po), 0, "%s", evb_last_error());
    char v[64] = "x";
    for (uint32_t part = 0; part < 2; part++) {
        evb_msg m = {.value = v, .value_len = sizeof v, .partition = part,
                     .flags = EVB_MSG_SYNC};
        cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    }
    atomic_store(&slow, 1);
    evb_msg m1 = {.value = v, .value_len = sizeof v, .partition = 1};
    cr_assert_eq(evb_publish(p, &m1), 0); /* the thread syncs it, slowly */
    usleep(100 * 1000);
    evb_receipt r = {0};
    evb_msg m0 = {.value = v, .value_len = sizeof v, .partition = 0};
    cr_assert_eq(evb_publish_receipt(p, &m0, &r), 0, "%s", evb_last_error());
    uint64_t t0 = t_now_ms();
    int rc = evb_producer_wait_durable(p, &r, 200);
    uint64_t took = t_now_ms() - t0;
    atomic_store(&slow, 0);
    cr_expect(rc == -ETIMEDOUT || rc == 0, "rc %d (%s)", rc, evb_last_error());
    cr_expect_lt(took, 1000, "a 200 ms wait took %llu ms (rc %d)", (unsigned long long)took, rc);
    cr_assert_eq(evb_producer_wait_durable(p, &r, 10000), 0, "%s", evb_last_error());
    evb_producer_close(p);
}
