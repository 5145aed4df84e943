/*
 * fuzz_segment.c - libFuzzer target: a durable partition's directory of
 * hostile segment and index files, and hostile segment file names, through
 * everything that reads them (bus/durable/): the listing, the segment
 * reader, seeks by offset and time (lookup.c, with the index), dump's walk
 * and path parser, and recovery (recover.c), twice.
 *
 * Input: 12 control bytes, then records, each
 *   u8 kind, u8 sel, u16 len, len bytes
 * kind % 6: 0 segment <sel % 4> (64 KiB, the bytes at its start, zeros
 * after), 1 the same cut short at len bytes, 2 index of segment <sel % 4>
 * (the bytes as the file), 3 a file named by the bytes ('/' and NUL
 * replaced), 4 a directory named like segment <sel % 4>, 5 the bytes as a
 * path for evb_dump_parse_path. Geometry: 64 KiB rings and segments,
 * frames up to 4 KiB.
 *
 * What must hold: every call returns 0 or a documented error, delivered
 * frames lie inside their segment with a valid checksum, and recovery is
 * idempotent: a second run finds the same end and cuts nothing more.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "durable.h"
#include "evbus.h"
#include "seg_internal.h"
#include "segment.h"

#define SEG (64u << 10)

static const struct evb_seg_geom geom = {SEG, SEG, 4096, 4096 - EVB_FRAME_HDR};
static uint8_t image[SEG];
static uint64_t sum;

static void put_file(const char *dir, uint8_t kind, uint8_t sel, const uint8_t *p, size_t n)
{
    char path[PATH_MAX];
    uint64_t base = (uint64_t)(sel % 4) * SEG;
    switch (kind % 6) {
    case 0:
    case 1:
        evb_seg_path(path, sizeof path, dir, base, "log");
        memset(image, 0, sizeof image);
        memcpy(image, p, n);
        fuzz_write(path, image, kind % 6 == 0 ? SEG : n);
        break;
    case 2:
        evb_seg_path(path, sizeof path, dir, base, "idx");
        fuzz_write(path, p, n);
        break;
    case 3: {
        char name[64];
        size_t k = n < sizeof name - 1 ? n : sizeof name - 1;
        for (size_t i = 0; i < k; i++)
            name[i] = p[i] == '/' || p[i] == 0 ? '_' : (char)p[i];
        name[k] = '\0';
        if (!k || !strcmp(name, ".") || !strcmp(name, ".."))
            return;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        fuzz_write(path, p, n);
        break;
    }
    case 4:
        evb_seg_path(path, sizeof path, dir, base, "log");
        mkdir(path, 0700);
        break;
    default: {
        char text[300], d[PATH_MAX];
        size_t k = n < sizeof text - 1 ? n : sizeof text - 1;
        memcpy(text, p, k);
        text[k] = '\0';
        uint64_t b;
        int rc = evb_dump_parse_path(text, d, sizeof d, &b);
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG, "parse_path %d", rc);
    }
    }
}

static void read_log(const char *dir, uint64_t from, uint64_t end)
{
    struct evb_seg_reader sr;
    int rc = evb_seg_reader_open(&sr, dir, &geom);
    FUZZ_CHECK(rc == 0, "seg_reader_open %d", rc);
    evb_seg_reader_seek(&sr, from, 0, true);
    struct evb_frame_view v;
    for (int i = 0; i < 4 * (int)(SEG / 64) && (rc = evb_seg_read(&sr, end, &v)) == 0; i++) {
        FUZZ_CHECK(sr.seg.buf && (const uint8_t *)v.f >= sr.seg.buf &&
                       (const uint8_t *)v.f + EVB_FRAME_HDR + v.key_len + v.value_len <=
                           sr.seg.buf + sr.seg.buf_cap,
                   "frame at %llu outside its window", (unsigned long long)v.pos);
        uint32_t len = EVB_FRAME_HDR + v.key_len + v.value_len;
        FUZZ_CHECK(len <= geom.max_frame, "frame of %u bytes", len);
        FUZZ_CHECK(v.f->crc32c == evb_frame_crc(v.f, len), "delivered a bad checksum");
        for (uint32_t k = 0; k < v.value_len; k++)
            sum += v.value[k];
    }
    FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG || rc == -ENOENT ||
                   rc == -EMEDIUMTYPE,
               "seg_read %d (%s)", rc, evb_last_error());
    evb_seg_reader_close(&sr);
}

static int on_dump(const evb_dump_frame *f, void *arg)
{
    (void)arg;
    sum += f->position + f->kind;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t ctrl[12];
    fuzz_take(&in, ctrl, sizeof ctrl);
    const char *dir = fuzz_fresh_dir(0);
    for (int files = 0; in.n && files < 12; files++) {
        uint8_t kind = fuzz_u8(&in), sel = fuzz_u8(&in);
        size_t n;
        const uint8_t *p = fuzz_bytes(&in, fuzz_u16(&in), &n);
        put_file(dir, kind, sel, p, n);
    }

    uint64_t *bases = NULL;
    size_t nb = 0;
    int rc = evb_seg_list_checked(dir, &geom, &bases, &nb);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG, "seg_list %d (%s)", rc, evb_last_error());
    for (size_t i = 1; i < nb; i++)
        FUZZ_CHECK(bases[i - 1] < bases[i], "listing out of order");
    uint64_t end = nb ? bases[nb - 1] + SEG : 0;
    if (rc == 0) {
        read_log(dir, 0, end);
        if (nb)
            read_log(dir, bases[0], end);
    }
    free(bases);

    uint64_t target;
    memcpy(&target, ctrl, sizeof target);
    target %= 1u << 16;
    uint64_t pos, off;
    rc = ctrl[8] & 1 ? evb_seg_find_time(dir, &geom, target, end, &pos, &off)
                     : evb_seg_find_offset(dir, &geom, target, end, &pos, &off);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EBADMSG || rc == -EMEDIUMTYPE,
               "find %d (%s)", rc, evb_last_error());
    if (rc == 0)
        FUZZ_CHECK(pos < end, "found %llu past the end %llu", (unsigned long long)pos,
                   (unsigned long long)end);

    evb_topic_config cfg = {.partitions = 1, .ring_bytes = SEG, .max_event_bytes = 1024,
                            .durability = EVB_DURABILITY_ASYNC, .segment_bytes = SEG};
    for (uint8_t s = 0; s < 4; s++) {
        rc = evb_dump_walk(dir, (uint64_t)s * SEG, &cfg, on_dump, NULL);
        FUZZ_CHECK(rc <= 0, "dump_walk %d", rc);
    }

    struct evb_seg_recovery a, b;
    rc = evb_seg_recover(dir, &geom, end, &a);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EMEDIUMTYPE, "recover %d (%s)", rc,
               evb_last_error());
    if (rc == 0) {
        rc = evb_seg_recover(dir, &geom, a.end_pos, &b);
        FUZZ_CHECK(rc == 0, "second recovery %d (%s)", rc, evb_last_error());
        FUZZ_CHECK(a.end_pos == b.end_pos && a.end_offset == b.end_offset &&
                       b.dropped_bytes == 0,
                   "recovery not idempotent: end %llu/%llu, then %llu/%llu dropping %llu",
                   (unsigned long long)a.end_pos, (unsigned long long)a.end_offset,
                   (unsigned long long)b.end_pos, (unsigned long long)b.end_offset,
                   (unsigned long long)b.dropped_bytes);
        FUZZ_CHECK(a.start_pos <= a.end_pos, "start %llu past end %llu",
                   (unsigned long long)a.start_pos, (unsigned long long)a.end_pos);
    }
    return 0;
}
