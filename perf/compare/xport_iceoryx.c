/*
 * xport_iceoryx.c - iceoryx 2.0 through its C binding, the loan API.
 *
 * The harness starts RouDi (run.sh, with perf/compare/roudi.toml: chunk
 * pools for every value size measured) and each process registers its own
 * runtime. One service per channel ("evbcmp", name, "v"). The publisher
 * loans a chunk of the value size, copies the value into it (the same one
 * copy evbus's claim makes), and publishes it; history 0 and
 * ConsumerTooSlowPolicy WAIT_FOR_CONSUMER, so a full reader queue holds the
 * publisher back (lossless, as the others). Readers: queue capacity 256
 * (iceoryx's maximum), QueueFullPolicy BLOCK_PRODUCER; spinning on
 * iox_sub_take_chunk, or blocking in a WaitSet on HAS_DATA. The C binding
 * of 2.0 does not give a chunk's payload size, so the reader takes the
 * channel's value size as the length (every value of a run has it).
 */
#include "xport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iceoryx_binding_c/chunk.h>
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/notification_info.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/types.h>
#include <iceoryx_binding_c/wait_set.h>

#include "../bench_util.h"

/* Handles open in this process: the runtime goes when the last does (a
 * round trip's process has a publisher and a subscriber). */
static int handles;

static void handle_closed(void)
{
    if (--handles == 0)
        iox_runtime_shutdown();
}

static int iox_proc_init(const char *proc_name, char *msg)
{
    (void)msg;
    iox_set_loglevel(Iceoryx_LogLevel_Warn); /* its debug lines would swamp the output */
    iox_runtime_init(proc_name); /* terminates the process if RouDi is not there */
    return 0;
}

static int iox_chan_create(const xp_cfg *cf, char *msg)
{
    (void)cf;
    (void)msg;
    return 0; /* services appear when the publisher offers */
}

static void iox_chan_destroy(const xp_cfg *cf)
{
    (void)cf;
}

typedef struct pub {
    iox_pub_storage_t storage;
    iox_pub_t p;
} pub;

static int iox_pub_open(void **h, const xp_cfg *cf, char *msg)
{
    (void)msg;
    pub *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    iox_pub_options_t o;
    iox_pub_options_init(&o);
    o.historyCapacity = 0;
    o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
    x->p = iox_pub_init(&x->storage, "evbcmp", cf->name, "v", &o);
    handles++;
    *h = x;
    return 0;
}

static int iox_send(void *h, const void *v, size_t len)
{
    pub *x = h;
    void *chunk = NULL;
    for (;;) {
        enum iox_AllocationResult r = iox_pub_loan_chunk(x->p, &chunk, (uint32_t)len);
        if (r == AllocationResult_SUCCESS)
            break;
        if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS &&
            r != AllocationResult_TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL)
            return -ENOMEM;
        cpu_relax();
    }
    memcpy(chunk, v, len);
    iox_pub_publish_chunk(x->p, chunk); /* waits while a reader's queue is full */
    return 0;
}

static void iox_pub_close(void *h)
{
    pub *x = h;
    if (!x)
        return;
    iox_pub_deinit(x->p);
    free(x);
    handle_closed();
}

typedef struct sub {
    iox_sub_storage_t storage;
    iox_sub_t s;
    iox_ws_storage_t ws_storage;
    iox_ws_t ws;
    size_t size;
} sub;

static int iox_sub_open(void **h, const xp_cfg *cf, int reader, char *msg)
{
    (void)reader;
    sub *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    iox_sub_options_t o;
    iox_sub_options_init(&o);
    o.queueCapacity = 256;
    o.historyRequest = 0;
    o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    x->s = iox_sub_init(&x->storage, "evbcmp", cf->name, "v", &o);
    handles++;
    x->size = cf->size;
    if (cf->blocking) {
        x->ws = iox_ws_init(&x->ws_storage);
        if (iox_ws_attach_subscriber_state(x->ws, x->s, SubscriberState_HAS_DATA, 0, NULL) !=
            WaitSetResult_SUCCESS) {
            snprintf(msg, 256, "iox_ws_attach_subscriber_state failed");
            return -EIO;
        }
    }
    *h = x;
    return 0;
}

static int iox_recv(void *h, xp_value_fn fn, void *arg, int32_t timeout_ms)
{
    sub *x = h;
    uint64_t t_end = timeout_ms > 0 ? now_ns() + (uint64_t)timeout_ms * 1000000u : UINT64_MAX;
    int n = 0;
    while (n < 256) {
        const void *chunk = NULL;
        enum iox_ChunkReceiveResult r = iox_sub_take_chunk(x->s, &chunk);
        if (r == ChunkReceiveResult_SUCCESS) {
            int stop = fn(chunk, x->size, arg);
            iox_sub_release_chunk(x->s, chunk);
            n++;
            if (stop)
                break;
            continue;
        }
        if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE)
            return -EIO;
        if (n > 0 || timeout_ms == 0)
            break;
        if (x->ws) {
            iox_notification_info_t info[4];
            uint64_t missed = 0;
            if (timeout_ms < 0) {
                iox_ws_wait(x->ws, info, 4, &missed);
            } else {
                uint64_t now = now_ns();
                if (now >= t_end)
                    break;
                struct timespec ts = {(time_t)((t_end - now) / 1000000000u),
                                      (long)((t_end - now) % 1000000000u)};
                iox_ws_timed_wait(x->ws, ts, info, 4, &missed);
            }
        } else {
            if (now_ns() >= t_end)
                break;
            cpu_relax();
        }
    }
    return n;
}

static void iox_sub_close(void *h)
{
    sub *x = h;
    if (!x)
        return;
    if (x->ws)
        iox_ws_deinit(x->ws);
    iox_sub_deinit(x->s);
    free(x);
    handle_closed();
}

const xp_ops xp_iceoryx = {
    .name = "iceoryx",
    .how = "C binding: iox_pub_loan_chunk + memcpy + iox_pub_publish_chunk, "
           "WAIT_FOR_CONSUMER / BLOCK_PRODUCER, reader queue 256, take_chunk spin or WaitSet",
    .can_fanout = 1, .can_block = 1,
    .chan_create = iox_chan_create, .chan_destroy = iox_chan_destroy,
    .pub_open = iox_pub_open, .send = iox_send, .pub_close = iox_pub_close,
    .sub_open = iox_sub_open, .recv = iox_recv, .sub_close = iox_sub_close,
    .proc_init = iox_proc_init,
};
