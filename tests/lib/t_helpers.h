/*
 * t_helpers.h - shared helpers for the evbus tests: private buses,
 * processes, a start gate in shared memory, deadlines, and values that
 * carry their own checksum so a torn or stale event is caught.
 */
#ifndef EVB_T_HELPERS_H
#define EVB_T_HELPERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "evbus.h"

/* A fresh bus directory under /dev/shm, removed by t_bus_cleanup(). */
const char *t_bus_dir(void);
void t_bus_cleanup(void);

/* A fresh data directory on disk (/tmp), removed by t_bus_cleanup(). */
const char *t_data_dir(void);
/* rm -rf PATH */
void t_rmtree(const char *path);

/* Event counts: env NAME when set (sanitizer runs use smaller ones). */
uint64_t t_env_u64(const char *name, uint64_t dflt);

/* fork() and run fn(arg) in the child, which exits with its return value. */
pid_t t_spawn(int (*fn)(void *arg), void *arg);
/* Wait for PID up to TIMEOUT_MS; returns its exit code, 128+signal when
 * killed, or -1 on timeout (the child is then killed). */
int t_wait_exit(pid_t pid, int timeout_ms);

/* A MAP_SHARED page that survives fork: counters for start gates. */
struct t_shared {
    _Atomic uint64_t ready;
    _Atomic uint64_t go;
    _Atomic uint64_t done;
    _Atomic uint64_t val[64];
};
struct t_shared *t_shared_new(void);
/* Poll COND-like counter until it reaches N or TIMEOUT_MS passes. */
bool t_wait_count(_Atomic uint64_t *ctr, uint64_t n, int timeout_ms);

uint64_t t_now_ms(void);

/* Whether thread TID of this process is asleep (state S in its
 * /proc/self/task/TID/stat) within TIMEOUT_MS: a thread that does nothing
 * but sleep on a futex is then in the kernel's queue. */
bool t_task_asleep(pid_t tid, int timeout_ms);

/* A seccomp filter on the calling thread (and the threads it creates
 * after): system call NR fails with ERR, every other one runs. 0, or -1
 * where seccomp filters are not available (the caller skips). */
int t_syscall_fails(long nr, int err);

/* Fill a value of LEN >= 24 bytes: producer id, sequence, then bytes
 * derived from both, with an xxh64 checksum in the last 8 bytes. */
void t_value_fill(void *buf, uint32_t len, uint32_t producer, uint64_t seq);
/* true when the checksum matches; returns producer and sequence. */
bool t_value_check(const void *buf, uint32_t len, uint32_t *producer, uint64_t *seq);

#endif
