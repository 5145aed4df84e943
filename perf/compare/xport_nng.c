/*
 * xport_nng.c - nng over ipc:// (a Unix domain socket), PUSH/PULL.
 *
 * nng's PUB/SUB drops when a reader is behind and has no setting against
 * it, so a lossless fan-out is what an nng user writes: one PUSH socket
 * per reader (ipc path <name>-<reader>), the publisher sending each value
 * to each. SENDBUF and RECVBUF are each cf->buf_bytes / value size
 * messages, at most 8192 (nng's limit). The publisher listens, readers
 * dial (non-blocking, retried by nng until the listener is there).
 * nng_send copies the value into a message; the reader takes it with
 * nng_recvmsg and reads it in place. Spinning readers use
 * NNG_FLAG_NONBLOCK; blocking ones wait in nng_recvmsg (NNG_OPT_RECVTIMEO).
 */
#include "xport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "../bench_util.h"

#define NNG_MAX_READERS 8

typedef struct nx {
    nng_socket s[NNG_MAX_READERS];
    int n;
    int rcvtimeo;
} nx;

static void endpoint(char *out, size_t cap, const xp_cfg *cf, int reader)
{
    snprintf(out, cap, "ipc://%s/%s-%d", cf->dir, cf->name, reader);
}

static int nfail(char *msg, const char *what, int rv)
{
    snprintf(msg, 256, "%s: %s", what, nng_strerror(rv));
    return -EIO;
}

static int n_chan_create(const xp_cfg *cf, char *msg)
{
    if (cf->readers > NNG_MAX_READERS) {
        snprintf(msg, 256, "at most %d readers", NNG_MAX_READERS);
        return -EINVAL;
    }
    return 0;
}

static void n_chan_destroy(const xp_cfg *cf)
{
    char ep[512];
    for (int i = 0; i < cf->readers; i++) {
        endpoint(ep, sizeof(ep), cf, i);
        unlink(ep + 6);
    }
}

static int bufs(const xp_cfg *cf)
{
    uint64_t n = cf->buf_bytes / cf->size;
    return n < 16 ? 16 : n > 8192 ? 8192 : (int)n;
}

static int n_pub_open(void **h, const xp_cfg *cf, char *msg)
{
    nx *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    char ep[512];
    int rv;
    for (int i = 0; i < cf->readers; i++) {
        endpoint(ep, sizeof(ep), cf, i);
        if ((rv = nng_push0_open(&x->s[i])) != 0)
            return nfail(msg, "nng_push0_open", rv);
        nng_socket_set_int(x->s[i], NNG_OPT_SENDBUF, bufs(cf));
        if ((rv = nng_listen(x->s[i], ep, NULL, 0)) != 0)
            return nfail(msg, ep, rv);
        x->n++;
    }
    *h = x;
    return 0;
}

static int n_send(void *h, const void *v, size_t len)
{
    nx *x = h;
    for (int i = 0; i < x->n; i++) {
        int rv = nng_send(x->s[i], (void *)v, len, 0); /* waits while full */
        if (rv != 0)
            return -EIO;
    }
    return 0;
}

static void n_close(void *h)
{
    nx *x = h;
    if (!x)
        return;
    for (int i = 0; i < x->n; i++)
        nng_close(x->s[i]);
    free(x);
}

static int n_sub_open(void **h, const xp_cfg *cf, int reader, char *msg)
{
    nx *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    char ep[512];
    endpoint(ep, sizeof(ep), cf, reader);
    int rv;
    if ((rv = nng_pull0_open(&x->s[0])) != 0)
        return nfail(msg, "nng_pull0_open", rv);
    nng_socket_set_int(x->s[0], NNG_OPT_RECVBUF, bufs(cf));
    if ((rv = nng_dial(x->s[0], ep, NULL, NNG_FLAG_NONBLOCK)) != 0)
        return nfail(msg, ep, rv);
    x->n = 1;
    x->rcvtimeo = -2;
    *h = x;
    return 0;
}

static int n_recv(void *h, xp_value_fn fn, void *arg, int32_t timeout_ms)
{
    nx *x = h;
    int n = 0;
    while (n < 256) {
        int flags = NNG_FLAG_NONBLOCK;
        if (n == 0 && timeout_ms != 0) {
            flags = 0;
            if (timeout_ms != x->rcvtimeo) {
                x->rcvtimeo = timeout_ms;
                nng_socket_set_ms(x->s[0], NNG_OPT_RECVTIMEO,
                                  timeout_ms < 0 ? NNG_DURATION_INFINITE : timeout_ms);
            }
        }
        nng_msg *m;
        int rv = nng_recvmsg(x->s[0], &m, flags);
        if (rv == NNG_EAGAIN || rv == NNG_ETIMEDOUT)
            break;
        if (rv != 0)
            return -EIO;
        n++;
        int stop = fn(nng_msg_body(m), nng_msg_len(m), arg);
        nng_msg_free(m);
        if (stop)
            break;
    }
    return n;
}

const xp_ops xp_nng = {
    .name = "nng",
    .how = "PUSH/PULL over ipc://, one PUSH socket per reader (nng's PUB drops), "
           "SENDBUF/RECVBUF = min(8192, buffer / value size) messages, nng_send copy, "
           "nng_recvmsg in place, NONBLOCK spin or RECVTIMEO block",
    .can_fanout = 1, .can_block = 1, .block_best = 1,
    .chan_create = n_chan_create, .chan_destroy = n_chan_destroy,
    .pub_open = n_pub_open, .send = n_send, .pub_close = n_close,
    .sub_open = n_sub_open, .recv = n_recv, .sub_close = n_close,
};
