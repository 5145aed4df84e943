/*
 * bus_meta_format.h - every byte of <bus>/bus.meta, the bus-wide counters
 * page every process of a bus maps shared (bus.c maps and checks it,
 * producer.c draws producer ids from it).
 *
 *   0     +-----------------------------+
 *         | magic          u64          |  EVB_BUS_MAGIC, stored last
 *   8     | version        u32          |  EVB_BUS_VERSION
 *   12    | pad            u32          |  zero
 *   16    | next_producer_id u32        |  last producer id handed out
 *   20    | pad            u32          |  zero
 *   24    | format         u64          |  EVB_BUS_FORMAT_WORD
 *   32    +-----------------------------+
 *         | reserved (zero)             |
 *   4096  +-----------------------------+
 *
 * Life of the file: the first evb_bus_open() of a bus creates it empty and
 * grows it to 4096 zero bytes (posix_fallocate sets the size in one step,
 * so a file is 0 or 4096 bytes long, never in between). Zero magic means
 * "not ready": an opener that finds it writes version and format, then
 * the magic with release (U1). Racing first openers write identical
 * values. An opener that finds a magic checks it first, then the rest
 * (bus.c, map_meta):
 *
 *   size not 0 or 4096, or wrong magic   -EBADMSG  (not a bus.meta)
 *   version not 1 or 2, format word      -EPROTO   (another build's bus)
 *   not this build's
 *
 * A newer version than this build's is refused, naming both versions:
 * its layout may differ, so this build cannot know what it would clobber.
 *
 * Version history:
 *   1  magic, version, next_producer_id at 16; zero where the format is
 *   2  format word at 24, in what was zero; nothing moved
 * A version 1 page has version 2's layout, so it is read as is and
 * upgraded in place by the opener that finds it: format word, then the
 * version with release (U2 in bus.c); next_producer_id stays where it was,
 * so ids stay unique. (For a few commits version 2 put the format word at
 * 16 and the id at 24; such a page shows a wrong format word at 24 and is
 * refused.)
 */
#ifndef EVB_BUS_META_FORMAT_H
#define EVB_BUS_META_FORMAT_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Cross-process atomics must not fall back to a process-local lock. */
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

#define EVB_BUS_MAGIC 0x314154454d425645ull /* "EVBMETA1" little-endian */
#define EVB_BUS_VERSION 2u
#define EVB_BUS_VERSION_1 1u
#define EVB_BUS_META_BYTES 4096u
#define EVB_BUS_META_USED 32u       /* bytes of fields; the rest is reserved */
#define EVB_BUS_META_ID_OFFSET 16u  /* next_producer_id */
#define EVB_BUS_META_FORMAT_OFFSET 24u

/*
 * Version, file size, used bytes and the producer id's offset and width
 * folded into one word, as the ring's EVB_RING_FORMAT_WORD: a build that
 * lays the page out differently refuses the file even if someone forgot
 * to bump the version.
 */
#define EVB_BUS_FORMAT_WORD                                                      \
    ((uint64_t)EVB_BUS_VERSION << 48 | (uint64_t)EVB_BUS_META_BYTES << 24 |      \
     (uint64_t)EVB_BUS_META_USED << 16 | (uint64_t)EVB_BUS_META_ID_OFFSET << 8 | \
     (uint64_t)sizeof(uint32_t))

struct evb_bus_meta {
    /* 0: EVB_BUS_MAGIC. Written once by the first opener after version
     * and format (release, U1); every opener loads it with acquire first
     * and reads the other identity fields only when it is set. */
    _Atomic uint64_t magic;
    /* 8: EVB_BUS_VERSION, written by the first opener before magic (U1);
     * 1 in a version 1 page until an opener rewrites it after the format
     * word, with release (U2). */
    _Atomic uint32_t version;
    uint32_t pad0_;              /* 12: zero */
    /* 16: the last producer id handed out (ids start at 1). Every
     * evb_producer_open() of any process fetch_add's it, relaxed: the
     * id only has to be unique, it publishes nothing. */
    _Atomic uint32_t next_producer_id;
    uint32_t pad1_;              /* 20: zero */
    /* 24: EVB_BUS_FORMAT_WORD, written before magic (U1), or before the
     * version when a version 1 page (0 here) is upgraded (U2). */
    _Atomic uint64_t format;
    uint8_t reserved_[EVB_BUS_META_BYTES - EVB_BUS_META_USED]; /* 32: zero */
};

/* Offsets are ABI: a move here must bump EVB_BUS_VERSION. */
#define EVB_BUS_META_AT(field, off)                                              \
    static_assert(offsetof(struct evb_bus_meta, field) == (off),                 \
                  "evb_bus_meta." #field " moved: bump EVB_BUS_VERSION")
static_assert(sizeof(struct evb_bus_meta) == EVB_BUS_META_BYTES, "bus.meta size");
EVB_BUS_META_AT(magic, 0);
EVB_BUS_META_AT(version, 8);
EVB_BUS_META_AT(pad0_, 12);
EVB_BUS_META_AT(next_producer_id, EVB_BUS_META_ID_OFFSET);
EVB_BUS_META_AT(pad1_, 20);
EVB_BUS_META_AT(format, EVB_BUS_META_FORMAT_OFFSET);
EVB_BUS_META_AT(reserved_, EVB_BUS_META_USED);
static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "producer id width");

#endif /* EVB_BUS_META_FORMAT_H */
