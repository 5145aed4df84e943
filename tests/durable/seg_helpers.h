/*
 * seg_helpers.h - shared by the segment tests (test_seg_*.c): a private
 * directory per test, a log image built by hand in memory (data frames,
 * both kinds of end pad, aborted claims, several segments of a 64 KiB
 * ring) with a record of every frame, and helpers that cut it into
 * segment and index files, patch them, and read them back.
 */
#ifndef EVB_SEG_HELPERS_H
#define EVB_SEG_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"

#define CAP (64u << 10)
#define SEG (128u << 10)
#define MAX_FRAME 4096u

extern const struct evb_seg_geom geom;
extern char dir[128]; /* this test's directory (setup/teardown) */
extern uint64_t rng;  /* next_rand's state */

uint64_t next_rand(void);
/* Suite .init/.fini: a fresh directory under $TMPDIR, removed after. */
void setup(void);
void teardown(void);

/* ---- a log image built by hand ---- */

struct rec {
    uint64_t pos;
    uint64_t offset; /* offset at this frame (data: its own) */
    uint64_t ts;
    bool data;
};

struct seg_log {
    uint8_t *buf; /* bytes of positions [0, cap) */
    uint64_t cap;
    uint64_t pos;    /* next position */
    uint64_t offset; /* next offset */
    struct rec *fr;  /* every frame, pads too */
    size_t nfr;
    unsigned stamp_pads, header_pads, abort_pads;
};
extern struct seg_log lg;

void log_reset(uint64_t cap);
struct evb_frame *frame_at(uint64_t pos);
void put_stamp(uint64_t pos, uint64_t stamp);
/* Bytes left in the current lap of the ring. */
uint64_t room(void);
void record(bool data, uint64_t ts);
/* The end pad of the lap: a header pad, or the stamp alone when the room
 * left is smaller than a header. */
void pad_end(void);
void put_data(uint32_t len, uint64_t ts);
/* A claim of EVENTS events over BYTES bytes that its producer aborted. */
void put_abort(uint16_t events, uint32_t bytes);
/* Frames of random sizes up to about END. Even laps end with a stamp-only
 * pad, odd ones with a header pad; timestamps wobble (not monotonic). */
void build(uint64_t end);
uint64_t offset_at(uint64_t pos);

/* ---- segment files ---- */

/* Write SEG bytes as segment BASE, bypassing evb_seg_create. */
void write_raw(uint64_t base, const uint8_t *bytes);
/* An index for each segment with an entry every EVERY frames; a wrong
 * offset in every entry when LIE. */
void write_indexes(unsigned every, uint64_t lie);
/* Cut the image into segment files (through evb_seg_create), indexed
 * every EVERY frames unless 0. */
void write_segments(unsigned every);
void read_seg(uint64_t base, uint8_t *out);
void patch_seg(uint64_t pos, const void *bytes, size_t n);
/* Bytes of a segment image from FROM up to its last non-zero byte. */
uint64_t tail_bytes(const uint8_t *seg, uint64_t from);
bool exists(uint64_t base, const char *ext);
/* Read from POS (learning the offset) to END: every data frame must be the
 * next one of the image, byte for byte; returns the read's final code. */
int read_all(uint64_t pos, uint64_t end, size_t *seen, struct evb_seg_reader *out);
size_t events_below(uint64_t end);
/* ---- read errors ----
 * The test binaries' pread (seg_helpers.c): a call on a read-only fd (a
 * segment reader's, recovery's scan) whose range covers file offset
 * t_pread_fail_at fails with EIO, counted in t_pread_failed; -1 (the
 * default): none fails. */
extern long long t_pread_fail_at;
extern int t_pread_failed;

/* evb_seg_recover on dir, asserting success. */
struct evb_seg_recovery recover_ok(void);

#endif
