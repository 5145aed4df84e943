/*
 * consumer_disk.c - the disk side of a durable topic's reader: reading the
 * segment files while the ring has lapped it (evb_ring_read says -ESTALE),
 * the seam back to the ring at the flushed position, and where every seek
 * lands, in the ring or the disk log; with EVB_CONSUMER_SKIP_DAMAGE, the
 * loss of damage a read or seek passed, down to damage that ends the log
 * (owed to the next event, or evb_consumer_skipped()). The handle, reading
 * and waiting are consumer.c's; segment files and frames bus/durable's.
 *
 * Positions are the same on both sides of the seam, so it has no gap and no
 * duplicate.
 */
#include <errno.h>
#include <limits.h>

#include "consumer_internal.h"
#include "cursor_format.h"

int evb_consumer_disk_start(evb_consumer *c, uint32_t i, uint64_t pos, uint64_t off, bool learn)
{
    EVB_NO_CANCEL;
    struct evb_consumer_disk *d = &c->disk[i];
    if (!d->open) {
        char pdir[PATH_MAX + 16];
        evb_part_dir(c->tm, c->part[i], pdir, sizeof pdir);
        int rc = evb_seg_reader_open(&d->sr, pdir, &c->geom);
        if (rc)
            return rc;
        d->open = true;
        d->sr.skip_damage = (c->opts.flags & EVB_CONSUMER_SKIP_DAMAGE) != 0;
        d->sr.once = d->sr.skip_damage;
    }
    evb_seg_reader_seek(&d->sr, pos, off, learn);
    if (d->state == EVB_CDISK_OWED) {
        /* Lapped again before the ring gave an event: the loss owed goes
         * with the next event from disk, counted as the reader counts its
         * own (from the offset expected where the damage began). */
        if (d->owed_from != EVB_SEG_NO_OFFSET && !learn && off > d->owed_from)
            d->owed_events += off - d->owed_from;
        d->sr.lost_bytes = d->owed_bytes;
        d->sr.lost_events = d->owed_events;
        d->sr.lost_from = learn ? d->owed_from : EVB_SEG_NO_OFFSET;
        d->owed_bytes = d->owed_events = 0;
        d->owed_from = EVB_SEG_NO_OFFSET;
    }
    d->state = EVB_CDISK_READ;
    return 0;
}

/* The next event from disk, or -EAGAIN once the reader reached flushed. */
static int disk_read(evb_consumer *c, uint32_t i, struct evb_frame_view *v)
{
    struct evb_ring_reader *rd = &c->rd[i];
    struct evb_seg_reader *sr = &c->disk[i].sr;
    struct evb_ring_hdr *h = rd->r->hdr;
    for (;;) {
        /* F1 (bus/durable/durable.h): acquire, pairs with the flusher's
         * release store of flushed, made after the bytes below reached the
         * file. */
        uint64_t end = atomic_load_explicit(&h->flushed, memory_order_acquire);
        int rc = evb_seg_read(sr, end, v);
        if (rc == -ENOENT) {
            /* Retention removed the segment under us: go to the log start
             * and report what was skipped as lost. G1: relaxed; retention
             * stored the start before it deleted, and the seek below
             * learns the offset from the frame it lands on. */
            uint64_t sp = atomic_load_explicit(&h->log_start_pos, memory_order_relaxed);
            uint64_t so = atomic_load_explicit(&h->log_start_offset, memory_order_relaxed);
            if (sp <= sr->pos) {
                char path[PATH_MAX + 32];
                uint64_t base = sr->pos - sr->pos % sr->g.segment_bytes;
                evb_seg_path(path, sizeof path, sr->dir, base, "log");
                return evb_err_set(-EBADMSG, "partition %u: %s, the segment of position "
                                   "%llu, is missing though the log starts at %llu: not "
                                   "retention's doing (removed by hand?)", c->part[i], path,
                                   (unsigned long long)sr->pos, (unsigned long long)sp);
            }
            /* Events: none counted when the offset is not known
             * (EVB_FRAME_NO_OFFSET, a seek by position). */
            evb_ring_reader_add_loss(rd, sp - sr->pos, so > sr->offset ? so - sr->offset : 0);
            evb_seg_reader_seek(sr, sp, so, true);
            continue;
        }
        if (rc == -EAGAIN &&
            (sr->lost_bytes || sr->lost_events || sr->lost_from != EVB_SEG_NO_OFFSET)) {
            /* Damage skipped up to flushed: no event of the log is left to
             * carry the loss. The partition owes it to the next event of
             * the ring, whose offset tells how many events the damage
             * held, or to evb_consumer_skipped() if asked first. */
            struct evb_consumer_disk *d = &c->disk[i];
            d->owed_bytes += sr->lost_bytes;
            d->owed_events += sr->lost_events;
            d->owed_from = sr->lost_from;
            d->state = EVB_CDISK_OWED;
            sr->lost_bytes = sr->lost_events = sr->repeated = 0;
            sr->lost_from = EVB_SEG_NO_OFFSET;
        }
        if (rc)
            return rc == -EBADMSG ? evb_err_prefix(rc, "partition %u", c->part[i]) : rc;
        /* Damage skipped (EVB_CONSUMER_SKIP_DAMAGE) is lost like a lap:
         * take() hands the reader's count to the event it delivers. */
        evb_ring_reader_add_loss(rd, v->lost_bytes, v->lost_events);
        evb_ring_reader_moved(rd, sr->pos, sr->offset);
        if (evb_ring_reader_take(rd, v->f, v))
            return 0;
    }
}

/* The ring's next event of partition I, which carries the loss owed. */
static int owed_read(evb_consumer *c, uint32_t i, struct evb_frame_view *v)
{
    struct evb_consumer_disk *d = &c->disk[i];
    struct evb_ring_reader *rd = &c->rd[i];
    int rc = evb_ring_read(rd, v);
    if (rc == -ESTALE) {
        /* Lapped: the disk again, the loss going along. */
        rc = evb_consumer_disk_start(c, i, rd->pos, rd->offset, rd->learn);
        return rc ? rc : -ESTALE;
    }
    if (rc)
        return rc;
    /* The reader checked the event's offset: it expects the one after. */
    uint64_t off = rd->offset - 1;
    if (d->owed_from != EVB_SEG_NO_OFFSET && off > d->owed_from)
        d->owed_events += off - d->owed_from;
    v->lost_events += d->owed_events;
    v->lost_bytes += d->owed_bytes;
    d->owed_bytes = d->owed_events = 0;
    d->owed_from = EVB_SEG_NO_OFFSET;
    d->state = EVB_CDISK_RING;
    return 0;
}

int evb_consumer_disk_read(evb_consumer *c, uint32_t i, struct evb_frame_view *v)
{
    if (c->disk[i].state == EVB_CDISK_OWED)
        return owed_read(c, i, v);
    int rc = disk_read(c, i, v);
    if (rc != -EAGAIN)
        return rc;
    /* Caught up with flushed: the ring holds it (producers gate on
     * flushed); if it lapped us again meanwhile, back we come. */
    struct evb_seg_reader *sr = &c->disk[i].sr;
    if (c->disk[i].state == EVB_CDISK_READ)
        c->disk[i].state = EVB_CDISK_RING;
    /* Past offsets that went back on disk, the ring must not hand them
     * out either: it expects the floor, and fails at a lower offset. */
    int e = evb_ring_reader_resume(&c->rd[i], sr->pos, evb_seg_next_offset(sr), sr->learn);
    return e ? e : -ESTALE;
}

/* Whatever partition I owes goes to the ring reader, to be carried by the
 * next event wherever the reader goes now (a seek). */
static void owed_to_ring(evb_consumer *c, uint32_t i)
{
    struct evb_consumer_disk *d = &c->disk[i];
    if (d->state == EVB_CDISK_OWED)
        evb_ring_reader_add_loss(&c->rd[i], d->owed_bytes, d->owed_events);
    d->owed_bytes = d->owed_events = 0;
    d->owed_from = EVB_SEG_NO_OFFSET;
    d->state = EVB_CDISK_RING;
}

EVB_EXPORT int evb_consumer_skipped(evb_consumer *c, int32_t partition, uint64_t *events,
                                    uint64_t *bytes)
{
    EVB_NO_CANCEL;
    if (!c || !events || !bytes)
        return evb_err_set(-EINVAL, "evb_consumer_skipped: %s is NULL",
                           !c ? "consumer" : !events ? "events" : "bytes");
    uint64_t ev = 0, by = 0;
    bool any = false;
    for (uint32_t i = 0; i < c->n; i++) {
        if (partition >= 0 && c->part[i] != (uint32_t)partition)
            continue;
        any = true;
        struct evb_consumer_disk *d = c->disk ? &c->disk[i] : NULL;
        if (!d || d->state != EVB_CDISK_OWED)
            continue;
        /* At the tail, the tail's offset is the one after the damage. */
        uint64_t t, toff;
        evb_ring_load_tail(c->rd[i].r, &t, &toff);
        if (d->owed_from != EVB_SEG_NO_OFFSET && t == c->rd[i].pos) {
            if (toff > d->owed_from)
                d->owed_events += toff - d->owed_from;
            d->owed_from = EVB_SEG_NO_OFFSET;
        }
        ev += d->owed_events;
        by += d->owed_bytes;
        d->owed_events = d->owed_bytes = 0;
        /* A count the offsets do not tell yet stays owed to the next
         * event. */
        if (d->owed_from == EVB_SEG_NO_OFFSET)
            d->state = EVB_CDISK_RING;
    }
    *events = ev;
    *bytes = by;
    if (!any)
        return evb_err_set(-EINVAL, "topic %s (%u partitions): partition %d is not read by "
                           "this consumer", c->tm->name, c->tm->nparts, partition);
    return 0;
}

/* Move reader I to (POS, OFF); the first read finds out whether that is in
 * the ring or, for durable topics, on disk. */
static int seek_to(evb_consumer *c, uint32_t i, uint64_t pos, uint64_t off, bool learn)
{
    if (c->disk)
        owed_to_ring(c, i);
    return evb_ring_reader_seek(&c->rd[i], pos, off, learn);
}

int evb_consumer_seek_one(evb_consumer *c, uint32_t i, uint32_t whence, uint64_t value)
{
    EVB_NO_CANCEL;
    struct evb_ring_reader *rd = &c->rd[i];
    struct evb_ring *r = rd->r;
    bool strict = whence & EVB_SEEK_STRICT;
    whence &= ~EVB_SEEK_STRICT;
    uint64_t pos, off;
    char pdir[PATH_MAX + 16];
    if (c->disk) {
        evb_part_dir(c->tm, c->part[i], pdir, sizeof pdir);
        /* Every seek starts over in the ring; the first read finds out
         * whether the new place is on disk. */
        owed_to_ring(c, i);
    }
    switch (whence) {
    case EVB_START_LATEST:
        evb_ring_load_tail(r, &pos, &off);
        return seek_to(c, i, pos, off, false);
    case EVB_START_EARLIEST:
        if (c->disk) {
            /* G1: relaxed pair; it may straddle a retention pass, so the
             * offset is learnt from the frame (learn = true), and the
             * position only names a segment retention has not removed yet
             * or, if it has, the reader's -ENOENT path moves on. */
            pos = atomic_load_explicit(&r->hdr->log_start_pos, memory_order_relaxed);
            off = atomic_load_explicit(&r->hdr->log_start_offset, memory_order_relaxed);
            return seek_to(c, i, pos, off, true);
        }
        return evb_ring_reader_seek_oldest(rd);
    case EVB_START_COMMITTED:
        if (c->grp.f) {
            /* A group's cursor: one CAS per commit (group.c), never torn. */
            if (!evb_group_cursor(&c->grp, c->part[i], &pos, &off))
                return evb_consumer_seek_one(c, i, EVB_START_EARLIEST, 0);
            if (pos % EVB_FRAME_ALIGN)
                return evb_err_set(-EBADMSG, "group %s, partition %u: committed position "
                                   "%llu is not a frame boundary (damaged group file)",
                                   c->name, c->part[i], (unsigned long long)pos);
            /* The position is the commit; the offset is learnt from the
             * frame there, so an offset damaged in the file (any member
             * may write it) cannot fail the ring as corrupt. The committed
             * one only counts the events of a gap, should the commit have
             * been lapped or removed by retention meanwhile. */
            return seek_to(c, i, pos, off, true);
        }
        if (!c->cur.map)
            return evb_err_set(-EINVAL, "topic %s: only named consumers and groups have a "
                               "committed position", c->tm->name);
        if (!evb_cursor_file_load(&c->cur, c->part[i], &pos, &off))
            return evb_consumer_seek_one(c, i, EVB_START_EARLIEST, 0);
        /* Only a frame boundary was ever committed: anything else is a
         * damaged file, not a bad argument of the caller's. */
        if (pos % EVB_FRAME_ALIGN)
            return evb_err_set(-EBADMSG, "consumer %s, partition %u: committed position "
                               "%llu is not a frame boundary (damaged cursor file)",
                               c->name, c->part[i], (unsigned long long)pos);
        /* The pair is checked against the frame there: another offset
         * is damage (the tail went back and a claim reused the bytes),
         * not something to read past silently (-EBADMSG at the first
         * read, naming both). Only a commit torn by a crash (its seq
         * left odd; we own the file, K4, so nobody is mid-commit now)
         * leaves a good position with a stale offset: that one learns
         * the offset from the frame, as does a commit made before its
         * offset was known (EVB_FRAME_NO_OFFSET, consumer.c). Relaxed: our
         * own file. */
        if (off == EVB_FRAME_NO_OFFSET)
            return seek_to(c, i, pos, EVB_FRAME_NO_OFFSET, true);
        return seek_to(c, i, pos, off,
                       (atomic_load_explicit(&c->cur.map->e[c->part[i]].seq,
                                             memory_order_relaxed) & 1) != 0);
    case EVB_START_POSITION:
        /* The offset at VALUE is not known: a gap before it is counted in
         * bytes only, never as the events since offset 0. */
        return evb_ring_reader_seek_pos(rd, value, EVB_FRAME_NO_OFFSET);
    case EVB_START_OFFSET:
    case EVB_START_TIME:
        break;
    default:
        return evb_err_set(-EINVAL, "topic %s: seek whence %u is not a place to seek to",
                           c->tm->name, whence);
    }
    if (!c->disk) {
        if (whence == EVB_START_OFFSET) {
            /* Nothing committed at the oldest lap start yet: the reader
             * learns its offset there and reports any gap as lost. */
            if (strict && evb_ring_oldest(r, &pos, &off) == 0 && value < off)
                return evb_err_set(-ERANGE, "partition %u: offset %llu is older than %llu",
                                   c->part[i], (unsigned long long)value,
                                   (unsigned long long)off);
            return evb_ring_reader_seek_offset(rd, value);
        }
        int rc = evb_consumer_seek_one(c, i, EVB_START_EARLIEST, 0);
        evb_ring_reader_skip_before(rd, value);
        return rc;
    }
    /* Durable: the disk log below flushed, the ring from there. G1:
     * relaxed; the log start only bounds the seek, a stale one is caught
     * by the segment lookup (-ENOENT) below. */
    uint64_t start = atomic_load_explicit(&r->hdr->log_start_offset, memory_order_relaxed);
    if (whence == EVB_START_OFFSET && value < start) {
        if (strict)
            return evb_err_set(-ERANGE, "partition %u: offset %llu is older than the log "
                               "start %llu", c->part[i], (unsigned long long)value,
                               (unsigned long long)start);
        evb_ring_reader_add_loss(rd, 0, start - value);
        return evb_consumer_seek_one(c, i, EVB_START_EARLIEST, 0);
    }
    /* An offset at or past the tail's: every event there is now, damaged
     * or not, lies below it, so no damage the lookup skipped is this
     * reader's loss (the seek lands at the tail, read.c). T1 snapshot. */
    uint64_t tpos, toff;
    evb_ring_load_tail(r, &tpos, &toff);
    bool past_end = whence == EVB_START_OFFSET && value >= toff;
    /* F1: acquire; below flushed the segments hold every byte. */
    uint64_t flushed = atomic_load_explicit(&r->hdr->flushed, memory_order_acquire);
    struct evb_seg_skipped sk;
    int rc = evb_seg_find(pdir, &c->geom, whence == EVB_START_TIME, value, flushed,
                          (c->opts.flags & EVB_CONSUMER_SKIP_DAMAGE) != 0, &pos, &off, &sk);
    /* G1: relaxed, a hint like the start above: it only decides whether
     * a strict seek reports that the time may predate the log start. */
    if (rc == 0 && strict && whence == EVB_START_TIME && start > 0 &&
        pos == atomic_load_explicit(&r->hdr->log_start_pos, memory_order_relaxed))
        return evb_err_set(-ERANGE, "partition %u: time %llu may be older than the log "
                           "start (offset %llu)", c->part[i], (unsigned long long)value,
                           (unsigned long long)start);
    if (rc == 0) {
        if ((rc = seek_to(c, i, pos, off, false)))
            return rc;
        /* Landed past damage (EVB_CONSUMER_SKIP_DAMAGE): what it held is
         * lost like what a read walks over. By offset, the offsets from
         * the one asked; by time, every event the damage held, as any of
         * them may have been at or after VALUE. */
        uint64_t from = whence == EVB_START_OFFSET ? value : sk.from;
        if (sk.bytes || sk.from != EVB_SEG_NO_OFFSET)
            evb_ring_reader_add_loss(rd, sk.bytes,
                                     from != EVB_SEG_NO_OFFSET && off > from ? off - from : 0);
        return 0;
    }
    if (rc != -ENOENT)
        return rc;
    /* Not on disk: in the ring. By offset the ring scan finds it. By time,
     * start at the ring's oldest frame, not at flushed: when the log is
     * empty or lost segments, events below flushed that match are still
     * in the ring, and when the log is whole, every event below flushed
     * is older than VALUE, so the skip passes them all the same. */
    if (whence == EVB_START_OFFSET)
        rc = evb_ring_reader_seek_offset(rd, value);
    else if ((rc = evb_ring_reader_seek_oldest(rd)) == 0)
        evb_ring_reader_skip_before(rd, value);
    /* The log ends in damage the lookup skipped, from flushed - sk.bytes
     * to flushed: lost unless the ring still holds it from where the
     * reader starts. */
    uint64_t dstart = flushed - sk.bytes;
    if (rc || past_end || (!sk.bytes && sk.from == EVB_SEG_NO_OFFSET) || rd->pos <= dstart)
        return rc;
    /* Owed like damage a read ends on. The ring counts the events an
     * offset seek lost itself (from the offset asked); by time, the count
     * is the offsets' from where the damage began. */
    struct evb_consumer_disk *d = &c->disk[i];
    d->owed_bytes = (rd->pos < flushed ? rd->pos : flushed) - dstart;
    d->owed_from = whence == EVB_START_OFFSET ? EVB_SEG_NO_OFFSET : sk.from;
    d->state = EVB_CDISK_OWED;
    return 0;
}
