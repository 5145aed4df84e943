/*
 * consumer_group.c - a group member's handle: when to balance, and moving
 * readers as partitions come and go. The shared protocol (slots,
 * ownership, fencing) is group.c's; this file keeps rd[0..n) in step with
 * what the group file says we own.
 *
 * A tick (at most every EVB_TICK_MS of calls, and whenever the group's
 * generation moved) beats our heart, expels members that died or went
 * silent, gives back what is over our share and takes what is free up to
 * it. The per-event cost is a countdown: the clock is read every `every`
 * calls, a number that adapts so that a reading lands about every tick
 * whatever the event rate.
 *
 * On a ring-only topic nothing but gating readers keeps producers from
 * overwriting events, so every member also holds every partition at the
 * group's committed cursor (a reader slot that never reads: `hold`),
 * moved on at its ticks and commits. An event not committed yet then
 * survives a handover or an owner's death as long as one member lives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_internal.h"
#include "group_format.h"

#define EVB_TICK_MS 100u
#define EVB_EVERY_MAX 1024u

static uint64_t now_ms(void)
{
    return evb_mono_ns() / 1000000u;
}

static void notify(evb_consumer *c, uint32_t what, const uint32_t *parts, uint32_t n)
{
    if (!n || !c->opts.on_rebalance)
        return;
    c->in_callback = true;
    c->opts.on_rebalance(c, what, parts, n, c->opts.rebalance_arg);
    c->in_callback = false;
}

/* Stop reading rd[k]: detach it and move the last reader into its place. */
static void drop(evb_consumer *c, uint32_t k)
{
    c->delivered_gone += c->rd[k].delivered;
    evb_ring_reader_detach(&c->rd[k]);
    if (c->disk && c->disk[k].open)
        evb_seg_reader_close(&c->disk[k].sr);
    uint32_t last = --c->n;
    if (c->dedup && k != last)
        c->dedup->p[k] = c->dedup->p[last];
    if (k != last) {
        c->rd[k] = c->rd[last];
        c->part[k] = c->part[last];
        c->epoch[k] = c->epoch[last];
        c->seen_below[k] = c->seen_below[last];
        c->high[k] = c->high[last];
        c->bells[k] = c->bells[last];
        if (c->disk)
            c->disk[k] = c->disk[last];
    }
    memset(&c->rd[last], 0, sizeof c->rd[last]);
    if (c->disk)
        memset(&c->disk[last], 0, sizeof c->disk[last]);
    c->next = 0;
}

/* Start reading partition P, owned at EPOCH, from the group's committed
 * cursor (or the start option when nothing is committed, which is then
 * committed, so the next owner starts there too). */
static int gain(evb_consumer *c, uint32_t p, uint64_t epoch)
{
    uint32_t k = c->n;
    struct evb_ring *r = &c->tm->rings[p];
    c->part[k] = p;
    c->epoch[k] = epoch;
    c->seen_below[k] = c->high[k] = evb_group_delivered(&c->grp, p);
    c->bells[k] = &r->hdr->bell;
    if (r->readonly)
        r->rslots = &c->ro_slots[(size_t)p * EVB_RING_READER_SLOTS];
    int rc = evb_ring_map_view(r);
    if (!rc)
        rc = evb_ring_reader_attach(&c->rd[k], r, c->slot_kind, c->name, EVB_POS_NONE, 0);
    if (rc)
        return evb_err_prefix(rc, "topic %s, partition %u", c->tm->name, p);
    c->n++;
    uint64_t pos, off;
    uint32_t start = c->opts.start;
    bool committed = evb_group_cursor(&c->grp, p, &pos, &off);
    if (committed)
        start = EVB_START_COMMITTED;
    else if (start == EVB_START_DEFAULT || start == EVB_START_COMMITTED)
        start = EVB_START_EARLIEST;
    if (start != EVB_START_LATEST || committed)
        rc = evb_consumer_seek_one(c, k, start, c->opts.start_value);
    if (!rc && c->dedup) {
        /* The table that goes with the cursor we start at: the group's
         * file holds one per partition, saved with each commit. */
        evb_dedup_reset(c->dedup, k);
        rc = evb_dedup_load(c->dedup, k, p, c->rd[k].pos);
    }
    if (!rc && !committed) {
        bool learn = c->disk && c->disk[k].state ? c->disk[k].sr.learn : c->rd[k].learn;
        /* -ESTALE: taken from us already; the next tick sees it. */
        evb_group_commit(&c->grp, p, epoch, c->rd[k].pos,
                         learn ? EVB_FRAME_NO_OFFSET : c->rd[k].offset);
    }
    if (rc) {
        drop(c, k);
        return rc;
    }
    return 0;
}

/* What `evbus groups` shows of us: partitions owned, events delivered. */
static void count_delivered(evb_consumer *c)
{
    uint64_t delivered = c->delivered_gone;
    for (uint32_t k = 0; k < c->n; k++)
        delivered += c->rd[k].delivered;
    evb_group_count(&c->grp, c->n, delivered);
}

/* Drop every reader whose partition is no longer ours; tell the caller. */
static void drop_lost(evb_consumer *c, bool all)
{
    uint32_t lost[c->tm->nparts ? c->tm->nparts : 1], nl = 0;
    for (uint32_t k = 0; k < c->n;) {
        if (all || evb_group_owned_epoch(&c->grp, c->part[k]) != c->epoch[k]) {
            lost[nl++] = c->part[k];
            drop(c, k);
        } else {
            k++;
        }
    }
    notify(c, EVB_PARTITIONS_LOST, lost, nl);
}

static int balance(evb_consumer *c, uint64_t now)
{
    struct evb_group *g = &c->grp;
    /* The bus directory removed under us (or the topic deleted): a durable
     * topic's group file lives on in the data directory, for the rebuilt
     * bus's members, whose partitions we would go on owning while we
     * beat. Leave, and fail as a commit would (consumer.c). */
    int gone = evb_consumer_bus_gone(c);
    if (gone) {
        drop_lost(c, true);
        evb_group_close(g);
        return c->failed = gone;
    }
    if (evb_group_replaced(g)) {
        /* The group file was removed (to start the group over) or
         * replaced: what we owned there means nothing now. Join the group
         * the file at the path is. */
        drop_lost(c, true);
        int rc = evb_group_reopen(g, c->tm);
        if (rc)
            return c->failed = rc;
    }
    uint64_t gen = evb_group_generation(g);
    if (!evb_group_member(g)) {
        /* Expelled (we were silent past our lease): what we owned is
         * someone else's now. Join again as a new member. */
        drop_lost(c, true);
        g->id = 0;
        int rc = evb_group_join(g, g->lease_ms);
        if (rc)
            return rc;
        gen = evb_group_generation(g);
    }
    evb_group_beat(g, now);
    evb_group_reap(g, now);
    drop_lost(c, false);
    uint32_t quota = evb_group_quota(g);
    if (c->n > quota) {
        uint32_t give[c->n], ng = 0;
        for (uint32_t k = quota; k < c->n; k++)
            give[ng++] = c->part[k];
        notify(c, EVB_PARTITIONS_REVOKED, give, ng);
        while (c->n > quota) {
            uint32_t k = c->n - 1;
            uint64_t e = c->epoch[k];
            uint32_t p = c->part[k];
            drop(c, k);
            evb_group_release(g, p, e);
        }
    }
    uint32_t nparts = c->tm->nparts;
    uint32_t got[nparts], ngot = 0;
    int err = 0;
    /* Start looking at a place that depends on our slot, so that joiners
     * do not all race for partition 0. */
    uint32_t first = (uint32_t)(g->slot * quota) % nparts;
    for (uint32_t j = 0; j < nparts && c->n < quota; j++) {
        uint32_t p = (first + j) % nparts;
        bool have = false;
        for (uint32_t k = 0; k < c->n && !have; k++)
            have = c->part[k] == p;
        uint64_t e;
        if (have || evb_group_take(g, p, &e))
            continue;
        int rc = gain(c, p, e);
        if (rc) {
            evb_group_release(g, p, e);
            err = rc;
            break;
        }
        got[ngot++] = p;
    }
    count_delivered(c);
    /* Short of our share, we look again when a member over its share
     * gives back (the bell) or at the next tick. */
    c->gen_seen = gen;
    notify(c, EVB_PARTITIONS_ASSIGNED, got, ngot);
    return err;
}

/* Move each hold to its partition's committed cursor. */
static void hold_update(evb_consumer *c)
{
    /* No group mapped: a reopen after the file was replaced failed. */
    for (uint32_t p = 0; c->hold && c->grp.f && p < c->tm->nparts; p++) {
        uint64_t pos, off;
        if (!evb_group_cursor(&c->grp, p, &pos, &off) || pos == c->hold[p].pos)
            continue;
        /* A position not a frame boundary, or past the tail, is damage
         * that the owner's own seek reports; the hold stays. */
        evb_ring_reader_seek(&c->hold[p], pos, off == EVB_FRAME_NO_OFFSET ? 0 : off,
                             off == EVB_FRAME_NO_OFFSET);
    }
}

int evb_cgroup_tick(evb_consumer *c, bool force)
{
    EVB_NO_CANCEL;
    if (c->in_callback)
        return 0;
    uint64_t now = now_ms();
    /* Adapt the countdown: one clock reading about every tick. */
    uint64_t since = now - c->last_clock_ms;
    if (since > EVB_TICK_MS / 2 && c->every > 1)
        c->every /= 2;
    else if (since < EVB_TICK_MS / 8 && c->every < EVB_EVERY_MAX)
        c->every *= 2;
    c->last_clock_ms = now;
    c->countdown = c->every;
    /* J3 (group.c): acquire; the bell moves with every change of members
     * and every partition given back. */
    uint32_t bell = atomic_load_explicit(evb_group_bell(&c->grp), memory_order_acquire);
    if (!force && !c->regroup && now < c->next_tick_ms && bell == c->bell_seen)
        return 0;
    c->bell_seen = bell;
    c->regroup = false;
    c->next_tick_ms = now + EVB_TICK_MS;
    int rc = balance(c, now);
    hold_update(c);
    return rc;
}

uint64_t evb_cgroup_deadline_ns(const evb_consumer *c)
{
    if (!c->grp.f)
        return UINT64_MAX;
    return c->next_tick_ms * 1000000u;
}

int evb_cgroup_open(evb_consumer *c)
{
    uint32_t nparts = c->tm->nparts;
    c->epoch = calloc(nparts, sizeof *c->epoch);
    c->seen_below = calloc(nparts, sizeof *c->seen_below);
    c->high = calloc(nparts, sizeof *c->high);
    if (!c->epoch || !c->seen_below || !c->high)
        return -ENOMEM;
    struct evb_group_params gp = {.kind = EVB_GRP_KIND_PARTITION,
                                  .dedup = (c->opts.flags & EVB_CONSUMER_DEDUP) != 0};
    int rc = evb_group_open(&c->grp, c->tm, c->name, &gp);
    if (rc)
        return rc;
    /* After the group file, which refuses a member whose dedup setting is
     * not the group's: such a member makes no table file. */
    if (c->opts.flags & EVB_CONSUMER_DEDUP) {
        /* The group's duplicate tables: consumers/<group>.gdup, apart
         * from any named consumer's (whose files end in .cur and .dup). */
        if (!(c->dedup = evb_dedup_new(nparts)))
            return -ENOMEM;
        rc = evb_dedup_file_open(c->dedup, c->tm, c->name, true);
        if (rc)
            return rc;
    }
    if (!c->disk) {
        c->hold = calloc(nparts, sizeof *c->hold);
        if (!c->hold)
            return -ENOMEM;
        for (uint32_t p = 0; p < nparts; p++) {
            uint64_t pos, off;
            if (!evb_group_cursor(&c->grp, p, &pos, &off) || pos % EVB_FRAME_ALIGN)
                pos = EVB_POS_NONE;
            if ((rc = evb_ring_reader_attach(&c->hold[p], &c->tm->rings[p], EVB_SLOT_CONSUMER,
                                             c->name, pos, off == EVB_FRAME_NO_OFFSET ? 0 : off)))
                return evb_err_prefix(rc, "topic %s, partition %u", c->tm->name, p);
            c->nhold = p + 1;
        }
    }
    uint32_t lease = c->opts.lease_ms ? c->opts.lease_ms : EVB_GROUP_LEASE_MS;
    if ((rc = evb_group_join(&c->grp, lease)))
        return rc;
    c->every = 1;
    c->countdown = 1;
    c->last_clock_ms = now_ms();
    return evb_cgroup_tick(c, true);
}

void evb_cgroup_close(evb_consumer *c)
{
    evb_group_close(&c->grp);
    for (uint32_t p = 0; p < c->nhold; p++)
        evb_ring_reader_detach(&c->hold[p]);
    free(c->hold);
    free(c->seen_below);
    free(c->high);
    free(c->epoch);
}

int evb_cgroup_commit(evb_consumer *c)
{
    int err = 0;
    char lost[256] = "";
    size_t ll = 0;
    uint32_t nlost = 0;
    for (uint32_t k = 0; k < c->n; k++) {
        bool learn = c->disk && c->disk[k].state ? c->disk[k].sr.learn : c->rd[k].learn;
        /* The table first, for the position about to be committed: a
         * crash between the two leaves the old commit with its table. */
        if (c->dedup && evb_group_owned_epoch(&c->grp, c->part[k]) == c->epoch[k])
            evb_dedup_save(c->dedup, k, c->part[k], c->rd[k].pos);
        int rc = evb_group_commit(&c->grp, c->part[k], c->epoch[k], c->rd[k].pos,
                                  learn ? EVB_FRAME_NO_OFFSET : c->rd[k].offset);
        if (rc) {
            err = rc;
            c->regroup = true;
            nlost++;
            if (ll < sizeof lost)
                ll += (size_t)snprintf(lost + ll, sizeof lost - ll, "%s%u", ll ? "," : "",
                                       c->part[k]);
        }
    }
    hold_update(c);
    count_delivered(c);
    if (err == -ESTALE)
        /* Name every partition refused, not only the last. */
        evb_err_set(err, "group %s of topic %s: partition%s %s %s no longer yours (taken "
                    "over by another member, or you were silent past your lease and were "
                    "expelled): commit refused there, done on any others", c->name,
                    c->tm->name, nlost > 1 ? "s" : "", lost, nlost > 1 ? "are" : "is");
    return err;
}
