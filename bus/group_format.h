/*
 * group_format.h - every byte of a consumer group's file,
 * <topic>/consumers/<group>.grp (in the data directory for durable topics,
 * so committed cursors survive a reboot), mapped shared by every member
 * (group.c holds the code and its ordering edges J1..G6).
 *
 *   0      +--------------------------------+
 *          | header                  (256)  |  magic, version, format,
 *          |                                |  partitions, generation, bell
 *   256    +--------------------------------+
 *          | member slot 0            (64)  |  process, member id, lease,
 *          | ...   EVB_GRP_MEMBERS slots    |  heartbeat, command name
 *   4352   +--------------------------------+
 *          | partition 0              (64)  |  {owner, epoch} and
 *          | ...   one per partition        |  {position, epoch|offset}
 *   Q      +--------------------------------+  Q = 4352 + 64 * partitions
 *          | queue groups only, per partition:
 *          |   queue head             (64)  |  {fetch}, {floor}, counters
 *          |   window slots     (32 each)   |  one per event in flight:
 *          |   ...   `window` of them       |  {qseq, position} and
 *          +--------------------------------+  {state|member|count, deadline}
 *
 * Queue groups (kind EVB_GRP_KIND_QUEUE) hand out single events. Per
 * partition, `fetch` is the next position nobody took yet and `floor`
 * the position below which every event is acknowledged, each with the
 * queue sequence (events taken so far) at it. Event qseq lives in slot
 * window[qseq % window]: a member takes it by claiming the slot (one
 * 16-byte CAS of {qseq + 1, position}), then publishes its state and
 * moves fetch on (another member that finds the slot claimed moves fetch
 * on for it). Acks, nacks and takeovers of expired events are 16-byte
 * CASes of the slot's {control, deadline}; whoever acks the event at the
 * floor moves the floor past every acked event after it. So at most
 * `window` events per partition are in flight, 32 bytes each.
 *
 * No coordinator: a member claims a free slot by CAS of its process word,
 * then takes partitions by one 16-byte CAS of a partition's {owner,
 * epoch} pair (owner: the member id; epoch: +1 per change of owner) and
 * fences the partition's cursor by stamping the new epoch into it (one
 * 16-byte CAS of {position, tag}). A commit is a 16-byte CAS that expects
 * the committer's own epoch in the tag: once a newer owner stamped its
 * epoch, an old owner's commit can only fail.
 *
 * Life of the file: created whole by the first member (file_create.c:
 * built aside and linked in), so a file at its name is complete; zero
 * magic or a wrong size is damage (-EBADMSG). Every word a member reads
 * from another member is checked before use: a slot index, an epoch that
 * went backwards, a cursor that is not a frame boundary below the tail.
 */
#ifndef EVB_GROUP_FORMAT_H
#define EVB_GROUP_FORMAT_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

#define EVB_GRP_MAGIC 0x3150524742564545ull /* "EEVBGRP1" little-endian */
#define EVB_GRP_VERSION 1u
#define EVB_GRP_HDR_BYTES 256u
#define EVB_GRP_MEMBERS 64u
#define EVB_GRP_MEMBER_BYTES 64u
#define EVB_GRP_PART_BYTES 64u
#define EVB_GRP_MEMBERS_AT EVB_GRP_HDR_BYTES
#define EVB_GRP_PARTS_AT (EVB_GRP_HDR_BYTES + EVB_GRP_MEMBERS * EVB_GRP_MEMBER_BYTES)

/* The group kinds (evbus.h exposes them as EVB_GROUP_*). */
#define EVB_GRP_KIND_PARTITION 1u
#define EVB_GRP_KIND_QUEUE 2u

/* Queue slot control word: member id (low 32 bits of it) | lap (qseq /
 * window, low 16 bits) | delivery count (saturating at 255) | state. */
enum { EVB_QS_FREE = 0, EVB_QS_INFLIGHT = 1, EVB_QS_ACKED = 2, EVB_QS_WAIT = 3 };
#define EVB_QS_CTL(member, lap, count, state)                                      \
    ((uint64_t)(uint32_t)(member) << 32 | (uint64_t)(uint16_t)(lap) << 16 |        \
     (uint64_t)(uint8_t)(count) << 8 | (uint8_t)(state))
#define EVB_QS_MEMBER(ctl) ((uint32_t)((ctl) >> 32))
#define EVB_QS_LAP(ctl) ((uint16_t)((ctl) >> 16))
#define EVB_QS_COUNT(ctl) ((uint8_t)((ctl) >> 8))
#define EVB_QS_STATE(ctl) ((uint8_t)(ctl))
#define EVB_QUEUE_WINDOW_MAX 65536u
#define EVB_QUEUE_SLOT_BYTES 32u
#define EVB_QUEUE_HEAD_BYTES 64u

/* Group flags (header word 28). SET: the settings below are recorded.
 * DEDUP: the members keep duplicate tables (EVB_CONSUMER_DEDUP) in
 * consumers/<group>.gdup; a member without them would commit past events
 * it never recorded, and copies of those would pass. */
#define EVB_GRP_F_SET 1u
#define EVB_GRP_F_DEDUP 2u

/* A cursor tag: the owner's epoch (low 16 bits) over the offset (48 bits).
 * EVB_GRP_OFF_NONE: the offset is not known (the reader learns it from
 * the frame at the position, as a named consumer's torn commit does). */
#define EVB_GRP_OFF_BITS 48u
#define EVB_GRP_OFF_MASK ((1ull << EVB_GRP_OFF_BITS) - 1)
#define EVB_GRP_OFF_NONE EVB_GRP_OFF_MASK
#define EVB_GRP_TAG(epoch, off) ((uint64_t)(epoch) << EVB_GRP_OFF_BITS | ((off) & EVB_GRP_OFF_MASK))
#define EVB_GRP_TAG_EPOCH(tag) ((uint16_t)((tag) >> EVB_GRP_OFF_BITS))
/* Position of a partition nobody committed yet. */
#define EVB_GRP_POS_NONE UINT64_MAX

#define EVB_GRP_FORMAT_WORD                                                          \
    ((uint64_t)EVB_GRP_VERSION << 56 | (uint64_t)(EVB_GRP_HDR_BYTES / 8) << 48 |     \
     (uint64_t)EVB_GRP_MEMBERS << 40 | (uint64_t)EVB_GRP_MEMBER_BYTES << 32 |        \
     (uint64_t)EVB_GRP_PART_BYTES << 24 | (uint64_t)EVB_GRP_OFF_BITS << 16)

struct evb_grp_hdr {
    /* 0: EVB_GRP_MAGIC, stored last at creation with release (J1). */
    _Atomic uint64_t magic;
    /* 8: EVB_GRP_VERSION; 12: the topic's partitions; 16: the format word.
     * Written once before the magic. */
    uint32_t version;
    uint32_t partitions;
    uint64_t format;
    /* 24: EVB_GRP_KIND_*, written once before the magic. */
    uint32_t kind;
    /* 28: EVB_GRP_F_*: settings every member must share. Written before
     * the magic by the file's maker; a file made before this word was
     * used has 0 here, and the first member that opens it records its
     * own settings (one CAS from 0). */
    _Atomic uint32_t flags;
    /* 32: the last member id handed out; a joiner takes the next by
     * fetch-add. Ids are never reused, so a stale owner word can never
     * name a newer member. */
    _Atomic uint64_t next_member;
    /* 40: +1 whenever the membership changes (join, leave, expulsion);
     * members compare it to the one they last balanced at (J3). */
    _Atomic uint64_t generation;
    /* 48: futex word, bumped and woken with the generation, so a member
     * asleep waiting for events wakes to rebalance. */
    _Atomic uint32_t bell;
    uint32_t pad1_;
    /* 56: counters for `evbus groups`: members expelled (dead or past
     * their lease), partitions that changed owner. */
    _Atomic uint64_t expelled;
    _Atomic uint64_t handovers;
    /* 72: queue groups, written once before the magic: how long a
     * delivered event may go unacknowledged before another member gets
     * it; deliveries after which it goes to the dead-letter topic (0:
     * never); events in flight per partition (a power of two). */
    uint32_t ack_wait_ms;
    uint32_t max_deliveries;
    uint32_t window;
    uint32_t pad2_;
    uint8_t pad3_[128 - 88];
    /* 128, on a line of its own (read with every queue take and ack):
     * +1 by every rebuild of the topic from its log (group.c,
     * evb_group_file_reset), before it resets the file's positions past
     * the log's end. A member that saw another value when it opened the
     * file is of the bus's previous life (a process that outlived the
     * bus directory): its takes and acks would act on the rebuilt log's
     * positions with the old ring's events (J7). 0 in files made before
     * it was used, and no older build bumps it. */
    _Atomic uint64_t incarnation;
    uint8_t pad4_[192 - 136];
    /* 192, on a line no take or ack reads: queue groups, for `evbus
     * groups`: tries to write the dead-letter record of an event past
     * max_deliveries that the dead-letter topic refused (full, too small,
     * a name too long); the event waits an ack_wait and is tried again,
     * each try counted here. Zero in files made before it was used; older
     * builds leave it be. */
    _Atomic uint64_t dlq_refusals;
    /* 200: the error of the last such refusal (-errno; 0: none yet), so
     * that `evbus groups` can say why. */
    _Atomic int32_t dlq_refusal_error;
    uint8_t reserved_[EVB_GRP_HDR_BYTES - 204];
};

struct evb_grp_member {
    /* 0: the member's process, pid << 32 | start time; 0 when the slot
     * is free. Claimed by CAS from 0, emptied by CAS (leave, expulsion). */
    _Atomic uint64_t proc;
    /* 8: the member id, stored with release after the claim (J2); 0
     * while the claimant is joining. */
    _Atomic uint64_t id;
    /* 16: CLOCK_MONOTONIC ms of the member's last sign of life. */
    _Atomic uint64_t heartbeat_ms;
    /* 24: how long it may stay silent before others expel it. */
    _Atomic uint32_t lease_ms;
    /* 28: partitions it owns now (informational). */
    _Atomic uint32_t owned;
    /* 32: its command name (informational, NUL-padded). */
    char comm[16];
    /* 48: events it was handed, commits it made (informational). */
    _Atomic uint64_t delivered;
    _Atomic uint64_t commits;
};

struct evb_grp_part {
    /* 0: {owner member id (0: none), epoch}, changed together by one
     * 16-byte CAS; the epoch grows by one per change of owner. */
    _Alignas(16) _Atomic uint64_t owner;
    _Atomic uint64_t epoch;
    /* 16: the committed cursor {position, tag}, changed together by one
     * 16-byte CAS; tag = EVB_GRP_TAG(owner's epoch, offset). */
    _Alignas(16) _Atomic uint64_t pos;
    _Atomic uint64_t tag;
    /* 32: commits refused because the committer had lost the partition. */
    _Atomic uint64_t fenced;
    /* 40: the end of the furthest event any owner was handed here; a new
     * owner tells events below it "may be a redelivery". Only the owner
     * stores it (relaxed: a number), and only upwards. Zero in files
     * made before it existed: then nothing is flagged. */
    _Atomic uint64_t delivered_pos;
    /* 48: events its owners rejected to the dead-letter topic (display). */
    _Atomic uint64_t rejected;
    /* 56: queue groups: 1 while a rebuild renumbers this partition's
     * queue (evb_queue_reset), on disk before its first change, and
     * cleared (on disk) once all of them are. A rebuild killed midway (or
     * a power cut) leaves it set, and only then may the next one read
     * words one numbering apart as its own unfinished work; otherwise
     * they are damage. 0 in files made before it was used (a reset killed under a
     * build from before it is then called damage), and older builds
     * neither set nor clear it. */
    _Atomic uint64_t queue_reset;
};

#define EVB_GRP_AT(type, field, off)                                             \
    static_assert(offsetof(struct type, field) == (off),                         \
                  #type "." #field " moved: bump EVB_GRP_VERSION")
static_assert(sizeof(struct evb_grp_hdr) == EVB_GRP_HDR_BYTES, "group header size");
static_assert(sizeof(struct evb_grp_member) == EVB_GRP_MEMBER_BYTES, "member slot size");
static_assert(sizeof(struct evb_grp_part) == EVB_GRP_PART_BYTES, "partition entry size");
EVB_GRP_AT(evb_grp_hdr, magic, 0);
EVB_GRP_AT(evb_grp_hdr, version, 8);
EVB_GRP_AT(evb_grp_hdr, partitions, 12);
EVB_GRP_AT(evb_grp_hdr, format, 16);
EVB_GRP_AT(evb_grp_hdr, kind, 24);
EVB_GRP_AT(evb_grp_hdr, flags, 28);
EVB_GRP_AT(evb_grp_hdr, next_member, 32);
EVB_GRP_AT(evb_grp_hdr, generation, 40);
EVB_GRP_AT(evb_grp_hdr, bell, 48);
EVB_GRP_AT(evb_grp_hdr, expelled, 56);
EVB_GRP_AT(evb_grp_hdr, handovers, 64);
EVB_GRP_AT(evb_grp_hdr, ack_wait_ms, 72);
EVB_GRP_AT(evb_grp_hdr, max_deliveries, 76);
EVB_GRP_AT(evb_grp_hdr, window, 80);
EVB_GRP_AT(evb_grp_hdr, incarnation, 128);
EVB_GRP_AT(evb_grp_hdr, dlq_refusals, 192);
EVB_GRP_AT(evb_grp_hdr, dlq_refusal_error, 200);
EVB_GRP_AT(evb_grp_member, proc, 0);
EVB_GRP_AT(evb_grp_member, id, 8);
EVB_GRP_AT(evb_grp_member, heartbeat_ms, 16);
EVB_GRP_AT(evb_grp_member, lease_ms, 24);
EVB_GRP_AT(evb_grp_member, owned, 28);
EVB_GRP_AT(evb_grp_member, comm, 32);
EVB_GRP_AT(evb_grp_member, delivered, 48);
EVB_GRP_AT(evb_grp_member, commits, 56);
EVB_GRP_AT(evb_grp_part, owner, 0);
EVB_GRP_AT(evb_grp_part, epoch, 8);
EVB_GRP_AT(evb_grp_part, pos, 16);
EVB_GRP_AT(evb_grp_part, tag, 24);
EVB_GRP_AT(evb_grp_part, fenced, 32);
EVB_GRP_AT(evb_grp_part, delivered_pos, 40);
EVB_GRP_AT(evb_grp_part, rejected, 48);
EVB_GRP_AT(evb_grp_part, queue_reset, 56);

struct evb_grp_file {
    struct evb_grp_hdr h;
    struct evb_grp_member m[EVB_GRP_MEMBERS];
    struct evb_grp_part p[];
};
static_assert(offsetof(struct evb_grp_file, m) == EVB_GRP_MEMBERS_AT, "members");
static_assert(offsetof(struct evb_grp_file, p) == EVB_GRP_PARTS_AT, "partitions");

/* A queue partition's head, then its window of slots. */
struct evb_queue_head {
    /* 0: the next event nobody took: {position, qseq}, one 16-byte CAS.
     * EVB_GRP_POS_NONE until the first member sets where the queue
     * starts. */
    _Alignas(16) _Atomic uint64_t fetch_pos;
    _Atomic uint64_t fetch_seq;
    /* 16: every event below is acknowledged: {position, qseq}. */
    _Alignas(16) _Atomic uint64_t floor_pos;
    _Atomic uint64_t floor_seq;
    /* 32: counters for `evbus groups`. */
    _Atomic uint64_t acked;
    _Atomic uint64_t redelivered;
    _Atomic uint64_t nacked;
    _Atomic uint64_t dead_lettered;
};

struct evb_queue_slot {
    /* 0: which event the slot holds: {qseq + 1 (0: none yet), position},
     * one 16-byte CAS. Claiming it for the next lap IS taking the event:
     * every taker of qseq expects the same previous pair, one wins. */
    _Alignas(16) _Atomic uint64_t seq;
    _Atomic uint64_t pos;
    /* 16: its state {control, deadline}, one 16-byte CAS (EVB_QS_CTL;
     * the lap in control says which qseq the state is for; deadline in
     * CLOCK_REALTIME ms, so that it means the same after a reboot). */
    _Alignas(16) _Atomic uint64_t ctl;
    _Atomic uint64_t deadline_ms;
};
static_assert(sizeof(struct evb_queue_head) == EVB_QUEUE_HEAD_BYTES, "queue head size");
static_assert(sizeof(struct evb_queue_slot) == EVB_QUEUE_SLOT_BYTES, "queue slot size");
EVB_GRP_AT(evb_queue_head, fetch_pos, 0);
EVB_GRP_AT(evb_queue_head, fetch_seq, 8);
EVB_GRP_AT(evb_queue_head, floor_pos, 16);
EVB_GRP_AT(evb_queue_head, floor_seq, 24);
EVB_GRP_AT(evb_queue_head, acked, 32);
EVB_GRP_AT(evb_queue_slot, seq, 0);
EVB_GRP_AT(evb_queue_slot, pos, 8);
EVB_GRP_AT(evb_queue_slot, ctl, 16);
EVB_GRP_AT(evb_queue_slot, deadline_ms, 24);

static inline size_t evb_grp_queue_bytes(uint32_t window)
{
    return EVB_QUEUE_HEAD_BYTES + (size_t)window * EVB_QUEUE_SLOT_BYTES;
}

/* Bytes of a group file of KIND for PARTS partitions (WINDOW: queues). */
static inline size_t evb_grp_file_bytes(uint32_t parts, uint32_t kind, uint32_t window)
{
    size_t b = EVB_GRP_PARTS_AT + (size_t)parts * EVB_GRP_PART_BYTES;
    if (kind == EVB_GRP_KIND_QUEUE)
        b += (size_t)parts * evb_grp_queue_bytes(window);
    return b;
}

/* Partition P's queue head in a queue group's file F of NPARTS
 * partitions (F's header checked: evb_group_check); its window follows. */
static inline struct evb_queue_head *evb_queue_head(struct evb_grp_file *f, uint32_t nparts,
                                                    uint32_t p)
{
    char *base = (char *)f + EVB_GRP_PARTS_AT + (size_t)nparts * EVB_GRP_PART_BYTES;
    return (struct evb_queue_head *)(base + (size_t)p * evb_grp_queue_bytes(f->h.window));
}

static inline struct evb_queue_slot *evb_queue_slots(struct evb_queue_head *q)
{
    return (struct evb_queue_slot *)(q + 1);
}

#endif /* EVB_GROUP_FORMAT_H */
