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
 *   32  | crc32c of bytes 0..31, 4 bytes; 4 bytes zero  |
 *   40  +-----------------------------------------------+
 *
 * The record is written in place with one pwrite after each fdatasync of
 * the log completed, and is not synced itself: after a power loss it may be
 * older than what was synced, never newer, which only makes recovery treat
 * more of the tail as possibly torn. A mark that fails its checks (torn
 * write, another version) is ignored as if absent: recovery then takes
 * only the bytes after the last valid frame as the torn tail. Integers in
 * host order, as in the log. Bump EVB_MARK_VERSION on any change.
 */
#ifndef EVB_MARK_FORMAT_H
#define EVB_MARK_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define EVB_MARK_MAGIC 0x31304b524d425645ull /* "EVBMRK01" little-endian */
#define EVB_MARK_VERSION 1u
#define EVB_MARK_BYTES 40u
#define EVB_MARK_NAME "durable.mark"
#define EVB_MARK_FORMAT_WORD ((uint64_t)EVB_MARK_VERSION << 32 | EVB_MARK_BYTES)

struct evb_mark {
    uint64_t magic;  /* 0: EVB_MARK_MAGIC */
    uint64_t format; /* 8: EVB_MARK_FORMAT_WORD */
    uint64_t pos;    /* 16: synced below this position */
    uint64_t offset; /* 24: offset of the event at pos */
    uint32_t crc;    /* 32: crc32c of bytes [0, 32) */
    uint32_t zero;   /* 36: 0 */
};

static_assert(offsetof(struct evb_mark, pos) == 16, "mark ABI moved: bump version");
static_assert(offsetof(struct evb_mark, crc) == 32, "mark ABI moved: bump version");
static_assert(sizeof(struct evb_mark) == EVB_MARK_BYTES, "mark size");

#endif
