/*
 * seg_reader.c - frames of a mapped segment: the checks of one frame
 * (shm/read.c's rules plus the checksum), the step of a walk through the
 * log, and the segment reader that consumers and `evbus dump` use. Files
 * and mappings are segment.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "frame.h"
#include "seg_internal.h"

int evb_seg_frame(const struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos,
                  struct evb_seg_frame *out)
{
    if (!s->map || pos < s->base || pos - s->base >= s->bytes || pos % EVB_FRAME_ALIGN)
        return 0;
    uint64_t at = pos - s->base;
    /* Bytes to the ring end; the segment end as well, should a damaged
     * file name put a segment off the ring's grid. */
    uint64_t room = g->capacity - (pos & (g->capacity - 1));
    if (room > s->bytes - at)
        room = s->bytes - at;
    if (room < sizeof(uint64_t))
        return 0;
    const struct evb_frame *f = (const struct evb_frame *)(const void *)(s->map + at);
    struct evb_frame_step st;
    /* Relaxed: the mapping is MAP_SHARED, of a file a flusher may still
     * be appending to, but nothing in it is published by a store to pair
     * with: bytes below the flushed position no longer change, and the
     * walks never read above it (evb_seg_read stops at the END it is
     * given, recovery holds the flush lock, the flusher's retention reads
     * a kept segment's first frame, long flushed). `evbus dump` may look
     * past it; a frame half written there fails its length or checksum
     * check and ends the dump. */
    uint64_t stamp = __atomic_load_n((const uint64_t *)(const void *)f, __ATOMIC_RELAXED);
    int kind = evb_frame_decode(f, stamp, pos, room, g->max_frame, &st);
    if (kind == EVB_FRAME_PAD) {
        *out = (struct evb_seg_frame){.f = st.offset == EVB_FRAME_NO_OFFSET ? NULL : f,
                                      .skip = st.skip, .events = st.events,
                                      .offset = st.offset};
        return 2;
    }
    if (kind != EVB_FRAME_DATA || f->crc32c != evb_frame_crc(f, st.len))
        return 0;
    *out = (struct evb_seg_frame){.f = f, .skip = st.skip, .events = 1, .offset = st.offset,
                                  .len = st.len, .key_len = st.key_len};
    return 1;
}

int evb_seg_step(const struct evb_seg *s, const struct evb_seg_geom *g,
                 struct evb_seg_walk *w, struct evb_seg_frame *fr)
{
    int kind = evb_seg_frame(s, g, w->pos, fr);
    if (!kind)
        return 0;
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

int evb_seg_corrupt(const char *dir, const struct evb_seg_walk *w, int kind,
                    const struct evb_seg_frame *fr)
{
    if (kind < 0)
        return evb_err_set(-EBADMSG, "%s: offset %llu at position %llu, expected %llu", dir,
                           (unsigned long long)fr->offset, (unsigned long long)w->pos,
                           (unsigned long long)w->offset);
    return evb_err_set(-EBADMSG, "%s: no valid frame at position %llu", dir,
                       (unsigned long long)w->pos);
}

int evb_seg_reader_open(struct evb_seg_reader *sr, const char *dir,
                        const struct evb_seg_geom *g)
{
    memset(sr, 0, sizeof *sr);
    sr->seg.fd = -1;
    sr->learn = true;
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
        if (rc) {
            if (rc == -EBADMSG)
                sr->failed = rc;
            else if (rc == -ENOENT)
                evb_err_prefix(rc, "position %llu is no longer on disk",
                               (unsigned long long)w.pos);
            break;
        }
        struct evb_seg_frame fr;
        uint64_t at = w.pos;
        int kind = evb_seg_step(&sr->seg, &sr->g, &w, &fr);
        if (kind <= 0) {
            rc = sr->failed = evb_seg_corrupt(sr->dir, &w, kind, &fr);
            break;
        }
        if (kind == 1) {
            v->f = fr.f;
            v->key = (const uint8_t *)fr.f + EVB_FRAME_HDR;
            v->value = v->key + fr.key_len;
            /* The checked lengths travel with the view (no double fetch). */
            v->key_len = fr.key_len;
            v->value_len = fr.len - EVB_FRAME_HDR - fr.key_len;
            v->pos = at;
            v->lost_events = 0;
            v->lost_bytes = 0;
            break;
        }
    }
    sr->pos = w.pos;
    sr->offset = w.offset;
    sr->learn = w.learn;
    return rc;
}
