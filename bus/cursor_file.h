/*
 * cursor_file.h - a named consumer's committed cursors, one file per
 * consumer and topic (cursor_file.c). consumer.c opens one per named
 * consumer; the retention of durable topics reads them all.
 */
#ifndef EVB_CURSOR_FILE_H
#define EVB_CURSOR_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evb_topic_map;
struct evb_cur_hdr;

/* A cursor file mapped and owned by this process; map NULL when none. */
struct evb_cursor_file {
    struct evb_cur_hdr *map;    /* cursor_format.h */
    size_t bytes;
    uint64_t dev, ino;          /* the file, for this process's list of held ones */
    struct evb_cursor_file *next; /* that list (cursor_file.c) */
};

/* Map (creating when new) consumer NAME's cursor file of TM and take its
 * ownership: -EBUSY while another live process holds it, or another
 * handle of this process (a forked child is another process). */
int evb_cursor_file_open(struct evb_cursor_file *cf, const struct evb_topic_map *tm,
                         const char *name);
/* Give up ownership and unmap; a no-op when not open. */
void evb_cursor_file_close(struct evb_cursor_file *cf);
/* The committed (position, offset) of partition PART; false when it was
 * never committed. */
bool evb_cursor_file_load(const struct evb_cursor_file *cf, uint32_t part, uint64_t *pos,
                          uint64_t *off);
/* Commit (POS, OFF) for partition PART. */
void evb_cursor_file_store(struct evb_cursor_file *cf, uint32_t part, uint64_t pos,
                           uint64_t off);

#endif
