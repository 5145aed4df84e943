/*
 * proc.c - who owns a slot. An owner word is pid << 32 | the low 32 bits of
 * the process start time (clock ticks since boot, /proc/<pid>/stat field
 * 22), so a recycled pid with another start time reads as dead. Also the
 * fork generation, by which a handle finds itself copied into a child, and
 * the two clocks the library uses.
 */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Read a small file whole into BUF; its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* Threads of PID (the Threads: line of /proc/<pid>/status), 0 unknown. */
static int proc_threads(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return 0;
    const char *t = strstr(buf, "\nThreads:");
    return t ? atoi(t + 9) : 0;
}

/* Start time (field 22) and state (field 3) of PID; start 0 when gone. */
static uint64_t proc_stat(int pid, char *state_out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return 0;
    /* The command name (field 2) may hold spaces and parentheses: count
     * fields from the last ')'. p starts at the space before field 3 and
     * moves one field per step; we want the space before field 22. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return 0;
    *state_out = p[2];
    p++;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return 0;
    unsigned long long start = strtoull(p + 1, NULL, 10);
    return start ? start : 1;
}

uint64_t evb_proc_start(int pid)
{
    char state = 0;
    uint64_t start = proc_stat(pid, &state);
    /* A zombie (state Z) commits nothing more: dead. Unless only its main
     * thread exited (pthread_exit): the leader shows Z while the other
     * threads run on, and they may be in the middle of a claim. */
    if (state == 'X' || (state == 'Z' && proc_threads(pid) <= 1))
        return 0;
    return start;
}

int evb_proc_gone(uint64_t owner)
{
    int pid = (int)(owner >> 32);
    if (pid <= 0)
        return 1;
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 1;
    char state = 0;
    uint64_t start = proc_stat(pid, &state);
    if (!start)
        return 0; /* its /proc is hidden from us (hidepid): not known gone */
    if (state == 'X' || (state == 'Z' && proc_threads(pid) <= 1))
        return 1;
    uint32_t want = (uint32_t)owner;
    uint32_t have = (uint32_t)start ? (uint32_t)start : 1;
    return want != have; /* a recycled pid: the owner is gone */
}

/* The file FILE of PID's cgroup of the hierarchy whose /proc/<pid>/cgroup
 * line starts with TAG ("0::" for v2, ":freezer:" inside a v1 line) under
 * ROOT, read into BUF. */
static int cgroup_file(int pid, const char *tag, const char *root, const char *file,
                       char *buf, size_t size)
{
    char path[PATH_MAX], lines[2048];
    snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
    if (read_small(path, lines, sizeof lines) < 0)
        return -1;
    char *cg = strstr(lines, tag);
    if (!cg || (tag[0] == '0' && cg != lines && cg[-1] != '\n'))
        return -1;
    cg += strlen(tag);
    cg[strcspn(cg, "\n")] = '\0';
    if (snprintf(path, sizeof path, "%s%s/%s", root, cg, file) >= (int)sizeof path)
        return -1;
    return read_small(path, buf, size) < 0 ? -1 : 0;
}

/* PID frozen by the cgroup freezer (docker pause, systemctl freeze):
 * v2's cgroup.events says "frozen 1" (ancestors count), v1's
 * freezer.state FROZEN or FREEZING. */
static int proc_frozen(int pid)
{
    char buf[512];
    if (!cgroup_file(pid, "0::", "/sys/fs/cgroup", "cgroup.events", buf, sizeof buf) &&
        strstr(buf, "frozen 1"))
        return 1;
    return !cgroup_file(pid, ":freezer:", "/sys/fs/cgroup/freezer", "freezer.state", buf,
                        sizeof buf) &&
           (strstr(buf, "FROZEN") || strstr(buf, "FREEZING"));
}

int evb_proc_stopped(uint64_t owner)
{
    int pid = (int)(owner >> 32);
    char state = 0;
    if (pid <= 0 || !proc_stat(pid, &state))
        return 0;
    return state == 'T' || state == 't' || proc_frozen(pid);
}

static _Atomic uint64_t self_owner;
static _Atomic int self_pid;

uint64_t evb_proc_self(void)
{
    /* Cached per process; a fork()ed child has another pid and recomputes.
     * O1 (claim.c): acquire pairs with the release store of the pid below,
     * so a matching pid comes with the word computed for it, never the
     * parent's or 0. The word itself is relaxed: a racing recomputation
     * stores the same value. */
    int pid = getpid();
    if (atomic_load_explicit(&self_pid, memory_order_acquire) == pid)
        return atomic_load_explicit(&self_owner, memory_order_relaxed);
    uint64_t start = evb_proc_start(pid);
    uint64_t owner = (uint64_t)(uint32_t)pid << 32 | (uint32_t)start;
    if (!(uint32_t)start)
        owner |= 1; /* never leave the low half zero: 0 means "free" */
    atomic_store_explicit(&self_owner, owner, memory_order_relaxed);
    /* O1: the word before the pid that says it is valid. */
    atomic_store_explicit(&self_pid, pid, memory_order_release);
    return owner;
}

uint32_t evb_proc_fork_generation;

/* The child has one thread now: no access races this (ring.h). */
static void fork_child_bump(void)
{
    evb_proc_fork_generation++;
}

/* Before main(), so that no handle can be opened before a fork that the
 * generation would miss. (A child made by clone() or vfork() without the
 * atfork handlers must exec, or use no handle of its parent's.) */
__attribute__((constructor)) static void fork_gen_init(void)
{
    pthread_atfork(NULL, NULL, fork_child_bump);
}

int evb_proc_alive(uint64_t owner)
{
    int pid = (int)(owner >> 32);
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 0;
    uint64_t start = evb_proc_start(pid);
    if (!start)
        return 0;
    uint32_t want = (uint32_t)owner;
    uint32_t have = (uint32_t)start;
    if (!have)
        have = 1;
    return want == have || (want == 1 && (uint32_t)start == 0);
}

uint64_t evb_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t evb_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
