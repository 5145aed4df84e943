/*
 * lookup.c - seeks into the disk log: the first event at or after an
 * offset or a timestamp, the index choosing where each segment's walk
 * starts. Frame checks are seg_reader.c's, the index index.c's.
 */
#include <errno.h>
#include <stdlib.h>

#include "err.h"
#include "seg_internal.h"

/* For offsets, events before an entry have offsets below the entry's; for
 * times, max_ts bounds every timestamp before it. Without an index: the
 * base, offset unknown. */
struct evb_seg_walk evb_seg_walk_start(const struct evb_idx *x, const struct evb_seg_geom *g,
                                       uint64_t base, bool by_time, uint64_t target)
{
    struct evb_seg_walk w = {.pos = base, .offset = 0, .learn = true};
    if (!x)
        return w;
    w = (struct evb_seg_walk){.pos = base, .offset = x->base_offset, .learn = false};
    for (size_t i = 0; i < x->n; i++) {
        const struct evb_idx_entry *e = &x->e[i];
        if (e->pos - base >= g->segment_bytes ||
            (by_time ? e->max_ts >= target : e->offset > target))
            break;
        w.pos = e->pos;
        w.offset = e->offset;
    }
    return w;
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

/* The first event below END matching TARGET. With HINTS the index picks
 * the starting points; the offsets it claims are checked against the
 * first frame walked, so a stale index gives -EBADMSG, never a wrong
 * answer about offsets. With SKIP, *SK says what damage lies right before
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
        struct evb_seg_walk w = evb_seg_walk_start(x, g, bases[i], by_time, target);
        free(x);
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
            if (kind <= 0 && skip) {
                /* Skipping damage: on at the next valid frame, whose
                 * offset is learnt; the reader counts what it skips. A
                 * frame with an unexpected offset loses the offsets
                 * between, no bytes. */
                if (kind == 0)
                    w.pos = evb_seg_resync(&s, g, w.pos + EVB_FRAME_ALIGN,
                                           seg_end < end ? seg_end : end, &fr);
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
