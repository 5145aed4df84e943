/*
 * bench_run.c - one run of `evbus bench`: a private topic, consumer and
 * producer processes (bench_child.c), and a parent that starts them
 * together, samples their counters, drains the readers and merges what
 * they measured.
 *
 * Processes, not threads: separate processes sharing the rings are what
 * evbus is for, and each child opens the bus and maps the rings itself as
 * a user's program would (perf/bench_throughput does the same). Children
 * report through one MAP_SHARED block; each writes only its own slot.
 */
#include "bench_shm.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The parent's sampling period, and how long readers may take to catch
 * up once the producers are done before the run counts as failed. */
#define SAMPLE_NS 100000000ull
#define DRAIN_NS 10000000000ull

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

static int spawn(run *ru, bench_child *k, int cpu, bool producer)
{
    uint32_t i = producer ? k->index : ru->nprod + k->index;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return cli_fail(ru->c, -errno, "fork");
    if (pid == 0) {
        /* Ctrl-C reaches the whole process group: the parent stops the
         * children in order (a producer killed mid-claim leaves a hole).
         * A parent that is killed takes them along: a reader would wait
         * for its stop for ever. */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(1);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if (sched_setaffinity(0, sizeof(set), &set) != 0) {
                bench_child_fail(k, "pinning to a CPU", -errno);
                _exit(1);
            }
        }
        _exit(producer ? bench_producer_main(k) : bench_consumer_main(k));
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
    uint64_t end = bench_now_ns() + DRAIN_NS, prev = UINT64_MAX;
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
        uint64_t now = bench_now_ns();
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
    uint64_t deadline = bench_now_ns() + DRAIN_NS;
    for (;;) {
        int f = reap(ru);
        if (f >= 0)
            return child_failed(ru, f);
        bool all = true;
        for (uint32_t i = 0; i < ru->nprod + ru->ncons; i++)
            all = all && ru->exited[i];
        if (all)
            return 0;
        if (bench_now_ns() > deadline) {
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
            halted_at = bench_now_ns();
            /* relaxed: a request to stop; the counts come back through B1 */
            atomic_store_explicit(&sh->halt, 1, memory_order_relaxed);
        }
        uint64_t now = bench_now_ns();
        if (now >= last_t + SAMPLE_NS)
            sample(ru, now, &last_in, &last_out, &last_t, &cap);
        uint64_t next = last_t + SAMPLE_NS;
        now = bench_now_ns();
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

/* For --pin auto: the CPUs near the topic's partition 0 (its node's, one
 * per core first, as evb_cpus_near orders them) instead of the first
 * ones; a topic has one node, so partition 0 speaks for all. */
static int near_cpus(run *ru)
{
    int n = evb_cpus_near(ru->c->bus, ru->r->topic, 0, ru->cpus, CPU_SETSIZE);
    if (n > 0)
        ru->ncpus = n < CPU_SETSIZE ? n : CPU_SETSIZE;
    return n;
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

/* With placement asked for, what came of it, after the CPUs in R->cpus:
 * "; ring on node 0; 8192 of 8212 KiB in huge pages". Both sizes in
 * the largest unit that holds each exactly: util_fmt_size picks one per
 * number, and "8 MiB of 8212 KiB" is hard to compare. */
static void describe_memory(run *ru)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB" };
    struct evb_partition_memory pm;
    if (!ru->cfg->numa_node && !ru->cfg->huge_pages)
        return;
    if (evb_partition_memory(ru->c->bus, ru->r->topic, 0, &pm))
        return;
    size_t n = strlen(ru->r->cpus), cap = sizeof(ru->r->cpus);
    uint64_t huge = pm.huge_bytes, all = pm.bytes;
    size_t u = 0;
    while (u + 1 < sizeof(units) / sizeof(units[0]) && all >= 1024 && all % 1024 == 0 &&
           huge % 1024 == 0) {
        huge /= 1024;
        all /= 1024;
        u++;
    }
    if (pm.node >= 0)
        n += (size_t)snprintf(ru->r->cpus + n, cap - n, "; ring on node %d", pm.node);
    if (ru->cfg->huge_pages && n < cap)
        snprintf(ru->r->cpus + n, cap - n, "; %" PRIu64 " of %" PRIu64 " %s in huge pages",
                 huge, all, units[u]);
}

/* Topics bench-PID-N of benches whose process is gone (killed before
 * they could delete theirs): collected by name, deleted after the list. */
typedef struct stale_topics {
    evb_bus *bus;
    char names[16][EVB_NAME_MAX + 1];
    int n;
} stale_topics;

static int note_stale(const char *topic, void *arg)
{
    stale_topics *st = arg;
    long pid;
    uint64_t size;
    char tail;
    if (sscanf(topic, "bench-%ld-%" SCNu64 "%c", &pid, &size, &tail) != 2 || pid <= 0 ||
        pid == (long)getpid())
        return 0;
    /* ESRCH only: a live process of that pid (even another user's, EPERM)
     * may be a bench still running. */
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
        return 0;
    /* Another user's, which we could not remove: it must not take one of
     * the places our own stale topics need. */
    struct evb_topic_info ti;
    if (evb_topic_info(st->bus, topic, &ti) == -EACCES)
        return 0;
    snprintf(st->names[st->n], sizeof st->names[st->n], "%s", topic);
    return ++st->n == 16; /* the rest at the next run */
}

static void sweep_stale_topics(evb_bus *bus)
{
    stale_topics st = {.bus = bus, .n = 0};
    if (evb_topic_list(bus, note_stale, &st) < 0)
        return;
    for (int i = 0; i < st.n; i++)
        evb_topic_remove(bus, st.names[i], EVB_DELETE_FORCE);
}

int bench_run(cli *c, const bench_cfg *cfg, uint64_t value_bytes, bench_result *r)
{
    run ru = { .c = c, .cfg = cfg, .r = r, .nprod = cfg->producers, .ncons = cfg->consumers };
    memset(r, 0, sizeof(*r));
    r->value_bytes = value_bytes;
    /* A group or queue hands each event to one member: none without
     * members, as a subscriber kind with no consumers gets no copy. */
    r->fanout = cfg->reader == BENCH_GROUP || cfg->reader == BENCH_QUEUE ? cfg->consumers != 0
                                                                         : cfg->consumers;
    snprintf(r->topic, sizeof(r->topic), "bench-%ld-%" PRIu64, (long)getpid(), value_bytes);
    sweep_stale_topics(c->bus);
    allowed_cpus(&ru);

    evb_topic_config tc = {
        .partitions = cfg->partitions,
        .ring_bytes = cfg->ring_bytes,
        /* The default (64 KiB, what a user's topic has) unless the values
         * need more; perf/bench_throughput's topics have the same. */
        .max_event_bytes = value_bytes > (64u << 10) ? (uint32_t)value_bytes : 0,
        .durability = cfg->durability,
        .numa_node = cfg->numa_node,
        .huge_pages = cfg->huge_pages,
    };
    int err = evb_topic_create(c->bus, r->topic, &tc);
    if (err < 0)
        return cli_fail(c, err, "creating topic %s", r->topic);
    if (cfg->pin_auto && (err = near_cpus(&ru)) < 0) {
        cli_fail(c, err, "--pin auto: CPUs near topic %s", r->topic);
        evb_topic_remove(c->bus, r->topic, EVB_DELETE_FORCE);
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    ru.shm = mmap(NULL, sizeof(bench_shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                  -1, 0);
    /* At least one histogram: with no consumer it stays empty, and mmap
     * refuses a length of 0. */
    ru.hists_bytes = sizeof(hist) * (cfg->consumers ? cfg->consumers : 1);
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
    bench_fill_pattern(pattern + BENCH_HEADER_BYTES, value_bytes - BENCH_HEADER_BYTES);
    uint64_t pattern_sum = bench_sum64(pattern, value_bytes);
    free(pattern);

    bool crowded = ru.ncpus > 0 && cfg->producers + cfg->consumers > (uint32_t)ru.ncpus;
    int pcpu[BENCH_MAX_PROCS], ccpu[BENCH_MAX_PROCS];
    for (uint32_t i = 0; i < cfg->producers; i++)
        pcpu[i] = cfg->pin && ru.ncpus ? ru.cpus[i % (uint32_t)ru.ncpus] : -1;
    for (uint32_t j = 0; j < cfg->consumers; j++)
        ccpu[j] = cfg->pin && ru.ncpus ? ru.cpus[(cfg->producers + j) % (uint32_t)ru.ncpus] : -1;
    describe_cpus(&ru, pcpu, ccpu);
    describe_memory(&ru);

    bench_child base = {
        .cfg = cfg, .bus_path = evb_bus_path(c->bus), .data_dir = evb_bus_data_dir(c->bus),
        .topic = r->topic, .size = value_bytes, .shm = ru.shm, .crowded = crowded,
        .pattern_sum = pattern_sum,
    };
    /* Readers first, so that none misses the first event. */
    for (uint32_t j = 0; j < cfg->consumers; j++) {
        bench_child k = base;
        k.index = j;
        k.slot = &ru.shm->slot[cfg->producers + j];
        k.hist = &ru.hists[j];
        hist_init(k.hist);
        if (spawn(&ru, &k, ccpu[j], false) != 0)
            goto kill;
    }
    for (uint32_t i = 0; i < cfg->producers; i++) {
        bench_child k = base;
        k.index = i;
        k.slot = &ru.shm->slot[i];
        if (spawn(&ru, &k, pcpu[i], true) != 0)
            goto kill;
    }
    uint64_t deadline = bench_now_ns() + 30000000000ull;
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
        if (bench_now_ns() > deadline || cli_stop) {
            cli_error(c, cli_stop ? "interrupted while starting" : "processes did not start "
                      "within 30 s");
            goto kill;
        }
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    bench_shm *sh = ru.shm;
    sh->t_go = bench_now_ns() + 1000000;
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
    /* A run that failed: what its children had counted when they were
     * stopped, for --json's error (supervise fills these on success). */
    if (rc != 0 && ru.shm != MAP_FAILED && ru.shm != NULL) {
        r->published = sum_slots(&ru, 0, ru.nprod, false);
        r->delivered = sum_slots(&ru, ru.nprod, ru.ncons, false);
    }
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
