/*
 * bench_child.c - the producer and consumer processes of an `evbus bench`
 * run: each opens the bus and the topic itself, as a user's program
 * would, waits for the parent's start, then publishes or reads, checks
 * and times, and reports into its own slot of the shared block
 * (bench_shm.h).
 */
#include "bench_shm.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Named consumers and group members commit this often (a ring-only
 * group's members gate producers at the group's commit). */
#define COMMIT_EVERY 4096
/* Events published on one reading of the clock (single and claim paths,
 * without a rate; see produce()). */
#define CHUNK 16
#define POLL_MAX 256

static void relax(bool crowded)
{
    if (crowded) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("isb" ::: "memory");
#endif
}

static uint64_t load64(const void *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static void store64(void *p, uint64_t w)
{
    memcpy(p, &w, 8);
}

/* Sum of the whole 64-bit words of P[0..LEN): reads every byte of them.
 * A copy of sum64() in perf/bench_util.h, and the two must stay the same
 * loop giving the same sum: `evbus bench` is measured against
 * perf/bench_throughput (perf/RESULTS.md, issue 11), and the ratio speaks
 * of the bus only while both consumers do the same work per value. Two
 * copies because tools/ and perf/ may each include only evbus.h and their
 * own headers (tools/check-layers.py). tests/cli/test_bench_sum.c checks
 * that they agree. */
uint64_t bench_sum64(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t w[4];
        memcpy(w, b + i, 32);
        a0 += w[0];
        a1 += w[1];
        a2 += w[2];
        a3 += w[3];
    }
    for (; i + 8 <= len; i += 8)
        a0 += load64(b + i);
    return a0 + a1 + a2 + a3;
}

/* A fixed pseudo-random filling for a value's bytes after the header. */
void bench_fill_pattern(unsigned char *p, size_t len)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

int bench_child_fail(bench_child *k, const char *what, int rc)
{
    snprintf(k->slot->msg, sizeof(k->slot->msg), "%s: %s", what, evb_strerror(rc));
    return 1;
}

static int child_bus(bench_child *k, evb_bus **bus)
{
    evb_bus_options o = { .data_dir = k->data_dir };
    int rc = evb_bus_open(bus, k->bus_path, &o);
    return rc < 0 ? bench_child_fail(k, "opening the bus", rc) : 0;
}

/* Wait for the parent's start (B2) with a deadline; 0 or -1. */
static int wait_go(bench_child *k)
{
    uint64_t end = bench_now_ns() + 60000000000ull;
    /* B2: the start times are set before go. */
    while (!atomic_load_explicit(&k->shm->go, memory_order_acquire)) {
        if (bench_now_ns() > end)
            return -1;
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* ---- producers ---------------------------------------------------------- */

typedef struct prod {
    bench_child *k;
    evb_producer *p;
    evb_msg *msgs;
    unsigned char *bufs;
    uint32_t flags;           /* EVB_MSG_SYNC on a sync topic */
} prod;

/* Publish N events whose send times are T0 + i * STEP, sequences from SEQ. */
static int publish(prod *pr, uint32_t n, uint64_t t0, double step, uint64_t seq)
{
    bench_child *k = pr->k;
    uint64_t tag = (uint64_t)k->index << 48;
    int rc;
    switch (k->cfg->path) {
    case BENCH_BATCH:
        for (uint32_t i = 0; i < n; i++) {
            unsigned char *v = pr->bufs + (size_t)i * k->size;
            store64(v, t0 + (uint64_t)(step * i));
            store64(v + 8, tag | (seq + i));
        }
        for (uint32_t done = 0; done < n; done += (uint32_t)rc) {
            rc = evb_publish_batch(pr->p, pr->msgs + done, n - done);
            if (rc < 0)
                return bench_child_fail(k, "evb_publish_batch", rc);
        }
        return 0;
    case BENCH_SINGLE:
        for (uint32_t i = 0; i < n; i++) {
            store64(pr->bufs, t0 + (uint64_t)(step * i));
            store64(pr->bufs + 8, tag | (seq + i));
            if ((rc = evb_publish(pr->p, &pr->msgs[0])) < 0)
                return bench_child_fail(k, "evb_publish", rc);
        }
        return 0;
    default:
        for (uint32_t i = 0; i < n; i++) {
            struct evb_claim cl;
            rc = evb_claim(pr->p, EVB_PARTITION_ANY, NULL, 0, (uint32_t)k->size, &cl);
            if (rc < 0)
                return bench_child_fail(k, "evb_claim", rc);
            /* Fill in place: the value the bench sends, as a user would. */
            memcpy(cl.value, pr->bufs, k->size);
            store64(cl.value, t0 + (uint64_t)(step * i));
            store64((unsigned char *)cl.value + 8, tag | (seq + i));
            if ((rc = evb_commit(pr->p, &cl)) < 0)
                return bench_child_fail(k, "evb_commit", rc);
            if (pr->flags && (rc = evb_producer_sync(pr->p, -1)) < 0)
                return bench_child_fail(k, "evb_producer_sync", rc);
        }
        return 0;
    }
}

/*
 * Publish until the timed window ends (by duration) or this producer's
 * share of the timed events is out (by events).
 *
 * As fast as possible, the clock is read once per CHUNK events (once per
 * batch on the batch path) and every event of the chunk carries that
 * time: reading it per event cost a quarter of the single path's rate on
 * the 2-CPU host of perf/RESULTS.md, more than the ~23 ns a read takes
 * alone. An event's latency is then overstated (never understated) by
 * the publishing of the events before it in its chunk, a few µs; without
 * a rate a lossless reader's latency is the wait in a full ring anyway.
 *
 * With a rate, event i of this producer is due at t_go + (index + i *
 * producers) / rate and carries that time, not the time it was sent: a
 * stall delays the events behind it, and their latency shows it (no
 * coordinated omission).
 */
static int produce(prod *pr)
{
    bench_child *k = pr->k;
    const bench_cfg *cfg = k->cfg;
    bench_shm *sh = k->shm;
    uint32_t batch = cfg->path == BENCH_BATCH ? cfg->batch : CHUNK;
    uint64_t share = cfg->events / cfg->producers + (k->index < cfg->events % cfg->producers);
    double step = cfg->rate > 0 ? 1e9 * cfg->producers / cfg->rate : 0;
    double first = cfg->rate > 0 ? (double)sh->t_go + 1e9 * k->index / cfg->rate : 0;
    uint64_t seq = 0, timed = 0;
    for (;;) {
        /* relaxed: a request to stop, it publishes nothing */
        if (atomic_load_explicit(&sh->halt, memory_order_relaxed))
            break;
        uint64_t now = bench_now_ns(), t0 = now;
        uint32_t n = batch;
        if (step > 0) {
            t0 = (uint64_t)(first + step * (double)seq);
            if (t0 > now) {
                if (t0 - now > 100000) {
                    struct timespec ts = { 0, (long)(t0 - now - 50000) };
                    nanosleep(&ts, NULL);
                } else {
                    relax(k->crowded);
                }
                continue;
            }
            uint64_t due = (uint64_t)((double)(now - t0) / step) + 1;
            n = due < batch ? (uint32_t)due : batch;
            /* A batch stays on one side of the window's start, so the
             * producer and the readers count the same events as timed. */
            if (t0 < sh->t_measure) {
                uint64_t before = (uint64_t)((double)(sh->t_measure - t0) / step) + 1;
                n = before < n ? (uint32_t)before : n;
                while (n > 1 && t0 + (uint64_t)(step * (n - 1)) >= sh->t_measure)
                    n--;
            }
        }
        if (t0 >= sh->t_end)
            break;
        bool in_window = t0 >= sh->t_measure;
        if (in_window && cfg->events) {
            if (timed == share)
                break;
            if (share - timed < n)
                n = (uint32_t)(share - timed);
        }
        if (publish(pr, n, t0, step, seq) != 0)
            return 1;
        seq += n;
        if (in_window)
            timed += n;
        /* relaxed: statistics, read by the parent's progress line */
        atomic_store_explicit(&k->slot->events, seq, memory_order_relaxed);
        atomic_store_explicit(&k->slot->timed, timed, memory_order_relaxed);
    }
    k->slot->t_last = bench_now_ns();
    return 0;
}

int bench_producer_main(bench_child *k)
{
    evb_bus *bus = NULL;
    prod pr = { .k = k };
    int err = child_bus(k, &bus);
    if (err)
        return err;
    evb_producer_options po = { .block_ms = -1, .partitioner = EVB_PART_ROUND_ROBIN,
                                .flags = k->cfg->exclusive ? EVB_PRODUCER_EXCLUSIVE : 0 };
    int rc = evb_producer_open(&pr.p, bus, k->topic, &po);
    if (rc < 0) {
        evb_bus_close(bus);
        return bench_child_fail(k, "evb_producer_open", rc);
    }
    uint32_t batch = k->cfg->path == BENCH_BATCH ? k->cfg->batch : 1;
    pr.flags = k->cfg->durability == EVB_DURABILITY_SYNC ? EVB_MSG_SYNC : 0;
    pr.bufs = malloc((size_t)batch * k->size);
    pr.msgs = calloc(batch, sizeof(*pr.msgs));
    if (pr.bufs == NULL || pr.msgs == NULL) {
        err = bench_child_fail(k, "allocating values", -ENOMEM);
        goto out;
    }
    for (uint32_t i = 0; i < batch; i++) {
        unsigned char *v = pr.bufs + (size_t)i * k->size;
        memset(v, 0, BENCH_HEADER_BYTES);
        bench_fill_pattern(v + BENCH_HEADER_BYTES, k->size - BENCH_HEADER_BYTES);
        pr.msgs[i] = (evb_msg){ .value = v, .value_len = (uint32_t)k->size,
                                .partition = EVB_PARTITION_ANY };
    }
    /* A batch syncs once, after its last event. */
    if (pr.flags) {
        if (k->cfg->path == BENCH_BATCH)
            pr.msgs[batch - 1].flags = EVB_MSG_SYNC;
        else
            pr.msgs[0].flags = EVB_MSG_SYNC;
    }
    /* relaxed: the parent only waits for it; nothing is published by it */
    atomic_store_explicit(&k->slot->state, SLOT_READY, memory_order_relaxed);
    if (wait_go(k) != 0) {
        err = bench_child_fail(k, "waiting for the start", -ETIMEDOUT);
        goto out;
    }
    err = produce(&pr);
out:
    /* B1: t_last before DONE. */
    atomic_store_explicit(&k->slot->state, SLOT_DONE, memory_order_release);
    free(pr.bufs);
    free(pr.msgs);
    evb_producer_close(pr.p);
    evb_bus_close(bus);
    return err;
}

/* ---- consumers ---------------------------------------------------------- */

/* Events timed on one clock read (see take()). */
#define TIME_EVERY 16

typedef struct cons {
    bench_child *k;
    uint64_t t_measure, t_end;
    uint64_t delivered, timed, lost, bad, redelivered, t_last;
    uint64_t sent[TIME_EVERY];  /* send times of checked events not yet timed */
    uint32_t pending;
} cons;

/* Time the pending events on one reading of the clock. */
static void flush(cons *s)
{
    if (s->pending == 0)
        return;
    uint64_t now = bench_now_ns();
    for (uint32_t i = 0; i < s->pending; i++) {
        uint64_t sent = s->sent[i];
        if (sent >= s->t_measure) {
            hist_add(s->k->hist, now > sent ? now - sent : 0);
            if (s->k->cfg->events) {
                s->timed++;
                s->t_last = now;
            }
        }
        if (!s->k->cfg->events && now >= s->t_measure && now < s->t_end)
            s->timed++;
    }
    s->pending = 0;
}

/*
 * One delivered event: check it, then time it. The clock is read once for
 * up to TIME_EVERY events, after the last of them was handed over and
 * checked, and at the end of every poll: a time taken late, so latency is
 * over- and never understated, by at most the handling of 15 events (a
 * few µs, and only when events queue up, when latency is far larger); an
 * event that arrives alone is timed on its own. A clock read per event
 * would cost ~20 ns each, a tenth of a 64 B event's whole cost.
 */
static void take(cons *s, const evb_event *ev)
{
    bench_child *k = s->k;
    s->delivered++;
    s->lost += ev->lost_events;
    if (ev->deliveries > 1)
        s->redelivered++;
    if (ev->value_len != k->size) {
        s->bad++;
        return;
    }
    uint64_t sent = load64(ev->value);
    uint64_t tag = load64((const unsigned char *)ev->value + 8);
    if (bench_sum64(ev->value, ev->value_len) != k->pattern_sum + sent + tag) {
        s->bad++;
        return;
    }
    s->sent[s->pending++] = sent;
    if (s->pending == TIME_EVERY)
        flush(s);
}

static int on_event(const evb_event *ev, void *arg)
{
    take(arg, ev);
    return 0;
}

static void publish_counts(cons *s)
{
    /* relaxed: statistics, read by the parent's progress line */
    atomic_store_explicit(&s->k->slot->events, s->delivered, memory_order_relaxed);
    atomic_store_explicit(&s->k->slot->timed, s->timed, memory_order_relaxed);
}

static int consume(cons *s, evb_consumer *c)
{
    bench_child *k = s->k;
    uint32_t reader = k->cfg->reader;
    uint64_t since_commit = 0;
    int rc;
    for (;;) {
        if (reader == BENCH_QUEUE) {
            evb_event ev;
            rc = evb_consumer_next(c, &ev, 0);
            if (rc == 0) {
                take(s, &ev);
                flush(s); /* timed on delivery, not after the ack */
                if ((rc = evb_consumer_ack(c, &ev)) < 0)
                    return bench_child_fail(k, "evb_consumer_ack", rc);
                rc = 1;
            } else if (rc == -EAGAIN || rc == -ETIMEDOUT) {
                rc = 0;
            } else {
                return bench_child_fail(k, "evb_consumer_next", rc);
            }
        } else if ((rc = evb_consumer_poll(c, on_event, s, POLL_MAX)) < 0) {
            return bench_child_fail(k, "evb_consumer_poll", rc);
        }
        if (rc > 0) {
            flush(s);
            publish_counts(s);
            since_commit += (uint64_t)rc;
            if ((reader == BENCH_CONSUMER || reader == BENCH_GROUP) &&
                since_commit >= COMMIT_EVERY) {
                since_commit = 0;
                /* -ESTALE: a partition moved to another member; it goes on. */
                if ((rc = evb_consumer_commit(c)) < 0 && rc != -ESTALE)
                    return bench_child_fail(k, "evb_consumer_commit", rc);
            }
            continue;
        }
        /* relaxed: a request to leave once drained; it publishes nothing */
        if (atomic_load_explicit(&k->shm->stop, memory_order_relaxed))
            break;
        relax(k->crowded);
    }
    if (reader == BENCH_CONSUMER || reader == BENCH_GROUP)
        evb_consumer_commit(c);
    return 0;
}

int bench_consumer_main(bench_child *k)
{
    evb_bus *bus = NULL;
    evb_consumer *c = NULL;
    int err = child_bus(k, &bus);
    if (err)
        return err;
    static const uint32_t kinds[] = {
        [BENCH_SUBSCRIBER] = EVB_SUBSCRIBER, [BENCH_LOSSLESS] = EVB_SUBSCRIBER_LOSSLESS,
        [BENCH_CONSUMER] = EVB_CONSUMER, [BENCH_GROUP] = EVB_GROUP_MEMBER,
        [BENCH_QUEUE] = EVB_QUEUE_MEMBER,
    };
    char name[EVB_NAME_MAX + 1];
    if (k->cfg->reader == BENCH_CONSUMER)
        snprintf(name, sizeof(name), "bench-%u", k->index);
    else
        snprintf(name, sizeof(name), "bench");
    evb_consumer_options co = {
        .kind = kinds[k->cfg->reader],
        .name = k->cfg->reader >= BENCH_CONSUMER ? name : NULL,
        .start = k->cfg->reader == BENCH_QUEUE || k->cfg->reader == BENCH_GROUP
                     ? EVB_START_EARLIEST : EVB_START_DEFAULT,
        .idle = EVB_IDLE_SPIN,
        .partition = -1,
    };
    int rc = evb_consumer_open(&c, bus, k->topic, &co);
    if (rc < 0) {
        evb_bus_close(bus);
        return bench_child_fail(k, "evb_consumer_open", rc);
    }
    /* relaxed: the parent only waits for it; nothing is published by it */
    atomic_store_explicit(&k->slot->state, SLOT_READY, memory_order_relaxed);
    cons s = { .k = k };
    if (wait_go(k) != 0) {
        err = bench_child_fail(k, "waiting for the start", -ETIMEDOUT);
    } else {
        s.t_measure = k->shm->t_measure;
        s.t_end = k->shm->t_end;
        err = consume(&s, c);
    }
    flush(&s);
    publish_counts(&s);
    k->slot->lost = s.lost;
    k->slot->bad = s.bad;
    k->slot->redelivered = s.redelivered;
    k->slot->t_last = s.t_last;
    /* B1: the counts and the histogram before DONE. */
    atomic_store_explicit(&k->slot->state, SLOT_DONE, memory_order_release);
    evb_consumer_close(c);
    evb_bus_close(bus);
    return err;
}

