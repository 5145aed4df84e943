/*
 * crc32c.c - CRC32C for durable frames. Three implementations of one raw
 * register update: the SSE4.2 crc32 instruction in three independent
 * streams that split the whole buffer, joined by a carry-less multiply
 * (PCLMULQDQ); the same instruction in streams of a fixed 256 bytes,
 * joined with shift tables, for a CPU with SSE4.2 but no PCLMULQDQ; and
 * slice-by-8 tables for CPUs without either. Tables are built and the
 * implementation picked once.
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

/* The PCLMULQDQ path splits a buffer into three streams of W 8-byte words
 * each, W at most HW_WORDS_MAX (a block of 768 bytes; longer buffers take
 * several), at least HW_WORDS_MIN (below, one stream costs less than the
 * joins save). Streams of 512 bytes or more ran at a third of the speed
 * over buffers not in cache (6-7 GB/s against 22 on this project's AMD
 * EPYC VMs; perf/RESULTS.md, sixth session), as if the three far-apart
 * loads defeated the prefetcher; 256 bytes keeps them close. */
#define HW_WORDS_MAX 32u
#define HW_WORDS_MIN 4u

static uint32_t slice[8][256]; /* slice[k][b]: byte b followed by k zeros */
static uint32_t shift[4][256]; /* a register pushed through HW_BLOCK zeros */
/* shift_k[w]: x^(64w - 33) mod P, bit-reflected; a carry-less product
 * with it, folded by the crc32 instruction (which multiplies by x^32, and
 * the reflected product carries one more x), pushes a register through w
 * zero words. */
static uint32_t shift_k[2 * HW_WORDS_MAX + 1];
static uint32_t (*raw_impl)(uint32_t c, const uint8_t *p, size_t n);
static uint32_t (*frame_impl)(const struct evb_frame *f, uint32_t len);
static bool hw_ok, clmul_ok;
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
#include <wmmintrin.h>

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

/* The register C pushed through the zero words that K stands for. */
__attribute__((target("sse4.2,pclmul"))) static inline uint32_t clmul_shift(uint32_t c,
                                                                           uint32_t k)
{
    __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)c), _mm_cvtsi32_si128((int)k),
                                        0x00);
    return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(prod));
}

/* Words per stream of the next block of a buffer of N bytes (N at
 * least 3 * 8 * HW_WORDS_MIN): three equal streams, each at most
 * HW_WORDS_MAX words. */
static inline size_t clmul_words(size_t n)
{
    size_t w = n / 24;
    return w > HW_WORDS_MAX ? HW_WORDS_MAX : w;
}

/* The register after three streams of W words each, summed from A, 0 and
 * 0: the first pushed through 2W zero words, the second through W. */
__attribute__((target("sse4.2,pclmul"))) static inline uint32_t clmul_join(uint64_t a,
                                                                          uint64_t b,
                                                                          uint64_t d, size_t w)
{
    return clmul_shift((uint32_t)a, shift_k[2 * w]) ^ clmul_shift((uint32_t)b, shift_k[w]) ^
           (uint32_t)d;
}

/*
 * The same sum as hw_raw, but the three streams share the whole buffer
 * (W words each, whatever the length), so no stream of a 1 KiB frame is
 * left to run alone, one dependent instruction after the other, as
 * hw_raw's tail past its 768-byte blocks does; the joins are two
 * independent carry-less multiplies instead of four table lookups each.
 */
__attribute__((target("sse4.2,pclmul"))) static uint32_t hw_clmul_raw(uint32_t c,
                                                                     const uint8_t *p, size_t n)
{
    while (n >= 3 * 8 * HW_WORDS_MIN) {
        size_t w = clmul_words(n), len = 8 * w;
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < len; i += 8) {
            a = _mm_crc32_u64(a, load64(p + i));
            b = _mm_crc32_u64(b, load64(p + len + i));
            d = _mm_crc32_u64(d, load64(p + 2 * len + i));
        }
        c = clmul_join(a, b, d, w);
        p += 3 * len;
        n -= 3 * len;
    }
    uint64_t x = c;
    for (; n >= 8; n -= 8, p += 8)
        x = _mm_crc32_u64(x, load64(p));
    c = (uint32_t)x;
    if (n >= 4) {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        c = _mm_crc32_u32(c, v);
        p += 4;
        n -= 4;
    }
    for (; n; n--, p++)
        c = _mm_crc32_u8(c, *p);
    return c;
}

/*
 * The register after the header's covered words up to type (offset to
 * key_len), built in registers from its fields (each loaded once; the
 * claim fields with relaxed atomics, as frame_crc_generic says why) and
 * fed straight to the instruction: a copy stored field by field and
 * loaded back in words would stall on store forwarding twice a frame.
 * x86-64 is little-endian: a word's bytes are the fields' bytes in memory
 * order.
 */
__attribute__((target("sse4.2"))) static inline uint64_t hw_header_crc(const struct evb_frame *f)
{
    uint64_t off = __atomic_load_n(&f->offset, __ATOMIC_RELAXED);
    uint64_t claim_len = __atomic_load_n(&f->claim_len, __ATOMIC_RELAXED);
    uint64_t claim_events = __atomic_load_n(&f->claim_events, __ATOMIC_RELAXED);
    uint64_t c = 0xFFFFFFFFu;
    c = _mm_crc32_u64(c, off);
    c = _mm_crc32_u64(c, f->timestamp_ns);
    c = _mm_crc32_u64(c, f->producer_seq);
    c = _mm_crc32_u64(c, (uint64_t)f->len | claim_len << 32);
    c = _mm_crc32_u64(c, (uint64_t)f->producer_id | claim_events << 32 |
                             (uint64_t)f->key_len << 48);
    return c;
}

/* evb_frame_crc on the PCLMULQDQ path. */
__attribute__((target("sse4.2,pclmul"))) static uint32_t hw_frame_crc(const struct evb_frame *f,
                                                                      uint32_t len)
{
    uint64_t c = hw_header_crc(f);
    const size_t rest = offsetof(struct evb_frame, type);
    return ~hw_clmul_raw((uint32_t)c, (const uint8_t *)f + rest, len - rest);
}

static inline void store64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, sizeof v);
}

/*
 * hw_clmul_raw over N bytes at SRC that are stored at DST as they go:
 * each word is loaded once, into the checksum and into the store, so the
 * sum is of the bytes written whatever another thread does to SRC
 * meanwhile, and nothing just stored is loaded back: a load of bytes
 * still in the store queue, whose lines in a ring larger than the cache
 * are on their way from memory, waited for them (most of a durable
 * producer's profile sat on that load, perf/RESULTS.md, sixth session).
 */
__attribute__((target("sse4.2,pclmul"))) static uint32_t hw_clmul_copy(uint32_t c, uint8_t *dst,
                                                                      const uint8_t *src,
                                                                      size_t n)
{
    while (n >= 3 * 8 * HW_WORDS_MIN) {
        size_t w = clmul_words(n), len = 8 * w;
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < len; i += 8) {
            uint64_t x = load64(src + i), y = load64(src + len + i),
                     z = load64(src + 2 * len + i);
            a = _mm_crc32_u64(a, x);
            b = _mm_crc32_u64(b, y);
            d = _mm_crc32_u64(d, z);
            store64(dst + i, x);
            store64(dst + len + i, y);
            store64(dst + 2 * len + i, z);
        }
        c = clmul_join(a, b, d, w);
        src += 3 * len;
        dst += 3 * len;
        n -= 3 * len;
    }
    uint64_t x = c;
    for (; n >= 8; n -= 8, src += 8, dst += 8) {
        uint64_t v = load64(src);
        x = _mm_crc32_u64(x, v);
        store64(dst, v);
    }
    c = (uint32_t)x;
    for (; n; n--, src++, dst++) {
        uint8_t v = *src;
        c = _mm_crc32_u8(c, v);
        *dst = v;
    }
    return c;
}

/* evb_frame_copy_crc on the PCLMULQDQ path: the header as hw_frame_crc,
 * type and flags from their fields, the key and its padding (written by
 * the caller just before, small) from the frame, then the value. */
__attribute__((target("sse4.2,pclmul"))) static uint32_t hw_frame_copy_crc(struct evb_frame *f,
                                                                           uint8_t *dst,
                                                                           const void *src,
                                                                           uint32_t n)
{
    uint64_t c = hw_header_crc(f);
    /* One instruction each: loaded as one word (as the compiler merges
     * them otherwise), they would wait on two stores. */
    c = _mm_crc32_u16((uint32_t)c, f->type);
    c = _mm_crc32_u16((uint32_t)c, f->flags);
    const uint8_t *k = (const uint8_t *)f + EVB_FRAME_HDR;
    uint32_t c32 = (uint32_t)c;
    if ((uint8_t *)dst > k)
        c32 = hw_clmul_raw(c32, k, (size_t)((uint8_t *)dst - k));
    return ~hw_clmul_copy(c32, dst, src, n);
}
#endif

static uint32_t frame_crc_generic(const struct evb_frame *f, uint32_t len);

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

    /* shift_k[1] = x^31 (bit 0, reflected); each next one 64 x's on. */
    uint32_t k = 0x80000000u; /* x^0 */
    for (int i = 0; i < 31; i++)
        k = (k >> 1) ^ (k & 1 ? POLY : 0);
    for (uint32_t w = 1; w <= 2 * HW_WORDS_MAX; w++) {
        shift_k[w] = k;
        for (int i = 0; i < 64; i++)
            k = (k >> 1) ^ (k & 1 ? POLY : 0);
    }

    raw_impl = sw_raw;
    frame_impl = frame_crc_generic;
#if defined(__x86_64__)
    __builtin_cpu_init();
    hw_ok = __builtin_cpu_supports("sse4.2");
    clmul_ok = hw_ok && __builtin_cpu_supports("pclmul");
    if (hw_ok)
        raw_impl = hw_raw;
    if (clmul_ok) {
        raw_impl = hw_clmul_raw;
        frame_impl = hw_frame_crc;
    }
#endif
}

uint32_t evb_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
    return ~raw_impl(~crc, p, n);
}

/* evb_frame_crc from a copy of the header: the table and hw_raw paths. */
static uint32_t frame_crc_generic(const struct evb_frame *f, uint32_t len)
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
    uint32_t crc = raw_impl(~0u, (const uint8_t *)&h + from, hole - from);
    return ~raw_impl(crc, (const uint8_t *)f + rest, len - rest);
}

uint32_t evb_frame_crc(const struct evb_frame *f, uint32_t len)
{
    pthread_once(&init_once, init);
    return frame_impl(f, len);
}

uint32_t evb_frame_copy_crc(struct evb_frame *f, void *dst, const void *src, uint32_t n)
{
    pthread_once(&init_once, init);
#if defined(__x86_64__)
    if (clmul_ok)
        return hw_frame_copy_crc(f, dst, src, n);
#endif
    if (n)
        memcpy(dst, src, n);
    return frame_impl(f, f->len);
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
    if (clmul_ok)
        return ~hw_clmul_raw(~crc, p, n);
    if (hw_ok)
        return ~hw_raw(~crc, p, n);
#endif
    return ~sw_raw(~crc, p, n);
}

uint32_t evb_crc32c_hw_tables(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
#if defined(__x86_64__)
    if (hw_ok)
        return ~hw_raw(~crc, p, n);
#endif
    return ~sw_raw(~crc, p, n);
}

uint32_t evb_frame_crc_generic(const struct evb_frame *f, uint32_t len)
{
    pthread_once(&init_once, init);
    return frame_crc_generic(f, len);
}

bool evb_crc32c_has_clmul(void)
{
    pthread_once(&init_once, init);
    return clmul_ok;
}

bool evb_crc32c_has_hw(void)
{
    pthread_once(&init_once, init);
    return hw_ok;
}
