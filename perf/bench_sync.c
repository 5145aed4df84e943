/*
 * bench_sync.c - SYNC durable topics: latency of each synchronous publish
 * and total rate, with 1..N producer processes (--threads: N threads of
 * one process, which then also holds the partition's flush lock).
 *
 * Each producer process publishes --size values to a 1-partition
 * EVB_DURABILITY_SYNC topic with evb_publish(EVB_MSG_SYNC) in a loop (or
 * evb_publish + evb_producer_sync with --api sync) and times every call
 * with clock_gettime(CLOCK_MONOTONIC). All start together; --warmup-ms
 * later a window of --duration-ms opens: calls that start in it are kept
 * (every sample, no reservoir), events/s = calls completed in it / its
 * length. Percentiles over all samples of all producers of the run.
 *
 * --pipeline K (issue 13's pipelined acknowledgements): each producer
 * publishes with evb_publish_receipt and keeps up to K receipts
 * outstanding; after every publish it reads the durable position
 * (evb_producer_durable_position) and retires the receipts at or below
 * it, and with K outstanding it waits for the oldest
 * (evb_producer_wait_durable). A sample is publish-to-durable: from just
 * before the publish call to the moment the producer learned the event
 * was durable; events/s counts acknowledgements made inside the window.
 * Events published in the window and acknowledged after it still give
 * their sample (a drain after the window), so slow ones are not dropped.
 *
 * --rate EV/S (with --pipeline): open loop. Each producer's events are
 * due on a fixed schedule (rate / producers each, from the start of the
 * warm-up), published when due (at once when late), and a sample runs
 * from the due time, not the publish call, so a stall (K outstanding, a
 * slow fdatasync) shows in the latency of every event behind it, not as
 * a missing sample (coordinated omission). Between due times the producer
 * polls the durable position every 20 us times the producers of the run
 * (so all of them wake some 50 k times a second): an acknowledgement is
 * seen that much late at most, and a sample is that much long. The table says what rate was
 * sent, so a disk that cannot keep up is visible.
 *
 * With --pipeline --rate, a second baseline in each round: the same
 * arrivals through a bare group commit (gc_baseline: write what has
 * arrived, fdatasync, again), what this disk gives a pipelined log.
 *
 * Baseline in the same run, before each round: the latency of one
 * fdatasync on a pre-zeroed file after a --size pwrite (sequential
 * offsets), --fsync-samples times after 100 warm-up, on the same disk as
 * the segments (which SYNC topics also pre-zero). Ratios are per round,
 * median over rounds.
 *
 * --durability async runs the same on an ASYNC topic, which syncs as soon
 * as a producer waits and, unlike SYNC, does not zero-fill its segments
 * ahead of the writes.
 *
 * Data lives in a mkdtemp dir under --data-root, removed at exit.
 */
#include "durable_util.h"

#include <getopt.h>
#include <pthread.h>
#include <sys/prctl.h>

#define MAX_NP 8
#define MAX_PROCS 64
#define MAX_RUNS 32

typedef struct config {
    int np[MAX_NP];
    int nnp;
    uint64_t size, ring, segment;
    uint64_t duration_ms, warmup_ms;
    uint32_t fsync_samples;
    uint64_t cap; /* samples kept per producer */
    int runs, api_sync, json;
    int paired;        /* --paired: producer 1 probes write + fdatasync after each publish */
    int threads;       /* --threads: producers are threads of one process */
    uint32_t pipeline; /* 0: one sync publish at a time; else receipts outstanding */
    double rate;       /* --rate: events/s over all producers (open loop); 0: closed */
    uint32_t durability; /* EVB_DURABILITY_SYNC (default) or _ASYNC */
    const char *data_root;
} config;

typedef struct pslot {
    uint64_t n;       /* samples kept */
    uint64_t done;    /* calls completed inside the window */
    uint64_t sent;    /* --rate: publishes made inside the window */
    int err;
    char msg[256];
} pslot;

typedef struct sctl {
    _Atomic uint32_t ready;
    _Atomic uint32_t go;
    uint64_t t_start, t_end; /* window, now_ns clock */
    uint64_t t_go;           /* the warm-up's start (--rate: the schedule's) */
    int np;                  /* producers of the run */
    pslot p[MAX_PROCS];
    uint64_t probe_n;        /* --paired: probe samples kept */
} sctl;

/* --paired: producer 1's probe samples (shared, cap of them). */
static uint64_t *probe_samples;

/* --threads: what each producer thread of the one child process runs. */
typedef struct tjob {
    const config *cf;
    const char *topic;
    sctl *c;
    int id;
    uint64_t *samples;
} tjob;

typedef struct sres {
    int ok;
    double ev_s, p50, p90, p99, p999, max, ev_per_fsync, sent_s;
    double own_p50, own_p99, probe_p50; /* --paired: producer 1's publishes, its probes */
    uint64_t samples, fsyncs;
    char why[512];
} sres;

/* ---- baseline: pwrite + fdatasync ---------------------------------- */

typedef struct fsres {
    double sync_p50, sync_p99, both_p50, both_p99;
    double gc_p50, gc_p99, gc_p999; /* --pipeline --rate: bare group commit */
} fsres;

static int fsync_baseline(const config *cf, fsres *out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fsync-probe", du_data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    const uint64_t file = 16u << 20;
    unsigned char *z = calloc(1, 1u << 20);
    for (uint64_t off = 0; off < file; off += 1u << 20)
        if (pwrite(fd, z, 1u << 20, (off_t)off) != 1 << 20)
            return -EIO;
    free(z);
    fdatasync(fd);
    unsigned char *buf = malloc(cf->size);
    fill_pattern(buf, cf->size, 3);
    uint32_t n = cf->fsync_samples;
    uint64_t *s = malloc(sizeof(uint64_t) * n), *b = malloc(sizeof(uint64_t) * n);
    uint64_t off = 0;
    for (uint32_t i = 0; i < n + 100; i++) {
        uint64_t t0 = now_ns();
        if (pwrite(fd, buf, cf->size, (off_t)off) != (ssize_t)cf->size)
            return -EIO;
        uint64_t t1 = now_ns();
        if (fdatasync(fd) < 0)
            return -errno;
        uint64_t t2 = now_ns();
        off = (off + cf->size) % file;
        if (i >= 100) {
            s[i - 100] = t2 - t1;
            b[i - 100] = t2 - t0;
        }
    }
    close(fd);
    unlink(path);
    qsort(s, n, sizeof *s, cmp_u64);
    qsort(b, n, sizeof *b, cmp_u64);
    out->sync_p50 = (double)du_pct(s, n, 0.50);
    out->sync_p99 = (double)du_pct(s, n, 0.99);
    out->both_p50 = (double)du_pct(b, n, 0.50);
    out->both_p99 = (double)du_pct(b, n, 0.99);
    free(s);
    free(b);
    free(buf);
    return 0;
}

/*
 * --pipeline --rate: the same arrivals (--size values at --rate, one
 * schedule) through the simplest durable log there is, in this process:
 * a thread marks each value arrived when due; the writer, back to back,
 * writes every value that has arrived (one pwrite of their bytes) and
 * fdatasyncs, and each value's latency is from its due time to the end of
 * the fdatasync that covered it. No ring, no other process, no frame:
 * what this disk gives a pipelined log at this rate. The file is
 * fallocated and not zeroed, as the segments of a SYNC topic written this
 * fast are (flush_segment.c, zero_next).
 */
typedef struct gcarg {
    _Atomic uint64_t arrived;
    uint64_t t0, interval, n;
} gcarg;

static void *gc_arrivals(void *p)
{
    gcarg *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t due = a->t0 + i * a->interval, now;
        while ((now = now_ns()) < due)
            if (due - now > 20000)
                sleep_ns(20000);
        atomic_store_explicit(&a->arrived, i + 1, memory_order_release);
    }
    return NULL;
}

static int gc_baseline(const config *cf, fsres *out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/gc-probe", du_data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    unlink(path);
    gcarg a = { .interval = (uint64_t)(1e9 / cf->rate) };
    a.n = (cf->warmup_ms + cf->duration_ms) * 1000000ull / a.interval;
    uint64_t bytes = a.n * cf->size, max_write = 32u << 20;
    int rc = posix_fallocate(fd, 0, (off_t)bytes);
    unsigned char *buf = malloc(max_write);
    uint64_t *lat = malloc(a.n * sizeof *lat);
    pthread_t th;
    a.t0 = now_ns() + 1000000;
    if (rc || !buf || !lat || (rc = pthread_create(&th, NULL, gc_arrivals, &a))) {
        close(fd);
        free(buf);
        free(lat);
        return -(rc ? rc : ENOMEM);
    }
    fill_pattern(buf, max_write, 5);
    uint64_t written = 0, done = 0;
    while (done < a.n && !rc) {
        uint64_t got = atomic_load_explicit(&a.arrived, memory_order_acquire);
        if (got == written) {
            sleep_ns(5000);
            continue;
        }
        if ((got - written) * cf->size > max_write)
            got = written + max_write / cf->size;
        ssize_t len = (ssize_t)((got - written) * cf->size);
        if (pwrite(fd, buf, (size_t)len, (off_t)(written * cf->size)) != len || fdatasync(fd))
            rc = -EIO;
        uint64_t end = now_ns();
        written = got;
        for (; done < written; done++)
            lat[done] = end - (a.t0 + done * a.interval);
    }
    pthread_join(th, NULL);
    close(fd);
    free(buf);
    /* The window only, as for the producers' samples. */
    uint64_t skip = cf->warmup_ms * 1000000ull / a.interval, n = done > skip ? done - skip : 0;
    qsort(lat + skip, n, sizeof *lat, cmp_u64);
    out->gc_p50 = (double)du_pct(lat + skip, n, 0.50);
    out->gc_p99 = (double)du_pct(lat + skip, n, 0.99);
    out->gc_p999 = (double)du_pct(lat + skip, n, 0.999);
    free(lat);
    return rc;
}

/* ---- a producer process -------------------------------------------- */

/* Retire receipts [*tail, head) whose end the durable position POS has
 * reached, at time NOW: their samples, and acks inside the window. */
static void retire(const config *cf, pslot *ps, const evb_receipt *r, const uint64_t *t_pub,
                   uint64_t *tail, uint64_t head, uint64_t pos, uint64_t now, uint64_t ts,
                   uint64_t te, uint64_t *samples)
{
    uint32_t k = cf->pipeline;
    while (*tail < head && r[*tail % k].end_position <= pos) {
        uint64_t t0 = t_pub[*tail % k];
        if (t0 >= ts && t0 < te && ps->n < cf->cap)
            samples[ps->n++] = now - t0;
        if (now >= ts && now <= te)
            ps->done++;
        (*tail)++;
    }
}

/* The --pipeline loop: up to K receipts outstanding, retired by polling
 * after each publish and by waiting for the oldest when K are out. */
static int pipeline_loop(const config *cf, evb_producer *p, evb_msg *m, unsigned char *buf,
                         pslot *ps, int id, uint64_t t0, uint64_t ts, uint64_t te,
                         uint64_t interval, int cf_np, uint64_t *samples)
{
    uint32_t k = cf->pipeline;
    evb_receipt *r = calloc(k, sizeof *r);
    uint64_t *t_pub = calloc(k, sizeof *t_pub);
    uint64_t head = 0, tail = 0, seq = 0, pos;
    uint64_t due = t0; /* --rate: when the next event is due */
    int rc = 0;
    for (;;) {
        uint64_t now = now_ns();
        bool open = (interval ? due : now) < te;
        if (!open && tail == head)
            break;
        if (head - tail == k || (!open && tail < head)) {
            const evb_receipt *o = &r[tail % k];
            if ((rc = evb_producer_wait_durable(p, o, -1)) < 0)
                break;
        }
        /* The poll names a receipt (its partition and ring): the oldest. */
        if (tail < head) {
            if ((rc = evb_producer_durable_position(p, &r[tail % k], &pos)) < 0)
                break;
            retire(cf, ps, r, t_pub, &tail, head, pos, now_ns(), ts, te, samples);
        }
        if (!open || head - tail == k)
            continue;
        if (interval && (now = now_ns()) < due) {
            /* Early: poll for acks until it is due (timer slack 1 ns),
             * every 20 us per producer of the run: some 50 k wake-ups a
             * second in all, however many producers share the CPUs. */
            uint64_t nap = 20000u * (uint64_t)cf_np;
            sleep_ns(due - now < nap ? due - now : nap);
            continue;
        }
        store64(buf, (uint64_t)id << 48 | seq++);
        t_pub[head % k] = interval ? due : now_ns();
        if (interval && due >= ts && due < te)
            ps->sent++;
        due += interval;
        if ((rc = evb_publish_receipt(p, m, &r[head % k])) < 0)
            break;
        head++;
    }
    free(r);
    free(t_pub);
    return rc < 0 ? bench_fail(ps->msg, "evb_publish_receipt/wait/poll", rc) : 0;
}

/*
 * --paired: a pre-zeroed probe file of producer 1's, where it times one
 * pwrite of --size and one fdatasync after each sync publish, so the
 * baseline is measured beside the publishes, in the same seconds, rather
 * than before the run: on a disk whose fdatasync drifts by 40 times
 * within minutes (this VM's, some days) only a paired ratio means much.
 */
static int probe_open(const config *cf)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/probe-%d", du_data_dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    unlink(path);
    unsigned char *z = calloc(1, 1u << 20);
    for (uint64_t off = 0; off < (16u << 20); off += 1u << 20)
        if (pwrite(fd, z, 1u << 20, (off_t)off) != 1 << 20) {
            free(z);
            close(fd);
            return -EIO;
        }
    free(z);
    (void)cf;
    return fdatasync(fd) < 0 ? -errno : fd;
}

static uint64_t probe_once(int fd, const unsigned char *buf, uint64_t size, uint64_t *off)
{
    uint64_t t0 = now_ns();
    if (pwrite(fd, buf, size, (off_t)*off) != (ssize_t)size || fdatasync(fd) < 0)
        return 0;
    *off = (*off + size) % (16u << 20);
    return now_ns() - t0;
}

static int producer_main(const config *cf, const char *topic, sctl *c, int id, uint64_t *samples)
{
    pslot *ps = &c->p[id];
    evb_bus *bus = NULL;
    evb_producer *p = NULL;
    int rc = du_bus_open(&bus);
    if (rc < 0)
        return bench_fail(ps->msg, "evb_bus_open", rc);
    evb_producer_options po = { .block_ms = -1 };
    if ((rc = evb_producer_open(&p, bus, topic, &po)) < 0)
        return bench_fail(ps->msg, "evb_producer_open", rc);
    unsigned char *buf = aligned_alloc(64, cf->size);
    fill_pattern(buf + 8, cf->size - 8, 1);
    int probe_fd = -1;
    uint64_t probe_off = 0;
    if (cf->paired && id == 0 && !cf->pipeline && (probe_fd = probe_open(cf)) < 0)
        return bench_fail(ps->msg, "probe file", probe_fd);
    evb_msg m = { .value = buf, .value_len = (uint32_t)cf->size, .partition = 0,
                  .flags = cf->api_sync ? 0 : EVB_MSG_SYNC };
    atomic_fetch_add_explicit(&c->ready, 1, memory_order_release);
    while (!atomic_load_explicit(&c->go, memory_order_acquire))
        sleep_ns(100000);
    uint64_t ts = c->t_start, te = c->t_end, seq = 0;
    int err = 0;
    if (cf->pipeline) {
        m.flags = 0;
        /* --rate: this producer's share; its schedule starts with the
         * warm-up, staggered so producers do not publish in step. */
        uint64_t interval = cf->rate > 0 ? (uint64_t)(1e9 * c->np / cf->rate) : 0;
        if (interval)
            prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
        uint64_t t0 = c->t_go + (interval * (uint64_t)id) / (uint64_t)c->np;
        err = pipeline_loop(cf, p, &m, buf, ps, id, t0, ts, te, interval, c->np, samples);
    }
    for (; !cf->pipeline;) {
        uint64_t t0 = now_ns();
        if (t0 >= te)
            break;
        store64(buf, (uint64_t)id << 48 | seq++);
        rc = evb_publish(p, &m);
        if (rc == 0 && cf->api_sync)
            rc = evb_producer_sync(p, -1);
        uint64_t t1 = now_ns();
        if (rc < 0) {
            err = bench_fail(ps->msg, cf->api_sync ? "evb_publish+sync" : "evb_publish(SYNC)", rc);
            break;
        }
        if (t0 >= ts) {
            if (ps->n < cf->cap)
                samples[ps->n++] = t1 - t0;
            if (t1 <= te)
                ps->done++;
        }
        if (probe_fd >= 0) {
            uint64_t d = probe_once(probe_fd, buf, cf->size, &probe_off);
            if (!d) {
                err = bench_fail(ps->msg, "probe write+fdatasync", -EIO);
                break;
            }
            if (t0 >= ts && c->probe_n < cf->cap)
                probe_samples[c->probe_n++] = d;
        }
    }
    if (probe_fd >= 0)
        close(probe_fd);
    free(buf);
    evb_producer_close(p);
    evb_bus_close(bus);
    return err;
}

static void *producer_thread(void *a)
{
    tjob *j = a;
    j->c->p[j->id].err = producer_main(j->cf, j->topic, j->c, j->id, j->samples);
    return NULL;
}

/* --threads: NP producer threads in this (child) process; the first error. */
static int producer_threads(const config *cf, const char *topic, sctl *c, int np,
                            uint64_t *samples)
{
    pthread_t th[MAX_PROCS];
    tjob jobs[MAX_PROCS];
    int err = 0, n = 0;
    for (; n < np; n++) {
        jobs[n] = (tjob){ cf, topic, c, n, samples + (size_t)n * cf->cap };
        if (pthread_create(&th[n], NULL, producer_thread, &jobs[n])) {
            err = bench_fail(c->p[n].msg, "pthread_create", -EAGAIN);
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (!err)
            err = c->p[i].err;
    }
    return err;
}

static sres run_one(const config *cf, evb_bus *bus, int np, int run, uint64_t *samples)
{
    sres res = { 0 };
    char topic[EVB_NAME_MAX + 1];
    snprintf(topic, sizeof topic, "sync-%dp-%d%s", np, run, cf->pipeline ? "-pipe" : "");
    evb_topic_config tc = { .partitions = 1, .ring_bytes = cf->ring,
                            .durability = cf->durability, .segment_bytes = cf->segment };
    int rc = evb_topic_create(bus, topic, &tc);
    if (rc < 0) {
        snprintf(res.why, sizeof res.why, "evb_topic_create: %s %s", evb_strerror(rc),
                 evb_last_error());
        return res;
    }
    sctl *c = shared_alloc(sizeof *c);
    pid_t pids[MAX_PROCS];
    fflush(NULL);
    int nproc = cf->threads ? 1 : np; /* --threads: one child runs them all */
    if (cf->threads) {
        pids[0] = fork();
        if (pids[0] == 0) {
            du_child_init();
            _exit(producer_threads(cf, topic, c, np, samples) ? 1 : 0);
        }
        du_child_add(pids[0]);
    }
    for (int i = 0; i < np && !cf->threads; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            du_child_init();
            c->p[i].err = producer_main(cf, topic, c, i, samples + (size_t)i * cf->cap);
            _exit(c->p[i].err);
        }
        du_child_add(pids[i]);
    }
    uint64_t until = now_ns() + 20000000000ull;
    while (atomic_load_explicit(&c->ready, memory_order_acquire) < (uint32_t)np && now_ns() < until)
        sleep_ns(1000000);
    struct evb_partition_stat s0 = { 0 }, s1 = { 0 };
    int started = atomic_load(&c->ready) == (uint32_t)np;
    if (started) {
        c->np = np;
        c->t_go = now_ns();
        c->t_start = c->t_go + cf->warmup_ms * 1000000u;
        c->t_end = c->t_start + cf->duration_ms * 1000000u;
        atomic_store_explicit(&c->go, 1, memory_order_release);
        sleep_ns(c->t_start - now_ns());
        evb_partition_stat(bus, topic, 0, &s0);
        uint64_t t = now_ns();
        if (t < c->t_end)
            sleep_ns(c->t_end - t);
        evb_partition_stat(bus, topic, 0, &s1);
    }
    int bad = !started;
    for (int i = 0; i < nproc; i++) {
        if (!started)
            kill(pids[i], SIGKILL);
        int st = wait_child(pids[i], now_ns() + 60000000000ull);
        du_child_del(pids[i]);
        if (st != 0 && !bad) {
            bad = 1;
            int who = i;
            for (int k = 0; cf->threads && k < np; k++)
                if (c->p[k].err) {
                    who = k;
                    break;
                }
            snprintf(res.why, sizeof res.why, "producer %d status %d: %s", who, st,
                     c->p[who].msg);
        }
    }
    struct evb_partition_stat s2 = { 0 };
    evb_partition_stat(bus, topic, 0, &s2);
    if (!started)
        snprintf(res.why, sizeof res.why, "producers did not start");
    else if (!bad && (s2.durable_position < s2.tail_position || s2.flush_error))
        snprintf(res.why, sizeof res.why, "durable %" PRIu64 " < tail %" PRIu64 ", flush_error %d",
                 s2.durable_position, s2.tail_position, s2.flush_error);
    else if (!bad) {
        if (c->probe_n && c->p[0].n) {
            /* Producer 1's own publishes against its probes, paired. */
            uint64_t *own = malloc(c->p[0].n * sizeof *own);
            memcpy(own, samples, c->p[0].n * sizeof *own);
            qsort(own, c->p[0].n, sizeof *own, cmp_u64);
            res.own_p50 = (double)du_pct(own, c->p[0].n, 0.50);
            res.own_p99 = (double)du_pct(own, c->p[0].n, 0.99);
            free(own);
            qsort(probe_samples, c->probe_n, sizeof *probe_samples, cmp_u64);
            res.probe_p50 = (double)du_pct(probe_samples, c->probe_n, 0.50);
        }
        uint64_t n = 0, done = 0, sent = 0;
        for (int i = 0; i < np; i++) {
            sent += c->p[i].sent;
            if (i && c->p[i].n)
                memmove(samples + n, samples + (size_t)i * cf->cap, c->p[i].n * sizeof(uint64_t));
            n += c->p[i].n;
            done += c->p[i].done;
        }
        qsort(samples, n, sizeof *samples, cmp_u64);
        res.ok = n > 0;
        res.samples = n;
        res.ev_s = (double)done / ((double)cf->duration_ms / 1e3);
        res.sent_s = (double)sent / ((double)cf->duration_ms / 1e3);
        res.p50 = (double)du_pct(samples, n, 0.50);
        res.p90 = (double)du_pct(samples, n, 0.90);
        res.p99 = (double)du_pct(samples, n, 0.99);
        res.p999 = (double)du_pct(samples, n, 0.999);
        res.max = n ? (double)samples[n - 1] : 0;
        res.fsyncs = s1.fsyncs - s0.fsyncs;
        uint64_t ev = (s1.tail_offset - s0.tail_offset);
        res.ev_per_fsync = res.fsyncs ? (double)ev / (double)res.fsyncs : 0;
        if (!n)
            snprintf(res.why, sizeof res.why, "no samples");
    }
    rc = evb_topic_delete(bus, topic);
    if (rc < 0 && res.ok) {
        res.ok = 0;
        snprintf(res.why, sizeof res.why, "evb_topic_delete: %s", evb_strerror(rc));
    }
    munmap(c, sizeof *c);
    return res;
}

/* ---- main ----------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_sync [options]\n"
            "  --producers LIST   producer process counts (default 1,2,8)\n"
            "  --threads          the producers are threads of one process (default:\n"
            "                     one process each)\n"
            "  --duration-ms MS   timed window per run (default 3000)\n"
            "  --warmup-ms MS     before the window (default 300)\n"
            "  --size SIZE        value size (default 1K)\n"
            "  --ring SIZE        ring_bytes (default 8M)\n"
            "  --segment SIZE     segment_bytes (default 64M)\n"
            "  --api msg|sync     EVB_MSG_SYNC on evb_publish (default) or evb_publish +\n"
            "                     evb_producer_sync\n"
            "  --pipeline K       pipelined acknowledgements: each producer keeps up to K\n"
            "                     receipts outstanding (evb_publish_receipt, poll, wait)\n"
            "                     and latency is publish-to-durable (default 0: off)\n"
            "  --rate EV/S        with --pipeline: publish on a fixed schedule (over all\n"
            "                     producers) and time each event from when it was due\n"
            "  --durability D     sync (default) or async: an ASYNC topic syncs when a\n"
            "                     producer waits (no zero-filled segments)\n"
            "  --fsync-samples N  baseline fdatasyncs per round (default 2000)\n"
            "  --runs N           rounds (default 5)\n"
            "  --data-root DIR    where perfdata-XXXXXX is made (default /work)\n"
            "  --paired           producer 1 times a pwrite + fdatasync of its own (a\n"
            "                     pre-zeroed file beside the segments) after each sync\n"
            "                     publish: a baseline measured in the same seconds, and\n"
            "                     its publish p50 and p99 over that probe's p50\n"
            "  --json             also print one JSON line per result\n");
}

static void pr_stat(const char *what, const double *v, int n, double scale, const char *fmt)
{
    stat3 s = stat3_of(v, n);
    char b[128];
    snprintf(b, sizeof b, fmt, s.med / scale, s.min / scale, s.max / scale);
    printf("  %-14s %s\n", what, b);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    print_cmdline(stdout, argc, argv);
    config cf = { .np = { 1, 2, 8 }, .nnp = 3, .size = 1024, .ring = 8u << 20,
                  .segment = 64u << 20, .duration_ms = 3000, .warmup_ms = 300,
                  .fsync_samples = 2000, .cap = 2000000, .runs = 5, .data_root = "/work",
                  .durability = EVB_DURABILITY_SYNC };
    static const struct option opts[] = {
        { "producers", required_argument, 0, 'p' }, { "duration-ms", required_argument, 0, 'd' },
        { "warmup-ms", required_argument, 0, 'w' }, { "size", required_argument, 0, 's' },
        { "ring", required_argument, 0, 'R' },      { "segment", required_argument, 0, 'S' },
        { "api", required_argument, 0, 'a' },       { "fsync-samples", required_argument, 0, 'n' },
        { "runs", required_argument, 0, 'r' },      { "data-root", required_argument, 0, 'D' },
        { "json", no_argument, 0, 'j' },            { "help", no_argument, 0, 'h' },
        { "pipeline", required_argument, 0, 'P' }, { "durability", required_argument, 0, 'y' },
        { "rate", required_argument, 0, 'Q' },     { "paired", no_argument, 0, 'A' },
        { "threads", no_argument, 0, 'T' },
        { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'p': {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            cf.nnp = 0;
            for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t && cf.nnp < MAX_NP;
                 t = strtok_r(NULL, ",", &sv))
                cf.np[cf.nnp++] = atoi(t);
            break;
        }
        case 'd': cf.duration_ms = strtoull(optarg, NULL, 0); break;
        case 'w': cf.warmup_ms = strtoull(optarg, NULL, 0); break;
        case 's': cf.size = parse_size(optarg); break;
        case 'R': cf.ring = parse_size(optarg); break;
        case 'S': cf.segment = parse_size(optarg); break;
        case 'a': cf.api_sync = !strcmp(optarg, "sync"); break;
        case 'n': cf.fsync_samples = (uint32_t)atoi(optarg); break;
        case 'r': cf.runs = atoi(optarg); break;
        case 'D': cf.data_root = optarg; break;
        case 'j': cf.json = 1; break;
        case 'A': cf.paired = 1; break;
        case 'T': cf.threads = 1; break;
        case 'P': cf.pipeline = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'Q': cf.rate = strtod(optarg, NULL); break;
        case 'y':
            if (strcmp(optarg, "sync") && strcmp(optarg, "async")) {
                usage(stderr);
                return 2;
            }
            cf.durability = strcmp(optarg, "sync") ? EVB_DURABILITY_ASYNC : EVB_DURABILITY_SYNC;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int maxnp = 0;
    for (int i = 0; i < cf.nnp; i++) {
        if (cf.np[i] < 1 || cf.np[i] > MAX_PROCS) {
            fprintf(stderr, "bad --producers\n");
            return 2;
        }
        if (cf.np[i] > maxnp)
            maxnp = cf.np[i];
    }
    if (cf.runs < 1 || cf.runs > MAX_RUNS || cf.size < 16 || cf.size % 8 || !cf.duration_ms ||
        cf.fsync_samples < 10 || !cf.nnp || cf.pipeline > 65536 || cf.rate < 0 ||
        (cf.rate > 0 && !cf.pipeline)) {
        usage(stderr);
        return 2;
    }
    print_env_header(stdout, "bench_sync");
    if (du_dirs_make(cf.data_root))
        return 1;
    if (cf.pipeline)
        printf("# pipelined: up to %u receipts outstanding per producer; latency is "
               "publish-to-durable\n", cf.pipeline);
    if (cf.rate > 0)
        printf("# open loop: %.0f events/s over all producers, each timed from when it "
               "was due\n", cf.rate);
    printf("# data dir %s, bus %s; %s topic, %" PRIu64 " B events, %s, ring %" PRIu64
           " B, segment %" PRIu64 " B; window %" PRIu64 " ms after %" PRIu64 " ms warm-up; "
           "%d rounds interleaved; producers (%s) unpinned on %ld CPUs\n",
           du_data_dir, du_bus_dir, cf.durability == EVB_DURABILITY_SYNC ? "SYNC" : "ASYNC",
           cf.size,
           cf.pipeline ? "evb_publish_receipt, pipelined" :
           cf.api_sync ? "evb_publish + evb_producer_sync" : "evb_publish with EVB_MSG_SYNC",
           cf.ring, cf.segment, cf.duration_ms, cf.warmup_ms, cf.runs,
           cf.threads ? "threads of one process" : "one process each", sysconf(_SC_NPROCESSORS_ONLN));
    printf("# baseline: fdatasync after a %" PRIu64 " B pwrite to a pre-zeroed 16 MiB file, "
           "%u samples per round\n", cf.size, cf.fsync_samples);
    evb_bus *bus = NULL;
    int rc = du_bus_open(&bus);
    if (rc < 0) {
        fprintf(stderr, "evb_bus_open: %s %s\n", evb_strerror(rc), evb_last_error());
        return 1;
    }
    uint64_t *samples = shared_alloc((size_t)maxnp * cf.cap * sizeof(uint64_t));
    if (cf.paired)
        probe_samples = shared_alloc(cf.cap * sizeof(uint64_t));
    static sres res[MAX_NP][MAX_RUNS];
    static fsres base[MAX_RUNS];
    int failures = 0;
    for (int run = 0; run < cf.runs; run++) {
        if ((rc = fsync_baseline(&cf, &base[run])) < 0) {
            fprintf(stderr, "fsync baseline: %s\n", strerror(-rc));
            return 1;
        }
        fprintf(stderr, "  run %d fdatasync p50 %.1f us p99 %.1f us (pwrite+fdatasync p50 %.1f)\n",
                run + 1, base[run].sync_p50 / 1e3, base[run].sync_p99 / 1e3,
                base[run].both_p50 / 1e3);
        if (cf.pipeline && cf.rate > 0) {
            if ((rc = gc_baseline(&cf, &base[run])) < 0) {
                fprintf(stderr, "group commit baseline: %s\n", strerror(-rc));
                return 1;
            }
            fprintf(stderr, "  run %d bare group commit p50 %.1f p99 %.1f p99.9 %.1f us\n",
                    run + 1, base[run].gc_p50 / 1e3, base[run].gc_p99 / 1e3,
                    base[run].gc_p999 / 1e3);
        }
        for (int k = 0; k < cf.nnp; k++) {
            sres *r = &res[k][run];
            *r = run_one(&cf, bus, cf.np[k], run, samples);
            if (!r->ok) {
                failures++;
                printf("# FAIL %d producers run %d: %s\n", cf.np[k], run + 1, r->why);
                continue;
            }
            fprintf(stderr, "  run %d %dp %.0f ev/s p50 %.1f p99 %.1f p99.9 %.1f max %.1f us; "
                    "%" PRIu64 " fsyncs, %.1f ev/fsync\n", run + 1, cf.np[k], r->ev_s,
                    r->p50 / 1e3, r->p99 / 1e3, r->p999 / 1e3, r->max / 1e3, r->fsyncs,
                    r->ev_per_fsync);
            if (cf.rate > 0 && r->sent_s < 0.98 * cf.rate)
                printf("# run %d %dp: sent %.0f ev/s of %.0f: behind (the latencies grow "
                       "with the backlog)\n", run + 1, cf.np[k], r->sent_s, cf.rate);
        }
    }

    printf("\nbaseline (per round: p50 and p99 of %u; median [min..max] over rounds, us)\n",
           cf.fsync_samples);
    double v[MAX_RUNS];
    for (int r = 0; r < cf.runs; r++)
        v[r] = base[r].sync_p50;
    pr_stat("fdatasync p50", v, cf.runs, 1e3, "%.1f [%.1f..%.1f]");
    for (int r = 0; r < cf.runs; r++)
        v[r] = base[r].sync_p99;
    pr_stat("fdatasync p99", v, cf.runs, 1e3, "%.1f [%.1f..%.1f]");
    for (int r = 0; r < cf.runs; r++)
        v[r] = base[r].both_p50;
    pr_stat("write+sync p50", v, cf.runs, 1e3, "%.1f [%.1f..%.1f]");
    if (cf.pipeline && cf.rate > 0) {
        for (int r = 0; r < cf.runs; r++)
            v[r] = base[r].gc_p50;
        pr_stat("group commit p50", v, cf.runs, 1e3, "%.1f [%.1f..%.1f]");
        for (int r = 0; r < cf.runs; r++)
            v[r] = base[r].gc_p99;
        pr_stat("group commit p99", v, cf.runs, 1e3, "%.1f [%.1f..%.1f]");
    }

    printf("\n%-5s %4s  %-24s %-22s %-22s %-22s %9s %8s  %-20s %s\n", "procs", "runs",
           "events/s med [min..max]", "p50 us", "p99 us", "p99.9 us", "max us", "ev/fsync",
           "p50 / fdatasync p50", "events/s / bound");
    for (int k = 0; k < cf.nnp; k++) {
        double ev[MAX_RUNS], p50[MAX_RUNS], p99[MAX_RUNS], p999[MAX_RUNS], mx[MAX_RUNS],
            epf[MAX_RUNS], q[MAX_RUNS], qb[MAX_RUNS], sent[MAX_RUNS], g50[MAX_RUNS],
            g99[MAX_RUNS];
        int n = 0;
        uint64_t nsamp = 0;
        for (int r = 0; r < cf.runs; r++) {
            const sres *x = &res[k][r];
            if (!x->ok)
                continue;
            ev[n] = x->ev_s;
            p50[n] = x->p50 / 1e3;
            p99[n] = x->p99 / 1e3;
            p999[n] = x->p999 / 1e3;
            mx[n] = x->max / 1e3;
            epf[n] = x->ev_per_fsync;
            q[n] = x->p50 / base[r].sync_p50;
            /* bound: every producer has one sync publish outstanding, so
             * at best each round of write + fdatasync carries one event of
             * each: np / (write+fdatasync p50) events/s */
            qb[n] = x->ev_s / ((double)cf.np[k] / (base[r].both_p50 / 1e9));
            sent[n] = x->sent_s;
            g50[n] = base[r].gc_p50 > 0 ? x->p50 / base[r].gc_p50 : 0;
            g99[n] = base[r].gc_p99 > 0 ? x->p99 / base[r].gc_p99 : 0;
            nsamp += x->samples;
            n++;
        }
        if (!n) {
            printf("%-5d %4d  FAILED\n", cf.np[k], 0);
            continue;
        }
        stat3 e = stat3_of(ev, n), a = stat3_of(p50, n), b = stat3_of(p99, n),
              c = stat3_of(p999, n), m = stat3_of(mx, n), f = stat3_of(epf, n),
              qq = stat3_of(q, n), qbb = stat3_of(qb, n);
        double sent_med = stat3_of(sent, n).med;
        char es[64], as[64], bs[64], cs[64];
        snprintf(es, sizeof es, "%.0f [%.0f..%.0f]", e.med, e.min, e.max);
        snprintf(as, sizeof as, "%.1f [%.1f..%.1f]", a.med, a.min, a.max);
        snprintf(bs, sizeof bs, "%.1f [%.1f..%.1f]", b.med, b.min, b.max);
        snprintf(cs, sizeof cs, "%.1f [%.1f..%.1f]", c.med, c.min, c.max);
        char qs[64];
        snprintf(qs, sizeof qs, "%.2f [%.2f..%.2f]", qq.med, qq.min, qq.max);
        char bound[64] = "-"; /* pipelined: disk bandwidth bounds it, not this */
        if (!cf.pipeline)
            snprintf(bound, sizeof bound, "%.3f [%.3f..%.3f]", qbb.med, qbb.min, qbb.max);
        printf("%-5d %4d  %-24s %-22s %-22s %-22s %9.0f %8.1f  %-20s %s\n", cf.np[k], n, es,
               as, bs, cs, m.med, f.med, qs, bound);
        if (cf.pipeline && cf.rate > 0) {
            stat3 x5 = stat3_of(g50, n), x9 = stat3_of(g99, n);
            printf("      %dp over the bare group commit of the same round: p50 %.2f "
                   "[%.2f..%.2f], p99 %.2f [%.2f..%.2f]\n", cf.np[k], x5.med, x5.min, x5.max,
                   x9.med, x9.min, x9.max);
        }
        if (cf.json)
            printf("{\"bench\":\"durable_sync\",\"durability\":\"%s\",\"pipeline\":%u,"
                   "\"rate\":%.6g,\"sent_per_s\":%.6g,"
                   "\"producers\":%d,"
                   "\"size\":%" PRIu64 ",\"runs\":%d,"
                   "\"samples\":%" PRIu64 ",\"events_per_s\":{\"median\":%.6g,\"min\":%.6g,"
                   "\"max\":%.6g},\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.1f,"
                   "\"events_per_fsync\":%.2f,\"ratio_p50_vs_fdatasync\":%.3f,"
                   "\"ratio_events_vs_bound\":%.4f}\n",
                   cf.durability == EVB_DURABILITY_SYNC ? "sync" : "async", cf.pipeline,
                   cf.rate, sent_med, cf.np[k], cf.size, n, nsamp, e.med, e.min, e.max, a.med, b.med,
                   c.med, m.med, f.med, qq.med, qbb.med);
    }
    if (cf.paired && !cf.pipeline) {
        printf("\npaired (producer 1: its sync publishes, each followed by one pwrite + "
               "fdatasync of its own probe file)\n");
        printf("%-5s %4s  %-22s %-22s %-24s %-22s %s\n", "procs", "runs", "publish p50 us",
               "probe p50 us", "p50 / probe p50", "publish p99 us", "p99 / probe p50");
        for (int k = 0; k < cf.nnp; k++) {
            double a[MAX_RUNS], b[MAX_RUNS], q5[MAX_RUNS], c9[MAX_RUNS], q9[MAX_RUNS];
            int n = 0;
            for (int r = 0; r < cf.runs; r++) {
                const sres *x = &res[k][r];
                if (!x->ok || !x->probe_p50)
                    continue;
                a[n] = x->own_p50 / 1e3;
                b[n] = x->probe_p50 / 1e3;
                q5[n] = x->own_p50 / x->probe_p50;
                c9[n] = x->own_p99 / 1e3;
                q9[n] = x->own_p99 / x->probe_p50;
                n++;
            }
            if (!n)
                continue;
            stat3 sa = stat3_of(a, n), sb = stat3_of(b, n), s5 = stat3_of(q5, n),
                  sc = stat3_of(c9, n), s9 = stat3_of(q9, n);
            char as[64], bs[64], qs[64], cs[64], ds[64];
            snprintf(as, sizeof as, "%.1f [%.1f..%.1f]", sa.med, sa.min, sa.max);
            snprintf(bs, sizeof bs, "%.1f [%.1f..%.1f]", sb.med, sb.min, sb.max);
            snprintf(qs, sizeof qs, "%.2f [%.2f..%.2f]", s5.med, s5.min, s5.max);
            snprintf(cs, sizeof cs, "%.1f [%.1f..%.1f]", sc.med, sc.min, sc.max);
            snprintf(ds, sizeof ds, "%.2f [%.2f..%.2f]", s9.med, s9.min, s9.max);
            printf("%-5d %4d  %-22s %-22s %-24s %-22s %s\n", cf.np[k], n, as, bs, qs, cs, ds);
        }
        printf("# events/s above include the probes' time in paired mode.\n");
    }
    if (cf.pipeline)
        printf("# latency: from just before evb_publish_receipt to the poll or wait that saw "
               "the event durable, every event published in the window, all producers;\n"
               "# events/s: acknowledgements made in the window. No bound column: disk "
               "bandwidth bounds it, not fdatasync latency.\n");
    else
        printf("# latency: clock_gettime around each evb_publish(EVB_MSG_SYNC) call, all calls "
               "started in the window, all producers.\n");
    printf("# percentiles per run, then median [min..max] over runs. ev/fsync: events "
           "published / fdatasyncs completed in the window\n#   (evb_partition_stat); ratio: "
           "run p50 / that round's fdatasync p50.\n");
    if (!cf.pipeline)
        printf("# bound: procs / (pwrite+fdatasync p50 of the round): the rate if every "
               "fdatasync carried one event of every producer\n#   (each producer has one "
               "sync publish outstanding).\n");
    if (failures)
        printf("# %d run(s) FAILED\n", failures);
    evb_bus_close(bus);
    du_cleanup();
    return failures ? 1 : 0;
}
