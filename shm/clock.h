/*
 * clock.h - the event clock's reading, inline (clock.c keeps the anchor).
 *
 * Every claim reads the clock, and a call out of the claim is a call the
 * publish path pays for twice: the call itself, and the registers the
 * caller must save around it (stores, which queue behind the frame's own
 * stores while a reader holds the frame's line; perf/RESULTS.md,
 * sixteenth session). So the common case (the counter between two
 * anchors) is read here; anything else goes to evb_event_ns_slow().
 */
#ifndef EVB_CLOCK_H
#define EVB_CLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* clock.c: the kernel keeps time by the x86 time-stamp counter (then
 * evb_event_ns() reads it directly; else it is clock_gettime, and this is
 * false, as on every other architecture). */
bool evb_clock_kernel_tsc(void);
/* clock.c: evb_event_ns() off its common case (calibration, a re-anchor
 * due, a clock that is not the counter). */
uint64_t evb_event_ns_slow(void);

#if defined(__x86_64__)
#include <x86intrin.h>
#define EVB_HAVE_TSC 1

enum { EVB_CLK_UNKNOWN, EVB_CLK_CALIBRATING, EVB_CLK_TSC, EVB_CLK_SYSCALL };

/*
 * The anchor, under a seqlock (one writer at a time by the odd value's
 * CAS; clock.c). Readers are every publishing thread of the process; the
 * writer is whichever of them first finds the anchor due. Process-local.
 */
struct evb_clk {
    _Atomic uint64_t lock_seq;   /* even: stable; odd: being rewritten */
    _Atomic uint64_t anchor_tsc; /* counter at the anchor */
    _Atomic uint64_t anchor_ns;  /* CLOCK_REALTIME at the anchor */
    _Atomic uint64_t rate;       /* ns per tick, 32.32 fixed point */
    _Atomic uint64_t due_tsc;    /* counter value of the next anchor */
    _Atomic int state;           /* EVB_CLK_* */
};
extern __attribute__((visibility("hidden"))) struct evb_clk evb_clk;

/* CLOCK_REALTIME in ns for an event stamp (clock.c says how); thread-safe. */
static inline uint64_t evb_event_ns(void)
{
    uint64_t t = __rdtsc();
    for (;;) {
        /* V4: acquire pairs with the writer's even release. */
        uint64_t s1 = atomic_load_explicit(&evb_clk.lock_seq, memory_order_acquire);
        /* Relaxed fields: the seqlock decides whether they belong together. */
        int mode = atomic_load_explicit(&evb_clk.state, memory_order_relaxed);
        uint64_t t0 = atomic_load_explicit(&evb_clk.anchor_tsc, memory_order_relaxed);
        uint64_t n0 = atomic_load_explicit(&evb_clk.anchor_ns, memory_order_relaxed);
        uint64_t mult = atomic_load_explicit(&evb_clk.rate, memory_order_relaxed);
        uint64_t due = atomic_load_explicit(&evb_clk.due_tsc, memory_order_relaxed);
        /* V4: the field loads before the second seq load. */
        atomic_thread_fence(memory_order_acquire);
        /* Relaxed: ordered by the fence above. */
        if (atomic_load_explicit(&evb_clk.lock_seq, memory_order_relaxed) != s1 || (s1 & 1)) {
            if (mode != EVB_CLK_TSC)
                return evb_event_ns_slow();
            continue;
        }
        if (__builtin_expect(mode != EVB_CLK_TSC || t >= due || t < t0, 0))
            return evb_event_ns_slow();
        __extension__ typedef unsigned __int128 evb_u128;
        return n0 + (uint64_t)(((evb_u128)(t - t0) * mult) >> 32);
    }
}
#else
static inline uint64_t evb_event_ns(void)
{
    return evb_event_ns_slow();
}
#endif

#endif /* EVB_CLOCK_H */
