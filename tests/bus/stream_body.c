/*
 * stream_body.c - see stream_body.h.
 */
#include "stream_body.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    E_OPEN = 10, E_PUBLISH, E_READ, E_CHECKSUM, E_OFFSET, E_SEQ, E_COUNT, E_LOST, E_TIMEOUT,
};

const char *stream_error(int code)
{
    switch (code) {
    case 0: return "ok";
    case E_OPEN: return "open failed";
    case E_PUBLISH: return "publish failed";
    case E_READ: return "read failed";
    case E_CHECKSUM: return "value checksum mismatch (torn or stale event)";
    case E_OFFSET: return "offsets not contiguous within a partition";
    case E_SEQ: return "producer sequence not +1 within a partition";
    case E_COUNT: return "wrong number of events per producer";
    case E_LOST: return "a lossless subscriber was told it lost events";
    case E_TIMEOUT: return "timed out";
    default: return "unknown";
    }
}

int stream_producer(void *arg)
{
    const struct stream_role *role = arg;
    const struct stream_cfg *cfg = role->cfg;
    evb_bus *bus;
    evb_producer *p;
    if (evb_bus_open(&bus, cfg->bus, NULL))
        return E_OPEN;
    evb_producer_options po = {.block_ms = -1};
    if (evb_producer_open(&p, bus, cfg->topic, &po))
        return E_OPEN;
    atomic_fetch_add_explicit(&cfg->sh->ready, 1, memory_order_release);
    if (!t_wait_count(&cfg->sh->go, 1, 60000))
        return E_TIMEOUT;
    enum { BATCH = 16 };
    uint8_t *vals = malloc((size_t)cfg->value_len * BATCH);
    evb_msg m[BATCH];
    int rc = 0;
    /* Odd producers publish in batches, even ones one by one. */
    size_t batch = role->idx & 1 ? BATCH : 1;
    for (uint64_t seq = 0; seq < cfg->per_producer && !rc;) {
        size_t n = batch;
        if (seq + n > cfg->per_producer)
            n = cfg->per_producer - seq;
        for (size_t i = 0; i < n; i++) {
            uint8_t *v = vals + i * cfg->value_len;
            t_value_fill(v, cfg->value_len, (uint32_t)role->idx, seq + i);
            m[i] = (evb_msg){.value = v, .value_len = cfg->value_len,
                             .partition = EVB_PARTITION_ANY};
        }
        int got = n == 1 ? (evb_publish(p, &m[0]) == 0 ? 1 : -1)
                         : evb_publish_batch(p, m, n);
        if (got != (int)n)
            rc = E_PUBLISH;
        seq += n;
    }
    free(vals);
    evb_producer_close(p);
    evb_bus_close(bus);
    return rc;
}

struct sub_state {
    const struct stream_cfg *cfg;
    uint64_t next_offset[EVB_MAX_PARTITIONS];
    /* [producer id][partition]: next producer_seq expected. */
    uint64_t next_seq[64][16];
    uint64_t per_test_producer[64];
    uint64_t total;
    int err;
};

static int check_event(const evb_event *ev, void *arg)
{
    struct sub_state *st = arg;
    uint32_t tp;
    uint64_t tseq;
    if (ev->lost_events)
        st->err = E_LOST;
    else if (!t_value_check(ev->value, ev->value_len, &tp, &tseq) || tp >= 64)
        st->err = E_CHECKSUM;
    else if (ev->offset != st->next_offset[ev->partition]) {
        st->err = E_OFFSET;
        fprintf(stderr, "partition %u: offset %llu at position %llu, expected %llu\n",
                ev->partition, (unsigned long long)ev->offset,
                (unsigned long long)ev->position,
                (unsigned long long)st->next_offset[ev->partition]);
    }
    else if (ev->producer_id >= 64 || ev->partition >= 16 ||
             ev->producer_seq != st->next_seq[ev->producer_id][ev->partition])
        st->err = E_SEQ;
    if (st->err)
        return 1;
    st->next_offset[ev->partition]++;
    st->next_seq[ev->producer_id][ev->partition]++;
    st->per_test_producer[tp]++;
    st->total++;
    return 0;
}

int stream_subscriber(void *arg)
{
    const struct stream_role *role = arg;
    const struct stream_cfg *cfg = role->cfg;
    evb_bus *bus;
    evb_consumer *c;
    if (evb_bus_open(&bus, cfg->bus, NULL))
        return E_OPEN;
    /* Subscriber 0 spins, the others sleep on the doorbell. */
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS,
                               .idle = role->idx == 0 ? EVB_IDLE_SPIN : EVB_IDLE_BLOCK};
    if (evb_consumer_open(&c, bus, cfg->topic, &co))
        return E_OPEN;
    struct sub_state *st = calloc(1, sizeof *st);
    st->cfg = cfg;
    uint64_t want = cfg->per_producer * (uint64_t)cfg->producers;
    atomic_fetch_add_explicit(&cfg->sh->ready, 1, memory_order_release);
    uint64_t deadline = t_now_ms() + 600000;
    int rc = 0;
    while (st->total < want && !st->err) {
        evb_event ev;
        int r;
        if (role->idx == 2) {
            /* One subscriber uses the callback API. */
            r = evb_consumer_poll(c, check_event, st, 1000);
            if (r == 0)
                r = evb_consumer_next(c, &ev, 100) == 0 ? (check_event(&ev, st), 1) : 0;
        } else {
            r = evb_consumer_next(c, &ev, 100);
            if (r == 0)
                check_event(&ev, st);
            else if (r == -ETIMEDOUT)
                r = 0;
        }
        if (r < 0) {
            rc = E_READ;
            break;
        }
        if (t_now_ms() > deadline) {
            rc = E_TIMEOUT;
            break;
        }
    }
    if (!rc)
        rc = st->err;
    for (int i = 0; !rc && i < cfg->producers; i++)
        if (st->per_test_producer[i] != cfg->per_producer)
            rc = E_COUNT;
    if (rc)
        fprintf(stderr, "subscriber %d: %s after %llu events\n", role->idx, stream_error(rc),
                (unsigned long long)st->total);
    free(st);
    evb_consumer_close(c);
    evb_bus_close(bus);
    return rc;
}
