/*
 * test_seg_recover.c - evb_seg_recover (bus/segment.c): where a clean,
 * torn, flipped or oddly cut log ends, and that what follows the end is
 * counted and zeroed.
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

Test(seg_recover, flipped_bit_in_a_middle_frame_ends_the_log_there)
{
    build(2 * SEG + SEG / 2);
    write_segments(4);
    size_t i = lg.nfr - 1;
    while (lg.fr[i].pos > 2 * SEG + SEG / 4 || !lg.fr[i].data)
        i--;
    const struct rec *r = &lg.fr[i];
    uint32_t len = frame_at(r->pos)->len;
    uint8_t b = lg.buf[r->pos + len - 1] ^ 0x04;
    patch_seg(r->pos + len - 1, &b, 1);
    uint8_t seg[SEG];
    read_seg(2 * SEG, seg);
    uint64_t want = tail_bytes(seg, r->pos - 2 * SEG);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, r->pos);
    cr_expect_eq(rec.end_offset, r->offset);
    cr_expect_eq(rec.dropped_bytes, want);
    size_t seen;
    cr_expect_eq(read_all(rec.start_pos, rec.end_pos, &seen, NULL), -EAGAIN);
    cr_expect_eq(seen, events_below(r->pos));
    /* The index keeps exactly its entries below the end. */
    struct evb_idx *x;
    cr_assert_eq(evb_idx_load(dir, 2 * SEG, &x), 0);
    size_t kept = x->n;
    cr_expect_gt(kept, 0);
    for (size_t k = 0; k < kept; k++)
        cr_expect_lt(x->e[k].pos, rec.end_pos, "index entry past the end survived");
    free(x);
    char path[256];
    evb_seg_path(path, sizeof path, dir, 2 * SEG, "idx");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq((size_t)st.st_size, sizeof(struct evb_idx_hdr) + kept * 24);
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

Test(seg_recover, newest_segment_that_does_not_continue_the_log_is_cut)
{
    build(2 * SEG + SEG / 2);
    write_segments(0);
    /* A well-formed first frame whose offset jumps: not this log's. */
    struct evb_frame *f = frame_at(2 * SEG);
    f->offset += 1000;
    f->crc32c = evb_frame_crc(f, f->len);
    patch_seg(2 * SEG, f, EVB_FRAME_HDR);
    uint8_t seg[SEG];
    read_seg(2 * SEG, seg);
    uint64_t want = tail_bytes(seg, 0);
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, 2 * SEG);
    cr_expect_eq(rec.end_offset, offset_at(2 * SEG));
    cr_expect_eq(rec.dropped_bytes, want);
    cr_expect_eq(rec.segments, 3);
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
    uint8_t zero[EVB_FRAME_HDR] = {0};
    patch_seg(r->pos + 8, zero, sizeof zero);
    uint8_t seg[SEG];
    read_seg(SEG, seg);
    uint64_t want = tail_bytes(seg, r->pos - SEG) + 5000;
    struct evb_seg_recovery rec = recover_ok();
    cr_expect_eq(rec.end_pos, r->pos);
    cr_expect_eq(rec.end_offset, r->offset);
    cr_expect_eq(rec.segments, 2);
    cr_expect_eq(rec.dropped_bytes, want);
    cr_expect(!exists(2 * SEG, "log"));
    cr_expect(exists(SEG, "idx"));
}
