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

/* The first event below END matching TARGET. With HINTS the index picks
 * the starting points; the offsets it claims are checked against the
 * first frame walked, so a stale index gives -EBADMSG, never a wrong
 * answer about offsets. */
static int find(const char *dir, const struct evb_seg_geom *g, bool by_time,
                uint64_t target, uint64_t end, bool hints, bool skip, uint64_t *pos,
                uint64_t *off)
{
    uint64_t *bases;
    size_t n, i = 0;
    int rc = evb_seg_list_checked(dir, g, &bases, &n);
    if (rc)
        return rc;
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
        if ((rc = evb_seg_hold(&s, dir, g, bases[i]))) {
            if (skip && (rc == -EBADMSG || rc == -ENOENT)) {
                rc = -ENOENT; /* skipping damage: an unreadable segment too */
                continue;
            }
            break;
        }
        uint64_t seg_end = bases[i] + s.bytes; /* less when cut short */
        while (w.pos < seg_end && w.pos < end) {
            struct evb_seg_frame fr;
            uint64_t at = w.pos;
            int kind = evb_seg_step(&s, g, &w, &fr);
            if (kind <= 0 && skip) {
                /* Skipping damage: on at the next valid frame, whose
                 * offset is learnt; the reader counts what it skips. */
                if (kind == 0)
                    w.pos = evb_seg_resync(&s, g, w.pos + EVB_FRAME_ALIGN, seg_end, &fr);
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
        }
        rc = -ENOENT;
    }
out:
    if (rc == -ENOENT)
        evb_err_set(rc, "%s: no event with %s >= %llu below position %llu", dir,
                    by_time ? "timestamp" : "offset", (unsigned long long)target,
                    (unsigned long long)end);
    evb_seg_unmap(&s);
    free(bases);
    return rc;
}

int evb_seg_find_offset(const char *dir, const struct evb_seg_geom *g, uint64_t offset,
                        uint64_t end, uint64_t *pos, uint64_t *off)
{
    return evb_seg_find(dir, g, false, offset, end, false, pos, off);
}

int evb_seg_find_time(const char *dir, const struct evb_seg_geom *g, uint64_t ts,
                      uint64_t end, uint64_t *pos, uint64_t *off)
{
    return evb_seg_find(dir, g, true, ts, end, false, pos, off);
}

int evb_seg_find(const char *dir, const struct evb_seg_geom *g, bool by_time, uint64_t target,
                 uint64_t end, bool skip, uint64_t *pos, uint64_t *off)
{
    int rc = find(dir, g, by_time, target, end, true, skip, pos, off);
    return rc == -EBADMSG ? find(dir, g, by_time, target, end, false, skip, pos, off) : rc;
}
