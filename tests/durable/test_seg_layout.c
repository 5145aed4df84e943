/*
 * test_seg_layout.c - segments keep the frames of every layout readable
 * (issue 9, defect 20): frames ring version 6 writes (value 8-aligned
 * after the key, the next frame on the next 64-byte line:
 * EVB_FRAME_F_VALUE_ALIGNED | EVB_FRAME_F_LINE_PADDED), frames of
 * versions 3 to 5 (value aligned, next frame on the next 8-byte word) and
 * frames of version 2 (value right after the key, flags 0), mixed in one
 * segment, come back from the segment reader and from `evbus dump` with
 * the key and value bytes they were written with.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "durable.h"
#include "evbus.h"
#include "frame.h"
#include "seg_helpers.h"

TestSuite(seg_layout, .init = setup, .fini = teardown, .timeout = 60);

#define MAX_KEY 17u
#define VLEN 13u

static uint8_t key_byte(uint32_t k, uint32_t i)
{
    return (uint8_t)(0x40 + k + i);
}

/* The three layouts, in the order build_mixed() writes them. */
enum layout { PACKED, WORD, LINE, LAYOUTS };
static const char *const layout_name[] = {"packed (version 2)", "word (versions 3-5)",
                                          "line (version 6)"};

static uint8_t value_byte(uint32_t k, uint32_t i, enum layout l)
{
    return (uint8_t)(0x80 + k * 3 + i + 0x20 * l);
}

/* One data frame of key K at the log's end, in layout L. */
static void put_event(uint32_t k, enum layout l)
{
    uint64_t len = l != PACKED ? evb_frame_len(k, VLEN) : EVB_FRAME_HDR + k + VLEN;
    uint64_t skip = l == LINE ? evb_align_line(len) : evb_align_frame(len);
    struct evb_frame *f = frame_at(lg.pos);
    struct evb_frame_fields x = {.offset = lg.offset, .timestamp_ns = 1 + lg.offset,
                                 .producer_seq = lg.offset, .producer_id = 9, .key_len = k,
                                 .value_len = VLEN, .type = 4,
                                 .claim_len = (uint32_t)skip,
                                 .claim_events = 1};
    evb_frame_init(f, &x);
    cr_assert_eq(f->flags, EVB_FRAME_F_VALUE_ALIGNED | EVB_FRAME_F_LINE_PADDED);
    uint8_t *b = (uint8_t *)f;
    uint64_t value_at = EVB_FRAME_HDR + (l != PACKED ? evb_align_frame(k) : k);
    if (l == WORD)
        f->flags = EVB_FRAME_F_VALUE_ALIGNED; /* what versions 3 to 5 wrote */
    if (l == PACKED) {
        /* What version 2 wrote: no flag, value packed after the key. */
        f->flags = 0;
        f->len = (uint32_t)len;
    }
    /* The padding up to the next frame holds old bytes, never zeros: the
     * walk must step over them by the flag, not find the next stamp. */
    memset(b + len, 0xa5, skip - len);
    for (uint32_t i = 0; i < k; i++)
        b[EVB_FRAME_HDR + i] = key_byte(k, i);
    for (uint32_t i = 0; i < VLEN; i++)
        b[value_at + i] = value_byte(k, i, l);
    f->crc32c = evb_frame_crc(f, (uint32_t)len);
    put_stamp(lg.pos, lg.pos | EVB_STAMP_DATA);
    record(true, 1 + lg.offset);
    lg.pos += skip;
    lg.offset++;
}

/* Frames of the three layouts in turn, for every key length 0..MAX_KEY. */
static void build_mixed(void)
{
    log_reset(SEG);
    for (uint32_t k = 0; k <= MAX_KEY; k++)
        for (enum layout l = PACKED; l < LAYOUTS; l++)
            put_event(k, l);
    write_segments(0);
}

static void check_event(uint32_t n, const uint8_t *key, uint32_t key_len,
                        const uint8_t *value, uint32_t value_len)
{
    uint32_t k = n / LAYOUTS;
    enum layout l = n % LAYOUTS;
    cr_assert_eq(key_len, k, "event %u", n);
    cr_assert_eq(value_len, VLEN, "event %u", n);
    for (uint32_t i = 0; i < k; i++)
        cr_assert_eq(key[i], key_byte(k, i), "event %u key byte %u", n, i);
    for (uint32_t i = 0; i < VLEN; i++)
        cr_assert_eq(value[i], value_byte(k, i, l), "event %u (%s) value byte %u", n,
                     layout_name[l], i);
    if (l != PACKED)
        cr_assert_eq((uintptr_t)value % 8, 0, "event %u: value %p", n, (const void *)value);
}

Test(seg_layout, reader_returns_every_layout_byte_for_byte)
{
    build_mixed();
    struct evb_seg_reader sr;
    cr_assert_eq(evb_seg_reader_open(&sr, dir, &geom), 0);
    evb_seg_reader_seek(&sr, 0, 0, true);
    struct evb_frame_view v;
    uint32_t n = 0;
    int rc;
    while ((rc = evb_seg_read(&sr, lg.pos, &v)) == 0)
        check_event(n++, v.key, v.key_len, v.value, v.value_len);
    cr_expect_eq(rc, -EAGAIN, "%s", evb_last_error());
    cr_expect_eq(n, LAYOUTS * (MAX_KEY + 1));
    evb_seg_reader_close(&sr);
}

struct dump_seen {
    uint32_t n;
};

static int on_frame(const evb_dump_frame *f, void *arg)
{
    struct dump_seen *s = arg;
    if (f->kind == EVB_DUMP_DATA)
        check_event(s->n++, f->key, f->key_len, f->value, f->value_len);
    return 0;
}

Test(seg_layout, dump_shows_every_layout_byte_for_byte)
{
    build_mixed();
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = CAP, .segment_bytes = SEG,
                            .max_event_bytes = MAX_FRAME - 64,
                            .durability = EVB_DURABILITY_SYNC};
    struct dump_seen s = {0};
    cr_expect_eq(evb_dump_walk(dir, 0, &cfg, on_frame, &s), 0, "%s", evb_last_error());
    cr_expect_eq(s.n, LAYOUTS * (MAX_KEY + 1));
}

struct dump_end {
    uint32_t events;
    const char *why;
};

static int on_end(const evb_dump_frame *f, void *arg)
{
    struct dump_end *e = arg;
    if (f->kind == EVB_DUMP_DATA)
        e->events++;
    if (f->kind == EVB_DUMP_END)
        e->why = f->why;
    return 0;
}

/* Walked with a max_event_bytes smaller than its first event (no key
 * and a value of VLEN bytes), the dump stops at that event and says why:
 * it is whole, only too large for the config given. */
Test(seg_layout, dump_names_an_event_too_large_for_the_config)
{
    build_mixed();
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = CAP, .segment_bytes = SEG,
                            .max_event_bytes = VLEN - 1, .durability = EVB_DURABILITY_SYNC};
    struct dump_end e = {0};
    cr_expect_eq(evb_dump_walk(dir, 0, &cfg, on_end, &e), 0, "%s", evb_last_error());
    cr_expect_eq(e.events, 0);
    cr_assert_not_null(e.why);
    cr_expect_str_eq(e.why, "event too large");
}
