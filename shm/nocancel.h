/*
 * nocancel.h - thread cancellation held off. No evbus call is a
 * cancellation point (bus/include/evbus.h says so): a thread cancelled
 * (pthread_cancel, deferred) inside one would die holding a process
 * mutex, a slot or lease of a live process (which no reaper frees), a
 * claim the ring counts as open, or a half-linked list. Where a call can
 * reach a cancellation point (open, read, close, fdatasync, nanosleep,
 * pthread_join, pthread_cond_wait...), it runs with cancellation disabled
 * and a pending cancel is acted on at the caller's next cancellation
 * point after it returns, as libc's own calls that must not be cut short
 * do. Hot paths that reach none (a claim under the limit, a read) do not
 * pay the two calls: only their slow paths hold it off.
 */
#ifndef EVB_NOCANCEL_H
#define EVB_NOCANCEL_H

#include <pthread.h>

static inline int evb_cancel_off(void)
{
    int cs;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
    return cs;
}

static inline void evb_cancel_restore(int *cs)
{
    pthread_setcancelstate(*cs, NULL);
}

/* Cancellation off from here to the end of the enclosing block, every
 * return included (the state is put back as the block is left). */
#define EVB_NO_CANCEL                                                                  \
    int evb_cancel_state_ __attribute__((cleanup(evb_cancel_restore), unused)) =     \
        evb_cancel_off()

#endif /* EVB_NOCANCEL_H */
