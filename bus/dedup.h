/*
 * dedup.h - duplicate suppression for readers (EVB_CONSUMER_DEDUP): a
 * bounded table per partition of the highest sequence seen from each
 * stable producer, and its file beside a named consumer's cursor
 * (dedup.c; format: dedup_format.h). consumer.c calls it on its read path
 * and at commit and seek; any other reader (a group member) can do the
 * same with its own partition indexes.
 */
#ifndef EVB_DEDUP_H
#define EVB_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "evbus.h"

struct evb_topic_map;
struct evb_dup_hdr;

struct evb_dedup_part {
    uint32_t n;                 /* entries in use */
    uint32_t last;              /* entry of the last hit, the first one tried */
    uint64_t tick;              /* recency clock */
    uint64_t dropped;           /* statistics for evb_consumer_dedup_stat() */
    uint64_t evicted;
    uint64_t owed_events;       /* a loss carried by dropped events, for the */
    uint64_t owed_bytes;        /* next event delivered */
    bool dirty;                 /* changed since the last save */
    uint8_t cur;                /* the file's slot holding the last save */
    uint64_t gen;               /* that slot's gen */
    uint64_t from;              /* and its from */
    uint32_t id[EVB_DEDUP_PRODUCERS];
    uint64_t seq[EVB_DEDUP_PRODUCERS];
    uint64_t used[EVB_DEDUP_PRODUCERS];
};

struct evb_dedup {
    uint32_t n;                 /* tables, one per partition read */
    struct evb_dup_hdr *map;    /* the named consumer's file, or NULL */
    size_t bytes;
    char *path;                 /* the file's, for messages */
    struct evb_dedup_part p[];
};

/* Tables for N partitions read; NULL when out of memory. */
struct evb_dedup *evb_dedup_new(uint32_t n);
void evb_dedup_free(struct evb_dedup *d);
/* Slow path of evb_dedup_drop(). */
bool evb_dedup_check(struct evb_dedup_part *t, uint32_t id, uint64_t seq);

/* Whether the event (ID, SEQ) read from table I's partition is a
 * duplicate to drop; records it when not. Events of ids drawn from the bus
 * always pass: only a stable id can come back. */
static inline bool evb_dedup_drop(struct evb_dedup *d, uint32_t i, uint32_t id, uint64_t seq)
{
    if (!(id & EVB_PRODUCER_ID_STABLE))
        return false;
    struct evb_dedup_part *t = &d->p[i];
    uint32_t k = t->last;
    if (k < t->n && t->id[k] == id && seq > t->seq[k]) {
        t->seq[k] = seq;
        t->used[k] = ++t->tick;
        t->dirty = true;
        return false;
    }
    return evb_dedup_check(t, id, seq);
}

/* Forget table I (a seek moved its partition). */
void evb_dedup_reset(struct evb_dedup *d, uint32_t i);

/* Named consumer NAME of TM (GROUP: partition group NAME): open, creating
 * it when new, and check its file, consumers/NAME.dup (a group's:
 * consumers/NAME.gdup, which no consumer's file name can be). A named
 * consumer's must be its own; a group's is trusted as its group file is
 * (evb_group_trusted). Each partition's slots are written only by that
 * partition's reader (but see dedup.c on fenced group members), so
 * readers of disjoint partitions may share the file.
 * -EBADMSG, -EPROTO, -EACCES, -EMEDIUMTYPE with the detail naming it. */
int evb_dedup_file_open(struct evb_dedup *d, const struct evb_topic_map *tm,
                        const char *name, bool group);
/* Check TM's table NAME.dup (GROUP: NAME.gdup) for PART (UINT32_MAX:
 * every partition) as its reader's open and load would, read only, for evbus stat: 0 (sound, or no table),
 * else -EBADMSG, -EPROTO or an open error, and WHY (CAP bytes) names the
 * file and the fault. Nothing set for evb_last_error(). */
int evb_dedup_file_verify(const struct evb_topic_map *tm, const char *name, bool group,
                          uint32_t part, char *why, size_t cap);
/* Load table I (partition PART) from the file's slot covering POS, the
 * position its reader starts at (empty when none covers it); call it at
 * open and whenever a reader takes a partition over. -EBADMSG (count or
 * checksum) with the detail naming the file. */
int evb_dedup_load(struct evb_dedup *d, uint32_t i, uint32_t part, uint64_t pos);
/* Before committing POS for table I, whose partition is PART: make the
 * file's table for POS. */
void evb_dedup_save(struct evb_dedup *d, uint32_t i, uint32_t part, uint64_t pos);

#endif
