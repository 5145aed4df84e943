/*
 * producer_state_format.h - every byte of <bus>/<topic>/producers/<id>.seq,
 * the state of one stable producer id on one topic (producer_state.c maps,
 * checks and locks it; producer.c keeps it current while publishing).
 *
 *   0     +-----------------------------+
 *         | magic          u64          |  EVB_PST_MAGIC, stored last
 *   8     | version        u32          |  EVB_PST_VERSION
 *   12    | partitions     u32          |  the topic's
 *   16    | format         u64          |  EVB_PST_FORMAT_WORD
 *   24    | producer_id    u32          |  the stable id (>= 0x80000000)
 *   28    | learned        u32          |  EVB_PST_LEARNED: entries are right
 *         |                             |  for the log; anything else: not yet
 *   32    | reserved (zero) to 64       |
 *   64    +-----------------------------+
 *         | entry[0]      104 bytes     |  per partition, below
 *         | ...                         |
 *         +-----------------------------+
 *
 *   entry: 0  cur      which record holds the state: gen << 32 | the low
 *                      half of that record's check (so a cur altered to
 *                      name the other record does not match it); one
 *                      8-byte store switches records
 *          8  r[0]     record of even gens
 *          56 r[1]     record of odd gens
 *   record: 0  gen         its generation (cur's gen in the low 32 bits)
 *           8  claimed     next sequence after the highest any claim took
 *           16 committed   next sequence after the highest committed
 *           24 pending_pos position of the newest claim's first frame, or
 *                          EVB_POS_NONE until that claim is made
 *           32 pending_seq that frame's sequence
 *           40 check       XXH3_64bits_withSeed(bytes 0..40, seed)
 *   seed: producer_id << 32 | partition, so a record or entry copied from
 *         another partition or id does not pass.
 *
 * Life of the file. It lives in tmpfs with the topic's rings and is made
 * whole under a temporary name (file_create.c). Its holder (the one live
 * producer handle of the id: an OFD write lock on the whole file, which the
 * kernel drops when the holder dies) is its only writer. Per publish run it
 * stores claimed, pending_seq and pending_pos = NONE before the claim,
 * pending_pos after it, committed after the commit (N1, producer_state.c).
 * A new holder finds committed == claimed, or one claim whose fate it
 * reads from the log at pending_pos (pending_pos NONE: the claim never got
 * a position to commit at, so it did not).
 *
 * Each of those updates writes a whole record into the record cur does
 * not name, then stores cur (N1). A holder killed mid-update leaves cur
 * naming the previous record, still whole: the state reads as before the
 * update or after it, never half of each. So a record cur names that
 * fails its check, or a cur not matching it, is damage, not a crash:
 * the opener relearns that partition from the log when the log still holds
 * the partition's whole history, and refuses the file (-EBADMSG, naming it)
 * otherwise. The record cur does not name is never read.
 *
 * learned is 0 in a file made for a durable topic, until its first holder
 * has read the disk log (the topic may have been rebuilt from disk, with
 * this id's events in it) and stored the entries; a holder that dies
 * before leaves 0, and the next one reads the log again. A topic that is
 * not durable has no log older than its rings: learned starts at
 * EVB_PST_LEARNED. A damaged learned only costs a read of the log (what
 * the log holds is raised to, never lowered to).
 *
 * An opener checks (producer_state.c): size and magic (-EBADMSG), version
 * and format word (-EPROTO), partitions and producer_id (-EBADMSG), then
 * per entry cur and its record's check, and committed <= claimed <= 2^63
 * (EVB_SEQ_LIMIT) in it (damage, as above).
 *
 * Version history:
 *   1  one entry of four words per partition, updated in place, unchecked
 *   2  two checked records per entry and cur; learned is a magic value
 * A version 1 file is refused (-EPROTO): it lives in tmpfs, so it is gone
 * at the next boot; before then, remove it while no producer of the id
 * runs (its sequences are then relearned from the log, or start at 0).
 */
#ifndef EVB_PRODUCER_STATE_FORMAT_H
#define EVB_PRODUCER_STATE_FORMAT_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define EVB_PST_MAGIC 0x3154535042564545ull /* "EEVBPST1" little-endian */
#define EVB_PST_VERSION 2u
#define EVB_PST_HDR_BYTES 64u
#define EVB_PST_ENTRY_BYTES 104u
#define EVB_PST_REC_BYTES 48u
#define EVB_PST_LEARNED 0x4e524c45u /* "ELRN" */

/* Version, header and entry sizes folded into one word (as the ring's). */
#define EVB_PST_FORMAT_WORD                                                      \
    ((uint64_t)EVB_PST_VERSION << 48 | (uint64_t)EVB_PST_HDR_BYTES << 16 |       \
     (uint64_t)EVB_PST_REC_BYTES << 8 | (uint64_t)EVB_PST_ENTRY_BYTES)

/* Written whole by the holder while cur names the other record (N1). */
struct evb_pst_rec {
    uint64_t gen;                 /* 0 */
    uint64_t claimed;             /* 8 */
    uint64_t committed;           /* 16 */
    uint64_t pending_pos;         /* 24 */
    uint64_t pending_seq;         /* 32 */
    uint64_t check;               /* 40: over bytes 0..40 */
};

struct evb_pst_entry {
    _Atomic uint64_t cur;         /* 0: gen << 32 | (u32)check, stored last (N1) */
    struct evb_pst_rec r[2];      /* 8: r[gen & 1] */
};

struct evb_pst_hdr {
    _Atomic uint64_t magic;       /* 0: stored last at creation */
    uint32_t version;             /* 8 */
    uint32_t partitions;          /* 12 */
    uint64_t format;              /* 16 */
    uint32_t producer_id;         /* 24 */
    _Atomic uint32_t learned;     /* 28: the holder sets it once the entries match the log */
    uint8_t reserved_[32];        /* 32: zero */
    struct evb_pst_entry e[];     /* 64 */
};

#define EVB_PST_AT(type, field, off)                                             \
    static_assert(offsetof(struct type, field) == (off),                         \
                  #type "." #field " moved: bump EVB_PST_VERSION")
EVB_PST_AT(evb_pst_hdr, version, 8);
EVB_PST_AT(evb_pst_hdr, partitions, 12);
EVB_PST_AT(evb_pst_hdr, format, 16);
EVB_PST_AT(evb_pst_hdr, producer_id, 24);
EVB_PST_AT(evb_pst_hdr, learned, 28);
EVB_PST_AT(evb_pst_hdr, e, EVB_PST_HDR_BYTES);
EVB_PST_AT(evb_pst_entry, r, 8);
EVB_PST_AT(evb_pst_rec, claimed, 8);
EVB_PST_AT(evb_pst_rec, committed, 16);
EVB_PST_AT(evb_pst_rec, pending_pos, 24);
EVB_PST_AT(evb_pst_rec, pending_seq, 32);
EVB_PST_AT(evb_pst_rec, check, 40);
static_assert(sizeof(struct evb_pst_rec) == EVB_PST_REC_BYTES, "record size");
static_assert(sizeof(struct evb_pst_entry) == EVB_PST_ENTRY_BYTES, "entry size");

static inline size_t evb_pst_file_bytes(uint32_t nparts)
{
    return EVB_PST_HDR_BYTES + (size_t)nparts * EVB_PST_ENTRY_BYTES;
}

#endif /* EVB_PRODUCER_STATE_FORMAT_H */
