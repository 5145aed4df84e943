/*
 * aeron_tput.c - Aeron IPC throughput, 1 producer process -> 1 consumer process.
 *
 * Written for the evbus/Aeron side-by-side measurement of 2026-12-05
 * (perf/results/20261205T-aeron-side-by-side). It is NOT part of evbus: it is
 * built outside the repo (/work/aeron-bench) and links against Aeron's C
 * client (libaeron_static.a) built from public source (real-logic/aeron,
 * /work/aeron-src, build /work/aeron-build). It includes evbus's
 * perf/bench_util.h read-only, so that the value pattern, the consumer's
 * per-value work (sum64 of every byte, order check), the cache-line probe and
 * the clock are the very same code bench_throughput uses.
 *
 * Structure follows bench_throughput's run_pair() and the Aeron samples
 * streaming_publisher.c / rate_subscriber.c:
 *   consumer: forked, pinned to --consumer-cpu, own aeron client,
 *             aeron_subscription_poll(sub, handler, .., 256) in a busy-spin
 *             loop (pause when 0 fragments, as evbus's poll reader and as
 *             aeron_idle_strategy_busy_spinning_idle do); the handler is the
 *             raw fragment handler (64 B never fragments), running
 *             consume_value() identical to bench_throughput's.
 *   producer: forked, pinned to --producer-cpu, own aeron client, one of
 *             offer   aeron_publication_offer            (concurrent publication)
 *             claim   aeron_publication_try_claim+commit (concurrent publication)
 *             xoffer  aeron_exclusive_publication_offer
 *             xclaim  aeron_exclusive_publication_try_claim+commit
 *             per message; on back pressure / admin action it retries with a
 *             busy-spin idle (as streaming_publisher.c), counting retries.
 *             Word 0 = sequence, word 1 = end flag, words 2.. = fill_pattern.
 *   timing:   as bench_throughput: the consumer times from the first timed
 *             message (sequence == warm-up count) to the end message; only
 *             successfully offered messages exist, so the count is exact.
 */
#include "bench_util.h"
#include "aeronc.h"
#include "aeron_agent.h"

#define FLAG_END 1ull

typedef struct ctl {
    _Atomic uint32_t cons_ready, cons_done;
    uint64_t warm;
    uint64_t t0, t1, timed, received, bad_seq, bad_sum, bad_len;
    uint64_t bp, admin, offers_ok;
    uint64_t stall_ns, stall_max_ns, stalls; /* producer time spent retrying (from the 1st failure) */
    double drv_t0_ms, drv_t1_ms;             /* driver cpu time at the consumer's t0 and t1 */
    int driver_pid;
    int64_t term_length;
    char prod_msg[256], cons_msg[256];
} ctl;

static double proc_cpu_ms(int pid);

typedef struct cons_state {
    ctl *c;
    size_t size;
    uint64_t pattern_sum, warm, expect, t0, t1, timed, received, bad_seq, bad_sum, bad_len;
    int done;
} cons_state;

static inline void consume_value(cons_state *s, const void *v, size_t len)
{
    if (len != s->size) {
        s->bad_len++;
        s->done = 1;
        return;
    }
    uint64_t sum = sum64(v, len);
    uint64_t seq = load64(v);
    uint64_t flag = load64((const char *)v + 8);
    if (sum != s->pattern_sum + seq + flag)
        s->bad_sum++;
    if (seq != s->expect)
        s->bad_seq++;
    s->expect = seq + 1;
    s->received++;
    if (seq == s->warm && !s->t0) {
        s->c->drv_t0_ms = proc_cpu_ms(s->c->driver_pid);
        s->t0 = now_ns();
    }
    if (flag & FLAG_END) {
        s->t1 = now_ns();
        s->c->drv_t1_ms = proc_cpu_ms(s->c->driver_pid);
        s->timed += seq >= s->warm ? seq - s->warm : 0;
        s->done = 1;
    }
}

static void on_fragment(void *clientd, const uint8_t *buffer, size_t length, aeron_header_t *header)
{
    (void)header;
    consume_value(clientd, buffer, length);
}

enum mode { M_OFFER, M_CLAIM, M_XOFFER, M_XCLAIM, M_COUNT };
static const char *const mode_name[M_COUNT] = { "offer", "claim", "xoffer", "xclaim" };
static const char *const mode_label[M_COUNT] = { "aeron-offer", "aeron-claim", "aeron-xoffer",
                                                 "aeron-xclaim" };

typedef struct config {
    const char *dir, *channel;
    size_t size;
    uint64_t duration_ms, warm;
    int prod_cpu, cons_cpu, runs, fragment_limit;
    unsigned modes;
    int driver_pid;
} config;

static int client_open(const config *cf, aeron_context_t **ctx, aeron_t **a, char *msg)
{
    if (aeron_context_init(ctx) < 0 || aeron_context_set_dir(*ctx, cf->dir) < 0 ||
        aeron_context_set_pre_touch_mapped_memory(*ctx, true) < 0 || aeron_init(a, *ctx) < 0 ||
        aeron_start(*a) < 0) {
        snprintf(msg, 256, "aeron client: %s", aeron_errmsg());
        return 1;
    }
    return 0;
}

static int consumer_main(const config *cf, int32_t stream, uint64_t pattern_sum, ctl *c)
{
    aeron_context_t *ctx = NULL;
    aeron_t *a = NULL;
    if (client_open(cf, &ctx, &a, c->cons_msg))
        return 1;
    aeron_async_add_subscription_t *as = NULL;
    aeron_subscription_t *sub = NULL;
    if (aeron_async_add_subscription(&as, a, cf->channel, stream, NULL, NULL, NULL, NULL) < 0) {
        snprintf(c->cons_msg, 256, "add_subscription: %s", aeron_errmsg());
        return 1;
    }
    while (!sub) {
        if (aeron_async_add_subscription_poll(&sub, as) < 0) {
            snprintf(c->cons_msg, 256, "add_subscription_poll: %s", aeron_errmsg());
            return 1;
        }
        sched_yield();
    }
    cons_state s = { .c = c, .size = cf->size, .pattern_sum = pattern_sum };
    atomic_store_explicit(&c->cons_ready, 1, memory_order_release);
    int have_warm = 0;
    while (!s.done) {
        if (!have_warm) { /* the producer publishes the warm-up count before its first offer */
            uint64_t w = __atomic_load_n(&c->warm, __ATOMIC_ACQUIRE);
            if (w) {
                s.warm = w;
                have_warm = 1;
            }
        }
        int n = aeron_subscription_poll(sub, on_fragment, &s, (size_t)cf->fragment_limit);
        if (n < 0) {
            snprintf(c->cons_msg, 256, "subscription_poll: %s", aeron_errmsg());
            return 1;
        }
        if (n == 0)
            cpu_relax();
    }
    c->t0 = s.t0;
    c->t1 = s.t1;
    c->timed = s.timed;
    c->received = s.received;
    c->bad_seq = s.bad_seq;
    c->bad_sum = s.bad_sum;
    c->bad_len = s.bad_len;
    atomic_store_explicit(&c->cons_done, 1, memory_order_release);
    aeron_subscription_close(sub, NULL, NULL);
    aeron_close(a);
    aeron_context_close(ctx);
    return 0;
}

/* one message; returns 0, or 1 on a hard error */
static inline int send_one(enum mode m, aeron_publication_t *p, aeron_exclusive_publication_t *x,
                           const unsigned char *buf, size_t size, ctl *c)
{
    uint64_t t_fail = 0;
    for (;;) {
        int64_t r;
        aeron_buffer_claim_t cl;
        switch (m) {
        case M_OFFER: r = aeron_publication_offer(p, buf, size, NULL, NULL); break;
        case M_XOFFER: r = aeron_exclusive_publication_offer(x, buf, size, NULL, NULL); break;
        case M_CLAIM: r = aeron_publication_try_claim(p, size, &cl); break;
        default: r = aeron_exclusive_publication_try_claim(x, size, &cl); break;
        }
        if (r > 0) {
            if (m == M_CLAIM || m == M_XCLAIM) {
                memcpy(cl.data, buf, size);
                aeron_buffer_claim_commit(&cl);
            }
            if (t_fail) {
                uint64_t d = now_ns() - t_fail;
                c->stall_ns += d;
                c->stalls++;
                if (d > c->stall_max_ns)
                    c->stall_max_ns = d;
            }
            return 0;
        }
        if (r == AERON_PUBLICATION_BACK_PRESSURED)
            c->bp++;
        else if (r == AERON_PUBLICATION_ADMIN_ACTION)
            c->admin++;
        else {
            snprintf(c->prod_msg, 256, "offer/claim returned %" PRId64 ": %s", r, aeron_errmsg());
            return 1;
        }
        if (!t_fail)
            t_fail = now_ns();
        aeron_idle_strategy_busy_spinning_idle(NULL, 0);
    }
}

static int producer_main(const config *cf, enum mode m, int32_t stream, ctl *c)
{
    aeron_context_t *ctx = NULL;
    aeron_t *a = NULL;
    if (client_open(cf, &ctx, &a, c->prod_msg))
        return 1;
    aeron_publication_t *p = NULL;
    aeron_exclusive_publication_t *x = NULL;
    int64_t term_length = 0;
    if (m == M_OFFER || m == M_CLAIM) {
        aeron_async_add_publication_t *ap = NULL;
        if (aeron_async_add_publication(&ap, a, cf->channel, stream) < 0)
            goto fail;
        while (!p) {
            if (aeron_async_add_publication_poll(&p, ap) < 0)
                goto fail;
            sched_yield();
        }
        while (!aeron_publication_is_connected(p))
            sched_yield();
        aeron_publication_constants_t k;
        aeron_publication_constants(p, &k);
        term_length = (int64_t)k.term_buffer_length;
    } else {
        aeron_async_add_exclusive_publication_t *ap = NULL;
        if (aeron_async_add_exclusive_publication(&ap, a, cf->channel, stream) < 0)
            goto fail;
        while (!x) {
            if (aeron_async_add_exclusive_publication_poll(&x, ap) < 0)
                goto fail;
            sched_yield();
        }
        while (!aeron_exclusive_publication_is_connected(x))
            sched_yield();
        aeron_publication_constants_t k;
        aeron_exclusive_publication_constants(x, &k);
        term_length = (int64_t)k.term_buffer_length;
    }
    c->term_length = term_length;
    /* warm-up: --warm, or two laps of the whole log (3 terms), frames of
     * 32 B header + value, 32 B aligned - bench_throughput warms two ring laps */
    uint64_t frame = (32 + cf->size + 31) / 32 * 32;
    uint64_t warm = cf->warm ? cf->warm : 2 * 3 * (uint64_t)term_length / frame;
    __atomic_store_n(&c->warm, warm, __ATOMIC_RELEASE);

    unsigned char *buf = aligned_alloc(64, cf->size);
    fill_pattern(buf + 16, cf->size - 16, 1);
    uint64_t seq = 0, t_stop = 0;
    int err = 0;
    for (;;) {
        int last = 0;
        uint64_t k = 32;
        if (seq >= warm) {
            uint64_t t = now_ns();
            if (!t_stop)
                t_stop = t + cf->duration_ms * 1000000u;
            else if (t >= t_stop)
                last = 1;
        } else if (warm - seq < k) {
            k = warm - seq;
        }
        if (last)
            k = 1;
        for (uint64_t i = 0; i < k && !err; i++) {
            store64(buf, seq);
            store64(buf + 8, last ? FLAG_END : 0);
            err = send_one(m, p, x, buf, cf->size, c);
            seq++;
        }
        if (err || last)
            break;
    }
    c->offers_ok = seq;
    if (seq < warm + 1000) /* not expected; keeps the stall numbers honest */
        fprintf(stderr, "  note: only %" PRIu64 " messages\n", seq);
    /* keep the publication until the consumer has read the end message */
    wait_flag(&c->cons_done, 1, 30000000000ull);
    if (p)
        aeron_publication_close(p, NULL, NULL);
    if (x)
        aeron_exclusive_publication_close(x, NULL, NULL);
    aeron_close(a);
    aeron_context_close(ctx);
    free(buf);
    return err;
fail:
    snprintf(c->prod_msg, 256, "add publication: %s", aeron_errmsg());
    return 1;
}

static double proc_cpu_ms(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    char *p = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int run_one(const config *cf, enum mode m, int run, int32_t stream, double *rate)
{
    ctl *c = shared_alloc(sizeof(ctl));
    c->driver_pid = cf->driver_pid;
    unsigned char *pattern = malloc(cf->size);
    fill_pattern(pattern + 16, cf->size - 16, 1);
    memset(pattern, 0, 16);
    uint64_t pattern_sum = sum64(pattern, cf->size);
    free(pattern);
    double d0 = proc_cpu_ms(cf->driver_pid);
    uint64_t w0 = now_ns();
    fflush(NULL);
    pid_t cons = fork();
    if (cons == 0) {
        int e = pin_to_cpu(cf->cons_cpu) ? 1 : consumer_main(cf, stream, pattern_sum, c);
        _exit(e);
    }
    pid_t prod = -1;
    int ps = 0, cs = 0;
    if (cons < 0 || wait_flag(&c->cons_ready, 1, 10000000000ull) != 0) {
        fprintf(stderr, "consumer did not start: %s\n", c->cons_msg);
        if (cons > 0)
            kill(cons, SIGKILL);
        ps = -1;
    } else {
        prod = fork();
        if (prod == 0) {
            int e = pin_to_cpu(cf->prod_cpu) ? 1 : producer_main(cf, m, stream, c);
            _exit(e);
        }
    }
    uint64_t deadline = now_ns() + cf->duration_ms * 1000000u + 60000000000ull;
    if (prod > 0)
        ps = wait_child(prod, deadline);
    if (ps != 0 && cons > 0)
        kill(cons, SIGKILL);
    if (cons > 0)
        cs = wait_child(cons, deadline);
    double wall_ms = (double)(now_ns() - w0) / 1e6;
    double d1 = proc_cpu_ms(cf->driver_pid);
    int ok = 0;
    if (ps || cs) {
        printf("# FAIL %s run %d: producer %d %s consumer %d %s\n", mode_name[m], run, ps,
               c->prod_msg, cs, c->cons_msg);
    } else if (c->bad_seq || c->bad_sum || c->bad_len || c->received != c->offers_ok) {
        printf("# FAIL %s run %d: verification: %" PRIu64 " out of order, %" PRIu64
               " bad sums, %" PRIu64 " bad len, received %" PRIu64 " of %" PRIu64 "\n",
               mode_name[m], run, c->bad_seq, c->bad_sum, c->bad_len, c->received, c->offers_ok);
    } else if (c->t1 <= c->t0 || !c->timed) {
        printf("# FAIL %s run %d: no timed events\n", mode_name[m], run);
    } else {
        ok = 1;
        *rate = (double)c->timed / ((double)(c->t1 - c->t0) / 1e9);
        double timed_ms = (double)(c->t1 - c->t0) / 1e6;
        fprintf(stderr,
                "  size %zu run %d %-12s %.3f Mev/s %.1f MB/s  (timed %" PRIu64 " msgs in %.1f ms; "
                "warm-up %" PRIu64 "; back-pressured retries %" PRIu64 ", admin-action retries %" PRIu64
                "; producer stalled %" PRIu64 " times, %.1f ms in all, longest %.3f ms (whole run incl. warm-up); "
                "term %" PRId64 " B; driver cpu %.0f ms in the timed span, %.0f ms of %.0f ms wall in all)\n",
                cf->size, run, mode_label[m], *rate / 1e6, *rate * (double)cf->size / 1e6, c->timed,
                timed_ms, c->warm, c->bp, c->admin, c->stalls, (double)c->stall_ns / 1e6,
                (double)c->stall_max_ns / 1e6, c->term_length,
                c->drv_t0_ms >= 0 && c->drv_t1_ms >= 0 ? c->drv_t1_ms - c->drv_t0_ms : -1.0,
                d0 >= 0 && d1 >= 0 ? d1 - d0 : -1.0, wall_ms);
    }
    munmap(c, sizeof(ctl));
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    config cf = { .dir = NULL, .channel = "aeron:ipc", .size = 64, .duration_ms = 400, .warm = 0,
                  .prod_cpu = 0, .cons_cpu = 1, .runs = 1, .fragment_limit = 256,
                  .modes = (1u << M_COUNT) - 1, .driver_pid = 0 };
    static const struct option lo[] = {
        { "dir", required_argument, 0, 'd' },        { "channel", required_argument, 0, 'c' },
        { "size", required_argument, 0, 's' },       { "duration-ms", required_argument, 0, 't' },
        { "warm", required_argument, 0, 'w' },       { "producer-cpu", required_argument, 0, 'P' },
        { "consumer-cpu", required_argument, 0, 'C' }, { "runs", required_argument, 0, 'r' },
        { "fragment-limit", required_argument, 0, 'f' }, { "modes", required_argument, 0, 'm' },
        { "driver-pid", required_argument, 0, 'D' }, { 0, 0, 0, 0 }
    };
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'd': cf.dir = optarg; break;
        case 'c': cf.channel = optarg; break;
        case 's': cf.size = strtoul(optarg, NULL, 0); break;
        case 't': cf.duration_ms = strtoull(optarg, NULL, 0); break;
        case 'w': cf.warm = strtoull(optarg, NULL, 0); break;
        case 'P': cf.prod_cpu = atoi(optarg); break;
        case 'C': cf.cons_cpu = atoi(optarg); break;
        case 'r': cf.runs = atoi(optarg); break;
        case 'f': cf.fragment_limit = atoi(optarg); break;
        case 'D': cf.driver_pid = atoi(optarg); break;
        case 'm': {
            cf.modes = 0;
            char *s = strdup(optarg), *t, *save = NULL;
            for (t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int k;
                for (k = 0; k < M_COUNT && strcmp(t, mode_name[k]); k++)
                    ;
                if (k == M_COUNT) {
                    fprintf(stderr, "bad mode %s (offer,claim,xoffer,xclaim)\n", t);
                    return 2;
                }
                cf.modes |= 1u << k;
            }
            free(s);
            break;
        }
        default:
            fprintf(stderr, "usage: aeron_tput [--dir D] [--channel aeron:ipc] [--size 64] "
                            "[--duration-ms 400] [--warm N] [--runs N] [--fragment-limit 256] "
                            "[--modes offer,claim,xoffer,xclaim] [--driver-pid PID]\n");
            return 2;
        }
    }
    if (cf.size < 16 || cf.size % 8) {
        fprintf(stderr, "--size: multiple of 8, >= 16\n");
        return 2;
    }
    print_cmdline(stdout, argc, argv);
    printf("# aeron %s (git %s); channel %s; producer cpu %d, consumer cpu %d; size %zu; "
           "fragment limit %d\n",
           aeron_version_full(), aeron_version_gitsha(), cf.channel, cf.prod_cpu, cf.cons_cpu,
           cf.size, cf.fragment_limit);
    fflush(stdout);
    int32_t stream = 3000 + (int32_t)(getpid() % 1000) * 16;
    int fails = 0;
    for (int run = 1; run <= cf.runs; run++) {
        /* the VM moves the vCPUs between near and far placements: a probe
         * before every mode and one after the last, so each result can be
         * classified by the placement it ran in */
        double probe = cacheline_probe_ns(cf.prod_cpu, cf.cons_cpu, 20000);
        for (int m = 0; m < M_COUNT; m++) {
            if (!(cf.modes & (1u << m)))
                continue;
            fprintf(stderr, "  size %zu run %d cache-line RTT probe %.0f ns\n", cf.size, run, probe);
            double rate = 0, before = probe;
            int f = run_one(&cf, (enum mode)m, run, stream++, &rate);
            fails += f;
            probe = cacheline_probe_ns(cf.prod_cpu, cf.cons_cpu, 20000);
            if (!f)
                printf("result %s run %d %.6g ev/s probe_before %.0f probe_after %.0f\n",
                       mode_label[m], run, rate, before, probe);
            fflush(NULL);
        }
        fprintf(stderr, "  size %zu run %d cache-line RTT probe %.0f ns (after the last)\n", cf.size,
                run, probe);
    }
    return fails ? 1 : 0;
}
