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
#include <sys/stat.h>

struct evb_topic_map;
struct evb_grp_file;
struct evb_ring;

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
    bool dedup;                 /* opened with EVB_CONSUMER_DEDUP */
    char path[4096 + 128];      /* the file, to notice it removed or replaced */
    uint64_t dev, ino;
    uint64_t incarnation;       /* the file's incarnation word when we mapped it */
    /* Progress seen of every other slot, to expel the silent (G5). */
    uint64_t seen_beat[64];
    uint64_t seen_at_ms[64];
};

/* What a group file is made with (the first member's), group_format.h. */
struct evb_group_params {
    uint32_t kind;            /* EVB_GRP_KIND_* */
    uint32_t ack_wait_ms;     /* queues */
    uint32_t max_deliveries;  /* queues; 0: no limit */
    uint32_t window;          /* queues: events in flight per partition */
    bool dedup;               /* partition groups: members keep duplicate tables */
};

/* Map (creating with WANT when new) group NAME's file of TM, checked
 * whole. 0, -EBADMSG, -EPROTO, -EACCES (planted by an untrusted user),
 * -EINVAL (a group of another kind, or a partition group whose members'
 * dedup setting differs from WANT's), -errno. */
int evb_group_open(struct evb_group *g, const struct evb_topic_map *tm, const char *name,
                   const struct evb_group_params *want);
/* Whether a group file (or its dedup table, <group>.gdup) statted as ST
 * may be trusted: the caller's, root's, the topic owner's, or on a topic
 * shared for writing, shared for writing with the topic's group. 0 or
 * -EACCES naming PATH. */
int evb_group_trusted(const struct evb_topic_map *tm, const struct stat *st, const char *path);
/* Map the group file open at FD (PATH for messages) and check it. */
int evb_group_map(int fd, const char *path, uint32_t nparts, int prot,
                  struct evb_grp_file **out, size_t *len);
/* Leave (releasing every partition we own) and unmap; no-op when closed. */
void evb_group_close(struct evb_group *g);

/* Take a member slot with a fresh id. -EUSERS when all are taken by
 * live members. */
int evb_group_join(struct evb_group *g, uint32_t lease_ms);
/* Give every partition we own back and free our slot; wake the others. */
void evb_group_leave(struct evb_group *g);
/* Whether partition P's owner word names us (one load: the per-event
 * check that we did not lose it). */
bool evb_group_owner_is_us(const struct evb_group *g, uint32_t p);
/* The furthest position any owner of P was handed, and raise it to END
 * (owners only). */
uint64_t evb_group_delivered(const struct evb_group *g, uint32_t p);
/* One more event of P rejected to the dead-letter topic (display). */
void evb_group_rejected(struct evb_group *g, uint32_t p);
void evb_group_deliver(struct evb_group *g, uint32_t p, uint64_t end);
/* Whether the file at the group's path is no longer the one mapped
 * (removed to start the group over, or replaced). */
bool evb_group_replaced(const struct evb_group *g);
/* Whether the topic was rebuilt from its log since we mapped the file
 * (its incarnation word moved, J7): we are of the bus's previous life. */
bool evb_group_rebuilt(const struct evb_group *g);
/* After evb_group_replaced(): leave the old file, open the group at the
 * path (made anew with the old one's parameters if it is gone) and join
 * it. 0 or evb_group_open's / evb_group_join's errors. */
int evb_group_reopen(struct evb_group *g, const struct evb_topic_map *tm);
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

/* ---- queue.c: queue groups on the same file ---- */
struct evb_queue_take {
    uint64_t qseq;      /* the event's queue sequence: its ack token */
    uint64_t pos;       /* where it is */
    uint32_t count;     /* deliveries so far, this one included */
};
/* Set partition P's queue start to POS (when nobody did yet); then its
 * fetch position. 0, -EBADMSG (a damaged head). */
int evb_queue_start(struct evb_group *g, uint32_t p, uint64_t pos, uint64_t *fetch);
/* The fetch cursor {pos, qseq} of P; false when the queue has no start. */
bool evb_queue_fetch(const struct evb_group *g, uint32_t p, uint64_t *pos, uint64_t *qseq);
/* P's floor (everything below is acked): false when no start yet. OFF is
 * EVB_FRAME_NO_OFFSET (a queue does not keep offsets). */
bool evb_queue_floor(const struct evb_group *g, uint32_t p, uint64_t *pos, uint64_t *off);
/* Take the event at EV_POS (ending at END), the first after fetch {POS,
 * QSEQ}: 0 and it is ours (in flight, deadline now + ack_wait); -EAGAIN
 * another member took it first (fetch moved), -ENOSPC the window is full,
 * -ESTALE the topic was rebuilt since we opened the file (J7): nothing of
 * the take is published (no message set). */
int evb_queue_take(struct evb_group *g, uint32_t p, uint64_t pos, uint64_t qseq,
                   uint64_t ev_pos, uint64_t end);
/* Find an event of P in flight past its deadline or with its member
 * gone, or nacked and due, and take it again: 0 and *T, -EAGAIN none,
 * -ESTALE rebuilt since we opened the file (J7; no message set).
 * PRESENT: the member ids present now (N of them). */
int evb_queue_retake(struct evb_group *g, uint32_t p, const uint32_t *present, uint32_t n,
                     struct evb_queue_take *t);
/* Ack / nack (redeliver after DELAY_MS) event QSEQ of P taken by us.
 * 0, -ESTALE (no longer ours: redelivered after ack_wait, or acked). */
int evb_queue_ack(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos);
int evb_queue_nack(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos,
                   uint32_t delay_ms);
/* Keep it ours in flight for ack_wait + EXTRA_MS from now: what a reject
 * does (EVB_QUEUE_HOLD_MS) before it writes the dead-letter record, so
 * that no record is written for an event acknowledged already or taken by
 * another member (its resubmission would deliver it again), and no member
 * takes it while the record is written (as long as we are not expelled:
 * the caller beats first). 0, -ESTALE as ack. */
#define EVB_QUEUE_HOLD_MS 10000u
int evb_queue_hold(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos,
                   uint32_t extra_ms);
/* Waiting again for DELAY_MS, counted nowhere and its delivery count
 * taken back (its retake counts it again): an event the dead-letter topic
 * refused, whose record is tried again then. 0, -ESTALE as ack. */
int evb_queue_retry(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos,
                    uint32_t delay_ms);
/* Settle it as dead-lettered: acknowledged (never delivered again) and
 * counted in dead_lettered, not acked. 0, -ESTALE as ack. */
int evb_queue_dead_letter(struct evb_group *g, uint32_t p, uint64_t qseq, uint64_t pos);
/* Our events in flight in P (for `evbus groups`), counted by scanning. */
uint32_t evb_queue_in_flight(const struct evb_group *g, uint32_t p, uint32_t member);
/* Events of P past max_deliveries whose dead-letter record is not written
 * yet: waiting for their next take (which writes it), or held while it is
 * written. Stays up while the dead-letter topic refuses records. */
uint32_t evb_queue_dlq_due(const struct evb_group *g, uint32_t p);
/* Whether a member slot holds ID now. */
bool evb_group_id_present(const struct evb_group *g, uint64_t id);
/* The member ids present now, into IDS (64); how many. */
uint32_t evb_group_present(const struct evb_group *g, uint32_t *ids);

/* The lowest position any group of TM committed on P (retention). */
uint64_t evb_groups_min_committed(struct evb_topic_map *tm, uint32_t p);
/* A rebuild's reset of the group file FD at PATH (a topic of NPARTS
 * partitions) in P to the log end END_POS, END_OFF (evb_commits_reset):
 * 1 set back, 0 nothing past the end, or -errno (not mapped or checked,
 * or a queue whose words contradict each other; message set). */
int evb_group_file_reset(int fd, const char *path, uint32_t nparts, uint32_t p,
                         uint64_t end_pos, uint64_t end_off);
/* queue.c: the same for queue P of the checked group file F: fetch, and
 * the floor when past END, go back to END; the events taken at or past
 * END (lost) are forgotten, their slots back as the previous lap left
 * them, so the next take hands out the new event at END. 1 (the
 * partition's reset mark left set, for evb_queue_reset_done once the file
 * is on disk), 0, or -EBADMSG or -EAGAIN (left as it is; message set). */
int evb_queue_reset(struct evb_grp_file *f, uint32_t nparts, uint32_t p, uint64_t end);
/* queue.c: 0, or -EBADMSG when queue P's fetch and floor contradict each
 * other, fetch lies past RING's tail, or a slot lost its event or names
 * a position out of the log's order (damaged group file; message set);
 * -ESTALE when G's file was rebuilt meanwhile. */
int evb_queue_check(const struct evb_group *g, uint32_t p, const struct evb_ring *ring);
/* queue.c: 0, or -EBADMSG (-ESTALE when rebuilt) when FP, queue P's fetch
 * position, lies past TAIL or off the frame alignment. */
int evb_queue_fetch_check(const struct evb_group *g, uint32_t p, uint64_t fp, uint64_t tail);
/* After a reset of P's queue that returned 1 is on disk: its mark goes. */
void evb_queue_reset_done(struct evb_grp_file *f, uint32_t p);

#endif
