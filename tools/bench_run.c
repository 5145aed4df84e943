/*
 * bench_run.c - one run of `evbus bench`: a private topic, consumer and
 * producer processes, and a parent that starts them together, samples
 * their counters, drains the readers and merges what they measured.
 *
 * Processes, not threads: separate processes sharing the rings are what
 * evbus is for, and each child opens the bus and maps the rings itself as
 * a user's program would (perf/bench_throughput does the same). Children
 * report through one MAP_SHARED block; each writes only its own slot.
 */
#include "bench.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE 128
/* The parent's sampling period, and how long readers may take to catch
 * up once the producers are done before the run counts as failed. */
#define SAMPLE_NS 100000000ull
#define DRAIN_NS 10000000000ull
/* Named consumers and group members commit this often (a ring-only
 * group's members gate producers at the group's commit). */
#define COMMIT_EVERY 4096
#define POLL_MAX 256

enum { SLOT_STARTING, SLOT_READY, SLOT_DONE };

/* One child's counters, on its own lines: written by that child only. */
typedef struct bench_slot {
    _Alignas(LINE) _Atomic uint64_t events; /* published, or delivered */
    _Atomic uint64_t timed;                 /* of those, in the timed window */
    _Atomic uint32_t state;                 /* SLOT_* */
    uint64_t lost, bad, redelivered;        /* consumers; final at SLOT_DONE */
    uint64_t t_last;                        /* by events: clock of the last timed one */
    char msg[256];                          /* why it failed */
} bench_slot;

/*
 * Ordering edges between the parent and its children:
 *   B1  a child's final fields (lost, bad, t_last, its histogram) before
 *       state = SLOT_DONE (release); the parent loads state (acquire)
 *       before reading them.
 *   B2  the parent's start times (t_go, t_measure, t_end) before go = 1
 *       (release); children load go (acquire) before reading them.
 * Counters (events, timed), halt and stop are relaxed: statistics, or a
 * request to leave that publishes no data.
 */
typedef struct bench_shm {
    _Alignas(LINE) _Atomic uint32_t go;
    uint64_t t_go, t_measure, t_end;       /* CLOCK_MONOTONIC ns; t_end UINT64_MAX by events */
    _Alignas(LINE) _Atomic uint32_t halt;  /* producers: stop now (Ctrl-C) */
    _Alignas(LINE) _Atomic uint32_t stop;  /* consumers: drained, leave */
    bench_slot slot[2 * BENCH_MAX_PROCS];  /* producers, then consumers */
} bench_shm;

typedef struct child {
    const bench_cfg *cfg;
    const char *bus_path, *data_dir, *topic;
    uint64_t size;
    bench_shm *shm;
    hist *hist;               /* consumers: theirs, in shared memory */
    bench_slot *slot;
    uint32_t index;           /* among producers, or among consumers */
    bool crowded;             /* more processes than CPUs: yield when idle */
    uint64_t pattern_sum;     /* sum64 of a value's words after the header */
} child;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

/* Sum of the whole 64-bit words of P[0..LEN): reads every byte of them,
 * as perf/bench_throughput's consumer does, so both do the same work. */
static uint64_t sum64(const void *p, size_t len)
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
static void fill_pattern(unsigned char *p, size_t len)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

static int child_fail(child *k, const char *what, int rc)
{
    snprintf(k->slot->msg, sizeof(k->slot->msg), "%s: %s", what, evb_strerror(rc));
    return 1;
}

static int child_bus(child *k, evb_bus **bus)
{
    evb_bus_options o = { .data_dir = k->data_dir };
    int rc = evb_bus_open(bus, k->bus_path, &o);
    return rc < 0 ? child_fail(k, "opening the bus", rc) : 0;
}

/* Wait for the parent's start (B2) with a deadline; 0 or -1. */
static int wait_go(child *k)
{
    uint64_t end = now_ns() + 60000000000ull;
    /* B2: the start times are set before go. */
    while (!atomic_load_explicit(&k->shm->go, memory_order_acquire)) {
        if (now_ns() > end)
            return -1;
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* ---- producers ---------------------------------------------------------- */

typedef struct prod {
    child *k;
    evb_producer *p;
    evb_msg *msgs;
    unsigned char *bufs;
    uint32_t flags;           /* EVB_MSG_SYNC on a sync topic */
} prod;

/* Publish N events whose send times are T0 + i * STEP, sequences from SEQ. */
static int publish(prod *pr, uint32_t n, uint64_t t0, double step, uint64_t seq)
{
    child *k = pr->k;
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
                return child_fail(k, "evb_publish_batch", rc);
        }
        return 0;
    case BENCH_SINGLE:
        for (uint32_t i = 0; i < n; i++) {
            store64(pr->bufs, t0 + (uint64_t)(step * i));
            store64(pr->bufs + 8, tag | (seq + i));
            if ((rc = evb_publish(pr->p, &pr->msgs[0])) < 0)
                return child_fail(k, "evb_publish", rc);
        }
        return 0;
    default:
        for (uint32_t i = 0; i < n; i++) {
            struct evb_claim cl;
            rc = evb_claim(pr->p, EVB_PARTITION_ANY, NULL, 0, (uint32_t)k->size, &cl);
            if (rc < 0)
                return child_fail(k, "evb_claim", rc);
            /* Fill in place: the value the bench sends, as a user would. */
            memcpy(cl.value, pr->bufs, k->size);
            store64(cl.value, t0 + (uint64_t)(step * i));
            store64((unsigned char *)cl.value + 8, tag | (seq + i));
            if ((rc = evb_commit(pr->p, &cl)) < 0)
                return child_fail(k, "evb_commit", rc);
            if (pr->flags && (rc = evb_producer_sync(pr->p, -1)) < 0)
                return child_fail(k, "evb_producer_sync", rc);
        }
        return 0;
    }
}

/*
 * Publish until the timed window ends (by duration) or this producer's
 * share of the timed events is out (by events). With a rate, event i of
 * this producer is due at t_go + (index + i * producers) / rate and
 * carries that time, not the time it was sent: a stall delays the events
 * behind it, and their latency shows it (no coordinated omission).
 */
static int produce(prod *pr)
{
    child *k = pr->k;
    const bench_cfg *cfg = k->cfg;
    bench_shm *sh = k->shm;
    uint32_t batch = cfg->path == BENCH_BATCH ? cfg->batch : 1;
    uint64_t share = cfg->events / cfg->producers + (k->index < cfg->events % cfg->producers);
    double step = cfg->rate > 0 ? 1e9 * cfg->producers / cfg->rate : 0;
    double first = cfg->rate > 0 ? (double)sh->t_go + 1e9 * k->index / cfg->rate : 0;
    uint64_t seq = 0, timed = 0;
    for (;;) {
        /* relaxed: a request to stop, it publishes nothing */
        if (atomic_load_explicit(&sh->halt, memory_order_relaxed))
            break;
        uint64_t now = now_ns(), t0 = now;
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
    k->slot->t_last = now_ns();
    return 0;
}

static int producer_main(child *k)
{
    evb_bus *bus = NULL;
    prod pr = { .k = k };
    int err = child_bus(k, &bus);
    if (err)
        return err;
    evb_producer_options po = { .block_ms = -1, .partitioner = EVB_PART_ROUND_ROBIN };
    int rc = evb_producer_open(&pr.p, bus, k->topic, &po);
    if (rc < 0) {
        evb_bus_close(bus);
        return child_fail(k, "evb_producer_open", rc);
    }
    uint32_t batch = k->cfg->path == BENCH_BATCH ? k->cfg->batch : 1;
    pr.flags = k->cfg->durability == EVB_DURABILITY_SYNC ? EVB_MSG_SYNC : 0;
    pr.bufs = malloc((size_t)batch * k->size);
    pr.msgs = calloc(batch, sizeof(*pr.msgs));
    if (pr.bufs == NULL || pr.msgs == NULL) {
        err = child_fail(k, "allocating values", -ENOMEM);
        goto out;
    }
    for (uint32_t i = 0; i < batch; i++) {
        unsigned char *v = pr.bufs + (size_t)i * k->size;
        memset(v, 0, BENCH_HEADER_BYTES);
        fill_pattern(v + BENCH_HEADER_BYTES, k->size - BENCH_HEADER_BYTES);
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
        err = child_fail(k, "waiting for the start", -ETIMEDOUT);
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
    child *k;
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
    uint64_t now = now_ns();
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
    child *k = s->k;
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
    if (sum64(ev->value, ev->value_len) != k->pattern_sum + sent + tag) {
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
    child *k = s->k;
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
                    return child_fail(k, "evb_consumer_ack", rc);
                rc = 1;
            } else if (rc == -EAGAIN || rc == -ETIMEDOUT) {
                rc = 0;
            } else {
                return child_fail(k, "evb_consumer_next", rc);
            }
        } else if ((rc = evb_consumer_poll(c, on_event, s, POLL_MAX)) < 0) {
            return child_fail(k, "evb_consumer_poll", rc);
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
                    return child_fail(k, "evb_consumer_commit", rc);
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

static int consumer_main(child *k)
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
        return child_fail(k, "evb_consumer_open", rc);
    }
    /* relaxed: the parent only waits for it; nothing is published by it */
    atomic_store_explicit(&k->slot->state, SLOT_READY, memory_order_relaxed);
    cons s = { .k = k };
    if (wait_go(k) != 0) {
        err = child_fail(k, "waiting for the start", -ETIMEDOUT);
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

/* ---- the parent --------------------------------------------------------- */

typedef struct run {
    cli *c;
    const bench_cfg *cfg;
    bench_result *r;
    bench_shm *shm;
    hist *hists;
    size_t hists_bytes;
    pid_t pid[2 * BENCH_MAX_PROCS];
    int status[2 * BENCH_MAX_PROCS];
    bool exited[2 * BENCH_MAX_PROCS];
    uint32_t nprod, ncons;
    int cpus[CPU_SETSIZE];
    int ncpus;
} run;

static int spawn(run *ru, child *k, int cpu, bool producer)
{
    uint32_t i = producer ? k->index : ru->nprod + k->index;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return cli_fail(ru->c, -errno, "fork");
    if (pid == 0) {
        /* Ctrl-C reaches the whole process group: the parent stops the
         * children in order (a producer killed mid-claim leaves a hole). */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if (sched_setaffinity(0, sizeof(set), &set) != 0) {
                child_fail(k, "pinning to a CPU", -errno);
                _exit(1);
            }
        }
        _exit(producer ? producer_main(k) : consumer_main(k));
    }
    ru->pid[i] = pid;
    return 0;
}

/* Reap children that exited; returns the index of one that failed, or -1. */
static int reap(run *ru)
{
    int failed = -1;
    for (uint32_t i = 0; i < ru->nprod + ru->ncons; i++) {
        if (ru->pid[i] <= 0 || ru->exited[i])
            continue;
        int st;
        if (waitpid(ru->pid[i], &st, WNOHANG) != ru->pid[i])
            continue;
        ru->exited[i] = true;
        ru->status[i] = st;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed = (int)i;
    }
    return failed;
}

static void kill_all(run *ru)
{
    for (uint32_t i = 0; i < ru->nprod + ru->ncons; i++)
        if (ru->pid[i] > 0 && !ru->exited[i]) {
            kill(ru->pid[i], SIGKILL);
            waitpid(ru->pid[i], &ru->status[i], 0);
            ru->exited[i] = true;
        }
}

static int child_failed(run *ru, int i)
{
    bool producer = (uint32_t)i < ru->nprod;
    uint32_t n = producer ? (uint32_t)i : (uint32_t)i - ru->nprod;
    int st = ru->status[i];
    const char *msg = ru->shm->slot[i].msg;
    kill_all(ru);
    if (WIFSIGNALED(st))
        return cli_error(ru->c, "%s %u killed by signal %d", producer ? "producer" : "consumer",
                         n, WTERMSIG(st));
    return cli_error(ru->c, "%s %u failed: %s", producer ? "producer" : "consumer", n,
                     msg[0] ? msg : "no reason given");
}

static uint64_t sum_slots(run *ru, uint32_t from, uint32_t n, bool timed)
{
    uint64_t s = 0;
    for (uint32_t i = from; i < from + n; i++)
        /* relaxed: statistics */
        s += atomic_load_explicit(timed ? &ru->shm->slot[i].timed : &ru->shm->slot[i].events,
                                  memory_order_relaxed);
    return s;
}

static void fmt_rate(double v, char *out, size_t cap)
{
    if (v >= 1e6)
        snprintf(out, cap, "%.2f M", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, cap, "%.1f k", v / 1e3);
    else
        snprintf(out, cap, "%.0f ", v);
}

/* One sample: a series point and, on a terminal, the progress line. */
static void sample(run *ru, uint64_t now, uint64_t *last_in, uint64_t *last_out,
                   uint64_t *last_t, size_t *cap)
{
    bench_result *r = ru->r;
    uint64_t in = sum_slots(ru, 0, ru->nprod, false);
    uint64_t out = sum_slots(ru, ru->nprod, ru->ncons, false);
    double dt = (double)(now - *last_t) / 1e9;
    if (dt <= 0)
        return;
    bench_point pt = { (double)(now - ru->shm->t_go) / 1e9, (double)(in - *last_in) / dt,
                       (double)(out - *last_out) / dt };
    *last_in = in;
    *last_out = out;
    *last_t = now;
    if (r->nseries == *cap) {
        size_t ncap = *cap ? 2 * *cap : 256;
        bench_point *p = realloc(r->series, ncap * sizeof(*p));
        if (p != NULL) {
            r->series = p;
            *cap = ncap;
        }
    }
    if (r->nseries < *cap)
        r->series[r->nseries++] = pt;
    if (!ru->cfg->progress)
        return;
    char a[32], b[32];
    fmt_rate(pt.in_eps, a, sizeof(a));
    fmt_rate(pt.out_eps, b, sizeof(b));
    fprintf(stderr, "\r%" PRIu64 " B  %5.1f s %s  in %sev/s %.1f MB/s  out %sev/s %.1f MB/s"
            "  published %" PRIu64 "  delivered %" PRIu64 "\033[K",
            r->value_bytes, pt.t_s, now < ru->shm->t_measure ? "warm-up" : "       ", a,
            pt.in_eps * (double)r->value_bytes / 1e6, b,
            pt.out_eps * (double)r->value_bytes / 1e6, in, out);
    fflush(stderr);
}

/* Whether the readers have everything the producers published. */
static bool drained(run *ru, uint64_t published)
{
    if (ru->ncons == 0)
        return true;
    if (ru->cfg->reader == BENCH_GROUP || ru->cfg->reader == BENCH_QUEUE)
        return sum_slots(ru, ru->nprod, ru->ncons, false) >= published;
    for (uint32_t j = 0; j < ru->ncons; j++) {
        bench_slot *s = &ru->shm->slot[ru->nprod + j];
        /* relaxed: statistics; a lossy subscriber is told what it lost
         * with the next event, so delivered alone can fall short */
        uint64_t got = atomic_load_explicit(&s->events, memory_order_relaxed);
        if (got < published && ru->cfg->reader != BENCH_SUBSCRIBER)
            return false;
        if (got == 0 && published > 0)
            return false;
    }
    return true;
}

/* Producers are done (or failed): let the readers catch up, stop them. */
static int drain(run *ru, uint64_t *last_in, uint64_t *last_out, uint64_t *last_t, size_t *cap)
{
    uint64_t published = sum_slots(ru, 0, ru->nprod, false);
    uint64_t end = now_ns() + DRAIN_NS, prev = UINT64_MAX;
    /* A lossy subscriber's count stops short of published: it is done
     * when its count stays put. */
    while (!drained(ru, published) || ru->cfg->reader == BENCH_SUBSCRIBER) {
        int f = reap(ru);
        if (f >= 0)
            return child_failed(ru, f);
        uint64_t got = sum_slots(ru, ru->nprod, ru->ncons, false);
        if (ru->cfg->reader == BENCH_SUBSCRIBER && got == prev && drained(ru, published))
            break;
        prev = got;
        uint64_t now = now_ns();
        if (now > end) {
            kill_all(ru);
            return cli_error(ru->c, "readers did not catch up within %llu s: %" PRIu64
                             " of %" PRIu64 " events delivered", DRAIN_NS / 1000000000ull,
                             got, published * ru->r->fanout);
        }
        if (now - *last_t >= SAMPLE_NS)
            sample(ru, now, last_in, last_out, last_t, cap);
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
    }
    /* relaxed: a request to leave; the counts come back through B1 */
    atomic_store_explicit(&ru->shm->stop, 1, memory_order_relaxed);
    uint64_t deadline = now_ns() + DRAIN_NS;
    for (;;) {
        int f = reap(ru);
        if (f >= 0)
            return child_failed(ru, f);
        bool all = true;
        for (uint32_t i = 0; i < ru->nprod + ru->ncons; i++)
            all = all && ru->exited[i];
        if (all)
            return 0;
        if (now_ns() > deadline) {
            kill_all(ru);
            return cli_error(ru->c, "readers did not stop");
        }
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
}

/* Run the started children to the end and gather what they measured. */
static int supervise(run *ru)
{
    const bench_cfg *cfg = ru->cfg;
    bench_shm *sh = ru->shm;
    uint64_t last_in = 0, last_out = 0, last_t = sh->t_go;
    size_t cap = 0;
    uint64_t halted_at = 0;
    for (;;) {
        int f = reap(ru);
        if (f >= 0)
            return child_failed(ru, f);
        bool producing = false;
        for (uint32_t i = 0; i < ru->nprod; i++)
            producing = producing || !ru->exited[i];
        if (!producing)
            break;
        if (cli_stop && !halted_at) {
            halted_at = now_ns();
            /* relaxed: a request to stop; the counts come back through B1 */
            atomic_store_explicit(&sh->halt, 1, memory_order_relaxed);
        }
        uint64_t now = now_ns();
        if (now >= last_t + SAMPLE_NS)
            sample(ru, now, &last_in, &last_out, &last_t, &cap);
        uint64_t next = last_t + SAMPLE_NS;
        now = now_ns();
        struct timespec ts = { 0, (long)(next > now ? (next - now < 20000000 ? next - now
                                                                              : 20000000)
                                                    : 1000000) };
        nanosleep(&ts, NULL);
    }
    int rc = drain(ru, &last_in, &last_out, &last_t, &cap);
    if (ru->cfg->progress)
        fprintf(stderr, "\r\033[K");
    if (rc != 0)
        return rc;
    bench_result *r = ru->r;
    r->interrupted = halted_at != 0;
    hist_init(&r->lat);
    uint64_t last_in_t = 0, last_out_t = 0;
    for (uint32_t i = 0; i < ru->nprod + ru->ncons; i++) {
        bench_slot *s = &sh->slot[i];
        /* B1: a child's final counts and histogram are read after DONE. */
        if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_DONE)
            return cli_error(ru->c, "a %s ended without its counts",
                             i < ru->nprod ? "producer" : "consumer");
        if (i < ru->nprod) {
            last_in_t = s->t_last > last_in_t ? s->t_last : last_in_t;
            continue;
        }
        last_out_t = s->t_last > last_out_t ? s->t_last : last_out_t;
        r->lost += s->lost;
        r->bad += s->bad;
        r->redelivered += s->redelivered;
        hist_merge(&r->lat, &ru->hists[i - ru->nprod]);
    }
    r->published = sum_slots(ru, 0, ru->nprod, false);
    r->delivered = sum_slots(ru, ru->nprod, ru->ncons, false);
    r->timed_in = sum_slots(ru, 0, ru->nprod, true);
    r->timed_out = sum_slots(ru, ru->nprod, ru->ncons, true);
    if (cfg->events) {
        r->window_in_s = last_in_t > sh->t_measure ? (double)(last_in_t - sh->t_measure) / 1e9 : 0;
        r->window_out_s = last_out_t > sh->t_measure ? (double)(last_out_t - sh->t_measure) / 1e9
                                                     : 0;
    } else {
        uint64_t end = halted_at && halted_at < sh->t_end ? halted_at : sh->t_end;
        r->window_in_s = r->window_out_s =
            end > sh->t_measure ? (double)(end - sh->t_measure) / 1e9 : 0;
    }
    return 0;
}

/* The CPUs this process may run on, for --pin. */
static void allowed_cpus(run *ru)
{
    cpu_set_t set;
    ru->ncpus = 0;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set))
            ru->cpus[ru->ncpus++] = i;
}

/* "producers on CPU 0, consumers on CPU 1" into R->cpus. */
static void describe_cpus(run *ru, const int *pcpu, const int *ccpu)
{
    char *o = ru->r->cpus;
    size_t cap = sizeof(ru->r->cpus);
    if (!ru->cfg->pin) {
        snprintf(o, cap, "not pinned (%d CPUs)", ru->ncpus);
        return;
    }
    size_t n = 0;
    const int *cpu[2] = { pcpu, ccpu };
    const uint32_t cnt[2] = { ru->nprod, ru->ncons };
    for (int side = 0; side < 2; side++) {
        n += (size_t)snprintf(o + n, n < cap ? cap - n : 0, "%s%s on CPU", side ? ", " : "",
                              side ? "consumers" : "producers");
        for (uint32_t i = 0; i < cnt[side] && n < cap; i++)
            n += (size_t)snprintf(o + n, cap - n, "%s%d", i ? "," : " ", cpu[side][i]);
        if (n >= cap)
            break;
    }
}

int bench_run(cli *c, const bench_cfg *cfg, uint64_t value_bytes, bench_result *r)
{
    run ru = { .c = c, .cfg = cfg, .r = r, .nprod = cfg->producers, .ncons = cfg->consumers };
    memset(r, 0, sizeof(*r));
    r->value_bytes = value_bytes;
    r->fanout = cfg->reader == BENCH_GROUP || cfg->reader == BENCH_QUEUE ? 1 : cfg->consumers;
    snprintf(r->topic, sizeof(r->topic), "bench-%ld-%" PRIu64, (long)getpid(), value_bytes);
    allowed_cpus(&ru);

    evb_topic_config tc = {
        .partitions = cfg->partitions,
        .ring_bytes = cfg->ring_bytes,
        /* The default (64 KiB, what a user's topic has) unless the values
         * need more; perf/bench_throughput's topics have the same. */
        .max_event_bytes = value_bytes > (64u << 10) ? (uint32_t)value_bytes : 0,
        .durability = cfg->durability,
    };
    int err = evb_topic_create(c->bus, r->topic, &tc);
    if (err < 0)
        return cli_fail(c, err, "creating topic %s", r->topic);
    int rc = CLI_FAIL;
    ru.shm = mmap(NULL, sizeof(bench_shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                  -1, 0);
    ru.hists_bytes = sizeof(hist) * cfg->consumers;
    ru.hists = mmap(NULL, ru.hists_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    if (ru.shm == MAP_FAILED || ru.hists == MAP_FAILED) {
        cli_fail(c, -errno, "mapping shared memory");
        goto out;
    }
    ru.shm->t_end = UINT64_MAX;

    unsigned char *pattern = calloc(1, value_bytes);
    if (pattern == NULL) {
        cli_fail(c, -ENOMEM, "allocating a value");
        goto out;
    }
    fill_pattern(pattern + BENCH_HEADER_BYTES, value_bytes - BENCH_HEADER_BYTES);
    uint64_t pattern_sum = sum64(pattern, value_bytes);
    free(pattern);

    bool crowded = ru.ncpus > 0 && cfg->producers + cfg->consumers > (uint32_t)ru.ncpus;
    int pcpu[BENCH_MAX_PROCS], ccpu[BENCH_MAX_PROCS];
    for (uint32_t i = 0; i < cfg->producers; i++)
        pcpu[i] = cfg->pin && ru.ncpus ? ru.cpus[i % (uint32_t)ru.ncpus] : -1;
    for (uint32_t j = 0; j < cfg->consumers; j++)
        ccpu[j] = cfg->pin && ru.ncpus ? ru.cpus[(cfg->producers + j) % (uint32_t)ru.ncpus] : -1;
    describe_cpus(&ru, pcpu, ccpu);

    child base = {
        .cfg = cfg, .bus_path = evb_bus_path(c->bus), .data_dir = evb_bus_data_dir(c->bus),
        .topic = r->topic, .size = value_bytes, .shm = ru.shm, .crowded = crowded,
        .pattern_sum = pattern_sum,
    };
    /* Readers first, so that none misses the first event. */
    for (uint32_t j = 0; j < cfg->consumers; j++) {
        child k = base;
        k.index = j;
        k.slot = &ru.shm->slot[cfg->producers + j];
        k.hist = &ru.hists[j];
        hist_init(k.hist);
        if (spawn(&ru, &k, ccpu[j], false) != 0)
            goto kill;
    }
    for (uint32_t i = 0; i < cfg->producers; i++) {
        child k = base;
        k.index = i;
        k.slot = &ru.shm->slot[i];
        if (spawn(&ru, &k, pcpu[i], true) != 0)
            goto kill;
    }
    uint64_t deadline = now_ns() + 30000000000ull;
    for (uint32_t i = 0; i < cfg->producers + cfg->consumers;) {
        int f = reap(&ru);
        if (f >= 0) {
            rc = child_failed(&ru, f);
            goto out;
        }
        /* relaxed: READY publishes nothing the parent reads */
        if (atomic_load_explicit(&ru.shm->slot[i].state, memory_order_relaxed) >= SLOT_READY) {
            i++;
            continue;
        }
        if (now_ns() > deadline || cli_stop) {
            cli_error(c, cli_stop ? "interrupted while starting" : "processes did not start "
                      "within 30 s");
            goto kill;
        }
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    bench_shm *sh = ru.shm;
    sh->t_go = now_ns() + 1000000;
    sh->t_measure = sh->t_go + (uint64_t)(cfg->warmup_s * 1e9);
    sh->t_end = cfg->events ? UINT64_MAX : sh->t_measure + (uint64_t)(cfg->duration_s * 1e9);
    /* B2: the times above before go. */
    atomic_store_explicit(&sh->go, 1, memory_order_release);
    rc = supervise(&ru);
    goto out;
kill:
    kill_all(&ru);
    rc = CLI_FAIL;
out:
    if (ru.shm != MAP_FAILED && ru.shm != NULL)
        munmap(ru.shm, sizeof(bench_shm));
    if (ru.hists != MAP_FAILED && ru.hists != NULL)
        munmap(ru.hists, ru.hists_bytes);
    if (!cfg->keep) {
        err = evb_topic_delete(c->bus, r->topic);
        if (err < 0 && rc == 0)
            rc = cli_fail(c, err, "deleting topic %s", r->topic);
    }
    return rc;
}
