/*
 * segment.h - the disk log of a durable partition (DESIGN.md section 5).
 *
 * <data>/<topic>/<partition>/ holds, per segment, with <base> the segment's
 * first position as 20 decimal digits:
 *
 *   <base>.log  segment_bytes bytes: the ring's bytes for positions
 *               [base, base + segment_bytes); the frame at position p sits
 *               at file offset p - base, in the format of ring_format.h,
 *               with crc32c filled in (evb_frame_crc)
 *   <base>.idx  sparse index, a hint only (index_format.h)
 *
 * segment_bytes is a multiple of the ring capacity, so a segment end is
 * always a ring end: no frame crosses it. Integers are in host order, as
 * in the ring. Every byte read from these files is checked before use.
 *
 * Files: segment.c (names, create, map), seg_reader.c (frames, reader),
 * index.c, lookup.c, recover.c.
 *
 * Everything here is cold path and keeps a detail for evb_last_error() on
 * failure. A reader handle is for one thread at a time; the rest keeps no
 * state between calls.
 */
#ifndef EVB_SEGMENT_H
#define EVB_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "index_format.h"
#include "ring.h"

struct evb_seg_geom {
    uint64_t segment_bytes; /* a multiple of capacity */
    uint64_t capacity;      /* ring capacity C, a power of two */
    uint32_t max_frame;     /* largest frame, header included */
    uint32_t max_event;     /* largest key + value (shm/frame.h) */
};

/* The geometry of a topic's log: segments of SEGMENT_BYTES, a ring of
 * RING_BYTES, events of at most MAX_EVENT bytes (and the frames that
 * makes, as the topic's rings have them). */
static inline struct evb_seg_geom evb_seg_geom_of(uint64_t segment_bytes, uint64_t ring_bytes,
                                                  uint32_t max_event)
{
    return (struct evb_seg_geom){segment_bytes, ring_bytes,
                                 (uint32_t)evb_frame_max(max_event), max_event};
}

/* "<ddir>/<part>": the directory of partition PART of the durable topic
 * whose data directory is DDIR. */
void evb_seg_part_dir(const char *ddir, uint32_t part, char *out, size_t cap);

/* "<dir>/<base, %020llu>.<ext>" with ext "log" or "idx";
 * -ENAMETOOLONG when it does not fit CAP. */
int evb_seg_path(char *out, size_t cap, const char *dir, uint64_t base, const char *ext);

/* Bases of the segment files in DIR (names of exactly 20 digits + ".log"),
 * ascending, in a malloc'd array the caller frees (NULL when N is 0).
 * -ENOENT when DIR does not exist, -ENOMEM. */
int evb_seg_list(const char *dir, uint64_t **bases, size_t *n);

/* Open segment BASE for writing (O_RDWR | O_CLOEXEC), creating it when it
 * does not exist: built as "<name>.tmp" (a leftover one is overwritten),
 * BYTES long but only its first EVB_SEG_RESERVE_FIRST bytes reserved
 * (evb_seg_reserve; -ENOSPC when the disk is full), synced, renamed into
 * place and the directory synced. Returns the fd. An existing segment of
 * another size is -EBADMSG. The writer reserves the rest in steps ahead of
 * its writes (flush_segment.c); what is not reserved reads as zeros, as a
 * reserved range not yet written does. */
int evb_seg_create(const char *dir, uint64_t base, uint64_t bytes, bool zero_fill,
                   uint32_t mode);
#define EVB_SEG_RESERVE_FIRST (64u << 10)
/* Reserve N bytes of segment file FD (named PATH in messages) from file
 * offset FROM: allocated (-ENOSPC when the disk is full) and, with
 * ZERO_FILL, written with zeros and synced, so later fdatasyncs have no
 * unwritten extents to convert: whole blocks with O_DIRECT where the file
 * system takes it (no page of the step left dirty for the next fdatasync),
 * a partial block at either end through the page cache. Only for a range
 * nothing was written to; no byte outside it is written. */
int evb_seg_reserve(int fd, const char *path, uint64_t from, uint64_t n, bool zero_fill);

/* The file a segment writer or sync leader has open, as it knows it. */
struct evb_seg_id {
    uint64_t dev, ino; /* ino 0: not known yet */
};
/* -EIO (message naming PATH) unless FD, opened as segment file PATH of
 * BYTES, still is that segment: linked (not removed), not cut short, and
 * the file PATH names: ID's when ID is known, else the one a stat of PATH
 * finds now. ID (may be NULL) is set to FD's identity either way. What
 * was written through FD and is not in the file PATH names is lost to
 * readers and to a rebuild, however well it was synced (issue 13, D7). */
int evb_seg_check_file(int fd, const char *path, uint64_t bytes, struct evb_seg_id *id);

/* A segment open for reading. Its bytes are read with pread into a window
 * the handle owns, never through a mapping: a file cut short under a
 * mapping, or a hole of a full tmpfs that a read fault must allocate,
 * kills the process with SIGBUS, where pread says what it can (holes
 * read as zeros without being allocated, bytes past a cut as none). */
struct evb_seg {
    int fd;             /* -1 when not open */
    uint64_t base;      /* first position */
    uint64_t bytes;     /* the segment's bytes as opened: segment_bytes, or
                           less for a file cut short (evb_seg_hold) */
    uint64_t stable;    /* position below which the bytes no longer change
                           (a reader's END); the window never keeps bytes
                           at or past it for a later call. UINT64_MAX:
                           all of them (recovery, under the flush lock) */
    uint8_t *buf;       /* the window: file bytes [win_at, win_at + win_len) */
    size_t buf_cap;
    uint64_t win_at;
    size_t win_len;
    int err;            /* the last read's error (negative errno), 0 none:
                           evb_seg_bytes sets it with each NULL it returns */
    uint64_t scan_end;  /* the last evb_seg_resync: the file offset past the
                           last non-zero word it looked at, 0 none (so a
                           cut after it need not read the zeros again) */
};

/* Open segment BASE for reading, BYTES long. -ENOENT missing (retention
 * removed it), -EBADMSG shorter than BYTES. S may be closed (evb_seg_unmap)
 * whatever this returns. */
int evb_seg_map(struct evb_seg *s, const char *dir, uint64_t base, uint64_t bytes);
void evb_seg_unmap(struct evb_seg *s);
/* N bytes of S at file offset AT (AT + N <= s->bytes), read into S's
 * window: valid until the next call on S. Bytes the file no longer has
 * (cut since it was opened) read as zeros, which no frame check passes.
 * NULL when out of bounds (s->err 0), on a read error or without memory
 * (s->err the negative errno, never -1: see EVB_SEG_EREAD). */
const uint8_t *evb_seg_bytes(struct evb_seg *s, uint64_t at, size_t n);

#define EVB_SEG_NO_OFFSET EVB_FRAME_NO_OFFSET

/* A checked frame; every field is a copy taken before the checks. */
struct evb_seg_frame {
    const struct evb_frame *f; /* in S's window, valid until the next call on
                                  S; NULL for a stamp-only pad */
    uint64_t skip;             /* bytes to the next frame */
    uint32_t events;           /* 1 for data, claim_events for a pad */
    uint64_t offset;           /* frame's offset; EVB_SEG_NO_OFFSET for a
                                  stamp-only pad, which carries none */
    uint32_t len;              /* data: frame length, unaligned */
    uint32_t key_len;          /* data: key bytes after the header */
    uint32_t value_at;         /* data: value start from the frame's (frame.h) */
    uint32_t value_len;        /* data */
    uint16_t flags;            /* data: EVB_FRAME_F_* */
};

/* A read of the segment failed (pread's error, no memory for the window):
 * K, returned by evb_seg_frame, evb_seg_misfit, evb_seg_step and the
 * walks, is then a negative errno below -1 (-1 is a step's offset break;
 * an EPERM from a read is passed as -EIO). Nothing is known about the
 * bytes: no frame, no damage; the caller passes the error up, cuts and
 * counts nothing, and may try again. */
#define EVB_SEG_EREAD(k) ((k) < -1)

/* The frame at POS in S: 1 data, 2 pad, 0 no valid frame there (wrong or
 * stale stamp, bad length, checksum mismatch, POS outside S), or a read
 * error (EVB_SEG_EREAD, with a detail). The rules are those of shm/read.c
 * plus the checksum; the caller compares offsets. */
int evb_seg_frame(struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos,
                  struct evb_seg_frame *out);

/* Whether POS in S holds a data frame written whole (stamp naming POS,
 * checksum matching) that G refuses: 1 it is longer than G's max_frame
 * or its key and value exceed G's max_event,
 * 2 it crosses the end of a ring of G's capacity, with *LEN its length;
 * or 3 a stamp-only pad *LEN bytes before the end of a smaller ring, a
 * valid frame at that end (a larger ring_bytes than the log's); 0
 * otherwise (a valid frame, or damage); a read error (EVB_SEG_EREAD). The
 * frame's checksum is taken a window at a time, so a forged length costs
 * reads up to the segment's end, never a buffer that size. Such a frame means the topic's
 * config is not the one the log was written with (topic.conf edited):
 * an error to report, never damage to skip or a tail to cut. */
int evb_seg_misfit(struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos,
                   uint32_t *len);

/*
 * Segment reader: the consumers behind the ring, and `evbus dump`.
 *
 *   evb_seg_reader_open(&sr, dir, &g);
 *   evb_seg_reader_seek(&sr, pos, 0, true);
 *   while (evb_seg_read(&sr, flushed, &v) == 0)
 *       use(v);   // v points into the reader's window: valid until the next call
 *   // -EAGAIN: sr.pos reached FLUSHED; go back to the ring at sr.pos,
 *   // sr.offset
 *   evb_seg_reader_close(&sr);
 */
struct evb_seg_reader {
    char *dir;              /* partition directory (owned copy) */
    struct evb_seg_geom g;
    struct evb_seg seg;     /* the segment open now, if any */
    uint64_t pos;           /* next position to read */
    uint64_t offset;        /* offset of the next event, unless learn */
    bool learn;             /* take the offset from the next frame with one */
    int failed;             /* sticky -EBADMSG after corruption */
    bool skip_damage;       /* skip damaged ranges instead of failing */
    uint64_t lost_bytes;    /* skipped since the last event delivered */
    uint64_t lost_from;     /* offset expected where the skip began, or
                               EVB_SEG_NO_OFFSET when unknown */
    uint64_t lost_events;   /* events the skip is known to have lost */
    uint64_t hint_pos;      /* where a seek with learn put the reader: its
                               offset there is a hint for the loss count */
    uint64_t offset_breaks; /* skip mode: intact frames met whose offset was
                               not the one expected, since the open. Each is
                               a damaged range of no bytes at that frame, as
                               a rebuild counts it (recover.c) and as a
                               reader not skipping fails there: the one
                               rule `evbus info --verify`, `evbus tail` and
                               a rebuild share (issue 13, D8) */
    uint64_t break_pos;     /* the first such frame's position since the
                               caller last set it to EVB_SEG_NO_OFFSET */
    bool once;              /* skip mode, for consumers: never hand out an
                               offset below `floor` (see evb_seg_read) */
    uint64_t floor;         /* the offset after the last frame taken, or
                               EVB_SEG_NO_OFFSET while none is known */
    uint64_t repeated;      /* events skipped below the floor since
                               lost_from was set */
};

/* -EINVAL for a bad geometry, -ENOMEM. Positioned at 0, learning. */
int evb_seg_reader_open(struct evb_seg_reader *sr, const char *dir,
                        const struct evb_seg_geom *g);
void evb_seg_reader_close(struct evb_seg_reader *sr);
/* Continue at POS (a frame start) expecting OFFSET there, or with LEARN
 * taking the offset from the next frame that carries one. */
void evb_seg_reader_seek(struct evb_seg_reader *sr, uint64_t pos, uint64_t offset,
                         bool learn);
/* The next data frame starting below END (a frame boundary: bytes below it
 * are completely written), pads skipped; V points into the reader's window
 * (valid until the next call), lost_* = 0. 0 delivered; -EAGAIN sr->pos >= END; -ENOENT the
 * segment holding sr->pos is gone; -EBADMSG an invalid frame or offset
 * below END (sticky); -EINVAL sr->pos not 8-aligned; a read error (-EIO,
 * -ENOMEM...: EVB_SEG_EREAD), not sticky: the reader stays where it was,
 * nothing counted lost, and a later call reads there again. A segment
 * held while it was cut short has its size taken again before the bytes
 * past the cut are called lost (the flusher makes such a file whole). */
int evb_seg_read(struct evb_seg_reader *sr, uint64_t end, struct evb_frame_view *v);

/* Skip damage instead of failing (evb_seg_reader.skip_damage): the read
 * goes on at the next valid frame, and the view of the next event carries
 * what was skipped in lost_events (when offsets tell) and lost_bytes.
 * With `once` as well, an intact frame whose offset is below `floor` (the
 * offsets went back: a hostile store to the ring's tail offset) is damage
 * too: such frames are skipped, each counted as a lost event and its
 * bytes as lost, until one reaches the floor again, so that no offset is
 * handed out twice with different values. evb_seg_next_offset() is the
 * offset a reader going on elsewhere (the ring) must expect next. */
static inline uint64_t evb_seg_next_offset(const struct evb_seg_reader *sr)
{
    if (sr->once && !sr->learn && sr->floor != EVB_SEG_NO_OFFSET && sr->offset < sr->floor)
        return sr->floor;
    return sr->offset;
}

/* *AT: the first position in [POS, LIMIT) holding a valid frame of S,
 * LIMIT when none does (*FR then untouched); 0. A read error: its
 * negative errno (EVB_SEG_EREAD), *AT untouched. */
int evb_seg_resync(struct evb_seg *s, const struct evb_seg_geom *g, uint64_t pos,
                   uint64_t limit, struct evb_seg_frame *fr, uint64_t *at);

/* ---- durable mark (mark.c, mark_format.h) ---- */

/* Record in DIR that the log is synced below POS, where the next event has
 * OFFSET; the log start recorded stays. Called after an fdatasync
 * completed. A mark that is not a regular file (a directory, FIFO or
 * symlink planted there) is replaced by one that is. 0, or -errno when it
 * could not be written (the mark may lag, never lead: recovery only
 * trusts less). */
int evb_seg_mark_durable(const char *dir, uint64_t pos, uint64_t offset, uint32_t mode);
/* Record in DIR that the retained log now starts at START_POS (offset
 * START_OFFSET): retention, before it removes segments below it. */
int evb_seg_mark_start(const char *dir, uint64_t start_pos, uint64_t start_offset,
                       uint32_t mode);

/* What the mark of a directory was found to be. */
enum { EVB_SEG_MARK_OK, EVB_SEG_MARK_MISSING, EVB_SEG_MARK_INVALID, EVB_SEG_MARK_NOT_FILE };
struct evb_seg_mark {
    uint64_t pos, offset;             /* synced below pos; offset there */
    uint64_t start_pos, start_offset; /* the retained log's start */
};
/* The mark of DIR: EVB_SEG_MARK_OK with *OUT filled, or why not. */
int evb_seg_mark_load(const char *dir, struct evb_seg_mark *out);
/* The mark of DIR: false when there is none or it fails its checks. */
bool evb_seg_mark_read(const char *dir, uint64_t *pos, uint64_t *offset);

/* ---- sparse index ---- */

/* The file format is index_format.h. */

/* A loaded index: the checked prefix of its entries. free() it. */
struct evb_idx {
    uint64_t base_pos;
    uint64_t base_offset;
    size_t n;      /* entries of the checked prefix (in order, in the segment) */
    size_t stored; /* entries in the file; e[n..stored) as read, unchecked */
    struct evb_idx_entry e[];
};

/* Open the index of segment BASE for appending (O_APPEND), creating it.
 * An existing index keeps its checked entries, cut to whole records; one
 * with a bad header or another BASE_OFFSET starts over, and anything but a
 * regular file at its name (a directory, FIFO, symlink) is removed first.
 * Returns the fd, or a negative errno: callers go on without an index. */
int evb_idx_create(const char *dir, uint64_t base, uint64_t base_offset, uint32_t mode);
/* Append N entries (no sync; the index is a hint). 0 or -errno. */
int evb_idx_append(int fd, const struct evb_idx_entry *e, size_t n);
/* Make the index of segment BASE agree with a log ending at END: entries
 * at or past END (and a bad tail) are cut; an index whose base offset is
 * not FIRST (EVB_SEG_NO_OFFSET: unknown) is removed. No index: 0. An index
 * is a hint: one that is not a regular file, or cannot be opened, is
 * removed if it can be and otherwise left for readers to ignore; only a
 * failed cut of a readable one is an error. */
int evb_idx_cut(const char *dir, uint64_t base, uint64_t end, uint64_t first);
/* Remove the index of segment BASE, whatever is at its name (a symlink
 * itself, never its target; an empty directory). 0 when nothing is left. */
int evb_idx_remove(const char *dir, uint64_t base);
/* Load the index of segment BASE: -ENOENT none, -EBADMSG bad header,
 * -ENOMEM. Entries stop at the first that is out of order or below base;
 * callers ignore those past the segment's end. */
int evb_idx_load(const char *dir, uint64_t base, struct evb_idx **out);

/* ---- lookups, for seeks ----
 * Both consider only events of frames starting below END, from the oldest
 * segment on, and return the event's position and offset; -ENOENT when
 * no event below END qualifies, -EBADMSG when a frame below END is bad. */

/* The first event whose offset is >= OFFSET (exactly OFFSET if present). */
int evb_seg_find_offset(const char *dir, const struct evb_seg_geom *g, uint64_t offset,
                        uint64_t end, uint64_t *pos, uint64_t *off);
/* The first event in log order whose timestamp_ns is >= TS. */
int evb_seg_find_time(const char *dir, const struct evb_seg_geom *g, uint64_t ts,
                      uint64_t end, uint64_t *pos, uint64_t *off);
/* What a skipping lookup passed: BYTES of damage (a missing, unreadable or
 * cut segment, frames that fail their checks, or 0 bytes for a frame whose
 * offset was not the one expected), where offset FROM was expected at its
 * start (EVB_SEG_NO_OFFSET: unknown). */
struct evb_seg_skipped {
    uint64_t bytes;
    uint64_t from;
};
/* Either of the two (BY_TIME), with SKIP passing damaged frames and
 * unreadable segments as a reader in skip mode does, so a seek past
 * damage lands where it was asked to. SK (may be NULL) gets the damage
 * passed right before the event found (0, 0 bytes too) or, -ENOENT, the
 * damage at the end of the log below END: the caller reports it as lost,
 * the lookup only says where it lies. */
int evb_seg_find(const char *dir, const struct evb_seg_geom *g, bool by_time, uint64_t target,
                 uint64_t end, bool skip, uint64_t *pos, uint64_t *off,
                 struct evb_seg_skipped *sk);

/* ---- recovery ---- */

struct evb_seg_recovery {
    uint64_t end_pos;       /* first position after the valid log */
    uint64_t end_offset;    /* offset the next event gets */
    uint64_t start_pos;     /* oldest position on disk */
    uint64_t start_offset;  /* its offset */
    uint64_t dropped_bytes; /* bytes cut off after end_pos */
    uint32_t segments;      /* segment files left */
    /* Damage below the end, kept as found (never cut): */
    uint32_t damaged;       /* damaged ranges (a missing segment is one) */
    uint64_t damaged_bytes; /* their bytes */
    uint64_t damaged_pos;   /* where the first one starts (UINT64_MAX: none) */
    uint64_t durable_pos;   /* the durable mark read (0: none) */
    uint32_t mark;          /* EVB_SEG_MARK_*: the mark as found */
    uint64_t cut_bytes;     /* dropped_bytes when the mark was not OK: a
                               cut no mark bounded, maybe synced events */
    uint64_t cut_pos;       /* where that cut started */
    uint64_t skipped_offsets; /* offsets voided by pads written at the old
                                 end after such a cut, so none it may have
                                 taken back is handed out again */
    uint64_t reset_commits; /* readers' commits past end_pos set back to it
                               (evb_restore_recover's caller) */
    uint64_t reset_left;    /* reader files that could not be checked */
};

/* Find where the log of DIR ends and cut the torn tail after it.
 *
 * Only what lies past the last durable position can be torn: that is the
 * durable mark (mark_format.h), when there is one, and in any case the end
 * of the last valid frame on disk (a valid frame carries a checksum and a
 * stamp naming its own position, so it was written whole, and its offset
 * was handed out). The end is the later of the two: the newest segment
 * holding a valid frame is walked from its base, over damaged ranges (to
 * the next valid frame, evb_seg_resync), to the end of its last valid
 * frame; a mark past that moves the end to the mark (position and offset).
 * Bytes after the end up to a segment's last non-zero byte are zeroed and
 * synced, later segments (none holds a valid frame) removed, and index
 * entries at or past the end cut (an index contradicting the log is
 * removed). dropped_bytes counts, per file, the bytes from where the cut
 * starts to its last non-zero byte, plus the bytes trimmed off files
 * grown past a segment's size (not log: evb_seg_fit()).
 * Damage below the end is never cut: ranges without a valid frame inside
 * the walked segment, a gap up to the mark, segments missing between the
 * oldest and the end are counted in damaged* and left for readers to
 * report (evb_seg_read) or skip. The offsets past the end are never below
 * one found on disk or in the mark, so none is handed out twice. Without
 * a valid mark a cut is unbounded (it may have dropped synced events whose
 * offsets were handed out): every offset the cut range could have held
 * (one per EVB_FRAME_HDR bytes up to the end of the newest segment file
 * that follows on from the end) is then skipped, in pads written at the
 * end and synced, the end moved past them; skipped_offsets says how many
 * and cut_bytes what was cut.
 * start_offset is the oldest segment's first valid frame's offset (its
 * index's base offset when its first frame is damaged). No segment: all
 * zero but the mark. The caller holds the partition's flush lock. -ENOENT
 * when DIR does not exist. HINT_POS is not used. */
int evb_seg_recover(const char *dir, const struct evb_seg_geom *g, uint64_t hint_pos,
                    struct evb_seg_recovery *out);

/* Whether the log of DIR was written with geometry G (topic.conf's), read
 * only: segment files off G's grid, longer than its segments with bytes
 * used past them while none has G's size, several all of one shorter
 * size, or a frame written whole that G refuses
 * (evb_seg_misfit) in the segments recovery walks are -EBADMSG naming
 * topic.conf and the file. evb_seg_recover() makes the same checks before
 * it cuts; restoring a topic runs this for every partition first, so no
 * partition is cut when another proves the config wrong. -ENOENT: 0. */
int evb_seg_fit(const char *dir, const struct evb_seg_geom *g);

/* What evb_seg_fit_walk's walk found, for evb_seg_recover_fitted to take
 * instead of walking the same segment again (a rebuild would read each
 * partition's newest segment twice): the newest segment holding a valid
 * frame, BASE (every newer one up to TOP holds none), and what its walk
 * found. Good only while nothing writes the log in between: the caller
 * holds the partition's flush lock across both calls. */
struct evb_seg_fitted {
    bool valid;
    uint64_t base, top;
    uint64_t end_pos, end_offset, first_off, max_next, zero_from;
    uint32_t damaged; /* the walk's damage, as in evb_seg_recovery */
    uint64_t damaged_bytes, damaged_pos;
};
/* evb_seg_fit, filling *FIT (may be NULL). */
int evb_seg_fit_walk(const char *dir, const struct evb_seg_geom *g, struct evb_seg_fitted *fit);
/* evb_seg_recover taking FIT (may be NULL) from evb_seg_fit_walk. */
int evb_seg_recover_fitted(const char *dir, const struct evb_seg_geom *g,
                           const struct evb_seg_fitted *fit, struct evb_seg_recovery *out);

/* ---- damage reports (verify.c) ---- */

struct evb_seg_damage {
    uint64_t ranges;        /* damaged ranges */
    uint64_t bytes;         /* their bytes */
    uint64_t first_pos;     /* at or before the first one; UINT64_MAX: none */
    uint64_t checked_bytes; /* evb_seg_verify: log bytes walked */
    uint32_t mark;          /* EVB_SEG_MARK_* found by a recovery */
    uint64_t cut_bytes;     /* cut without a mark to bound it, at cut_pos */
    uint64_t cut_pos;
    uint64_t skipped_offsets; /* voided after that cut (never reused) */
    uint64_t reset_commits; /* readers' commits rebuilds set back to the log end */
    uint64_t reset_left;    /* reader files they could not check */
    uint64_t bad_indexes;   /* evb_seg_verify: indexes contradicting their frames */
    uint64_t bad_index_base; /* the first one's segment (when bad_indexes) */
};

/* Record in DIR what recovery R found damaged (remove the record when
 * nothing): a report for `evbus info`, failures ignored. */
void evb_seg_damage_note(const char *dir, const struct evb_seg_recovery *r, uint32_t mode);
/* Note in DIR's record that its mark is in STATE (EVB_SEG_MARK_*, not OK):
 * the flusher could not write it. The rest of the record stays; failures
 * ignored, as for evb_seg_damage_note(). */
void evb_seg_damage_mark(const char *dir, uint32_t state, uint32_t mode);
/* The record of DIR: all zero (first_pos UINT64_MAX) when there is none;
 * -EBADMSG when it fails its checks. */
int evb_seg_damage_read(const char *dir, struct evb_seg_damage *out);
/* Walk the log of DIR over [START, END) read only, every frame checked as
 * a reader checks it, and count the damaged ranges (each run of bytes
 * without a valid frame, a missing or short segment), and the segment
 * indexes that contradict the frames they describe (hints, not damage). 0, or the reader's
 * error (-ENOENT: the segment at START is gone, -ENOMEM). */
int evb_seg_verify(const char *dir, const struct evb_seg_geom *g, uint64_t start, uint64_t end,
                   struct evb_seg_damage *out);

#endif
