/*
 * test_seg_fuzz.c - random damage to segment and index files: reading,
 * lookups and recovery give errors or valid frames, never a crash (the
 * ASan build runs this too), and recovery is idempotent.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "seg_helpers.h"
#include "t_helpers.h"

TestSuite(seg_fuzz, .init = setup, .fini = teardown, .timeout = 60);

/* Damage the image of segment BASE. Modes: 0 a random range, 1 all of it,
 * 2 sparse bit flips, 3 plausible stamps over random (sometimes
 * checksummed) headers. */
static void damage(uint8_t *seg, uint64_t base, int mode)
{
    if (mode == 0 || mode == 1) {
        uint64_t from = mode ? 0 : next_rand() % SEG;
        uint64_t n = mode ? SEG : next_rand() % (SEG - from);
        for (uint64_t i = from; i < from + n; i++)
            seg[i] = (uint8_t)next_rand();
    } else if (mode == 2) {
        for (int i = 0; i < 40; i++)
            seg[next_rand() % SEG] ^= (uint8_t)(1u << (next_rand() % 8));
    } else {
        for (uint64_t at = next_rand() % 4096 * 8; at + 64 <= SEG;
             at += 8 * (1 + next_rand() % 300)) {
            uint64_t w[7];
            for (int k = 0; k < 7; k++)
                w[k] = next_rand() % 3 ? next_rand() : next_rand() % 2048;
            memcpy(seg + at + 8, w, sizeof w);
            struct evb_frame *f = (struct evb_frame *)(void *)(seg + at);
            uint64_t r = SEG - at;
            if (next_rand() % 2) {
                f->len = (uint32_t)(EVB_FRAME_HDR + next_rand() % 700);
                if (f->len > r)
                    f->len = (uint32_t)r;
                f->crc32c = evb_frame_crc(f, f->len);
            }
            uint64_t stamp = (base + at) | (next_rand() % 2 ? EVB_STAMP_DATA : EVB_STAMP_PAD);
            memcpy(seg + at, &stamp, sizeof stamp);
        }
    }
}

Test(seg_fuzz, random_damage_gives_errors_or_valid_frames)
{
    uint64_t seeds = t_env_u64("EVB_TEST_FUZZ_SEEDS", 300);
    uint8_t *seg = malloc(SEG);
    cr_assert_not_null(seg);
    uint64_t sum = 0, recovered_to_end = 0;
    for (uint64_t seed = t_env_u64("EVB_TEST_FUZZ_FROM", 1); seed <= seeds; seed++) {
        rng = seed * 0x9e3779b97f4a7c15ull;
        teardown();
        setup();
        rng = seed * 0x9e3779b97f4a7c15ull;
        build(SEG + SEG / 2);
        for (uint64_t b = 0; b < lg.pos; b += SEG)
            write_raw(b, lg.buf + b);
        write_indexes(4, next_rand() % 4 ? 0 : 3);
        /* Damage the newest segment, sometimes the oldest too, sometimes
         * the newest index. */
        bool old_too = seed % 5 == 0;
        memcpy(seg, lg.buf + SEG, SEG);
        damage(seg, SEG, (int)(seed % 4));
        write_raw(SEG, seg);
        if (old_too) {
            memcpy(seg, lg.buf, SEG);
            damage(seg, 0, (int)(next_rand() % 4));
            write_raw(0, seg);
        }
        if (seed % 3 == 0) {
            char path[256];
            evb_seg_path(path, sizeof path, dir, SEG, "idx");
            int fd = open(path, O_WRONLY);
            uint8_t junk[200];
            for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (uint8_t)next_rand();
            cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)(next_rand() % 100)),
                         (ssize_t)sizeof junk);
            close(fd);
        }

        /* Reading: touch every delivered byte so ASan sees bad pointers. */
        struct evb_seg_reader sr;
        cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
        struct evb_frame_view v;
        int rc;
        while ((rc = evb_seg_read(&sr, 2 * SEG, &v)) == 0) {
            uint32_t len = v.f->len;
            cr_assert(len >= EVB_FRAME_HDR && len <= MAX_FRAME);
            cr_assert_eq(v.f->crc32c, evb_frame_crc(v.f, len));
            for (const uint8_t *p = v.key; p < (const uint8_t *)v.f + len; p++)
                sum += *p;
        }
        cr_assert(rc == -EBADMSG || rc == -EAGAIN, "read: %d", rc);
        evb_seg_reader_close(&sr);
        for (int k = 0; k < 10; k++) {
            uint64_t pos, off, t = next_rand() % (lg.offset + 2);
            rc = k % 2 ? evb_seg_find_time(dir, &geom, 1000000 + t * 10, 2 * SEG, &pos, &off)
                       : evb_seg_find_offset(dir, &geom, t, 2 * SEG, &pos, &off);
            cr_assert(rc == 0 || rc == -ENOENT || rc == -EBADMSG, "find: %d", rc);
            if (rc == 0)
                cr_assert_lt(pos, 2 * SEG);
        }

        /* Recovery leaves a log that reads to its end (skipping what it
         * reported damaged; when the damage was in the newest segment
         * only), and is idempotent. */
        struct evb_seg_recovery rec = recover_ok();
        cr_assert_leq(rec.end_pos, 2 * SEG);
        struct evb_seg_recovery again = recover_ok();
        cr_assert_eq(again.end_pos, rec.end_pos);
        cr_assert_eq(again.end_offset, rec.end_offset);
        cr_assert_eq(again.dropped_bytes, 0);
        if (old_too)
            continue;
        cr_assert_geq(rec.end_pos, SEG);
        /* Damage below the end is kept: a skipping reader passes it, and
         * the offsets it reaches are never past what recovery hands out. */
        cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
        sr.skip_damage = rec.damaged > 0;
        evb_seg_reader_seek(&sr, rec.start_pos, rec.start_offset, false);
        while ((rc = evb_seg_read(&sr, rec.end_pos, &v)) == 0)
            ;
        cr_assert_eq(rc, -EAGAIN, "seed %llu: recovered log reads %d at %llu (%s)",
                     (unsigned long long)seed, rc, (unsigned long long)sr.pos,
                     evb_last_error());
        cr_assert(rec.damaged ? sr.offset <= rec.end_offset : sr.offset == rec.end_offset,
                  "seed %llu: offset %llu at the end, "
                     "recovery said %llu (end %llu)", (unsigned long long)seed,
                     (unsigned long long)sr.offset, (unsigned long long)rec.end_offset,
                     (unsigned long long)rec.end_pos);
        evb_seg_reader_close(&sr);
        recovered_to_end += rec.end_pos == lg.pos;
    }
    cr_log_info("checksum %llu, %llu seeds kept the whole log", (unsigned long long)sum,
                (unsigned long long)recovered_to_end);
    free(seg);
}
