/*
 * stat.c - live counters of partitions and their readers, read straight
 * from the rings' shared memory for `evbus stat`. Everything here is a
 * statistic: relaxed loads, no ordering promised between fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "frame.h"
#include "segment.h"

static int open_part(evb_bus *bus, const char *topic, uint32_t partition,
                     struct evb_topic_map **tm)
{
    if (!bus)
        return -EINVAL;
    int rc = evb_topic_map_open(bus, topic, tm);
    if (rc)
        return rc;
    if (partition >= (*tm)->nparts) {
        evb_topic_map_close(*tm);
        return evb_err_set(-EINVAL, "topic %s has no partition %u", topic, partition);
    }
    return 0;
}

EVB_EXPORT int evb_partition_stat(evb_bus *bus, const char *topic, uint32_t partition,
                                  struct evb_partition_stat *out)
{
    EVB_NO_CANCEL;
    struct evb_topic_map *tm;
    int rc = open_part(bus, topic, partition, &tm);
    if (rc)
        return rc;
    struct evb_ring *r = &tm->rings[partition];
    struct evb_ring_hdr *h = r->hdr;
    memset(out, 0, sizeof *out);
    evb_ring_load_tail(r, &out->tail_position, &out->tail_offset);
    /* A damaged tail stops every reader and producer: so it must stop
     * the stat (the topic shown damaged), not be shown as a number. */
    if ((rc = evb_ring_tail_check(r, out->tail_position, out->tail_offset))) {
        evb_topic_map_close(tm);
        return rc;
    }
    out->capacity = r->capacity;
    /* Relaxed throughout: a snapshot for `evbus stat`, each word on its
     * own; nothing is read through these values. */
    out->aborted = atomic_load_explicit(&h->aborted, memory_order_relaxed);
    out->padded_dead = atomic_load_explicit(&h->padded_dead, memory_order_relaxed);
    out->padded_stalled = atomic_load_explicit(&h->padded_stalled, memory_order_relaxed);
    out->reaped_readers = atomic_load_explicit(&h->reaped_readers, memory_order_relaxed);
    /* Every offset handed out since the ring was made (base_offset:
     * written once before the magic's release) is aborted, still open, or
     * published: published is what is left. Counting commits instead, in
     * the producer after its stamp CAS, lost one whenever a producer died
     * between the two (issue 9). The one imprecision left: a process
     * killed between padding a claim and counting it in aborted leaves
     * that claim's events here. Clamped: the words may be garbage. */
    uint64_t spent = out->aborted + evb_ring_open_events(r, out->tail_position,
                                                         out->tail_offset);
    uint64_t made = out->tail_offset >= h->base_offset ? out->tail_offset - h->base_offset : 0;
    out->published = made > spent && spent >= out->aborted ? made - spent : 0;
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        struct evb_producer_slot *s = &r->pslots[i];
        /* Relaxed: counted, not read through (snapshot, as above). */
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
        if (!owner)
            continue;
        /* A dead producer's slot waits to be reaped: it is not attached. */
        if (evb_proc_alive(owner))
            out->producers++;
    }
    for (uint32_t i = 0; i < EVB_RING_READER_SLOTS; i++) {
        struct evb_reader_slot *s = &r->rslots[i];
        /* Relaxed: counted, not read through (snapshot, as above). A dead
         * reader's slot waits to be reaped: it is not attached. */
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
        if (owner && atomic_load_explicit(&s->kind, memory_order_relaxed) != EVB_SLOT_FLUSHER &&
            evb_proc_alive(owner))
            out->readers++;
    }
    if (tm->ddir[0]) {
        /* Relaxed: the durable words as numbers to show, not the F1, S2,
         * G1, E1 edges of bus/durable/durable.h; the owner word is a hint
         * (W1), checked for a live process before it is shown. */
        out->flushed_position = atomic_load_explicit(&h->flushed, memory_order_relaxed);
        out->durable_position = atomic_load_explicit(&h->durable, memory_order_relaxed);
        out->log_start_position = atomic_load_explicit(&h->log_start_pos, memory_order_relaxed);
        out->log_start_offset = atomic_load_explicit(&h->log_start_offset, memory_order_relaxed);
        out->fsyncs = atomic_load_explicit(&h->fsyncs, memory_order_relaxed);
        out->recovered_dropped = atomic_load_explicit(&h->recovered_dropped,
                                                      memory_order_relaxed);
        /* Relaxed: a report. A word that is no errno is another
         * process's writing, shown as the damage it is, never passed on as
         * a number that could read as a count or a success. */
        int32_t fe = atomic_load_explicit(&h->flush_error, memory_order_relaxed);
        out->flush_error = fe == 0 || (fe < 0 && fe >= -4095) ? fe : -EBADMSG;
        out->retention_unconsumed = atomic_load_explicit(&h->retention_unconsumed,
                                                         memory_order_relaxed);
        uint64_t fo = atomic_load_explicit(&h->flusher, memory_order_relaxed);
        out->flusher_pid = fo && evb_proc_alive(fo) ? (uint32_t)(fo >> 32) : 0;
        char pdir[PATH_MAX + 16];
        evb_part_dir(tm, partition, pdir, sizeof pdir);
        uint64_t *bases;
        size_t n;
        if (evb_seg_list(pdir, &bases, &n) == 0) {
            out->segments = (uint32_t)n;
            for (size_t k = 0; k < n; k++) {
                char path[PATH_MAX + 64];
                struct stat st;
                evb_seg_path(path, sizeof path, pdir, bases[k], "log");
                if (stat(path, &st) == 0)
                    out->disk_bytes += (uint64_t)st.st_blocks * 512;
            }
            free(bases);
        }
    }
    evb_topic_map_close(tm);
    return 0;
}

/* The timestamp and offset of the event at POS, below the tail TPOS;
 * false when the frame there is not a committed event of that position (a
 * pad, lapped, still being written, or garbage). */
bool evb_stat_frame(const struct evb_ring *r, uint64_t pos, uint64_t tpos, uint64_t *ts,
                    uint64_t *off)
{
    if (pos % EVB_FRAME_ALIGN || pos >= tpos || tpos - pos > r->capacity ||
        (pos & r->mask) + EVB_FRAME_HDR > r->capacity)
        return false;
    const struct evb_frame *f = evb_ring_rframe(r, pos);
    /* A1: acquire, as a reader's load of the stamp: the header after it
     * is the committed one. */
    uint64_t st = atomic_load_explicit(&((struct evb_frame *)f)->stamp, memory_order_acquire);
    if (st != (pos | EVB_STAMP_DATA))
        return false;
    *ts = f->timestamp_ns;
    *off = f->offset;
    /* The lap check of a reader: a producer moves the tail past
     * pos + capacity before it writes over this frame, so a tail still at
     * or below that, loaded after the header (acquire fence, then the T1
     * load in evb_ring_load_tail), means the header read is this event's. */
    atomic_thread_fence(memory_order_acquire);
    uint64_t t2, o2;
    evb_ring_load_tail(r, &t2, &o2);
    return t2 <= pos + r->capacity;
}

/* Most pads one look steps over: a lap's end pad and a few padded claims
 * of dead or stalled producers; a longer run is shown as unknown. */
#define STAT_PAD_STEPS 64

/* The timestamp of the first event at or after POS, below the tail TPOS:
 * a reader's next event. Pads carry no time (a lap's end pad, a padded
 * claim), so the walk steps over them as a reader does. False when there
 * is none yet, or a frame on the way is not committed, lapped, or not a
 * frame. */
static bool next_event_ts(const struct evb_ring *r, uint64_t pos, uint64_t tpos, uint64_t *ts)
{
    uint64_t at = pos, off;
    for (int k = 0; k <= STAT_PAD_STEPS; k++) {
        if (at % EVB_FRAME_ALIGN || at >= tpos || tpos - pos > r->capacity)
            return false;
        const struct evb_frame *f = evb_ring_rframe(r, at);
        /* A1: acquire, as a reader's load of the stamp: a pad's length
         * after it is the committed one. */
        uint64_t st = atomic_load_explicit(&((struct evb_frame *)f)->stamp,
                                           memory_order_acquire);
        if (st != (at | EVB_STAMP_PAD)) {
            /* An event (evb_stat_frame checks it was not lapped), or
             * nothing readable yet. */
            if (!evb_stat_frame(r, at, tpos, ts, &off))
                return false;
            if (at == pos)
                return true;
            /* T1, the lap check of evb_stat_frame, again from POS for the
             * pads read on the way: acquire fence, then the tail (a
             * producer moves it past pos + capacity before it writes over
             * the first of them). */
            atomic_thread_fence(memory_order_acquire);
            uint64_t t2, o2;
            evb_ring_load_tail(r, &t2, &o2);
            return t2 <= pos + r->capacity;
        }
        struct evb_frame_step s;
        uint64_t room = r->capacity - (at & r->mask);
        if (evb_frame_decode(f, st, at, room, r->max_frame, r->max_event, &s) != EVB_FRAME_PAD)
            return false;
        at += s.skip;
    }
    return false;
}

EVB_EXPORT int evb_reader_list(evb_bus *bus, const char *topic, uint32_t partition,
                               evb_reader_stat *out, uint32_t cap)
{
    EVB_NO_CANCEL;
    struct evb_topic_map *tm;
    int rc = open_part(bus, topic, partition, &tm);
    if (rc)
        return rc;
    struct evb_ring *r = &tm->rings[partition];
    uint64_t tpos, toff;
    evb_ring_load_tail(r, &tpos, &toff);
    uint32_t n = 0;
    uint64_t gate = UINT64_MAX; /* the slowest gating cursor */
    for (uint32_t i = 0; i < EVB_RING_READER_SLOTS; i++) {
        struct evb_reader_slot *s = &r->rslots[i];
        /* Relaxed: a snapshot for `evbus stat`; the name is copied below
         * without any guarantee, and the values are only shown. */
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
        if (!owner || !evb_proc_alive(owner))
            continue;
        /* A flusher's slot is its doorbell registration, no reader: it
         * keeps no cursor, so it would show as a reader of offset 0 whose
         * lag only grows (its progress is the flushed position), and the
         * partition's readers count leaves it out too. Relaxed, as above. */
        if (atomic_load_explicit(&s->kind, memory_order_relaxed) == EVB_SLOT_FLUSHER)
            continue;
        if (n < cap && out) {
            evb_reader_stat *o = &out[n];
            memset(o, 0, sizeof *o);
            char name[sizeof s->name];
            memcpy(name, s->name, sizeof name);
            name[sizeof name - 1] = '\0';
            snprintf(o->name, sizeof o->name, "%s", name);
            /* Relaxed: kind, cursor and counters are shown, not relied on;
             * a slot that changed hands meanwhile shows a mix, once. */
            uint32_t kind = atomic_load_explicit(&s->kind, memory_order_relaxed);
            o->kind = kind == EVB_SLOT_CONSUMER   ? EVB_CONSUMER
                      : kind == EVB_SLOT_LOSSLESS ? EVB_SUBSCRIBER_LOSSLESS
                                                  : EVB_SUBSCRIBER;
            o->pid = (uint32_t)(owner >> 32);
            o->position = atomic_load_explicit(&s->cursor, memory_order_relaxed);
            o->offset = atomic_load_explicit(&s->cursor_offset, memory_order_relaxed);
            o->lag_bytes = tpos > o->position ? tpos - o->position : 0;
            /* Relaxed: statistics. */
            o->delivered = atomic_load_explicit(&s->delivered, memory_order_relaxed);
            o->lost = atomic_load_explicit(&s->lost, memory_order_relaxed);
            o->lag_events = toff > o->offset ? toff - o->offset : 0;
            uint64_t ts, off;
            (void)off;
            if (next_event_ts(r, o->position, tpos, &ts))
                o->next_timestamp_ns = ts;
            o->gating = !r->durable && EVB_SLOT_GATES(kind);
            if (o->gating && o->position < gate)
                gate = o->position;
        }
        n++;
    }
    /* Producers are held by the lowest gating cursor (shm/claim.c's limit). */
    for (uint32_t k = 0; out && k < n && k < cap; k++)
        out[k].gating = out[k].gating && out[k].position == gate;
    evb_topic_map_close(tm);
    return (int)n;
}

/* PID's command name into OUT (16 bytes), shown safely: bytes outside
 * printable ASCII become '?'. Empty when /proc does not say (gone, or
 * hidden by hidepid). */
static void proc_comm(uint32_t pid, char out[16])
{
    char path[64];
    memset(out, 0, 16);
    snprintf(path, sizeof path, "/proc/%u/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, 15);
    close(fd);
    if (n <= 0) {
        out[0] = '\0';
        return;
    }
    out[n] = '\0';
    if (out[n - 1] == '\n')
        out[n - 1] = '\0';
    for (ssize_t k = 0; out[k]; k++)
        if (out[k] < 0x20 || out[k] > 0x7e)
            out[k] = '?';
}

EVB_EXPORT int evb_producer_list(evb_bus *bus, const char *topic, uint32_t partition,
                                 evb_producer_stat *out, uint32_t cap)
{
    EVB_NO_CANCEL;
    struct evb_topic_map *tm;
    int rc = open_part(bus, topic, partition, &tm);
    if (rc)
        return rc;
    struct evb_ring *r = &tm->rings[partition];
    uint32_t n = 0;
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++) {
        struct evb_producer_slot *s = &r->pslots[i];
        /* Relaxed: a snapshot for `evbus stat`, as evb_reader_list(); the
         * counters are the owner's alone (ring_format.h) and only shown. */
        uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
        if (!owner || !evb_proc_alive(owner))
            continue;
        if (n < cap && out) {
            evb_producer_stat *o = &out[n];
            memset(o, 0, sizeof *o);
            o->pid = (uint32_t)(owner >> 32);
            /* Relaxed: statistics (above). */
            o->producer_id = atomic_load_explicit(&s->producer_id, memory_order_relaxed);
            o->published = atomic_load_explicit(&s->published, memory_order_relaxed);
            o->published_bytes = atomic_load_explicit(&s->published_bytes,
                                                      memory_order_relaxed);
            o->backpressure = atomic_load_explicit(&s->backpressure, memory_order_relaxed);
            proc_comm(o->pid, o->comm);
        }
        n++;
    }
    evb_topic_map_close(tm);
    return (int)n;
}
