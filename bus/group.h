/*
 * group.h - a consumer group's shared file (group_format.h) and the
 * protocol on it: membership, partition ownership, fenced commits
 * (group.c). consumer_group.c decides when to balance and moves readers;
 * this layer knows nothing of readers.
 */
#ifndef EVB_GROUP_H
#define EVB_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evb_topic_map;
struct evb_grp_file;

/* One member's view of its group. */
struct evb_group {
    struct evb_grp_file *f;     /* group_format.h */
    size_t bytes;
    uint32_t nparts;
    char name[64];
    const char *topic;
    uint32_t slot;              /* our member slot */
    uint64_t id;                /* our member id, 0 when not a member */
    uint64_t proc;              /* evb_proc_self() when we joined */
    uint32_t lease_ms;
    /* Progress seen of every other slot, to expel the silent (G5). */
    uint64_t seen_beat[64];
    uint64_t seen_at_ms[64];
};

/* Map (creating when new) group NAME's file of TM, checked whole. 0,
 * -EBADMSG, -EPROTO, -EACCES (planted by an untrusted user), -errno. */
int evb_group_open(struct evb_group *g, const struct evb_topic_map *tm, const char *name);
/* Leave (releasing every partition we own) and unmap; no-op when closed. */
void evb_group_close(struct evb_group *g);

/* Take a member slot with a fresh id. -EUSERS when all are taken by
 * live members. */
int evb_group_join(struct evb_group *g, uint32_t lease_ms);
/* Give every partition we own back and free our slot; wake the others. */
void evb_group_leave(struct evb_group *g);
/* Whether our slot is still ours (false: we were expelled). */
bool evb_group_member(const struct evb_group *g);
/* Sign of life. */
void evb_group_beat(struct evb_group *g, uint64_t now_ms);
/* Expel members that died or stayed silent past their lease; how many. */
uint32_t evb_group_reap(struct evb_group *g, uint64_t now_ms);
/* Our share: partitions we should own with the members present now. */
uint32_t evb_group_quota(const struct evb_group *g);
uint64_t evb_group_generation(const struct evb_group *g);
_Atomic uint32_t *evb_group_bell(const struct evb_group *g);

/* Partition P's owner is us: our epoch there, else 0. */
uint64_t evb_group_owned_epoch(const struct evb_group *g, uint32_t p);
/* Take P when free or its owner is gone: 0 and our EPOCH (the cursor is
 * fenced with it), -EBUSY when a live member owns it. */
int evb_group_take(struct evb_group *g, uint32_t p, uint64_t *epoch);
/* Give P back (we own it at EPOCH). */
void evb_group_release(struct evb_group *g, uint32_t p, uint64_t epoch);
/* P's committed cursor: false when nothing was committed yet. OFF is
 * EVB_FRAME_NO_OFFSET when not known. */
bool evb_group_cursor(const struct evb_group *g, uint32_t p, uint64_t *pos, uint64_t *off);
/* Commit (POS, OFF) on P as its owner at EPOCH. 0, or -ESTALE (with the
 * message) when another member took P since, or we were expelled. */
int evb_group_commit(struct evb_group *g, uint32_t p, uint64_t epoch, uint64_t pos,
                     uint64_t off);
void evb_group_count(struct evb_group *g, uint32_t owned, uint64_t delivered);

/* The lowest position any group of TM committed on P (retention). */
uint64_t evb_groups_min_committed(struct evb_topic_map *tm, uint32_t p);

#endif
