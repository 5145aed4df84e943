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
 *        | segment's base position and first offset,  |
 *        | format word                                |
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
 * characters, version must equal EVB_IDX_VERSION and the format word must
 * be EVB_IDX_FORMAT_WORD, or 0: an index written before the word existed
 * has this layout with zero there, and is read as is. Anything else
 * (another build's layout, a newer version included) is rejected with a
 * message naming found and expected values, and then rebuilt by the next
 * flusher that appends to the segment (evb_idx_create starts it over),
 * removed by recovery (evb_idx_cut), and ignored by seeks and recovery's
 * walks, which go through the frames instead: no event is lost, a seek
 * only walks further. Bump
 * EVB_IDX_VERSION on any change below.
 */
#ifndef EVB_INDEX_FORMAT_H
#define EVB_INDEX_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define EVB_IDX_MAGIC 0x3130584449425645ull /* "EVBIDX01" little-endian */
#define EVB_IDX_VERSION 1u
#define EVB_IDX_HDR_BYTES 64u
#define EVB_IDX_ENTRY_BYTES 24u
#define EVB_IDX_ENTRY_OFFSET 8u  /* offset of offset in an entry */
#define EVB_IDX_ENTRY_MAX_TS 16u /* offset of max_ts in an entry */

/*
 * Version, header and entry sizes and the entry's field offsets folded into
 * one word, as the ring's EVB_RING_FORMAT_WORD: a build that lays the file
 * out differently rejects it even if the version was not bumped.
 */
#define EVB_IDX_FORMAT_WORD                                                      \
    ((uint64_t)EVB_IDX_VERSION << 48 | (uint64_t)EVB_IDX_HDR_BYTES << 32 |       \
     (uint64_t)EVB_IDX_ENTRY_BYTES << 16 | (uint64_t)EVB_IDX_ENTRY_OFFSET << 8 | \
     (uint64_t)EVB_IDX_ENTRY_MAX_TS)

struct evb_idx_hdr {
    uint64_t magic;         /* 0: EVB_IDX_MAGIC, written once at creation */
    uint32_t version;       /* 8: EVB_IDX_VERSION */
    uint32_t pad_;          /* 12: 0 */
    uint64_t base_pos;      /* 16: the segment's base (its file name); a
                               mismatch rejects the index */
    uint64_t base_offset;   /* 24: offset of the first frame at base_pos;
                               recovery removes an index contradicting it */
    uint64_t format;        /* 32: EVB_IDX_FORMAT_WORD; 0 in an index
                               written before the word existed */
    uint8_t reserved[24];   /* 40: zero */
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
static_assert(offsetof(struct evb_idx_hdr, format) == 32, "index ABI moved: bump version");
static_assert(offsetof(struct evb_idx_hdr, reserved) == 40, "index ABI moved: bump version");
static_assert(sizeof(struct evb_idx_hdr) == EVB_IDX_HDR_BYTES, "index header size");
static_assert(offsetof(struct evb_idx_entry, offset) == EVB_IDX_ENTRY_OFFSET,
              "index ABI moved: bump version");
static_assert(offsetof(struct evb_idx_entry, max_ts) == EVB_IDX_ENTRY_MAX_TS,
              "index ABI moved: bump version");
static_assert(sizeof(struct evb_idx_entry) == EVB_IDX_ENTRY_BYTES, "index entry size");

#endif
