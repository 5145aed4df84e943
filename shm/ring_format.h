/*
 * ring_format.h - every byte of a partition ring file (DESIGN.md section 3).
 *
 * A ring file is one MAP_SHARED mapping:
 *
 *   0        +-----------------------------+
 *            | evb_ring_hdr   (1 KiB)      |  identity, tail, doorbell, counters,
 *            |                             |  exclusive producer
 *   1 KiB    +-----------------------------+
 *            | producer slots (64 x 128 B) |  owner, pending claim (intent)
 *   9 KiB    +-----------------------------+
 *            | reader slots   (64 x 128 B) |  owner, kind, cursor, counters
 *   17 KiB   +-----------------------------+
 *            | (zero up to 20 KiB)         |
 *   20 KiB   +-----------------------------+
 *            | data: capacity bytes        |  frames, position p at p & (cap-1)
 *            +-----------------------------+
 *
 * A frame (8-byte aligned, never wraps; a PAD frame fills a ring end;
 * this version pads every data frame to a whole number of 64-byte lines,
 * flag EVB_FRAME_F_LINE_PADDED, so two frames never share a cache line):
 *
 *   0  stamp         pos|EVB_STAMP_DATA when committed, pos|EVB_STAMP_PAD when
 *                    padded; anything else: not yet committed
 *   8  offset        event index (pads: the next offset, events they void)
 *   16 timestamp_ns  CLOCK_REALTIME at claim
 *   24 producer_seq
 *   32 len           header + key + value bytes (unaligned)
 *   36 claim_len     first frame of a claim: aligned bytes of the claim's
 *                    data part; 0 in later frames of a batch
 *   40 producer_id
 *   44 claim_events  first frame of a claim: events in the claim
 *   46 key_len
 *   48 crc32c        durable rings: CRC32C of bytes [8,48) and [52,len)
 *                    (evb_frame_crc), so recovery can tell a torn frame;
 *                    0 on rings that are not durable
 *   52 type          application type
 *   54 flags         EVB_FRAME_F_*
 *   56 key           key_len bytes
 *   56 + round_up(key_len, 8)
 *      value         len - that bytes; 8-aligned in the ring and in every
 *                    segment, so a value can be a struct written in place
 *                    (flag EVB_FRAME_F_VALUE_ALIGNED; version 3 on). A
 *                    frame without the flag (version 2, kept in segments
 *                    on disk) has its value right after the key.
 *   round_up(len, 8), or round_up(len, 64) with EVB_FRAME_F_LINE_PADDED
 *      next frame    the padding between holds zeros (this version's
 *                    producers write them; outside the checksum, and no
 *                    reader looks)
 *
 * Positions are 8-aligned, so the low three bits of a stamp are free to say
 * what was committed there. A zeroed file has no valid stamp (0 is neither
 * 0|DATA nor 0|PAD), and a stale stamp from an older lap names another
 * position, so no cleaning between laps is needed.
 */
#ifndef EVB_RING_FORMAT_H
#define EVB_RING_FORMAT_H

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"

/* Cross-process atomics must not fall back to a process-local lock. */
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

#define EVB_RING_MAGIC 0x31474e4952425645ull /* "EVBRING1" little-endian */
/* 3: values start 8-aligned after the key (EVB_FRAME_F_VALUE_ALIGNED).
 * 4: producers may commit with a plain store (producer slot words
 * committing, robbing, commit_mode; claim.c X1), which a padder of an
 * older build would race with its CAS, and an exclusive producer moves the
 * tail with a plain store (header word exclusive, X3), which an older
 * producer's CAS would race: such builds must not share a ring.
 * 5: a lone shared producer holds the tail lease (header word tail_lease,
 * slot word tail_moving; claim.c X4) and moves the tail with a plain
 * store, which a version 4 producer attaching would not revoke.
 * 6: data frames are padded to whole 64-byte lines (EVB_FRAME_F_LINE_PADDED),
 * which a version 5 reader refuses as unknown flags (in segments too: an
 * older build reads a log only up to the first such frame, as a version 2
 * build did with version 3's frames).
 * A ring of another version is refused (-EPROTO); segments keep their
 * frames, which say their own layout in their flags. */
#define EVB_RING_VERSION 6u
#define EVB_LINE 128u
#define EVB_FRAME_ALIGN 8u
#define EVB_FRAME_HDR 56u
/* What a line-padded frame is padded to: part of the format, whatever the
 * build's cache line. */
#define EVB_FRAME_LINE 64u
#define EVB_RING_MIN_CAPACITY (64u * 1024u)
#define EVB_RING_MAX_CAPACITY (1ull << 34)
#define EVB_RING_PRODUCER_SLOTS 64u
#define EVB_RING_READER_SLOTS 64u
#define EVB_RING_DATA_OFFSET (20u * 1024u)

/* EVB_LINE is part of the format (it is in the format word), so it stays
 * 128 whatever the build; it only has to be a whole number of the
 * architecture's false-sharing distance for the padding to do its job. */
static_assert(EVB_LINE % EVB_CACHE_LINE == 0, "ring lines must not share a cache line");

/* evb_ring_hdr.flags */
#define EVB_RING_F_DURABLE 1u /* gated by the flusher, not by readers */

/* evb_frame.flags */
#define EVB_FRAME_F_VALUE_ALIGNED 1u /* value at 56 + round_up(key_len, 8) */
#define EVB_FRAME_F_LINE_PADDED 2u   /* next frame at round_up(len, 64) (version 6 on) */
#define EVB_FRAME_F_KNOWN (EVB_FRAME_F_VALUE_ALIGNED | EVB_FRAME_F_LINE_PADDED)

#define EVB_STAMP_DATA 1u
#define EVB_STAMP_PAD 2u
#define EVB_STAMP_MASK 7u
#define EVB_POS_NONE UINT64_MAX

/*
 * Sizes and alignments folded into one word (as LMDB's lock format): two
 * builds that disagree on the layout refuse each other's rings.
 */
#define EVB_RING_FORMAT_WORD                                                     \
    ((uint64_t)EVB_RING_VERSION << 48 | (uint64_t)EVB_FRAME_HDR << 32 |          \
     (uint64_t)EVB_LINE << 16 | (uint64_t)EVB_RING_PRODUCER_SLOTS << 8 |         \
     (uint64_t)EVB_RING_READER_SLOTS)

/* The ring's tail: the next position to claim and the offset it will get.
 * Claims advance both in one 16-byte compare-and-swap (claim.c). */
struct evb_ring_tail {
    alignas(16) _Atomic uint64_t pos; /* producers, CAS16; readers load */
    _Atomic uint64_t offset;          /* moves with pos, same CAS16 */
};

struct evb_ring_hdr {
    /* line 0: identity, written once by the creator before magic. */
    _Atomic uint64_t magic;      /* 0: EVB_RING_MAGIC, stored last (release) */
    uint64_t format;             /* 8: EVB_RING_FORMAT_WORD */
    uint64_t capacity;           /* 16: data bytes, power of two */
    uint32_t max_frame_bytes;    /* 24: largest frame incl. header, aligned */
    uint32_t partition;          /* 28: partition number in its topic */
    uint64_t created_ns;         /* 32: CLOCK_REALTIME at creation (also when
                                    rebuilt from disk); with base_pos it
                                    names the ring's incarnation, which
                                    receipts carry (evb_ring_incarnation,
                                    ring.h): written once, so every ring
                                    ever made has one */
    uint64_t base_pos;           /* 40: first position of this ring (a ring
                                    rebuilt from disk starts where the log
                                    ended); no frame below it is held */
    uint64_t base_offset;        /* 48: offset of the event at base_pos */
    uint32_t flags;              /* 56: EVB_RING_F_* */
    uint32_t pad0a_;
    uint8_t pad0_[EVB_LINE - 64];

    /* line 1: the tail, hammered by producers. */
    struct evb_ring_tail tail;   /* 128 */
    uint8_t pad1_[EVB_LINE - 16];

    /* line 2: the doorbell. Readers about to sleep set their bit in
     * waiters then sleep on bell; a producer that sees a bit bumps bell
     * and wakes (doorbell.c). */
    _Atomic uint64_t waiters;    /* 256: bit i = reader slot i may sleep */
    _Atomic uint32_t bell;       /* 264: futex word */
    uint32_t pad2a_;
    uint8_t pad2_[EVB_LINE - 16];

    /* line 3: durability (bus/flusher.c). The flusher stores flushed and
     * durable with release; producers of a durable ring gate on flushed;
     * sync waiters sleep on sync_bell (Dekker with sync_waiters, like the
     * doorbell). */
    _Atomic uint64_t flushed;    /* 384: positions below are written to disk */
    _Atomic uint64_t durable;    /* 392: positions below are fdatasync'ed */
    _Atomic uint32_t sync_bell;  /* 400: futex word, bumped as durable moves */
    _Atomic uint32_t sync_waiters; /* 404: threads asleep or about to sleep */
    _Atomic uint64_t log_start_pos;    /* 408: oldest position retained on disk */
    _Atomic uint64_t log_start_offset; /* 416: its offset */
    _Atomic uint64_t flusher;    /* 424: owner word of the flushing process; statistic */
    _Atomic uint64_t fsyncs;     /* 432: fdatasyncs completed; statistic */
    _Atomic int32_t flush_error; /* 440: last write/fdatasync error (-errno), 0 ok */
    _Atomic uint32_t flush_bell; /* 444: futex word, bumped as flushed moves */
    /* 448: owner words of the processes whose threads are running an
     * fdatasync for sync waiters (bus/durable/durable_wait.c, S3; this
     * build uses the first only); 0: free. Zero padding in rings of older
     * builds. */
    _Atomic uint64_t sync_lead[2];
    /* 464: sync waiters that will lead their round (S3): the flusher
     * leaves the fdatasync to them. Zero padding in older rings. */
    _Atomic uint32_t lead_waiters;
    uint32_t pad3a_;
    /* 472: CLOCK_MONOTONIC ns of a sync waiter's last sign of life
     * (durable_wait.c, S4): the two counts above with no waiter alive
     * behind them for EVB_SYNC_BEAT_STALE_NS were left by killed waiters,
     * and a flusher zeroes them. Zero padding in older rings; waiters of
     * older builds do not beat, so their counts read as stale and are
     * zeroed, which costs them only the flusher's haste (and a count their
     * plain decrement wraps after that is zeroed at once). */
    _Atomic uint64_t sync_beat;
    uint8_t pad3_[EVB_LINE - 96];

    /* line 4: rare-event counters; statistics, relaxed. */
    _Atomic uint64_t aborted;        /* 512: events voided by pads */
    _Atomic uint64_t padded_dead;    /* 520: holes of dead producers padded */
    _Atomic uint64_t padded_stalled; /* 528: claims of stalled producers padded */
    _Atomic uint64_t reaped_readers; /* 536: dead reader slots freed */
    _Atomic uint64_t reaped_producers; /* 544: dead producer slots freed */
    _Atomic uint64_t published_retired; /* 552: not read or written (published is
                                           derived from the tail, bus/stat.c) */
    _Atomic uint64_t recovered_dropped; /* 560: torn bytes cut off the log at rebuild */
    _Atomic uint64_t retention_unconsumed; /* 568: log bytes retention removed before a
                                              named consumer committed past them */
    uint8_t pad4_[EVB_LINE - 64];

    /* line 5: producers' arrangement, read at attach only. */
    _Atomic uint64_t exclusive;  /* 640: owner word of the process whose
                                    exclusive producer alone moves the tail
                                    (claim.c X3), or 0 */
    _Atomic uint64_t tail_lease; /* 648: the tail lease of a lone shared
                                    producer (claim.c X4): bits 0-7 its
                                    slot index + 1 (0: free), 8-62 a
                                    generation counted per take, bit 63
                                    EVB_LEASE_REVOKED (taken back, maybe
                                    still being used) */
    uint8_t pad5_[EVB_LINE - 16];

    uint8_t pad6_[1024 - 6 * EVB_LINE];
};

/*
 * A producer slot. The owner writes its intent (the claim it is about to
 * make) before the tail CAS, so whoever finds the claim uncommitted later
 * knows its exact extent and can pad it (pad.c). intent_seq is a seqlock
 * over the intent fields: odd while they are being rewritten.
 */
struct evb_producer_slot {
    _Atomic uint64_t owner;      /* 0: pid << 32 | start time; 0 = free (CAS) */
    _Atomic uint64_t pending;    /* 8: claim start not yet committed, or EVB_POS_NONE */
    _Atomic uint64_t intent_seq; /* 16: seqlock over the intent, odd = writing */
    _Atomic uint64_t intent_pos; /* 24: claim start (end pad first, if any) */
    _Atomic uint64_t intent_offset; /* 32: first offset of the claim */
    _Atomic uint32_t intent_pad; /* 40: end-of-ring pad bytes before the data */
    _Atomic uint32_t intent_len; /* 44: aligned data bytes after the pad */
    _Atomic uint32_t intent_events; /* 48: events in the claim */
    _Atomic uint32_t producer_id; /* 52: bus-wide id of the owning producer
                                     (one per producer handle: with owner,
                                     it tells two holders of a slot apart) */
    /* Statistics of the slot's current owner, for `evbus stat`: written
     * only by that owner (so a plain relaxed load and store, no RMW),
     * zeroed when a process takes the slot, read relaxed by anyone. The
     * partition's published count is not their sum: a producer killed
     * between its commit and its count misses that claim here, so
     * bus/stat.c derives it from the tail. Words 56 and 64 were reserved
     * and zero, 72 was padding: rings of older builds read as zeros. */
    _Atomic uint64_t published;  /* 56: events this owner committed */
    _Atomic uint64_t published_bytes; /* 64: ring bytes of those claims
                                         (frame headers and padding included) */
    _Atomic uint64_t backpressure; /* 72: claims that found the ring full
                                      (held by a gating reader or the
                                      flusher): waited, or -EAGAIN */
    /* The fenceless commit (claim.c X1), an asymmetric Dekker pair on this
     * line rather than a CAS on the frame's stamp, the line readers poll. */
    _Atomic uint64_t committing; /* 80: data position of the owner's claim
                                    whose frames are all written, stored
                                    just before its plain stamp store */
    _Atomic uint64_t robbing;    /* 88: data position of a claim a padder
                                    is about to pad (written by padders) */
    _Atomic uint32_t commit_mode; /* 96: EVB_COMMIT_*, set at attach */
    _Atomic uint32_t tail_moving; /* 100: 1 while the tail lease's holder is
                                     between its check of the lease and its
                                     plain store of the tail (X4) */
    uint8_t pad_[EVB_LINE - 104];
};

/* evb_ring_hdr.tail_lease: the holder's slot is (word & HOLDER_MASK) - 1. */
#define EVB_LEASE_HOLDER_MASK 0xffull
#define EVB_LEASE_REVOKED (1ull << 63)

/* evb_producer_slot.commit_mode */
#define EVB_COMMIT_CAS 0u       /* the stamp CAS decides commit against pad (R1) */
#define EVB_COMMIT_FENCELESS 1u /* plain stamp store, padders fence (X1) */

/* Reader kinds stored in evb_reader_slot.kind. */
#define EVB_SLOT_SUBSCRIBER 0u
#define EVB_SLOT_LOSSLESS 1u
#define EVB_SLOT_CONSUMER 2u
#define EVB_SLOT_FLUSHER 3u /* a flusher's doorbell registration; no cursor */
/* Gating on a ring that is not durable (durable rings gate on flushed). */
#define EVB_SLOT_GATES(kind) ((kind) == EVB_SLOT_LOSSLESS || (kind) == EVB_SLOT_CONSUMER)

struct evb_reader_slot {
    _Atomic uint64_t owner;      /* 0: pid << 32 | start time; 0 = free (CAS) */
    _Atomic uint64_t cursor;     /* 8: next position to read; reader stores
                                    (release), producers load (acquire) */
    _Atomic uint64_t cursor_offset; /* 16: next offset to read; statistic */
    _Atomic uint32_t kind;       /* 24: EVB_SLOT_*; set before owner is final */
    uint32_t pad0_;
    _Atomic uint64_t delivered;  /* 32: events handed out; statistic */
    _Atomic uint64_t lost;       /* 40: events lost to laps; statistic */
    char name[64];               /* 48: consumer name or "" */
    uint8_t pad_[EVB_LINE - 112];
};

struct evb_frame {
    _Atomic uint64_t stamp;      /* 0: see the file comment */
    uint64_t offset;             /* 8 */
    uint64_t timestamp_ns;       /* 16 */
    uint64_t producer_seq;       /* 24 */
    uint32_t len;                /* 32: header, key, key padding, value */
    uint32_t claim_len;          /* 36 */
    uint32_t producer_id;        /* 40 */
    uint16_t claim_events;       /* 44 */
    uint16_t key_len;            /* 46 */
    uint32_t crc32c;             /* 48 */
    uint16_t type;               /* 52 */
    uint16_t flags;              /* 54 */
};

/*
 * Offsets are ABI: a move here must bump EVB_RING_VERSION. Every field is
 * pinned, padding included, so a hole the compiler would add (or a field
 * that grew) fails the build instead of silently changing the file.
 */
#define EVB_RING_AT(type, field, off)                                            \
    static_assert(offsetof(struct type, field) == (off),                         \
                  #type "." #field " moved: bump EVB_RING_VERSION")

static_assert(sizeof(struct evb_ring_tail) == 16, "ring tail size");
static_assert(alignof(struct evb_ring_tail) == 16, "ring tail needs CAS16 alignment");
EVB_RING_AT(evb_ring_tail, pos, 0);
EVB_RING_AT(evb_ring_tail, offset, 8);

static_assert(sizeof(struct evb_ring_hdr) == 1024, "ring header size");
/* line 0 */
EVB_RING_AT(evb_ring_hdr, magic, 0);
EVB_RING_AT(evb_ring_hdr, format, 8);
EVB_RING_AT(evb_ring_hdr, capacity, 16);
EVB_RING_AT(evb_ring_hdr, max_frame_bytes, 24);
EVB_RING_AT(evb_ring_hdr, partition, 28);
EVB_RING_AT(evb_ring_hdr, created_ns, 32);
EVB_RING_AT(evb_ring_hdr, base_pos, 40);
EVB_RING_AT(evb_ring_hdr, base_offset, 48);
EVB_RING_AT(evb_ring_hdr, flags, 56);
EVB_RING_AT(evb_ring_hdr, pad0a_, 60);
EVB_RING_AT(evb_ring_hdr, pad0_, 64);
/* line 1 */
EVB_RING_AT(evb_ring_hdr, tail, 128);
EVB_RING_AT(evb_ring_hdr, pad1_, 144);
/* line 2 */
EVB_RING_AT(evb_ring_hdr, waiters, 256);
EVB_RING_AT(evb_ring_hdr, bell, 264);
EVB_RING_AT(evb_ring_hdr, pad2a_, 268);
EVB_RING_AT(evb_ring_hdr, pad2_, 272);
/* line 3 */
EVB_RING_AT(evb_ring_hdr, flushed, 384);
EVB_RING_AT(evb_ring_hdr, durable, 392);
EVB_RING_AT(evb_ring_hdr, sync_bell, 400);
EVB_RING_AT(evb_ring_hdr, sync_waiters, 404);
EVB_RING_AT(evb_ring_hdr, log_start_pos, 408);
EVB_RING_AT(evb_ring_hdr, log_start_offset, 416);
EVB_RING_AT(evb_ring_hdr, flusher, 424);
EVB_RING_AT(evb_ring_hdr, fsyncs, 432);
EVB_RING_AT(evb_ring_hdr, flush_error, 440);
EVB_RING_AT(evb_ring_hdr, flush_bell, 444);
EVB_RING_AT(evb_ring_hdr, sync_lead, 448);
EVB_RING_AT(evb_ring_hdr, lead_waiters, 464);
EVB_RING_AT(evb_ring_hdr, pad3a_, 468);
EVB_RING_AT(evb_ring_hdr, sync_beat, 472);
EVB_RING_AT(evb_ring_hdr, pad3_, 480);
/* line 4 */
EVB_RING_AT(evb_ring_hdr, aborted, 512);
EVB_RING_AT(evb_ring_hdr, padded_dead, 520);
EVB_RING_AT(evb_ring_hdr, padded_stalled, 528);
EVB_RING_AT(evb_ring_hdr, reaped_readers, 536);
EVB_RING_AT(evb_ring_hdr, reaped_producers, 544);
EVB_RING_AT(evb_ring_hdr, published_retired, 552);
EVB_RING_AT(evb_ring_hdr, recovered_dropped, 560);
EVB_RING_AT(evb_ring_hdr, retention_unconsumed, 568);
EVB_RING_AT(evb_ring_hdr, pad4_, 576);
/* line 5 */
EVB_RING_AT(evb_ring_hdr, exclusive, 640);
EVB_RING_AT(evb_ring_hdr, tail_lease, 648);
EVB_RING_AT(evb_ring_hdr, pad5_, 656);
/* lines 6..7: zero, free for later fields (with a version bump) */
EVB_RING_AT(evb_ring_hdr, pad6_, 768);

static_assert(sizeof(struct evb_producer_slot) == EVB_LINE, "producer slot size");
EVB_RING_AT(evb_producer_slot, owner, 0);
EVB_RING_AT(evb_producer_slot, pending, 8);
EVB_RING_AT(evb_producer_slot, intent_seq, 16);
EVB_RING_AT(evb_producer_slot, intent_pos, 24);
EVB_RING_AT(evb_producer_slot, intent_offset, 32);
EVB_RING_AT(evb_producer_slot, intent_pad, 40);
EVB_RING_AT(evb_producer_slot, intent_len, 44);
EVB_RING_AT(evb_producer_slot, intent_events, 48);
EVB_RING_AT(evb_producer_slot, producer_id, 52);
EVB_RING_AT(evb_producer_slot, published, 56);
EVB_RING_AT(evb_producer_slot, published_bytes, 64);
EVB_RING_AT(evb_producer_slot, backpressure, 72);
EVB_RING_AT(evb_producer_slot, committing, 80);
EVB_RING_AT(evb_producer_slot, robbing, 88);
EVB_RING_AT(evb_producer_slot, commit_mode, 96);
EVB_RING_AT(evb_producer_slot, tail_moving, 100);
EVB_RING_AT(evb_producer_slot, pad_, 104);

static_assert(sizeof(struct evb_reader_slot) == EVB_LINE, "reader slot size");
EVB_RING_AT(evb_reader_slot, owner, 0);
EVB_RING_AT(evb_reader_slot, cursor, 8);
EVB_RING_AT(evb_reader_slot, cursor_offset, 16);
EVB_RING_AT(evb_reader_slot, kind, 24);
EVB_RING_AT(evb_reader_slot, pad0_, 28);
EVB_RING_AT(evb_reader_slot, delivered, 32);
EVB_RING_AT(evb_reader_slot, lost, 40);
EVB_RING_AT(evb_reader_slot, name, 48);
static_assert(sizeof(((struct evb_reader_slot *)0)->name) == 64, "reader slot name size");
EVB_RING_AT(evb_reader_slot, pad_, 112);

static_assert(sizeof(struct evb_frame) == EVB_FRAME_HDR, "frame header size");
EVB_RING_AT(evb_frame, stamp, 0);
EVB_RING_AT(evb_frame, offset, 8);
EVB_RING_AT(evb_frame, timestamp_ns, 16);
EVB_RING_AT(evb_frame, producer_seq, 24);
EVB_RING_AT(evb_frame, len, 32);
EVB_RING_AT(evb_frame, claim_len, 36);
EVB_RING_AT(evb_frame, producer_id, 40);
EVB_RING_AT(evb_frame, claim_events, 44);
EVB_RING_AT(evb_frame, key_len, 46);
EVB_RING_AT(evb_frame, crc32c, 48);
EVB_RING_AT(evb_frame, type, 52);
EVB_RING_AT(evb_frame, flags, 54);

static_assert(1024 + (EVB_RING_PRODUCER_SLOTS + EVB_RING_READER_SLOTS) * EVB_LINE
              <= EVB_RING_DATA_OFFSET, "slots overlap data");

#define EVB_PRODUCER_SLOTS_OFFSET 1024u
#define EVB_READER_SLOTS_OFFSET (1024u + EVB_RING_PRODUCER_SLOTS * EVB_LINE)

static inline uint64_t evb_align_frame(uint64_t n)
{
    return (n + (EVB_FRAME_ALIGN - 1)) & ~(uint64_t)(EVB_FRAME_ALIGN - 1);
}

static inline uint64_t evb_align_line(uint64_t n)
{
    return (n + (EVB_FRAME_LINE - 1)) & ~(uint64_t)(EVB_FRAME_LINE - 1);
}

#endif /* EVB_RING_FORMAT_H */
