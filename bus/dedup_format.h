/*
 * dedup_format.h - every byte of consumers/<name>.dup, a named consumer's
 * duplicate tables (EVB_CONSUMER_DEDUP), beside its cursor file <name>.cur
 * (in the data directory for durable topics, else in tmpfs), and of
 * consumers/<group>.gdup, a partition group's, beside <group>.grp. dedup.c
 * makes, checks, loads and stores them; a named consumer's is owned by
 * it, a group's is trusted as the group file is (group.c). No name can
 * give both: a consumer's files end in .cur and .dup, a group's in .grp
 * and .gdup (before this, a group's was <group>.grp.dup, the same file as
 * named consumer <group>.grp's).
 *
 *   0     +-----------------------------+
 *         | magic          u64          |  EVB_DUP_MAGIC, stored last
 *   8     | version        u32          |  EVB_DUP_VERSION
 *   12    | partitions     u32          |  the topic's
 *   16    | format         u64          |  EVB_DUP_FORMAT_WORD
 *   24    | producers      u32          |  entries per table (EVB_DEDUP_PRODUCERS)
 *   28    | reserved (zero) to 64       |
 *   64    +-----------------------------+
 *         | partition 0: slot 0, slot 1 |  2 x EVB_DUP_SLOT_BYTES
 *         | partition 1: ...            |
 *         +-----------------------------+
 *
 *   slot:  0  from     the committed positions this table is right for:
 *          8  to       every position in [from, to]; EVB_POS_NONE in
 *                      from or to: an empty slot, or one being written
 *          16 gen      counts rewrites of the partition's tables
 *          24 count    entries in use (<= producers)
 *          28 zero
 *          32 check    XXH3_64bits_withSeed over from, to, gen, count, zero
 *                      and the entries in use, seed: the slot's index in
 *                      the file (2 x partition + 0 or 1)
 *          40 entry[producers]: id u32, zero u32, seq u64 (the highest seen),
 *                      used u64 (recency: larger is more recent)
 *
 * Two slots per partition so that a commit never rewrites the table the
 * cursor file still points at: every commit writes the table as of the
 * new position into the other slot (from and to cleared first, from set
 * last: Y1), then stores the cursor (cursor_file.c, K2). A crash between
 * the two leaves the cursor at the old position, which the old slot still
 * covers; a crash inside the slot's rewrite leaves its from EVB_POS_NONE.
 * An opener takes, per partition, the slot covering the position it starts
 * at (the newer when both do), or none: an empty table (a commit made
 * without EVB_CONSUMER_DEDUP, a start elsewhere).
 *
 * So every slot whose from is set is whole, unless someone is rewriting it
 * right now: for a group's table, a member expelled while busy can still
 * finish a save it began before the new owner loads (dedup.c, Z1, Z2,
 * and which slot that can be). A loader therefore copies a slot and reads
 * from, to and gen again: a copy they did not stay the same around is
 * read again, a few times, then taken for a slot being rewritten (as a
 * from or to of EVB_POS_NONE). A copy that stayed the same and fails its
 * check is damage, never a torn write: the opener refuses the file
 * (-EBADMSG, naming it) if either slot of a partition it loads fails,
 * whichever one it would have taken, since a damaged newer slot would
 * otherwise hand it the older table. Damage that writes EVB_POS_NONE
 * itself into from or to makes the slot read as empty: duplicates it
 * held are delivered again, no event is dropped.
 *
 * An opener checks: size and magic (-EBADMSG), version and format word
 * (-EPROTO), partitions and producers (-EBADMSG), and in both slots of a
 * partition it loads: count and check (-EBADMSG; removing the file starts
 * the tables empty).
 *
 * Version history:
 *   1  a CRC32C over count and entries only; a commit that changed no
 *      table raised the current slot's `to` in place
 *   2  the check covers the whole slot; every commit writes the other slot
 * A version 1 file is refused (-EPROTO); removing it starts the tables
 * empty.
 */
#ifndef EVB_DEDUP_FORMAT_H
#define EVB_DEDUP_FORMAT_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define EVB_DUP_MAGIC 0x3130505544425645ull /* "EVBDUP01" little-endian */
#define EVB_DUP_VERSION 2u
#define EVB_DUP_HDR_BYTES 64u
#define EVB_DUP_PRODUCERS 64u  /* EVB_DEDUP_PRODUCERS (evbus.h) */
#define EVB_DUP_ENTRY_BYTES 24u
#define EVB_DUP_SLOT_HDR_BYTES 40u
#define EVB_DUP_SLOT_BYTES (EVB_DUP_SLOT_HDR_BYTES + EVB_DUP_PRODUCERS * EVB_DUP_ENTRY_BYTES)

#define EVB_DUP_FORMAT_WORD                                                      \
    ((uint64_t)EVB_DUP_VERSION << 48 | (uint64_t)EVB_DUP_HDR_BYTES << 32 |       \
     (uint64_t)EVB_DUP_SLOT_BYTES << 8 | (uint64_t)EVB_DUP_ENTRY_BYTES)

struct evb_dup_entry {
    uint32_t id;                  /* 0: a stable producer id */
    uint32_t zero_;               /* 4 */
    uint64_t seq;                 /* 8: the highest sequence seen from it */
    uint64_t used;                /* 16: recency */
};

struct evb_dup_slot {
    _Atomic uint64_t from;        /* 0: Y1 (dedup.c) */
    _Atomic uint64_t to;          /* 8 */
    uint64_t gen;                 /* 16 */
    uint32_t count;               /* 24 */
    uint32_t zero_;               /* 28 */
    uint64_t check;               /* 32 */
    struct evb_dup_entry e[EVB_DUP_PRODUCERS]; /* 40 */
};

struct evb_dup_hdr {
    _Atomic uint64_t magic;       /* 0: stored last at creation (Y2) */
    uint32_t version;             /* 8 */
    uint32_t partitions;          /* 12 */
    uint64_t format;              /* 16 */
    uint32_t producers;           /* 24 */
    uint8_t reserved_[36];        /* 28: zero */
    struct evb_dup_slot s[];      /* 64: partition p's at 2p and 2p + 1 */
};

#define EVB_DUP_AT(type, field, off)                                             \
    static_assert(offsetof(struct type, field) == (off),                         \
                  #type "." #field " moved: bump EVB_DUP_VERSION")
EVB_DUP_AT(evb_dup_hdr, version, 8);
EVB_DUP_AT(evb_dup_hdr, partitions, 12);
EVB_DUP_AT(evb_dup_hdr, format, 16);
EVB_DUP_AT(evb_dup_hdr, producers, 24);
EVB_DUP_AT(evb_dup_hdr, s, EVB_DUP_HDR_BYTES);
EVB_DUP_AT(evb_dup_slot, to, 8);
EVB_DUP_AT(evb_dup_slot, gen, 16);
EVB_DUP_AT(evb_dup_slot, count, 24);
EVB_DUP_AT(evb_dup_slot, zero_, 28);
EVB_DUP_AT(evb_dup_slot, check, 32);
EVB_DUP_AT(evb_dup_slot, e, EVB_DUP_SLOT_HDR_BYTES);
EVB_DUP_AT(evb_dup_entry, seq, 8);
EVB_DUP_AT(evb_dup_entry, used, 16);
static_assert(sizeof(struct evb_dup_entry) == EVB_DUP_ENTRY_BYTES, "entry size");
static_assert(sizeof(struct evb_dup_slot) == EVB_DUP_SLOT_BYTES, "slot size");

static inline size_t evb_dup_file_bytes(uint32_t nparts)
{
    return EVB_DUP_HDR_BYTES + (size_t)nparts * 2 * EVB_DUP_SLOT_BYTES;
}

#endif /* EVB_DEDUP_FORMAT_H */
