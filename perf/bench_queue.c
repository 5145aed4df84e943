/*
 * bench_queue.c - a queue group with per-event acknowledgement: events/s
 * acknowledged in total by 1, 2 and 4 member processes, against a named
 * consumer reading the same events in the same run (the baseline), from
 * a topic filled beforehand. Also the cost of the queue's bookkeeping per
 * event (next + ack, sampled every 16th event): p50 and p99.
 *
 *   bench_queue [--runs N] [--events N] [--value BYTES] [--partitions P]
 *               [--members 1,2,4] [--durable ROOT]
 *
 * --durable ROOT: the topic is ASYNC durable, its log under ROOT (a
 * perfdata-XXXXXX made there and removed at the end): a durable queue's
 * acks and the group file in its data directory.
 */
#include "bench_util.h"

struct board {
    _Atomic uint64_t acked;
    _Atomic uint32_t ready;
    _Atomic uint32_t go;
    _Atomic uint64_t samples_n;
    uint64_t samples[1 << 20];
};

static const char *g_dir;
static evb_bus_options g_bo; /* .data_dir with --durable */

static int member(struct board *b, const char *group, uint64_t total)
{
    evb_bus *bus;
    if (evb_bus_open(&bus, g_dir, &g_bo))
        return 1;
    evb_consumer_options co = {.kind = EVB_QUEUE_MEMBER, .name = group,
                               .idle = EVB_IDLE_SPIN, .max_in_flight = 4096};
    evb_consumer *c;
    if (evb_consumer_open(&c, bus, "q", &co)) {
        fprintf(stderr, "member: %s\n", evb_last_error());
        return 1;
    }
    atomic_fetch_add(&b->ready, 1);
    while (!atomic_load(&b->go))
        cpu_relax();
    uint64_t k = 0, sum = 0;
    while (atomic_load_explicit(&b->acked, memory_order_relaxed) < total) {
        evb_event ev;
        uint64_t t0 = (++k & 15) == 0 ? now_ns() : 0;
        int rc = evb_consumer_next(c, &ev, 0);
        if (rc == -EAGAIN)
            continue;
        if (rc) {
            fprintf(stderr, "next: %s\n", evb_last_error());
            return 1;
        }
        sum += load64(ev.value);
        if ((rc = evb_consumer_ack(c, &ev))) {
            fprintf(stderr, "ack: %s\n", evb_last_error());
            return 1;
        }
        if (t0) {
            uint64_t i = atomic_fetch_add_explicit(&b->samples_n, 1, memory_order_relaxed);
            if (i < (1u << 20))
                b->samples[i] = now_ns() - t0;
        }
        atomic_fetch_add_explicit(&b->acked, 1, memory_order_relaxed);
    }
    if (sum == 42)
        puts("");
    evb_consumer_close(c);
    evb_bus_close(bus);
    return 0;
}

/* Events/s of MEMBERS processes acknowledging TOTAL events; P50/P99 of
 * the sampled bookkeeping, ns. */
static double run_queue(int members, const char *group, uint64_t total, double *p50,
                        double *p99)
{
    struct board *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        exit(1);
    pid_t pid[8];
    for (int m = 0; m < members; m++)
        if ((pid[m] = fork()) == 0)
            _exit(member(b, group, total));
    while (atomic_load(&b->ready) < (uint32_t)members)
        sleep_ns(1000000);
    uint64_t t0 = now_ns();
    atomic_store(&b->go, 1);
    int bad = 0;
    for (int m = 0; m < members; m++) {
        int st;
        waitpid(pid[m], &st, 0);
        bad |= !WIFEXITED(st) || WEXITSTATUS(st);
    }
    uint64_t t1 = now_ns();
    if (bad) {
        fprintf(stderr, "a member failed\n");
        exit(1);
    }
    uint64_t n = atomic_load(&b->samples_n);
    if (n > (1u << 20))
        n = 1u << 20;
    qsort(b->samples, n, sizeof b->samples[0], cmp_u64);
    *p50 = n ? (double)b->samples[n / 2] : 0;
    *p99 = n ? (double)b->samples[n * 99 / 100] : 0;
    double rate = (double)atomic_load(&b->acked) * 1e9 / (double)(t1 - t0);
    munmap(b, sizeof *b);
    return rate;
}

static double run_named(const char *name, uint64_t total)
{
    evb_bus *bus;
    evb_bus_open(&bus, g_dir, &g_bo);
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = name, .start = EVB_START_EARLIEST,
                               .idle = EVB_IDLE_SPIN};
    evb_consumer *c;
    if (evb_consumer_open(&c, bus, "q", &co))
        exit(1);
    evb_event ev;
    uint64_t sum = 0, t0 = now_ns();
    for (uint64_t i = 0; i < total; i++) {
        if (evb_consumer_next(c, &ev, 1000))
            exit(1);
        sum += load64(ev.value);
    }
    uint64_t t1 = now_ns();
    if (sum == 42)
        puts("");
    evb_consumer_close(c);
    evb_bus_close(bus);
    return (double)total * 1e9 / (double)(t1 - t0);
}

int main(int argc, char **argv)
{
    struct prefill_opts po = {.runs = 5, .events = 300000, .value = 1024, .parts = 4};
    char members_arg[64] = "1,2,4";
    if (prefill_parse(argc, argv, &po, "members", members_arg, sizeof members_arg))
        return 2;
    int runs = po.runs;
    uint64_t events = po.events;
    int mlist[8], nm = 0;
    for (char *t = strtok(members_arg, ","); t && nm < 8; t = strtok(NULL, ","))
        if ((mlist[nm] = atoi(t)) >= 1 && mlist[nm] <= 8)
            nm++;
    char dir[] = "/dev/shm/evbus-bench-queue-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    g_dir = dir;
    g_bo.data_dir = po.data_dir;
    evb_bus *bus;
    if (evb_bus_open(&bus, dir, &g_bo) || prefill_topic(bus, "q", &po))
        return 1;
    printf("# bench_queue: %llu events of %u B in %u partitions, %d rounds; member "
           "processes spin; per-event ack; %s topic\n", (unsigned long long)events, po.value,
           po.parts, runs, po.data_dir ? "ASYNC durable" : "ring-only");
    printf("# round  members  named_ev_s  queue_acked_ev_s  ratio  p50_ns  p99_ns\n");
    for (int k = 0; k < nm; k++) {
        double *rq = calloc((size_t)runs, sizeof *rq), *rn = calloc((size_t)runs, sizeof *rn);
        double *ra = calloc((size_t)runs, sizeof *ra), *q50 = calloc((size_t)runs, sizeof *q50);
        double *q99 = calloc((size_t)runs, sizeof *q99);
        for (int r = 0; r < runs; r++) {
            char g[32], n[32];
            snprintf(g, sizeof g, "g%d_%d", mlist[k], r);
            snprintf(n, sizeof n, "c%d_%d", mlist[k], r);
            rn[r] = run_named(n, events);
            rq[r] = run_queue(mlist[k], g, events, &q50[r], &q99[r]);
            ra[r] = rq[r] / rn[r];
            printf("%7d  %7d  %10.0f  %16.0f  %5.3f  %6.0f  %6.0f\n", r, mlist[k], rn[r], rq[r],
                   ra[r], q50[r], q99[r]);
        }
        stat3 sq = stat3_of(rq, runs), sa = stat3_of(ra, runs), s50 = stat3_of(q50, runs),
              s99 = stat3_of(q99, runs);
        printf("members %d: median %.0f acked ev/s (min %.0f, max %.0f), %.3f of the named "
               "consumer's rate; next+ack p50 %.0f ns, p99 %.0f ns (medians of rounds)\n",
               mlist[k], sq.med, sq.min, sq.max, sa.med, s50.med, s99.med);
        free(rq), free(rn), free(ra), free(q50), free(q99);
    }
    evb_bus_close(bus);
    rm_rf(dir);
    if (po.data_dir)
        rm_rf(po.data_dir);
    return 0;
}
