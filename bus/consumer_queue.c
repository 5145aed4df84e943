/*
 * consumer_queue.c - a queue group member's handle: it reads every
 * partition, takes single events through the queue's protocol (queue.c),
 * hands them out with their delivery count, and acks or nacks them. An
 * event that reached max_deliveries goes to the dead-letter topic instead
 * of out again.
 *
 * Each partition's reader follows the queue: before a take it is moved to
 * the queue's fetch position (where it already is, when no other member
 * took in between), for a redelivery to the event's position. On a
 * ring-only topic the readers hold the ring at the queue's floor (every
 * event below it is acked), so no event in flight can be overwritten.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "consumer_internal.h"
#include "dlq.h"
#include "group_format.h"
#include "spin.h"

#define EVB_TICK_MS 100u
#define EVB_SCAN_MS 50u             /* redeliveries are looked for this often */
#define EVB_ACK_WAIT_DEFAULT 30000u
#define EVB_MAX_DELIVERIES_DEFAULT 5u
#define EVB_WINDOW_DEFAULT 4096u

/* The coarse clock: a few ns a reading, so every call may look. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Hold each ring at its queue's floor (ring-only topics gate on it). */
static void hold_floors(evb_consumer *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        uint64_t pos, off;
        if (evb_queue_floor(&c->grp, c->part[i], &pos, &off)) {
            c->rd[i].hold = pos;
            evb_ring_reader_release_to(&c->rd[i], pos);
        }
    }
}

/* The topic rebuilt from its log under us (J7, group.c): the queue's
 * positions are the new log's, and our ring's events at them are the old
 * life's (lost ones past its synced end). Taking one would deliver an
 * event the bus no longer has and move the queue past a new one; acking
 * would settle the new one unread. Leave, and fail as the bus's removal
 * does (tick). One load of a read-mostly line per take and ack, where the
 * removal's fstat cost ~400 ns and is looked at once per tick. */
static int rebuilt(evb_consumer *c)
{
    if (!c->grp.f) /* left already: a failure said why */
        return c->failed ? c->failed : -ESTALE;
    if (!evb_group_rebuilt(&c->grp))
        return 0;
    evb_group_close(&c->grp);
    return c->failed = evb_err_set(-ESTALE, "topic %s was rebuilt from its log under this "
                                   "process (its bus directory removed and the bus opened "
                                   "again): the queue's positions are not this ring's now, so "
                                   "nothing is taken or settled; open the bus again",
                                   c->tm->name);
}

/* Heartbeat, expel the dead and the silent, note who is present. */
static int tick(evb_consumer *c)
{
    EVB_NO_CANCEL;
    uint64_t now = now_ms();
    struct evb_group *g = &c->grp;
    /* The bus removed under us: leave the queue, which lives on in the
     * data directory for the rebuilt bus (consumer_group.c, balance). */
    int gone = evb_consumer_bus_gone(c);
    if (gone) {
        evb_group_close(g);
        return c->failed = gone;
    }
    if ((gone = rebuilt(c)))
        return gone;
    if (evb_group_replaced(g)) {
        /* Removed or replaced: the queue at the path is another one. */
        int rc = evb_group_reopen(g, c->tm);
        if (rc)
            return c->failed = rc;
    }
    if (!evb_group_member(g)) {
        /* Expelled: our events in flight go to others once due. */
        g->id = 0;
        int rc = evb_group_join(g, g->lease_ms);
        if (rc)
            return rc;
    }
    evb_group_beat(g, now);
    evb_group_reap(g, now);
    c->npresent = evb_group_present(g, c->present);
    /* What the caller was handed, not what the readers read: a take that
     * another member won reads the event too (a cold attack saw two
     * members' counts add up to more than the events). */
    evb_group_count(g, 0, c->handed);
    c->next_tick_ms = now + EVB_TICK_MS;
    return 0;
}

/* Reader I to POS, a position the group file gave (WHAT names it): one a
 * seek refuses as no position at all (off alignment) is damage of the
 * file, not a caller's bad argument (a cold attack's flipped floor made
 * tail exit 2, "invalid argument"). */
static int seek_queued(evb_consumer *c, uint32_t i, uint64_t pos, const char *what)
{
    int rc = evb_consumer_seek_one(c, i, EVB_START_POSITION, pos);
    if (rc == -EINVAL)
        return evb_err_set(-EBADMSG, "group %s, partition %u: its %s is position %llu, which "
                           "no event can have (damaged group file)", c->name, c->part[i], what,
                           (unsigned long long)pos);
    return rc;
}

int evb_cqueue_open(evb_consumer *c)
{
    uint32_t w = c->opts.max_in_flight ? c->opts.max_in_flight : EVB_WINDOW_DEFAULT;
    if (w > EVB_QUEUE_WINDOW_MAX || (w & (w - 1)))
        return evb_err_set(-EINVAL, "max_in_flight %u: a power of two up to %u", w,
                           EVB_QUEUE_WINDOW_MAX);
    uint32_t md = c->opts.max_deliveries;
    if (md == 0)
        md = EVB_MAX_DELIVERIES_DEFAULT;
    else if (md == EVB_NO_MAX_DELIVERIES)
        md = 0;
    else if (md > 254)
        return evb_err_set(-EINVAL, "max_deliveries %u: at most 254, or "
                           "EVB_NO_MAX_DELIVERIES", md);
    struct evb_group_params gp = {
        .kind = EVB_GRP_KIND_QUEUE,
        .ack_wait_ms = c->opts.ack_wait_ms ? c->opts.ack_wait_ms : EVB_ACK_WAIT_DEFAULT,
        .max_deliveries = md,
        .window = w,
    };
    int rc = evb_group_open(&c->grp, c->tm, c->name, &gp);
    if (rc)
        return rc;
    /* A member busy with one event for up to ack_wait is no reason to
     * expel it (which hands its events to others): its lease is at least
     * the group's ack_wait unless the caller asks for less. */
    uint32_t lease = c->opts.lease_ms;
    if (!lease)
        lease = c->grp.f->h.ack_wait_ms > EVB_GROUP_LEASE_MS ? c->grp.f->h.ack_wait_ms
                                                            : EVB_GROUP_LEASE_MS;
    if ((rc = evb_group_join(&c->grp, lease)))
        return rc;
    /* Where each partition's queue starts, for the first member ever:
     * per .start (default: earliest). */
    uint32_t start = c->opts.start & ~EVB_SEEK_STRICT;
    if (start == EVB_START_DEFAULT || start == EVB_START_COMMITTED)
        start = EVB_START_EARLIEST;
    for (uint32_t i = 0; i < c->n; i++) {
        uint64_t fp, fs;
        if (!evb_queue_fetch(&c->grp, c->part[i], &fp, &fs)) {
            if (start != EVB_START_LATEST &&
                (rc = evb_consumer_seek_one(c, i, c->opts.start ? c->opts.start : start,
                                            c->opts.start_value)))
                return rc;
            /* A seek by offset or time filters the events before it: the
             * queue starts at the first one it lets through, if any. */
            uint64_t at = c->rd[i].pos;
            struct evb_frame_view v;
            if (start != EVB_START_LATEST && evb_consumer_read_part(c, i, &v) == 0) {
                at = v.pos;
                evb_ring_reader_uncount(&c->rd[i]); /* a look, not a delivery */
            }
            if ((rc = evb_queue_start(&c->grp, c->part[i], at, &fp)))
                return rc;
        }
        uint64_t lp, off;
        if (!evb_queue_floor(&c->grp, c->part[i], &lp, &off))
            return -EBADMSG;
        /* From the floor: nothing at or above it may be overwritten
         * while this member lives (ring-only topics). */
        /* Every release from now on stops at the floor (hold_floors
         * moves it on): the seeks to fetch and to retaken events. */
        c->rd[i].hold = lp;
        if ((rc = seek_queued(c, i, lp, "floor")))
            return rc;
        evb_ring_reader_release_to(&c->rd[i], lp);
    }
    return tick(c);
}

/* Read the event at or after POS in reader I: the first data frame. */
static int read_at(evb_consumer *c, uint32_t i, uint64_t pos, struct evb_frame_view *v)
{
    /* The disk side's position when it reads from disk, else the ring's. */
    bool on_disk = c->disk && c->disk[i].state;
    uint64_t at = on_disk ? c->disk[i].sr.pos : c->rd[i].pos;
    if (at != pos) {
        int rc = seek_queued(c, i, pos, "queue");
        if (rc)
            return rc;
    }
    return evb_consumer_read_part(c, i, v);
}

static void deliver(evb_consumer *c, uint32_t i, evb_event *ev, const struct evb_frame_view *v,
                    uint64_t qseq, uint32_t count)
{
    evb_consumer_fill(ev, v, c->part[i]);
    ev->deliveries = count;
    ev->ack_token = qseq;
}

/* dead_letter(): the DLQ refused the record; the event is back in the
 * queue for an ack_wait. */
#define DLQ_REFUSED 1
/* A scan's budget of DLQ refusals (retake). */
#define EVB_REFUSALS_A_SCAN 64
#define EVB_REFUSING_MS 20

/* An event that was delivered max_deliveries times: to the dead-letter
 * topic, and done (0); or, when the DLQ refuses it, back in the queue for
 * an ack_wait (DLQ_REFUSED: the member goes on with other events). */
static int dead_letter(evb_consumer *c, uint32_t i, evb_event *ev)
{
    EVB_NO_CANCEL;
    /* Held as a reject holds (dlq.c): an append slower than ack_wait must
     * not let another member take it and write a second record. */
    int rc = evb_cqueue_hold(c, ev, true);
    if (rc)
        return rc;
    /* A short wait for room: a DLQ reader a moment behind is no refusal
     * (which costs the event an ack_wait), while a full DLQ holds up the
     * member's other events no longer than this a try, within the scan's
     * budget (retake). */
    rc = evb_dlq_append(&c->dlq, c->bus, c->tm, ev, "max_deliveries reached",
                        ev->deliveries - 1, c->name, EVB_DLQ_QUEUE_BLOCK_MS);
    /* The append may have waited (a syncing DLQ): rebuilt meanwhile, the
     * slot is not ours to settle. */
    int re = evb_cqueue_check(c);
    if (re)
        return re;
    if (rc) {
        /* The DLQ refused it (full, too small for it, a name too long, a
         * full disk...). It is not this call's failure: the caller asked
         * for an event, and the others behind this one flow. It waits an
         * ack_wait in the queue and is tried again; not a nack nor a
         * delivery: each try counts only as a refusal, with its error,
         * which evb_group_stat and `evbus groups` show (relaxed: numbers;
         * the error is a hint, the last writer's). */
        atomic_store_explicit(&c->grp.f->h.dlq_refusal_error, rc, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->grp.f->h.dlq_refusals, 1, memory_order_relaxed);
        evb_queue_retry(&c->grp, c->part[i], ev->ack_token, ev->position,
                        c->grp.f->h.ack_wait_ms);
        evb_err_clear();
        return DLQ_REFUSED;
    }
    return evb_queue_dead_letter(&c->grp, c->part[i], ev->ack_token, ev->position);
}

/* Fetch of partition I within the log: past the tail, a take would wait
 * there for ever and the partition's next events never come (damage,
 * said). Looked at once per scan, not per take: the tail is the
 * producers' hottest line, which a waiting take must not pull away. The
 * tail is loaded after fetch, as a take reads them. */
static int fetch_in_log(evb_consumer *c, uint32_t i)
{
    uint64_t fp, fs, t, toff;
    if (!evb_queue_fetch(&c->grp, c->part[i], &fp, &fs))
        return 0;
    evb_ring_load_tail(c->rd[i].r, &t, &toff);
    int rc = evb_queue_fetch_check(&c->grp, c->part[i], fp, t);
    return rc == -ESTALE ? rebuilt(c) : rc;
}

/* An event due again (nacked, ack_wait passed, member gone): 0 and EV,
 * -EAGAIN none. */
static int retake(evb_consumer *c, evb_event *ev)
{
    /* Refusals of the DLQ this scan may take: each sends the scan back to
     * the floor (evb_queue_retake), and a scan that went on refusing could
     * outlast ack_wait and never end (a review's 3500 refused events kept
     * one call busy for good); past the budget the scan ends, new events
     * are taken, and the next scan goes on. */
    uint32_t refusals = 0;
    uint64_t since = now_ms();
    for (uint32_t i = 0; i < c->n; i++) {
        struct evb_queue_take t;
        int rc = fetch_in_log(c, i);
        if (rc)
            return rc;
        while (!(rc = rebuilt(c)) &&
               (rc = evb_queue_retake(&c->grp, c->part[i], c->present, c->npresent, &t)) == 0) {
            struct evb_frame_view v;
            if ((rc = read_at(c, i, t.pos, &v)))
                return rc == -EAGAIN ? evb_err_set(-EBADMSG, "group %s, partition %u: no "
                                                   "event at position %llu that the queue "
                                                   "holds (damaged group file)", c->name,
                                                   c->part[i], (unsigned long long)t.pos)
                                     : rc;
            if (v.pos > t.pos && v.lost_bytes) {
                /* Gone: a ring-only topic lapped it while no member lived
                 * to hold it, or retention removed its segment (a durable
                 * queue holds nothing against retain_bytes). It counts as
                 * handled; the loss goes with the next event this reader
                 * hands out. It is this one event: the log between it and
                 * where the reader landed holds events of their own slots
                 * (acked, or retaken and found gone in turn), so that gap
                 * is not the loss, and this event's own size is unknown. */
                evb_ring_reader_add_loss(&c->rd[i], 0, 1);
                evb_ring_reader_uncount(&c->rd[i]); /* the later event read: not handed */
                evb_queue_ack(&c->grp, c->part[i], t.qseq, t.pos);
                continue;
            }
            if (v.pos != t.pos) {
                evb_ring_reader_uncount(&c->rd[i]); /* not the queue's: not handed */
                return evb_err_set(-EBADMSG, "group %s, partition %u: the queue names "
                                   "position %llu, the log has an event at %llu (damaged "
                                   "group file)",
                                   c->name, c->part[i], (unsigned long long)t.pos,
                                   (unsigned long long)v.pos);
            }
            deliver(c, i, ev, &v, t.qseq, t.count);
            uint32_t md = c->grp.f->h.max_deliveries;
            if (md && t.count > md) {
                evb_ring_reader_uncount(&c->rd[i]); /* to the DLQ, not the caller */
                /* -ESTALE: another member took it meanwhile, go on; or we
                 * left the group (rebuilt under the append): stop. A DLQ
                 * that refused it is no failure of ours: go on, within the
                 * scan's budget (above). */
                rc = dead_letter(c, i, ev);
                if (rc == DLQ_REFUSED) {
                    if (++refusals < EVB_REFUSALS_A_SCAN && now_ms() - since < EVB_REFUSING_MS)
                        continue;
                    return -EAGAIN;
                }
                if (rc && (rc != -ESTALE || c->failed))
                    return rc;
                continue;
            }
            c->handed++;
            return 0;
        }
        if (rc == -ESTALE && !c->failed)
            return rebuilt(c); /* J7 moved after our look: leave, say why */
        if (rc != -EAGAIN)
            return rc;
    }
    return -EAGAIN;
}

/* The next event nobody took, from any partition: 0 and EV, -EAGAIN. */
static int take(evb_consumer *c, evb_event *ev)
{
    /* Tests stop a member here to rebuild the bus under it. */
    EVB_CRASH_POINT("queue.take");
    for (uint32_t k = 0; k < c->n; k++) {
        uint32_t i = c->next + k;
        if (i >= c->n)
            i -= c->n;
        for (int tries = 0; tries < 8; tries++) {
            uint64_t fp, fs;
            if (!evb_queue_fetch(&c->grp, c->part[i], &fp, &fs)) {
                /* A queue started over (its file removed while we ran):
                 * it starts where we are. */
                int src = evb_queue_start(&c->grp, c->part[i], c->rd[i].pos, &fp);
                if (src)
                    return src;
                continue;
            }
            struct evb_frame_view v;
            int rc = read_at(c, i, fp, &v);
            if (rc == -EAGAIN)
                break;
            if (rc || (rc = rebuilt(c)))
                return rc;
            rc = evb_queue_take(&c->grp, c->part[i], fp, fs, v.pos, v.end);
            if (rc)
                evb_ring_reader_uncount(&c->rd[i]); /* read, not taken: not delivered */
            if (rc == -ESTALE)
                return rebuilt(c); /* J7 moved after our look: leave, say why */
            if (rc == -EBADMSG)
                return rc;
            if (rc == -ENOSPC) {
                c->scan_now = true; /* full of events in flight: some may be due */
                break;
            }
            if (rc == 0) {
                deliver(c, i, ev, &v, fs, 1);
                c->next = i + 1 == c->n ? 0 : i + 1;
                c->handed++;
                return 0;
            }
        }
    }
    return -EAGAIN;
}

static int try_once(evb_consumer *c, evb_event *ev)
{
    uint64_t now = now_ms();
    int rc;
    /* B1 (shm/doorbell.c): acquire. What the bell said when we last
     * looked: the idle wait sleeps until it moves. */
    c->bell_seen = atomic_load_explicit(evb_group_bell(&c->grp), memory_order_acquire);
    if (now >= c->next_tick_ms && (rc = tick(c)))
        return rc;
    if (c->scan_now || now >= c->next_scan_ms) {
        c->scan_now = false;
        c->next_scan_ms = now + EVB_SCAN_MS;
        if ((rc = retake(c, ev)) != -EAGAIN)
            return rc;
    }
    return take(c, ev);
}

int evb_cqueue_next(evb_consumer *c, evb_event *ev, int32_t timeout_ms)
{
    hold_floors(c);
    int rc = try_once(c, ev);
    if (rc != -EAGAIN || timeout_ms == 0)
        return rc;
    struct evb_spin spin;
    evb_spin_init(&spin, 50000u);
    while (evb_spin_once(&spin))
        if ((rc = take(c, ev)) != -EAGAIN)
            return rc;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : spin.start_ns + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        c->scan_now = true;
        if ((rc = try_once(c, ev)) != -EAGAIN)
            return rc;
        uint64_t now = evb_mono_ns();
        if (deadline != UINT64_MAX && now >= deadline)
            return -ETIMEDOUT;
        /* Wake for new events, a change of members, the next tick, or
         * the next look for redeliveries. */
        uint64_t until = c->next_scan_ms * 1000000u;
        if (until > deadline)
            until = deadline;
        if (c->opts.idle == EVB_IDLE_SPIN)
            evb_cpu_relax();
        else if (c->opts.idle == EVB_IDLE_YIELD)
            sched_yield();
        else
            evb_consumer_block(c, until);
    }
}

int evb_cqueue_poll(evb_consumer *c, int (*fn)(const evb_event *ev, void *arg), void *arg,
                    uint32_t max)
{
    uint32_t n = 0;
    evb_event ev;
    while (n < max) {
        int rc = evb_cqueue_next(c, &ev, 0);
        if (rc == -EAGAIN)
            break;
        if (rc)
            return n ? (int)n : rc;
        n++;
        if (fn(&ev, arg))
            break;
    }
    return (int)n;
}

static int settle_check(evb_consumer *c, const evb_event *ev)
{
    if (!c || !ev || c->opts.kind != EVB_QUEUE_MEMBER || ev->partition >= c->tm->nparts ||
        ev->deliveries == 0)
        return evb_err_set(-EINVAL, "not an event a queue group's member was given");
    /* Failed (its group file went and could not be opened again): no
     * queue to settle in; the event goes to another member. The bus
     * removed under us is looked at once per tick (its fstat), rebuilt
     * at every settle (J7): an ack in between lands in the old life's
     * file, whose positions past the log's end the rebuild resets. */
    return evb_cqueue_check(c);
}

int evb_cqueue_check(evb_consumer *c)
{
    return c->failed ? c->failed : rebuilt(c);
}

int evb_cqueue_hold(evb_consumer *c, const evb_event *ev, bool lng)
{
    EVB_NO_CANCEL;
    int rc = settle_check(c, ev);
    if (rc)
        return rc;
    struct evb_group *g = &c->grp;
    /* Expelled (silent past our lease): our slots are due to the others
     * whatever their deadline, so a hold would keep nothing. */
    if (!evb_group_member(g))
        return evb_err_set(-ESTALE, "group %s of topic %s: this member was expelled (silent "
                           "past its lease of %u ms): its events go to the others", c->name,
                           c->tm->name, g->lease_ms);
    /* A sign of life, so that the lease (at least ack_wait) runs from now,
     * while the hold's deadline is ours. */
    evb_group_beat(g, now_ms());
    return evb_queue_hold(g, ev->partition, ev->ack_token, ev->position,
                          lng ? EVB_QUEUE_HOLD_MS : 0);
}

EVB_EXPORT int evb_consumer_ack(evb_consumer *c, const evb_event *ev)
{
    int rc = settle_check(c, ev);
    return rc ? rc : evb_queue_ack(&c->grp, ev->partition, ev->ack_token, ev->position);
}

EVB_EXPORT int evb_consumer_nack(evb_consumer *c, const evb_event *ev, uint32_t delay_ms)
{
    int rc = settle_check(c, ev);
    if (rc)
        return rc;
    if ((rc = evb_queue_nack(&c->grp, ev->partition, ev->ack_token, ev->position, delay_ms)))
        return rc;
    if (delay_ms == 0)
        c->scan_now = true;
    return 0;
}
