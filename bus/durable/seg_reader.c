/*
 * seg_reader.c - frames of a segment: the checks of one frame (shm/read.c's
 * rules plus the checksum), the step of a walk through the log, and the
 * segment reader that consumers and `evbus dump` use. Files and the
 * window their bytes are read into are segment.c's.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "frame.h"
#include "nocancel.h"
#include "seg_internal.h"

#define SEG_SCAN (64u << 10) /* bytes a resync scans per window asked for */
#define SEG_CRC_STEP (256u << 10) /* bytes of a misfit's checksum per window */

/* The error of the read that just gave NULL (EVB_SEG_EREAD): the bounds
 * were checked before each, so a NULL is always one. */
static int read_failed(const struct evb_seg *s)
{
    return s->err < -1 ? s->err : evb_err_set(-EIO, "segment %020llu: read failed",
                                              (unsigned long long)s->base);
}

int evb_seg_frame(struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos,
                  struct evb_seg_frame *out)
{
    if (s->fd < 0 || pos < s->base || pos - s->base >= s->bytes || pos % EVB_FRAME_ALIGN)
        return 0;
    uint64_t at = pos - s->base;
    /* Bytes to the ring end; the segment end as well, should a damaged
     * file name put a segment off the ring's grid. */
    uint64_t room = g->capacity - (pos & (g->capacity - 1));
    if (room > s->bytes - at)
        room = s->bytes - at;
    if (room < sizeof(uint64_t))
        return 0;
    /* The header first (the stamp alone where less than a header is
     * left), decoded from a copy; then, for a data frame, the frame whole,
     * which may read the window again: its header must be the one decoded.
     * The bytes are a copy read with pread (evb_seg_bytes): plain loads,
     * no atomics. A frame a flusher is still writing (only `evbus dump`
     * looks past the flushed position) may be read torn: it fails its
     * length or checksum check and ends the dump. */
    size_t hn = room < EVB_FRAME_HDR ? (size_t)room : EVB_FRAME_HDR;
    const uint8_t *b = evb_seg_bytes(s, at, hn);
    if (!b)
        return read_failed(s);
    struct evb_frame hdr;
    memset(&hdr, 0, sizeof hdr);
    memcpy(&hdr, b, hn);
    struct evb_frame_step st;
    /* Relaxed: a local copy of the header, no other thread sees it. */
    int kind = evb_frame_decode(&hdr, atomic_load_explicit(&hdr.stamp, memory_order_relaxed),
                                pos, room, g->max_frame, g->max_event, &st);
    if (kind == EVB_FRAME_PAD) {
        *out = (struct evb_seg_frame){
            .f = st.offset == EVB_FRAME_NO_OFFSET ? NULL : (const struct evb_frame *)(const void *)b,
            .skip = st.skip, .events = st.events, .offset = st.offset};
        return 2;
    }
    if (kind != EVB_FRAME_DATA)
        return 0;
    b = evb_seg_bytes(s, at, st.len);
    if (!b)
        return read_failed(s);
    const struct evb_frame *f = (const struct evb_frame *)(const void *)b;
    if (memcmp(b, &hdr, EVB_FRAME_HDR) || f->crc32c != evb_frame_crc(f, st.len))
        return 0;
    *out = (struct evb_seg_frame){.f = f, .skip = st.skip, .events = 1, .offset = st.offset,
                                  .len = st.len, .key_len = st.key_len,
                                  .value_at = st.value_at, .value_len = st.value_len,
                                  .flags = st.flags};
    return 1;
}

int evb_seg_misfit(struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos,
                   uint32_t *len)
{
    if (s->fd < 0 || pos < s->base || pos - s->base >= s->bytes || pos % EVB_FRAME_ALIGN)
        return 0;
    int k = evb_seg_frame(s, g, pos, &(struct evb_seg_frame){0});
    if (k)
        return k < 0 ? k : 0;
    uint64_t at = pos - s->base, room = s->bytes - at;
    uint64_t stamp;
    const uint8_t *b = evb_seg_bytes(s, at, sizeof stamp);
    if (!b)
        return read_failed(s);
    memcpy(&stamp, b, sizeof stamp);
    /* A larger ring_bytes than the log's: no frame crosses the larger
     * ring's ends either, so only a stamp-only pad can tell. A ring pads
     * with a stamp alone where less than a header is left before its end;
     * read with a larger ring, that stamp has room for a header, and what
     * lies there is no pad. Such a stamp just short of the end of a
     * smaller ring, a valid frame at that end: the log was written with
     * that ring (or a smaller one). A stamp-only pad that happens to read
     * as a valid pad, or a log with none in the segment walked, cannot be
     * told from one written with G's ring. */
    if (stamp == (pos | EVB_STAMP_PAD)) {
        for (uint64_t c = g->capacity >> 1; c >= EVB_RING_MIN_CAPACITY; c >>= 1) {
            uint64_t gap = c - (pos & (c - 1));
            if (gap >= EVB_FRAME_HDR)
                continue;
            struct evb_seg_frame fr;
            if (gap >= room)
                break;
            if ((k = evb_seg_frame(s, g, pos + gap, &fr)) == 1) {
                *len = (uint32_t)gap;
                return 3;
            }
            if (k < 0)
                return k;
            break;
        }
    }
    if (room < EVB_FRAME_HDR)
        return 0;
    if (!(b = evb_seg_bytes(s, at, EVB_FRAME_HDR)))
        return read_failed(s);
    struct evb_frame hdr;
    memcpy(&hdr, b, sizeof hdr);
    /* Only the file bounds this time: a frame that passes these and its
     * checksum was written whole by a producer whose limits were not G's,
     * so its length may be anything up to the segment's end (a ring of
     * up to 16 GiB takes events of a quarter of it). The checksum is
     * taken a window at a time (the CRC chains, crc32c.h): a forged
     * length costs reads, never a buffer of that length. The header is
     * the copy decoded; each later window's bytes are the file's. */
    struct evb_frame_step st;
    uint32_t loose = room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
    /* Relaxed: the local copy, as above. */
    if (evb_frame_decode(&hdr, atomic_load_explicit(&hdr.stamp, memory_order_relaxed), pos,
                         room, loose, EVB_FRAME_ANY_EVENT, &st) != EVB_FRAME_DATA)
        return 0;
    const size_t crc_at = offsetof(struct evb_frame, type); /* past crc32c */
    uint32_t crc = evb_crc32c(0, (const uint8_t *)&hdr + offsetof(struct evb_frame, offset),
                              offsetof(struct evb_frame, crc32c) -
                                  offsetof(struct evb_frame, offset));
    crc = evb_crc32c(crc, (const uint8_t *)&hdr + crc_at, EVB_FRAME_HDR - crc_at);
    for (uint64_t done = EVB_FRAME_HDR; done < st.len;) {
        size_t n = st.len - done < SEG_CRC_STEP ? (size_t)(st.len - done) : SEG_CRC_STEP;
        if (!(b = evb_seg_bytes(s, at + done, n)))
            return read_failed(s);
        crc = evb_crc32c(crc, b, n);
        done += n;
    }
    if (hdr.crc32c != crc)
        return 0;
    *len = st.len;
    if (st.len > g->max_frame || (uint64_t)st.key_len + st.value_len > g->max_event)
        return 1;
    return 2; /* it crosses the end of a ring of G's capacity */
}

int evb_seg_resync(struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos,
                   uint64_t limit, struct evb_seg_frame *fr, uint64_t *found)
{
    s->scan_end = 0;
    if (s->fd < 0 || pos < s->base) {
        *found = limit;
        return 0;
    }
    if (limit > s->base + s->bytes)
        limit = s->base + s->bytes;
    pos = (pos + EVB_FRAME_ALIGN - 1) & ~(uint64_t)(EVB_FRAME_ALIGN - 1);
    /* A frame's stamp names its own position: look for such a word first,
     * then check the frame it starts (length, checksum). A window at a
     * time; a frame checked may read another, so the window is asked for
     * again after one. */
    while (pos + sizeof(uint64_t) <= limit) {
        /* A hole up to the next data (or LIMIT): zeros, no frame there,
         * nothing to read (evb_seg_data_at). Asked once per window, so a
         * zero-filled stretch that is no hole still costs only its reads. */
        pos = s->base + evb_seg_data_at(s->fd, pos - s->base, limit - s->base);
        if (pos + sizeof(uint64_t) > limit)
            break;
        uint64_t n = limit - pos;
        n = n < SEG_SCAN ? n - n % EVB_FRAME_ALIGN : SEG_SCAN;
        if (!n)
            break;
        const uint8_t *b = evb_seg_bytes(s, pos - s->base, (size_t)n);
        if (!b)
            return read_failed(s); /* unread: no saying there is no frame */
        for (uint64_t i = 0; i < n; i += EVB_FRAME_ALIGN) {
            uint64_t stamp;
            memcpy(&stamp, b + i, sizeof stamp);
            if (stamp)
                s->scan_end = pos + i + sizeof stamp - s->base;
            if (!evb_stamp_is_committed(stamp, pos + i))
                continue;
            int k = evb_seg_frame(s, g, pos + i, fr);
            if (k < 0)
                return k;
            if (k) {
                *found = pos + i;
                return 0;
            }
            if (!(b = evb_seg_bytes(s, pos - s->base, (size_t)n)))
                return read_failed(s);
        }
        pos += n;
    }
    *found = limit;
    return 0;
}

int evb_seg_step(struct evb_seg *s, const struct evb_seg_geom *g,
                 struct evb_seg_walk *w, struct evb_seg_frame *fr)
{
    int kind = evb_seg_frame(s, g, w->pos, fr);
    if (kind <= 0)
        return kind;
    if (fr->offset == EVB_SEG_NO_OFFSET) {
        fr->offset = w->offset; /* a stamp-only pad voids nothing */
    } else if (w->learn || fr->offset == w->offset) {
        w->offset = fr->offset;
        w->learn = false;
        w->confirmed = true;
    } else {
        return -1;
    }
    w->pos += fr->skip;
    w->offset += fr->events;
    return kind;
}

int evb_seg_corrupt(const char *dir, const struct evb_seg_geom *g, const struct evb_seg_walk *w,
                    int kind, const struct evb_seg_frame *fr)
{
    EVB_NO_CANCEL;
    /* The file and the byte in it, so the damage can be found and dumped. */
    char path[PATH_MAX];
    uint64_t base = w->pos - w->pos % g->segment_bytes;
    if (evb_seg_path(path, sizeof path, dir, base, "log"))
        snprintf(path, sizeof path, "%s", dir);
    if (kind < 0)
        return evb_err_set(-EBADMSG, "%s: offset %llu at position %llu (file offset %llu), "
                           "expected %llu", path, (unsigned long long)fr->offset,
                           (unsigned long long)w->pos, (unsigned long long)(w->pos - base),
                           (unsigned long long)w->offset);
    return evb_err_set(-EBADMSG, "%s: damaged: no valid frame at position %llu (file offset "
                       "%llu)", path, (unsigned long long)w->pos,
                       (unsigned long long)(w->pos - base));
}

int evb_seg_reader_open(struct evb_seg_reader *sr, const char *dir,
                        const struct evb_seg_geom *g)
{
    memset(sr, 0, sizeof *sr);
    sr->seg.fd = -1;
    sr->learn = true;
    sr->lost_from = EVB_SEG_NO_OFFSET;
    sr->hint_pos = EVB_SEG_NO_OFFSET;
    sr->break_pos = EVB_SEG_NO_OFFSET;
    sr->floor = EVB_SEG_NO_OFFSET;
    int rc = evb_seg_geom_check(g);
    if (rc)
        return rc;
    sr->g = *g;
    sr->dir = strdup(dir);
    return sr->dir ? 0 : evb_err_set(-ENOMEM, "%s: segment reader", dir);
}

void evb_seg_reader_close(struct evb_seg_reader *sr)
{
    evb_seg_unmap(&sr->seg);
    free(sr->dir);
    sr->dir = NULL;
}

void evb_seg_reader_seek(struct evb_seg_reader *sr, uint64_t pos, uint64_t offset, bool learn)
{
    sr->pos = pos;
    sr->offset = offset;
    sr->learn = learn;
    sr->hint_pos = learn ? pos : EVB_SEG_NO_OFFSET;
    sr->lost_bytes = sr->lost_events = 0;
    sr->lost_from = EVB_SEG_NO_OFFSET;
    /* A seek is the caller's choice of where to go on, back included. */
    sr->floor = learn ? EVB_SEG_NO_OFFSET : offset;
    sr->repeated = 0;
}

/* Skip mode: the first base of a segment after POS (below END), to go on
 * past a missing one; END when there is none. */
static uint64_t next_base(struct evb_seg_reader *sr, uint64_t pos, uint64_t end)
{
    EVB_NO_CANCEL;
    uint64_t *bases, next = end;
    size_t n;
    if (evb_seg_list_checked(sr->dir, &sr->g, &bases, &n))
        return end;
    for (size_t i = 0; i < n; i++)
        if (bases[i] > pos && bases[i] < next)
            next = bases[i];
    free(bases);
    return next;
}

/* Skip mode: remember what was expected where a skip begins. */
static void skip_begin(struct evb_seg_reader *sr, const struct evb_seg_walk *w)
{
    /* Learning, the offset is known only where the seek put the reader
     * with one (the log start's, a committed one): damage at the very
     * first frame then still counts the events it held. */
    if (sr->lost_from == EVB_SEG_NO_OFFSET && (!w->learn || w->pos == sr->hint_pos))
        sr->lost_from = w->offset;
}

int evb_seg_read(struct evb_seg_reader *sr, uint64_t end, struct evb_frame_view *v)
{
    if (sr->failed)
        return sr->failed;
    if (sr->pos % EVB_FRAME_ALIGN)
        return evb_err_set(-EINVAL, "%s: position %llu is not a frame start", sr->dir,
                           (unsigned long long)sr->pos);
    struct evb_seg_walk w = {.pos = sr->pos, .offset = sr->offset, .learn = sr->learn};
    int rc;
    for (;;) {
        if (w.pos >= end) {
            rc = -EAGAIN;
            break;
        }
        rc = evb_seg_hold(&sr->seg, sr->dir, &sr->g, w.pos);
        if (rc && sr->skip_damage && (rc == -ENOENT || rc == -EBADMSG)) {
            /* A missing or short segment: go on at the next one. */
            uint64_t seg_end = w.pos - w.pos % sr->g.segment_bytes + sr->g.segment_bytes;
            uint64_t next = rc == -ENOENT ? next_base(sr, w.pos, end) : seg_end;
            skip_begin(sr, &w);
            sr->lost_bytes += (next < end ? next : end) - w.pos;
            w.pos = next < end ? next : end;
            w.learn = true;
            continue;
        }
        if (rc) {
            if (rc == -EBADMSG)
                sr->failed = rc;
            else if (rc == -ENOENT)
                evb_err_prefix(rc, "position %llu is no longer on disk",
                               (unsigned long long)w.pos);
            break;
        }
        /* Bytes below END are written and stay as they are: the window
         * may keep those, never the ones above, still being written. */
        sr->seg.stable = end;
        uint64_t seg_base = sr->seg.base;
        if (sr->seg.bytes < sr->g.segment_bytes && end - seg_base > sr->seg.bytes &&
            (rc = evb_seg_regrow(&sr->seg, &sr->g)))
            break; /* not known whether the cut is still there: try again */
        /* (A segment held while it was cut short may have been made
         * whole since, flush_segment.c refill_cut, and the flusher has
         * written on in it: its size is taken again before anything at
         * or past the old one, or a frame across it, is called lost.) */
        if (w.pos - seg_base >= sr->seg.bytes) {
            /* Past where a truncated segment was cut: the rest of the
             * segment is gone, damage like any other. */
            uint64_t seg_end = seg_base + sr->g.segment_bytes;
            if (!sr->skip_damage) {
                char path[PATH_MAX];
                if (evb_seg_path(path, sizeof path, sr->dir, seg_base, "log"))
                    snprintf(path, sizeof path, "%s", sr->dir);
                rc = sr->failed = evb_err_set(-EBADMSG, "%s: damaged: cut short at file "
                                              "offset %llu, no frame at position %llu", path,
                                              (unsigned long long)sr->seg.bytes,
                                              (unsigned long long)w.pos);
                break;
            }
            skip_begin(sr, &w);
            sr->lost_bytes += (seg_end < end ? seg_end : end) - w.pos;
            w.pos = seg_end < end ? seg_end : end;
            w.learn = true;
            continue;
        }
        struct evb_seg_frame fr;
        uint64_t at = w.pos;
        int kind = evb_seg_step(&sr->seg, &sr->g, &w, &fr);
        if (EVB_SEG_EREAD(kind)) {
            /* Not damage: nothing is known about these bytes. The reader
             * stays where it is, not failed, and a later call reads them
             * again. */
            rc = kind;
            break;
        }
        if (kind <= 0 && !sr->skip_damage) {
            rc = sr->failed = evb_seg_corrupt(sr->dir, &sr->g, &w, kind, &fr);
            break;
        }
        if (kind < 0) {
            /* A valid frame with another offset: damage (no log bytes
             * lost, but the offsets say something is wrong); take it,
             * count the gap. */
            sr->offset_breaks++;
            if (sr->break_pos == EVB_SEG_NO_OFFSET)
                sr->break_pos = at;
            skip_begin(sr, &w);
            w.learn = true;
            continue;
        }
        if (kind == 0) {
            /* The next valid frame, else the segment's end (or END). */
            uint64_t q;
            if ((rc = evb_seg_resync(&sr->seg, &sr->g, w.pos + EVB_FRAME_ALIGN, end, &fr,
                                     &q)))
                break; /* as above: W still at the damage, nothing counted */
            skip_begin(sr, &w);
            sr->lost_bytes += q - w.pos;
            w.pos = q;
            w.learn = true;
            continue;
        }
        if (kind > 0 && sr->once && sr->skip_damage && !w.learn &&
            sr->floor != EVB_SEG_NO_OFFSET && fr.offset < sr->floor) {
            /* The offsets went back (the break above let the walk learn
             * a lower one): these offsets were handed out already, with
             * other events. Delivering them again would give a consumer
             * keyed on offsets duplicates it cannot tell from the real
             * thing; skip them as damage, until the offsets reach the
             * floor, and count them so the next event reports them. The
             * floor stays where it was, and lost_from (the break set it)
             * counts a gap should the offsets then jump past it. */
            if (sr->lost_from == EVB_SEG_NO_OFFSET)
                sr->lost_from = sr->floor;
            sr->lost_events += kind == 1 ? 1 : 0;
            sr->repeated += kind == 1 ? 1 : 0;
            sr->lost_bytes += fr.skip;
            continue;
        }
        /* The first frame taken after a skip: the offsets tell how many
         * events the skip held (learned there, or, after offsets that
         * went back, walked up to the floor). */
        if (!w.learn && sr->lost_from != EVB_SEG_NO_OFFSET) {
            /* A frame skipped below the floor may be the very event whose
             * offset is missing (one frame's offset lowered): count the
             * larger of the two, not both. */
            uint64_t gap = fr.offset > sr->lost_from ? fr.offset - sr->lost_from : 0;
            if (gap > sr->repeated)
                sr->lost_events += gap - sr->repeated;
            sr->lost_from = EVB_SEG_NO_OFFSET;
            sr->repeated = 0;
        }
        if (!w.learn)
            sr->floor = w.offset;
        if (kind == 1) {
            v->f = fr.f;
            v->key = (const uint8_t *)fr.f + EVB_FRAME_HDR;
            /* Where the frame's flags put it: 8-aligned for frames of
             * ring version 3 on, right after the key in older segments. */
            v->value = (const uint8_t *)fr.f + fr.value_at;
            /* The checked lengths travel with the view (no double fetch). */
            v->key_len = fr.key_len;
            v->value_len = fr.value_len;
            v->flags = fr.flags;
            v->pos = at;
            v->lost_events = sr->lost_events;
            v->lost_bytes = sr->lost_bytes;
            sr->lost_events = sr->lost_bytes = 0;
            break;
        }
    }
    sr->pos = w.pos;
    sr->offset = w.offset;
    sr->learn = w.learn;
    if (rc == 0)
        v->end = w.pos;
    return rc;
}
