/*
 * crc32c.c - CRC32C for durable frames. Two implementations of one raw
 * register update: the SSE4.2 crc32 instruction (three independent streams
 * over long buffers, joined with a shift table) and slice-by-8 tables for
 * CPUs without it. Tables are built and the implementation picked once.
 *
 * "Raw" below means the bare reflected CRC register, without the inversion
 * on entry and exit; the public functions add it.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u /* Castagnoli, bit-reflected */

/* evb_frame_crc() covers [offset, crc32c) and [type, len). */
static_assert(offsetof(struct evb_frame, offset) == 8 &&
              offsetof(struct evb_frame, crc32c) == 48 &&
              offsetof(struct evb_frame, type) == 52, "frame checksum coverage moved");

/* The hardware loop runs three streams of HW_BLOCK bytes at a time: the
 * instruction has a latency of about three cycles but issues one per
 * cycle, so three chains in flight keep it busy. */
#define HW_BLOCK 256u

static uint32_t slice[8][256]; /* slice[k][b]: byte b followed by k zeros */
static uint32_t shift[4][256]; /* a register pushed through HW_BLOCK zeros */
static uint32_t (*raw_impl)(uint32_t c, const uint8_t *p, size_t n);
static bool hw_ok;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint32_t sw_raw(uint32_t c, const uint8_t *p, size_t n)
{
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = c ^ le32(p), hi = le32(p + 4);
        c = slice[7][lo & 0xff] ^ slice[6][(lo >> 8) & 0xff] ^
            slice[5][(lo >> 16) & 0xff] ^ slice[4][lo >> 24] ^
            slice[3][hi & 0xff] ^ slice[2][(hi >> 8) & 0xff] ^
            slice[1][(hi >> 16) & 0xff] ^ slice[0][hi >> 24];
    }
    for (; n; n--, p++)
        c = (c >> 8) ^ slice[0][(c ^ *p) & 0xff];
    return c;
}

/* The hardware path exists on x86-64 only (SSE4.2); elsewhere the tables
 * serve every call. */
#if defined(__x86_64__)
#include <nmmintrin.h>

/* The register after HW_BLOCK more zero bytes. The map is linear over
 * GF(2), so four byte-indexed tables cover every 32-bit register. */
static uint32_t shift_block(uint32_t c)
{
    return shift[0][c & 0xff] ^ shift[1][(c >> 8) & 0xff] ^
           shift[2][(c >> 16) & 0xff] ^ shift[3][c >> 24];
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

__attribute__((target("sse4.2"))) static uint32_t hw_raw(uint32_t c, const uint8_t *p,
                                                         size_t n)
{
    /* CRC(A B C) = shift(shift(CRC(A) with c) ^ CRC(B) from 0) ^ CRC(C)
     * from 0, where shift() appends HW_BLOCK zero bytes: the register
     * update is linear, so the streams can run apart and be joined. */
    while (n >= 3 * HW_BLOCK) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < HW_BLOCK; i += 8) {
            a = _mm_crc32_u64(a, load64(p + i));
            b = _mm_crc32_u64(b, load64(p + HW_BLOCK + i));
            d = _mm_crc32_u64(d, load64(p + 2 * HW_BLOCK + i));
        }
        c = shift_block(shift_block((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * HW_BLOCK;
        n -= 3 * HW_BLOCK;
    }
    uint64_t x = c;
    for (; n >= 8; n -= 8, p += 8)
        x = _mm_crc32_u64(x, load64(p));
    c = (uint32_t)x;
    for (; n; n--, p++)
        c = _mm_crc32_u8(c, *p);
    return c;
}
#endif

static void init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (c & 1 ? POLY : 0);
        slice[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (uint32_t b = 0; b < 256; b++)
            slice[k][b] = (slice[k - 1][b] >> 8) ^ slice[0][slice[k - 1][b] & 0xff];

    /* Push each single-bit register through HW_BLOCK zero bytes, then
     * build every table entry as the sum of its bits' images. */
    uint32_t bit[32];
    for (int i = 0; i < 32; i++) {
        uint32_t c = 1u << i;
        for (uint32_t k = 0; k < HW_BLOCK; k++)
            c = (c >> 8) ^ slice[0][c & 0xff];
        bit[i] = c;
    }
    for (int t = 0; t < 4; t++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++)
                if (b & (1u << j))
                    v ^= bit[8 * t + j];
            shift[t][b] = v;
        }

    raw_impl = sw_raw;
#if defined(__x86_64__)
    __builtin_cpu_init();
    hw_ok = __builtin_cpu_supports("sse4.2");
    if (hw_ok)
        raw_impl = hw_raw;
#endif
}

uint32_t evb_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
    return ~raw_impl(~crc, p, n);
}

uint32_t evb_frame_crc(const struct evb_frame *f, uint32_t len)
{
    const size_t from = offsetof(struct evb_frame, offset);
    const size_t hole = offsetof(struct evb_frame, crc32c);
    const size_t rest = offsetof(struct evb_frame, type);
    /* [from, hole) from a copy: a producer seals its frame in the ring
     * while a padder that took it for stalled may be storing the claim
     * fields (the same values, frame.h), so those three are relaxed
     * atomic loads. The rest only the producer writes. */
    struct evb_frame h;
    h.offset = __atomic_load_n(&f->offset, __ATOMIC_RELAXED);
    h.claim_len = __atomic_load_n(&f->claim_len, __ATOMIC_RELAXED);
    h.claim_events = __atomic_load_n(&f->claim_events, __ATOMIC_RELAXED);
    h.timestamp_ns = f->timestamp_ns;
    h.producer_seq = f->producer_seq;
    h.len = f->len;
    h.producer_id = f->producer_id;
    h.key_len = f->key_len;
    uint32_t crc = evb_crc32c(0, (const uint8_t *)&h + from, hole - from);
    return evb_crc32c(crc, (const uint8_t *)f + rest, len - rest);
}

uint32_t evb_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
    return ~sw_raw(~crc, p, n);
}

uint32_t evb_crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
#if defined(__x86_64__)
    if (hw_ok)
        return ~hw_raw(~crc, p, n);
#endif
    return ~sw_raw(~crc, p, n);
}

bool evb_crc32c_has_hw(void)
{
    pthread_once(&init_once, init);
    return hw_ok;
}
