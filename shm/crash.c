/*
 * crash.c - crash points for fault tests. Compiled into the test library
 * only (EVB_CRASH_POINTS). EVB_CRASH_AT names the point; EVB_CRASH_SKIP
 * lets that many passes go by first; EVB_CRASH_SIGNAL=STOP stops the
 * process there instead of killing it. A test may also set
 * evb_crash_hook, called at every point in the thread that reaches it:
 * to hold that one thread there while another acts (shm/clock.c's
 * clock.reanchor, held while another thread forks).
 */
#ifdef EVB_CRASH_POINTS
#include "ring.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

_Atomic(evb_crash_hook_fn) evb_crash_hook;

static _Atomic long crash_skip = -1;
static _Atomic int crash_armed = -1; /* -1 unknown, 0 no, 1 yes */

/* A forked child may arm a point its parent never did: forget the cache. */
static void crash_forget(void)
{
    atomic_store_explicit(&crash_armed, -1, memory_order_relaxed);
    atomic_store_explicit(&crash_skip, -1, memory_order_relaxed);
}

__attribute__((constructor)) static void crash_init(void)
{
    pthread_atfork(NULL, NULL, crash_forget);
}

void evb_crash_point(const char *name)
{
    /* Relaxed: a test sets it before it makes the threads that reach the
     * points (pthread_create orders the store before them). */
    evb_crash_hook_fn hook = atomic_load_explicit(&evb_crash_hook, memory_order_relaxed);
    if (hook)
        hook(name);
    /* Relaxed: every thread computes the same answer from the environment. */
    int armed = atomic_load_explicit(&crash_armed, memory_order_relaxed);
    if (armed < 0) {
        armed = getenv("EVB_CRASH_AT") != NULL;
        atomic_store_explicit(&crash_armed, armed, memory_order_relaxed);
    }
    if (!armed)
        return;
    const char *at = getenv("EVB_CRASH_AT");
    if (!at || strcmp(at, name) != 0)
        return;
    /* Relaxed, and a load then a store rather than one RMW: the tests
     * that arm a point hit it from one thread at a time, and a lost
     * decrement would only move the crash by one pass. */
    long skip = atomic_load_explicit(&crash_skip, memory_order_relaxed);
    if (skip < 0) {
        const char *s = getenv("EVB_CRASH_SKIP");
        skip = s ? atol(s) : 0;
    }
    atomic_store_explicit(&crash_skip, skip - 1, memory_order_relaxed);
    if (skip > 0)
        return;
    const char *sig = getenv("EVB_CRASH_SIGNAL");
    if (sig && strcmp(sig, "STOP") == 0) {
        /* Relaxed: a cache of the environment, as above; stopped once,
         * the process runs on without crash points. */
        atomic_store_explicit(&crash_armed, 0, memory_order_relaxed);
        raise(SIGSTOP);
        return;
    }
    raise(SIGKILL);
}
#else
/* Production builds: no crash points (ISO C wants a declaration here). */
typedef int evb_crash_points_disabled;
#endif
