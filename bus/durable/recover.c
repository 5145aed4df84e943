/*
 * recover.c - the end of a partition's log after a crash. Only bytes past
 * the last durable position can be a torn tail: that position is the later
 * of the durable mark (mark.c) and the end of the last valid frame on disk.
 * The torn tail is cut (zeroed and synced), later segments and index
 * entries removed; damage below the end is counted and kept, never cut.
 * A cut no mark bounded may have taken back offsets already handed out:
 * pads written at the end skip every one it could have held.
 * Run under the partition's flush lock; restore.c turns the result into
 * ring positions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "safe_open.h"
#include "seg_internal.h"

/* What a walk of one segment found. */
struct seg_scan {
    bool any;            /* a valid frame whose offset is known */
    uint64_t end_pos;    /* after the last such frame (and pads after it) */
    uint64_t end_offset; /* the offset there */
    uint64_t first_off;  /* offset of the frame at the base, or NO_OFFSET */
    uint64_t max_next;   /* past the largest offset of a data frame (whose
                            checksum covers it; a pad's has none) */
    uint64_t zero_from;  /* file offset from which the walk saw only zeros
                            to the segment's end; UINT64_MAX not known */
};

/* Note a damaged range [POS, POS + BYTES) below the end. */
static void damage(struct evb_seg_recovery *r, uint64_t pos, uint64_t bytes)
{
    r->damaged++;
    r->damaged_bytes += bytes;
    if (pos < r->damaged_pos)
        r->damaged_pos = pos;
}

/* -EBADMSG for a frame at AT of segment BASE that the geometry refuses
 * though it was written whole (evb_seg_misfit() said WHY, 1 or 2). */
static int misfit_error(const char *dir, const struct evb_seg_geom *g, uint64_t base,
                        uint64_t at, int why, uint32_t len)
{
    char path[PATH_MAX];
    if (evb_seg_path(path, sizeof path, dir, base, "log"))
        snprintf(path, sizeof path, "%s", dir);
    if (why == 1)
        return evb_err_set(-EBADMSG, "%s: the frame at position %llu (%u bytes) has a valid "
                           "checksum, but is larger than topic.conf's max_event_bytes allows "
                           "(%u-byte frames, events of %u bytes): topic.conf does not match "
                           "the log (changed since it was written?); nothing was changed",
                           path, (unsigned long long)at, len, g->max_frame,
                           g->max_event);
    if (why == 3)
        return evb_err_set(-EBADMSG, "%s: position %llu holds a stamp-only pad %u bytes "
                           "before a ring end, which topic.conf's ring_bytes %llu does not "
                           "have there: the log was written with a smaller ring (ring_bytes "
                           "changed since?); nothing was changed", path,
                           (unsigned long long)at, len, (unsigned long long)g->capacity);
    return evb_err_set(-EBADMSG, "%s: the frame at position %llu (%u bytes, valid checksum) "
                       "crosses the end of a ring of topic.conf's ring_bytes %llu: topic.conf "
                       "does not match the log (changed since it was written?); nothing was "
                       "changed", path, (unsigned long long)at, len,
                       (unsigned long long)g->capacity);
}

/* Walk segment BASE from its base to its end, over damage: a range with
 * no valid frame that a valid frame follows is damage (noted in R when
 * R); what follows the last valid frame is left to the caller. A frame
 * written whole that the geometry refuses is no damage but a config that
 * does not match the log: -EBADMSG, before anything is cut. */
static int scan_segment(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                        uint64_t base, struct seg_scan *sc, struct evb_seg_recovery *r)
{
    *sc = (struct seg_scan){.first_off = EVB_SEG_NO_OFFSET, .zero_from = UINT64_MAX};
    int rc = evb_seg_hold(s, dir, g, base);
    if (rc)
        return rc;
    struct evb_seg_walk w = {.pos = base, .learn = true};
    struct evb_seg_frame fr;
    uint64_t seg_end = base + s->bytes; /* less when the file was cut short */
    while (w.pos < seg_end) {
        uint64_t at = w.pos;
        int kind = evb_seg_step(s, g, &w, &fr);
        if (EVB_SEG_EREAD(kind))
            return kind; /* unread is not "no frame": nothing may be cut on it */
        if (kind == 1 && fr.offset + 1 > sc->max_next)
            sc->max_next = fr.offset + 1;
        if (kind > 0) {
            if (at == base && fr.f)
                sc->first_off = fr.offset;
            if (!w.learn) {
                sc->any = true;
                sc->end_pos = w.pos;
                sc->end_offset = w.offset;
            }
            continue;
        }
        if (kind < 0) {
            /* A valid frame with an offset the walk did not expect. */
            if (r)
                damage(r, at, 0);
            w.learn = true;
            continue;
        }
        uint32_t len;
        int why = evb_seg_misfit(s, g, at, &len);
        if (EVB_SEG_EREAD(why))
            return why;
        if (why)
            return misfit_error(dir, g, base, at, why, len);
        /* A range past the durable mark without a valid frame, valid
         * frames after it, may be writeback that reached the disk out of
         * order before a crash (a hole of zeros, never acknowledged as
         * durable). It is counted as damage like any other, not padded
         * over nor cut: the mark is not synced itself and may lag, so
         * such a range may as well be synced bytes the medium lost, which
         * a pad would turn silently into "aborted" events; cutting would
         * drop the valid frames after it and hand their offsets out again.
         * Kept, it is reported (info) and readers choose to stop or skip
         * it (EVB_CONSUMER_SKIP_DAMAGE), losing nothing more. */
        uint64_t q;
        if ((rc = evb_seg_resync(s, g, at + EVB_FRAME_ALIGN, seg_end, &fr, &q)))
            return rc;
        if (q == seg_end) {
            /* Every word past AT's was looked at (holes skipped are
             * zeros): the cut of this tail need not read them again. */
            if (s->bytes == g->segment_bytes)
                sc->zero_from = at - base + EVB_FRAME_ALIGN > s->scan_end
                                    ? at - base + EVB_FRAME_ALIGN
                                    : s->scan_end;
            return 0;
        }
        if (r)
            damage(r, at, q - at);
        w.pos = q;
        w.learn = true;
    }
    if (s->bytes == g->segment_bytes)
        sc->zero_from = s->bytes; /* frames to the very end */
    return 0;
}

/* The offset of the frame at segment BASE's base (what a walk's first
 * step there takes: a data frame's, a pad's that carries one), NO_OFFSET
 * when there is none or it cannot be read. One step, not a walk: the
 * rest of a full segment is no business of its first frame's. */
static uint64_t first_frame_offset(struct evb_seg *s, const char *dir,
                                   const struct evb_seg_geom *g, uint64_t base)
{
    if (evb_seg_hold(s, dir, g, base))
        return EVB_SEG_NO_OFFSET;
    struct evb_seg_walk w = {.pos = base, .learn = true};
    struct evb_seg_frame fr;
    int kind = evb_seg_step(s, g, &w, &fr);
    return kind > 0 && fr.f ? fr.offset : EVB_SEG_NO_OFFSET;
}

/* The offset of the first event of segment BASE: its first frame's, else
 * its index's base offset, else the first valid frame's; FALLBACK when
 * none of them tells. */
static uint64_t start_offset(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                             uint64_t base, uint64_t fallback)
{
    uint64_t first = first_frame_offset(s, dir, g, base);
    if (first != EVB_SEG_NO_OFFSET)
        return first;
    struct evb_idx *x;
    if (evb_idx_load(dir, base, &x) == 0) {
        uint64_t off = x->base_offset;
        free(x);
        return off;
    }
    struct evb_seg_frame fr;
    uint64_t q;
    if (s->fd >= 0 && s->base == base &&
        evb_seg_resync(s, g, base, base + g->segment_bytes, &fr, &q) == 0 &&
        q < base + g->segment_bytes && fr.f)
        return fr.offset;
    return fallback;
}

/*
 * Offsets that a cut without a mark may have taken back. Such a cut may
 * have dropped synced events whose offsets producers were given, and
 * nothing left says how many: the bytes were damaged or zeroed. What
 * bounds them is where the log could have reached: a segment file is made
 * before anything is written into it, so no frame ever lay at or past
 * the end of the newest segment file there was (TOP, taken before the cut
 * removed any), and every event's frame takes at least EVB_FRAME_HDR
 * bytes (a pad voids the events of a claim that reserved as many). So at
 * most (TOP - END) / EVB_FRAME_HDR offsets were handed out past END, and
 * skipping that many makes reuse impossible. Events that were only ever
 * in the ring (tmpfs lost, never written) are not counted: their bytes
 * never reached the disk, as with a mark, where a cut past it is a torn
 * tail whose events were never acknowledged durable.
 */
static uint64_t unbounded_skip(uint64_t top, uint64_t end_pos)
{
    return top > end_pos ? (top - end_pos + EVB_FRAME_HDR - 1) / EVB_FRAME_HDR : 0;
}

/*
 * Write pads at POS that void VOID offsets from OFF on, so the log itself
 * says that they were skipped: a reader walking over them finds the
 * offsets it expects, and a later recovery finds the end after them. A
 * pad carrying an offset takes a header, up to the next 64-byte line (so
 * the frames written after it start on a line again, ring_format.h), and
 * voids at most UINT16_MAX events; where less than a header is left
 * before a ring end a stamp-only pad fills it (a segment end is a ring
 * end). Each segment
 * file written is synced; one missing is made with MODE. *END gets the
 * position after the pads.
 */
static int write_pads(const char *dir, const struct evb_seg_geom *g, uint32_t mode,
                      uint64_t pos, uint64_t off, uint64_t nvoid, uint64_t *end)
{
    int fd = -1, rc = 0;
    uint64_t fd_base = UINT64_MAX;
    char path[PATH_MAX];
    while (nvoid && !rc) {
        uint64_t base = pos - pos % g->segment_bytes;
        if (base != fd_base) {
            if (fd >= 0 && fdatasync(fd) < 0)
                rc = evb_err_set(-errno, "%s: fdatasync: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            fd = -1;
            if (rc || (rc = evb_seg_path(path, sizeof path, dir, base, "log")))
                break;
            fd = evb_seg_create(dir, base, g->segment_bytes, false, mode);
            if (fd < 0) {
                rc = fd;
                break;
            }
            fd_base = base;
        }
        uint64_t room = g->capacity - (pos & (g->capacity - 1));
        uint8_t hdr[EVB_FRAME_HDR] = {0};
        uint64_t stamp = pos | EVB_STAMP_PAD;
        memcpy(hdr + offsetof(struct evb_frame, stamp), &stamp, sizeof stamp);
        size_t len = sizeof stamp;
        uint64_t n = 0;
        if (room >= EVB_FRAME_HDR) {
            /* At most ROOM: the ring's end is on a line. */
            uint32_t skip = (uint32_t)(evb_align_line(pos + EVB_FRAME_HDR) - pos);
            n = nvoid < UINT16_MAX ? nvoid : UINT16_MAX;
            uint16_t ev = (uint16_t)n;
            memcpy(hdr + offsetof(struct evb_frame, offset), &off, sizeof off);
            memcpy(hdr + offsetof(struct evb_frame, claim_len), &skip, sizeof skip);
            memcpy(hdr + offsetof(struct evb_frame, claim_events), &ev, sizeof ev);
            len = EVB_FRAME_HDR;
            room = skip;
        }
        rc = evb_seg_write_at(fd, hdr, len, (off_t)(pos - base));
        if (rc)
            evb_err_set(rc, "%s: %s", path, strerror(-rc));
        pos += room;
        off += n;
        nvoid -= n;
    }
    if (fd >= 0) {
        if (!rc && fdatasync(fd) < 0)
            rc = evb_err_set(-errno, "%s: fdatasync: %s", path, strerror(errno));
        close(fd);
    }
    *end = pos;
    return rc;
}

int evb_seg_fit(const char *dir, const struct evb_seg_geom *g)
{
    return evb_seg_fit_walk(dir, g, NULL);
}

int evb_seg_fit_walk(const char *dir, const struct evb_seg_geom *g, struct evb_seg_fitted *fit)
{
    if (fit)
        *fit = (struct evb_seg_fitted){0};
    uint64_t *bases;
    size_t n;
    int rc = evb_seg_files_fit(dir, g, &bases, &n);
    if (rc)
        return rc == -ENOENT ? 0 : rc;
    /* The frames recovery will walk: the newest segment holding one. */
    struct evb_seg s = {.fd = -1};
    struct seg_scan sc = {0};
    struct evb_seg_recovery probe = {.damaged_pos = UINT64_MAX};
    for (size_t j = n; j-- > 0 && !rc;) {
        int64_t sz = evb_seg_file_size(dir, bases[j]);
        if (sz < 0 || (uint64_t)sz < g->segment_bytes)
            break; /* recovery's to report */
        probe = (struct evb_seg_recovery){.damaged_pos = UINT64_MAX};
        if ((rc = scan_segment(&s, dir, g, bases[j], &sc, &probe)))
            break;
        if (sc.any) {
            /* Every file above it full size and walked without a frame:
             * recovery's walk from the newest down finds the same. */
            if (fit)
                *fit = (struct evb_seg_fitted){
                    .valid = true, .base = bases[j], .top = bases[n - 1],
                    .end_pos = sc.end_pos, .end_offset = sc.end_offset,
                    .first_off = sc.first_off, .max_next = sc.max_next,
                    .zero_from = sc.zero_from, .damaged = probe.damaged,
                    .damaged_bytes = probe.damaged_bytes, .damaged_pos = probe.damaged_pos};
            break;
        }
    }
    evb_seg_unmap(&s);
    free(bases);
    return rc;
}

int evb_seg_recover(const char *dir, const struct evb_seg_geom *g, uint64_t hint_pos,
                    struct evb_seg_recovery *out)
{
    (void)hint_pos; /* see segment.h */
    return evb_seg_recover_fitted(dir, g, NULL, out);
}

int evb_seg_recover_fitted(const char *dir, const struct evb_seg_geom *g,
                           const struct evb_seg_fitted *fit, struct evb_seg_recovery *out)
{
    uint64_t *bases, mpos = 0, moff = 0;
    size_t n;
    struct evb_seg_recovery r = {.damaged_pos = UINT64_MAX};
    *out = r;
    int rc = evb_seg_files_fit(dir, g, &bases, &n);
    if (rc)
        return rc;
    /* Bytes past a segment's size are not log (evb_seg_files_fit): trimmed, so
     * the file is a segment again, and counted as dropped but never as a
     * cut of the log (no pads: no offset was ever handed out there). */
    uint64_t trimmed = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = evb_seg_trim(dir, g, bases[i], &trimmed);
    if (rc) {
        free(bases);
        return rc;
    }
    struct evb_seg_mark mk;
    r.mark = (uint32_t)evb_seg_mark_load(dir, &mk);
    bool mark = r.mark == EVB_SEG_MARK_OK;
    if (mark) {
        r.durable_pos = mpos = mk.pos;
        moff = mk.offset;
        if (mk.start_pos == 0)
            mk.start_offset = 0; /* a log starts at offset 0, and only there */
    } else if (!n) {
        r.mark = EVB_SEG_MARK_OK; /* nothing written yet: nothing to bound */
    }
    if (!n) {
        /* Nothing on disk: a mark says the log once reached it; what it
         * held from the log start on is lost (not retained: retention
         * keeps the segment being written). */
        if (mark && mpos > mk.start_pos) {
            damage(&r, mk.start_pos, mpos - mk.start_pos);
            r.start_pos = mk.start_pos;
            r.start_offset = mk.start_offset == EVB_SEG_NO_OFFSET ? moff : mk.start_offset;
            r.end_pos = mpos;
            r.end_offset = moff;
        } else if (mark && mpos) {
            r.end_pos = r.start_pos = mpos;
            r.end_offset = r.start_offset = moff;
        }
        *out = r;
        return 0;
    }

    /* The newest segment holding a valid frame: walked whole, damage in it
     * noted. Newer ones hold none. A short one found first is walked as
     * far as it goes when the mark says where the log ends (what it lost
     * below the mark is then damage, as for a missing segment); without a
     * mark the log end is unknown, and nothing is cut. */
    struct evb_seg s = {.fd = -1};
    struct seg_scan sc = {0};
    size_t top = n;
    for (size_t j = n; j-- > 0 && !rc;) {
        int64_t sz = evb_seg_file_size(dir, bases[j]);
        if (sz < 0) {
            rc = (int)sz;
            break;
        }
        if ((uint64_t)sz < g->segment_bytes && !mark) {
            rc = evb_err_set(-EBADMSG, "%s: segment %020llu has %lld bytes, a segment has "
                             "%llu, and no valid durable mark says where the log ended: the "
                             "log end is unknown", dir, (unsigned long long)bases[j],
                             (long long)sz, (unsigned long long)g->segment_bytes);
            break;
        }
        if (sz < (int64_t)sizeof(uint64_t))
            continue; /* not one frame left in it */
        struct evb_seg_recovery probe = r;
        if (fit && fit->valid && bases[j] > fit->base && bases[n - 1] <= fit->top &&
            (uint64_t)sz >= g->segment_bytes)
            continue; /* walked by the fit check: no frame in it */
        if (fit && fit->valid && bases[j] == fit->base && bases[n - 1] <= fit->top &&
            (uint64_t)sz >= g->segment_bytes) {
            /* Walked by the fit check, the same bytes: what it found. */
            sc = (struct seg_scan){.any = true, .end_pos = fit->end_pos,
                                   .end_offset = fit->end_offset, .first_off = fit->first_off,
                                   .max_next = fit->max_next, .zero_from = fit->zero_from};
            if (fit->damaged) {
                probe.damaged += fit->damaged;
                probe.damaged_bytes += fit->damaged_bytes;
                if (fit->damaged_pos < probe.damaged_pos)
                    probe.damaged_pos = fit->damaged_pos;
            }
        } else if ((rc = scan_segment(&s, dir, g, bases[j], &sc, &probe))) {
            break;
        }
        if (sc.any) {
            top = j;
            r = probe;
            break;
        }
    }
    uint64_t end_pos = bases[0], end_off = 0;
    if (!rc && top < n) {
        end_pos = sc.end_pos;
        /* Never below an offset a data frame on disk already has. */
        end_off = sc.end_offset > sc.max_next ? sc.end_offset : sc.max_next;
    } else if (!rc) {
        /* No valid frame anywhere: the oldest index may know the offset. */
        struct evb_idx *x;
        if (evb_idx_load(dir, bases[0], &x) == 0) {
            end_off = x->base_offset;
            free(x);
        }
    }
    /* Below the mark nothing is torn: what has no valid frame there is
     * damage, and the log resumes at the mark. */
    uint64_t mark_from = UINT64_MAX; /* where that range starts */
    if (!rc && mark && mpos > end_pos) {
        damage(&r, end_pos, mpos - end_pos);
        mark_from = end_pos;
        end_pos = mpos;
    }
    if (mark && moff > end_off && mpos >= end_pos)
        end_off = moff;

    /* Damage below the end the listing shows: segments missing between
     * the oldest and the end, segments cut short. */
    uint64_t end_base = end_pos - end_pos % g->segment_bytes;
    for (size_t i = 0; !rc && i < n && bases[i] <= end_base; i++) {
        uint64_t next = i + 1 < n && bases[i + 1] <= end_base ? bases[i + 1] : end_base;
        if (bases[i] + g->segment_bytes < next)
            damage(&r, bases[i] + g->segment_bytes, next - bases[i] - g->segment_bytes);
        int64_t sz = evb_seg_file_size(dir, bases[i]);
        /* The segment walked above counted its damage, and what it lost
         * below the mark is in the mark's range. */
        if (sz >= 0 && (uint64_t)sz < g->segment_bytes && bases[i] < end_pos &&
            !(top < n && bases[i] == bases[top])) {
            /* Cut short: the frames before the cut are intact, the damage
             * starts after the last of them, as a reader sees it, and
             * ends at the segment's end, the log's, or the mark's range. */
            struct seg_scan e;
            uint64_t from = bases[i], to = bases[i] + g->segment_bytes;
            int src = scan_segment(&s, dir, g, bases[i], &e, &r);
            if (src == -EIO || src == -ENOMEM || src == -EMFILE || src == -ENFILE) {
                rc = src; /* unread: neither frames nor damage known */
                break;
            }
            if (src == 0 && e.any)
                from = e.end_pos;
            to = to < end_pos ? to : end_pos;
            to = to < mark_from ? to : mark_from;
            if (to > from)
                damage(&r, from, to - from);
        }
    }

    /* Cut: newer segments newest first, then the tail, then the index. A
     * crash in between leaves a log that recovers to the same end. */
    char path[PATH_MAX];
    size_t kept = n;
    uint64_t dropped = 0;
    for (size_t j = n; !rc && j-- > 0 && bases[j] > end_base;) {
        rc = evb_seg_remove(dir, bases[j], &dropped);
        kept = j;
    }
    if (!rc && kept < n)
        rc = evb_seg_sync_dir(dir);
    bool have_end_seg = kept > 0 && bases[kept - 1] == end_base;
    uint64_t first = EVB_SEG_NO_OFFSET;
    if (!rc && have_end_seg && !(rc = evb_seg_path(path, sizeof path, dir, end_base, "log")))
        rc = evb_seg_cut_tail_below(path, end_pos - end_base,
                                    top < n && bases[top] == end_base ? sc.zero_from
                                                                      : UINT64_MAX,
                                    true, &dropped);
    /* Cut short (only with a mark: refused above otherwise): whole again,
     * for the flusher to go on in; the zeros are the damage counted. */
    if (!rc && have_end_seg)
        rc = evb_seg_fill_out(path, g->segment_bytes);
    /* A cut no mark bounded: skip every offset it may have taken back
     * (unbounded_skip), in pads written at the end, so that the log says
     * so itself and a reader crossing them finds the offsets it expects. */
    uint64_t nvoid = 0, pads_end = end_pos;
    if (!rc && !mark && dropped) {
        /* The newest file of the run that follows on from the end
         * without a gap: the flusher makes them one after the other, so
         * a file past a gap is no evidence of writing (a planted name
         * must not make the skip, and the pads, arbitrarily long). */
        uint64_t top = end_base + g->segment_bytes;
        for (size_t j = 0; j < n; j++)
            if (bases[j] == top)
                top += g->segment_bytes;
        nvoid = unbounded_skip(top, end_pos);
        if (nvoid)
            rc = write_pads(dir, g, evb_seg_file_mode(dir, bases[0]), end_pos, end_off, nvoid,
                            &pads_end);
        have_end_seg = have_end_seg || (nvoid && !rc);
    }
    if (!rc && have_end_seg) {
        if (end_pos == end_base)
            first = end_off; /* what the first frame at the base has */
        else if (top < n && bases[top] == end_base)
            first = sc.first_off; /* walked above; the cut left the bytes below
                                     the end, which hold that frame, as they were */
        else
            first = first_frame_offset(&s, dir, g, end_base);
        rc = evb_idx_cut(dir, end_base, end_pos, first);
    }

    /* The start: the oldest segment's first event. */
    uint64_t start = end_off;
    if (!rc && kept > 0 && !(end_pos == bases[0])) {
        /* The oldest segment walked above already (the only one, often):
         * its first frame lies below the end, untouched by the cut. */
        if (top < n && top == 0 && sc.first_off != EVB_SEG_NO_OFFSET)
            start = sc.first_off;
        else
            start = start_offset(&s, dir, g, bases[0], end_off);
    }
    evb_seg_unmap(&s);
    if (!rc) {
        r.end_pos = end_pos;
        r.end_offset = end_off;
        r.start_pos = kept ? bases[0] : end_pos;
        r.start_offset = start;
        /* Segments gone below the oldest one left but at or above the log
         * start the mark recorded were lost, not retained: damage, and
         * the log still starts where the mark says, so readers meet it. */
        if (mark && mk.start_pos < r.start_pos) {
            damage(&r, mk.start_pos, r.start_pos - mk.start_pos);
            r.start_pos = mk.start_pos;
            if (mk.start_offset != EVB_SEG_NO_OFFSET && mk.start_offset < r.start_offset)
                r.start_offset = mk.start_offset;
        }
        /* Without a mark the cut above had nothing to bound it: the bytes
         * may have held synced events. Said loudly (info), not only
         * counted in dropped_bytes. */
        if (!mark) {
            r.cut_bytes = dropped;
            r.cut_pos = end_pos; /* the log's end then, cut or not */
        }
        r.dropped_bytes = dropped + trimmed;
        r.segments = (uint32_t)kept;
        if (nvoid) {
            /* The log now ends after the pads, every offset they void
             * skipped; pads past the kept segments made new files. */
            r.end_pos = pads_end;
            r.end_offset = end_off + nvoid;
            r.skipped_offsets = nvoid;
            uint64_t *now;
            size_t nn;
            if (evb_seg_list(dir, &now, &nn) == 0) {
                r.segments = (uint32_t)nn;
                free(now);
            }
        }
        *out = r;
    }
    free(bases);
    return rc;
}
