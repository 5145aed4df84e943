/*
 * bench_durable.c - ingest throughput of a durable (ASYNC) topic.
 *
 * One producer process publishes one ring lap (--warmup-laps) and syncs it,
 * then, timed, --bytes of --size values into a 1-partition topic
 * (evb_publish_batch of --batch, or evb_publish), then calls
 * evb_producer_sync(-1): the clock stops when everything is on disk.
 * Its flusher thread (bus/flusher.c) writes the ring to segment files of
 * --segment bytes. No consumer. Measured in the same run, interleaved:
 *   async-*  durability ASYNC, data dir on disk, rings of each --ring size,
 *            the flusher writing through the page cache (EVBUS_FLUSH_DIRECT=0);
 *   dio-*    the same with EVBUS_FLUSH_DIRECT=1 (whole blocks written
 *            O_DIRECT; the library's default from 74829cd to 1565d8a);
 *   none-*   the same producer on a durability NONE topic (no reader, so
 *            the ring never gates: the in-memory rate);
 *   fio-buf, fio-direct  fio sequential 1 MiB io_uring writes of --bytes,
 *            buffered and O_DIRECT, with end_fsync (bandwidth over a
 *            runtime that includes the final fsync);
 *   fio-buf-seg  fio-buf plus an fdatasync after every --segment bytes,
 *            one I/O at a time: the flusher's write-then-sync pattern
 *            without evbus around it.
 * After each async run: evb_partition_stat's fsyncs, segments, disk_bytes,
 * durable == tail; with --verify N the first N runs of each config are
 * read back from disk (EVB_START_EARLIEST) and every event's sequence
 * number and checksum checked. --sample-ms M samples the flusher's lag
 * (tail - flushed) every M ms from the parent (a diagnostic: it perturbs).
 *
 * Data lives in a mkdtemp dir under --data-root, removed at exit.
 */
#include "durable_util.h"

#include <getopt.h>

enum impl {
    IMPL_ASYNC_BATCH,
    IMPL_ASYNC_SINGLE,
    IMPL_DIO_BATCH,   /* ASYNC with EVBUS_FLUSH_DIRECT=1 in the producer process */
    IMPL_DIO_SINGLE,
    IMPL_NONE_BATCH,
    IMPL_NONE_SINGLE,
    IMPL_COUNT
};
static const char *const impl_name[IMPL_COUNT] = { "async-batch", "async-single", "dio-batch",
                                                   "dio-single",  "none-batch",   "none-single" };
enum { FIO_BUF, FIO_DIRECT, FIO_BUF_SYNC, FIO_COUNT };
static const char *const fio_name[FIO_COUNT] = { "fio-buf", "fio-direct", "fio-buf-seg" };

#define MAX_RINGS 8
#define MAX_RUNS 32

typedef struct config {
    uint64_t rings[MAX_RINGS];
    int nrings;
    unsigned impls;
    uint64_t bytes, segment, size;
    uint32_t flush_ms;
    int batch, runs, verify, fio, producer_cpu, json;
    uint64_t warm_laps;
    uint64_t ring_bytes_run;         /* the ring of the run in progress */
    uint32_t sample_ms;
    const char *data_root;
} config;

/* Shared with the producer child. */
typedef struct ictl {
    _Atomic uint32_t ready;
    int err;
    char msg[256];
    uint64_t t0, t_pub, t1;          /* start, last publish returned, sync returned */
    uint64_t events, warm, log0;     /* timed events, warm-up events, log position at t0 */
    uint64_t main_cpu_ns, flusher_cpu_ns;
    long nvcsw, nivcsw, minflt;      /* the producer thread's (RUSAGE_THREAD) */
} ictl;

typedef struct result {
    int ok;
    double ev_s, log_bps, sync_tail_ms, main_cpu, flusher_cpu;
    double main_ns_ev;               /* producer thread's CPU ns per timed event */
    long sleeps, faults;             /* its voluntary context switches, page faults */
    uint64_t fsyncs, segments, disk_bytes, log_bytes;
    double blocked_frac, lag_mean;   /* --sample-ms only */
    char why[512];
} result;

static int is_durable(int im) { return im < IMPL_NONE_BATCH; }
static int is_direct(int im) { return im == IMPL_DIO_BATCH || im == IMPL_DIO_SINGLE; }
static int is_batch(int im)
{
    return im == IMPL_ASYNC_BATCH || im == IMPL_DIO_BATCH || im == IMPL_NONE_BATCH;
}

/* ---- the producer process ------------------------------------------ */

/* Publish sequence numbers [FROM, TO) in batches of BATCH (1: evb_publish). */
static int publish_range(evb_producer *p, evb_msg *msgs, unsigned char *bufs, size_t size,
                         int batch, uint64_t from, uint64_t to, char *msg)
{
    int rc;
    for (uint64_t seq = from; seq < to;) {
        uint64_t k = to - seq < (uint64_t)batch ? to - seq : (uint64_t)batch;
        for (uint64_t i = 0; i < k; i++)
            store64(bufs + i * size, seq + i);
        if (batch == 1) {
            if ((rc = evb_publish(p, &msgs[0])) < 0)
                return bench_fail(msg, "evb_publish", rc);
        } else {
            for (size_t done = 0; done < k; done += (size_t)rc)
                if ((rc = evb_publish_batch(p, msgs + done, (size_t)k - done)) < 0)
                    return bench_fail(msg, "evb_publish_batch", rc);
        }
        seq += k;
    }
    return 0;
}

static int producer_main(const config *cf, int im, const char *topic, ictl *c)
{
    evb_bus *bus = NULL;
    evb_producer *p = NULL;
    /* Read when the flusher is made, at the first producer open; set
     * both ways, as the default changed (74829cd: O_DIRECT by default). */
    if (is_durable(im))
        setenv("EVBUS_FLUSH_DIRECT", is_direct(im) ? "1" : "0", 1);
    int rc = du_bus_open(&bus);
    if (rc < 0)
        return bench_fail(c->msg, "evb_bus_open", rc);
    evb_producer_options po = { .block_ms = -1 };
    if ((rc = evb_producer_open(&p, bus, topic, &po)) < 0)
        return bench_fail(c->msg, "evb_producer_open", rc);
    if (cf->producer_cpu >= 0 && pin_to_cpu(cf->producer_cpu)) /* this thread only */
        return bench_fail(c->msg, "pin", -EINVAL);
    size_t size = cf->size;
    int batch = is_batch(im) ? cf->batch : 1;
    unsigned char *bufs = aligned_alloc(64, (size_t)batch * size);
    evb_msg *msgs = calloc((size_t)batch, sizeof *msgs);
    if (!bufs || !msgs)
        return bench_fail(c->msg, "alloc", -ENOMEM);
    for (int i = 0; i < batch; i++) {
        fill_pattern(bufs + (size_t)i * size + 8, size - 8, 1);
        msgs[i].value = bufs + (size_t)i * size;
        msgs[i].value_len = (uint32_t)size;
        msgs[i].partition = 0;
    }
    /* Warm-up: one ring lap, synced, untimed, so that the ring's pages are
     * faulted in for every mode (a first touch costs the most on a VM). */
    uint64_t warm = cf->warm_laps * cf->ring_bytes_run / (size + 56), n = cf->bytes / size;
    int err = publish_range(p, msgs, bufs, size, batch, 0, warm, c->msg);
    if (!err && (rc = evb_producer_sync(p, -1)) < 0)
        err = bench_fail(c->msg, "evb_producer_sync (warm-up)", rc);
    struct evb_partition_stat st0 = { 0 };
    if (!err && (rc = evb_partition_stat(bus, topic, 0, &st0)) < 0)
        err = bench_fail(c->msg, "evb_partition_stat", rc);
    c->log0 = st0.tail_position;
    c->warm = warm;
    atomic_store_explicit(&c->ready, 1, memory_order_release);
    uint64_t cpu0 = du_self_cpu_ns(), fl0 = du_other_threads_cpu_ns();
    struct rusage ru0, ru1;
    getrusage(RUSAGE_THREAD, &ru0);
    c->t0 = now_ns();
    if (!err)
        err = publish_range(p, msgs, bufs, size, batch, warm, warm + n, c->msg);
    c->t_pub = now_ns();
    if (!err && (rc = evb_producer_sync(p, -1)) < 0)
        err = bench_fail(c->msg, "evb_producer_sync", rc);
    c->t1 = now_ns();
    c->events = n;
    c->main_cpu_ns = du_self_cpu_ns() - cpu0;
    c->flusher_cpu_ns = du_other_threads_cpu_ns() - fl0;
    getrusage(RUSAGE_THREAD, &ru1);
    c->nvcsw = ru1.ru_nvcsw - ru0.ru_nvcsw;
    c->nivcsw = ru1.ru_nivcsw - ru0.ru_nivcsw;
    c->minflt = ru1.ru_minflt - ru0.ru_minflt;
    free(bufs);
    free(msgs);
    evb_producer_close(p);
    evb_bus_close(bus);
    return err;
}

/* ---- read back ------------------------------------------------------ */

static const char *verify_topic(evb_bus *bus, const config *cf, const char *topic, uint64_t n,
                                char *why, size_t cap)
{
    evb_consumer *c = NULL;
    evb_consumer_options co = { .kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                                .idle = EVB_IDLE_SPIN, .partition = -1 };
    int rc = evb_consumer_open(&c, bus, topic, &co);
    if (rc < 0) {
        snprintf(why, cap, "verify: evb_consumer_open: %s %s", evb_strerror(rc), evb_last_error());
        return why;
    }
    unsigned char *pat = calloc(1, cf->size);
    fill_pattern(pat + 8, cf->size - 8, 1);
    uint64_t want_sum = sum64(pat, cf->size), seq = 0, bad = 0;
    free(pat);
    evb_event ev;
    while (seq < n && (rc = evb_consumer_next(c, &ev, 2000)) == 0) {
        if (ev.value_len != cf->size || load64(ev.value) != seq || ev.lost_events ||
            sum64(ev.value, ev.value_len) != want_sum + seq)
            bad++;
        seq++;
    }
    evb_consumer_close(c);
    if (seq != n || bad)
        snprintf(why, cap, "verify: read %" PRIu64 " of %" PRIu64 " events back, %" PRIu64
                 " bad; last rc %d %s", seq, n, bad, rc, rc ? evb_strerror(rc) : "");
    return (seq != n || bad) ? why : NULL;
}

/* ---- one run -------------------------------------------------------- */

static result run_one(const config *cf, evb_bus *bus, int im, uint64_t ring, int run, int verify)
{
    result res = { 0 };
    char topic[EVB_NAME_MAX + 1];
    snprintf(topic, sizeof topic, "in-%s-%" PRIu64 "-%d", impl_name[im], ring >> 20, run);
    evb_topic_config tc = {
        .partitions = 1,
        .ring_bytes = ring,
        .max_event_bytes = (uint32_t)(cf->size < (64u << 10) ? (64u << 10) : cf->size),
        .durability = is_durable(im) ? EVB_DURABILITY_ASYNC : EVB_DURABILITY_NONE,
        .segment_bytes = is_durable(im) ? cf->segment : 0,
        .flush_ms = cf->flush_ms,
    };
    int rc = evb_topic_create(bus, topic, &tc);
    if (rc < 0) {
        snprintf(res.why, sizeof res.why, "evb_topic_create: %s %s", evb_strerror(rc),
                 evb_last_error());
        return res;
    }
    ictl *c = shared_alloc(sizeof *c);
    config cfr = *cf;
    cfr.ring_bytes_run = ring;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        du_child_init();
        c->err = producer_main(&cfr, im, topic, c);
        _exit(c->err);
    }
    du_child_add(pid);
    /* Lag sampling (diagnostic). */
    uint64_t ns = 0, nblocked = 0;
    double lag_sum = 0;
    if (cf->sample_ms && is_durable(im) && wait_flag(&c->ready, 1, 10000000000ull) == 0) {
        int st;
        while (waitpid(pid, &st, WNOHANG) == 0) {
            struct evb_partition_stat s;
            if (evb_partition_stat(bus, topic, 0, &s) == 0 && s.tail_position) {
                uint64_t lag = s.tail_position - s.flushed_position;
                lag_sum += (double)lag;
                nblocked += lag + 2 * (uint64_t)cf->batch * (cf->size + 64) >= ring;
                ns++;
            }
            sleep_ns((uint64_t)cf->sample_ms * 1000000u);
        }
        du_child_del(pid);
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    } else {
        rc = wait_child(pid, now_ns() + 600000000000ull);
        du_child_del(pid);
    }
    struct evb_partition_stat s = { 0 };
    int src = evb_partition_stat(bus, topic, 0, &s);
    if (rc != 0 || c->err) {
        snprintf(res.why, sizeof res.why, "producer status %d: %s", rc, c->msg);
    } else if (src < 0) {
        snprintf(res.why, sizeof res.why, "evb_partition_stat: %s", evb_strerror(src));
    } else if (is_durable(im) && (s.durable_position < s.tail_position || s.flush_error)) {
        snprintf(res.why, sizeof res.why, "not on disk after sync: durable %" PRIu64
                 " < tail %" PRIu64 ", flush_error %d", s.durable_position, s.tail_position,
                 s.flush_error);
    } else if (is_durable(im) && verify && verify_topic(bus, cf, topic, c->warm + c->events,
                                                        res.why, sizeof res.why)) {
        /* res.why set */
    } else {
        res.ok = 1;
        double sec = (double)(c->t1 - c->t0) / 1e9;
        res.ev_s = (double)c->events / sec;
        res.log_bytes = s.tail_position - c->log0;
        res.log_bps = (double)res.log_bytes / sec;
        res.sync_tail_ms = (double)(c->t1 - c->t_pub) / 1e6;
        res.main_cpu = (double)c->main_cpu_ns / (double)(c->t1 - c->t0);
        res.flusher_cpu = (double)c->flusher_cpu_ns / (double)(c->t1 - c->t0);
        res.main_ns_ev = (double)c->main_cpu_ns / (double)c->events;
        res.sleeps = c->nvcsw;
        res.faults = c->minflt;
        res.fsyncs = s.fsyncs;
        res.segments = s.segments;
        res.disk_bytes = s.disk_bytes;
        res.blocked_frac = ns ? (double)nblocked / (double)ns : -1;
        res.lag_mean = ns ? lag_sum / (double)ns : -1;
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
            "usage: bench_durable [options]\n"
            "  --ring LIST        ring sizes (default 8M,32M,64M)\n"
            "  --impl LIST        any of async-batch,async-single,dio-batch,dio-single,\n"
            "                     none-batch,none-single (default all; async-*: ASYNC\n"
            "                     through the page cache, EVBUS_FLUSH_DIRECT=0; dio-*:\n"
            "                     EVBUS_FLUSH_DIRECT=1, the flusher's O_DIRECT mode)\n"
            "  --bytes SIZE       value bytes per run (default 2G)\n"
            "  --size SIZE        value size (default 1K; multiple of 8, >= 16)\n"
            "  --segment SIZE     segment_bytes (default 64M)\n"
            "  --batch N          events per evb_publish_batch (default 32)\n"
            "  --flush-ms MS      topic flush_ms (default 0: the library's default)\n"
            "  --runs N           runs per result, interleaved (default 5)\n"
            "  --verify N         read back and check the first N runs of each config (default 1)\n"
            "  --no-fio           skip the fio baselines\n"
            "  --warmup-laps N    ring laps published and synced before the clock starts (default 1)\n"
            "  --producer-cpu N   pin the producer thread (not the flusher) to CPU N\n"
            "  --sample-ms MS     sample the flusher lag every MS ms (diagnostic)\n"
            "  --data-root DIR    where perfdata-XXXXXX is made (default /work)\n"
            "  --json             also print one JSON line per result\n");
}

static int parse_list(const char *s, uint64_t *out, int max)
{
    char buf[256];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        if (n == max || !(out[n] = parse_size(t)))
            return -1;
        n++;
    }
    return n;
}

static int parse_impls(const char *s, unsigned *m)
{
    char buf[256];
    *m = 0;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        int k = 0;
        while (k < IMPL_COUNT && strcmp(t, impl_name[k]))
            k++;
        if (k == IMPL_COUNT)
            return -1;
        *m |= 1u << k;
    }
    return *m ? 0 : -1;
}

static void print_row(const char *name, const char *ring, const double *ev, int n, double size,
                      const char *extra)
{
    stat3 e = stat3_of(ev, n);
    if (!n) {
        printf("%-13s %5s %4d  FAILED\n", name, ring, n);
        return;
    }
    printf("%-13s %5s %4d  %7.3f [%.3f..%.3f]  %6.0f [%.0f..%.0f]  %s\n", name, ring, n,
           e.med / 1e6, e.min / 1e6, e.max / 1e6, e.med * size / 1e6, e.min * size / 1e6,
           e.max * size / 1e6, extra);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    print_cmdline(stdout, argc, argv);
    config cf = { .impls = (1u << IMPL_COUNT) - 1, .bytes = 2ull << 30, .segment = 64u << 20,
                  .size = 1024, .batch = 32, .runs = 5, .verify = 1, .fio = 1,
                  .producer_cpu = -1, .warm_laps = 1, .data_root = "/work" };
    cf.nrings = parse_list("8M,32M,64M", cf.rings, MAX_RINGS);
    static const struct option opts[] = {
        { "ring", required_argument, 0, 'R' },   { "impl", required_argument, 0, 'i' },
        { "bytes", required_argument, 0, 'B' },  { "size", required_argument, 0, 's' },
        { "segment", required_argument, 0, 'S' }, { "batch", required_argument, 0, 'b' },
        { "flush-ms", required_argument, 0, 'f' }, { "runs", required_argument, 0, 'r' },
        { "verify", required_argument, 0, 'v' }, { "no-fio", no_argument, 0, 'F' },
        { "warmup-laps", required_argument, 0, 'W' },
        { "producer-cpu", required_argument, 0, 'P' },
        { "sample-ms", required_argument, 0, 'm' },
        { "data-root", required_argument, 0, 'D' }, { "json", no_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' },         { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'R': cf.nrings = parse_list(optarg, cf.rings, MAX_RINGS); break;
        case 'i':
            if (parse_impls(optarg, &cf.impls)) {
                fprintf(stderr, "bad --impl %s\n", optarg);
                return 2;
            }
            break;
        case 'B': cf.bytes = parse_size(optarg); break;
        case 's': cf.size = parse_size(optarg); break;
        case 'S': cf.segment = parse_size(optarg); break;
        case 'b': cf.batch = atoi(optarg); break;
        case 'f': cf.flush_ms = (uint32_t)atoi(optarg); break;
        case 'r': cf.runs = atoi(optarg); break;
        case 'v': cf.verify = atoi(optarg); break;
        case 'F': cf.fio = 0; break;
        case 'W': cf.warm_laps = strtoull(optarg, NULL, 0); break;
        case 'P': cf.producer_cpu = atoi(optarg); break;
        case 'm': cf.sample_ms = (uint32_t)atoi(optarg); break;
        case 'D': cf.data_root = optarg; break;
        case 'j': cf.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (cf.nrings < 1 || cf.runs < 1 || cf.runs > MAX_RUNS || cf.batch < 1 || cf.batch > 4096 ||
        cf.size < 16 || cf.size % 8 || cf.bytes < cf.size || !cf.segment) {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < cf.nrings; i++)
        if (cf.segment % cf.rings[i]) {
            fprintf(stderr, "--segment must be a multiple of every --ring\n");
            return 2;
        }
    const char *fio = cf.fio ? du_fio_path() : NULL;
    print_env_header(stdout, "bench_durable");
    if (du_dirs_make(cf.data_root))
        return 1;
    printf("# data dir %s, bus %s; %" PRIu64 " value bytes of %" PRIu64 " B events per run, "
           "segment %" PRIu64 " B, batch %d, flush_ms %u%s, producer cpu %d, %d runs interleaved, "
           "%" PRIu64 " warm-up ring lap(s) synced before the clock\n",
           du_data_dir, du_bus_dir, cf.bytes, cf.size, cf.segment, cf.batch, cf.flush_ms,
           cf.flush_ms ? "" : " (default)", cf.producer_cpu, cf.runs, cf.warm_laps);
    if (cf.fio && !fio)
        printf("# fio not found on PATH: no fio baselines\n");
    evb_bus *bus = NULL;
    int rc = du_bus_open(&bus);
    if (rc < 0) {
        fprintf(stderr, "evb_bus_open: %s %s\n", evb_strerror(rc), evb_last_error());
        return 1;
    }

    static result res[MAX_RINGS][IMPL_COUNT][MAX_RUNS];
    static double fio_bw[FIO_COUNT][MAX_RUNS];
    int failures = 0;
    uint64_t peak_disk = 0;
    for (int run = 0; run < cf.runs; run++) {
        for (int k = 0; fio && k < FIO_COUNT; k++) {
            int every = k == FIO_BUF_SYNC ? (int)(cf.segment >> 20) : 0;
            fio_bw[k][run] = du_run_fio(fio, cf.bytes, k == FIO_DIRECT, every,
                                        run == 0 ? stdout : NULL);
            fprintf(stderr, "  run %d %-12s %.0f MB/s\n", run + 1, fio_name[k], fio_bw[k][run] / 1e6);
            if (fio_bw[k][run] < 0)
                failures++;
        }
        for (int ri = 0; ri < cf.nrings; ri++) {
            for (int im = 0; im < IMPL_COUNT; im++) {
                if (!(cf.impls & (1u << im)))
                    continue;
                result *r = &res[ri][im][run];
                *r = run_one(&cf, bus, im, cf.rings[ri], run, run < cf.verify);
                if (!r->ok) {
                    failures++;
                    printf("# FAIL %s ring %" PRIu64 " run %d: %s\n", impl_name[im], cf.rings[ri],
                           run + 1, r->why);
                    continue;
                }
                if (r->disk_bytes > peak_disk)
                    peak_disk = r->disk_bytes;
                fprintf(stderr, "  run %d %-12s ring %2" PRIu64 "M %.3f Mev/s %.0f MB/s (log %.0f MB/s) "
                        "fsyncs %" PRIu64 " segs %" PRIu64 " sync tail %.1f ms cpu main %.2f flusher %.2f"
                        " main %.0f ns/ev %ld sleeps %ld faults%s\n",
                        run + 1, impl_name[im], cf.rings[ri] >> 20, r->ev_s / 1e6,
                        r->ev_s * (double)cf.size / 1e6, r->log_bps / 1e6, r->fsyncs, r->segments,
                        r->sync_tail_ms, r->main_cpu, r->flusher_cpu, r->main_ns_ev, r->sleeps, r->faults,
                        run < cf.verify && is_durable(im) ? " verified" : "");
                if (r->lag_mean >= 0)
                    fprintf(stderr, "    lag mean %.1f MiB, producer blocked in %.0f%% of samples\n",
                            r->lag_mean / 1048576, 100 * r->blocked_frac);
            }
        }
    }

    /* ---- summary ---- */
    printf("\n%-13s %5s %4s  %-26s %-22s  %s\n", "impl", "ring", "runs", "Mevents/s med [min..max]",
           "MB/s (value) [min..max]", "per-run ratios (median) and diagnostics");
    char extra[512];
    for (int k = 0; fio && k < FIO_COUNT; k++) {
        double v[MAX_RUNS];
        int n = 0;
        for (int r = 0; r < cf.runs; r++)
            if (fio_bw[k][r] > 0)
                v[n++] = fio_bw[k][r] / (double)cf.size; /* as "events" of --size */
        print_row(fio_name[k], "-", v, n, (double)cf.size,
                  k == FIO_BUF_SYNC ? "(1 MiB writes, fdatasync every segment's worth: the "
                                      "flusher's serial write-then-sync, modelled)"
                                    : "(1 MiB writes; events = MB / size)");
        if (cf.json && n) {
            stat3 e = stat3_of(v, n);
            printf("{\"bench\":\"durable_ingest\",\"impl\":\"%s\",\"runs\":%d,\"mb_per_s\":{\"median\":%.6g,"
                   "\"min\":%.6g,\"max\":%.6g}}\n", fio_name[k], n, e.med * (double)cf.size / 1e6,
                   e.min * (double)cf.size / 1e6, e.max * (double)cf.size / 1e6);
        }
    }
    for (int ri = 0; ri < cf.nrings; ri++) {
        char ringname[16];
        snprintf(ringname, sizeof ringname, "%" PRIu64 "M", cf.rings[ri] >> 20);
        for (int im = 0; im < IMPL_COUNT; im++) {
            if (!(cf.impls & (1u << im)))
                continue;
            double ev[MAX_RUNS], q_none[MAX_RUNS], q_fb[MAX_RUNS], q_fd[MAX_RUNS], log[MAX_RUNS],
                fs[MAX_RUNS], tail[MAX_RUNS], mc[MAX_RUNS], fc[MAX_RUNS], mn[MAX_RUNS];
            int n = 0, nn = 0, nb = 0, nd = 0;
            int base = is_batch(im) ? IMPL_NONE_BATCH : IMPL_NONE_SINGLE;
            for (int r = 0; r < cf.runs; r++) {
                const result *x = &res[ri][im][r];
                if (!x->ok)
                    continue;
                ev[n] = x->ev_s;
                log[n] = x->log_bps;
                fs[n] = (double)x->fsyncs;
                tail[n] = x->sync_tail_ms;
                mc[n] = x->main_cpu;
                fc[n] = x->flusher_cpu;
                mn[n] = x->main_ns_ev;
                n++;
                if (!is_durable(im))
                    continue;
                if (res[ri][base][r].ok)
                    q_none[nn++] = x->ev_s / res[ri][base][r].ev_s;
                if (fio && fio_bw[FIO_BUF][r] > 0)
                    q_fb[nb++] = x->log_bps / fio_bw[FIO_BUF][r];
                if (fio && fio_bw[FIO_DIRECT][r] > 0)
                    q_fd[nd++] = x->log_bps / fio_bw[FIO_DIRECT][r];
            }
            stat3 lg = stat3_of(log, n), f = stat3_of(fs, n), t = stat3_of(tail, n),
                  m = stat3_of(mc, n), fl = stat3_of(fc, n), mns = stat3_of(mn, n);
            stat3 a = stat3_of(q_none, nn), b = stat3_of(q_fb, nb), d = stat3_of(q_fd, nd);
            char fb[16] = "-", fd[16] = "-";
            if (nb)
                snprintf(fb, sizeof fb, "%.2f", b.med);
            if (nd)
                snprintf(fd, sizeof fd, "%.2f", d.med);
            if (is_durable(im))
                snprintf(extra, sizeof extra,
                         "/none %.3f  log %.0f MB/s: /fio-buf %s /fio-direct %s  fsyncs %.0f  "
                         "sync-at-end %.1f ms  cpu main %.2f flusher %.2f  main %.0f ns/ev",
                         a.med, lg.med / 1e6, fb, fd, f.med, t.med, m.med, fl.med, mns.med);
            else
                snprintf(extra, sizeof extra, "log %.0f MB/s  cpu main %.2f  main %.0f ns/ev",
                         lg.med / 1e6, m.med, mns.med);
            print_row(impl_name[im], ringname, ev, n, (double)cf.size, extra);
            if (cf.json && n) {
                stat3 e = stat3_of(ev, n);
                printf("{\"bench\":\"durable_ingest\",\"impl\":\"%s\",\"ring_bytes\":%" PRIu64
                       ",\"segment_bytes\":%" PRIu64 ",\"size\":%" PRIu64 ",\"batch\":%d,\"runs\":%d,"
                       "\"events_per_s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g},"
                       "\"log_mb_per_s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g}",
                       impl_name[im], cf.rings[ri], cf.segment, cf.size,
                       is_batch(im) ? cf.batch : 1, n, e.med, e.min, e.max, lg.med / 1e6,
                       lg.min / 1e6, lg.max / 1e6);
                if (nn)
                    printf(",\"ratio_vs_none\":%.4f", a.med);
                if (nb)
                    printf(",\"ratio_log_vs_fio_buf\":%.4f", b.med);
                if (nd)
                    printf(",\"ratio_log_vs_fio_direct\":%.4f", d.med);
                printf(",\"fsyncs\":%.0f,\"cpu_main\":%.3f,\"cpu_flusher\":%.3f,"
                       "\"main_ns_per_event\":%.1f}\n", f.med, m.med, fl.med, mns.med);
            }
        }
    }
    printf("# MB/s = value bytes / s (10^6); log MB/s = bytes of log written (frames, 56 B header "
           "each) / s; fio: bytes / s.\n# /none: durable events/s over the none run of the same "
           "ring and mode in the same round; /fio-*: log bytes/s over fio's in the same round.\n"
           "# time runs from the first publish to evb_producer_sync returning; sync-at-end = "
           "that last sync; cpu = on-CPU time / wall time of the producer thread and of "
           "the other threads\n#   of its process (the flusher and its io_uring workers, "
           "iou-wrk-*); main ns/ev = the producer thread's on-CPU ns per event; sleeps, faults = its\n"
           "#   voluntary context switches and page faults (per run).\n# largest segment footprint of a run: %.2f GiB\n",
           (double)peak_disk / (1 << 30));
    if (failures)
        printf("# %d run(s) FAILED\n", failures);
    evb_bus_close(bus);
    du_cleanup();
    return failures ? 1 : 0;
}
