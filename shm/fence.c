/*
 * fence.c - the heavy side of the library's asymmetric fences (claim.c X1,
 * X2, X4).
 *
 * A producer's commit is the hottest path of the bus. Deciding it against
 * a padder with a CAS on the frame's stamp (R1) costs a locked instruction
 * on the very line a spinning reader polls: every commit waits for that
 * line to come back across cores with the store buffer drained. X1 moves
 * the store-load barrier the decision needs from the producer, which runs
 * it per event, to the rare side: a padder (a producer stalled for
 * stall_ns, or dead) and a reader about to sleep. Those call membarrier(2),
 * which makes every CPU running a thread of a registered process execute a
 * full barrier before it returns: the producer's side then only needs the
 * compiler not to reorder its store and load.
 *
 * A process registers once (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) before
 * its first fenceless commit; a producer whose registration fails commits
 * with the CAS, as version 3 did. GLOBAL_EXPEDITED reaches only registered
 * processes, which is all it has to: the fenceless producers. The tail
 * lease (X4) relies on the same: only a registered (fenceless) producer
 * takes it, so a revoker's heavy fence reaches its holder.
 */
#include "ring.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

/* The pid whose registration succeeded (or failed: negated), so a forked
 * child, another process, asks again. Relaxed: a race only registers
 * twice, which the kernel allows. */
static _Atomic int registered_pid;

bool evb_fence_register(void)
{
    int pid = getpid();
    /* Relaxed: see registered_pid. */
    int seen = atomic_load_explicit(&registered_pid, memory_order_relaxed);
    if (seen == pid)
        return true;
    if (seen == -pid)
        return false;
    bool ok = membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
    /* Relaxed: see registered_pid. */
    atomic_store_explicit(&registered_pid, ok ? pid : -pid, memory_order_relaxed);
    return ok;
}

int evb_fence_heavy(void)
{
    if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0)
        return 0;
    /* Older kernels, or a filter that lets only the slow form through:
     * it waits for every CPU to pass a quiescent state (milliseconds),
     * which covers registered processes too. */
    if (membarrier(MEMBARRIER_CMD_GLOBAL) == 0)
        return 0;
    return -errno;
}
