/*
 * spin.h - the library's one bounded busy-wait. Whoever waits on shared
 * memory (a reader with nothing to read, a producer held by the limit, a
 * sync waiter) first polls in place for a short budget, because an answer
 * a few hundred nanoseconds away then costs no system call and no context
 * switch on either side. What comes after the budget (yield, a futex
 * sleep on a doorbell) is the caller's: each waits on a different word.
 */
#ifndef EVB_SPIN_H
#define EVB_SPIN_H

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"
#include "ring.h"

/* Turns before the first clock read: a reply this close is seen with no
 * clock call in its path. */
#define EVB_SPIN_FREE 64u
/* After that, the clock is read once per this many turns. */
#define EVB_SPIN_CLOCK_EVERY 32u

struct evb_spin {
    uint64_t budget_ns;  /* how long to spin once the clock was first read */
    uint64_t start_ns;   /* first clock read (mono ns); 0 before it */
    uint64_t now_ns;     /* latest clock read */
    unsigned turns;
};

static inline void evb_spin_init(struct evb_spin *s, uint64_t budget_ns)
{
    *s = (struct evb_spin){.budget_ns = budget_ns};
}

/* One turn: pause and say true while the budget lasts; false from then
 * on. A zero budget spins exactly EVB_SPIN_FREE turns. */
static inline bool evb_spin_once(struct evb_spin *s)
{
    unsigned n = ++s->turns;
    if (n > EVB_SPIN_FREE) {
        if (!s->start_ns)
            s->now_ns = s->start_ns = evb_mono_ns();
        else if (n % EVB_SPIN_CLOCK_EVERY == 0)
            s->now_ns = evb_mono_ns();
        if (s->now_ns - s->start_ns >= s->budget_ns)
            return false;
    }
    evb_cpu_relax();
    return true;
}

#endif /* EVB_SPIN_H */
