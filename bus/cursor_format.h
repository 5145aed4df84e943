/*
 * cursor_format.h - every byte of a named consumer's cursor file,
 * <topic>/consumers/<name>.cur (in the data directory for durable topics),
 * mapped shared by its owner and read by the retention of durable topics
 * (cursor_file.c holds the code and its ordering edges K1..K4).
 *
 *   0     +-----------------------------+
 *         | magic        u64            |  EVB_CUR_MAGIC, stored last
 *   8     | partitions   u32            |  entries that follow
 *   12    | version      u32            |  EVB_CUR_VERSION
 *   16    | owner        u64            |  holder: pid << 32 | start time
 *   24    | format       u64            |  EVB_CUR_FORMAT_WORD
 *   32    +-----------------------------+
 *         | entry 0      (32 B)         |  seq, pos, offset, pad
 *   64    | entry 1                     |
 *         | ...  one per partition      |
 *         +-----------------------------+  32 + 32 * partitions bytes
 *
 * Life of the file: the first evb_consumer_open() of a name creates it and
 * sizes it in one step (posix_fallocate), so it is 0 bytes or the full
 * size. Zero magic means "not ready": the opener writes partitions,
 * version, format and every entry's pos = EVB_POS_NONE, then the magic
 * with release (K1). Racing creators write identical values.
 *
 * An opener checks the magic first, then the rest, naming found and
 * expected values:
 *   shorter than the header, wrong magic,    -EBADMSG  (not a cursor file,
 *   other partition count, wrong size                   or not this topic's)
 *   version other than 0 or 2, or format     -EPROTO   (another build's)
 *   word other than this build's
 * A newer version than this build's is refused too, never read or
 * rewritten: its layout may differ, so this build cannot know what it
 * would clobber. The retention's scan (evb_consumers_min_committed) skips
 * any file an opener would refuse.
 *
 * Version history:
 *   1  (no version field) magic, partitions, owner, entries at 32; the
 *      version and format words were zero padding
 *   2  version at 12 and format word at 24, in that padding; nothing moved
 * A version 1 file (version word 0, format word 0) has version 2's layout,
 * so it is read as is, and its first owner under this build upgrades it in
 * place (K5 in cursor_file.c): the committed cursors are kept.
 */
#ifndef EVB_CURSOR_FORMAT_H
#define EVB_CURSOR_FORMAT_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Cross-process atomics must not fall back to a process-local lock. */
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

#define EVB_CUR_MAGIC 0x3152554342564545ull /* "EEVBCUR1" little-endian */
#define EVB_CUR_VERSION 2u
#define EVB_CUR_VERSION_1 0u /* the version word of a version 1 file */
#define EVB_CUR_HDR_BYTES 32u
#define EVB_CUR_ENTRY_BYTES 32u
#define EVB_CUR_ENTRY_POS 8u    /* offset of pos in an entry */
#define EVB_CUR_ENTRY_OFFSET 16u /* offset of offset in an entry */

/*
 * Version, header and entry sizes and the entry's field offsets folded into
 * one word, as the ring's EVB_RING_FORMAT_WORD: a build that lays the file
 * out differently refuses it even if the version was not bumped.
 */
#define EVB_CUR_FORMAT_WORD                                                      \
    ((uint64_t)EVB_CUR_VERSION << 48 | (uint64_t)EVB_CUR_HDR_BYTES << 32 |       \
     (uint64_t)EVB_CUR_ENTRY_BYTES << 16 | (uint64_t)EVB_CUR_ENTRY_POS << 8 |    \
     (uint64_t)EVB_CUR_ENTRY_OFFSET)

/*
 * One partition's committed cursor: where the consumer goes on from. A
 * seqlock keeps a reader from pairing one commit's position with another's
 * offset. Only the owner writes (evb_cursor_file_store); readers are the
 * owner at seek and other processes' retention (evb_cursor_file_load).
 */
struct evb_cur_entry {
    /* 0: odd while a commit is being written. The owner stores odd, fences
     * release, stores pos and offset, stores even with release (K2, K3). */
    _Atomic uint64_t seq;
    /* 8: next position to read; EVB_POS_NONE = never committed. A torn
     * commit (writer died at odd seq) still leaves a valid boundary. */
    _Atomic uint64_t pos;
    /* 16: event offset at pos; after a torn commit it may be stale, so a
     * seek to it learns the offset from the frame. */
    _Atomic uint64_t offset;
    uint64_t pad_;               /* 24: zero */
};

struct evb_cur_hdr {
    /* 0: EVB_CUR_MAGIC, stored last at creation with release (K1); loaded
     * first with acquire by every opener and by the retention's scan. */
    _Atomic uint64_t magic;
    /* 8: entries in the file, the topic's partitions; written once before
     * the magic. */
    uint32_t partitions;
    /* 12: EVB_CUR_VERSION, written before the magic (K1); or 0 in a
     * version 1 file, which its owner rewrites to EVB_CUR_VERSION after
     * the format word, with release (K5). */
    _Atomic uint32_t version;
    /* 16: the process that has the consumer open, pid << 32 | start time
     * (evb_proc_self), 0 when none. Taken by CAS when free or its holder
     * is dead, given back by CAS at close (K4). */
    _Atomic uint64_t owner;
    /* 24: EVB_CUR_FORMAT_WORD, written before the magic (K1), or before
     * the version when a version 1 file (0 here) is upgraded (K5). */
    _Atomic uint64_t format;
    struct evb_cur_entry e[];    /* 32: one per partition */
};

/* Offsets are ABI: a move here must bump EVB_CUR_VERSION. */
#define EVB_CUR_AT(type, field, off)                                             \
    static_assert(offsetof(struct type, field) == (off),                         \
                  #type "." #field " moved: bump EVB_CUR_VERSION")
static_assert(sizeof(struct evb_cur_entry) == EVB_CUR_ENTRY_BYTES, "cursor entry size");
EVB_CUR_AT(evb_cur_entry, seq, 0);
EVB_CUR_AT(evb_cur_entry, pos, EVB_CUR_ENTRY_POS);
EVB_CUR_AT(evb_cur_entry, offset, EVB_CUR_ENTRY_OFFSET);
EVB_CUR_AT(evb_cur_entry, pad_, 24);
static_assert(sizeof(struct evb_cur_hdr) == EVB_CUR_HDR_BYTES, "cursor header size");
EVB_CUR_AT(evb_cur_hdr, magic, 0);
EVB_CUR_AT(evb_cur_hdr, partitions, 8);
EVB_CUR_AT(evb_cur_hdr, version, 12);
EVB_CUR_AT(evb_cur_hdr, owner, 16);
EVB_CUR_AT(evb_cur_hdr, format, 24);
EVB_CUR_AT(evb_cur_hdr, e, EVB_CUR_HDR_BYTES);

/* Bytes of a cursor file for PARTS partitions. */
static inline size_t evb_cur_file_bytes(uint32_t parts)
{
    return EVB_CUR_HDR_BYTES + (size_t)parts * EVB_CUR_ENTRY_BYTES;
}

#endif /* EVB_CURSOR_FORMAT_H */
