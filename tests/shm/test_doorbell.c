/*
 * test_doorbell.c - shm/doorbell.c: waiter bits set and cleared per slot,
 * a commit rings the bell (and takes the bits) only when some bit is set,
 * and a thread asleep on the bell is woken by a commit before its
 * deadline, on one ring or across two (futex_waitv), or on any of more
 * bells than one futex_waitv call takes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ring_helpers.h"
#include "t_helpers.h"

TestSuite(ring_doorbell, .fini = tr_fini, .timeout = 10);

Test(ring_doorbell, waiter_bits_are_set_and_cleared_per_slot)
{
    struct evb_ring r;
    uint32_t bell;
    tr_ring(&r, NULL);
    TR_ST(r.hdr->bell, 41);
    evb_ring_waiter_set(&r, 3, &bell);
    cr_expect_eq(bell, 41, "the bell value to sleep on");
    evb_ring_waiter_set(&r, 63, &bell);
    cr_expect_eq(TR_LD(r.hdr->waiters), 1ull << 3 | 1ull << 63);
    evb_ring_waiter_clear(&r, 3);
    cr_expect_eq(TR_LD(r.hdr->waiters), 1ull << 63);
    evb_ring_waiter_clear(&r, 63);
    cr_expect_eq(TR_LD(r.hdr->waiters), 0);
    evb_ring_close(&r);
}

Test(ring_doorbell, commit_rings_only_when_a_bit_is_set)
{
    struct evb_ring r;
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    uint32_t bell;
    tr_ring(&r, NULL);
    cr_assert_eq(evb_ring_producer_attach(&p, &r, 1), 0);
    cr_assert_eq(tr_publish(&p, 64, &c), 0);
    cr_expect_eq(TR_LD(r.hdr->bell), 0, "no waiter, no system call");
    evb_ring_waiter_set(&r, 2, &bell);
    evb_ring_waiter_set(&r, 9, &bell);
    cr_assert_eq(tr_publish(&p, 64, &c), 0);
    cr_expect_eq(TR_LD(r.hdr->bell), 1);
    cr_expect_eq(TR_LD(r.hdr->waiters), 0, "one wake takes every bit");
    cr_assert_eq(tr_publish(&p, 64, &c), 0);
    cr_expect_eq(TR_LD(r.hdr->bell), 1, "until a reader sets its bit again");
    evb_ring_producer_detach(&p);
    evb_ring_close(&r);
}

Test(ring_doorbell, wait_times_out_when_nothing_rings)
{
    struct evb_ring r;
    uint32_t bell;
    tr_ring(&r, NULL);
    evb_ring_waiter_set(&r, 0, &bell);
    _Atomic uint32_t *bells[1] = {&r.hdr->bell};
    uint64_t t0 = evb_mono_ns();
    cr_expect_eq(evb_bell_wait(bells, &bell, 1, 20 * 1000 * 1000), -ETIMEDOUT);
    cr_expect_geq(evb_mono_ns() - t0, 20ull * 1000 * 1000);
    /* A bell that moved since the value was read does not sleep at all. */
    uint32_t old = bell - 1;
    cr_expect_eq(evb_bell_wait(bells, &old, 1, 0), -EAGAIN);
    evb_ring_close(&r);
}

struct sleeper {
    struct evb_ring *rings[2];
    unsigned n;
    struct evb_ring_reader rd[2];
    _Atomic int armed;
    int rc;
    uint64_t slept_ns;
};

/* A reader's sleep as bus/consumer.c does it: set the bit, re-check
 * readiness (D1), then sleep on the bell with a deadline. */
static void *sleep_on_bells(void *arg)
{
    struct sleeper *s = arg;
    _Atomic uint32_t *bells[2];
    uint32_t vals[2];
    for (unsigned i = 0; i < s->n; i++) {
        evb_ring_waiter_set(s->rings[i], s->rd[i].slot_idx, &vals[i]);
        bells[i] = &s->rings[i]->hdr->bell;
        if (evb_ring_reader_ready(&s->rd[i])) {
            s->rc = 1;
            return NULL;
        }
    }
    /* Release: pairs with the test's acquire poll of armed. */
    atomic_store_explicit(&s->armed, 1, memory_order_release);
    uint64_t t0 = evb_mono_ns();
    s->rc = evb_bell_wait(bells, vals, s->n, 5ull * 1000000000ull);
    s->slept_ns = evb_mono_ns() - t0;
    return NULL;
}

static void wake_by_commit(unsigned rings, unsigned commit_on)
{
    struct evb_ring r[2];
    struct evb_ring_producer p;
    struct evb_ring_claim c;
    struct sleeper s = {.n = rings};
    for (unsigned i = 0; i < rings; i++) {
        tr_ring(&r[i], NULL);
        s.rings[i] = &r[i];
        cr_assert_eq(evb_ring_reader_attach(&s.rd[i], &r[i], EVB_SLOT_SUBSCRIBER, "",
                                            EVB_POS_NONE, 0), 0);
    }
    cr_assert_eq(evb_ring_producer_attach(&p, &r[commit_on], 1), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, sleep_on_bells, &s), 0);
    uint64_t end = t_now_ms() + 5000;
    while (!atomic_load_explicit(&s.armed, memory_order_acquire) && t_now_ms() < end)
        sched_yield();
    cr_assert(atomic_load_explicit(&s.armed, memory_order_acquire), "sleeper never armed");
    /* Whether or not the sleeper is inside futex yet, the commit must end
     * its wait: the bell moves before the wake. */
    cr_assert_eq(tr_publish(&p, 64, &c), 0);
    pthread_join(th, NULL);
    cr_expect(s.rc == 0 || s.rc == -EAGAIN, "wait: %d", s.rc);
    cr_expect_lt(s.slept_ns, 4000000000ull, "woken by the commit, not the deadline");
    cr_expect_eq(evb_ring_reader_ready(&s.rd[commit_on]), 1);
    evb_ring_producer_detach(&p);
    for (unsigned i = 0; i < rings; i++) {
        evb_ring_reader_detach(&s.rd[i]);
        evb_ring_close(&r[i]);
    }
}

Test(ring_doorbell, sleeping_reader_is_woken_by_a_commit)
{
    wake_by_commit(1, 0);
}

Test(ring_doorbell, sleeper_across_two_rings_is_woken_by_either)
{
    wake_by_commit(2, 1);
}

/* More bells than one futex_waitv call takes (issue 9, defect 5): the
 * bells past the first call's are watched as closely as the first. */
#define MANY_BELLS 300u

struct many {
    _Atomic uint32_t *words; /* MANY_BELLS futex words in a shared page */
    _Atomic uint32_t *bells[MANY_BELLS];
    uint32_t vals[MANY_BELLS];
    _Atomic int armed;
    int rc;
    uint64_t slept_ns;
};

static void many_init(struct many *m)
{
    m->words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m->words, MAP_FAILED);
    for (unsigned i = 0; i < MANY_BELLS; i++) {
        m->bells[i] = &m->words[i];
        /* B1: acquire, as evb_ring_waiter_set loads a bell. */
        m->vals[i] = atomic_load_explicit(&m->words[i], memory_order_acquire);
    }
}

static void *sleep_on_many(void *arg)
{
    struct many *m = arg;
    /* Release: pairs with the test's acquire poll of armed. */
    atomic_store_explicit(&m->armed, 1, memory_order_release);
    uint64_t t0 = evb_mono_ns();
    m->rc = evb_bell_wait(m->bells, m->vals, MANY_BELLS, 5ull * 1000000000ull);
    m->slept_ns = evb_mono_ns() - t0;
    return NULL;
}

Test(ring_doorbell, wait_on_300_bells_is_woken_by_any_of_them)
{
    unsigned which[] = {0, 126, 127, 200, MANY_BELLS - 1};
    for (unsigned k = 0; k < sizeof which / sizeof which[0]; k++) {
        struct many m = {0};
        many_init(&m);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, sleep_on_many, &m), 0);
        while (!atomic_load_explicit(&m.armed, memory_order_acquire))
            sched_yield();
        usleep(20 * 1000); /* most likely asleep in the kernel by now */
        evb_bell_ring(m.bells[which[k]]);
        pthread_join(th, NULL);
        cr_expect(m.rc == 0 || m.rc == -EAGAIN, "bell %u: wait %d", which[k], m.rc);
        cr_expect_lt(m.slept_ns, 1000000000ull, "bell %u woke it only at the deadline",
                     which[k]);
        munmap((void *)m.words, 4096);
    }
}

Test(ring_doorbell, wait_on_300_bells_times_out_or_sees_a_moved_bell)
{
    struct many m = {0};
    many_init(&m);
    uint64_t t0 = evb_mono_ns();
    cr_expect_eq(evb_bell_wait(m.bells, m.vals, MANY_BELLS, 20 * 1000 * 1000), -ETIMEDOUT);
    cr_expect_geq(evb_mono_ns() - t0, 20ull * 1000 * 1000);
    /* A bell of the last group moved before the call: no sleep at all. */
    evb_bell_ring(m.bells[MANY_BELLS - 1]);
    t0 = evb_mono_ns();
    cr_expect_eq(evb_bell_wait(m.bells, m.vals, MANY_BELLS, 5ull * 1000000000ull), -EAGAIN);
    cr_expect_lt(evb_mono_ns() - t0, 1000000000ull);
    munmap((void *)m.words, 4096);
}

/* A thread that sleeps on BELL in class MASK until STOP, counting the
 * times its sleep returned. */
struct classed {
    _Atomic uint32_t *bell;
    uint32_t mask;
    _Atomic int stop;
    _Atomic pid_t tid;
    _Atomic unsigned returns;
    int last_rc;
};

static void *classed_sleeper(void *arg)
{
    struct classed *c = arg;
    atomic_store_explicit(&c->tid, (pid_t)syscall(SYS_gettid), memory_order_release);
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
        uint32_t v = atomic_load_explicit(c->bell, memory_order_acquire);
        if (atomic_load_explicit(&c->stop, memory_order_acquire))
            break;
        c->last_rc = evb_bell_sleep_mask(c->bell, v, 5ull * 1000000000ull, c->mask);
        atomic_fetch_add_explicit(&c->returns, 1, memory_order_acq_rel);
    }
    return NULL;
}

static unsigned returns(struct classed *c)
{
    return atomic_load_explicit(&c->returns, memory_order_acquire);
}

/* Rings whose class bits miss a sleeper's leave it asleep, the bell
 * moving under it or not; one that meets them wakes it, and so does a
 * plain ring (every class). The sleep's timeout is absolute inside the
 * call: it still ends a sleep nothing wakes. */
Test(ring_doorbell, a_classed_sleeper_wakes_only_for_its_classes)
{
    static _Atomic uint32_t bell;
    struct classed c = {.bell = &bell, .mask = 1u << 3};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, classed_sleeper, &c), 0);
    pid_t tid;
    while (!(tid = atomic_load_explicit(&c.tid, memory_order_acquire)))
        sched_yield();
    for (int i = 0; i < 5; i++) {
        cr_assert(t_task_asleep(tid, 2000), "the sleeper never slept");
        evb_bell_ring_mask(&bell, 1u << 5 | 1u << 31);
    }
    cr_assert(t_task_asleep(tid, 2000));
    cr_expect_eq(returns(&c), 0, "rings of other classes woke it %u times", returns(&c));
    evb_bell_ring_mask(&bell, 1u << 3 | 1u << 9);
    uint64_t until = t_now_ms() + 2000;
    while (returns(&c) < 1 && t_now_ms() < until)
        sched_yield();
    cr_expect_eq(returns(&c), 1, "its class's ring did not wake it");
    cr_expect_eq(c.last_rc, 0);
    cr_assert(t_task_asleep(tid, 2000));
    evb_bell_ring(&bell);
    until = t_now_ms() + 2000;
    while (returns(&c) < 2 && t_now_ms() < until)
        sched_yield();
    cr_expect_eq(returns(&c), 2, "a plain ring did not wake it");
    atomic_store_explicit(&c.stop, 1, memory_order_release);
    evb_bell_ring(&bell);
    pthread_join(th, NULL);
    /* The timeout: relative for the caller, absolute for the kernel. */
    uint32_t v = atomic_load_explicit(&bell, memory_order_relaxed);
    uint64_t t0 = evb_mono_ns();
    cr_expect_eq(evb_bell_sleep_mask(&bell, v, 20 * 1000 * 1000, 1), -ETIMEDOUT);
    uint64_t slept = evb_mono_ns() - t0;
    cr_expect(slept >= 20ull * 1000 * 1000 && slept < 2000ull * 1000 * 1000, "slept %llu ns",
              (unsigned long long)slept);
}
