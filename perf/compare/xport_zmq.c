/*
 * xport_zmq.c - ZeroMQ over ipc:// (a Unix domain socket), PUB/SUB.
 *
 * PUB with ZMQ_XPUB_NODROP, so a reader at its high-water mark holds the
 * publisher back (zmq_send says EAGAIN and the publisher retries) instead
 * of dropping: lossless like the others. SNDHWM and RCVHWM are each
 * cf->buf_bytes / value size messages (at least 1000), so ZeroMQ buffers
 * about twice what a ring holds plus the kernel's socket buffer. ZeroMQ
 * batches on its own (its I/O thread writes what has queued in one
 * syscall), which is its normal mode and is left on. One I/O thread per
 * context (the default); the reader takes each message with zmq_msg_recv
 * and reads it where ZeroMQ put it (no extra copy). Spinning readers poll
 * with ZMQ_DONTWAIT; blocking ones wait in zmq_msg_recv (ZMQ_RCVTIMEO).
 */
#include "xport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "../bench_util.h"

typedef struct zx {
    void *ctx, *s;
    zmq_msg_t m;
    int rcvtimeo;
} zx;

static void endpoint(char *out, size_t cap, const xp_cfg *cf)
{
    snprintf(out, cap, "ipc://%s/%s", cf->dir, cf->name);
}

static int zfail(char *msg, const char *what)
{
    snprintf(msg, 256, "%s: %s", what, zmq_strerror(zmq_errno()));
    return -EIO;
}

static int z_chan_create(const xp_cfg *cf, char *msg)
{
    (void)cf;
    (void)msg;
    return 0;
}

static void z_chan_destroy(const xp_cfg *cf)
{
    char ep[512];
    endpoint(ep, sizeof(ep), cf);
    unlink(ep + 6);
}

static int hwm(const xp_cfg *cf)
{
    uint64_t n = cf->buf_bytes / cf->size;
    return n < 1000 ? 1000 : n > 1000000 ? 1000000 : (int)n;
}

static zx *z_new(int type, const xp_cfg *cf, char *msg)
{
    zx *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->ctx = zmq_ctx_new();
    x->s = x->ctx ? zmq_socket(x->ctx, type) : NULL;
    if (!x->s) {
        zfail(msg, "zmq_socket");
        return NULL;
    }
    int h = hwm(cf), linger = 5000;
    zmq_setsockopt(x->s, ZMQ_SNDHWM, &h, sizeof(h));
    zmq_setsockopt(x->s, ZMQ_RCVHWM, &h, sizeof(h));
    zmq_setsockopt(x->s, ZMQ_LINGER, &linger, sizeof(linger));
    x->rcvtimeo = -1;
    return x;
}

static int z_pub_open(void **h, const xp_cfg *cf, char *msg)
{
    zx *x = z_new(ZMQ_PUB, cf, msg);
    if (!x)
        return -EIO;
    int one = 1;
    if (zmq_setsockopt(x->s, ZMQ_XPUB_NODROP, &one, sizeof(one)))
        return zfail(msg, "ZMQ_XPUB_NODROP");
    char ep[512];
    endpoint(ep, sizeof(ep), cf);
    if (zmq_bind(x->s, ep))
        return zfail(msg, ep);
    *h = x;
    return 0;
}

static int z_send(void *h, const void *v, size_t len)
{
    zx *x = h;
    while (zmq_send(x->s, v, len, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            return -zmq_errno();
        cpu_relax();
    }
    return 0;
}

static void z_close(void *h)
{
    zx *x = h;
    if (!x)
        return;
    zmq_close(x->s);
    zmq_ctx_term(x->ctx);
    free(x);
}

static int z_sub_open(void **h, const xp_cfg *cf, int reader, char *msg)
{
    (void)reader;
    zx *x = z_new(ZMQ_SUB, cf, msg);
    if (!x)
        return -EIO;
    char ep[512];
    endpoint(ep, sizeof(ep), cf);
    if (zmq_setsockopt(x->s, ZMQ_SUBSCRIBE, "", 0) || zmq_connect(x->s, ep))
        return zfail(msg, ep);
    zmq_msg_init(&x->m);
    *h = x;
    return 0;
}

static int z_recv(void *h, xp_value_fn fn, void *arg, int32_t timeout_ms)
{
    zx *x = h;
    int n = 0;
    while (n < 256) {
        int flags = ZMQ_DONTWAIT;
        if (n == 0 && timeout_ms != 0) {
            flags = 0;
            if (timeout_ms != x->rcvtimeo) {
                x->rcvtimeo = timeout_ms;
                zmq_setsockopt(x->s, ZMQ_RCVTIMEO, &x->rcvtimeo, sizeof(x->rcvtimeo));
            }
        }
        if (zmq_msg_recv(&x->m, x->s, flags) < 0) {
            if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
                break;
            return -zmq_errno();
        }
        n++;
        if (fn(zmq_msg_data(&x->m), zmq_msg_size(&x->m), arg))
            break;
    }
    return n;
}

static void z_sub_close(void *h)
{
    zx *x = h;
    if (x)
        zmq_msg_close(&x->m);
    z_close(h);
}

const xp_ops xp_zmq = {
    .name = "zmq",
    .how = "PUB/SUB over ipc://, ZMQ_XPUB_NODROP (lossless), HWM = buffer / value size "
           "each side, zmq_send copy, zmq_msg_recv in place, DONTWAIT spin or RCVTIMEO block",
    .can_fanout = 1, .can_block = 1, .block_best = 1,
    .chan_create = z_chan_create, .chan_destroy = z_chan_destroy,
    .pub_open = z_pub_open, .send = z_send, .pub_close = z_close,
    .sub_open = z_sub_open, .recv = z_recv, .sub_close = z_sub_close,
};
