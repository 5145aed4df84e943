/*
 * dlq.c - rejecting events into dead-letter topics: the DLQ made on first
 * use, the record written in place of a claim on it, and the decoder that
 * reads one back. Putting events back on their topic is dlq_resubmit.c's;
 * the record's bytes are dlq_format.h's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer_internal.h"
#include "dlq.h"
#include "dlq_format.h"

static_assert(EVB_DLQ_OVERHEAD_BYTES ==
                  (EVB_DLQ_HDR_BYTES + EVB_NAME_MAX + EVB_DLQ_REASON_MAX + EVB_NAME_MAX +
                   EVB_DLQ_ALIGN - 1) / EVB_DLQ_ALIGN * EVB_DLQ_ALIGN,
              "EVB_DLQ_OVERHEAD_BYTES is the largest record beside the value");
static_assert(EVB_DLQ_REASON_MAX <= UINT16_MAX, "reason_len is a u16");

struct evb_dlq_writer {
    evb_producer *p;
    bool sync;                 /* the origin is SYNC: wait for the disk */
};

bool evb_dlq_is_dlq(const char *topic)
{
    size_t n = strlen(topic), k = sizeof EVB_DLQ_SUFFIX - 1;
    return n >= k && strcmp(topic + n - k, EVB_DLQ_SUFFIX) == 0;
}

int evb_dlq_name(const char *topic, char *out)
{
    size_t n = strlen(topic);
    if (n + sizeof EVB_DLQ_SUFFIX - 1 > EVB_NAME_MAX)
        return evb_err_set(-ENAMETOOLONG, "topic %s: a dead-letter topic needs a name of at "
                           "most %d bytes before \"%s\", not %zu", topic,
                           EVB_NAME_MAX - (int)(sizeof EVB_DLQ_SUFFIX - 1), EVB_DLQ_SUFFIX, n);
    snprintf(out, EVB_NAME_MAX + 1, "%s%s", topic, EVB_DLQ_SUFFIX);
    return 0;
}

/* What a DLQ made by reject looks like: ORIGIN's durability, flush
 * interval and mode, one partition, room for its largest event as a
 * record (the ring doubled until that fits), no retention (dlq.h). An origin
 * whose largest event leaves no room for a record in the largest ring
 * (max_event_bytes within 1240 bytes of 4 GiB) gets no DLQ: -EMSGSIZE. */
int evb_dlq_config(const evb_topic_config *origin, evb_topic_config *cfg)
{
    /* In 64 bits: an origin near the 32-bit limit must not wrap to a
     * DLQ of a few hundred bytes. */
    uint64_t max_event = (uint64_t)origin->max_event_bytes + EVB_DLQ_OVERHEAD_BYTES;
    if (max_event > evb_topic_max_event(EVB_RING_MAX_CAPACITY))
        return evb_err_set(-EMSGSIZE, "max_event_bytes %u leaves no room for a dead-letter "
                           "record (at most %llu)", origin->max_event_bytes,
                           (unsigned long long)(evb_topic_max_event(EVB_RING_MAX_CAPACITY) -
                                                EVB_DLQ_OVERHEAD_BYTES));
    *cfg = (evb_topic_config){0};
    cfg->partitions = 1;
    cfg->durability = origin->durability;
    cfg->flush_ms = origin->durability == EVB_DURABILITY_NONE ? 0 : origin->flush_ms;
    cfg->file_mode = origin->file_mode;
    cfg->max_event_bytes = (uint32_t)max_event;
    cfg->ring_bytes = origin->ring_bytes;
    while (cfg->ring_bytes < EVB_RING_MAX_CAPACITY &&
           max_event > evb_topic_max_event(cfg->ring_bytes))
        cfg->ring_bytes *= 2;
    return 0;
}

int evb_dlq_parts_refused(const char *dlq, uint32_t parts)
{
    return evb_err_set(-EINVAL, "dead-letter topic %s: %u partitions; a dead-letter topic has "
                       "one, so that an offset names one record (the first reject makes "
                       "one)", dlq, parts);
}

static int writer_open(struct evb_dlq_writer **out, evb_bus *bus,
                       const struct evb_topic_map *origin)
{
    char name[EVB_NAME_MAX + 1];
    int rc = evb_dlq_name(origin->name, name);
    if (rc)
        return rc;
    struct evb_dlq_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    evb_producer_options po = {.block_ms = EVB_DLQ_BLOCK_MS};
    rc = evb_producer_open(&w->p, bus, name, &po);
    if (rc == -ENOENT) {
        /* Two rejecting processes may race here: topics are created by
         * renaming a finished directory in, so the loser sees -EEXIST and
         * opens the winner's DLQ, whatever config it chose. */
        evb_topic_config cfg;
        rc = evb_dlq_config(&origin->cfg, &cfg);
        if (!rc)
            rc = evb_topic_create(bus, name, &cfg);
        if (rc == 0 || rc == -EEXIST)
            rc = evb_producer_open(&w->p, bus, name, &po);
    }
    /* One made by hand (or by an older build) with more partitions:
     * records would scatter where no dlq command finds them. */
    struct evb_topic_info ti;
    if (!rc && !(rc = evb_topic_info(bus, name, &ti)) && ti.config.partitions != 1) {
        evb_producer_close(w->p);
        free(w);
        return evb_dlq_parts_refused(name, ti.config.partitions);
    }
    if (rc) {
        if (w->p)
            evb_producer_close(w->p);
        free(w);
        return evb_err_prefix(rc, "dead-letter topic %s", name);
    }
    w->sync = origin->cfg.durability == EVB_DURABILITY_SYNC;
    *out = w;
    return 0;
}

void evb_dlq_writer_close(struct evb_dlq_writer *w)
{
    if (!w)
        return;
    evb_producer_close(w->p);
    free(w);
}

int evb_dlq_args(const struct evb_topic_map *origin, const evb_event *ev, const char *reason,
                 uint32_t deliveries)
{
    if (reason && strnlen(reason, EVB_DLQ_REASON_MAX + 1) > EVB_DLQ_REASON_MAX)
        return evb_err_set(-EINVAL, "reject reason longer than %d bytes", EVB_DLQ_REASON_MAX);
    if (evb_dlq_is_dlq(origin->name))
        return evb_err_set(-EINVAL, "topic %s is a dead-letter topic: its events are not "
                           "rejected again", origin->name);
    if ((ev->key_len && !ev->key) || (ev->value_len && !ev->value) || deliveries == 0)
        return evb_err_set(-EINVAL, "topic %s: the event to reject has a length without "
                           "its bytes, or no delivery", origin->name);
    return 0;
}

int evb_dlq_append(struct evb_dlq_writer **w, evb_bus *bus, const struct evb_topic_map *origin,
                   const evb_event *ev, const char *reason, uint32_t deliveries,
                   const char *rejecter, int32_t block_ms)
{
    /* Tests stop a queue member here to rebuild the bus under it. */
    EVB_CRASH_POINT("dlq.append");
    int rc = evb_dlq_args(origin, ev, reason, deliveries);
    if (rc)
        return rc;
    if (!reason)
        reason = "";
    if (!rejecter)
        rejecter = "";
    size_t rl = strlen(reason);
    if (!*w && (rc = writer_open(w, bus, origin)))
        return rc;
    uint32_t tl = (uint32_t)strlen(origin->name);
    uint32_t jl = (uint32_t)strnlen(rejecter, EVB_NAME_MAX);
    uint32_t at = evb_dlq_value_at(tl, (uint32_t)rl, jl);
    uint64_t total = (uint64_t)at + ev->value_len;
    if (total > UINT32_MAX)
        return -EMSGSIZE;
    struct evb_claim cl;
    evb_producer_set_block_ms((*w)->p, block_ms);
    if ((rc = evb_claim((*w)->p, 0, ev->key, ev->key_len, (uint32_t)total, &cl)))
        return evb_err_set(rc, "dead-letter topic %s.dlq: claiming %llu bytes: %s",
                           origin->name, (unsigned long long)total, evb_strerror(rc));
    struct evb_dlq_hdr h = {
        .magic = EVB_DLQ_MAGIC, .version = EVB_DLQ_VERSION, .hdr_bytes = EVB_DLQ_HDR_BYTES,
        .format = EVB_DLQ_FORMAT_WORD, .origin_partition = ev->partition,
        .origin_offset = ev->offset, .origin_position = ev->position,
        .origin_ts_ns = ev->timestamp_ns, .reject_ns = evb_real_ns(),
        .producer_seq = ev->producer_seq, .producer_id = ev->producer_id,
        .deliveries = deliveries, .type = ev->type, .flags = ev->flags,
        .topic_len = (uint16_t)tl, .reason_len = (uint16_t)rl, .rejecter_len = (uint16_t)jl,
        .rejecter_pid = (uint32_t)getpid(), .value_len = ev->value_len,
    };
    uint8_t *v = cl.value;
    memcpy(v, &h, sizeof h);
    memcpy(v + EVB_DLQ_HDR_BYTES, origin->name, tl);
    memcpy(v + EVB_DLQ_HDR_BYTES + tl, reason, rl);
    memcpy(v + EVB_DLQ_HDR_BYTES + tl + rl, rejecter, jl);
    memset(v + EVB_DLQ_HDR_BYTES + tl + rl + jl, 0, at - (EVB_DLQ_HDR_BYTES + tl + rl + jl));
    if (ev->value_len)
        memcpy(v + at, ev->value, ev->value_len);
    if ((rc = evb_commit((*w)->p, &cl)))
        return rc;
    /* A SYNC topic's consumer may commit as soon as this returns: the
     * rejected event must be on disk by then, or a crash loses it. */
    if ((*w)->sync && (rc = evb_producer_sync((*w)->p, -1)))
        return rc;
    return 0;
}

EVB_EXPORT int evb_consumer_reject(evb_consumer *c, const evb_event *ev, const char *reason)
{
    EVB_NO_CANCEL;
    if (!c || !ev)
        return evb_err_set(-EINVAL, "evb_consumer_reject: %s is NULL", !c ? "consumer" : "event");
    if (c->failed)
        return c->failed;
    evb_err_clear();
    bool mine = false;
    for (uint32_t i = 0; i < c->n && !mine; i++)
        mine = c->part[i] == ev->partition;
    if (!mine)
        return evb_err_set(-EINVAL, "topic %s: partition %u is not read by this consumer",
                           c->tm->name, ev->partition);
    /* A queue member of the bus's previous life (J7, group.c): its DLQ
     * is the old one's, its slot not its own to settle. Looked at again
     * after the append, which may wait. */
    int rc = c->opts.kind == EVB_QUEUE_MEMBER ? evb_cqueue_check(c) : 0;
    if (rc)
        return rc;
    uint32_t deliveries = ev->deliveries ? ev->deliveries : 1;
    if ((rc = evb_dlq_args(c->tm, ev, reason, deliveries)))
        return rc;
    /* Still ours, and kept ours while the record is written: an event
     * acknowledged already, or taken by another member after ack_wait or
     * our expulsion, gets no record (resubmitted, it would be delivered
     * again; found by a cold attack). */
    if (c->opts.kind == EVB_QUEUE_MEMBER && (rc = evb_cqueue_hold(c, ev, true)))
        return rc;
    rc = evb_dlq_append(&c->dlq, c->bus, c->tm, ev, reason, deliveries, c->name,
                        EVB_DLQ_BLOCK_MS);
    if (rc) {
        /* Not rejected: ours again as any event in flight (ack_wait from
         * now), to ack, nack or reject again. */
        if (c->opts.kind == EVB_QUEUE_MEMBER)
            evb_cqueue_hold(c, ev, false);
        return rc;
    }
    c->rejects++;
    if (c->opts.kind == EVB_QUEUE_MEMBER) {
        if ((rc = evb_cqueue_check(c)))
            return rc;
        /* Handled: acknowledged, so no member gets it again. -ESTALE: it
         * went to another member meanwhile (ack_wait), which may reject
         * it too. */
        return evb_queue_dead_letter(&c->grp, ev->partition, ev->ack_token, ev->position);
    }
    if (c->opts.kind == EVB_GROUP_MEMBER)
        evb_group_rejected(&c->grp, ev->partition);
    return 0;
}

EVB_EXPORT int evb_consumer_rejects(evb_consumer *c, uint64_t *count)
{
    EVB_NO_CANCEL;
    if (!c || !count)
        return evb_err_set(-EINVAL, "evb_consumer_rejects: %s is NULL", !c ? "consumer" : "count");
    *count = c->rejects;
    return 0;
}

/* N bytes at P as a NUL-terminated name into OUT; 0 or -EBADMSG when
 * they are not a name a topic or consumer may have. */
static int copy_name(const uint8_t *p, uint32_t n, char *out, bool may_be_empty)
{
    if ((!n && !may_be_empty) || n > EVB_NAME_MAX)
        return -EBADMSG;
    for (uint32_t i = 0; i < n; i++) {
        char ch = (char)p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return -EBADMSG;
        out[i] = ch;
    }
    out[n] = '\0';
    return 0;
}

EVB_EXPORT int evb_dlq_decode(const evb_event *ev, struct evb_dlq_record *out)
{
    if (!ev || !out || (ev->value_len && !ev->value) || (ev->key_len && !ev->key))
        return evb_err_set(-EINVAL, "evb_dlq_decode: %s",
                           !ev ? "event is NULL" : !out ? "out is NULL"
                                                 : "the event has a length without its bytes");
    memset(out, 0, sizeof *out);
    const uint8_t *v = ev->value;
    uint32_t len = ev->value_len;
    if (len < EVB_DLQ_HDR_BYTES)
        return evb_err_set(-EBADMSG, "DLQ event at offset %llu: value of %u bytes, shorter "
                           "than a record header (%u)", (unsigned long long)ev->offset, len,
                           EVB_DLQ_HDR_BYTES);
    /* Copied once: the value may be in a mapping another process writes,
     * and every check below must hold for the values used. */
    struct evb_dlq_hdr h;
    memcpy(&h, v, sizeof h);
    if (h.magic != EVB_DLQ_MAGIC)
        return evb_err_set(-EBADMSG, "DLQ event at offset %llu: magic 0x%x, expected 0x%x",
                           (unsigned long long)ev->offset, h.magic, EVB_DLQ_MAGIC);
    if (h.version != EVB_DLQ_VERSION || h.format != EVB_DLQ_FORMAT_WORD ||
        h.hdr_bytes != EVB_DLQ_HDR_BYTES)
        return evb_err_set(-EPROTO, "DLQ event at offset %llu: record version %u format 0x%x, "
                           "this build reads version %u format 0x%x",
                           (unsigned long long)ev->offset, h.version, h.format,
                           EVB_DLQ_VERSION, (unsigned)EVB_DLQ_FORMAT_WORD);
    /* Each length is at most 16 bits, so the sum cannot overflow. */
    uint32_t at = evb_dlq_value_at(h.topic_len, h.reason_len, h.rejecter_len);
    if (h.reason_len > EVB_DLQ_REASON_MAX || h.deliveries == 0 || h.reserved ||
        h.reserved2 || h.origin_partition >= EVB_MAX_PARTITIONS ||
        (uint64_t)at + h.value_len != len)
        return evb_err_set(-EBADMSG, "DLQ event at offset %llu: record fields out of range "
                           "(reason %u bytes, deliveries %u, partition %u, strings end at %u, "
                           "value %u bytes, record %u bytes)", (unsigned long long)ev->offset,
                           h.reason_len, h.deliveries, h.origin_partition, at, h.value_len,
                           len);
    const uint8_t *s = v + EVB_DLQ_HDR_BYTES;
    if (copy_name(s, h.topic_len, out->origin_topic, false) ||
        copy_name(s + h.topic_len + h.reason_len, h.rejecter_len, out->rejecter, true))
        return evb_err_set(-EBADMSG, "DLQ event at offset %llu: a topic or consumer name "
                           "that is not one", (unsigned long long)ev->offset);
    memcpy(out->reason, s + h.topic_len, h.reason_len);
    out->reason[h.reason_len] = '\0';
    if (memchr(out->reason, '\0', h.reason_len))
        return evb_err_set(-EBADMSG, "DLQ event at offset %llu: reason holds a NUL byte",
                           (unsigned long long)ev->offset);
    out->reason_len = h.reason_len;
    out->origin_partition = h.origin_partition;
    out->deliveries = h.deliveries;
    out->origin_offset = h.origin_offset;
    out->origin_position = h.origin_position;
    out->origin_timestamp_ns = h.origin_ts_ns;
    out->reject_time_ns = h.reject_ns;
    out->producer_seq = h.producer_seq;
    out->producer_id = h.producer_id;
    out->rejecter_pid = h.rejecter_pid;
    out->type = h.type;
    out->flags = h.flags;
    out->key = ev->key;
    out->key_len = ev->key_len;
    out->value = v + at;
    out->value_len = h.value_len;
    return 0;
}
