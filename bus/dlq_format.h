/*
 * dlq_format.h - the two formats of dead-letter topics (dlq.c,
 * dlq_resubmit.c): the value of every event of <topic>.dlq, and the
 * resubmit state file beside that topic's rings or segments. Host byte
 * order, as the rings and segments themselves: neither leaves the host.
 *
 * 1. A DLQ event. Its key is the rejected event's key; its value:
 *
 *   0     +------------------------------+
 *         | magic            u32         |  EVB_DLQ_MAGIC
 *   4     | version          u16         |  EVB_DLQ_VERSION
 *   6     | hdr_bytes        u16         |  EVB_DLQ_HDR_BYTES
 *   8     | format           u32         |  EVB_DLQ_FORMAT_WORD
 *   12    | origin_partition u32         |
 *   16    | origin_offset    u64         |
 *   24    | origin_position  u64         |
 *   32    | origin_ts_ns     u64         |  the event's timestamp_ns
 *   40    | reject_ns        u64         |  CLOCK_REALTIME at reject
 *   48    | producer_seq     u64         |  the event's
 *   56    | producer_id      u32         |  the event's
 *   60    | deliveries       u32         |  >= 1
 *   64    | type             u16         |  the event's
 *   66    | flags            u16         |  the event's
 *   68    | topic_len        u16         |  1..EVB_NAME_MAX
 *   70    | reason_len       u16         |  0..EVB_DLQ_REASON_MAX, no NUL
 *   72    | rejecter_len     u16         |  0..EVB_NAME_MAX
 *   74    | reserved         u16         |  0
 *   76    | rejecter_pid     u32         |
 *   80    | value_len        u32         |  the event's value length
 *   84    | reserved2        u32         |  0
 *   88    +------------------------------+
 *         | origin topic name            |  topic_len bytes
 *         | reason                       |  reason_len bytes
 *         | rejecter (consumer name)     |  rejecter_len bytes
 *         | zero padding to 8            |
 *         | the event's value            |  value_len bytes, 8-aligned in the value
 *         +------------------------------+
 *
 * The DLQ value's length must equal the padded header and strings plus
 * value_len exactly (so a truncated record is not taken for a shorter
 * event); the decoder (evb_dlq_decode) copies the header
 * out once (the event may sit in a mapping another process writes) and
 * checks every length against the event's value_len before any pointer is
 * made: wrong magic or lengths are -EBADMSG, another version or format
 * word -EPROTO.
 *
 * 2. The resubmit state, <dlq dir>/resubmit.state (the data directory's
 * for a durable DLQ, so it survives a reboot with the events it talks
 * about; tmpfs otherwise). Written with pwrite by one resubmitter at a
 * time (flock on the file), read by `evbus dlq list`:
 *
 *   0     +------------------------------+
 *         | magic            u64         |  EVB_DLQS_MAGIC
 *   8     | version          u16         |  EVB_DLQS_VERSION
 *   10    | hdr_bytes        u16         |  EVB_DLQS_HDR_BYTES
 *   12    | base             u32         |  number of the file's first block
 *   16    | format           u64         |  EVB_DLQS_FORMAT_WORD
 *   24    | blocks           u32         |  bitmap blocks in use
 *   28    | crc32c           u32         |  of bytes 0..28
 *   32    | intent (32 B)                |  the claim being resubmitted
 *   64    +------------------------------+
 *         | block base (64 B)            |  DLQ offsets 480*base .. 480*base+479
 *         | block base + 1 ...           |  the next 480, and so on
 *         +------------------------------+  64 + 64 * blocks bytes at least
 *
 *   block k (at 64 + 64 * (k - base)):
 *            bits[60]  bit O%8 of byte (O%480)/8: DLQ offset O (O/480 == k)
 *                      was resubmitted
 *            crc32c u32 of k (u64) followed by bits
 *
 * base is set once, when the file is made: the block of the oldest event
 * the DLQ held then (of its tail when empty). Offsets below it were gone
 * already and can never be resubmitted, so they need no bits; without it
 * a DLQ whose retention or ring had passed offset N would have its first
 * resubmit write N / 8 bytes of zero bits (128 MB at a billion).
 *
 * Everything a reader trusts is checked, because a wrong answer here is a
 * duplicate (a done bit read as clear: resubmit --all publishes it again)
 * or a loss: the header and each block carry a crc32c, so a block zeroed,
 * filled with garbage or swapped with another reads as damage, and
 * `blocks` (under the header's crc) says how long the file must be, so a
 * truncated one does too. A block is rewritten whole by one pwrite at a
 * 64-byte boundary, never across a sector. Growing writes the new block
 * (zero bits, its crc) first and then the header that counts it: a kill
 * between leaves an uncounted block, which is not read.
 *
 * The intent names the claim made on the origin topic for one DLQ event
 * (dlq_resubmit.c explains the protocol). Its crc32c covers its first 24
 * bytes. All zero is no intent (a new file); anything else that fails its
 * crc is damage, not "no intent": the intent is one 32-byte pwrite inside
 * the first sector, which a power cut does not tear, and taking a damaged
 * record of a committed claim for none would publish that event again.
 */
#ifndef EVB_DLQ_FORMAT_H
#define EVB_DLQ_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define EVB_DLQ_MAGIC 0x51444c45u /* "ELDQ" little-endian */
#define EVB_DLQ_VERSION 1u
#define EVB_DLQ_HDR_BYTES 88u
#define EVB_DLQ_ALIGN 8u

/* Version, header size and the offsets of the length fields folded into
 * one word: a build that lays the header out otherwise refuses it. */
#define EVB_DLQ_FORMAT_WORD                                                       \
    ((uint32_t)EVB_DLQ_VERSION << 24 | (uint32_t)EVB_DLQ_HDR_BYTES << 16 |        \
     (uint32_t)offsetof(struct evb_dlq_hdr, topic_len) << 8 |                     \
     (uint32_t)offsetof(struct evb_dlq_hdr, value_len))

struct evb_dlq_hdr {
    uint32_t magic;            /* 0: EVB_DLQ_MAGIC */
    uint16_t version;          /* 4: EVB_DLQ_VERSION; bump on any change here */
    uint16_t hdr_bytes;        /* 6: EVB_DLQ_HDR_BYTES */
    uint32_t format;           /* 8: EVB_DLQ_FORMAT_WORD */
    uint32_t origin_partition; /* 12: where the rejected event was */
    uint64_t origin_offset;    /* 16: its offset there */
    uint64_t origin_position;  /* 24: its position there */
    uint64_t origin_ts_ns;     /* 32: its timestamp_ns (publish time) */
    uint64_t reject_ns;        /* 40: CLOCK_REALTIME when it was rejected */
    uint64_t producer_seq;     /* 48: its producer sequence */
    uint32_t producer_id;      /* 56: its producer id */
    uint32_t deliveries;       /* 60: times it was delivered, >= 1 */
    uint16_t type;             /* 64: its application type */
    uint16_t flags;            /* 66: its flags as the reader saw them */
    uint16_t topic_len;        /* 68: bytes of the origin topic's name */
    uint16_t reason_len;       /* 70: bytes of the reason */
    uint16_t rejecter_len;     /* 72: bytes of the rejecting consumer's name */
    uint16_t reserved;         /* 74: zero */
    uint32_t rejecter_pid;     /* 76: the rejecting process */
    uint32_t value_len;        /* 80: bytes of its value after the strings */
    uint32_t reserved2;        /* 84: zero */
};

#define EVB_DLQ_AT(field, off)                                                    \
    static_assert(offsetof(struct evb_dlq_hdr, field) == (off),                   \
                  "evb_dlq_hdr." #field " moved: bump EVB_DLQ_VERSION")
static_assert(sizeof(struct evb_dlq_hdr) == EVB_DLQ_HDR_BYTES, "DLQ header size");
EVB_DLQ_AT(magic, 0);
EVB_DLQ_AT(version, 4);
EVB_DLQ_AT(hdr_bytes, 6);
EVB_DLQ_AT(format, 8);
EVB_DLQ_AT(origin_partition, 12);
EVB_DLQ_AT(origin_offset, 16);
EVB_DLQ_AT(origin_position, 24);
EVB_DLQ_AT(origin_ts_ns, 32);
EVB_DLQ_AT(reject_ns, 40);
EVB_DLQ_AT(producer_seq, 48);
EVB_DLQ_AT(producer_id, 56);
EVB_DLQ_AT(deliveries, 60);
EVB_DLQ_AT(type, 64);
EVB_DLQ_AT(flags, 66);
EVB_DLQ_AT(topic_len, 68);
EVB_DLQ_AT(reason_len, 70);
EVB_DLQ_AT(rejecter_len, 72);
EVB_DLQ_AT(reserved, 74);
EVB_DLQ_AT(rejecter_pid, 76);
EVB_DLQ_AT(value_len, 80);
EVB_DLQ_AT(reserved2, 84);

/* Where the original value starts in a DLQ value with these strings. */
static inline uint32_t evb_dlq_value_at(uint32_t topic_len, uint32_t reason_len,
                                        uint32_t rejecter_len)
{
    uint32_t n = EVB_DLQ_HDR_BYTES + topic_len + reason_len + rejecter_len;
    return (n + EVB_DLQ_ALIGN - 1) & ~(EVB_DLQ_ALIGN - 1);
}

/* ---- the resubmit state file ---- */

#define EVB_DLQS_MAGIC 0x31534c4442564545ull /* "EEVBDLS1" little-endian */
#define EVB_DLQS_VERSION 3u
#define EVB_DLQS_HDR_BYTES 64u
#define EVB_DLQS_INTENT_AT 32u

/* Intent states. */
enum { EVB_DLQS_NONE = 0, EVB_DLQS_CLAIMED = 1 };

struct evb_dlqs_intent {
    uint64_t dlq_offset;       /* 0: the DLQ event being resubmitted */
    uint64_t origin_position;  /* 8: the position of the claim made for it */
    uint32_t origin_partition; /* 16: the partition of that claim */
    uint32_t state;            /* 20: EVB_DLQS_* */
    uint32_t crc32c;           /* 24: of bytes 0..24 */
    uint32_t reserved;         /* 28: zero */
};

struct evb_dlqs_hdr {
    uint64_t magic;            /* 0: EVB_DLQS_MAGIC */
    uint16_t version;          /* 8: EVB_DLQS_VERSION */
    uint16_t hdr_bytes;        /* 10: EVB_DLQS_HDR_BYTES */
    uint32_t base;             /* 12: the block number of the file's first block */
    uint64_t format;           /* 16: EVB_DLQS_FORMAT_WORD */
    uint32_t blocks;           /* 24: bitmap blocks the file holds */
    uint32_t crc32c;           /* 28: of bytes 0..28 */
    struct evb_dlqs_intent intent; /* 32 */
};

/* DLQ offsets per bitmap block, and the block's layout. */
#define EVB_DLQS_BLOCK_BYTES 64u
#define EVB_DLQS_BLOCK_BITS 480u

struct evb_dlqs_block {
    uint8_t bits[60];          /* 0: bit O%8 of byte (O%480)/8 */
    uint32_t crc32c;           /* 60: of the block's index (u64), then bits */
};

#define EVB_DLQS_FORMAT_WORD                                                      \
    ((uint64_t)EVB_DLQS_VERSION << 48 | (uint64_t)EVB_DLQS_HDR_BYTES << 32 |      \
     (uint64_t)offsetof(struct evb_dlqs_hdr, base) << 24 |                        \
     (uint64_t)EVB_DLQS_INTENT_AT << 16 | (uint64_t)sizeof(struct evb_dlqs_intent) << 8 | \
     (uint64_t)EVB_DLQS_BLOCK_BYTES)

static_assert(sizeof(struct evb_dlqs_intent) == 32, "DLQ intent size");
static_assert(offsetof(struct evb_dlqs_intent, crc32c) == 24, "DLQ intent crc moved");
static_assert(sizeof(struct evb_dlqs_hdr) == EVB_DLQS_HDR_BYTES, "DLQ state header size");
static_assert(offsetof(struct evb_dlqs_hdr, version) == 8, "DLQ state version moved");
static_assert(offsetof(struct evb_dlqs_hdr, base) == 12, "DLQ state base moved");
static_assert(offsetof(struct evb_dlqs_hdr, format) == 16, "DLQ state format moved");
static_assert(offsetof(struct evb_dlqs_hdr, blocks) == 24, "DLQ state blocks moved");
static_assert(offsetof(struct evb_dlqs_hdr, crc32c) == 28, "DLQ state crc moved");
static_assert(sizeof(struct evb_dlqs_block) == EVB_DLQS_BLOCK_BYTES, "DLQ state block size");
static_assert(sizeof(((struct evb_dlqs_block *)0)->bits) * 8 == EVB_DLQS_BLOCK_BITS,
              "DLQ state block bits");
static_assert(offsetof(struct evb_dlqs_block, crc32c) == 60, "DLQ state block crc moved");
static_assert(offsetof(struct evb_dlqs_hdr, intent) == EVB_DLQS_INTENT_AT,
              "DLQ state intent moved: bump EVB_DLQS_VERSION");

#endif /* EVB_DLQ_FORMAT_H */
