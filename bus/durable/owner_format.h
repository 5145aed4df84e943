/*
 * owner_format.h - every byte of a partition's owner record, kept at the
 * start of <data>/<topic>/<p>/flush.lock: which ring the partition's log
 * continues. A ring is named by its incarnation, the creation time and
 * base position its creator wrote into the header (shm/ring_format.h).
 *
 *   0   +-----------------------------------------------+
 *       | magic "EVBOWN01", 8 bytes                     |
 *   8   | format word, 8 bytes (EVB_OWNER_FORMAT_WORD)  |
 *   16  | created_ns: the ring header's created_ns      |
 *   24  | base_pos: the ring header's base_pos          |
 *   32  | crc32c of bytes 0..31, 4 bytes; 4 bytes zero  |
 *   40  +-----------------------------------------------+
 *
 * Why: a ring rebuilt from disk (the bus directory removed, a reboot)
 * starts where the log ends and hands those positions out again. A
 * process that outlived the rebuild (stopped meanwhile) still maps the
 * old ring, whose flushed position and frames name the same positions
 * for other events: its flusher, taking the free flock, would write them
 * over events the new ring's producers were told are durable. So whoever
 * makes a durable topic's rings (bus/topic.c: a new topic, or a rebuild)
 * writes each partition's record, holding the partition's flock, before
 * the rings are renamed into the bus; and whoever takes the flock to
 * write the log (flush_lock.c, evb_flush_take; retention) reads it while
 * holding the flock and goes on only if it names the ring it maps. The
 * record changes only under the flock, and a flusher keeps the flock for
 * as long as it writes, so a check made once per takeover holds for every
 * round after it (a rebuild waits for the flock, or fails): nothing is
 * checked per round.
 *
 * Not synced: it matters only while a process of an older ring lives,
 * and after a real reboot none does (the rebuild writes it again before
 * any flusher can take the flock). An empty file (a lock file of an older
 * build) has no record: the first taker writes its own ring's. A record
 * that fails its checks is damage (-EBADMSG): nothing is written until a
 * rebuild (removing the bus directory) writes a new one. Integers in host
 * order. Bump EVB_OWNER_VERSION on any change.
 */
#ifndef EVB_OWNER_FORMAT_H
#define EVB_OWNER_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define EVB_OWNER_MAGIC 0x31304e574f425645ull /* "EVBOWN01" little-endian */
#define EVB_OWNER_VERSION 1u
#define EVB_OWNER_BYTES 40u
#define EVB_OWNER_FORMAT_WORD ((uint64_t)EVB_OWNER_VERSION << 32 | EVB_OWNER_BYTES)

struct evb_owner_rec {
    uint64_t magic;      /* 0: EVB_OWNER_MAGIC */
    uint64_t format;     /* 8: EVB_OWNER_FORMAT_WORD */
    uint64_t created_ns; /* 16: the ring's creation time (its header's) */
    uint64_t base_pos;   /* 24: the ring's base position */
    uint32_t crc;        /* 32: crc32c of bytes [0, 32) */
    uint32_t zero;       /* 36: 0 */
};

static_assert(offsetof(struct evb_owner_rec, created_ns) == 16, "owner ABI moved: bump version");
static_assert(offsetof(struct evb_owner_rec, crc) == 32, "owner ABI moved: bump version");
static_assert(sizeof(struct evb_owner_rec) == EVB_OWNER_BYTES, "owner record size");

#endif
