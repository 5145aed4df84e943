/*
 * bench_block.c - a reader asleep on the futex must not cost the producer
 * a system call per event.
 *
 * The parent process is the producer; a forked child is the reader
 * (EVB_SUBSCRIBER_LOSSLESS by default, EVB_IDLE_BLOCK, evb_consumer_next
 * with timeout -1). Phases (--phase):
 *
 *   sparse  single events with a pause after each: the reader falls
 *           asleep every time, so about one wake per event is the floor;
 *   burst   bursts of --burst events with a pause after each: at most one
 *           wake per burst should happen;
 *   fast    --events events back to back: the reader rarely sleeps, so
 *           wakes per event should be near zero;
 *   setup   only the final stop event: the fixed cost to subtract.
 *
 * Every phase ends with one stop event. The reader checks order and count.
 * The program prints events, time, ns per publish, and voluntary context
 * switches of both sides (the reader's count is how often it slept).
 * The system calls themselves are counted by perf/block_syscalls.sh, which
 * runs this program under `strace -e trace=futex` WITHOUT -f: only the
 * producer (this process) is traced, not the forked reader.
 */
#include "bench_util.h"

#include <getopt.h>
#include <sys/resource.h>

#define SEQ_STOP UINT64_MAX

typedef struct config {
    const char *phase;
    uint64_t events;   /* fast */
    uint64_t bursts;   /* burst and sparse */
    uint64_t burst;    /* events per burst */
    uint64_t pause_us;
    int prod_cpu, cons_cpu;
    int lossy;
    size_t size;
    uint64_t ring_bytes;
    const char *shm_dir;
    int json;
} config;

typedef struct ctl {
    _Alignas(BENCH_CACHELINE) _Atomic uint32_t ready;
    _Alignas(BENCH_CACHELINE) uint64_t received, bad_seq, lost;
    long nvcsw, nivcsw;
    int err;
    char msg[256];
} ctl;

static int reader_main(const config *cf, const char *bus_path, ctl *c)
{
    evb_bus *bus = NULL;
    evb_consumer *cons = NULL;
    int rc = evb_bus_open(&bus, bus_path, NULL);
    if (rc < 0)
        return bench_fail(c->msg, "evb_bus_open", rc);
    evb_consumer_options co = {
        .kind = cf->lossy ? EVB_SUBSCRIBER : EVB_SUBSCRIBER_LOSSLESS,
        .idle = EVB_IDLE_BLOCK,
        .partition = -1,
    };
    rc = evb_consumer_open(&cons, bus, "block", &co);
    if (rc < 0)
        return bench_fail(c->msg, "evb_consumer_open", rc);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    atomic_store_explicit(&c->ready, 1, memory_order_release);
    uint64_t expect = 0;
    int err = 0;
    for (;;) {
        evb_event ev;
        rc = evb_consumer_next(cons, &ev, -1);
        if (rc < 0) {
            err = bench_fail(c->msg, "evb_consumer_next", rc);
            break;
        }
        c->lost += ev.lost_events;
        uint64_t seq = ev.value_len >= 8 ? load64(ev.value) : 0;
        if (seq == SEQ_STOP)
            break;
        if (seq != expect)
            c->bad_seq++;
        expect = seq + 1;
        c->received++;
    }
    getrusage(RUSAGE_SELF, &ru1);
    c->nvcsw = ru1.ru_nvcsw - ru0.ru_nvcsw;
    c->nivcsw = ru1.ru_nivcsw - ru0.ru_nivcsw;
    evb_consumer_close(cons);
    evb_bus_close(bus);
    return err;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_block --phase sparse|burst|fast|setup [options]\n"
               "  --events N        fast: events (default 2000000)\n"
               "  --bursts N        sparse/burst: number of bursts (default 200)\n"
               "  --burst N         burst: events per burst (default 64)\n"
               "  --pause-us N      pause after each burst (default 2000)\n"
               "  --producer-cpu N  (default 0)\n"
               "  --consumer-cpu N  (default 1)\n"
               "  --size N          value bytes (default 64)\n"
               "  --ring-bytes SIZE (default 8M)\n"
               "  --lossy           reader is a plain EVB_SUBSCRIBER (never gates)\n"
               "  --shm-dir DIR     (default /dev/shm)\n"
               "  --json            also print a JSON line\n");
}

int main(int argc, char **argv)
{
    print_cmdline(stdout, argc, argv);
    config cf = {
        .phase = "fast",
        .events = 2000000,
        .bursts = 200,
        .burst = 64,
        .pause_us = 2000,
        .prod_cpu = 0,
        .cons_cpu = 1,
        .size = 64,
        .ring_bytes = 8u << 20,
        .shm_dir = "/dev/shm",
    };
    static const struct option opts[] = {
        { "phase", required_argument, 0, 'f' },
        { "events", required_argument, 0, 'n' },
        { "bursts", required_argument, 0, 'B' },
        { "burst", required_argument, 0, 'b' },
        { "pause-us", required_argument, 0, 'u' },
        { "producer-cpu", required_argument, 0, 'P' },
        { "consumer-cpu", required_argument, 0, 'C' },
        { "size", required_argument, 0, 's' },
        { "ring-bytes", required_argument, 0, 'R' },
        { "lossy", no_argument, 0, 'l' },
        { "shm-dir", required_argument, 0, 'D' },
        { "json", no_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'f': cf.phase = optarg; break;
        case 'n': cf.events = parse_size(optarg); break;
        case 'B': cf.bursts = strtoull(optarg, NULL, 0); break;
        case 'b': cf.burst = strtoull(optarg, NULL, 0); break;
        case 'u': cf.pause_us = strtoull(optarg, NULL, 0); break;
        case 'P': cf.prod_cpu = atoi(optarg); break;
        case 'C': cf.cons_cpu = atoi(optarg); break;
        case 's': cf.size = (size_t)parse_size(optarg); break;
        case 'R': cf.ring_bytes = parse_size(optarg); break;
        case 'l': cf.lossy = 1; break;
        case 'D': cf.shm_dir = optarg; break;
        case 'j': cf.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    uint64_t nbursts, per_burst, pause_ns;
    if (!strcmp(cf.phase, "sparse")) {
        nbursts = cf.bursts, per_burst = 1, pause_ns = cf.pause_us * 1000;
    } else if (!strcmp(cf.phase, "burst")) {
        nbursts = cf.bursts, per_burst = cf.burst, pause_ns = cf.pause_us * 1000;
    } else if (!strcmp(cf.phase, "fast")) {
        nbursts = 1, per_burst = cf.events, pause_ns = 0;
    } else if (!strcmp(cf.phase, "setup")) {
        nbursts = 0, per_burst = 0, pause_ns = cf.pause_us * 1000;
    } else {
        usage(stderr);
        return 2;
    }
    if (cf.size < 8 || cf.size > 65536) {
        usage(stderr);
        return 2;
    }
    print_env_header(stdout, "bench_block");
    printf("# phase %s: %" PRIu64 " x %" PRIu64 " events, pause %" PRIu64
           " us; producer cpu %d, reader cpu %d (%s); reader %s, EVB_IDLE_BLOCK\n",
           cf.phase, nbursts, per_burst, pause_ns / 1000, cf.prod_cpu, cf.cons_cpu,
           topology_name(cf.prod_cpu, cf.cons_cpu), cf.lossy ? "EVB_SUBSCRIBER" : "EVB_SUBSCRIBER_LOSSLESS");
    fflush(stdout);

    char bus_path[4096];
    if (bench_bus_dir(bus_path, sizeof(bus_path), cf.shm_dir))
        return 1;
    int status = 1;
    evb_bus *bus = NULL;
    evb_producer *p = NULL;
    ctl *c = shared_alloc(sizeof(ctl));
    pid_t child = -1;
    int rc = evb_bus_open(&bus, bus_path, NULL);
    if (rc < 0) {
        fprintf(stderr, "evb_bus_open: %s %s\n", evb_strerror(rc), evb_last_error());
        goto out;
    }
    evb_topic_config tc = { .partitions = 1, .ring_bytes = cf.ring_bytes };
    rc = evb_topic_create(bus, "block", &tc);
    if (rc < 0) {
        fprintf(stderr, "evb_topic_create: %s %s\n", evb_strerror(rc), evb_last_error());
        goto out;
    }
    fflush(NULL);
    child = fork();
    if (child == 0) {
        int e = pin_to_cpu(cf.cons_cpu) ? 1 : reader_main(&cf, bus_path, c);
        c->err = e;
        _exit(e);
    }
    if (child < 0 || wait_flag(&c->ready, 1, 10000000000ull)) {
        fprintf(stderr, "reader did not start: %s\n", c->msg);
        goto out;
    }
    pin_to_cpu(cf.prod_cpu);
    evb_producer_options po = { .block_ms = -1 };
    rc = evb_producer_open(&p, bus, "block", &po);
    if (rc < 0) {
        fprintf(stderr, "evb_producer_open: %s %s\n", evb_strerror(rc), evb_last_error());
        goto out;
    }
    unsigned char *buf = aligned_alloc(64, cf.size < 64 ? 64 : cf.size);
    fill_pattern(buf, cf.size, 5);
    evb_msg m = { .value = buf, .value_len = (uint32_t)cf.size, .partition = 0 };

    /* let the reader fall asleep before the first event */
    sleep_ns(pause_ns ? pause_ns : 2000000);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t seq = 0, pub_ns = 0, max_pub_ns = 0, t_start = now_ns();
    for (uint64_t b = 0; b < nbursts; b++) {
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < per_burst; i++) {
            store64(buf, seq++);
            uint64_t ta = per_burst <= 64 ? now_ns() : 0;
            rc = evb_publish(p, &m);
            if (per_burst <= 64) {
                uint64_t d = now_ns() - ta;
                if (d > max_pub_ns)
                    max_pub_ns = d;
            }
            if (rc < 0) {
                fprintf(stderr, "evb_publish: %s\n", evb_strerror(rc));
                goto out;
            }
        }
        pub_ns += now_ns() - t0;
        if (pause_ns)
            sleep_ns(pause_ns);
    }
    uint64_t t_end = now_ns();
    getrusage(RUSAGE_SELF, &ru1);
    store64(buf, SEQ_STOP);
    rc = evb_publish(p, &m);
    if (rc < 0) {
        fprintf(stderr, "evb_publish(stop): %s\n", evb_strerror(rc));
        goto out;
    }
    int cs = wait_child(child, now_ns() + 30000000000ull);
    child = -1;
    uint64_t n = seq;
    if (cs != 0 || c->received != n || c->bad_seq || (c->lost && !cf.lossy)) {
        printf("# FAIL reader status %d %s: received %" PRIu64 " of %" PRIu64 ", %" PRIu64
               " out of order, %" PRIu64 " lost\n",
               cs, c->msg, c->received, n, c->bad_seq, c->lost);
    } else {
        status = 0;
    }
    char maxs[48] = "";
    if (per_burst <= 64 && n)
        snprintf(maxs, sizeof(maxs), " (max %.0f ns)", (double)max_pub_ns);
    printf("phase %-6s events %-9" PRIu64 " elapsed %.3f s  publish %.1f ns/event%s  "
           "producer vol/invol csw %ld/%ld  reader sleeps (vol csw) %ld  lost %" PRIu64 "\n",
           cf.phase, n, (double)(t_end - t_start) / 1e9, n ? (double)pub_ns / (double)n : 0.0,
           maxs, ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw, c->nvcsw, c->lost);
    if (cf.json)
        printf("{\"bench\":\"block\",\"phase\":\"%s\",\"events\":%" PRIu64 ",\"bursts\":%" PRIu64
               ",\"pause_us\":%" PRIu64 ",\"publish_ns_per_event\":%.1f,\"reader_sleeps\":%ld,"
               "\"producer_nvcsw\":%ld,\"ok\":%s}\n",
               cf.phase, n, nbursts, pause_ns / 1000, n ? (double)pub_ns / (double)n : 0.0,
               c->nvcsw, ru1.ru_nvcsw - ru0.ru_nvcsw, status ? "false" : "true");
out:
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    evb_producer_close(p);
    if (bus)
        evb_topic_delete(bus, "block");
    evb_bus_close(bus);
    rm_rf(bus_path);
    return status;
}
