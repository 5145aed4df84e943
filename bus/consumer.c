/*
 * consumer.c - every reader kind behind one handle: which partitions it
 * reads, how it waits (spin, yield, futex), and for named consumers when to
 * commit. Where seeks land and the disk side of durable topics are
 * consumer_disk.c's; the cursor file itself is cursor_file.c's.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "consumer_internal.h"
#include "dlq.h"
#include "read_inline.h"
#include "spin.h"

#define EVB_SPIN_NS 50000u /* 50 us */
/* Longest nap of an idle read-only reader (block()): its worst wake-up
 * latency, and 200 wake-ups a second per idle reader. */
#define EVB_RO_NAP_MAX_NS 5000000u /* 5 ms */

/* The offset to commit with reader I's position: EVB_FRAME_NO_OFFSET when
 * it is not known yet (a seek that learns it from the next frame), so the
 * resume learns it too; a known one is checked against the frame there
 * (consumer_disk.c, EVB_START_COMMITTED). */
static uint64_t commit_offset(const evb_consumer *c, uint32_t i)
{
    bool learning = c->disk && c->disk[i].state ? c->disk[i].sr.learn : c->rd[i].learn;
    return learning ? EVB_FRAME_NO_OFFSET : c->rd[i].offset;
}

/* One partition: the disk while behind, else the ring. */
int evb_consumer_read_part(evb_consumer *c, uint32_t i, struct evb_frame_view *v)
{
    struct evb_ring_reader *rd = &c->rd[i];
    for (int hop = 0; hop < 4; hop++) {
        if (c->disk && c->disk[i].state) {
            /* -ESTALE: it moved between disk and ring; read again. */
            int rc = evb_consumer_disk_read(c, i, v);
            if (rc != -ESTALE)
                return rc;
            continue;
        }
        int rc = evb_ring_read(rd, v);
        if (rc != -ESTALE)
            return rc;
        if (!c->disk)
            return -EBADMSG;
        if ((rc = evb_consumer_disk_start(c, i, rd->pos, rd->offset, rd->learn)))
            return rc;
    }
    return -EAGAIN;
}

/*
 * A caller that may read the topic but not write it maps the rings
 * read-only (topic.c): it can neither corrupt nor truncate them. It may be
 * a subscriber, or a named consumer of a durable topic (producers there
 * wait for the flusher, never for readers). A reader that gates producers
 * on a ring-only topic slows them down, so it needs write access: -EACCES.
 */
static int readonly_ok(const evb_consumer *c, const char *topic)
{
    /* On a durable topic nobody gates producers (they wait for the
     * flusher), so every kind may read it read-only. */
    if (c->opts.kind == EVB_SUBSCRIBER || c->tm->ddir[0])
        return 0;
    return evb_err_set(-EACCES, "topic %s: you may only read it, and a %s of a topic that "
                       "is not durable holds its producers back, which takes write access",
                       topic, c->opts.kind == EVB_CONSUMER ? "named consumer"
                              : c->opts.kind >= EVB_GROUP_MEMBER ? "group member"
                                                                 : "lossless subscriber");
}

/* EVB_CONSUMER_DEDUP: the tables, and a named consumer's from its file
 * at the positions it starts at (dedup.c). */
static int dedup_open(evb_consumer *c)
{
    if (!(c->dedup = evb_dedup_new(c->n)))
        return -ENOMEM;
    if (!c->cur.map)
        return 0;
    int rc = evb_dedup_file_open(c->dedup, c->tm, c->name, false);
    for (uint32_t i = 0; !rc && i < c->n; i++)
        rc = evb_dedup_load(c->dedup, i, c->part[i], c->rd[i].pos);
    return rc;
}

EVB_EXPORT int evb_consumer_open(evb_consumer **out, evb_bus *bus, const char *topic,
                                 const evb_consumer_options *opts)
{
    EVB_NO_CANCEL;
    if (!out || !bus)
        return evb_err_set(-EINVAL, "evb_consumer_open: %s is NULL", !out ? "out" : "bus");
    *out = NULL;
    evb_err_clear();
    evb_consumer_options o = {0};
    if (opts)
        o = *opts;
    bool group = o.kind == EVB_GROUP_MEMBER;
    bool queue = o.kind == EVB_QUEUE_MEMBER;
    bool named = o.kind == EVB_CONSUMER || group || queue;
    if (o.kind > EVB_QUEUE_MEMBER || o.idle > EVB_IDLE_YIELD ||
        (o.start & ~EVB_SEEK_STRICT) > EVB_START_TIME ||
        (o.flags & ~(EVB_CONSUMER_SKIP_DAMAGE | EVB_CONSUMER_DEDUP)))
        return evb_err_set(-EINVAL, "consumer options out of range");
    if (queue && (o.flags & EVB_CONSUMER_DEDUP))
        return evb_err_set(-EINVAL, "duplicate suppression is for named consumers and "
                           "partition groups, not queue groups: queue members take a "
                           "partition's events out of order, so no member sees a "
                           "producer's sequence rise");
    if ((group || queue) && o.only_partition)
        return evb_err_set(-EINVAL, "a group member reads the partitions the group gives it, "
                           "not one of its choosing");
    if (named) {
        int rc = evb_name_check(o.name, group || queue ? "group" : "consumer");
        if (rc)
            return rc;
    } else if ((o.start & ~EVB_SEEK_STRICT) == EVB_START_COMMITTED) {
        return evb_err_set(-EINVAL, "only named consumers and groups have a committed "
                           "position");
    }
    evb_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->opts = o;
    c->bus = bus;
    if (o.name && named)
        snprintf(c->name, sizeof c->name, "%s", o.name);
    c->opts.name = NULL;
    int rc = evb_topic_map_open(bus, topic, &c->tm);
    if (rc)
        goto fail;
    bool one = o.only_partition != 0;
    if (one && (o.partition < 0 || (uint32_t)o.partition >= c->tm->nparts)) {
        rc = evb_err_set(-EINVAL, "topic %s has %u partitions, no partition %d", topic,
                         c->tm->nparts, o.partition);
        goto fail;
    }
    if (c->tm->readonly && (rc = readonly_ok(c, topic)))
        goto fail;
    c->n = one ? 1 : c->tm->nparts;
    /* A group member's arrays hold every partition, and its bells one
     * more: the group's (consumer_group.c). */
    c->rd = calloc(c->n, sizeof *c->rd);
    c->part = calloc(c->n, sizeof *c->part);
    c->bells = calloc(c->n + 1, sizeof *c->bells);
    c->vals = calloc(c->n + 1, sizeof *c->vals);
    if (c->tm->readonly)
        c->ro_slots = calloc((size_t)c->n * EVB_RING_READER_SLOTS, sizeof *c->ro_slots);
    if (!c->rd || !c->part || !c->bells || !c->vals || (c->tm->readonly && !c->ro_slots)) {
        rc = -ENOMEM;
        goto fail;
    }
    if (o.kind == EVB_CONSUMER && (rc = evb_cursor_file_open(&c->cur, c->tm, c->name)))
        goto fail;
    if (c->tm->ddir[0]) {
        /* A flusher that died with no candidate left: finish its work,
         * so what this consumer reads from disk is all there (a reader
         * that may not write the ring leaves that to the next producer). */
        if (!c->tm->readonly)
            evb_flush_orphans(c->tm);
        c->disk = calloc(c->n, sizeof *c->disk);
        if (!c->disk) {
            rc = -ENOMEM;
            goto fail;
        }
        c->geom = evb_seg_geom_of(c->tm->cfg.segment_bytes, c->tm->cfg.ring_bytes,
                                  c->tm->cfg.max_event_bytes);
    }
    c->slot_kind = o.kind == EVB_SUBSCRIBER ? EVB_SLOT_SUBSCRIBER
                   : o.kind == EVB_SUBSCRIBER_LOSSLESS ? EVB_SLOT_LOSSLESS
                                                       : EVB_SLOT_CONSUMER;
    if (group) {
        /* Readers come and go with the partitions the group gives us. */
        c->n = 0;
        if ((rc = evb_cgroup_open(c)))
            goto fail;
        *out = c;
        return 0;
    }
    uint32_t start = o.start;
    if (start == EVB_START_DEFAULT)
        start = o.kind == EVB_CONSUMER ? EVB_START_COMMITTED : EVB_START_LATEST;
    for (uint32_t i = 0; i < c->n; i++) {
        c->part[i] = one ? (uint32_t)o.partition : i;
        struct evb_ring *r = &c->tm->rings[c->part[i]];
        c->bells[i] = &r->hdr->bell;
        if (r->readonly)
            r->rslots = &c->ro_slots[(size_t)i * EVB_RING_READER_SLOTS];
        if ((rc = evb_ring_map_view(r)))
            goto fail;
        rc = evb_ring_reader_attach(&c->rd[i], r, c->slot_kind, c->name, EVB_POS_NONE, 0);
        if (rc) {
            if (queue && rc == -EBUSY)
                evb_err_prefix(rc, "topic %s (each queue member takes a reader slot in "
                               "every partition)", topic);
            else
                evb_err_prefix(rc, "topic %s", topic);
            goto fail;
        }
        if (!queue && (start & ~EVB_SEEK_STRICT) != EVB_START_LATEST &&
            (rc = evb_consumer_seek_one(c, i, start, o.start_value)))
            goto fail;
    }
    if (queue) {
        /* Every partition's reader, positioned event by event from the
         * queue's cursors (consumer_queue.c). */
        if ((rc = evb_cqueue_open(c)))
            goto fail;
        *out = c;
        return 0;
    }
    /* A named consumer holds the log from where it joined: a partition it
     * never committed gets its start as its first commit, so retention of
     * a topic kept until consumed keeps what it has not read yet, and a
     * reopen starts there, not wherever the log starts by then. */
    for (uint32_t i = 0; c->cur.map && i < c->n; i++) {
        uint64_t pos, off;
        if (!evb_cursor_file_load(&c->cur, c->part[i], &pos, &off))
            evb_cursor_file_store(&c->cur, c->part[i], c->rd[i].pos, commit_offset(c, i));
        if (c->disk)
            c->retain_mark += c->rd[i].pos / c->geom.segment_bytes;
    }
    if ((o.flags & EVB_CONSUMER_DEDUP) && (rc = dedup_open(c)))
        goto fail;
    /* Groups and queues returned above: they stay off the fast path. */
    c->plain = !c->dedup && !c->disk;
    *out = c;
    return 0;
fail:
    evb_consumer_close(c);
    return rc;
}

EVB_EXPORT void evb_consumer_close(evb_consumer *c)
{
    EVB_NO_CANCEL;
    if (!c)
        return;
    for (uint32_t i = 0; c->rd && i < c->n; i++) {
        evb_ring_reader_detach(&c->rd[i]);
        if (c->disk && c->disk[i].open)
            evb_seg_reader_close(&c->disk[i].sr);
    }
    free(c->disk);
    evb_dedup_free(c->dedup);
    if (c->opts.kind == EVB_GROUP_MEMBER)
        evb_cgroup_close(c);
    if (c->opts.kind == EVB_QUEUE_MEMBER)
        evb_group_close(&c->grp);
    evb_dlq_writer_close(c->dlq);
    evb_cursor_file_close(&c->cur);
    free(c->rd);
    free(c->part);
    free(c->bells);
    free(c->vals);
    evb_topic_map_close(c->tm);
    free(c->ro_slots);
    free(c);
}

/* EVB_CONSUMER_DEDUP: read on in partition I past duplicates (dedup.c),
 * counted as consumed; a loss one of them reported goes with the next
 * event delivered. */
static int skip_dups(evb_consumer *c, uint32_t i, struct evb_frame_view *v)
{
    struct evb_dedup_part *t = &c->dedup->p[i];
    int rc = 0;
    /* Relaxed atomics for the id pair: a frame a losing padder may be
     * rewriting (fill_event); they decide a drop, no bound. */
    while (rc == 0 &&
           evb_dedup_drop(c->dedup, i, __atomic_load_n(&v->f->producer_id, __ATOMIC_RELAXED),
                          __atomic_load_n(&v->f->producer_seq, __ATOMIC_RELAXED))) {
        t->owed_events += v->lost_events;
        t->owed_bytes += v->lost_bytes;
        rc = evb_consumer_read_part(c, i, v);
    }
    if (rc == 0 && (t->owed_events | t->owed_bytes)) {
        v->lost_events += t->owed_events;
        v->lost_bytes += t->owed_bytes;
        t->owed_events = t->owed_bytes = 0;
    }
    return rc;
}

/*
 * The common case of try_read, inlined into the loops that deliver events:
 * a plain consumer (no group, dedup or disk side) whose next partition in
 * turn holds a committed data frame its ring reader takes as it is
 * (shm/read_inline.h). False, with nothing changed: take the full path,
 * which starts at the same partition.
 */
static inline bool read_fast(evb_consumer *c, evb_event *ev)
{
    if (!c->plain)
        return false;
    uint32_t i = c->next;
    struct evb_frame_view v;
    if (!evb_ring_read_fast(&c->rd[i], &v))
        return false;
    /* Tests stop here to change the frame under the view. */
    EVB_CRASH_POINT("consumer.before_fill");
    evb_consumer_fill(ev, &v, c->part[i]);
    c->next = i + 1 == c->n ? 0 : i + 1;
    return true;
}

/* One pass over the partitions, starting after the last one served.
 * Nothing is released, so events read before stay where they are
 * (consumer_batch.c reads a batch so). */
static int try_read_full(evb_consumer *c, evb_event *ev)
{
    for (uint32_t k = 0; k < c->n; k++) {
        uint32_t i = c->next + k;
        if (i >= c->n)
            i -= c->n;
        struct evb_frame_view v;
        /* A group member that lost the partition (expelled while busy,
         * or slow to give it back) must not read on: one load, then the
         * tick drops it and tells the application (LOST). */
        if (c->epoch && !evb_group_owner_is_us(&c->grp, c->part[i])) {
            int trc = evb_cgroup_tick(c, true);
            return trc ? trc : -EAGAIN;
        }
        int rc = evb_consumer_read_part(c, i, &v);
        if (rc == 0 && c->dedup)
            rc = skip_dups(c, i, &v);
        if (rc == 0) {
            /* Tests stop here to change the frame under the view. */
            EVB_CRASH_POINT("consumer.before_fill");
            evb_consumer_fill(ev, &v, c->part[i]);
            if (c->epoch) {
                /* A group member: an event below what an earlier owner
                 * was handed may be a redelivery; what we are handed is
                 * published before the event goes out. */
                ev->deliveries = v.pos < c->seen_below[i] ? 2 : 1;
                if (v.end > c->high[i]) {
                    c->high[i] = v.end;
                    evb_group_deliver(&c->grp, c->part[i], v.end);
                }
            }
            c->next = i + 1 == c->n ? 0 : i + 1;
            return 0;
        }
        if (rc == -EIO || rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE || rc == -EINTR)
            return rc; /* a segment read that failed: the reader stayed where it
                          was (evb_seg_read), the caller may try again */
        if (rc != -EAGAIN)
            return c->failed = rc;
    }
    return -EAGAIN;
}

int evb_consumer_try_read(evb_consumer *c, evb_event *ev)
{
    return read_fast(c, ev) ? 0 : try_read_full(c, ev);
}

static void release_all(evb_consumer *c)
{
    for (uint32_t i = 0; i < c->n; i++)
        evb_ring_reader_release(&c->rd[i]);
}

/* Sleep on the partitions' doorbells until something is committed, a hole
 * needs timing, or the deadline passes. */
void evb_consumer_block(evb_consumer *c, uint64_t deadline)
{
    EVB_NO_CANCEL;
    uint64_t now = evb_mono_ns();
    if (now >= deadline)
        return;
    uint64_t tick = evb_cgroup_deadline_ns(c);
    if (deadline > tick)
        deadline = tick > now ? tick : now + 1;
    uint64_t wait = deadline - now;
    bool ready = false;
    bool ro = c->tm->readonly;
    if (ro) {
        /* No producer sees a read-only reader (it cannot set a waiter
         * bit), so it sleeps in bounded naps on the bells, which move when
         * a writable reader is woken: from 50 us, doubling while idle, to
         * EVB_RO_NAP_MAX_NS at most. That bounds its wake-up latency, and
         * nothing anyone writes can make it longer. */
        c->ro_nap_ns = c->ro_nap_ns ? c->ro_nap_ns * 2 : EVB_SPIN_NS;
        if (c->ro_nap_ns > EVB_RO_NAP_MAX_NS)
            c->ro_nap_ns = EVB_RO_NAP_MAX_NS;
        if (wait > c->ro_nap_ns)
            wait = c->ro_nap_ns;
    }
    for (uint32_t i = 0; i < c->n; i++) {
        if (ro)
            /* B1 (doorbell.c): acquire pairs with evb_bell_ring's release. */
            c->vals[i] = atomic_load_explicit(c->bells[i], memory_order_acquire);
        else
            evb_ring_waiter_set(c->rd[i].r, c->rd[i].slot_idx, &c->vals[i]);
    }
    /* Every bit set, then one heavy fence for them all (shm/claim.c X2),
     * then the checks. Without it a commit could miss our bits while we
     * miss its stamp: nap instead of sleeping for good. */
    if (!ro && c->n && evb_ring_waiters_armed() < 0 && wait > EVB_UNFENCED_NAP_NS)
        wait = EVB_UNFENCED_NAP_NS;
    for (uint32_t i = 0; i < c->n; i++) {
        int st = evb_ring_reader_ready(&c->rd[i]);
        if (st == 1 || c->rd[i].behind || (c->disk && c->disk[i].state == EVB_CDISK_READ))
            ready = true;
        /* A hole in progress must be re-timed within dead_ns/4. */
        if (st == 2 && wait > c->rd[i].r->dead_ns / 4)
            wait = c->rd[i].r->dead_ns / 4;
    }
    unsigned nb = c->n;
    if (c->grp.f) {
        /* The group's bell too: a change of members wakes us to balance.
         * B1: acquire, as the rings' bells. */
        c->bells[nb] = evb_group_bell(&c->grp);
        c->vals[nb] = atomic_load_explicit(c->bells[nb], memory_order_acquire);
        if (c->vals[nb] != c->bell_seen)
            ready = true;
        nb++;
    }
    if (!ready && nb)
        evb_bell_wait(c->bells, c->vals, nb, wait ? wait : 1);
    for (uint32_t i = 0; !ro && i < c->n; i++)
        evb_ring_waiter_clear(c->rd[i].r, c->rd[i].slot_idx);
}

/* Reading or moving the reader from inside the rebalance callback would
 * run the group's balance inside itself. */
static int in_callback(const evb_consumer *c, const char *what)
{
    return evb_err_set(-EINVAL, "group %s: %s from the rebalance callback (only commit is "
                       "allowed there)", c->name, what);
}

EVB_EXPORT int evb_consumer_next(evb_consumer *c, evb_event *ev, int32_t timeout_ms)
{
    if (!c || !ev)
        return evb_err_set(-EINVAL, "evb_consumer_next: %s is NULL", !c ? "consumer" : "event");
    if (c->in_callback)
        return in_callback(c, "evb_consumer_next");
    if (c->failed)
        return c->failed;
    if (c->opts.kind == EVB_QUEUE_MEMBER)
        return evb_cqueue_next(c, ev, timeout_ms);
    int rc = evb_cgroup_maybe_tick(c);
    if (rc)
        return rc;
    release_all(c);
    if (read_fast(c, ev))
        return 0;
    rc = try_read_full(c, ev);
    if (rc != -EAGAIN || timeout_ms == 0)
        return rc;
    /* Spin first (shm/spin.h): an event that arrives within EVB_SPIN_NS
     * costs no context switch on either side. Every timeout is at least
     * 1 ms, longer than the spin, so the deadline is checked after it. */
    struct evb_spin spin;
    evb_spin_init(&spin, EVB_SPIN_NS);
    while (evb_spin_once(&spin))
        if ((rc = evb_consumer_try_read(c, ev)) != -EAGAIN)
            return rc;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : spin.start_ns + (uint64_t)timeout_ms * 1000000ull;
    c->ro_nap_ns = 0;
    for (;;) {
        if (c->opts.idle == EVB_IDLE_SPIN)
            evb_cpu_relax();
        else if (c->opts.idle == EVB_IDLE_YIELD)
            sched_yield();
        else
            evb_consumer_block(c, deadline);
        if (c->grp.f && (rc = evb_cgroup_tick(c, false)))
            return rc;
        rc = evb_consumer_try_read(c, ev);
        if (rc != -EAGAIN)
            return rc;
        if (deadline != UINT64_MAX && evb_mono_ns() >= deadline)
            return -ETIMEDOUT;
    }
}

EVB_EXPORT int evb_consumer_poll(evb_consumer *c, int (*fn)(const evb_event *ev, void *arg),
                                 void *arg, uint32_t max)
{
    if (!c || !fn)
        return evb_err_set(-EINVAL, "evb_consumer_poll: %s is NULL", !c ? "consumer" : "callback");
    if (c->in_callback)
        return in_callback(c, "evb_consumer_poll");
    if (c->failed)
        return c->failed;
    if (c->opts.kind == EVB_QUEUE_MEMBER)
        return evb_cqueue_poll(c, fn, arg, max);
    if (c->grp.f) {
        int rc = evb_cgroup_tick(c, false);
        if (rc)
            return rc;
    }
    release_all(c);
    uint32_t n = 0;
    evb_event ev;
    while (n < max) {
        int rc = read_fast(c, &ev) ? 0 : try_read_full(c, &ev);
        if (rc == -EAGAIN)
            break;
        if (rc)
            return n ? (int)n : rc;
        n++;
        int stop = fn(&ev, arg);
        /* Let producers move on during long polls of a gating reader. */
        if ((n & 255) == 0)
            release_all(c);
        /* A group member balances between events, never under one. */
        if (evb_cgroup_maybe_tick(c))
            break;
        if (stop)
            break;
    }
    release_all(c);
    return (int)n;
}

/*
 * A durable topic's commits go to files in its data directory, which
 * outlives the bus directory. A consumer of a process that outlived the
 * bus directory (removed: a reboot's cleanup, a hand) reads a ring no
 * other process sees, whose positions past the synced end are not the
 * rebuilt log's: committed there, they would make the rebuilt bus's
 * readers skip or misread its new events (the rebuild resets commits past
 * the log end once, under the flush lock; later ones would stay). The
 * ring files are unlinked with their directory: one fstat a commit.
 */
int evb_consumer_bus_gone(const evb_consumer *c)
{
    struct stat st;
    if (!c->tm->ddir[0] || fstat(c->tm->rings[0].fd, &st) != 0 || st.st_nlink)
        return 0;
    return evb_err_set(-ESTALE, "topic %s: its ring files were removed under this process "
                       "(the bus directory removed, or the topic deleted): its positions are "
                       "not the bus's now, so nothing is committed; open the bus again",
                       c->tm->name);
}

EVB_EXPORT int evb_consumer_commit(evb_consumer *c)
{
    EVB_NO_CANCEL;
    if (c && c->opts.kind == EVB_GROUP_MEMBER && !c->grp.f)
        /* Its group file went, see balance(). */
        return c->failed ? c->failed
                         : evb_err_set(-EINVAL, "group %s: this member has no group file "
                                       "(it went and was not opened again)", c->name);
    if (c && c->opts.kind == EVB_QUEUE_MEMBER)
        return evb_err_set(-EINVAL, "a queue group's member acknowledges each event "
                           "(evb_consumer_ack), it does not commit");
    if (!c)
        return evb_err_set(-EINVAL, "evb_consumer_commit: consumer is NULL");
    int gone = evb_consumer_bus_gone(c);
    if (gone)
        return gone;
    if (c->grp.f)
        return evb_cgroup_commit(c);
    if (!c->cur.map)
        return evb_err_set(-EINVAL, "topic %s: only named consumers and groups commit; "
                           "this reader has no cursor", c->tm->name);
    uint64_t mark = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->dedup)
            evb_dedup_save(c->dedup, i, c->part[i], c->rd[i].pos);
        /* Tests die here: the table saved, the cursor not (dedup.c, Y1). */
        EVB_CRASH_POINT("commit.after_dedup");
        evb_cursor_file_store(&c->cur, c->part[i], c->rd[i].pos, commit_offset(c, i));
        if (c->disk)
            mark += c->rd[i].pos / c->geom.segment_bytes;
    }
    /* Past a segment end: segments only this consumer held may go now,
     * even with no producer (whose flusher would retain) alive. Once per
     * segment, not per commit: `evbus tail --name` commits per write. */
    if (c->disk && (c->tm->cfg.flags & EVB_TOPIC_RETAIN_UNTIL_CONSUMED) &&
        mark != c->retain_mark) {
        c->retain_mark = mark;
        evb_retain_now(c->tm, 0);
    }
    return 0;
}

EVB_EXPORT int evb_consumer_lag(evb_consumer *c, uint64_t *bytes)
{
    if (!c || !bytes)
        return evb_err_set(-EINVAL, "evb_consumer_lag: %s is NULL", !c ? "consumer" : "bytes");
    /* A queue member that failed left its group: no queue to ask. */
    if (c->opts.kind == EVB_QUEUE_MEMBER && !c->grp.f)
        return c->failed ? c->failed : evb_err_set(-EINVAL, "topic %s: this queue member has "
                                                   "no group file", c->tm->name);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        uint64_t t, toff, pos = c->rd[i].pos, qs;
        evb_ring_load_tail(c->rd[i].r, &t, &toff);
        /* A queue member: what no member took yet. */
        if (c->opts.kind == EVB_QUEUE_MEMBER && !evb_queue_fetch(&c->grp, c->part[i], &pos, &qs))
            pos = t;
        if (t > pos)
            sum += t - pos;
    }
    *bytes = sum;
    return 0;
}

EVB_EXPORT int evb_consumer_seek(evb_consumer *c, int32_t partition, uint32_t whence,
                                 uint64_t value)
{
    EVB_NO_CANCEL;
    uint32_t w = whence & ~EVB_SEEK_STRICT;
    if (!c)
        return evb_err_set(-EINVAL, "evb_consumer_seek: consumer is NULL");
    if (w == EVB_START_DEFAULT || w > EVB_START_TIME)
        return evb_err_set(-EINVAL, "topic %s: seek whence %u is not a place to seek to",
                           c->tm->name, whence);
    if (c->failed)
        return c->failed;
    bool any = false;
    for (uint32_t i = 0; i < c->n; i++) {
        if (partition >= 0 && c->part[i] != (uint32_t)partition)
            continue;
        any = true;
        int rc = evb_consumer_seek_one(c, i, whence, value);
        if (c->dedup)
            evb_dedup_reset(c->dedup, i);
        if (rc)
            return rc;
    }
    if (!any)
        return evb_err_set(-EINVAL, "topic %s (%u partitions): partition %d is not read by "
                           "this consumer", c->tm->name, c->tm->nparts, partition);
    return 0;
}

EVB_EXPORT int evb_consumer_assignment(evb_consumer *c, uint32_t *parts, uint32_t cap)
{
    if (!c || c->opts.kind != EVB_GROUP_MEMBER || (cap && !parts))
        return evb_err_set(-EINVAL, "evb_consumer_assignment: %s",
                           !c ? "consumer is NULL"
                           : c->opts.kind != EVB_GROUP_MEMBER ? "not a partition group's member"
                                                              : "parts is NULL");
    for (uint32_t k = 0; k < c->n && k < cap; k++)
        parts[k] = c->part[k];
    return (int)c->n;
}

EVB_EXPORT int evb_consumer_dedup_stat(evb_consumer *c, int32_t partition, uint64_t *dropped,
                                       uint64_t *evicted)
{
    EVB_NO_CANCEL;
    if (!c || !c->dedup)
        return evb_err_set(-EINVAL, "evb_consumer_dedup_stat: %s",
                           !c ? "consumer is NULL" : "not opened with EVB_CONSUMER_DEDUP");
    uint64_t d = 0, e = 0;
    bool any = false;
    for (uint32_t i = 0; i < c->n; i++) {
        if (partition >= 0 && c->part[i] != (uint32_t)partition)
            continue;
        any = true;
        d += c->dedup->p[i].dropped;
        e += c->dedup->p[i].evicted;
    }
    if (!any)
        return evb_err_set(-EINVAL, "topic %s (%u partitions): partition %d is not read by "
                           "this consumer", c->tm->name, c->tm->nparts, partition);
    if (dropped)
        *dropped = d;
    if (evicted)
        *evicted = e;
    return 0;
}
