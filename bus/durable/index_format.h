/*
 * index_format.h - every byte of a segment's sparse index file,
 * <data>/<topic>/<p>/<base, 20 digits>.idx (DESIGN.md section 5).
 *
 * The index is a hint: readers check each entry against the log's frames
 * (lookup.c, recover.c) and a bad or missing index only costs a longer
 * walk. index.c writes and reads it.
 *
 *   0    +--------------------------------------------+
 *        | header, 64 bytes: magic, version, the      |
 *        | segment's base position and first offset   |
 *   64   +--------------------------------------------+
 *        | entry 0: pos, offset, max_ts (24 bytes)    |
 *   88   +--------------------------------------------+
 *        | entry 1 ...                                |  appended in
 *        +--------------------------------------------+  position order
 *
 * One entry per EVB_IDX_EVERY bytes of log (flush_segment.c), for the first
 * frame boundary at or after each mark. Integers are in host order, as in
 * the ring and the log. A torn last entry (a crash mid-append) is cut to
 * whole records when the index is reopened.
 *
 * Compatibility: the magic carries the format's generation in its last two
 * characters and version must equal EVB_IDX_VERSION; an index with another
 * magic or version is rejected (the message names found and expected
 * values) and rebuilt by the next flusher that appends to it, or ignored
 * by seeks. Bump EVB_IDX_VERSION on any change below.
 */
#ifndef EVB_INDEX_FORMAT_H
#define EVB_INDEX_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define EVB_IDX_MAGIC 0x3130584449425645ull /* "EVBIDX01" little-endian */
#define EVB_IDX_VERSION 1u

struct evb_idx_hdr {
    uint64_t magic;         /* 0: EVB_IDX_MAGIC, written once at creation */
    uint32_t version;       /* 8: EVB_IDX_VERSION */
    uint32_t pad_;          /* 12: 0 */
    uint64_t base_pos;      /* 16: the segment's base (its file name); a
                               mismatch rejects the index */
    uint64_t base_offset;   /* 24: offset of the first frame at base_pos;
                               recovery removes an index contradicting it */
    uint8_t reserved[32];   /* 32: zero */
};

/* A frame boundary POS of the segment, the offset of the frame there, and
 * the largest timestamp_ns of the data frames before POS in the segment
 * (0 for none). Entries ascend in pos, offset and max_ts; a reader keeps
 * the prefix that does and ignores the rest. */
struct evb_idx_entry {
    uint64_t pos;           /* 0: position, 8-aligned, >= base_pos */
    uint64_t offset;        /* 8: offset of the frame at pos */
    uint64_t max_ts;        /* 16: largest timestamp_ns before pos */
};

static_assert(offsetof(struct evb_idx_hdr, version) == 8, "index ABI moved: bump version");
static_assert(offsetof(struct evb_idx_hdr, base_pos) == 16, "index ABI moved: bump version");
static_assert(offsetof(struct evb_idx_hdr, base_offset) == 24, "index ABI moved: bump version");
static_assert(offsetof(struct evb_idx_hdr, reserved) == 32, "index ABI moved: bump version");
static_assert(sizeof(struct evb_idx_hdr) == 64, "index header size");
static_assert(offsetof(struct evb_idx_entry, offset) == 8, "index ABI moved: bump version");
static_assert(offsetof(struct evb_idx_entry, max_ts) == 16, "index ABI moved: bump version");
static_assert(sizeof(struct evb_idx_entry) == 24, "index entry size");

#endif
