/*
 * bench_util.h - helpers shared by the perf/ benchmarks (header only).
 *
 * Only the public API (evbus.h) is used by the benchmarks; nothing here
 * touches library internals. Every helper is static so that each benchmark
 * is one translation unit.
 */
#ifndef EVB_BENCH_UTIL_H
#define EVB_BENCH_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>

#include "evbus.h"

#define BENCH_CACHELINE 128 /* two 64 B lines: defeats the adjacent-line prefetcher */

/* ---- time ---------------------------------------------------------- */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The spin-wait hint, the same choice as the library's (pause; isb on
 * aarch64, where yield is mostly a nop), kept here because the benchmarks
 * see only the public API. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("isb" ::: "memory");
#else
#error "perf/: x86-64 or aarch64 only"
#endif
}

static inline void sleep_ns(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Median cost of one now_ns() call, ns (reported so that latency numbers
 * can be read against it). */
static inline double timer_overhead_ns(void)
{
    enum { N = 1000, K = 64 };
    double best[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = now_ns();
        for (int k = 0; k < K; k++)
            (void)now_ns();
        best[i] = (double)(now_ns() - t0) / K;
    }
    /* insertion sort is fine for 1000 */
    for (int i = 1; i < N; i++) {
        double v = best[i];
        int j = i - 1;
        while (j >= 0 && best[j] > v) {
            best[j + 1] = best[j];
            j--;
        }
        best[j + 1] = v;
    }
    return best[N / 2];
}

/* ---- statistics ---------------------------------------------------- */

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

typedef struct stat3 {
    double med, min, max;
    int n;
} stat3;

/* Median/min/max of V[0..N) (N may be 0: all NaN-free zeros, n = 0). */
static inline stat3 stat3_of(const double *v, int n)
{
    stat3 s = { 0, 0, 0, n };
    if (n <= 0)
        return s;
    double *t = malloc(sizeof(double) * (size_t)n);
    if (!t)
        abort();
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    s.min = t[0];
    s.max = t[n - 1];
    s.med = (n % 2) ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    free(t);
    return s;
}

/* ---- checksum ------------------------------------------------------ */

/* Sum of the 64-bit words of P[0..LEN), LEN a multiple of 8. Reads every
 * byte; four accumulators so that the add chain is not the limit. P may
 * be unaligned (memcpy loads compile to plain moves on x86/arm64).
 * tools/bench_child.c has a copy, bench_sum64(), that must stay the same
 * loop with the same sum: `evbus bench` is compared with bench_throughput
 * (RESULTS.md, issue 11), which is fair only while both consumers do the
 * same work per value. A copy, as perf/ and tools/ may include nothing of
 * each other (tools/check-layers.py); tests/cli/test_bench_sum.c checks
 * that the two agree. */
static inline uint64_t sum64(const void *p, size_t len)
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
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        a0 += w;
    }
    return a0 + a1 + a2 + a3;
}

static inline uint64_t load64(const void *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline void store64(void *p, uint64_t w)
{
    memcpy(p, &w, 8);
}

/* Fill P[0..LEN) with a deterministic pseudo-random pattern. */
static inline void fill_pattern(void *p, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    unsigned char *b = p;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(b + i, &x, 8);
    }
}

/* ---- processes and cores ------------------------------------------- */

static inline int pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        fprintf(stderr, "sched_setaffinity(cpu %d): %s\n", cpu, strerror(errno));
        return -1;
    }
    return 0;
}

static inline int read_sysfs_int(const char *fmt, int cpu)
{
    char path[256];
    snprintf(path, sizeof(path), fmt, cpu);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int v = -1;
    if (fscanf(f, "%d", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static inline int cpu_node(int cpu)
{
    char path[256];
    for (int n = 0; n < 64; n++) {
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/node%d", cpu, n);
        if (access(path, F_OK) == 0)
            return n;
    }
    return 0;
}

/* Name the topology of two CPUs as STYLE.md 2.10 asks. */
static inline const char *topology_name(int a, int b)
{
    if (a == b)
        return "same core";
    int pa = read_sysfs_int("/sys/devices/system/cpu/cpu%d/topology/physical_package_id", a);
    int pb = read_sysfs_int("/sys/devices/system/cpu/cpu%d/topology/physical_package_id", b);
    int ca = read_sysfs_int("/sys/devices/system/cpu/cpu%d/topology/core_id", a);
    int cb = read_sysfs_int("/sys/devices/system/cpu/cpu%d/topology/core_id", b);
    if (cpu_node(a) != cpu_node(b))
        return "two NUMA nodes";
    if (pa == pb && ca == cb && ca >= 0)
        return "hyperthread siblings";
    if (pa != pb)
        return "two sockets, one node";
    return "two cores";
}

static inline void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, cap, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

/* Shared anonymous memory that survives fork(); zero-filled. */
static inline void *shared_alloc(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "mmap(%zu): %s\n", len, strerror(errno));
        exit(1);
    }
    return p;
}

/* Wait for PID up to DEADLINE_NS (absolute, now_ns clock); kill it with
 * SIGKILL past the deadline. Returns its exit status (0 = fine), 128+sig
 * when killed by a signal, or -1 on timeout. */
static inline int wait_child(pid_t pid, uint64_t deadline_ns)
{
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -2;
        if (now_ns() > deadline_ns) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ns(2000000);
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -3;
}

/* Spin (politely) until *FLAG >= WANT or the deadline passes. Setup-time
 * only: the measured loops spin without sleeping. */
static inline int wait_flag(_Atomic uint32_t *flag, uint32_t want, uint64_t timeout_ns)
{
    uint64_t end = now_ns() + timeout_ns;
    while (atomic_load_explicit(flag, memory_order_acquire) < want) {
        if (now_ns() > end)
            return -1;
        sleep_ns(20000);
    }
    return 0;
}

/* ---- cache-line probe ---------------------------------------------- */

/*
 * Median round trip of one counter bounced between two processes pinned to
 * CPU_A and CPU_B, N times, ns. On a VM the host may move vCPUs between
 * physical cores, and every cross-core number moves with it (we have seen
 * 120 ns and 470 ns on the same guest minutes apart), so benchmarks take
 * this probe next to each run and report it. Returns -1 on failure.
 */
struct probe_shm {
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t ping;
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t pong;
    _Alignas(BENCH_CACHELINE) _Atomic uint32_t ready;
    int ok;
    uint64_t rtt[]; /* the round trips after the warm-up, ns */
};

/* N round trips of the counter (after 1000 untimed ones) into RTT[0..N),
 * sorted ascending. 0, or -1 on failure. perf/compare reads percentiles of
 * these as the physical floor of a round trip. */
static inline int cacheline_rtts(int cpu_a, int cpu_b, uint32_t n, uint64_t *rtt_out)
{
    size_t len = sizeof(struct probe_shm) + sizeof(uint64_t) * n;
    struct probe_shm *sh = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return -1;
    fflush(NULL);
    pid_t b = fork();
    if (b == 0) {
        if (pin_to_cpu(cpu_b))
            _exit(1);
        atomic_store_explicit(&sh->ready, 1, memory_order_release);
        for (uint64_t want = 1;;) {
            uint64_t v = atomic_load_explicit(&sh->ping, memory_order_acquire);
            if (v == UINT64_MAX)
                break;
            if (v == want) {
                atomic_store_explicit(&sh->pong, v, memory_order_release);
                want++;
            } else {
                cpu_relax();
            }
        }
        _exit(0);
    }
    pid_t a = -1;
    if (b > 0 && wait_flag(&sh->ready, 1, 5000000000ull) == 0) {
        a = fork();
        if (a == 0) {
            if (pin_to_cpu(cpu_a))
                _exit(1);
            for (uint64_t i = 1; i <= (uint64_t)n + 1000; i++) {
                uint64_t t0 = now_ns();
                atomic_store_explicit(&sh->ping, i, memory_order_release);
                while (atomic_load_explicit(&sh->pong, memory_order_acquire) != i)
                    cpu_relax();
                if (i > 1000)
                    sh->rtt[i - 1001] = now_ns() - t0;
            }
            atomic_store_explicit(&sh->ping, UINT64_MAX, memory_order_release);
            qsort(sh->rtt, n, sizeof(uint64_t), cmp_u64);
            sh->ok = 1;
            _exit(0);
        }
    }
    uint64_t deadline = now_ns() + 10000000000ull;
    int ok = a > 0 && wait_child(a, deadline) == 0 && sh->ok;
    if (!ok && b > 0)
        kill(b, SIGKILL);
    if (b > 0)
        wait_child(b, deadline);
    if (ok)
        memcpy(rtt_out, sh->rtt, sizeof(uint64_t) * n);
    munmap(sh, len);
    return ok ? 0 : -1;
}

static inline double cacheline_probe_ns(int cpu_a, int cpu_b, uint32_t n)
{
    uint64_t *rtt = malloc(sizeof(uint64_t) * n);
    if (!rtt)
        return -1;
    double m = cacheline_rtts(cpu_a, cpu_b, n, rtt) == 0 ? (double)rtt[n / 2] : -1;
    free(rtt);
    return m;
}

/* ---- memcpy baseline ----------------------------------------------- */

/* Bytes per second of one thread copying SIZE-byte chunks from 32 source
 * values into a RING_BYTES buffer, cycling, for MS milliseconds after a
 * tenth of that as warm-up: the copy every hand-off of a value pays once. */
static inline double memcpy_bps(size_t size, uint64_t ring_bytes, uint64_t ms)
{
    size_t nsrc = 32;
    unsigned char *src = aligned_alloc(4096, (nsrc * size + 4095) / 4096 * 4096);
    size_t slots = ring_bytes / size;
    unsigned char *dst = aligned_alloc(4096, (slots * size + 4095) / 4096 * 4096);
    if (!src || !dst)
        abort();
    fill_pattern(src, nsrc * size, 7);
    memset(dst, 0, slots * size); /* fault the pages in */
    uint64_t bytes = 0, t0 = 0, end = 0;
    size_t d = 0, s = 0;
    for (int warm = 1; warm >= 0; warm--) {
        t0 = now_ns();
        end = t0 + (warm ? ms * 1000000u / 10 : ms * 1000000u);
        bytes = 0;
        uint64_t t = t0;
        while (t < end) {
            for (int i = 0; i < 64; i++) {
                memcpy(dst + d * size, src + s * size, size);
                __asm__ __volatile__("" ::"r"(dst) : "memory");
                if (++d == slots)
                    d = 0;
                if (++s == nsrc)
                    s = 0;
            }
            bytes += 64 * (uint64_t)size;
            t = now_ns();
        }
        end = t;
    }
    free(src);
    free(dst);
    return (double)bytes / ((double)(end - t0) / 1e9);
}

/* ---- temp bus directory -------------------------------------------- */

static inline int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void rm_rf(const char *dir)
{
    if (dir && dir[0])
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh bus directory SHM_DIR/evbus-perf-XXXXXX in OUT; removed by
 * rm_rf(OUT) at the end. 0, or -1 after saying why on stderr. */
static inline int bench_bus_dir(char *out, size_t cap, const char *shm_dir)
{
    snprintf(out, cap, "%s/evbus-perf-XXXXXX", shm_dir);
    if (!mkdtemp(out)) {
        fprintf(stderr, "mkdtemp(%s): %s\n", out, strerror(errno));
        return -1;
    }
    return 0;
}

/* A private bus in a fresh directory under /dev/shm (DIR, for rm_rf),
 * one 1-partition topic "t" with a RING-byte ring and 1 KiB events, and
 * a producer of it opened with FLAGS: for one-process benchmarks. 0, or
 * 1 after saying on stderr, as PROG, which call failed. */
static inline int bench_one_topic(const char *prog, char *dir, size_t cap, uint64_t ring,
                                  uint32_t flags, evb_bus **bus, evb_producer **p)
{
    if (bench_bus_dir(dir, cap, "/dev/shm"))
        return 1;
    const char *what = "evb_bus_open";
    int rc = evb_bus_open(bus, dir, NULL);
    evb_topic_config tc = {.partitions = 1, .ring_bytes = ring, .max_event_bytes = 1024};
    if (!rc && (rc = evb_topic_create(*bus, "t", &tc)))
        what = "evb_topic_create";
    evb_producer_options po = {.flags = flags};
    if (!rc && (rc = evb_producer_open(p, *bus, "t", &po)))
        what = "evb_producer_open";
    if (!rc)
        return 0;
    fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, evb_strerror(rc), evb_last_error());
    return 1;
}

/* ---- errors --------------------------------------------------------- */

/* Format a failed call into MSG (256 bytes, usually in shared memory so
 * the parent can print a child's reason); returns 1, the exit code. */
static inline int bench_fail(char *msg, const char *what, int rc)
{
    snprintf(msg, 256, "%s: %s (%d) %s", what, evb_strerror(rc), rc, evb_last_error());
    return 1;
}

/* ---- command line echo --------------------------------------------- */

static inline void print_cmdline(FILE *f, int argc, char **argv)
{
    fprintf(f, "# cmd:");
    for (int i = 0; i < argc; i++)
        fprintf(f, " %s", argv[i]);
    fprintf(f, "\n");
}

static inline void print_env_header(FILE *f, const char *bench)
{
    char model[256];
    cpu_model(model, sizeof(model));
    const char *jv = "?";
    size_t sz = sizeof(jv);
    if (mallctl("version", &jv, &sz, NULL, 0) != 0)
        jv = "not linked";
    fprintf(f, "# %s: evbus %s, jemalloc %s, %ld online CPUs, %s\n", bench,
            evb_version(), jv, sysconf(_SC_NPROCESSORS_ONLN), model);
}

/* Parse "8M", "64K", "65536", "1G". Returns 0 on failure. */
static inline uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return 0;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B')
        end++;
    if (*end == 'B')
        end++;
    if (*end)
        return 0;
    return (uint64_t)v;
}

/* ---- read benchmarks over a topic filled beforehand ---------------- */

/* Options of the benchmarks that read a prefilled topic (bench_group,
 * bench_queue): --runs N --events N --value BYTES --partitions P, and
 * one more string option EXTRA (may be NULL) copied into EXTRA_BUF. */
struct prefill_opts {
    int runs;
    uint64_t events;
    uint32_t value, parts;
    const char *data_dir; /* --durable ROOT: an ASYNC topic, its log in a
                             perfdata-XXXXXX made under ROOT (prefill_data) */
    char data_buf[256];
};

/* 0, or 2 (bad option: the exit code). */
static inline int prefill_parse(int argc, char **argv, struct prefill_opts *o, const char *extra,
                                char *extra_buf, size_t extra_cap)
{
    struct option opts[7] = {
        {"runs", required_argument, NULL, 'r'},
        {"events", required_argument, NULL, 'e'},
        {"value", required_argument, NULL, 'v'},
        {"partitions", required_argument, NULL, 'p'},
        {"durable", required_argument, NULL, 'd'},
    };
    if (extra)
        opts[5] = (struct option){extra, required_argument, NULL, 'x'};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r')
            o->runs = atoi(optarg);
        else if (c == 'e')
            o->events = strtoull(optarg, NULL, 10);
        else if (c == 'v')
            o->value = (uint32_t)atoi(optarg);
        else if (c == 'p')
            o->parts = (uint32_t)atoi(optarg);
        else if (c == 'x')
            snprintf(extra_buf, extra_cap, "%s", optarg);
        else if (c == 'd') {
            snprintf(o->data_buf, sizeof o->data_buf, "%s/perfdata-XXXXXX", optarg);
            if (!mkdtemp(o->data_buf)) {
                fprintf(stderr, "--durable %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            o->data_dir = o->data_buf;
        }
        else
            return 2;
    }
    if (o->runs < 1 || o->value < 8 || o->parts < 1 || o->events < o->parts)
        return 2;
    return 0;
}

/* Create ring-only TOPIC with rings that hold every event (nothing is
 * lapped) and publish O's events round robin, each value starting with
 * its index. 0 or 1 (said on stderr). */
static inline int prefill_topic(evb_bus *bus, const char *topic, const struct prefill_opts *o)
{
    uint64_t per = (o->events / o->parts + 1) * (o->value + 128);
    uint64_t ring = 1 << 20;
    while (ring < per)
        ring <<= 1;
    evb_topic_config tc = {.partitions = o->parts, .ring_bytes = ring,
                           .durability = o->data_dir ? EVB_DURABILITY_ASYNC : 0};
    evb_producer *p;
    if (evb_topic_create(bus, topic, &tc) || evb_producer_open(&p, bus, topic, NULL)) {
        fprintf(stderr, "create %s: %s\n", topic, evb_last_error());
        return 1;
    }
    void *buf = calloc(1, o->value);
    for (uint64_t i = 0; buf && i < o->events; i++) {
        store64(buf, i);
        evb_msg m = {.value = buf, .value_len = o->value,
                     .partition = (int32_t)(i % o->parts)};
        if (evb_publish(p, &m)) {
            fprintf(stderr, "publish: %s\n", evb_last_error());
            free(buf);
            evb_producer_close(p);
            return 1;
        }
    }
    free(buf);
    evb_producer_close(p);
    return buf ? 0 : 1;
}

#endif /* EVB_BENCH_UTIL_H */
