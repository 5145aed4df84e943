/*
 * test_seg_recover.c - evb_seg_recover (recover.c): where a clean, torn or
 * oddly cut log ends, and that what follows the end is counted and zeroed.
 * Damage below the end (kept, never cut) is test_seg_damage.c's.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "seg_helpers.h"
#include "t_helpers.h"

TestSuite(seg_recover, .init = setup, .fini = teardown, .timeout = 60);

Test(seg_recover, clean_log_ends_where_written)
{
    build(2 * SEG + SEG / 2);
    write_segments(5);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, lg.pos);
    cr_expect_eq(rec.end_offset, lg.offset);
    cr_expect_eq(rec.start_pos, 0);
    cr_expect_eq(rec.start_offset, 0);
    cr_expect_eq(rec.dropped_bytes, 0);
    cr_expect_eq(rec.segments, 3);
}

Test(seg_recover, empty_directory_is_all_zero)
{
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos + rec.end_offset + rec.start_pos + rec.start_offset +
                 rec.dropped_bytes + rec.segments, 0);
}

Test(seg_recover, garbage_after_the_end_is_counted_and_zeroed)
{
    build(2 * SEG + SEG / 2);
    write_segments(5);
    uint8_t junk[3000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)next_rand();
    junk[sizeof junk - 1] |= 1;
    patch_seg(lg.pos, junk, sizeof junk);
    /* A mark (behind, as marks may be) bounds the cut: a torn tail. */
    cr_assert_eq(evb_seg_mark_durable(dir, 0, 0, 0644), 0);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, lg.pos);
    cr_expect_eq(rec.end_offset, lg.offset);
    cr_expect_eq(rec.dropped_bytes, sizeof junk);
    uint8_t seg[SEG];
    read_seg(2 * SEG, seg);
    cr_expect_eq(memcmp(seg, lg.buf + 2 * SEG, SEG), 0, "bytes not zeroed on disk");
    rec = recover_ok();
    cr_expect_eq(rec.end_pos, lg.pos);
    cr_expect_eq(rec.dropped_bytes, 0);
}

Test(seg_recover, torn_last_frame_moves_the_end_back)
{
    build(2 * SEG + SEG / 2);
    write_segments(3);
    const struct rec *r = &lg.fr[lg.nfr - 1];
    while (!r->data)
        r--;
    uint8_t junk[40];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)next_rand();
    patch_seg(r->pos + 16, junk, sizeof junk);
    cr_assert_eq(evb_seg_mark_durable(dir, 0, 0, 0644), 0);
    uint8_t seg[SEG];
    read_seg(2 * SEG, seg);
    uint64_t want = tail_bytes(seg, r->pos - 2 * SEG);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, r->pos);
    cr_expect_eq(rec.end_offset, r->offset);
    cr_expect_eq(rec.dropped_bytes, want);
    read_seg(2 * SEG, seg);
    cr_expect_eq(tail_bytes(seg, r->pos - 2 * SEG), 0);
    struct evb_idx *x;
    cr_assert_eq(evb_idx_load(dir, 2 * SEG, &x), 0);
    cr_expect_gt(x->n, 0);
    for (size_t i = 0; i < x->n; i++)
        cr_expect_lt(x->e[i].pos, rec.end_pos, "index entry past the end survived");
    free(x);
}

Test(seg_recover, empty_newest_segment_takes_the_previous_end)
{
    build(2 * SEG - CAP / 2);
    while (lg.pos < 2 * SEG)
        pad_end();
    write_segments(0);
    int fd = evb_seg_create(dir, 2 * SEG, SEG, true, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, 2 * SEG);
    cr_expect_eq(rec.end_offset, lg.offset);
    cr_expect_eq(rec.segments, 3);
    cr_expect_eq(rec.dropped_bytes, 0);
}

/* A well-formed first frame whose offset jumps: damage, kept, and the
 * offsets go on past the largest one on disk, so none is handed out twice
 * (it was cut before, and its offsets reused). */
Test(seg_recover, newest_segment_whose_offset_jumps_is_kept)
{
    build(2 * SEG + SEG / 2);
    write_segments(0);
    struct evb_frame *f = frame_at(2 * SEG);
    f->offset = lg.offset + 1000;
    f->crc32c = evb_frame_crc(f, f->len);
    patch_seg(2 * SEG, f, EVB_FRAME_HDR);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, lg.pos);
    cr_expect_eq(rec.end_offset, lg.offset + 1001);
    cr_expect_eq(rec.dropped_bytes, 0);
    cr_expect_eq(rec.segments, 3);
    cr_expect_eq(rec.damaged, 1);
    cr_expect_eq(rec.damaged_pos, 2 * SEG + evb_align_frame(f->len));
}

Test(seg_recover, newest_segment_after_a_torn_one_is_removed)
{
    build(2 * SEG - CAP / 2);
    while (lg.pos < 2 * SEG)
        pad_end();
    write_segments(6);
    /* The next segment got junk, and the previous one lost its last data
     * frame: writes reached the disk out of order before a crash. */
    uint8_t junk[SEG];
    memset(junk, 0, sizeof junk);
    for (size_t i = 0; i < 5000; i++)
        junk[i] = (uint8_t)(next_rand() | 1);
    write_raw(2 * SEG, junk);
    size_t i = lg.nfr - 1;
    while (!lg.fr[i].data)
        i--;
    const struct rec *r = &lg.fr[i];
    /* Everything after its stamp (the pads after it too) never arrived. */
    static uint8_t zero[SEG];
    patch_seg(r->pos + 8, zero, 2 * SEG - (r->pos + 8));
    uint8_t seg[SEG];
    read_seg(SEG, seg);
    uint64_t want = tail_bytes(seg, r->pos - SEG) + 5000;
    cr_assert_eq(evb_seg_mark_durable(dir, 0, 0, 0644), 0);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, r->pos);
    cr_expect_eq(rec.end_offset, r->offset);
    cr_expect_eq(rec.segments, 2);
    cr_expect_eq(rec.dropped_bytes, want);
    cr_expect(!exists(2 * SEG, "log"));
    cr_expect(exists(SEG, "idx"));
}

/* The same torn last frame without a mark: the cut may have taken back
 * synced events, so every offset it could have held is skipped, by pads
 * written at the old end (at most one offset per EVB_FRAME_HDR bytes up to
 * the end of the newest segment file). A strict reader crosses them and
 * ends at the offset recovery hands out next; a second recovery finds
 * the same end and cuts nothing. */
static void torn_without_mark(bool remove_newest)
{
    build(2 * SEG + SEG / 2);
    write_segments(3);
    const struct rec *r = &lg.fr[lg.nfr - 1];
    while (!r->data)
        r--;
    uint8_t junk[40];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(next_rand() | 1);
    patch_seg(r->pos + 16, junk, sizeof junk);
    uint64_t top = 3 * SEG;
    if (remove_newest) {
        /* A segment after the end holding no valid frame: removed, yet it
         * was evidence of how far the log could have reached. */
        uint8_t more[SEG];
        memset(more, 0, sizeof more);
        memset(more + 100, 0x5a, 300);
        write_raw(3 * SEG, more);
        top = 4 * SEG;
    }
    struct evb_seg_recovery rec = recover_ok();
    uint64_t skip = (top - r->pos + EVB_FRAME_HDR - 1) / EVB_FRAME_HDR;
    cr_expect_eq(rec.mark, EVB_SEG_MARK_MISSING);
    cr_expect_gt(rec.cut_bytes, 0);
    cr_expect_eq(rec.cut_pos, r->pos);
    cr_expect_eq(rec.skipped_offsets, skip);
    cr_expect_eq(rec.end_offset, r->offset + skip);
    /* The pads: the first from the cut (off the line: these frames are of
     * the older, word-aligned layout) to the first line a header fits
     * before, then a line each, so new frames start on a line again. */
    uint64_t pads = (skip + UINT16_MAX - 1) / UINT16_MAX;
    cr_expect_eq(rec.end_pos, evb_align_line(r->pos + EVB_FRAME_HDR) + EVB_FRAME_LINE * (pads - 1));
    cr_expect_eq(rec.end_pos % EVB_FRAME_LINE, 0);
    cr_expect_eq(rec.segments, 3);
    cr_expect(!exists(3 * SEG, "log"));
    size_t n;
    struct evb_seg_reader sr;
    cr_expect_eq(read_all(0, rec.end_pos, &n, &sr), -EAGAIN, "%s", evb_last_error());
    cr_expect_eq(n, events_below(r->pos));
    cr_expect_eq(sr.offset, rec.end_offset);
    evb_seg_reader_close(&sr);
    struct evb_seg_recovery again = recover_ok();
    cr_expect_eq(again.end_pos, rec.end_pos);
    cr_expect_eq(again.end_offset, rec.end_offset);
    cr_expect_eq(again.dropped_bytes, 0);
    cr_expect_eq(again.skipped_offsets, 0);
}

Test(seg_recover, torn_last_frame_without_a_mark_skips_offsets) { torn_without_mark(false); }
Test(seg_recover, removed_segment_without_a_mark_counts_in_the_skip) { torn_without_mark(true); }

/* A read error is no "no valid frame": recovery that could not read a
 * segment says so and cuts nothing (it took the unread position for the
 * log's end and zeroed every valid frame after it); once reads work, it
 * finds the whole log. */
Test(seg_recover, a_read_error_cuts_nothing)
{
    build(SEG - 4096);
    write_segments(8);
    uint8_t *before = malloc(SEG), *after = malloc(SEG);
    cr_assert(before && after);
    read_seg(0, before);
    t_pread_failed = 0;
    t_pread_fail_at = (long long)lg.fr[lg.nfr / 2].pos;
    struct evb_seg_recovery rec;
    int rc = evb_seg_recover(dir, &geom, 0, &rec);
    t_pread_fail_at = -1;
    cr_assert_gt(t_pread_failed, 0);
    cr_expect_eq(rc, -EIO, "recovery returned %d (%s)", rc, rc ? evb_last_error() : "");
    read_seg(0, after);
    cr_expect_eq(memcmp(before, after, SEG), 0, "recovery changed the segment");
    rec = recover_ok();
    cr_expect_eq(rec.end_pos, lg.pos);
    cr_expect_eq(rec.end_offset, lg.offset);
    cr_expect_eq(rec.dropped_bytes, 0);
    free(before);
    free(after);
}

/* A damage record of version 3 (80 bytes, no reset words) is still read,
 * with no resets; a note over it adds this rebuild's resets, and the next
 * adds up. */
Test(seg_recover, a_version_3_damage_record_is_read_and_resets_add_up)
{
    uint8_t v3[80] = {0};
    uint64_t w[8] = {0x31304745444d4256ull, (uint64_t)3 << 32 | 80, 2, 100, 64, 0, 0, 0};
    memcpy(v3, w, 64); /* ranges 2, bytes 100, first_pos 64, mark OK, no cut */
    uint64_t skipped = 0;
    memcpy(v3 + 64, &skipped, 8);
    uint32_t crc = evb_crc32c(0, v3, 72);
    memcpy(v3 + 72, &crc, 4);
    char path[256];
    snprintf(path, sizeof path, "%s/damage.found", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(v3, 1, sizeof v3, f), sizeof v3);
    fclose(f);
    struct evb_seg_damage d;
    cr_assert_eq(evb_seg_damage_read(dir, &d), 0, "%s", evb_last_error());
    cr_expect_eq(d.ranges, 2);
    cr_expect_eq(d.bytes, 100);
    cr_expect_eq(d.first_pos, 64);
    cr_expect_eq(d.reset_commits, 0);
    struct evb_seg_recovery r = {.damaged = 2, .damaged_bytes = 100, .damaged_pos = 64,
                                 .reset_commits = 3, .reset_left = 1};
    evb_seg_damage_note(dir, &r, 0644);
    evb_seg_damage_note(dir, &r, 0644);
    cr_assert_eq(evb_seg_damage_read(dir, &d), 0, "%s", evb_last_error());
    cr_expect_eq(d.ranges, 2);
    cr_expect_eq(d.reset_commits, 6);
    cr_expect_eq(d.reset_left, 2);
    /* Resets alone keep the record: nothing else was found. */
    r = (struct evb_seg_recovery){.damaged_pos = UINT64_MAX};
    evb_seg_damage_note(dir, &r, 0644);
    cr_assert_eq(evb_seg_damage_read(dir, &d), 0, "%s", evb_last_error());
    cr_expect_eq(d.ranges, 0);
    cr_expect_eq(d.reset_commits, 6);
}
