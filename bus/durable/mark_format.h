/*
 * mark_format.h - every byte of a partition's durable mark,
 * <data>/<topic>/<p>/durable.mark: the last position (and the offset there)
 * that an fdatasync of the log is known to have covered. Written by
 * mark.c for the flusher, read by recovery (recover.c) to tell a torn tail
 * (past the mark) from corruption (below it).
 *
 *   0   +-----------------------------------------------+
 *       | magic "EVBMRK01", 8 bytes                     |
 *   8   | format word, 8 bytes (EVB_MARK_FORMAT_WORD)   |
 *   16  | pos: the log is synced below it (a frame start)|
 *   24  | offset: the offset of the next event at pos   |
 *   32  | start_pos: where the retained log starts      |
 *   40  | start_offset: its offset (or EVB_FRAME_NO_OFFSET) |
 *   48  | crc32c of bytes 0..47, 4 bytes; 4 bytes zero  |
 *   56  +-----------------------------------------------+
 *
 * A partition's first mark names the ring's base and is written (and
 * synced, file and name) when a flusher first takes the partition, before
 * it makes the first segment (flush_lock.c, first_mark): so segments
 * without a mark mean it was removed or could not be written, never that
 * a crash came before the flusher's first mark. Then the record is
 * written in place with one pwrite after each fdatasync of
 * the log completed, and is not synced itself: after a power loss it may be
 * older than what was synced, never newer, which only makes recovery treat
 * more of the tail as possibly torn. A mark that fails its checks (torn
 * write, another version) is ignored as if absent: recovery then takes
 * only the bytes after the last valid frame as the torn tail, and skips
 * every offset they could have held (recover.c, unbounded_skip). Integers in
 * host order, as in the log. Bump EVB_MARK_VERSION on any change.
 *
 * start_pos is moved by retention (retention.c) before it removes a
 * segment, and kept by every other write: segments missing below the
 * oldest one on disk but at or above it were lost, not retained, and
 * recovery reports them as damage. Recovery reports a missing, invalid or
 * non-regular mark next to segments too (damage.found's mark field), and
 * the bytes it then cut as a torn tail without a mark to bound them.
 * One file, not two copies: a second copy written the same way fails the
 * same way (a directory planted in its place, a deleted directory), and
 * what recovery needs from the mark is only a bound; without it recovery
 * still finds the log end from the frames, and says it did so. Deleting
 * the mark and the newest segment together is not detectable from the
 * files left (SECURITY.md).
 * The damage report of the same directory follows the mark below.
 */
#ifndef EVB_MARK_FORMAT_H
#define EVB_MARK_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define EVB_MARK_MAGIC 0x31304b524d425645ull /* "EVBMRK01" little-endian */
#define EVB_MARK_VERSION 2u
#define EVB_MARK_BYTES 56u
#define EVB_MARK_NAME "durable.mark"
#define EVB_MARK_FORMAT_WORD ((uint64_t)EVB_MARK_VERSION << 32 | EVB_MARK_BYTES)

struct evb_mark {
    uint64_t magic;  /* 0: EVB_MARK_MAGIC */
    uint64_t format; /* 8: EVB_MARK_FORMAT_WORD */
    uint64_t pos;    /* 16: synced below this position */
    uint64_t offset; /* 24: offset of the event at pos */
    uint64_t start_pos;    /* 32: the retained log starts here */
    uint64_t start_offset; /* 40: its offset, EVB_FRAME_NO_OFFSET unknown */
    uint32_t crc;    /* 48: crc32c of bytes [0, 48) */
    uint32_t zero;   /* 52: 0 */
};

static_assert(offsetof(struct evb_mark, pos) == 16, "mark ABI moved: bump version");
static_assert(offsetof(struct evb_mark, crc) == 48, "mark ABI moved: bump version");
static_assert(sizeof(struct evb_mark) == EVB_MARK_BYTES, "mark size");

/*
 * <data>/<topic>/<p>/damage.found: what the last recovery of the partition
 * found damaged below the log end (recover.c writes it, with one pwrite,
 * after a recovery that found damage, and removes it after one that found
 * none; `evbus info` shows it). Only a report: recovery never reads it.
 *
 *   0   magic "EVBDMG01", 8 bytes
 *   8   format word (EVB_DAMAGE_FORMAT_WORD)
 *   16  ranges: damaged ranges found
 *   24  bytes: their bytes
 *   32  first_pos: where the first starts
 *   40  mark: EVB_SEG_MARK_* the durable mark was in, 4 bytes; 4 bytes zero
 *   48  cut_bytes: bytes cut as a torn tail while the mark was not OK
 *   56  cut_pos: where that cut started
 *   64  skipped: offsets voided after that cut, so none is reused
 *   72  reset: readers' commits set back to the log end by rebuilds
 *       (commits past it: events read before they were durable, lost)
 *   80  reset_left: reader files such a rebuild could not read or check,
 *       left as they were
 *   88  crc32c of bytes 0..87, 4 bytes; 4 bytes zero
 *   96
 * A mark that was not OK, what was cut then and the offsets skipped are
 * kept by later recoveries (the mark is rewritten meanwhile), and the
 * resets add up over rebuilds: remove the file to acknowledge them.
 * Version 3 (80 bytes: no reset words, crc at 72) is still read.
 */
#define EVB_DAMAGE_MAGIC 0x31304745444d4256ull /* "VBMDEG01": any fixed word */
#define EVB_DAMAGE_VERSION 4u
#define EVB_DAMAGE_BYTES 96u
#define EVB_DAMAGE_NAME "damage.found"
#define EVB_DAMAGE_FORMAT_WORD ((uint64_t)EVB_DAMAGE_VERSION << 32 | EVB_DAMAGE_BYTES)
/* Version 3's, read as a record without resets. */
#define EVB_DAMAGE_V3_BYTES 80u
#define EVB_DAMAGE_V3_CRC_AT 72u
#define EVB_DAMAGE_V3_FORMAT_WORD ((uint64_t)3u << 32 | EVB_DAMAGE_V3_BYTES)

struct evb_damage_rec {
    uint64_t magic;     /* 0: EVB_DAMAGE_MAGIC */
    uint64_t format;    /* 8: EVB_DAMAGE_FORMAT_WORD */
    uint64_t ranges;    /* 16 */
    uint64_t bytes;     /* 24 */
    uint64_t first_pos; /* 32 */
    uint32_t mark;      /* 40: EVB_SEG_MARK_* */
    uint32_t pad;       /* 44: 0 */
    uint64_t cut_bytes; /* 48 */
    uint64_t cut_pos;   /* 56 */
    uint64_t skipped;   /* 64: offsets voided after the cut */
    uint64_t reset;     /* 72: commits set back to the log end */
    uint64_t reset_left; /* 80: reader files left unread */
    uint32_t crc;       /* 88: crc32c of bytes [0, 88) */
    uint32_t zero;      /* 92: 0 */
};

static_assert(offsetof(struct evb_damage_rec, reset) == 72, "damage ABI moved: bump version");
static_assert(offsetof(struct evb_damage_rec, crc) == 88, "damage ABI moved: bump version");
static_assert(sizeof(struct evb_damage_rec) == EVB_DAMAGE_BYTES, "damage record size");

#endif
