/*
 * test_frame.c - shm/frame.h on frame bytes written by hand in a private
 * buffer: which stamps are commits, what evb_frame_decode() accepts and
 * how it names what it refuses (every bound at and just past its limit),
 * and which bytes evb_frame_init() and evb_frame_set_claim() write. The
 * walks that use the decoder have their own tests (test_read.c, the
 * segment and flusher tests).
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "frame.h"

TestSuite(frame, .timeout = 10);

#define CAP (64u << 10)      /* a lap, for stamps of other laps */
#define MAX_FRAME 4096u
#define POS (3ull * CAP + 4096) /* a position in the fourth lap */
#define ROOM 8192u           /* plenty: no frame below reaches the end */
#define JUNK 0xa5

/* One frame header and the bytes after it; the decoder reads only the
 * header, whatever ROOM it is told. */
union fbuf {
    struct evb_frame f;
    uint8_t b[EVB_FRAME_HDR + 256];
};

/* The buffer belongs to this thread alone: relaxed is all it needs. */
static void set_stamp(union fbuf *u, uint64_t stamp)
{
    atomic_store_explicit(&u->f.stamp, stamp, memory_order_relaxed);
}

static uint64_t get_stamp(union fbuf *u)
{
    return atomic_load_explicit(&u->f.stamp, memory_order_relaxed);
}

/* A committed data frame at POS of KEY_LEN + VALUE_LEN payload bytes. */
static void data_frame(union fbuf *u, uint32_t key_len, uint32_t value_len)
{
    memset(u, 0, sizeof *u);
    struct evb_frame_fields x = {.offset = 77, .timestamp_ns = 5, .producer_seq = 6,
                                 .producer_id = 7, .key_len = key_len,
                                 .value_len = value_len, .type = 1, .claim_len = 0,
                                 .claim_events = 0};
    evb_frame_init(&u->f, &x);
    set_stamp(u, POS | EVB_STAMP_DATA);
}

/* A committed header pad at POS voiding EVENTS events over LEN bytes. */
static void pad_frame(union fbuf *u, uint32_t len, uint16_t events)
{
    memset(u, 0, sizeof *u);
    evb_frame_set_claim(&u->f, 500, len, events);
    set_stamp(u, POS | EVB_STAMP_PAD);
}

static int decode_max(union fbuf *u, uint64_t room, uint64_t max_event,
                      struct evb_frame_step *s)
{
    memset(s, 0x5a, sizeof *s); /* so a field left unset shows */
    return evb_frame_decode(&u->f, get_stamp(u), POS, room, MAX_FRAME, max_event, s);
}

static int decode(union fbuf *u, uint64_t room, struct evb_frame_step *s)
{
    return decode_max(u, room, EVB_FRAME_ANY_EVENT, s);
}

/* Expect BAD naming FIELD with VALUE. */
static void expect_bad(union fbuf *u, uint64_t room, const char *field, uint64_t value)
{
    struct evb_frame_step s;
    int kind = decode(u, room, &s);
    cr_assert_eq(kind, EVB_FRAME_BAD, "kind %d for %s %llu", kind, field,
                 (unsigned long long)value);
    cr_assert_not_null(s.bad);
    cr_expect_str_eq(s.bad, field);
    cr_expect_eq(s.bad_value, value, "%s: value %llu, expected %llu", field,
                 (unsigned long long)s.bad_value, (unsigned long long)value);
}

/* ---- evb_stamp_is_committed ---- */

Test(frame, data_and_pad_stamps_of_this_position_are_committed)
{
    cr_expect(evb_stamp_is_committed(POS | EVB_STAMP_DATA, POS));
    cr_expect(evb_stamp_is_committed(POS | EVB_STAMP_PAD, POS));
    cr_expect(evb_stamp_is_committed(0 | EVB_STAMP_DATA, 0));
    cr_expect(evb_stamp_is_committed(0 | EVB_STAMP_PAD, 0));
}

Test(frame, zero_other_laps_and_other_low_bits_are_not_committed)
{
    /* A zeroed ring, at position 0 too: 0 is neither 0|DATA nor 0|PAD. */
    cr_expect_not(evb_stamp_is_committed(0, POS));
    cr_expect_not(evb_stamp_is_committed(0, 0));
    /* The same index in an older lap, and in a newer one. */
    cr_expect_not(evb_stamp_is_committed((POS - CAP) | EVB_STAMP_DATA, POS));
    cr_expect_not(evb_stamp_is_committed((POS - CAP) | EVB_STAMP_PAD, POS));
    cr_expect_not(evb_stamp_is_committed((POS + CAP) | EVB_STAMP_DATA, POS));
    /* Another frame of this lap. */
    cr_expect_not(evb_stamp_is_committed((POS + 8) | EVB_STAMP_DATA, POS));
    /* This position with a type that is neither data nor pad, or with
     * more low bits than one type. */
    for (uint64_t low = 0; low <= EVB_STAMP_MASK; low++) {
        if (low == EVB_STAMP_DATA || low == EVB_STAMP_PAD)
            continue;
        cr_expect_not(evb_stamp_is_committed(POS | low, POS), "low bits %llu",
                      (unsigned long long)low);
    }
    cr_expect_not(evb_stamp_is_committed(POS | EVB_STAMP_DATA | EVB_STAMP_PAD, POS));
    /* A data stamp of this position with a stray bit above the type. */
    cr_expect_not(evb_stamp_is_committed(POS | EVB_STAMP_DATA | 1ull << 62, POS));
}

Test(frame, decode_of_an_uncommitted_stamp_is_none)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 0, 8);
    uint64_t stamps[] = {0, (POS - CAP) | EVB_STAMP_DATA, (POS - CAP) | EVB_STAMP_PAD,
                         POS, POS | 3, POS | 4};
    for (size_t i = 0; i < sizeof stamps / sizeof stamps[0]; i++) {
        set_stamp(&u, stamps[i]);
        cr_expect_eq(decode(&u, ROOM, &s), EVB_FRAME_NONE, "stamp %#llx",
                     (unsigned long long)stamps[i]);
    }
}

/* ---- data frames ---- */

Test(frame, valid_data_frame_decodes)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 5, 20); /* 56 + 8 (key, padded) + 20 = 84 bytes: two lines */
    cr_assert_eq(decode(&u, ROOM, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.skip, 128);
    cr_expect_eq(s.offset, 77);
    cr_expect_eq(s.events, 1);
    cr_expect_eq(s.len, EVB_FRAME_HDR + 8 + 20);
    cr_expect_eq(s.key_len, 5);
    cr_expect_eq(s.value_at, EVB_FRAME_HDR + 8);
    cr_expect_eq(s.value_len, 20);
    cr_expect_eq(s.flags, EVB_FRAME_F_VALUE_ALIGNED | EVB_FRAME_F_LINE_PADDED);
}

/* A frame of version 5 and older (segments on disk keep them): without
 * the line flag the next frame is at the next 8-byte word. */
Test(frame, frame_without_the_line_flag_skips_to_the_next_word)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 5, 20);
    u.f.flags = EVB_FRAME_F_VALUE_ALIGNED;
    cr_assert_eq(decode(&u, ROOM, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.skip, 88);
    cr_expect_eq(s.value_at, EVB_FRAME_HDR + 8);
    cr_assert_eq(decode(&u, 88, &s), EVB_FRAME_DATA, "88 bytes of room hold it");
    expect_bad(&u, 80, "frame length", EVB_FRAME_HDR + 8 + 20);
    /* The line flag alone (no value alignment) pads to the line too. */
    u.f.flags = EVB_FRAME_F_LINE_PADDED;
    cr_assert_eq(decode(&u, ROOM, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.skip, 128);
    cr_expect_eq(s.value_at, EVB_FRAME_HDR + 5);
}

/* What a claim reserves: whole lines, the key's padding counted. */
Test(frame, frame_bytes_are_whole_lines)
{
    cr_expect_eq(evb_frame_bytes(0, 0), 64);
    cr_expect_eq(evb_frame_bytes(0, 8), 64);
    cr_expect_eq(evb_frame_bytes(0, 9), 128);
    cr_expect_eq(evb_frame_bytes(0, 64), 128);
    cr_expect_eq(evb_frame_bytes(1, 64), 128, "56 + 8 (the key, padded) + 64");
    cr_expect_eq(evb_frame_bytes(9, 64), 192, "56 + 16 + 64: the key's padding tips it over");
    cr_expect_eq(evb_frame_bytes(0, 72), 128);
    /* The largest frame of a max_event: a key of 8k + 1 bytes pads 7. */
    for (uint32_t m = 1; m < 300; m++)
        for (uint32_t k = 0; k <= m; k++) {
            uint64_t b = evb_frame_bytes(k, m - k);
            cr_assert_leq(evb_frame_len(k, m - k), evb_frame_max(m), "key %u of %u", k, m);
            cr_assert_leq(b, evb_frame_max(m), "key %u of %u", k, m);
            cr_assert_eq(b % EVB_FRAME_LINE, 0);
        }
}

Test(frame, data_length_below_the_header_is_bad)
{
    union fbuf u;
    data_frame(&u, 0, 0);
    u.f.len = EVB_FRAME_HDR - 1;
    expect_bad(&u, ROOM, "frame length", EVB_FRAME_HDR - 1);
    u.f.len = 0;
    expect_bad(&u, ROOM, "frame length", 0);
}

Test(frame, data_length_above_max_frame_is_bad)
{
    union fbuf u;
    data_frame(&u, 0, 0);
    u.f.len = MAX_FRAME + 1;
    expect_bad(&u, ROOM, "frame length", MAX_FRAME + 1);
    u.f.len = UINT32_MAX;
    expect_bad(&u, ROOM, "frame length", UINT32_MAX);
}

/* A frame's line padding (and the key's) leaves room for more key + value
 * than the topic takes: the event bound is checked on its own, and counts
 * the key and value, never the padding between them. */
Test(frame, data_event_above_max_event_is_bad)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 1, 15); /* 56 + 8 + 15 = 79 bytes */
    cr_assert_eq(decode_max(&u, ROOM, 16, &s), EVB_FRAME_DATA, "1 + 15 bytes fit 16");
    cr_expect_eq(s.value_len, 15);
    cr_assert_eq(decode_max(&u, ROOM, 23, &s), EVB_FRAME_DATA);
    /* The same frame length, read as a 23-byte value: over 16. */
    data_frame(&u, 0, 23);
    cr_assert_eq(decode_max(&u, ROOM, 23, &s), EVB_FRAME_DATA);
    cr_assert_eq(decode_max(&u, ROOM, 16, &s), EVB_FRAME_BAD);
    cr_expect_str_eq(s.bad, "event length");
    cr_expect_eq(s.bad_value, 23);
    /* A hostile length inside max_frame and the room. */
    data_frame(&u, 0, 8);
    u.f.len = MAX_FRAME;
    cr_assert_eq(decode_max(&u, ROOM, MAX_FRAME - EVB_FRAME_HDR, &s), EVB_FRAME_DATA);
    cr_assert_eq(decode_max(&u, ROOM, MAX_FRAME - EVB_FRAME_HDR - 1, &s), EVB_FRAME_BAD);
    cr_expect_str_eq(s.bad, "event length");
    cr_expect_eq(s.bad_value, MAX_FRAME - EVB_FRAME_HDR);
}

Test(frame, data_frame_longer_than_its_room_is_bad)
{
    union fbuf u;
    data_frame(&u, 0, 41); /* 97 bytes, 104 aligned */
    expect_bad(&u, 96, "frame length", 97);
}

/* A data frame whose offset is the "no offset" word of stamp-only pads:
 * bad, never an event at offset 2^64 - 1 (a cold attack saw one handed
 * out, then the offsets after it). Any other offset is the walk's to
 * compare. */
Test(frame, data_frame_without_an_offset_is_bad)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 0, 8);
    __atomic_store_n(&u.f.offset, EVB_FRAME_NO_OFFSET, __ATOMIC_RELAXED);
    expect_bad(&u, ROOM, "frame offset", EVB_FRAME_NO_OFFSET);
    __atomic_store_n(&u.f.offset, EVB_FRAME_NO_OFFSET - 1, __ATOMIC_RELAXED);
    cr_expect_eq(decode(&u, ROOM, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.offset, EVB_FRAME_NO_OFFSET - 1);
}

/* key_len is checked against len, and named with the value found. */
Test(frame, key_longer_than_the_payload_is_bad)
{
    union fbuf u;
    data_frame(&u, 10, 0); /* 56 + 16: the key and its padding fill it */
    u.f.key_len = 17;
    expect_bad(&u, ROOM, "key length", 17);
    u.f.key_len = UINT16_MAX;
    expect_bad(&u, ROOM, "key length", UINT16_MAX);
    /* A frame of the packed layout (ring version 2, kept in old
     * segments): the key alone counts. */
    u.f.flags = 0;
    u.f.key_len = 16;
    struct evb_frame_step s;
    cr_expect_eq(decode(&u, ROOM, &s), EVB_FRAME_DATA);
    u.f.key_len = 17;
    expect_bad(&u, ROOM, "key length", 17);
}

/* ---- value alignment (issue 9, defect 20) ---- */

Test(frame, value_is_8_aligned_for_every_key_length)
{
    for (uint32_t k = 0; k <= 17; k++) {
        union fbuf u;
        struct evb_frame_step s;
        data_frame(&u, k, 5);
        cr_assert_eq(decode(&u, ROOM, &s), EVB_FRAME_DATA, "key %u", k);
        cr_expect_eq(s.value_at % 8, 0, "key %u: value at %u", k, s.value_at);
        cr_expect_geq(s.value_at, EVB_FRAME_HDR + k, "key %u: value over the key", k);
        cr_expect_lt(s.value_at, EVB_FRAME_HDR + k + 8, "key %u: more than 7 of padding", k);
        cr_expect_eq(s.value_len, 5, "key %u", k);
        cr_expect_eq(s.len, evb_frame_len(k, 5), "key %u", k);
        cr_expect_leq(evb_frame_bytes(k, 64 - k), evb_frame_max(64), "key %u", k);
    }
}

Test(frame, packed_frame_of_an_old_segment_keeps_its_value_after_the_key)
{
    for (uint32_t k = 0; k <= 17; k++) {
        union fbuf u;
        struct evb_frame_step s;
        data_frame(&u, k, 5);
        u.f.flags = 0;
        u.f.len = EVB_FRAME_HDR + k + 5;
        cr_assert_eq(decode(&u, ROOM, &s), EVB_FRAME_DATA, "key %u", k);
        cr_expect_eq(s.value_at, EVB_FRAME_HDR + k, "key %u", k);
        cr_expect_eq(s.value_len, 5, "key %u", k);
    }
}

Test(frame, unknown_flag_bits_are_bad)
{
    union fbuf u;
    data_frame(&u, 3, 5);
    u.f.flags = 4;
    expect_bad(&u, ROOM, "frame flags", 4);
    u.f.flags = 0x8001;
    expect_bad(&u, ROOM, "frame flags", 0x8001);
}

Test(frame, data_stamp_in_the_end_gap_is_bad)
{
    union fbuf u;
    data_frame(&u, 0, 8);
    expect_bad(&u, EVB_FRAME_HDR - 8, "data frame in end gap, room", EVB_FRAME_HDR - 8);
    expect_bad(&u, 8, "data frame in end gap, room", 8);
}

/* ---- pads ---- */

Test(frame, header_pad_skips_its_claim)
{
    union fbuf u;
    struct evb_frame_step s;
    pad_frame(&u, 256, 3);
    cr_assert_eq(decode(&u, ROOM, &s), EVB_FRAME_PAD);
    cr_expect_eq(s.skip, 256);
    cr_expect_eq(s.events, 3);
    cr_expect_eq(s.offset, 500);
    cr_expect_null(s.bad);
}

/* Too little room for a header: the stamp alone pads to the end, and
 * nothing of the header is read (it would lie past the ring). */
Test(frame, stamp_only_pad_skips_the_room_without_an_offset)
{
    union fbuf u;
    struct evb_frame_step s;
    pad_frame(&u, 0, 9); /* header bytes that must not be used */
    for (uint64_t room = 8; room < EVB_FRAME_HDR; room += 8) {
        cr_assert_eq(decode(&u, room, &s), EVB_FRAME_PAD, "room %llu",
                     (unsigned long long)room);
        cr_expect_eq(s.skip, room);
        cr_expect_eq(s.offset, EVB_FRAME_NO_OFFSET);
        cr_expect_eq(s.events, 0);
        cr_expect_null(s.bad);
    }
}

Test(frame, pad_of_length_zero_is_bad)
{
    union fbuf u;
    pad_frame(&u, 0, 1);
    expect_bad(&u, ROOM, "pad length", 0);
}

Test(frame, unaligned_pad_is_bad)
{
    union fbuf u;
    pad_frame(&u, 4, 1);
    expect_bad(&u, ROOM, "pad length", 4);
    pad_frame(&u, 60, 1);
    expect_bad(&u, ROOM, "pad length", 60);
}

Test(frame, pad_longer_than_its_room_is_bad)
{
    union fbuf u;
    pad_frame(&u, 264, 1);
    expect_bad(&u, 256, "pad length", 264);
    pad_frame(&u, UINT32_MAX & ~7u, 1);
    expect_bad(&u, ROOM, "pad length", UINT32_MAX & ~7u);
}

/* ---- bounds met exactly ---- */

Test(frame, room_of_exactly_a_header_holds_a_frame)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 0, 0); /* a bare header: no key, no value */
    u.f.flags = EVB_FRAME_F_VALUE_ALIGNED; /* as version 5 wrote it */
    cr_assert_eq(decode(&u, EVB_FRAME_HDR, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.skip, EVB_FRAME_HDR);
    cr_expect_eq(s.len, EVB_FRAME_HDR);
    /* Line-padded, it needs the whole line. */
    u.f.flags |= EVB_FRAME_F_LINE_PADDED;
    expect_bad(&u, EVB_FRAME_HDR, "frame length", EVB_FRAME_HDR);
    cr_assert_eq(decode(&u, EVB_FRAME_LINE, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.skip, EVB_FRAME_LINE);
    /* A pad there has a header, so its claim is read, not the room. */
    pad_frame(&u, EVB_FRAME_HDR, 2);
    cr_assert_eq(decode(&u, EVB_FRAME_HDR, &s), EVB_FRAME_PAD);
    cr_expect_eq(s.skip, EVB_FRAME_HDR);
    cr_expect_eq(s.events, 2);
    cr_expect_eq(s.offset, 500);
}

Test(frame, data_frame_that_exactly_fills_its_room_decodes)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 0, 41); /* 97 bytes, two lines */
    cr_assert_eq(decode(&u, 128, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.skip, 128);
    expect_bad(&u, 120, "frame length", 97);
    pad_frame(&u, 256, 1);
    cr_assert_eq(decode(&u, 256, &s), EVB_FRAME_PAD);
    cr_expect_eq(s.skip, 256);
}

Test(frame, length_of_exactly_max_frame_decodes)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 0, 0);
    u.f.len = MAX_FRAME;
    cr_assert_eq(decode(&u, MAX_FRAME, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.len, MAX_FRAME);
    cr_expect_eq(s.skip, MAX_FRAME);
}

Test(frame, key_of_exactly_the_payload_decodes)
{
    union fbuf u;
    struct evb_frame_step s;
    data_frame(&u, 10, 0);
    cr_assert_eq(decode(&u, ROOM, &s), EVB_FRAME_DATA);
    cr_expect_eq(s.key_len, 10);
    cr_expect_eq(s.len, EVB_FRAME_HDR + 16);
    cr_expect_eq(s.value_at, EVB_FRAME_HDR + 16);
    cr_expect_eq(s.value_len, 0);
}

/* ---- writers ---- */

Test(frame, init_writes_the_header_but_not_the_stamp_or_the_payload)
{
    union fbuf u, before;
    memset(&u, JUNK, sizeof u);
    set_stamp(&u, 0x1234567800ull | EVB_STAMP_PAD);
    memcpy(&before, &u, sizeof u);
    struct evb_frame_fields x = {.offset = 0x0102030405060708ull,
                                 .timestamp_ns = 0x1112131415161718ull,
                                 .producer_seq = 0x2122232425262728ull,
                                 .producer_id = 0x31323334u, .key_len = 12,
                                 .value_len = 30, .type = 0x4142, .claim_len = 96,
                                 .claim_events = 3};
    evb_frame_init(&u.f, &x);
    cr_expect_eq(get_stamp(&u), 0x1234567800ull | EVB_STAMP_PAD);
    cr_expect_eq(u.f.offset, x.offset);
    cr_expect_eq(u.f.timestamp_ns, x.timestamp_ns);
    cr_expect_eq(u.f.producer_seq, x.producer_seq);
    cr_expect_eq(u.f.len, EVB_FRAME_HDR + 16 + 30, "the key padded to 8");
    cr_expect_eq(u.f.claim_len, 96);
    cr_expect_eq(u.f.producer_id, x.producer_id);
    cr_expect_eq(u.f.claim_events, 3);
    cr_expect_eq(u.f.key_len, 12);
    cr_expect_eq(u.f.crc32c, 0, "the checksum is sealed later, from zero");
    cr_expect_eq(u.f.type, 0x4142);
    cr_expect_eq(u.f.flags, EVB_FRAME_F_VALUE_ALIGNED | EVB_FRAME_F_LINE_PADDED);
    cr_expect_eq(memcmp(u.b + EVB_FRAME_HDR, before.b + EVB_FRAME_HDR,
                        sizeof u.b - EVB_FRAME_HDR),
                 0, "bytes after the header changed");
}

Test(frame, set_claim_writes_the_three_claim_fields_only)
{
    union fbuf u, want;
    memset(&u, JUNK, sizeof u);
    set_stamp(&u, POS | EVB_STAMP_DATA);
    memcpy(&want, &u, sizeof u);
    uint64_t offset = 0x0807060504030201ull;
    uint32_t claim_len = 0x00001238u;
    uint16_t claim_events = 0x0102;
    memcpy(want.b + offsetof(struct evb_frame, offset), &offset, sizeof offset);
    memcpy(want.b + offsetof(struct evb_frame, claim_len), &claim_len, sizeof claim_len);
    memcpy(want.b + offsetof(struct evb_frame, claim_events), &claim_events,
           sizeof claim_events);
    evb_frame_set_claim(&u.f, offset, claim_len, claim_events);
    for (size_t i = 0; i < sizeof u.b; i++)
        cr_assert_eq(u.b[i], want.b[i], "byte %zu: %#x, expected %#x", i, u.b[i],
                     want.b[i]);
}
