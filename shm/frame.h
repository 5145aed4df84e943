/*
 * frame.h - one definition of what a frame says: the committed-stamp test,
 * the header a claimant writes (and a padder or an abort rewrites with the
 * same values), and the one decoder every walk of the log uses: the ring
 * reader (read.c), the flusher, segment recovery and the segment reader,
 * and `evbus dump`. The layout itself is in ring_format.h.
 */
#ifndef EVB_FRAME_H
#define EVB_FRAME_H

#include <stdbool.h>
#include <stdint.h>

#include "ring_format.h"

/* Committed at POS: the stamp names POS and says data or pad. A zeroed
 * word, a stamp of another lap or an odd type is "not yet". */
static inline bool evb_stamp_is_committed(uint64_t stamp, uint64_t pos)
{
    return stamp == (pos | EVB_STAMP_DATA) || stamp == (pos | EVB_STAMP_PAD);
}

/*
 * The three claim fields of a claim's first frame. The claimant writes
 * them (evb_frame_init), and so do an abort and a padder of the same
 * claim, always with identical values: the pad's type lives in the stamp,
 * so a stalled producer that wakes and rewrites them cannot change what a
 * reader sees. Relaxed atomic stores because two of those writers may race
 * on the same bytes; the stamp CAS or store that follows publishes them.
 */
static inline void evb_frame_set_claim(struct evb_frame *f, uint64_t offset,
                                       uint32_t claim_len, uint16_t claim_events)
{
    __atomic_store_n(&f->offset, offset, __ATOMIC_RELAXED);
    __atomic_store_n(&f->claim_len, claim_len, __ATOMIC_RELAXED);
    __atomic_store_n(&f->claim_events, claim_events, __ATOMIC_RELAXED);
}

/* Where a frame's value starts (bytes from the frame start): after the
 * key rounded up to 8 in frames that say so (all this version writes),
 * right after the key in older ones. Frames are 8-aligned, so such a
 * value is too. */
static inline uint64_t evb_frame_value_at(uint32_t key_len, uint16_t flags)
{
    return EVB_FRAME_HDR + ((flags & EVB_FRAME_F_VALUE_ALIGNED)
                                ? evb_align_frame(key_len) : key_len);
}

/* The frame length (unaligned, as in evb_frame.len) of an event of
 * KEY_LEN and VALUE_LEN bytes as this version writes it. */
static inline uint64_t evb_frame_len(uint64_t key_len, uint64_t value_len)
{
    return EVB_FRAME_HDR + evb_align_frame(key_len) + value_len;
}

/* Bytes from a frame of length LEN (evb_frame.len) with FLAGS to the next
 * frame: whole 64-byte lines for the frames this version writes, whole
 * 8-byte words for older ones. */
static inline uint64_t evb_frame_skip(uint32_t len, uint16_t flags)
{
    return (flags & EVB_FRAME_F_LINE_PADDED) ? evb_align_line(len) : evb_align_frame(len);
}

/* Ring bytes of such an event as this version writes it (line-padded):
 * what a claim reserves for it. A line of its own costs up to 63 bytes,
 * and saves the reader's pulling a line the producer is about to write
 * the next frame into, and the producer's taking it back (perf/RESULTS.md,
 * thirteenth session). */
static inline uint64_t evb_frame_bytes(uint64_t key_len, uint64_t value_len)
{
    return evb_align_line(evb_frame_len(key_len, value_len));
}

/* The largest frame length (evb_frame.len, unpadded) of events whose key
 * and value add up to at most MAX_EVENT bytes, rounded up to the line:
 * padding the key can cost 7 bytes (a 1-byte key and a 15-byte value take
 * 56 + 8 + 15, where 16 bytes of value alone take 56 + 16). */
static inline uint64_t evb_frame_max(uint64_t max_event)
{
    return evb_align_line(EVB_FRAME_HDR + max_event + (EVB_FRAME_ALIGN - 1));
}

/* What a producer knows of a data frame before it writes the value. */
struct evb_frame_fields {
    uint64_t offset;
    uint64_t timestamp_ns;
    uint64_t producer_seq;
    uint32_t producer_id;
    uint32_t key_len;
    uint32_t value_len;
    uint16_t type;
    uint32_t claim_len;      /* first frame of a claim: its data bytes; else 0 */
    uint16_t claim_events;   /* first frame of a claim: its events; else 0 */
};

/* Every header field but the stamp (published last, claim.c R1/R2) and the
 * checksum (durable rings seal the frame once the value is written). */
static inline void evb_frame_init(struct evb_frame *f, const struct evb_frame_fields *x)
{
    evb_frame_set_claim(f, x->offset, x->claim_len, x->claim_events);
    f->timestamp_ns = x->timestamp_ns;
    f->producer_seq = x->producer_seq;
    f->len = (uint32_t)evb_frame_len(x->key_len, x->value_len);
    f->producer_id = x->producer_id;
    f->key_len = (uint16_t)x->key_len;
    f->crc32c = 0;
    f->type = x->type;
    f->flags = EVB_FRAME_F_VALUE_ALIGNED | EVB_FRAME_F_LINE_PADDED;
}

/* evb_frame_decode() results. */
#define EVB_FRAME_NONE 0  /* not committed at this position */
#define EVB_FRAME_DATA 1
#define EVB_FRAME_PAD 2
#define EVB_FRAME_BAD (-1) /* committed, but the header cannot be right */

/* A stamp-only pad (too little room for a header) carries no offset. */
#define EVB_FRAME_NO_OFFSET UINT64_MAX

/* No bound on a data frame's key + value beyond its frame's (max_frame):
 * a constant the compiler folds the check away with. */
#define EVB_FRAME_ANY_EVENT UINT64_MAX

/* A decoded frame: every header field the walk acts on, loaded once. */
struct evb_frame_step {
    uint64_t skip;      /* bytes to the next frame (aligned) */
    uint64_t offset;    /* the frame's offset, or EVB_FRAME_NO_OFFSET */
    uint32_t events;    /* data: 1; pad: the events it voids */
    uint32_t len;       /* data: header + key (+ padding) + value bytes */
    uint32_t key_len;   /* data */
    uint32_t value_at;  /* data: the value's start, from the frame's */
    uint32_t value_len; /* data */
    uint16_t flags;     /* data: EVB_FRAME_F_* */
    const char *bad;    /* EVB_FRAME_BAD: which field */
    uint64_t bad_value; /* EVB_FRAME_BAD: the value found */
};

/*
 * Decode the frame F at POS whose stamp the caller loaded as STAMP (with
 * the order its walk needs). ROOM is what is left to the end of the ring
 * (or of the segment, if less), MAX_FRAME the largest frame allowed and
 * MAX_EVENT the largest key + value (the topic's max_event_bytes, or
 * EVB_FRAME_ANY_EVENT). Every field is read once, then checked against
 * ROOM and both bounds, so a corrupt or hostile header can never send a
 * walk out of bounds, nor hand a user an event larger than the topic
 * allows (a frame's line padding leaves room for one); callers
 * use S, never the header again (no double fetch). F may be a private
 * copy of the header (a lap-checking reader). The claim fields (offset,
 * claim_len, claim_events) are loaded with relaxed atomics, in pads and
 * data frames alike: a woken stalled producer may be rewriting a pad's,
 * and a padder that lost the stamp CAS to a commit may still be storing
 * the committed frame's, always with the same values (evb_frame_set_claim).
 */
static inline int evb_frame_decode(const struct evb_frame *f, uint64_t stamp, uint64_t pos,
                                   uint64_t room, uint32_t max_frame, uint64_t max_event,
                                   struct evb_frame_step *s)
{
    /* Data first: the common case, and a caller that tested the stamp for
     * data already (read_inline.h) has the other branches folded away. */
    if (stamp == (pos | EVB_STAMP_DATA)) {
        if (room < EVB_FRAME_HDR) {
            *s = (struct evb_frame_step){.bad = "data frame in end gap, room", .bad_value = room};
            return EVB_FRAME_BAD;
        }
        /* len, key_len and flags: only the claimant writes them, before R1. */
        uint32_t len = f->len, key_len = f->key_len;
        uint16_t flags = f->flags;
        uint64_t skip = evb_frame_skip(len, flags);
        /* Relaxed atomic offset: a losing padder may be storing the same value. */
        *s = (struct evb_frame_step){.skip = skip,
                                     .offset = __atomic_load_n(&f->offset, __ATOMIC_RELAXED),
                                     .events = 1, .len = len, .key_len = key_len,
                                     .flags = flags};
        if (len < EVB_FRAME_HDR || len > max_frame || skip > room) {
            s->bad = "frame length";
            s->bad_value = len;
            return EVB_FRAME_BAD;
        }
        /* Every data frame has an offset; the word that says "none" (a
         * stamp-only pad's) would be taken by a walk for no offset at all,
         * and handed to the user as one. */
        if (s->offset == EVB_FRAME_NO_OFFSET) {
            s->bad = "frame offset";
            s->bad_value = s->offset;
            return EVB_FRAME_BAD;
        }
        if (flags & ~EVB_FRAME_F_KNOWN) {
            s->bad = "frame flags";
            s->bad_value = flags;
            return EVB_FRAME_BAD;
        }
        uint64_t value_at = evb_frame_value_at(key_len, flags);
        if (value_at > len) {
            s->bad = "key length";
            s->bad_value = key_len;
            return EVB_FRAME_BAD;
        }
        s->value_at = (uint32_t)value_at;
        s->value_len = len - (uint32_t)value_at;
        if ((uint64_t)key_len + s->value_len > max_event) {
            s->bad = "event length";
            s->bad_value = (uint64_t)key_len + s->value_len;
            return EVB_FRAME_BAD;
        }
        return EVB_FRAME_DATA;
    }
    if (stamp != (pos | EVB_STAMP_PAD))
        return EVB_FRAME_NONE;
    if (room < EVB_FRAME_HDR) {
        /* The stamp alone pads to the ring's end. */
        *s = (struct evb_frame_step){.skip = room, .offset = EVB_FRAME_NO_OFFSET};
        return EVB_FRAME_PAD;
    }
    uint32_t skip = __atomic_load_n(&f->claim_len, __ATOMIC_RELAXED);
    *s = (struct evb_frame_step){
        .skip = skip,
        .offset = __atomic_load_n(&f->offset, __ATOMIC_RELAXED),
        .events = __atomic_load_n(&f->claim_events, __ATOMIC_RELAXED),
    };
    if (skip < EVB_FRAME_ALIGN || skip % EVB_FRAME_ALIGN || skip > room) {
        s->bad = "pad length";
        s->bad_value = skip;
        return EVB_FRAME_BAD;
    }
    return EVB_FRAME_PAD;
}

#endif /* EVB_FRAME_H */
