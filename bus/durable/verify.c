/*
 * verify.c - damage reports of a partition's log: the record the last
 * recovery leaves (damage.found, mark_format.h) and a read-only walk of
 * every segment over a range of positions, with each segment's index
 * checked against its frames (`evbus info --verify`). What
 * counts as damage, and what recovery does with it, is recover.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "err.h"
#include "mark_format.h"
#include "safe_open.h"
#include "seg_internal.h"

static int damage_path(char *out, size_t cap, const char *dir)
{
    int n = snprintf(out, cap, "%s/%s", dir, EVB_DAMAGE_NAME);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

void evb_seg_damage_note(const char *dir, const struct evb_seg_recovery *r, uint32_t mode)
{
    char path[PATH_MAX];
    if (damage_path(path, sizeof path, dir))
        return;
    struct evb_damage_rec d = {.magic = EVB_DAMAGE_MAGIC, .format = EVB_DAMAGE_FORMAT_WORD,
                               .ranges = r->damaged, .bytes = r->damaged_bytes,
                               .first_pos = r->damaged_pos, .mark = r->mark,
                               .cut_bytes = r->cut_bytes, .cut_pos = r->cut_pos,
                               .skipped = r->skipped_offsets,
                               .reset = r->reset_commits, .reset_left = r->reset_left};
    /* A bad mark, an unbounded cut and the offsets skipped after it are
     * found once (the mark is written again soon after, the pads are the
     * log's): an earlier report of them stays. Commits set back add up
     * over rebuilds, each rebuild passing only its own. */
    struct evb_seg_damage old;
    bool had = evb_seg_damage_read(dir, &old) == 0;
    if (d.mark == EVB_SEG_MARK_OK && !d.cut_bytes && had) {
        d.mark = old.mark;
        d.cut_bytes = old.cut_bytes;
        d.cut_pos = old.cut_pos;
        d.skipped = old.skipped_offsets;
    }
    if (had) {
        d.reset += old.reset_commits;
        d.reset_left += old.reset_left;
    }
    if (!d.ranges && d.mark == EVB_SEG_MARK_OK && !d.cut_bytes && !d.reset && !d.reset_left) {
        (void)unlink(path);
        return;
    }
    d.crc = evb_crc32c(0, &d, offsetof(struct evb_damage_rec, crc));
    int fd = evb_open_file(AT_FDCWD, path, O_WRONLY | O_CREAT, mode, EVB_FILE_REG);
    if (fd < 0)
        return; /* a report: the damage itself stays on disk to be found again */
    (void)fchmod(fd, mode); /* the topic's mode, not narrowed by the umask */
    (void)evb_seg_write_at(fd, &d, sizeof d, 0);
    close(fd);
}

void evb_seg_damage_mark(const char *dir, uint32_t state, uint32_t mode)
{
    struct evb_seg_damage old;
    if (evb_seg_damage_read(dir, &old))
        old = (struct evb_seg_damage){.first_pos = UINT64_MAX};
    /* As a recovery that found the mark in STATE and kept the rest. No
     * rebuild ran, so there is no log end to name: unless an earlier one
     * recorded its own, the position is none (UINT64_MAX), not 0. */
    bool found = old.mark != EVB_SEG_MARK_OK || old.cut_bytes;
    struct evb_seg_recovery r = {.damaged = (uint32_t)old.ranges, .damaged_bytes = old.bytes,
                                 .damaged_pos = old.first_pos, .mark = state,
                                 .cut_bytes = old.cut_bytes,
                                 .cut_pos = found ? old.cut_pos : UINT64_MAX,
                                 .skipped_offsets = old.skipped_offsets};
    evb_seg_damage_note(dir, &r, mode);
}

int evb_seg_damage_read(const char *dir, struct evb_seg_damage *out)
{
    char path[PATH_MAX];
    struct evb_damage_rec d;
    *out = (struct evb_seg_damage){.first_pos = UINT64_MAX};
    int rc = damage_path(path, sizeof path, dir);
    if (rc)
        return rc;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return evb_open_fail(fd, path);
    /* Version 3's 80 bytes first, then this version's rest. */
    memset(&d, 0, sizeof d);
    rc = evb_seg_read_at(fd, &d, EVB_DAMAGE_V3_BYTES, 0);
    bool v3 = !rc && d.format == EVB_DAMAGE_V3_FORMAT_WORD;
    if (v3) {
        /* Its crc and zero words sit where this version's reset is. */
        uint32_t w[2];
        memcpy(w, (const char *)&d + EVB_DAMAGE_V3_CRC_AT, sizeof w);
        d.reset = 0;
        d.crc = w[0];
        d.zero = w[1];
    } else if (!rc) {
        rc = evb_seg_read_at(fd, (char *)&d + EVB_DAMAGE_V3_BYTES,
                             sizeof d - EVB_DAMAGE_V3_BYTES, EVB_DAMAGE_V3_BYTES);
    }
    close(fd);
    size_t crc_at = v3 ? EVB_DAMAGE_V3_CRC_AT : offsetof(struct evb_damage_rec, crc);
    if (rc || d.magic != EVB_DAMAGE_MAGIC ||
        (!v3 && d.format != EVB_DAMAGE_FORMAT_WORD) || d.zero || d.pad ||
        d.mark > EVB_SEG_MARK_NOT_FILE || d.crc != evb_crc32c(0, &d, crc_at))
        return evb_err_set(-EBADMSG, "%s: not a damage report", path);
    out->ranges = d.ranges;
    out->bytes = d.bytes;
    out->first_pos = d.first_pos;
    out->mark = d.mark;
    out->cut_bytes = d.cut_bytes;
    out->skipped_offsets = d.skipped;
    out->cut_pos = d.cut_pos;
    out->reset_commits = d.reset;
    out->reset_left = d.reset_left;
    return 0;
}

/*
 * Whether the index of the segment S holds agrees with its frames below
 * END: the header's base offset is the first frame's, and each entry names
 * a frame boundary, that frame's offset and the largest timestamp before
 * it in the segment, as the flusher wrote them (flush_segment.c). Only
 * what the walk reaches is checked: entries past damage in the segment or
 * at or past END (a flusher may be appending) are left alone. No index is
 * fine (seeks walk); one that does not load is bad.
 */
static bool idx_agrees(const char *dir, const struct evb_seg_geom *g, struct evb_seg *s,
                       uint64_t end)
{
    struct evb_idx *x;
    int rc = evb_idx_load(dir, s->base, &x);
    if (rc)
        return rc == -ENOENT;
    struct evb_seg_walk w = {.pos = s->base, .learn = true};
    uint64_t stop = s->base + s->bytes < end ? s->base + s->bytes : end, max_ts = 0;
    size_t j = 0;
    bool ok = true;
    while (ok && w.pos < stop) {
        /* An entry the walk passed without meeting it: not a boundary,
         * or out of order. */
        if (j < x->stored && x->e[j].pos < w.pos) {
            ok = false;
            break;
        }
        bool here = j < x->stored && x->e[j].pos == w.pos;
        uint64_t at = w.pos;
        struct evb_seg_frame fr;
        int kind = evb_seg_step(s, g, &w, &fr);
        if (kind <= 0)
            break; /* damage: the reader's walk counts it */
        if (at == s->base && fr.f && fr.offset != x->base_offset)
            ok = false;
        if (here) {
            /* The frame's offset (a stamp-only pad's: the one expected
             * there; the flusher puts none on it, a hint there is true). */
            ok = ok && x->e[j].offset == fr.offset && x->e[j].max_ts == max_ts;
            j++;
        }
        if (kind == 1 && fr.f->timestamp_ns > max_ts)
            max_ts = fr.f->timestamp_ns;
    }
    /* Walked to the segment's end: an entry beyond it is no boundary. */
    if (ok && w.pos >= s->base + g->segment_bytes && j < x->stored)
        ok = false;
    free(x);
    return ok;
}

/* Check the index of every segment holding positions [START, END) (OUT
 * counts the bad ones). */
static void verify_indexes(const char *dir, const struct evb_seg_geom *g, uint64_t start,
                           uint64_t end, struct evb_seg_damage *out)
{
    uint64_t *bases;
    size_t n;
    if (evb_seg_list_checked(dir, g, &bases, &n))
        return; /* the reader's walk says what is wrong with the listing */
    struct evb_seg s = {.fd = -1};
    for (size_t i = 0; i < n; i++) {
        if (bases[i] + g->segment_bytes <= start || bases[i] >= end ||
            evb_seg_hold(&s, dir, g, bases[i]))
            continue;
        if (!idx_agrees(dir, g, &s, end) && !out->bad_indexes++)
            out->bad_index_base = bases[i];
    }
    evb_seg_unmap(&s);
    free(bases);
    evb_err_clear(); /* what did not load was counted */
}

int evb_seg_verify(const char *dir, const struct evb_seg_geom *g, uint64_t start, uint64_t end,
                   struct evb_seg_damage *out)
{
    *out = (struct evb_seg_damage){.first_pos = UINT64_MAX};
    struct evb_seg_reader sr;
    int rc = evb_seg_reader_open(&sr, dir, g);
    if (rc)
        return rc;
    /* The reader's skip mode is the walk: every frame checked as a reader
     * checks it, each run of skipped bytes one damaged range. */
    sr.skip_damage = true;
    start -= start % EVB_FRAME_ALIGN;
    evb_seg_reader_seek(&sr, start, 0, true);
    struct evb_frame_view v;
    for (;;) {
        uint64_t from = sr.pos, breaks = sr.offset_breaks;
        sr.break_pos = EVB_SEG_NO_OFFSET;
        rc = evb_seg_read(&sr, end, &v);
        uint64_t lost = rc == 0 ? v.lost_bytes : rc == -EAGAIN ? sr.lost_bytes : 0;
        /* Bytes with no valid frame are one range, from where this read
         * began (the frame before was whole); an intact frame with an
         * offset other than the one expected is another, of no bytes, at
         * that frame: recover.c counts it so, and a reader that does not
         * skip stops there. */
        uint64_t at = lost ? from : sr.break_pos;
        uint64_t found = (lost ? 1 : 0) + (sr.offset_breaks - breaks);
        if (found) {
            out->ranges += found;
            out->bytes += lost;
            if (at < out->first_pos)
                out->first_pos = at;
        }
        if (rc)
            break;
    }
    out->checked_bytes = sr.pos > start ? sr.pos - start : 0;
    evb_seg_reader_close(&sr);
    if (rc != -EAGAIN)
        return rc;
    verify_indexes(dir, g, start, end, out);
    return 0;
}
