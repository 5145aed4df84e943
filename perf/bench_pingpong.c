/*
 * bench_pingpong.c - round-trip latency between two processes on two cores.
 *
 *   evbus      process A publishes a value to topic "ping"; process B (an
 *              EVB_SUBSCRIBER_LOSSLESS with EVB_IDLE_SPIN) reads it with
 *              evb_consumer_next(timeout -1) (or an evb_consumer_poll loop
 *              with --poll) and publishes it to "pong"; A reads it back and
 *              checks its sequence number.
 *   cacheline  the floor: A stores a counter in one 128-byte line, B spins
 *              until it sees it and stores it into another line, A spins
 *              until it sees that.
 *
 * Each round trip is timed on A with clock_gettime(CLOCK_MONOTONIC) (its
 * own cost is printed as "timer"); after --warmup round trips, --samples
 * are recorded per run; p50/p99/p99.9/max per run, then medians over
 * --runs runs and evbus / cacheline ratios of those medians.
 */
#include "bench_util.h"

#include <getopt.h>

enum impl { IMPL_CACHELINE, IMPL_EVBUS, IMPL_COUNT };
static const char *const impl_name[IMPL_COUNT] = { "cacheline", "evbus" };

#define MAX_RUNS 64
#define SEQ_STOP UINT64_MAX

typedef struct config {
    uint64_t samples, warmup;
    int runs;
    int cpu_a, cpu_b;
    size_t size;
    uint64_t ring_bytes;
    unsigned impls;
    int poll;
    int exclusive;        /* --exclusive: EVB_PRODUCER_EXCLUSIVE for both ends */
    int json;
    const char *shm_dir;
} config;

typedef struct ctl {
    _Alignas(BENCH_CACHELINE) _Atomic uint32_t b_ready;
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t ping; /* cacheline impl: A -> B */
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t pong; /* cacheline impl: B -> A */
    _Alignas(BENCH_CACHELINE) int a_err, b_err;
    uint64_t bad;
    char a_msg[256], b_msg[256];
} ctl;

/* ---- cache-line ping-pong ----------------------------------------- */

static int cl_a(const config *cf, ctl *c, uint64_t *rtt)
{
    uint64_t total = cf->warmup + cf->samples;
    for (uint64_t i = 1; i <= total; i++) {
        uint64_t t0 = now_ns();
        /* release/acquire: the only payload is the counter itself, but
         * keep the same edges a real hand-off needs */
        atomic_store_explicit(&c->ping, i, memory_order_release);
        while (atomic_load_explicit(&c->pong, memory_order_acquire) != i)
            cpu_relax();
        uint64_t t1 = now_ns();
        if (i > cf->warmup)
            rtt[i - cf->warmup - 1] = t1 - t0;
    }
    atomic_store_explicit(&c->ping, SEQ_STOP, memory_order_release);
    return 0;
}

static int cl_b(ctl *c)
{
    atomic_store_explicit(&c->b_ready, 1, memory_order_release);
    uint64_t want = 1;
    for (;;) {
        uint64_t v = atomic_load_explicit(&c->ping, memory_order_acquire);
        if (v == SEQ_STOP)
            break;
        if (v == want) {
            atomic_store_explicit(&c->pong, v, memory_order_release);
            want++;
        } else {
            cpu_relax();
        }
    }
    return 0;
}

/* ---- evbus ping-pong ---------------------------------------------- */

typedef struct poll_buf {
    unsigned char *buf;
    size_t cap;
    uint32_t len;
} poll_buf;

static int on_event(const evb_event *ev, void *arg)
{
    poll_buf *pb = arg;
    pb->len = ev->value_len;
    memcpy(pb->buf, ev->value, ev->value_len <= pb->cap ? ev->value_len : pb->cap);
    return 1;
}

/* Receive one event; returns its value in *V (valid until the next call on
 * C) and its length in *LEN. */
static inline int recv_one(const config *cf, evb_consumer *c, poll_buf *pb, const void **v,
                           uint32_t *len)
{
    if (!cf->poll) {
        evb_event ev;
        int rc = evb_consumer_next(c, &ev, -1);
        if (rc < 0)
            return rc;
        *v = ev.value;
        *len = ev.value_len;
        return 0;
    }
    for (;;) {
        int rc = evb_consumer_poll(c, on_event, pb, 1);
        if (rc < 0)
            return rc;
        if (rc == 1)
            break;
        cpu_relax();
    }
    *v = pb->buf;
    *len = pb->len;
    return 0;
}

typedef struct ends {
    evb_bus *bus;
    evb_producer *p;
    evb_consumer *c;
} ends;

static int open_ends(const config *cf, ends *e, const char *bus_path, const char *pub_topic,
                     const char *sub_topic, char *msg)
{
    memset(e, 0, sizeof(*e));
    int rc = evb_bus_open(&e->bus, bus_path, NULL);
    if (rc < 0)
        return bench_fail(msg, "evb_bus_open", rc);
    evb_consumer_options co = {
        .kind = EVB_SUBSCRIBER_LOSSLESS,
        .idle = EVB_IDLE_SPIN,
        .partition = -1,
    };
    rc = evb_consumer_open(&e->c, e->bus, sub_topic, &co);
    if (rc < 0)
        return bench_fail(msg, "evb_consumer_open", rc);
    evb_producer_options po = { .block_ms = -1,
                                .flags = cf->exclusive ? EVB_PRODUCER_EXCLUSIVE : 0 };
    rc = evb_producer_open(&e->p, e->bus, pub_topic, &po);
    if (rc < 0)
        return bench_fail(msg, "evb_producer_open", rc);
    return 0;
}

static void close_ends(ends *e)
{
    evb_consumer_close(e->c);
    evb_producer_close(e->p);
    evb_bus_close(e->bus);
}

static int evb_a(const config *cf, ctl *c, const char *bus_path, const char *ping,
                 const char *pong, uint64_t *rtt)
{
    ends e;
    if (open_ends(cf, &e, bus_path, ping, pong, c->a_msg))
        return 1;
    if (wait_flag(&c->b_ready, 1, 10000000000ull)) {
        snprintf(c->a_msg, 256, "B never became ready");
        return 1;
    }
    unsigned char *buf = aligned_alloc(64, cf->size < 64 ? 64 : cf->size);
    poll_buf pb = { aligned_alloc(64, cf->size < 64 ? 64 : cf->size), cf->size, 0 };
    if (!buf || !pb.buf)
        return bench_fail(c->a_msg, "alloc", -ENOMEM);
    fill_pattern(buf, cf->size, 3);
    evb_msg m = { .value = buf, .value_len = (uint32_t)cf->size, .partition = 0 };
    uint64_t total = cf->warmup + cf->samples;
    int err = 0;
    for (uint64_t i = 0; i < total && !err; i++) {
        store64(buf, i);
        uint64_t t0 = now_ns();
        int rc = evb_publish(e.p, &m);
        if (rc < 0) {
            err = bench_fail(c->a_msg, "evb_publish(ping)", rc);
            break;
        }
        const void *v;
        uint32_t len;
        rc = recv_one(cf, e.c, &pb, &v, &len);
        uint64_t t1 = now_ns();
        if (rc < 0) {
            err = bench_fail(c->a_msg, "receive(pong)", rc);
            break;
        }
        if (len != cf->size || load64(v) != i) {
            c->bad++;
            snprintf(c->a_msg, 256, "round trip %" PRIu64 ": got len %u seq %" PRIu64, i, len,
                     len >= 8 ? load64(v) : 0);
            err = 1;
        }
        if (i >= cf->warmup)
            rtt[i - cf->warmup] = t1 - t0;
    }
    store64(buf, SEQ_STOP);
    if (evb_publish(e.p, &m) < 0 && !err)
        err = bench_fail(c->a_msg, "evb_publish(stop)", -EIO);
    free(buf);
    free(pb.buf);
    close_ends(&e);
    return err;
}

static int evb_b(const config *cf, ctl *c, const char *bus_path, const char *ping,
                 const char *pong)
{
    ends e;
    if (open_ends(cf, &e, bus_path, pong, ping, c->b_msg))
        return 1;
    poll_buf pb = { aligned_alloc(64, cf->size < 64 ? 64 : cf->size), cf->size, 0 };
    if (!pb.buf)
        return bench_fail(c->b_msg, "alloc", -ENOMEM);
    atomic_store_explicit(&c->b_ready, 1, memory_order_release);
    int err = 0;
    for (;;) {
        const void *v;
        uint32_t len;
        int rc = recv_one(cf, e.c, &pb, &v, &len);
        if (rc < 0) {
            err = bench_fail(c->b_msg, "receive(ping)", rc);
            break;
        }
        if (len >= 8 && load64(v) == SEQ_STOP)
            break;
        /* echo the value: V points into the ping ring (or pb), valid
         * until the next call on the consumer */
        evb_msg m = { .value = v, .value_len = len, .partition = 0 };
        rc = evb_publish(e.p, &m);
        if (rc < 0) {
            err = bench_fail(c->b_msg, "evb_publish(pong)", rc);
            break;
        }
    }
    free(pb.buf);
    close_ends(&e);
    return err;
}

/* ---- one run ------------------------------------------------------- */

typedef struct pct {
    double p50, p99, p999, max, mean;
} pct;

static pct percentiles(uint64_t *v, uint64_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    pct p;
    double sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += (double)v[i];
    p.p50 = (double)v[n * 50 / 100];
    p.p99 = (double)v[n * 99 / 100];
    p.p999 = (double)v[n * 999 / 1000];
    p.max = (double)v[n - 1];
    p.mean = sum / (double)n;
    return p;
}

static int run_once(const config *cf, enum impl impl, evb_bus *bus, const char *bus_path,
                    int run_no, pct *out, char *why)
{
    ctl *c = shared_alloc(sizeof(ctl));
    size_t rtt_bytes = cf->samples * sizeof(uint64_t);
    uint64_t *rtt = shared_alloc(rtt_bytes);
    char ping[EVB_NAME_MAX + 1], pong[EVB_NAME_MAX + 1];
    snprintf(ping, sizeof(ping), "ping-%d", run_no);
    snprintf(pong, sizeof(pong), "pong-%d", run_no);
    int ok = 0;
    if (impl == IMPL_EVBUS) {
        evb_topic_config tc = {
            .partitions = 1,
            .ring_bytes = cf->ring_bytes,
        };
        int rc = evb_topic_create(bus, ping, &tc);
        if (rc == 0)
            rc = evb_topic_create(bus, pong, &tc);
        if (rc < 0) {
            snprintf(why, 600, "evb_topic_create: %s %s", evb_strerror(rc), evb_last_error());
            goto out;
        }
    }
    fflush(NULL);
    pid_t b = fork();
    if (b == 0) {
        int e = pin_to_cpu(cf->cpu_b) ? 1
              : impl == IMPL_EVBUS ? evb_b(cf, c, bus_path, ping, pong)
                                   : cl_b(c);
        c->b_err = e;
        _exit(e);
    }
    pid_t a = -1;
    int as = -9, bs = 0;
    if (b > 0 && wait_flag(&c->b_ready, 1, 10000000000ull) == 0) {
        a = fork();
        if (a == 0) {
            int e = pin_to_cpu(cf->cpu_a) ? 1
                  : impl == IMPL_EVBUS ? evb_a(cf, c, bus_path, ping, pong, rtt)
                                       : cl_a(cf, c, rtt);
            c->a_err = e;
            _exit(e);
        }
    }
    /* generous: 10 us per round trip on average would already be broken */
    uint64_t deadline = now_ns() + 30000000000ull + (cf->samples + cf->warmup) * 10000u;
    if (a > 0)
        as = wait_child(a, deadline);
    if (as != 0 && b > 0)
        kill(b, SIGKILL);
    if (b > 0)
        bs = wait_child(b, deadline);
    if (as != 0 || bs != 0) {
        snprintf(why, 600, "A status %d%s%s, B status %d%s%s", as, c->a_msg[0] ? ": " : "",
                 c->a_msg, bs, c->b_msg[0] ? ": " : "", c->b_msg);
    } else {
        *out = percentiles(rtt, cf->samples);
        ok = 1;
    }
    if (impl == IMPL_EVBUS) {
        evb_topic_delete(bus, ping);
        evb_topic_delete(bus, pong);
    }
out:
    munmap(rtt, rtt_bytes);
    munmap(c, sizeof(ctl));
    return ok;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_pingpong [options]\n"
               "  --samples N       timed round trips per run (default 1000000)\n"
               "  --warmup N        untimed round trips first (default 20000)\n"
               "  --runs N          (default 5)\n"
               "  --cpu-a N         (default 0)\n"
               "  --cpu-b N         (default 1)\n"
               "  --size N          value bytes, 8..4096 (default 64)\n"
               "  --ring-bytes SIZE ring of each topic (default 1M)\n"
               "  --impl LIST       cacheline,evbus (default both)\n"
               "  --poll            read with an evb_consumer_poll loop, not evb_consumer_next\n"
               "  --exclusive       each side's producer is its topic's only one\n"
               "  --shm-dir DIR     where the temporary bus is made (default /dev/shm)\n"
               "  --json            also print one JSON line per result\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    print_cmdline(stdout, argc, argv);
    config cf = {
        .samples = 1000000,
        .warmup = 20000,
        .runs = 5,
        .cpu_a = 0,
        .cpu_b = 1,
        .size = 64,
        .ring_bytes = 1u << 20,
        .impls = (1u << IMPL_COUNT) - 1,
        .shm_dir = "/dev/shm",
    };
    static const struct option opts[] = {
        { "samples", required_argument, 0, 'n' },
        { "warmup", required_argument, 0, 'w' },
        { "runs", required_argument, 0, 'r' },
        { "cpu-a", required_argument, 0, 'a' },
        { "cpu-b", required_argument, 0, 'b' },
        { "size", required_argument, 0, 's' },
        { "ring-bytes", required_argument, 0, 'R' },
        { "impl", required_argument, 0, 'i' },
        { "poll", no_argument, 0, 'p' },
        { "exclusive", no_argument, 0, 'X' },
        { "shm-dir", required_argument, 0, 'D' },
        { "json", no_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'n': cf.samples = parse_size(optarg); break;
        case 'w': cf.warmup = strtoull(optarg, NULL, 0); break;
        case 'r': cf.runs = atoi(optarg); break;
        case 'a': cf.cpu_a = atoi(optarg); break;
        case 'b': cf.cpu_b = atoi(optarg); break;
        case 's': cf.size = (size_t)parse_size(optarg); break;
        case 'R': cf.ring_bytes = parse_size(optarg); break;
        case 'i':
            cf.impls = 0;
            if (strstr(optarg, "cacheline"))
                cf.impls |= 1u << IMPL_CACHELINE;
            if (strstr(optarg, "evbus"))
                cf.impls |= 1u << IMPL_EVBUS;
            break;
        case 'p': cf.poll = 1; break;
        case 'X': cf.exclusive = 1; break;
        case 'D': cf.shm_dir = optarg; break;
        case 'j': cf.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (cf.samples < 1000 || cf.runs < 1 || cf.runs > MAX_RUNS || cf.size < 8 ||
        cf.size > 4096 || !cf.impls) {
        usage(stderr);
        return 2;
    }
    print_env_header(stdout, "bench_pingpong");
    printf("# A cpu %d, B cpu %d: %s; value %zu B; %" PRIu64 " samples after %" PRIu64
           " warm-up round trips; %d runs; reader %s; timer %.1f ns per clock_gettime\n",
           cf.cpu_a, cf.cpu_b, topology_name(cf.cpu_a, cf.cpu_b), cf.size, cf.samples, cf.warmup,
           cf.runs, cf.poll ? "evb_consumer_poll loop" : "evb_consumer_next(-1)",
           timer_overhead_ns());
    fflush(stdout);

    char bus_path[4096];
    if (bench_bus_dir(bus_path, sizeof(bus_path), cf.shm_dir))
        return 1;
    evb_bus *bus = NULL;
    if (cf.impls & (1u << IMPL_EVBUS)) {
        int rc = evb_bus_open(&bus, bus_path, NULL);
        if (rc < 0) {
            fprintf(stderr, "evb_bus_open(%s): %s %s\n", bus_path, evb_strerror(rc),
                    evb_last_error());
            rm_rf(bus_path);
            return 1;
        }
    }

    static pct res[IMPL_COUNT][MAX_RUNS];
    static int has[IMPL_COUNT][MAX_RUNS];
    int failures = 0;
    printf("\n%-10s %4s %9s %9s %9s %10s %9s   (ns)\n", "impl", "run", "p50", "p99", "p99.9",
           "max", "mean");
    for (int run = 0; run < cf.runs; run++) {
        for (int im = 0; im < IMPL_COUNT; im++) {
            if (!(cf.impls & (1u << im)))
                continue;
            char why[600] = "";
            pct p;
            if (!run_once(&cf, (enum impl)im, bus, bus_path, run, &p, why)) {
                failures++;
                printf("# FAIL %s run %d: %s\n", impl_name[im], run + 1, why);
                fflush(stdout);
                continue;
            }
            res[im][run] = p;
            has[im][run] = 1;
            printf("%-10s %4d %9.0f %9.0f %9.0f %10.0f %9.1f\n", impl_name[im], run + 1, p.p50,
                   p.p99, p.p999, p.max, p.mean);
            fflush(stdout);
        }
    }

    printf("\nmedian over runs (ns); ratio = median over runs of evbus / cacheline of the same run\n");
    printf("%-10s %4s %9s %9s %9s %10s %9s\n", "impl", "runs", "p50", "p99", "p99.9",
           "max(max)", "mean");
    stat3 s[IMPL_COUNT][5];
    int nres[IMPL_COUNT] = { 0 };
    for (int im = 0; im < IMPL_COUNT; im++) {
        double v[5][MAX_RUNS];
        int n = 0;
        for (int r = 0; r < cf.runs; r++) {
            if (!has[im][r])
                continue;
            v[0][n] = res[im][r].p50;
            v[1][n] = res[im][r].p99;
            v[2][n] = res[im][r].p999;
            v[3][n] = res[im][r].max;
            v[4][n] = res[im][r].mean;
            n++;
        }
        nres[im] = n;
        for (int k = 0; k < 5; k++)
            s[im][k] = stat3_of(v[k], n);
        if (!(cf.impls & (1u << im)))
            continue;
        if (!n) {
            printf("%-10s %4d FAILED\n", impl_name[im], n);
            continue;
        }
        printf("%-10s %4d %9.0f %9.0f %9.0f %10.0f %9.1f\n", impl_name[im], n, s[im][0].med,
               s[im][1].med, s[im][2].med, s[im][3].max, s[im][4].med);
    }
    /* paired ratios: evbus run r over cacheline run r */
    stat3 q[5];
    int nq = 0;
    {
        double v[5][MAX_RUNS];
        for (int r = 0; r < cf.runs; r++) {
            if (!has[IMPL_EVBUS][r] || !has[IMPL_CACHELINE][r])
                continue;
            const pct *e = &res[IMPL_EVBUS][r], *c = &res[IMPL_CACHELINE][r];
            v[0][nq] = e->p50 / c->p50;
            v[1][nq] = e->p99 / c->p99;
            v[2][nq] = e->p999 / c->p999;
            v[3][nq] = e->max / c->max;
            v[4][nq] = e->mean / c->mean;
            nq++;
        }
        for (int k = 0; k < 5; k++)
            q[k] = stat3_of(v[k], nq);
    }
    if (nq) {
        printf("%-10s %4d %9.2f %9.2f %9.2f %10.2f %9.2f\n", "ratio", nq, q[0].med, q[1].med,
               q[2].med, q[3].med, q[4].med);
        printf("# p50 ratio over runs: min %.2f max %.2f; cacheline p50 over runs: %.0f..%.0f ns\n",
               q[0].min, q[0].max, s[IMPL_CACHELINE][0].min, s[IMPL_CACHELINE][0].max);
    }
    if (cf.json) {
        for (int im = 0; im < IMPL_COUNT; im++) {
            if (!nres[im])
                continue;
            printf("{\"bench\":\"pingpong\",\"impl\":\"%s\",\"size\":%zu,\"samples\":%" PRIu64
                   ",\"runs\":%d,\"cpu_a\":%d,\"cpu_b\":%d,\"topology\":\"%s\",\"reader\":\"%s\","
                   "\"rtt_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p99_9\":%.0f,\"max\":%.0f,"
                   "\"mean\":%.1f},\"p50_min\":%.0f,\"p50_max\":%.0f",
                   impl_name[im], cf.size, cf.samples, nres[im], cf.cpu_a, cf.cpu_b,
                   topology_name(cf.cpu_a, cf.cpu_b), cf.poll ? "poll" : "next", s[im][0].med,
                   s[im][1].med, s[im][2].med, s[im][3].max, s[im][4].med, s[im][0].min,
                   s[im][0].max);
            if (im == IMPL_EVBUS && nq)
                printf(",\"ratio_vs_cacheline\":{\"p50\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,"
                       "\"p50_min\":%.3f,\"p50_max\":%.3f}",
                       q[0].med, q[1].med, q[2].med, q[0].min, q[0].max);
            printf("}\n");
        }
    }
    if (failures)
        printf("# %d run(s) FAILED\n", failures);
    evb_bus_close(bus);
    rm_rf(bus_path);
    return failures ? 1 : 0;
}
