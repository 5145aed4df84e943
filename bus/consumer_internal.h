/*
 * consumer_internal.h - the consumer handle, shared by consumer.c (open,
 * close, reading, waiting, commits) and consumer_disk.c (the disk side of
 * durable topics and where seeks land). Nothing outside bus/ sees it.
 */
#ifndef EVB_CONSUMER_INTERNAL_H
#define EVB_CONSUMER_INTERNAL_H

#include "bus_internal.h"
#include "cursor_file.h"
#include "group.h"
#include "dedup.h"
#include "segment.h"

/* Where a durable partition's reader is (evb_consumer_disk.state). */
enum {
    EVB_CDISK_RING = 0, /* in the ring, nothing owed */
    EVB_CDISK_READ,     /* reading the disk log */
    EVB_CDISK_OWED,     /* in the ring, owing the loss of damage skipped at
                           the end of the disk log to its next event */
};

/* A partition's disk side, durable topics only. */
struct evb_consumer_disk {
    struct evb_seg_reader sr;
    bool open;                 /* sr opened */
    uint8_t state;             /* EVB_CDISK_*; read_part() tests it per event,
                                  so RING costs the ring's reads nothing */
    /* EVB_CDISK_OWED: damage skipped (EVB_CONSUMER_SKIP_DAMAGE) that ended
     * the disk log, so no event read from it carried the loss. */
    uint64_t owed_bytes;
    uint64_t owed_events;      /* the events it held, as far as known */
    uint64_t owed_from;        /* the offset expected where it began, when
                                  the count waits for the next offset seen;
                                  EVB_SEG_NO_OFFSET otherwise */
};

struct evb_consumer {
    evb_bus *bus;
    struct evb_topic_map *tm;
    evb_consumer_options opts;
    char name[EVB_NAME_MAX + 1];
    uint32_t n;                 /* partitions read */
    uint32_t next;              /* round-robin index into rd[] */
    uint32_t slot_kind;
    struct evb_ring_reader *rd; /* rd[i] reads partition part[i] */
    uint32_t *part;
    _Atomic uint32_t **bells;
    uint32_t *vals;
    /* A read-only topic (tm->readonly): the readers' slots, which producers
     * of a read-only reader never see, live here, one set per ring. */
    struct evb_reader_slot *ro_slots;
    uint64_t ro_nap_ns;         /* read-only: the next bounded sleep */
    struct evb_cursor_file cur; /* named consumers */
    struct evb_consumer_disk *disk;         /* per partition read, durable topics */
    struct evb_seg_geom geom;
    /* Named consumers of durable topics kept until consumed: the sum of
     * the segment numbers last committed; a commit that changes it may
     * free segments, so it applies the retention nobody else applies. */
    uint64_t retain_mark;
    struct evb_dedup *dedup;    /* EVB_CONSUMER_DEDUP, else NULL */
    int failed;
    /* No group, queue, dedup or disk side: an event is the ring reader's
     * next one as it is, so try_read may take the inlined common case
     * (read_fast, consumer.c). Fixed at open. */
    bool plain;
    /* Group members (consumer_group.c): rd[0..n) read the partitions owned
     * now, part[i] owned at epoch[i]; the arrays hold every partition,
     * bells[] one more (the group's bell). */
    struct evb_group grp;
    uint64_t *epoch;
    /* Per owned partition: events below seen_below[i] may have been
     * handed to an earlier owner (deliveries 2); high[i] is the furthest
     * end handed out, as published to the group file. */
    uint64_t *seen_below;
    uint64_t *high;
    uint64_t gen_seen;          /* the generation last balanced at */
    uint32_t bell_seen;         /* the group's bell then */
    uint64_t next_tick_ms;      /* the next balance and expulsion check */
    uint64_t last_clock_ms;
    uint32_t countdown;         /* events until the clock is read again */
    uint32_t every;             /* ... and its current reload value */
    uint64_t delivered_gone;    /* events read through readers dropped since */
    bool regroup;               /* a commit was fenced: balance at the next call */
    /* Ring-only topics: a gating slot per partition held at the group's
     * committed cursor (consumer_group.c). */
    struct evb_ring_reader *hold;
    uint32_t nhold;
    bool in_callback;
    /* Rejects (dlq.c): the DLQ producer, opened by the first one, and how
     * many events this handle rejected. */
    struct evb_dlq_writer *dlq;
    uint64_t rejects;
    /* Queue group members (consumer_queue.c). */
    uint64_t next_scan_ms;      /* the next look for events to redeliver */
    bool scan_now;              /* a window was full, or nothing new: look now */
    uint32_t present[64];       /* member ids present at the last tick */
    uint32_t npresent;
    uint64_t handed;            /* queue member: events handed to the caller (its
                                   readers read more: lost takes, retakes) */
};

/* consumer.c, for consumer_group.c and consumer_queue.c: one event of
 * reader I (disk or ring), the idle wait. */
int evb_consumer_read_part(evb_consumer *c, uint32_t i, struct evb_frame_view *v);
void evb_consumer_block(evb_consumer *c, uint64_t deadline);

/* The event of view V, read from partition PART. Inline: every delivery
 * fills one, and the call cost as much as the stores. */
static inline void evb_consumer_fill(evb_event *ev, const struct evb_frame_view *v, uint32_t part)
{
    const struct evb_frame *f = v->f;
    /* Read-only: the reader loaded the frame through the ring's view
     * (evb_ring_rframe), so a store through these faults in the caller
     * instead of changing the ring under every other reader. */
    ev->key = v->key;
    ev->value = v->value;
    /* The lengths the decoder checked, not f's: F may be in the ring,
     * where a hostile writer could have changed them since (double fetch;
     * shm/ring.h, evb_frame_view). */
    ev->key_len = v->key_len;
    ev->value_len = v->value_len;
    ev->partition = part;
    ev->type = f->type;
    /* The layout bits are the library's (shm/ring_format.h), not the
     * application's. */
    ev->flags = v->flags & (uint16_t)~(EVB_FRAME_F_VALUE_ALIGNED | EVB_FRAME_F_LINE_PADDED);
    /* Relaxed atomic: F may be a ring frame whose losing padder is still
     * storing the same offset (shm/frame.h, evb_frame_set_claim). */
    ev->offset = __atomic_load_n(&f->offset, __ATOMIC_RELAXED);
    ev->position = v->pos;
    ev->timestamp_ns = f->timestamp_ns;
    ev->producer_seq = f->producer_seq;
    ev->producer_id = f->producer_id;
    ev->deliveries = 0;
    ev->ack_token = 0;
    ev->lost_events = v->lost_events;
    ev->lost_bytes = v->lost_bytes;
}

/* One event from any partition, nothing released first (consumer_batch.c
 * keeps a batch's events in place so): 0, -EAGAIN, or a sticky error. */
int evb_consumer_try_read(evb_consumer *c, evb_event *ev);

/* consumer_queue.c: queue group members. */
/* consumer.c: -ESTALE (message set) when C's bus directory was removed
 * under this process (its ring files unlinked): its commits would land
 * in the data directory a rebuilt bus now uses. 0 otherwise. */
int evb_consumer_bus_gone(const evb_consumer *c);
/* Before a queue member writes its queue file: its sticky failure, or
 * -ESTALE (leaving the group) when the topic was rebuilt under it. */
int evb_cqueue_check(evb_consumer *c);
/* Queue member C's event EV kept its own in flight: for ack_wait +
 * EVB_QUEUE_HOLD_MS from now with LONG (a reject writing its record),
 * else for ack_wait. A sign of life first, so that the member's lease
 * runs from now too. -ESTALE when EV is not its own in flight, or C was
 * expelled (its events are others' to take). */
int evb_cqueue_hold(evb_consumer *c, const evb_event *ev, bool lng);
int evb_cqueue_open(evb_consumer *c);
int evb_cqueue_next(evb_consumer *c, evb_event *ev, int32_t timeout_ms);
int evb_cqueue_poll(evb_consumer *c, int (*fn)(const evb_event *ev, void *arg), void *arg,
                    uint32_t max);

/* consumer_group.c. Join C's group and take a first share. */
int evb_cgroup_open(evb_consumer *c);
/* Leave the group (C's readers are detached by the caller first). */
void evb_cgroup_close(evb_consumer *c);
/* Balance when due; every call of next/poll passes here (cheap: a
 * countdown, then a coarse clock). 0 or a sticky error. */
int evb_cgroup_tick(evb_consumer *c, bool force);
static inline int evb_cgroup_maybe_tick(evb_consumer *c)
{
    if (!c->grp.f || --c->countdown)
        return 0;
    return evb_cgroup_tick(c, false);
}
/* The deadline of C's next tick (mono ns), for sleeping; UINT64_MAX when
 * not a member. */
uint64_t evb_cgroup_deadline_ns(const evb_consumer *c);
int evb_cgroup_commit(evb_consumer *c);

/* consumer_disk.c. Partition I of a durable topic whose disk side has a
 * state (c->disk[i].state != EVB_CDISK_RING): the next event from disk or,
 * owing a loss, from the ring, carrying it; -ESTALE when the reader moved
 * between disk and ring (read again). The ring's own -ESTALE sends the
 * reader to disk through evb_consumer_disk_start. */
int evb_consumer_disk_read(evb_consumer *c, uint32_t i, struct evb_frame_view *v);
/* Partition I's ring no longer holds (POS, OFF): read it from disk. */
int evb_consumer_disk_start(evb_consumer *c, uint32_t i, uint64_t pos, uint64_t off,
                            bool learn);
/* Move partition I per WHENCE (enum evb_start, maybe | EVB_SEEK_STRICT) and
 * VALUE, in the ring or, for durable topics, the disk log. */
int evb_consumer_seek_one(evb_consumer *c, uint32_t i, uint32_t whence, uint64_t value);

#endif
