/*
 * lookup.c - seeks into the disk log: the first event at or after an
 * offset or a timestamp, the index choosing where each segment's walk
 * starts. Frame checks are seg_reader.c's, the index index.c's.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "err.h"
#include "seg_internal.h"

/* For offsets, events before an entry have offsets below the entry's.
 * For times, an entry's max_ts bounds every timestamp before it, but that
 * is a claim of the index, and one bad entry must cost a walk, not events:
 * the walk starts one entry earlier than the claim allows and *H says
 * what to check on the way (every data frame below H->until has a
 * timestamp at most H->max_ts). An entry whose max_ts was lowered either
 * breaks the entries' order (evb_idx_read keeps the prefix before it) or
 * lies below a timestamp of the frames since the entry before it, which
 * the check meets. Without an index: the base, offset unknown. */
struct evb_seg_walk evb_seg_walk_start(const struct evb_idx *x, const struct evb_seg_geom *g,
                                       uint64_t base, bool by_time, uint64_t target,
                                       struct evb_seg_hint *h)
{
    struct evb_seg_walk w = {.pos = base, .offset = 0, .learn = true};
    *h = (struct evb_seg_hint){.until = base, .max_ts = UINT64_MAX};
    if (!x)
        return w;
    w = (struct evb_seg_walk){.pos = base, .offset = x->base_offset, .learn = false};
    struct evb_seg_walk prev = w;
    for (size_t i = 0; i < x->n; i++) {
        const struct evb_idx_entry *e = &x->e[i];
        if (e->pos - base >= g->segment_bytes ||
            (by_time ? e->max_ts >= target : e->offset > target))
            break;
        prev = w;
        w.pos = e->pos;
        w.offset = e->offset;
        if (by_time)
            *h = (struct evb_seg_hint){.until = e->pos, .max_ts = e->max_ts};
    }
    return by_time ? prev : w;
}

/* Damage a skipping lookup passed since the last valid frame it walked. */
struct skipped {
    uint64_t reach;    /* the log is accounted for below this (UINT64_MAX: nothing yet) */
    uint64_t reach_off; /* the offset expected at reach, EVB_SEG_NO_OFFSET unknown */
    bool any;           /* damage passed since the last valid frame */
    struct evb_seg_skipped out;
};

/* [FROM, TO) holds no frame the walk could read; FROM_OFF was expected at FROM. */
static void passed(struct skipped *k, uint64_t from, uint64_t to, uint64_t from_off)
{
    if (!k->any)
        k->out.from = from_off; /* where the damage began, not a later part */
    k->any = true;
    k->out.bytes += to - from;
    k->reach = to;
}

/* A valid frame walked, ending at POS where OFF comes next: what was
 * passed before it is not before the event the lookup lands on. */
static void intact(struct skipped *k, uint64_t pos, uint64_t off)
{
    k->reach = pos;
    k->reach_off = off;
    k->any = false;
    k->out = (struct evb_seg_skipped){.bytes = 0, .from = EVB_SEG_NO_OFFSET};
}

/* -EBADMSG: the index of segment BASE claimed H, the frame at AT has TS. */
static int bad_hint(const char *dir, uint64_t base, const struct evb_seg_hint *h, uint64_t at,
                    uint64_t ts)
{
    char path[PATH_MAX];
    if (evb_seg_path(path, sizeof path, dir, base, "idx"))
        snprintf(path, sizeof path, "%s", dir);
    return evb_err_set(-EBADMSG, "%s: an entry says no timestamp above %llu before position "
                       "%llu, the frame at %llu has %llu: a bad index (a hint only)", path,
                       (unsigned long long)h->max_ts, (unsigned long long)h->until,
                       (unsigned long long)at, (unsigned long long)ts);
}

/* The first event below END matching TARGET. With HINTS the index picks
 * the starting points; the offset it claims is checked against the first
 * frame walked, and by time the timestamps it claims against the frames
 * of one entry's span (evb_seg_walk_start), so a bad index gives -EBADMSG
 * (and evb_seg_find a walk without it), never a wrong answer. The first
 * frame at an index's start must be there even when skipping damage:
 * skipping from a position the index made up would count whole frames as
 * damage. With SKIP, *SK says what damage lies right before
 * the event found or, when none is, at the end of the log. */
static int find(const char *dir, const struct evb_seg_geom *g, bool by_time,
                uint64_t target, uint64_t end, bool hints, bool skip, uint64_t *pos,
                uint64_t *off, struct evb_seg_skipped *sk)
{
    uint64_t *bases;
    size_t n, i = 0;
    int rc = evb_seg_list_checked(dir, g, &bases, &n);
    if (rc)
        return rc;
    struct skipped k = {.reach = UINT64_MAX, .reach_off = EVB_SEG_NO_OFFSET,
                        .out = {.bytes = 0, .from = EVB_SEG_NO_OFFSET}};
    /* By offset, the newest segment said to start at or below TARGET. */
    for (size_t j = n; hints && !by_time && j-- > 0;) {
        struct evb_idx *x;
        if (bases[j] >= end || evb_idx_load(dir, bases[j], &x))
            continue;
        bool below = x->base_offset <= target;
        free(x);
        if (below) {
            i = j;
            break;
        }
    }
    struct evb_seg s = {.fd = -1};
    rc = -ENOENT;
    for (; i < n && bases[i] < end; i++) {
        struct evb_idx *x = NULL;
        if (hints)
            (void)evb_idx_load(dir, bases[i], &x);
        struct evb_seg_hint h;
        struct evb_seg_walk w = evb_seg_walk_start(x, g, bases[i], by_time, target, &h);
        free(x);
        uint64_t hinted = w.learn ? UINT64_MAX : w.pos; /* where the index put the walk */
        /* Segments missing between the last walk and this one. From the
         * segment's base to where the index starts the walk, frames are
         * whole but wanted by no one. */
        if (k.reach != UINT64_MAX && bases[i] > k.reach)
            passed(&k, k.reach, bases[i], k.reach_off);
        k.reach = w.pos;
        k.reach_off = w.learn ? EVB_SEG_NO_OFFSET : w.offset;
        uint64_t full_end = bases[i] + g->segment_bytes < end ? bases[i] + g->segment_bytes : end;
        if ((rc = evb_seg_hold(&s, dir, g, bases[i]))) {
            if (skip && (rc == -EBADMSG || rc == -ENOENT)) {
                rc = -ENOENT; /* skipping damage: an unreadable segment too */
                passed(&k, w.pos, full_end, k.reach_off);
                continue;
            }
            break;
        }
        uint64_t seg_end = bases[i] + s.bytes; /* less when cut short */
        while (w.pos < seg_end && w.pos < end) {
            struct evb_seg_frame fr;
            uint64_t at = w.pos, at_off = w.learn ? EVB_SEG_NO_OFFSET : w.offset;
            int kind = evb_seg_step(&s, g, &w, &fr);
            if (EVB_SEG_EREAD(kind)) {
                rc = kind; /* unread: neither a match nor damage */
                goto out;
            }
            if (at == hinted && kind <= 0) {
                /* No frame with the offset the index gave where it put
                 * the walk: the index is wrong (the log may be too; the
                 * walk without hints tells, and skips what it must). */
                rc = evb_seg_corrupt(dir, g, &w, kind, &fr);
                goto out;
            }
            if (kind == 1 && at < h.until && fr.f->timestamp_ns > h.max_ts) {
                rc = bad_hint(dir, bases[i], &h, at, fr.f->timestamp_ns);
                goto out;
            }
            if (kind <= 0 && skip) {
                /* Skipping damage: on at the next valid frame, whose
                 * offset is learnt; the reader counts what it skips. A
                 * frame with an unexpected offset loses the offsets
                 * between, no bytes. */
                if (kind == 0 &&
                    (rc = evb_seg_resync(&s, g, w.pos + EVB_FRAME_ALIGN,
                                         seg_end < end ? seg_end : end, &fr, &w.pos)))
                    goto out;
                passed(&k, at, w.pos, at_off);
                w.learn = true;
                continue;
            }
            if (kind <= 0) {
                rc = evb_seg_corrupt(dir, g, &w, kind, &fr);
                goto out;
            }
            if (kind == 1 && (by_time ? fr.f->timestamp_ns >= target : fr.offset >= target)) {
                *pos = at;
                *off = fr.offset;
                rc = 0;
                goto out;
            }
            intact(&k, w.pos, w.offset);
        }
        /* Cut short: the rest of the segment is gone. */
        if (skip && w.pos >= seg_end && seg_end < full_end)
            passed(&k, w.pos, full_end, w.learn ? EVB_SEG_NO_OFFSET : w.offset);
        rc = -ENOENT;
    }
    /* Segments missing at the end of the log. */
    if (rc == -ENOENT && skip && k.reach != UINT64_MAX && k.reach < end)
        passed(&k, k.reach, end, k.reach_off);
out:
    if (rc == -ENOENT)
        evb_err_set(rc, "%s: no event with %s >= %llu below position %llu", dir,
                    by_time ? "timestamp" : "offset", (unsigned long long)target,
                    (unsigned long long)end);
    if (sk)
        *sk = (rc == 0 || rc == -ENOENT) ? k.out
                                         : (struct evb_seg_skipped){0, EVB_SEG_NO_OFFSET};
    evb_seg_unmap(&s);
    free(bases);
    return rc;
}

int evb_seg_find_offset(const char *dir, const struct evb_seg_geom *g, uint64_t offset,
                        uint64_t end, uint64_t *pos, uint64_t *off)
{
    return evb_seg_find(dir, g, false, offset, end, false, pos, off, NULL);
}

int evb_seg_find_time(const char *dir, const struct evb_seg_geom *g, uint64_t ts,
                      uint64_t end, uint64_t *pos, uint64_t *off)
{
    return evb_seg_find(dir, g, true, ts, end, false, pos, off, NULL);
}

int evb_seg_find(const char *dir, const struct evb_seg_geom *g, bool by_time, uint64_t target,
                 uint64_t end, bool skip, uint64_t *pos, uint64_t *off,
                 struct evb_seg_skipped *sk)
{
    int rc = find(dir, g, by_time, target, end, true, skip, pos, off, sk);
    return rc == -EBADMSG ? find(dir, g, by_time, target, end, false, skip, pos, off, sk) : rc;
}
