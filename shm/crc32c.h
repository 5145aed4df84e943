/*
 * crc32c.h - CRC32C (Castagnoli) of frames written to disk segments, so
 * recovery can tell a torn or rotten frame from a good one (DESIGN.md §5).
 */
#ifndef EVB_CRC32C_H
#define EVB_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_format.h"

/* CRC32C of N bytes at P, continuing from CRC (0 to start). The function
 * inverts in and out itself, so results chain like zlib's crc32():
 * evb_crc32c(evb_crc32c(0, a, n), b, m) == CRC of a followed by b.
 * Uses the SSE4.2 instruction when the CPU has it, else tables. */
uint32_t evb_crc32c(uint32_t crc, const void *p, size_t n);

/* The checksum stored in a durable frame's crc32c field: bytes [8, 48)
 * then [52, LEN) of the frame, i.e. all but the stamp (written last, and
 * rewritten by padders) and the checksum itself. Requires
 * LEN >= EVB_FRAME_HDR and LEN readable bytes at F. */
uint32_t evb_frame_crc(const struct evb_frame *f, uint32_t len);

/* A frame's value copied in and its checksum, in one pass: N bytes from
 * SRC to DST (F's value, N bytes, the last bytes of F's LEN; F's header,
 * key and key padding written already), returning evb_frame_crc(F,
 * F->len) of the frame as written. SRC and DST do not overlap. */
uint32_t evb_frame_copy_crc(struct evb_frame *f, void *dst, const void *src, uint32_t n);

/* Each implementation on its own, for tests. evb_crc32c_hw() is the best
 * hardware path (streams joined by PCLMULQDQ when evb_crc32c_has_clmul(),
 * else by tables); evb_crc32c_hw_tables() the table-joined one; both
 * quietly use the tables when evb_crc32c_has_hw() is false.
 * evb_frame_crc_generic() is evb_frame_crc() from a copy of the header,
 * as CPUs without PCLMULQDQ compute it. */
uint32_t evb_crc32c_sw(uint32_t crc, const void *p, size_t n);
uint32_t evb_crc32c_hw(uint32_t crc, const void *p, size_t n);
uint32_t evb_crc32c_hw_tables(uint32_t crc, const void *p, size_t n);
uint32_t evb_frame_crc_generic(const struct evb_frame *f, uint32_t len);
bool evb_crc32c_has_hw(void);
bool evb_crc32c_has_clmul(void);

#endif
