/*
 * t_helpers.c - see t_helpers.h.
 */
#include "t_helpers.h"

#include <errno.h>
#include <ftw.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>
#include <xxhash.h>

static char bus_dir[256];

const char *t_bus_dir(void)
{
    if (!bus_dir[0]) {
        snprintf(bus_dir, sizeof bus_dir, "/dev/shm/evbus-test-XXXXXX");
        if (!mkdtemp(bus_dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return bus_dir;
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s;
    (void)f;
    (void)w;
    remove(p);
    return 0;
}

static char data_dir[256];

const char *t_data_dir(void)
{
    if (!data_dir[0]) {
        snprintf(data_dir, sizeof data_dir, "/tmp/evbus-data-XXXXXX");
        if (!mkdtemp(data_dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return data_dir;
}

void t_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void t_bus_cleanup(void)
{
    if (bus_dir[0])
        t_rmtree(bus_dir);
    bus_dir[0] = '\0';
    if (data_dir[0] && !getenv("EVB_TEST_KEEP_DATA"))
        t_rmtree(data_dir);
    data_dir[0] = '\0';
}

uint64_t t_env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtoull(s, NULL, 10) : dflt;
}

pid_t t_spawn(int (*fn)(void *arg), void *arg)
{
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* A test that fails or is killed must not leave children running
         * (they would publish, and flush to disk, forever). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(99);
        _exit(fn(arg));
    }
    return pid;
}

uint64_t t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool t_task_asleep(pid_t tid, int timeout_ms)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    uint64_t until = t_now_ms() + (uint64_t)timeout_ms;
    do {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        /* "tid (comm) S ...": the comm may hold spaces or parentheses. */
        const char *e = strrchr(buf, ')');
        if (e && e[1] == ' ' && e[2] == 'S')
            return true;
        usleep(1000);
    } while (t_now_ms() < until);
    return false;
}

int t_wait_exit(pid_t pid, int timeout_ms)
{
    uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -1;
        if (t_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(1000);
    }
}

struct t_shared *t_shared_new(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        abort();
    return p;
}

bool t_wait_count(_Atomic uint64_t *ctr, uint64_t n, int timeout_ms)
{
    uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
    while (atomic_load_explicit(ctr, memory_order_acquire) < n) {
        if (t_now_ms() >= end)
            return false;
        usleep(200);
    }
    return true;
}

void t_value_fill(void *buf, uint32_t len, uint32_t producer, uint64_t seq)
{
    uint8_t *b = buf;
    memcpy(b, &producer, 4);
    memcpy(b + 4, &seq, 8);
    uint64_t x = seq * 0x9e3779b97f4a7c15ull ^ producer;
    for (uint32_t i = 12; i < len - 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)x;
    }
    uint64_t h = XXH64(b, len - 8, 0);
    memcpy(b + len - 8, &h, 8);
}

bool t_value_check(const void *buf, uint32_t len, uint32_t *producer, uint64_t *seq)
{
    const uint8_t *b = buf;
    if (len < 24)
        return false;
    uint64_t h;
    memcpy(&h, b + len - 8, 8);
    if (XXH64(b, len - 8, 0) != h)
        return false;
    memcpy(producer, b, 4);
    memcpy(seq, b + 4, 8);
    return true;
}

int t_syscall_fails(long nr, int err)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return -1;
    return 0;
}
