/*
 * durable_util.h - helpers shared by the durable-topic benchmarks
 * (bench_durable.c, bench_sync.c; header only, every helper static).
 *
 * Owns the scratch directories (a data dir under --data-root, never
 * /dev/shm or /tmp, and a bus dir under /dev/shm), their removal on every
 * exit path including SIGINT/SIGTERM, the child-process list that a signal
 * kills first, per-thread CPU time from /proc, percentiles, and running
 * fio as a baseline. Public evbus API only.
 */
#ifndef EVB_DURABLE_UTIL_H
#define EVB_DURABLE_UTIL_H

#include "bench_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* ---- scratch directories and cleanup -------------------------------- */

#define DU_MAX_CHILDREN 64

static char du_data_dir[4096]; /* <root>/perfdata-XXXXXX: segments, fio files */
static char du_bus_dir[4096];  /* /dev/shm/evbus-durable-XXXXXX: the rings */
static pid_t du_owner;         /* the process that made them */
static volatile pid_t du_children[DU_MAX_CHILDREN];

static inline void du_child_add(pid_t pid)
{
    for (int i = 0; i < DU_MAX_CHILDREN; i++)
        if (du_children[i] == 0) {
            du_children[i] = pid;
            return;
        }
}

static inline void du_child_del(pid_t pid)
{
    for (int i = 0; i < DU_MAX_CHILDREN; i++)
        if (du_children[i] == pid)
            du_children[i] = 0;
}

static inline void du_cleanup(void)
{
    if (getpid() != du_owner)
        return;
    for (int i = 0; i < DU_MAX_CHILDREN; i++) {
        pid_t p = du_children[i];
        if (p > 0) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            du_children[i] = 0;
        }
    }
    rm_rf(du_data_dir);
    rm_rf(du_bus_dir);
    du_data_dir[0] = du_bus_dir[0] = 0;
}

static inline void du_on_signal(int sig)
{
    du_cleanup(); /* not async-signal-safe (nftw); good enough to not leak GBs */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Make both directories and arrange for their removal. 0 or -1. */
static inline int du_dirs_make(const char *data_root)
{
    du_owner = getpid();
    snprintf(du_data_dir, sizeof du_data_dir, "%s/perfdata-XXXXXX", data_root);
    if (!mkdtemp(du_data_dir)) {
        fprintf(stderr, "mkdtemp(%s): %s\n", du_data_dir, strerror(errno));
        du_data_dir[0] = 0;
        return -1;
    }
    snprintf(du_bus_dir, sizeof du_bus_dir, "/dev/shm/evbus-durable-XXXXXX");
    if (!mkdtemp(du_bus_dir)) {
        fprintf(stderr, "mkdtemp(%s): %s\n", du_bus_dir, strerror(errno));
        du_bus_dir[0] = 0;
        du_cleanup();
        return -1;
    }
    atexit(du_cleanup);
    signal(SIGINT, du_on_signal);
    signal(SIGTERM, du_on_signal);
    signal(SIGHUP, du_on_signal);
    return 0;
}

/* In a forked child: the parent cleans up, not us. */
static inline void du_child_init(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

static inline int du_bus_open(evb_bus **bus)
{
    evb_bus_options o = { .data_dir = du_data_dir };
    return evb_bus_open(bus, du_bus_dir, &o);
}

/* ---- CPU time of threads -------------------------------------------- */

/* On-CPU ns of thread TID of this process (/proc schedstat), 0 if unknown. */
static inline uint64_t du_thread_cpu_ns(pid_t tid)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long ns = 0;
    if (fscanf(f, "%llu", &ns) != 1)
        ns = 0;
    fclose(f);
    return ns;
}

/* On-CPU ns of every thread of this process except the caller: the
 * flusher thread (and nothing else in a benchmark producer). */
static inline uint64_t du_other_threads_cpu_ns(void)
{
    pid_t self = (pid_t)syscall(SYS_gettid);
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t t = (pid_t)atoi(e->d_name);
        if (t > 0 && t != self)
            sum += du_thread_cpu_ns(t);
    }
    closedir(d);
    return sum;
}

static inline uint64_t du_self_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- percentiles ----------------------------------------------------- */

/* Nearest-rank percentile Q (0..1] of sorted V[0..N). */
static inline uint64_t du_pct(const uint64_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

/* ---- fio baseline ----------------------------------------------------- */

/* Path of fio on $PATH, or NULL. */
static inline const char *du_fio_path(void)
{
    static char buf[4096];
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    for (char *s = NULL, *t = strtok_r(copy, ":", &s); t; t = strtok_r(NULL, ":", &s)) {
        snprintf(buf, sizeof buf, "%s/fio", t);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

static inline int du_rm_fio_files(void)
{
    DIR *d = opendir(du_data_dir);
    if (!d)
        return -1;
    struct dirent *e;
    char p[4200];
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, "seq.", 4) || !strcmp(e->d_name, "fio.json")) {
            snprintf(p, sizeof p, "%s/%s", du_data_dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    return 0;
}

/*
 * fio --name=seq --rw=write --bs=1M --ioengine=io_uring --size=BYTES
 *     --direct=DIRECT --end_fsync=1 --directory=<data dir>
 *     [--fdatasync=SYNC_EVERY]  (an fdatasync after every SYNC_EVERY writes)
 * Returns write bandwidth in bytes/s from fio's JSON ("bw_bytes", over a
 * runtime that includes the final fsync), or -1. Prints the command line.
 */
static inline double du_run_fio(const char *fio, uint64_t bytes, int direct, int sync_every,
                                FILE *log)
{
    char size[64], dir[4200], out[4200], dflag[32], sflag[32];
    snprintf(size, sizeof size, "--size=%" PRIu64, bytes);
    snprintf(dir, sizeof dir, "--directory=%s", du_data_dir);
    snprintf(out, sizeof out, "%s/fio.json", du_data_dir);
    snprintf(dflag, sizeof dflag, "--direct=%d", direct);
    char outflag[4300];
    snprintf(outflag, sizeof outflag, "--output=%s", out);
    char *argv[] = { (char *)fio, "--name=seq", "--rw=write", "--bs=1M", "--ioengine=io_uring",
                     size, dflag, "--end_fsync=1", dir, "--output-format=json", outflag, NULL,
                     NULL };
    if (sync_every > 0) {
        snprintf(sflag, sizeof sflag, "--fdatasync=%d", sync_every);
        argv[11] = sflag;
    }
    if (log) {
        fprintf(log, "# fio cmd:");
        for (int i = 0; argv[i]; i++)
            fprintf(log, " %s", argv[i]);
        fprintf(log, "\n");
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        du_child_init();
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(fio, argv);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    du_child_add(pid);
    int st = wait_child(pid, now_ns() + 300000000000ull);
    du_child_del(pid);
    double bw = -1;
    FILE *f = st == 0 ? fopen(out, "r") : NULL;
    if (f) {
        static char js[1 << 20];
        size_t n = fread(js, 1, sizeof js - 1, f);
        js[n] = 0;
        fclose(f);
        char *w = strstr(js, "\"write\" : {"); /* not "rw" : "write" */
        char *b = w ? strstr(w, "\"bw_bytes\"") : NULL;
        if (b && (b = strchr(b, ':')))
            bw = strtod(b + 1, NULL);
    }
    du_rm_fio_files();
    return bw > 0 ? bw : -1;
}

#endif /* EVB_DURABLE_UTIL_H */
