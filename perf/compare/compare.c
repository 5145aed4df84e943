/*
 * compare.c - evbus side by side with the peers Debian packages (iceoryx,
 * ZeroMQ, nng) and the physical baselines (bare SPSC ring, memcpy, the
 * cache line), every system driven through xport.h by the same code:
 * the same processes pinned to the same two CPUs, the same values, the
 * same reader work (every byte summed and checked, order checked), runs
 * interleaved system by system (A B C A B C ...) so drift on a shared
 * machine hits all alike. One JSON line per system and run on stdout;
 * perf/compare/report.py takes medians and ratios and draws the plots.
 *
 * Tests (--test):
 *   throughput  1 -> 1, values of each --sizes, --duration-ms timed after
 *               --warm-ms; events/s on the reader between the first timed
 *               value and the end value; memcpy of the same sizes
 *   pingpong    A sends to B on one channel, B echoes on another, A times
 *               the round trip (--samples after --warmup); spinning readers;
 *               the cache line bounced between the two processes
 *   fanout      1 -> 1 and 1 -> --readers (3) at 64 B, all readers on the
 *               reader CPU, a reader with nothing to read yields the CPU
 *               (sched_yield) to its siblings; events/s per reader
 * Throughput and fan-out readers spin, except those of the socket peers,
 * which block (xp_ops.block_best: a spinning reader starves the library's
 * own I/O threads on its core).
 *   rate        the publisher sends at --rates events/s, each value carrying
 *               its intended send time, and never skips: a late value goes
 *               at once and its latency counts from when it was due
 *               (coordinated omission cannot hide a stall); reader 0 records
 *               now - intended for every timed value; spinning and blocking
 *               readers (--modes); at the lowest rate the publisher then
 *               idles a second and the reader's CPU time over it is taken
 *               with getrusage (all of its threads)
 */
#include "xport.h"

#include <getopt.h>
#include <sys/resource.h>

#include "../bench_util.h"

#define MAX_LIST 16
#define MAX_RUNS 64
#define MAX_READERS 8
#define F_SYNC (1ull << 56)
#define F_START (2ull << 56)
#define F_END (4ull << 56)
#define F_IDLE (8ull << 56)
#define SEQ_MASK ((1ull << 56) - 1)

typedef struct sys {
    const char *name;
    const xp_ops *ops; /* NULL: a baseline measured without a channel */
} sys;

static const sys all_systems[] = {
    {"evbus", &xp_evbus},
    {"evbus-claim", &xp_evbus_claim},
#ifdef HAVE_ICEORYX
    {"iceoryx", &xp_iceoryx},
#endif
#ifdef HAVE_ZMQ
    {"zmq", &xp_zmq},
#endif
#ifdef HAVE_NNG
    {"nng", &xp_nng},
#endif
    {"spsc-ring", &xp_ring},
    {"memcpy", NULL},
    {"cacheline", NULL},
};
#define NSYS (sizeof(all_systems) / sizeof(all_systems[0]))

typedef struct opts {
    const char *test;
    const sys *systems[NSYS];
    int nsys;
    size_t sizes[MAX_LIST];
    int nsizes;
    uint64_t rates[MAX_LIST];
    int nrates;
    int modes[2], nmodes; /* 0 spin, 1 block */
    int runs, cpu_a, cpu_b, readers;
    uint64_t duration_ms, warm_ms, samples, warmup, rate_ms, rate_min_samples, buf_bytes;
    const char *shm_dir;
    char bus_path[4096], sock_dir[4096];
} opts;

/* ---- shared control block ------------------------------------------ */

typedef struct rd_res {
    uint64_t t0, t1, timed, received, bad_seq, bad_sum, bad_len;
    uint64_t idle_cpu_ns, idle_wall_ns;
    int err;
    _Atomic int done; /* set (release) once the reader has its end value */
    char msg[256];
} rd_res;

typedef struct ctl {
    _Alignas(BENCH_CACHELINE) _Atomic uint32_t opened;
    _Alignas(BENCH_CACHELINE) _Atomic uint32_t joined;
    _Alignas(BENCH_CACHELINE) rd_res rd[MAX_READERS];
    int pub_err;
    char pub_msg[256];
    uint64_t pub_t_first, pub_t_last; /* rate: first intended and last actual send */
    uint64_t nlat;
    uint64_t nsent; /* rate: timed values sent (below nlat when it stopped behind) */
    uint64_t lat[]; /* rate: reader 0's latencies; pingpong: A's round trips */
} ctl;

/* What a reader checks, the same for every system. */
typedef struct rd_state {
    ctl *c;
    rd_res *r;
    size_t size;
    uint64_t pattern_sum, expect, start_seq, t_idle;
    int started, joined, done, record, yield;
    struct rusage ru_idle;
} rd_state;

static uint64_t cpu_ns(const struct rusage *ru)
{
    return (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000u +
           (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000u;
}

static int on_value(const void *v, size_t len, void *arg)
{
    rd_state *s = arg;
    uint64_t w0 = load64(v);
    if (w0 & F_SYNC) {
        if (!s->joined) {
            s->joined = 1;
            /* release: pairs with the publisher's acquire before it starts */
            atomic_fetch_add_explicit(&s->c->joined, 1, memory_order_release);
        }
        return 0;
    }
    if (len != s->size) {
        s->r->bad_len++;
        s->done = 1;
        return 1;
    }
    uint64_t now = now_ns();
    uint64_t w1 = len >= 16 ? load64((const char *)v + 8) : 0;
    if (sum64(v, len) != s->pattern_sum + w0 + w1)
        s->r->bad_sum++;
    uint64_t seq = w0 & SEQ_MASK;
    if (seq != s->expect)
        s->r->bad_seq++;
    s->expect = seq + 1;
    s->r->received++;
    if (w0 & F_START) {
        s->started = 1;
        s->start_seq = seq;
        s->r->t0 = now;
    }
    if (s->record && s->started && w1 && seq - s->start_seq < s->c->nlat)
        s->c->lat[seq - s->start_seq] = now > w1 ? now - w1 : 0;
    if (w0 & F_IDLE) {
        getrusage(RUSAGE_SELF, &s->ru_idle);
        s->t_idle = now_ns();
    }
    if (w0 & F_END) {
        s->r->t1 = now;
        s->r->timed = s->started ? seq - s->start_seq : 0;
        if (s->t_idle) {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            s->r->idle_cpu_ns = cpu_ns(&ru) - cpu_ns(&s->ru_idle);
            s->r->idle_wall_ns = now_ns() - s->t_idle;
        }
        s->done = 1;
        return 1;
    }
    return 0;
}

/* The pattern every value carries after its first two words, and its sum. */
static uint64_t make_value(unsigned char *buf, size_t size)
{
    memset(buf, 0, size);
    if (size > 16)
        fill_pattern(buf + 16, size - 16, 1);
    return size > 16 ? sum64(buf + 16, size - 16) : 0;
}

/* ---- processes ------------------------------------------------------ */

typedef struct job {
    const opts *o;
    const xp_ops *ops;
    xp_cfg cf;
    ctl *c;
    int mode;          /* 0 spin, 1 block */
    uint64_t rate;     /* rate test: events/s; 0: as fast as possible */
    uint64_t idle_ms;  /* rate test: idle time before the end value */
} job;

static int reader_main(job *j, int idx)
{
    rd_res *r = &j->c->rd[idx];
    char name[64];
    snprintf(name, sizeof(name), "cmp-r%d-%d", idx, (int)getpid());
    if (j->ops->proc_init && j->ops->proc_init(name, r->msg))
        return 1;
    void *h = NULL;
    int rc = j->ops->sub_open(&h, &j->cf, idx, r->msg);
    if (rc < 0)
        return 1;
    unsigned char *tmp = malloc(j->cf.size);
    rd_state s = {.c = j->c, .r = r, .size = j->cf.size, .record = idx == 0,
                  .yield = j->cf.readers > 1};
    s.pattern_sum = make_value(tmp, j->cf.size);
    free(tmp);
    atomic_fetch_add_explicit(&j->c->opened, 1, memory_order_release);
    int32_t tmo = j->mode ? 100 : 0;
    while (!s.done) {
        rc = j->ops->recv(h, on_value, &s, tmo);
        if (rc < 0) {
            snprintf(r->msg, 256, "recv: %s", strerror(-rc));
            r->err = 1;
            break;
        }
        if (rc == 0 && !j->mode) {
            if (s.yield)
                sched_yield();
            else
                cpu_relax();
        }
    }
    /* release: the results above are written before the publisher may go */
    atomic_store_explicit(&r->done, s.done, memory_order_release);
    j->ops->sub_close(h);
    return r->err || r->bad_seq || r->bad_sum || r->bad_len;
}

static void spin_until(uint64_t t)
{
    while (now_ns() < t)
        cpu_relax();
}

static int send_sync(job *j, void *h)
{
    unsigned char *buf = calloc(1, j->cf.size < 16 ? 16 : j->cf.size);
    store64(buf, F_SYNC);
    uint64_t end = now_ns() + 20000000000ull;
    int rc = 0;
    /* acquire: the readers' joins are seen before we start */
    while (atomic_load_explicit(&j->c->joined, memory_order_acquire) < (uint32_t)j->cf.readers) {
        if (now_ns() > end) {
            snprintf(j->c->pub_msg, 256, "readers never attached");
            rc = -ETIMEDOUT;
            break;
        }
        if ((rc = j->ops->send(h, buf, j->cf.size)) < 0) {
            snprintf(j->c->pub_msg, 256, "send(sync): %s", strerror(-rc));
            break;
        }
        sleep_ns(1000000);
    }
    free(buf);
    return rc;
}

static int pub_main(job *j)
{
    char name[64];
    snprintf(name, sizeof(name), "cmp-p-%d", (int)getpid());
    if (j->ops->proc_init && j->ops->proc_init(name, j->c->pub_msg))
        return 1;
    void *h = NULL;
    if (j->ops->pub_open(&h, &j->cf, j->c->pub_msg) < 0)
        return 1;
    if (send_sync(j, h) < 0)
        return 1;
    size_t size = j->cf.size;
    unsigned char *buf = aligned_alloc(64, (size + 63) / 64 * 64);
    make_value(buf, size);
    const opts *o = j->o;
    int rc = 0;
    uint64_t seq = 0;
    if (!j->rate) {
        uint64_t t = now_ns(), t_start = t + o->warm_ms * 1000000u;
        uint64_t t_end = t_start + o->duration_ms * 1000000u;
        int started = 0;
        for (;;) {
            for (int k = 0; k < 64 && rc >= 0; k++) {
                uint64_t f = 0;
                if (!started && t >= t_start)
                    f = F_START, started = 1;
                store64(buf, seq++ | f);
                rc = j->ops->send(h, buf, size);
            }
            if (rc < 0)
                break;
            t = now_ns();
            if (t >= t_end && started)
                break;
        }
    } else {
        uint64_t period = 1000000000u / j->rate;
        uint64_t warm = j->rate / 10; /* a tenth of a second untimed */
        uint64_t n = warm + j->c->nlat;
        uint64_t t0 = now_ns() + 1000000;
        j->c->pub_t_first = t0 + warm * period;
        /* a system that cannot keep the rate would keep us for minutes:
         * stop at twice the planned time plus a second, and measure what
         * was sent (the latencies of a backlog that keeps growing) */
        uint64_t t_stop = t0 + 2 * n * period + 1000000000u;
        uint64_t i = 0;
        for (; i < n && rc >= 0; i++) {
            uint64_t due = t0 + i * period;
            spin_until(due);
            store64(buf, seq++ | (i == warm ? F_START : 0));
            if (size >= 16)
                store64(buf + 8, i >= warm ? due : 0);
            rc = j->ops->send(h, buf, size);
            if ((i & 255) == 255 && now_ns() > t_stop) {
                i++;
                break;
            }
        }
        j->c->nsent = i > warm ? i - warm : 0;
        j->c->pub_t_last = now_ns();
        if (size >= 16)
            store64(buf + 8, 0);
        if (rc >= 0 && j->idle_ms) {
            store64(buf, seq++ | F_IDLE);
            rc = j->ops->send(h, buf, size);
            sleep_ns(j->idle_ms * 1000000u);
        }
    }
    if (rc >= 0) {
        store64(buf, seq++ | F_END);
        rc = j->ops->send(h, buf, size);
    }
    if (rc < 0)
        snprintf(j->c->pub_msg, 256, "send: %s", strerror(-rc));
    /* nng drops what is queued when its socket closes: keep the publisher
     * open until every reader has its end value */
    uint64_t wait_end = now_ns() + 30000000000ull;
    for (int i = 0; rc >= 0 && i < j->cf.readers; i++)
        while (!atomic_load_explicit(&j->c->rd[i].done, memory_order_acquire) && !j->c->rd[i].err &&
               now_ns() < wait_end)
            sleep_ns(1000000);
    free(buf);
    j->ops->pub_close(h);
    return rc < 0;
}

/* Fork the readers, then the publisher; wait for all. 0 or -1 (why in WHY). */
static int run_job(job *j, char *why)
{
    char msg[256] = "";
    if (j->ops->chan_create(&j->cf, msg) < 0) {
        snprintf(why, 600, "chan_create: %s", msg);
        return -1;
    }
    fflush(NULL);
    pid_t rp[MAX_READERS], pp = -1;
    int n = 0;
    for (; n < j->cf.readers; n++) {
        rp[n] = fork();
        if (rp[n] == 0)
            _exit(pin_to_cpu(j->o->cpu_b) ? 1 : reader_main(j, n));
    }
    uint64_t deadline = now_ns() + 60000000000ull;
    int ok = 1;
    /* acquire: a reader's open is done before the publisher appears */
    while (atomic_load_explicit(&j->c->opened, memory_order_acquire) < (uint32_t)n) {
        if (now_ns() > deadline - 50000000000ull) {
            ok = 0;
            break;
        }
        sleep_ns(1000000);
    }
    if (ok) {
        pp = fork();
        if (pp == 0)
            _exit(pin_to_cpu(j->o->cpu_a) ? 1 : pub_main(j));
    }
    int ps = pp > 0 ? wait_child(pp, deadline) : -9;
    if (ps != 0)
        for (int i = 0; i < n; i++)
            kill(rp[i], SIGKILL);
    int bad = ps != 0;
    int len = snprintf(why, 600, "publisher %d %s", ps, j->c->pub_msg);
    for (int i = 0; i < n; i++) {
        int rs = wait_child(rp[i], deadline);
        rd_res *r = &j->c->rd[i];
        if (rs != 0 || !atomic_load_explicit(&r->done, memory_order_acquire)) {
            bad = 1;
            len += snprintf(why + len, 600 - (size_t)(len < 600 ? len : 600),
                            "; reader %d status %d %s seq %llu sum %llu len %llu", i, rs, r->msg,
                            (unsigned long long)r->bad_seq, (unsigned long long)r->bad_sum,
                            (unsigned long long)r->bad_len);
        }
    }
    j->ops->chan_destroy(&j->cf);
    return bad ? -1 : 0;
}

static ctl *ctl_new(uint64_t nlat)
{
    ctl *c = shared_alloc(sizeof(ctl) + nlat * sizeof(uint64_t));
    c->nlat = nlat;
    return c;
}

static void ctl_free(ctl *c)
{
    munmap(c, sizeof(ctl) + c->nlat * sizeof(uint64_t));
}

static void job_init(job *j, const opts *o, const sys *s, size_t size, int readers, int run,
                     const char *tag)
{
    memset(j, 0, sizeof(*j));
    j->o = o;
    j->ops = s->ops;
    j->cf.size = size;
    j->cf.buf_bytes = o->buf_bytes;
    j->cf.readers = readers;
    j->cf.bus_path = o->bus_path;
    j->cf.dir = o->sock_dir;
    snprintf(j->cf.name, sizeof(j->cf.name), "c%d-%s-%zu-%d-%d", (int)getpid(), tag, size,
             readers, run);
}

/* ---- output --------------------------------------------------------- */

static void emit_head(const char *test, const char *system, int run, double probe)
{
    printf("{\"test\":\"%s\",\"system\":\"%s\",\"run\":%d,\"probe_ns\":%.0f", test, system,
           run, probe);
}

static void emit_fail(const char *test, const char *system, int run, const char *why)
{
    printf("{\"test\":\"%s\",\"system\":\"%s\",\"run\":%d,\"failed\":\"", test, system, run);
    for (const char *p = why; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 32)
            putchar(*p);
    printf("\"}\n");
    fprintf(stderr, "  FAIL %s %s run %d: %s\n", test, system, run, why);
}

static const double pcts[] = {50, 90, 99, 99.9, 99.99, 100};
#define NPCT (sizeof(pcts) / sizeof(pcts[0]))

static void emit_pcts(uint64_t *v, uint64_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    printf(",\"n\":%llu,\"pct\":{", (unsigned long long)n);
    for (size_t i = 0; i < NPCT; i++) {
        uint64_t k = (uint64_t)((double)n * pcts[i] / 100.0);
        if (k >= n)
            k = n - 1;
        printf("%s\"%g\":%llu", i ? "," : "", pcts[i], (unsigned long long)v[k]);
    }
    printf("}");
}

/* ---- tests ---------------------------------------------------------- */

static void test_throughput(const opts *o)
{
    for (int si = 0; si < o->nsizes; si++) {
        size_t size = o->sizes[si];
        for (int run = 1; run <= o->runs; run++) {
            double probe = cacheline_probe_ns(o->cpu_a, o->cpu_b, 20000);
            for (int k = 0; k < o->nsys; k++) {
                const sys *s = o->systems[k];
                if (!strcmp(s->name, "cacheline"))
                    continue;
                if (!s->ops) {
                    pin_to_cpu(o->cpu_a);
                    double bps = memcpy_bps(size, o->buf_bytes, o->duration_ms / 2);
                    emit_head("throughput", s->name, run, probe);
                    printf(",\"size\":%zu,\"events_per_s\":%.6g}\n", size, bps / (double)size);
                    fprintf(stderr, "  throughput %6zu B run %d %-12s %10.3f Mev/s\n", size, run,
                            s->name, bps / (double)size / 1e6);
                    continue;
                }
                job j;
                job_init(&j, o, s, size, 1, run, "t");
                j.mode = j.cf.blocking = s->ops->block_best;
                j.c = ctl_new(0);
                char why[600];
                if (run_job(&j, why) < 0) {
                    emit_fail("throughput", s->name, run, why);
                } else {
                    rd_res *r = &j.c->rd[0];
                    double ev = (double)r->timed / ((double)(r->t1 - r->t0) / 1e9);
                    emit_head("throughput", s->name, run, probe);
                    printf(",\"size\":%zu,\"events_per_s\":%.6g,\"events\":%llu}\n", size, ev,
                           (unsigned long long)r->timed);
                    fprintf(stderr, "  throughput %6zu B run %d %-12s %10.3f Mev/s\n", size, run,
                            s->name, ev / 1e6);
                }
                ctl_free(j.c);
            }
            fflush(stdout);
        }
    }
}

static void test_fanout(const opts *o)
{
    int counts[2] = {1, o->readers};
    for (int run = 1; run <= o->runs; run++) {
        double probe = cacheline_probe_ns(o->cpu_a, o->cpu_b, 20000);
        for (int k = 0; k < o->nsys; k++) {
            const sys *s = o->systems[k];
            if (!s->ops || !s->ops->can_fanout)
                continue;
            for (int ci = 0; ci < 2; ci++) {
                job j;
                job_init(&j, o, s, 64, counts[ci], run, "f");
                j.mode = j.cf.blocking = s->ops->block_best;
                j.c = ctl_new(0);
                char why[600];
                if (run_job(&j, why) < 0) {
                    emit_fail("fanout", s->name, run, why);
                } else {
                    double mn = 0, sum = 0;
                    for (int i = 0; i < counts[ci]; i++) {
                        rd_res *r = &j.c->rd[i];
                        double ev = (double)r->timed / ((double)(r->t1 - r->t0) / 1e9);
                        mn = i == 0 || ev < mn ? ev : mn;
                        sum += ev;
                    }
                    emit_head("fanout", s->name, run, probe);
                    printf(",\"size\":64,\"readers\":%d,\"per_reader_min\":%.6g,"
                           "\"per_reader_mean\":%.6g}\n", counts[ci], mn, sum / counts[ci]);
                    fprintf(stderr, "  fanout 1->%d run %d %-12s %10.3f Mev/s per reader (min)\n",
                            counts[ci], run, s->name, mn / 1e6);
                }
                ctl_free(j.c);
            }
            fflush(stdout);
        }
    }
}

static void test_rate(const opts *o)
{
    uint64_t lowest = o->rates[0];
    for (int i = 1; i < o->nrates; i++)
        lowest = o->rates[i] < lowest ? o->rates[i] : lowest;
    for (int ri = 0; ri < o->nrates; ri++) {
        uint64_t rate = o->rates[ri];
        uint64_t n = rate * o->rate_ms / 1000;
        if (n < o->rate_min_samples)
            n = o->rate_min_samples;
        for (int run = 1; run <= o->runs; run++) {
            double probe = cacheline_probe_ns(o->cpu_a, o->cpu_b, 20000);
            for (int mi = 0; mi < o->nmodes; mi++) {
                int mode = o->modes[mi];
                for (int k = 0; k < o->nsys; k++) {
                    const sys *s = o->systems[k];
                    if (!s->ops || (mode && !s->ops->can_block))
                        continue;
                    job j;
                    job_init(&j, o, s, 64, 1, run, "r");
                    j.mode = mode;
                    j.cf.blocking = mode;
                    j.rate = rate;
                    j.idle_ms = rate == lowest ? 1000 : 0;
                    j.c = ctl_new(n);
                    char why[600];
                    const char *mname = mode ? "block" : "spin";
                    int jr = run_job(&j, why);
                    if (jr == 0 && j.c->nsent == 0) {
                        snprintf(why, sizeof(why), "not one timed value sent within twice "
                                 "the planned time");
                        jr = -1;
                    }
                    if (jr < 0) {
                        emit_fail("rate", s->name, run, why);
                    } else {
                        rd_res *r = &j.c->rd[0];
                        uint64_t m = j.c->nsent < n ? j.c->nsent : n;
                        double sent_rate = (double)m /
                            ((double)(j.c->pub_t_last - j.c->pub_t_first) / 1e9);
                        emit_head("rate", s->name, run, probe);
                        printf(",\"size\":64,\"mode\":\"%s\",\"rate\":%llu,\"achieved\":%.6g",
                               mname, (unsigned long long)rate, sent_rate);
                        if (r->idle_wall_ns)
                            printf(",\"idle_cpu_pct\":%.3f",
                                   100.0 * (double)r->idle_cpu_ns / (double)r->idle_wall_ns);
                        if (m < n)
                            printf(",\"stopped_behind\":1");
                        emit_pcts(j.c->lat, m ? m : 1);
                        printf("}\n");
                        fprintf(stderr, "  rate %7llu/s %-5s run %d %-12s p50 %llu p99 %llu "
                                "p99.9 %llu ns%s\n", (unsigned long long)rate, mname, run,
                                s->name, (unsigned long long)j.c->lat[m / 2],
                                (unsigned long long)j.c->lat[m * 99 / 100],
                                (unsigned long long)j.c->lat[m * 999 / 1000],
                                r->idle_wall_ns ? " (idle measured)" : "");
                    }
                    ctl_free(j.c);
                    fflush(stdout);
                }
            }
        }
    }
}

/* ---- round trip ----------------------------------------------------- */

typedef struct echo {
    const xp_ops *ops;
    void *pub;
    uint64_t want;
    int got, done, synced;
} echo;

/* B: send every value back as it is (sync values too: they tell A that
 * both directions are attached). */
static int on_ping(const void *v, size_t len, void *arg)
{
    echo *e = arg;
    if (load64(v) & F_END) {
        e->done = 1;
        return 1;
    }
    if (e->ops->send(e->pub, v, len) < 0)
        e->done = -1;
    return 0;
}

/* A: the awaited round trip's value, or a sync echo. */
static int on_pong(const void *v, size_t len, void *arg)
{
    (void)len;
    echo *e = arg;
    uint64_t w0 = load64(v);
    if (w0 & F_SYNC) {
        e->synced = 1;
        return 0;
    }
    if (w0 == e->want)
        e->got = 1;
    return e->got;
}

static int pp_b(job *j, job *back)
{
    rd_res *r = &j->c->rd[0];
    char name[64];
    snprintf(name, sizeof(name), "cmp-b-%d", (int)getpid());
    if (j->ops->proc_init && j->ops->proc_init(name, r->msg))
        return 1;
    void *sub = NULL, *pub = NULL;
    if (j->ops->sub_open(&sub, &j->cf, 0, r->msg) < 0 ||
        j->ops->pub_open(&pub, &back->cf, r->msg) < 0)
        return 1;
    atomic_fetch_add_explicit(&j->c->opened, 1, memory_order_release);
    echo e = {.ops = j->ops, .pub = pub};
    int32_t tmo = j->mode ? 100 : 0;
    while (!e.done) {
        int rc = j->ops->recv(sub, on_ping, &e, tmo);
        if (rc < 0 || e.done < 0) {
            snprintf(r->msg, 256, "recv/echo failed");
            return 1;
        }
    }
    atomic_store_explicit(&r->done, 1, memory_order_release);
    j->ops->pub_close(pub);
    j->ops->sub_close(sub);
    return 0;
}

static int pp_a(job *j, job *back)
{
    char name[64];
    snprintf(name, sizeof(name), "cmp-a-%d", (int)getpid());
    if (j->ops->proc_init && j->ops->proc_init(name, j->c->pub_msg))
        return 1;
    void *sub = NULL, *pub = NULL;
    if (j->ops->sub_open(&sub, &back->cf, 0, j->c->pub_msg) < 0 ||
        j->ops->pub_open(&pub, &j->cf, j->c->pub_msg) < 0)
        return 1;
    size_t size = j->cf.size;
    unsigned char *buf = aligned_alloc(64, (size + 63) / 64 * 64);
    make_value(buf, size);
    echo e = {.ops = j->ops};
    uint64_t end = now_ns() + 20000000000ull;
    store64(buf, F_SYNC);
    while (!e.synced) {
        if (now_ns() > end || j->ops->send(pub, buf, size) < 0) {
            snprintf(j->c->pub_msg, 256, "no sync echo");
            return 1;
        }
        uint64_t t = now_ns() + 1000000;
        while (!e.synced && now_ns() < t)
            if (j->ops->recv(sub, on_pong, &e, 0) < 0)
                return 1;
    }
    uint64_t total = j->o->warmup + j->o->samples;
    for (uint64_t i = 1; i <= total; i++) {
        store64(buf, i);
        e.want = i;
        e.got = 0;
        uint64_t t0 = now_ns();
        if (j->ops->send(pub, buf, size) < 0)
            return 1;
        while (!e.got)
            if (j->ops->recv(sub, on_pong, &e, j->mode ? 100 : 0) < 0)
                return 1;
        uint64_t t1 = now_ns();
        if (i > j->o->warmup)
            j->c->lat[i - j->o->warmup - 1] = t1 - t0;
    }
    store64(buf, F_END);
    j->ops->send(pub, buf, size);
    j->ops->pub_close(pub);
    j->ops->sub_close(sub);
    return 0;
}

static int run_pingpong(job *j, job *back, char *why)
{
    char msg[256] = "";
    if (j->ops->chan_create(&j->cf, msg) < 0 || j->ops->chan_create(&back->cf, msg) < 0) {
        snprintf(why, 600, "chan_create: %s", msg);
        return -1;
    }
    fflush(NULL);
    pid_t b = fork();
    if (b == 0)
        _exit(pin_to_cpu(j->o->cpu_b) ? 1 : pp_b(j, back));
    uint64_t deadline = now_ns() + 120000000000ull;
    pid_t a = -1;
    while (atomic_load_explicit(&j->c->opened, memory_order_acquire) < 1 &&
           now_ns() < deadline - 100000000000ull)
        sleep_ns(1000000);
    if (atomic_load_explicit(&j->c->opened, memory_order_acquire) >= 1) {
        a = fork();
        if (a == 0)
            _exit(pin_to_cpu(j->o->cpu_a) ? 1 : pp_a(j, back));
    }
    int as = a > 0 ? wait_child(a, deadline) : -9;
    if (as != 0)
        kill(b, SIGKILL);
    int bs = wait_child(b, deadline);
    snprintf(why, 600, "A %d %s; B %d %s", as, j->c->pub_msg, bs, j->c->rd[0].msg);
    j->ops->chan_destroy(&j->cf);
    j->ops->chan_destroy(&back->cf);
    return as == 0 && bs == 0 ? 0 : -1;
}

static void test_pingpong(const opts *o)
{
    for (int run = 1; run <= o->runs; run++) {
        double probe = cacheline_probe_ns(o->cpu_a, o->cpu_b, 20000);
        for (int mi = 0; mi < o->nmodes; mi++) {
            int mode = o->modes[mi];
            const char *mname = mode ? "block" : "spin";
            for (int k = 0; k < o->nsys; k++) {
                const sys *s = o->systems[k];
                if (!strcmp(s->name, "memcpy") || (mode && (!s->ops || !s->ops->can_block)))
                    continue;
                ctl *c = ctl_new(o->samples);
                char why[600] = "";
                int ok;
                if (!s->ops) {
                    ok = cacheline_rtts(o->cpu_a, o->cpu_b, (uint32_t)o->samples, c->lat) == 0;
                    snprintf(why, sizeof(why), "cache-line ping-pong failed");
                } else {
                    job j, back;
                    job_init(&j, o, s, 64, 1, run, "ping");
                    job_init(&back, o, s, 64, 1, run, "pong");
                    j.c = back.c = c;
                    j.mode = back.mode = mode;
                    j.cf.blocking = back.cf.blocking = mode;
                    ok = run_pingpong(&j, &back, why) == 0;
                }
                if (!ok) {
                    emit_fail("pingpong", s->name, run, why);
                } else {
                    emit_head("pingpong", s->name, run, probe);
                    printf(",\"size\":64,\"mode\":\"%s\"", mname);
                    emit_pcts(c->lat, o->samples);
                    printf("}\n");
                    fprintf(stderr, "  pingpong %-5s run %d %-12s p50 %llu p99 %llu p99.9 %llu ns\n",
                            mname, run, s->name, (unsigned long long)c->lat[o->samples / 2],
                            (unsigned long long)c->lat[o->samples * 99 / 100],
                            (unsigned long long)c->lat[o->samples * 999 / 1000]);
                }
                ctl_free(c);
                fflush(stdout);
            }
        }
    }
}

/* ---- main ----------------------------------------------------------- */

static int parse_list(const char *s, uint64_t *out, int cap)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", s);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint64_t v = parse_size(t);
        if (!v || n == cap)
            return -1;
        out[n++] = v;
    }
    return n;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: evb_compare --test throughput|pingpong|fanout|rate [options]\n"
        "  --systems LIST    of:");
    for (size_t i = 0; i < NSYS; i++)
        fprintf(f, " %s", all_systems[i].name);
    fprintf(f, " (default: all built)\n"
        "  --sizes LIST      throughput value sizes (default 8,64,256,1K,4K,64K)\n"
        "  --runs N          rounds, each system once per round (default 5)\n"
        "  --cpu-a N --cpu-b N  publisher's and readers' CPUs (default 0, 1)\n"
        "  --duration-ms MS  timed part of a throughput run (default 500)\n"
        "  --warm-ms MS      untimed start of a throughput run (default 200)\n"
        "  --samples N --warmup N  round trips (default 100000, 10000)\n"
        "  --readers N       fan-out readers (default 3)\n"
        "  --rates LIST      events/s (default 10K,100K,1M; K = 1000 here)\n"
        "  --rate-ms MS      timed length at each rate (default 1000, at least\n"
        "                    --rate-min-samples values, default 20000)\n"
        "  --modes LIST      spin,block (default both)\n"
        "  --buf-bytes SIZE  each system's buffering (default 8M; see README)\n"
        "  --shm-dir DIR     where evbus's bus and the sockets go (default /dev/shm)\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    opts o = {.test = NULL, .runs = 5, .cpu_a = 0, .cpu_b = 1, .readers = 3,
              .duration_ms = 500, .warm_ms = 200, .samples = 100000, .warmup = 10000,
              .rate_ms = 1000, .rate_min_samples = 20000, .buf_bytes = 8u << 20,
              .shm_dir = "/dev/shm"};
    const char *systems = NULL, *sizes = "8,64,256,1K,4K,64K", *rates = NULL,
               *modes = "spin,block";
    static const struct option lo[] = {
        {"test", 1, 0, 't'}, {"systems", 1, 0, 'S'}, {"sizes", 1, 0, 's'},
        {"runs", 1, 0, 'r'}, {"cpu-a", 1, 0, 'a'}, {"cpu-b", 1, 0, 'b'},
        {"duration-ms", 1, 0, 'd'}, {"warm-ms", 1, 0, 'w'}, {"samples", 1, 0, 'n'},
        {"warmup", 1, 0, 'W'}, {"readers", 1, 0, 'R'}, {"rates", 1, 0, 'q'},
        {"rate-ms", 1, 0, 'm'}, {"rate-min-samples", 1, 0, 'M'}, {"modes", 1, 0, 'o'},
        {"buf-bytes", 1, 0, 'B'}, {"shm-dir", 1, 0, 'D'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 't': o.test = optarg; break;
        case 'S': systems = optarg; break;
        case 's': sizes = optarg; break;
        case 'r': o.runs = atoi(optarg); break;
        case 'a': o.cpu_a = atoi(optarg); break;
        case 'b': o.cpu_b = atoi(optarg); break;
        case 'd': o.duration_ms = strtoull(optarg, NULL, 0); break;
        case 'w': o.warm_ms = strtoull(optarg, NULL, 0); break;
        case 'n': o.samples = parse_size(optarg); break;
        case 'W': o.warmup = strtoull(optarg, NULL, 0); break;
        case 'R': o.readers = atoi(optarg); break;
        case 'q': rates = optarg; break;
        case 'm': o.rate_ms = strtoull(optarg, NULL, 0); break;
        case 'M': o.rate_min_samples = strtoull(optarg, NULL, 0); break;
        case 'o': modes = optarg; break;
        case 'B': o.buf_bytes = parse_size(optarg); break;
        case 'D': o.shm_dir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.test || o.runs < 1 || o.readers < 1 || o.readers > MAX_READERS || o.samples < 1000 ||
        o.buf_bytes < (64u << 10) || (o.buf_bytes & (o.buf_bytes - 1))) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < NSYS; i++) {
        int want = !systems;
        if (systems) {
            char buf[512];
            snprintf(buf, sizeof(buf), "%s", systems);
            for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv))
                want |= !strcmp(t, all_systems[i].name);
        }
        if (want)
            o.systems[o.nsys++] = &all_systems[i];
    }
    if (systems) { /* a named system that was not built is an error, not a silent gap */
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", systems);
        for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
            int found = 0;
            for (size_t i = 0; i < NSYS; i++)
                found |= !strcmp(t, all_systems[i].name);
            if (!found) {
                fprintf(stderr, "evb_compare: system %s is not built in\n", t);
                return 77;
            }
        }
    }
    uint64_t tmp[MAX_LIST];
    int n = parse_list(sizes, tmp, MAX_LIST);
    for (int i = 0; i < n; i++)
        o.sizes[o.nsizes++] = (size_t)tmp[i];
    if (n < 1 || o.nsizes < 1) {
        fprintf(stderr, "bad --sizes\n");
        return 2;
    }
    for (int i = 0; i < o.nsizes; i++)
        if (o.sizes[i] % 8 || o.buf_bytes / o.sizes[i] < 16) {
            fprintf(stderr, "size %zu: a multiple of 8 and at most --buf-bytes/16\n", o.sizes[i]);
            return 2;
        }
    if (rates) {
        /* K and M are powers of ten for rates */
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", rates);
        for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t && o.nrates < MAX_LIST;
             t = strtok_r(NULL, ",", &sv)) {
            char *e;
            double v = strtod(t, &e);
            if (*e == 'k' || *e == 'K')
                v *= 1e3;
            else if (*e == 'm' || *e == 'M')
                v *= 1e6;
            if (v < 1 || v > 1e8) {
                fprintf(stderr, "bad --rates\n");
                return 2;
            }
            o.rates[o.nrates++] = (uint64_t)v;
        }
    } else {
        o.rates[0] = 10000, o.rates[1] = 100000, o.rates[2] = 1000000, o.nrates = 3;
    }
    if (strstr(modes, "spin"))
        o.modes[o.nmodes++] = 0;
    if (strstr(modes, "block"))
        o.modes[o.nmodes++] = 1;

    char model[256];
    cpu_model(model, sizeof(model));
    fprintf(stderr, "# evb_compare %s: evbus %s, %ld CPUs, %s; cpus %d,%d: %s\n", o.test,
            evb_version(), sysconf(_SC_NPROCESSORS_ONLN), model, o.cpu_a, o.cpu_b,
            topology_name(o.cpu_a, o.cpu_b));
    printf("{\"header\":1,\"test\":\"%s\",\"evbus\":\"%s\",\"cpu\":\"%s\",\"cpus\":\"%d,%d\","
           "\"topology\":\"%s\",\"buf_bytes\":%llu,\"timer_ns\":%.1f,\"systems\":{",
           o.test, evb_version(), model, o.cpu_a, o.cpu_b, topology_name(o.cpu_a, o.cpu_b),
           (unsigned long long)o.buf_bytes, timer_overhead_ns());
    for (int i = 0; i < o.nsys; i++)
        printf("%s\"%s\":\"%s\"", i ? "," : "", o.systems[i]->name,
               o.systems[i]->ops ? o.systems[i]->ops->how : "baseline");
    printf("}}\n");

    if (bench_bus_dir(o.bus_path, sizeof(o.bus_path), o.shm_dir))
        return 1;
    snprintf(o.sock_dir, sizeof(o.sock_dir), "%s/evbcmp-sock-XXXXXX", o.shm_dir);
    if (!mkdtemp(o.sock_dir)) {
        perror("mkdtemp");
        rm_rf(o.bus_path);
        return 1;
    }
    int rc = 0;
    if (!strcmp(o.test, "throughput"))
        test_throughput(&o);
    else if (!strcmp(o.test, "pingpong"))
        test_pingpong(&o);
    else if (!strcmp(o.test, "fanout"))
        test_fanout(&o);
    else if (!strcmp(o.test, "rate"))
        test_rate(&o);
    else
        rc = 2;
    rm_rf(o.bus_path);
    rm_rf(o.sock_dir);
    if (rc == 2)
        usage(stderr);
    return rc;
}
