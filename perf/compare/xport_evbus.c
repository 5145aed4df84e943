/*
 * xport_evbus.c - evbus through its public API only (evbus.h), so the
 * harness runs against whichever libevbus.so the loader finds (run.sh
 * --evbus-lib puts another commit's first).
 *
 * One ring-only topic of one partition per channel, ring_bytes =
 * cf->buf_bytes; the publisher waits when full (block_ms -1); readers are
 * lossless subscribers (they hold the producer back, as a blocking
 * iceoryx queue or a socket's high-water mark does), EVB_IDLE_SPIN or
 * EVB_IDLE_BLOCK. "evbus" sends with evb_publish (one copy into the
 * ring); "evbus-claim" with evb_claim + memcpy + evb_commit (the same one
 * copy, written in place as iceoryx's loan is).
 */
#include "xport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evbus.h"

static evb_bus *parent_bus; /* the parent's handle, for topic create/delete */

static int fail(char *msg, const char *what, const char *name, int rc)
{
    snprintf(msg, 256, "%s(%s): %s %s", what, name, evb_strerror(rc), evb_last_error());
    return rc < 0 ? rc : -EIO;
}

static uint32_t max_event(const xp_cfg *cf)
{
    uint64_t cap = cf->buf_bytes / 4 - 64;
    uint64_t want = cf->size < 65536 ? 65536 : cf->size;
    return (uint32_t)(want < cap ? want : cap);
}

static int evb_chan_create(const xp_cfg *cf, char *msg)
{
    int rc;
    if (!parent_bus && (rc = evb_bus_open(&parent_bus, cf->bus_path, NULL)) < 0)
        return fail(msg, "evb_bus_open", cf->bus_path, rc);
    if (cf->size > max_event(cf)) {
        snprintf(msg, 256, "value %zu B over the topic's limit for a %llu B ring", cf->size,
                 (unsigned long long)cf->buf_bytes);
        return -EINVAL;
    }
    evb_topic_config tc = {.partitions = 1, .ring_bytes = cf->buf_bytes,
                           .max_event_bytes = max_event(cf)};
    rc = evb_topic_create(parent_bus, cf->name, &tc);
    return rc < 0 ? fail(msg, "evb_topic_create", cf->name, rc) : 0;
}

static void evb_chan_destroy(const xp_cfg *cf)
{
    if (parent_bus)
        evb_topic_delete(parent_bus, cf->name);
}

typedef struct pub {
    evb_bus *bus;
    evb_producer *p;
    evb_msg m;
} pub;

static int evb_pub_open(void **h, const xp_cfg *cf, char *msg)
{
    pub *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    int rc = evb_bus_open(&x->bus, cf->bus_path, NULL);
    if (rc < 0)
        return fail(msg, "evb_bus_open", cf->bus_path, rc);
    evb_producer_options po = {.block_ms = -1};
    rc = evb_producer_open(&x->p, x->bus, cf->name, &po);
    if (rc < 0)
        return fail(msg, "evb_producer_open", cf->name, rc);
    x->m.partition = 0;
    *h = x;
    return 0;
}

static int evb_send(void *h, const void *v, size_t len)
{
    pub *x = h;
    x->m.value = v;
    x->m.value_len = (uint32_t)len;
    return evb_publish(x->p, &x->m);
}

static int evb_send_claim(void *h, const void *v, size_t len)
{
    pub *x = h;
    struct evb_claim cl;
    int rc = evb_claim(x->p, 0, NULL, 0, (uint32_t)len, &cl);
    if (rc < 0)
        return rc;
    memcpy(cl.value, v, len);
    return evb_commit(x->p, &cl);
}

static void evb_pub_close(void *h)
{
    pub *x = h;
    if (!x)
        return;
    evb_producer_close(x->p);
    evb_bus_close(x->bus);
    free(x);
}

typedef struct sub {
    evb_bus *bus;
    evb_consumer *c;
    xp_value_fn fn;
    void *arg;
    int stop;
} sub;

static int evb_sub_open(void **h, const xp_cfg *cf, int reader, char *msg)
{
    (void)reader;
    sub *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    int rc = evb_bus_open(&x->bus, cf->bus_path, NULL);
    if (rc < 0)
        return fail(msg, "evb_bus_open", cf->bus_path, rc);
    evb_consumer_options co = {
        .kind = EVB_SUBSCRIBER_LOSSLESS,
        .idle = cf->blocking ? EVB_IDLE_BLOCK : EVB_IDLE_SPIN,
        .partition = -1,
    };
    rc = evb_consumer_open(&x->c, x->bus, cf->name, &co);
    if (rc < 0)
        return fail(msg, "evb_consumer_open", cf->name, rc);
    *h = x;
    return 0;
}

static int on_event(const evb_event *ev, void *arg)
{
    sub *x = arg;
    x->stop = x->fn(ev->value, ev->value_len, x->arg);
    return x->stop;
}

static int evb_recv(void *h, xp_value_fn fn, void *arg, int32_t timeout_ms)
{
    sub *x = h;
    x->fn = fn;
    x->arg = arg;
    x->stop = 0;
    int n = 0;
    if (timeout_ms != 0) {
        /* wait for the first per the idle strategy, then take the rest */
        evb_event ev;
        int rc = evb_consumer_next(x->c, &ev, timeout_ms);
        if (rc == -ETIMEDOUT || rc == -EAGAIN)
            return 0;
        if (rc < 0)
            return rc;
        n = 1;
        if (fn(ev.value, ev.value_len, arg))
            return n;
    }
    int rc = evb_consumer_poll(x->c, on_event, x, 256);
    return rc < 0 ? rc : n + rc;
}

static void evb_sub_close(void *h)
{
    sub *x = h;
    if (!x)
        return;
    evb_consumer_close(x->c);
    evb_bus_close(x->bus);
    free(x);
}

const xp_ops xp_evbus = {
    .name = "evbus",
    .how = "evb_publish per value (one copy into the ring), lossless subscriber, "
           "EVB_IDLE_SPIN or EVB_IDLE_BLOCK",
    .can_fanout = 1, .can_block = 1,
    .chan_create = evb_chan_create, .chan_destroy = evb_chan_destroy,
    .pub_open = evb_pub_open, .send = evb_send, .pub_close = evb_pub_close,
    .sub_open = evb_sub_open, .recv = evb_recv, .sub_close = evb_sub_close,
};

const xp_ops xp_evbus_claim = {
    .name = "evbus-claim",
    .how = "evb_claim + memcpy + evb_commit per value (zero copy), reader as evbus",
    .can_fanout = 1, .can_block = 1,
    .chan_create = evb_chan_create, .chan_destroy = evb_chan_destroy,
    .pub_open = evb_pub_open, .send = evb_send_claim, .pub_close = evb_pub_close,
    .sub_open = evb_sub_open, .recv = evb_recv, .sub_close = evb_sub_close,
};
