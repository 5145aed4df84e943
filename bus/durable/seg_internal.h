/*
 * seg_internal.h - what the segment files (segment.c, seg_reader.c,
 * index.c, lookup.c, recover.c) share and nobody else uses: file helpers,
 * the checked segment listing, and the walk through the log.
 */
#ifndef EVB_SEG_INTERNAL_H
#define EVB_SEG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "segment.h"

#define EVB_SEG_IO_CHUNK (1u << 20) /* bytes per read or write when scanning, zeroing */
#define EVB_SEG_DIO 4096u /* O_DIRECT alignment of zeroing offsets, lengths, buffer */

/* -EINVAL (with a detail) unless G is a geometry segments can have. */
int evb_seg_geom_check(const struct evb_seg_geom *g);
/* The segment list for geometry G: a base that is no multiple of the
 * segment size means another geometry wrote it; refuse rather than guess. */
int evb_seg_list_checked(const char *dir, const struct evb_seg_geom *g, uint64_t **bases,
                         size_t *n);
/* All N bytes at OFF; -ENODATA when the file ends first. */
int evb_seg_read_at(int fd, void *buf, size_t n, off_t off);
/* The first file offset at or past AT (below END) that may hold data, as
 * the file system tells (lseek SEEK_DATA): what lies between reads as
 * zeros, a hole, and needs no reading. A multiple of EVB_FRAME_ALIGN when
 * AT is; END when nothing past AT below END is data; AT itself when the
 * file system cannot tell. */
uint64_t evb_seg_data_at(int fd, uint64_t at, uint64_t end);
/* The end of the last range below END, at or past FROM, that may hold
 * data (SEEK_DATA, SEEK_HOLE): FROM when there is none, END when the file
 * system cannot tell. */
uint64_t evb_seg_data_end(int fd, uint64_t from, uint64_t end);
/* All N bytes at OFF, or at the end of an O_APPEND file when OFF < 0. */
int evb_seg_write_at(int fd, const void *buf, size_t n, off_t off);
/* Overwrite N bytes from FROM with zeros (no sync). */
int evb_seg_zero_range(int fd, const char *path, uint64_t from, uint64_t n);
/* Extend the segment file PATH with zeros to BYTES (and sync) when it is
 * shorter: a segment cut short that the log goes on in (evb_seg_create
 * takes no short file). */
int evb_seg_fill_out(const char *path, uint64_t bytes);
/* fsync the directory DIR, so renames and unlinks in it last. */
int evb_seg_sync_dir(const char *dir);
/* Keep S open on the segment holding POS. A segment file cut short is
 * read as far as it goes (s->bytes below segment_bytes: the walks stop
 * or skip there); -EBADMSG only when not one word is left, -ENOENT none. */
int evb_seg_hold(struct evb_seg *s, const char *dir, const struct evb_seg_geom *g,
                 uint64_t pos);
/* S open on a segment cut short (s->bytes below G's segment_bytes): take
 * its size again, for a file made whole since it was opened (the flusher
 * does so, flush_segment.c refill_cut), capped at segment_bytes. 0, or
 * -errno when fstat fails (s->bytes unchanged). */
int evb_seg_regrow(struct evb_seg *s, const struct evb_seg_geom *g);

/* A walk through the log: next position, next offset (unknown while
 * learn is set; only a hint until a frame's own offset confirmed it). */
struct evb_seg_walk {
    uint64_t pos;
    uint64_t offset;
    bool learn;
    bool confirmed;
};

/* Take the frame at w->pos and move past it: 1 data, 2 pad, with
 * fr->offset the frame's offset; 0 no valid frame, -1 an offset other than
 * the expected one, a read error (EVB_SEG_EREAD) (W unchanged on all three). */
int evb_seg_step(struct evb_seg *s, const struct evb_seg_geom *g,
                 struct evb_seg_walk *w, struct evb_seg_frame *fr);
/* -EBADMSG with a detail saying why the walk stopped (KIND from step),
 * naming the segment file, the position and the byte in the file. */
int evb_seg_corrupt(const char *dir, const struct evb_seg_geom *g, const struct evb_seg_walk *w,
                    int kind, const struct evb_seg_frame *fr);
/* What the walk must find true for the index's time claim to hold: no
 * data frame below UNTIL has a timestamp above MAX_TS. */
struct evb_seg_hint {
    uint64_t until;
    uint64_t max_ts;
};
/* Where a walk of segment BASE may start so that it misses no match
 * (lookup.c): by offset, the last entry of index X (NULL: none) before
 * which no event can match TARGET; BY_TIME, the entry before that one (or
 * the base), *H what the frames up to it must bear out. */
struct evb_seg_walk evb_seg_walk_start(const struct evb_idx *x, const struct evb_seg_geom *g,
                                       uint64_t base, bool by_time, uint64_t target,
                                       struct evb_seg_hint *h);

/* Read the index in FD (file PATH) of segment BASE: the header must match,
 * entries are kept while they ascend and stay at or above the base. */
int evb_idx_read(int fd, const char *path, uint64_t base, struct evb_idx **out);

/* ---- seg_files.c: segment files as files (recovery's surgery) ---- */
/* Count into *DROPPED the bytes of PATH from FROM to its last non-zero
 * byte; with ZERO, overwrite them with zeros and sync. */
int evb_seg_cut_tail(const char *path, uint64_t from, bool zero, uint64_t *dropped);
/* evb_seg_cut_tail, told that no byte at or past UPTO is other than zero
 * (a walk just read them): those are not read again. */
int evb_seg_cut_tail_below(const char *path, uint64_t from, uint64_t upto, bool zero,
                           uint64_t *dropped);
/* Remove segment BASE of DIR, its index first; its bytes into *DROPPED. */
int evb_seg_remove(const char *dir, uint64_t base, uint64_t *dropped);
/* The mode of segment BASE's file (0600 when it cannot be read). */
uint32_t evb_seg_file_mode(const char *dir, uint64_t base);
/* The size of segment BASE's file; -ENOENT missing, -EMEDIUMTYPE not a
 * regular file. */
int64_t evb_seg_file_size(const char *dir, uint64_t base);
/* List DIR's segment files and check them against G before anything is
 * read or cut (grid, sizes; see the definition): 0 and the listing, or
 * -errno with none. */
int evb_seg_files_fit(const char *dir, const struct evb_seg_geom *g, uint64_t **bases,
                      size_t *n);
/* Cut segment BASE back to G's segment size when longer; the bytes cut
 * into *TRIMMED. */
int evb_seg_trim(const char *dir, const struct evb_seg_geom *g, uint64_t base,
                 uint64_t *trimmed);

#endif
