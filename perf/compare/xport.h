/*
 * xport.h - the one interface every system of perf/compare is driven
 * through, so that the measuring code (compare.c) is the same for all.
 *
 * A channel carries values of at most cf->size bytes from one publisher
 * process to cf->readers reader processes, every reader getting every
 * value in order (lossless: a full buffer makes the publisher wait). The
 * parent makes the channel (chan_create) before it forks the processes
 * and removes it after they are gone (chan_destroy); each child opens its
 * own end. A value sent before a reader is attached may be lost (sockets
 * and iceoryx attach asynchronously): compare.c sends sync values until
 * every reader has seen one, and only then the measured ones.
 *
 * send copies the caller's value into the system once, by the cheapest
 * way the system offers (evb_publish; a loaned iceoryx chunk; zmq_send;
 * nng_send), and waits (spinning) while the system is full.
 * recv hands every value ready now (at most 256) to FN, in order; with
 * TIMEOUT_MS 0 it returns 0 at once when none is ready, else it waits for
 * the first as the reader was opened to wait (spinning or blocking, cf->
 * blocking). It returns the number handed over or a negative errno; FN's
 * non-zero return stops it after that value. The value pointer is valid
 * only during FN.
 */
#ifndef EVB_COMPARE_XPORT_H
#define EVB_COMPARE_XPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct xp_cfg {
    size_t size;          /* largest value, bytes */
    uint64_t buf_bytes;   /* the buffering each system gets, bytes (see README) */
    int readers;          /* reader processes */
    int blocking;         /* readers sleep in the system's wait when idle */
    const char *bus_path; /* evbus: the private bus directory */
    const char *dir;      /* sockets: a private directory for ipc:// paths */
    char name[64];        /* channel name, unique per run */
} xp_cfg;

typedef int (*xp_value_fn)(const void *v, size_t len, void *arg);

typedef struct xp_ops {
    const char *name;
    const char *how;      /* one line: API and settings, printed in the header */
    int can_fanout;       /* more than one reader per channel */
    int can_block;        /* has a blocking wait besides spinning */
    int block_best;       /* the socket peers: data arrives through the
                             library's own I/O threads, which a spinning
                             reader pinned to one core starves, so the
                             saturation tests (throughput, fan-out) give
                             them blocking readers */
    int (*chan_create)(const xp_cfg *cf, char *msg);
    void (*chan_destroy)(const xp_cfg *cf);
    int (*pub_open)(void **h, const xp_cfg *cf, char *msg);
    int (*send)(void *h, const void *v, size_t len);
    void (*pub_close)(void *h);
    int (*sub_open)(void **h, const xp_cfg *cf, int reader, char *msg);
    int (*recv)(void *h, xp_value_fn fn, void *arg, int32_t timeout_ms);
    void (*sub_close)(void *h);
    /* each process of a system that needs one (iceoryx's runtime) calls
     * this first with a name unique in the run; may be NULL */
    int (*proc_init)(const char *proc_name, char *msg);
} xp_ops;

extern const xp_ops xp_evbus, xp_evbus_claim, xp_ring;
#ifdef HAVE_ICEORYX
extern const xp_ops xp_iceoryx;
#endif
#ifdef HAVE_ZMQ
extern const xp_ops xp_zmq;
#endif
#ifdef HAVE_NNG
extern const xp_ops xp_nng;
#endif

#endif /* EVB_COMPARE_XPORT_H */
