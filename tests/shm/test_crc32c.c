/*
 * test_crc32c.c - CRC32C (shm/crc32c.c): the check value, chaining, the
 * hardware and table paths against a bitwise reference, and which bytes of
 * a frame evb_frame_crc covers.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "frame.h"
#include "ring_format.h"

static uint64_t rng;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

Test(crc32c, check_value_and_chaining)
{
    const char *s = "123456789";
    cr_expect_eq(evb_crc32c(0, s, 9), 0xE3069283u);
    cr_expect_eq(evb_crc32c_sw(0, s, 9), 0xE3069283u);
    cr_expect_eq(crc_bitwise(0, (const uint8_t *)s, 9), 0xE3069283u);
    cr_expect_eq(evb_crc32c(evb_crc32c(0, s, 4), s + 4, 5), 0xE3069283u);
    cr_expect_eq(evb_crc32c(0, s, 0), 0);
    if (evb_crc32c_has_hw())
        cr_expect_eq(evb_crc32c_hw(0, s, 9), 0xE3069283u);
}

Test(crc32c, hardware_and_tables_agree_on_random_buffers)
{
    if (!evb_crc32c_has_hw())
        cr_skip_test("no SSE4.2 on this CPU");
    size_t big = 1 << 20;
    uint8_t *buf = malloc(big + 8);
    cr_assert_not_null(buf);
    rng = 42;
    for (size_t i = 0; i < big + 8; i++)
        buf[i] = (uint8_t)next_rand();
    for (size_t len = 0; len < 5000; len += 1 + len / 64) {
        for (size_t align = 0; align < 8; align++) {
            uint32_t seed = (uint32_t)next_rand();
            const uint8_t *p = buf + align;
            uint32_t want = crc_bitwise(seed, p, len);
            cr_assert_eq(evb_crc32c_sw(seed, p, len), want, "tables, len %zu align %zu", len,
                         align);
            cr_assert_eq(evb_crc32c_hw(seed, p, len), want, "hw, len %zu align %zu", len,
                         align);
            cr_assert_eq(evb_crc32c(seed, p, len), want);
        }
    }
    /* Long buffers: many three-stream blocks, then a ragged tail. */
    for (size_t len = big - 13; len <= big; len += 13)
        cr_assert_eq(evb_crc32c_hw(0, buf + 3, len), evb_crc32c_sw(0, buf + 3, len));
    free(buf);
}

Test(crc32c, frame_crc_covers_all_but_stamp_and_checksum)
{
    uint8_t f[200], cat[200];
    rng = 7;
    for (size_t i = 0; i < sizeof f; i++)
        f[i] = (uint8_t)next_rand();
    uint32_t len = 151;
    memcpy(cat, f + 8, 40);
    memcpy(cat + 40, f + 52, len - 52);
    struct evb_frame *fr = (struct evb_frame *)(void *)f;
    uint32_t crc = evb_frame_crc(fr, len);
    cr_expect_eq(crc, crc_bitwise(0, cat, 40 + len - 52));
    f[0] ^= 1;  /* stamp */
    f[49] ^= 1; /* the checksum field */
    f[len] ^= 1; /* past the frame */
    cr_expect_eq(evb_frame_crc(fr, len), crc);
    f[8] ^= 1;
    cr_expect_neq(evb_frame_crc(fr, len), crc);
    f[8] ^= 1;
    f[len - 1] ^= 1;
    cr_expect_neq(evb_frame_crc(fr, len), crc);
}

Test(crc32c, table_joined_streams_agree_with_the_reference)
{
    if (!evb_crc32c_has_hw())
        cr_skip_test("no SSE4.2 on this CPU");
    size_t big = 20000;
    uint8_t *buf = malloc(big + 8);
    cr_assert_not_null(buf);
    rng = 43;
    for (size_t i = 0; i < big + 8; i++)
        buf[i] = (uint8_t)next_rand();
    for (size_t len = 0; len < big; len += 1 + len / 32) {
        uint32_t seed = (uint32_t)next_rand();
        const uint8_t *p = buf + (len & 7);
        cr_assert_eq(evb_crc32c_hw_tables(seed, p, len), crc_bitwise(seed, p, len), "len %zu",
                     len);
    }
    free(buf);
}

/* A frame at F (random header fields; key of KEY_LEN random bytes, then
 * zero padding, as the producer writes them) of the value length N. */
static uint32_t frame_setup(uint8_t *f, uint32_t key_len, uint32_t n)
{
    for (size_t i = 0; i < EVB_FRAME_HDR; i++)
        f[i] = (uint8_t)next_rand();
    struct evb_frame *fr = (struct evb_frame *)(void *)f;
    uint32_t len = (uint32_t)evb_frame_len(key_len, n);
    fr->len = len;
    fr->key_len = (uint16_t)key_len;
    uint64_t at = evb_frame_value_at(key_len, EVB_FRAME_F_VALUE_ALIGNED);
    memset(f + EVB_FRAME_HDR, 0, at - EVB_FRAME_HDR);
    for (size_t i = 0; i < key_len; i++)
        f[EVB_FRAME_HDR + i] = (uint8_t)next_rand();
    return len;
}

Test(crc32c, frame_crc_paths_agree)
{
    static uint8_t f[6000];
    rng = 11;
    for (uint32_t n = 0; n < 5000; n += 1 + n / 16) {
        uint32_t len = frame_setup(f, n % 19, n);
        for (size_t i = len - n; i < len; i++)
            f[i] = (uint8_t)next_rand();
        struct evb_frame *fr = (struct evb_frame *)(void *)f;
        uint8_t cat[6000];
        memcpy(cat, f + 8, 40);
        memcpy(cat + 40, f + 52, len - 52);
        uint32_t want = crc_bitwise(0, cat, 40 + len - 52);
        cr_assert_eq(evb_frame_crc(fr, len), want, "value %u", n);
        cr_assert_eq(evb_frame_crc_generic(fr, len), want, "value %u", n);
    }
}

Test(crc32c, copy_crc_stores_every_byte_and_sums_them)
{
    static uint8_t f[6000 + 64], src[6000 + 8];
    rng = 12;
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)next_rand();
    for (uint32_t n = 0; n < 5000; n += 1 + n / 16) {
        for (uint32_t key_len = 0; key_len < 20; key_len += 6) {
            uint32_t len = frame_setup(f, key_len, n);
            memset(f + len - n, 0xA5, n + 64); /* the value's place, and guard bytes past it */
            const uint8_t *s = src + (n & 7);
            struct evb_frame *fr = (struct evb_frame *)(void *)f;
            uint32_t crc = evb_frame_copy_crc(fr, f + len - n, s, n);
            cr_assert_eq(memcmp(f + len - n, s, n), 0, "value %u key %u: copy", n, key_len);
            for (size_t i = len; i < len + 64; i++)
                cr_assert_eq(f[i], 0xA5, "value %u key %u: byte %zu past the frame", n,
                             key_len, i - len);
            cr_assert_eq(crc, evb_frame_crc_generic(fr, len), "value %u key %u", n, key_len);
        }
    }
}
