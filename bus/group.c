/*
 * group.c - a consumer group with no coordinator: the members share one
 * file (group_format.h) and agree through compare-and-swap alone.
 *
 *   join     claim a free member slot by CAS of its process word, take a
 *            fresh member id (never reused), bump the generation.
 *   balance  (consumer_group.c) every member computes the same even
 *            split from the occupied slots: with n members and P
 *            partitions, the member of rank r (slot order) owns P/n, plus
 *            one when r < P%n. It gives back what is over its share and
 *            takes free partitions, or those of members that are gone,
 *            up to it. Nobody takes from a live member: that member gives
 *            back on its own at its next tick.
 *   expel    a member whose process is dead (pid plus start time), or
 *            that showed no sign of life for its lease, is expelled by
 *            whoever notices: its slot is emptied by CAS, the generation
 *            bumped. Its partitions then count as free.
 *   fence    a new owner moves the partition's {owner, epoch} pair to
 *            {itself, epoch + 1} and stamps the new epoch into the
 *            committed cursor's tag; a commit is a CAS expecting the
 *            committer's own epoch in the tag, so after the stamp an old
 *            owner (expelled, paused, or simply slow to notice) can never
 *            move the cursor again. Before the stamp its commit is simply
 *            the last one, and the new owner starts after it.
 *
 * Ordering edges (labels used at each site):
 *
 *   J1  creation: every header word before the magic (release); pairs
 *       with the opener's acquire load of the magic.
 *   J2  member id: a joiner stores its id (release) after claiming the
 *       slot; a member that found an owner id in a partition (acquire,
 *       or a CAS) and looks for it among the slots loads slot ids with
 *       acquire, so an owner that took the partition is found in its
 *       slot unless it left or was expelled since.
 *   J3  generation: bumped (acq_rel) after a slot changed hands; members
 *       load it with acquire and then read the slots.
 *   J4  ownership and cursors: 16-byte CAS, a full barrier (shm/arch.h):
 *       whatever a member did before taking or committing is visible to
 *       whoever sees the new pair.
 *   J5  heartbeats and counters: relaxed; numbers read for liveness and
 *       display, ordering nothing.
 *   J6  slots: claimed, given back and emptied by CAS (acq_rel), read with
 *       acquire, so a slot's words are read as its present holder wrote
 *       them, never a mix with a previous one's.
 *   J7  incarnation: a rebuild bumps it (seq_cst RMW) before its resets'
 *       CASes; a queue member loads it (acquire) before each take's,
 *       retake's and settle's CASes and stops when it moved, and again
 *       after a take's and a retake's CASes. The queue's reset
 *       (queue.c, evb_queue_reset) renumbers every event (qseq + 4 x the
 *       window: same slots, laps + 4) and writes each word by CAS from
 *       what it holds now, looking again when a member of the old life
 *       moved it first: so no CAS of the old life that comes after the
 *       reset's matches anything in the rebuilt queue (ack tokens
 *       included), and one that came before is what the reset renumbers.
 *       A member whose loads saw renumbered words saw the bump too (the
 *       reset's full-barrier CASes follow it), so its next look stops it.
 *       Left: a survivor may hand its own application an event of the
 *       old life it took before its last look, as any take before the
 *       removal.
 */
#include "group.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "group_format.h"
#include "safe_open.h"

/* Check the header of a group file of SIZE bytes mapped at F (at least
 * the header, member slots and partition entries), MAGIC loaded with
 * acquire (J1). 0, or -EBADMSG / -EPROTO with the reason in MSG. */
int evb_group_check(const struct evb_grp_file *f, uint64_t magic, size_t size,
                    uint32_t nparts, char *msg, size_t cap)
{
    if (magic != EVB_GRP_MAGIC) {
        snprintf(msg, cap, "magic 0x%llx, expected 0x%llx", (unsigned long long)magic,
                 (unsigned long long)EVB_GRP_MAGIC);
        return -EBADMSG;
    }
    if (f->h.version != EVB_GRP_VERSION) {
        snprintf(msg, cap, "version %u, this build reads %u", f->h.version, EVB_GRP_VERSION);
        return -EPROTO;
    }
    if (f->h.format != EVB_GRP_FORMAT_WORD) {
        snprintf(msg, cap, "format 0x%llx, this build reads 0x%llx",
                 (unsigned long long)f->h.format, (unsigned long long)EVB_GRP_FORMAT_WORD);
        return -EPROTO;
    }
    uint32_t kind = f->h.kind, w = f->h.window;
    if (kind != EVB_GRP_KIND_PARTITION && kind != EVB_GRP_KIND_QUEUE) {
        snprintf(msg, cap, "group kind %u, expected %u or %u", kind, EVB_GRP_KIND_PARTITION,
                 EVB_GRP_KIND_QUEUE);
        return -EBADMSG;
    }
    if (kind == EVB_GRP_KIND_QUEUE && (w == 0 || w > EVB_QUEUE_WINDOW_MAX || (w & (w - 1)))) {
        snprintf(msg, cap, "queue window %u, not a power of two up to %u", w,
                 EVB_QUEUE_WINDOW_MAX);
        return -EBADMSG;
    }
    /* What evb_cqueue_open() writes: an ack_wait of 0 would hand every
     * event to the next member at once, a limit past 254 is none the
     * slots can count to (a cold attack planted both unnoticed). */
    if (kind == EVB_GRP_KIND_QUEUE && f->h.ack_wait_ms == 0) {
        snprintf(msg, cap, "queue ack_wait 0 ms, none is made so");
        return -EBADMSG;
    }
    if (kind == EVB_GRP_KIND_QUEUE && f->h.max_deliveries > 254) {
        snprintf(msg, cap, "queue max_deliveries %u, at most 254 (0: no limit)",
                 f->h.max_deliveries);
        return -EBADMSG;
    }
    size_t want = evb_grp_file_bytes(nparts, kind, w);
    if (f->h.partitions != nparts) {
        snprintf(msg, cap, "a group of %u partitions, the topic has %u", f->h.partitions,
                 nparts);
        return -EBADMSG;
    }
    if (size != want) {
        snprintf(msg, cap, "%zu bytes, a group file of this topic has %zu", size, want);
        return -EBADMSG;
    }
    return 0;
}

int evb_group_map(int fd, const char *path, uint32_t nparts, int prot,
                  struct evb_grp_file **out, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    size_t size = (size_t)st.st_size;
    size_t least = evb_grp_file_bytes(nparts, EVB_GRP_KIND_PARTITION, 0);
    if (size < least)
        return evb_err_set(-EBADMSG, "%s: %zu bytes, smaller than a group file of this topic "
                           "(%zu)", path, size, least);
    struct evb_grp_file *f = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
    if (f == MAP_FAILED)
        return evb_err_set(-errno, "%s: mmap: %s", path, strerror(errno));
    /* J1: acquire; a set magic comes with a finished file. */
    uint64_t magic = atomic_load_explicit(&f->h.magic, memory_order_acquire);
    char msg[160];
    int rc = evb_group_check(f, magic, size, nparts, msg, sizeof msg);
    if (rc) {
        munmap(f, size);
        return evb_err_set(rc, "%s: %s (not this topic's group file; stop every member and "
                           "remove it to start the group over)", path, msg);
    }
    *out = f;
    *len = size;
    return 0;
}

struct grp_new {
    uint32_t nparts;
    const struct evb_group_params *gp;
};

static void grp_init(void *map, void *arg)
{
    struct evb_grp_file *f = map;
    const struct grp_new *gn = arg;
    f->h.version = EVB_GRP_VERSION;
    f->h.partitions = gn->nparts;
    f->h.format = EVB_GRP_FORMAT_WORD;
    f->h.kind = gn->gp->kind;
    /* Relaxed: published by the magic's release (J1). */
    atomic_store_explicit(&f->h.flags, EVB_GRP_F_SET | (gn->gp->dedup ? EVB_GRP_F_DEDUP : 0),
                          memory_order_relaxed);
    f->h.ack_wait_ms = gn->gp->ack_wait_ms;
    f->h.max_deliveries = gn->gp->max_deliveries;
    f->h.window = gn->gp->window;
    for (uint32_t p = 0; gn->gp->kind == EVB_GRP_KIND_QUEUE && p < gn->nparts; p++) {
        struct evb_queue_head *q = evb_queue_head(f, gn->nparts, p);
        /* Relaxed: published by the magic's release (J1). */
        atomic_store_explicit(&q->fetch_pos, EVB_GRP_POS_NONE, memory_order_relaxed);
        atomic_store_explicit(&q->floor_pos, EVB_GRP_POS_NONE, memory_order_relaxed);
    }
    for (uint32_t p = 0; p < gn->nparts; p++)
        /* Relaxed: published by the magic's release (J1). */
        atomic_store_explicit(&f->p[p].pos, EVB_GRP_POS_NONE, memory_order_relaxed);
    /* J1: release; the header and cursors before the magic. */
    atomic_store_explicit(&f->h.magic, EVB_GRP_MAGIC, memory_order_release);
}

/* The group file's directory and name, as cursor_file.c's: consumers/ of
 * the topic (the data directory's for durable topics). */
static void grp_path(char *path, size_t cap, const struct evb_topic_map *tm, const char *name)
{
    const char *top = tm->ddir[0] ? tm->ddir : tm->dir;
    if (name)
        snprintf(path, cap, "%s/consumers/%s.grp", top, name);
    else
        snprintf(path, cap, "%s/consumers", top);
}

/* Whom a group file may belong to: a member trusts its own, root's, and
 * the topic owner's. consumers/ is writable by every reader (sticky), so
 * a file planted there by anyone else could steer the group's cursors. */
int evb_group_trusted(const struct evb_topic_map *tm, const struct stat *st, const char *path)
{
    if (st->st_uid == geteuid() || st->st_uid == 0)
        return 0;
    struct stat td;
    if (stat(tm->dir, &td) == 0 && td.st_uid == st->st_uid)
        return 0;
    /* A topic shared for writing with a group (0660) lets every writer
     * join its groups, and so make a group's file: one shared the same
     * way (the topic's group may write it) is the group's, whoever came
     * first. Any of those writers could commit garbage as a member
     * anyway; the rule keeps out everyone else. */
    if ((tm->cfg.file_mode & 020) && (st->st_mode & 020) && stat(tm->dir, &td) == 0 &&
        td.st_gid == st->st_gid)
        return 0;
    return evb_err_set(-EACCES, "%s: owned by uid %u, neither you (uid %u), root, the "
                       "topic's owner, nor shared for writing with the topic's group", path,
                       (unsigned)st->st_uid, (unsigned)geteuid());
}

/* MKDIRS: make consumers/ when it is missing (a first open; a reopen
 * must not bring back the directory of a topic deleted meanwhile). */
static int grp_open(struct evb_group *g, const struct evb_topic_map *tm, const char *name,
                    const struct evb_group_params *want, bool mkdirs)
{
    memset(g, 0, sizeof *g);
    char path[PATH_MAX + 128];
    grp_path(path, sizeof path, tm, NULL);
    if (tm->ddir[0] && mkdirs)
        evb_make_dirs(path, evb_drop_dir_mode(tm->cfg.file_mode));
    grp_path(path, sizeof path, tm, name);
    size_t bytes = evb_grp_file_bytes(tm->nparts, want->kind, want->window);
    struct grp_new gn = {tm->nparts, want};
    int fd = evb_file_open_or_create(path, tm->cfg.file_mode, bytes, tm->ddir[0] != 0,
                                     grp_init, &gn);
    if (fd < 0)
        return fd;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? evb_err_set(-errno, "%s: %s", path, strerror(errno))
                                : evb_group_trusted(tm, &st, path);
    struct evb_grp_file *f = NULL;
    size_t len = 0;
    if (!rc)
        rc = evb_group_map(fd, path, tm->nparts, PROT_READ | PROT_WRITE, &f, &len);
    close(fd);
    if (rc)
        return rc;
    uint32_t kind = f->h.kind;
    if (kind != want->kind) {
        munmap(f, len);
        return evb_err_set(-EINVAL, "group %s of topic %s is a %s group; open it as one", name,
                           tm->name, kind == EVB_GRP_KIND_QUEUE ? "queue" : "partition");
    }
    if (kind == EVB_GRP_KIND_PARTITION) {
        uint32_t mine = EVB_GRP_F_SET | (want->dedup ? EVB_GRP_F_DEDUP : 0);
        /* Relaxed: one word standing alone, written once (by the maker,
         * or here by CAS from 0 for a file made before it was used). */
        uint32_t flags = atomic_load_explicit(&f->h.flags, memory_order_relaxed);
        if (!(flags & EVB_GRP_F_SET) &&
            /* Relaxed: as above; a loser reads the winner's word. */
            atomic_compare_exchange_strong_explicit(&f->h.flags, &flags, mine,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed))
            flags = mine;
        if ((flags & EVB_GRP_F_DEDUP) != (mine & EVB_GRP_F_DEDUP)) {
            munmap(f, len);
            bool has = flags & EVB_GRP_F_DEDUP;
            return evb_err_set(-EINVAL, "group %s of topic %s: its members %s duplicate "
                               "tables (dedup, EVB_CONSUMER_DEDUP); join it %s, or remove %s "
                               "to start the group over", name, tm->name,
                               has ? "keep" : "keep no", has ? "with dedup" : "without dedup",
                               path);
        }
    }
    g->f = f;
    g->bytes = len;
    g->nparts = tm->nparts;
    g->topic = tm->name;
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->path, sizeof g->path, "%s", path);
    g->dev = (uint64_t)st.st_dev;
    g->ino = (uint64_t)st.st_ino;
    /* J7: acquire, as every member's load of the word. */
    g->incarnation = atomic_load_explicit(&f->h.incarnation, memory_order_acquire);
    return 0;
}

bool evb_group_rebuilt(const struct evb_group *g)
{
    /* J7: acquire (no store of ours to order before it); the line is
     * read-mostly (a rebuild writes it), so an L1 hit per take and ack. */
    return atomic_load_explicit(&g->f->h.incarnation, memory_order_acquire) != g->incarnation;
}

int evb_group_open(struct evb_group *g, const struct evb_topic_map *tm, const char *name,
                   const struct evb_group_params *want)
{
    int rc = grp_open(g, tm, name, want, true);
    g->dedup = want->dedup;
    return rc;
}

bool evb_group_replaced(const struct evb_group *g)
{
    struct stat st;
    if (lstat(g->path, &st) < 0)
        return errno == ENOENT;
    return (uint64_t)st.st_dev != g->dev || (uint64_t)st.st_ino != g->ino;
}

uint64_t evb_group_delivered(const struct evb_group *g, uint32_t p)
{
    /* J5: relaxed, a number; the owner word's acquire (J4) came first. */
    return atomic_load_explicit(&g->f->p[p].delivered_pos, memory_order_relaxed);
}

void evb_group_deliver(struct evb_group *g, uint32_t p, uint64_t end)
{
    /* J5: relaxed, a number only the owner stores. */
    atomic_store_explicit(&g->f->p[p].delivered_pos, end, memory_order_relaxed);
}

void evb_group_rejected(struct evb_group *g, uint32_t p)
{
    /* J5: relaxed counter. */
    atomic_fetch_add_explicit(&g->f->p[p].rejected, 1, memory_order_relaxed);
}

bool evb_group_owner_is_us(const struct evb_group *g, uint32_t p)
{
    /* Relaxed: a hint checked per event; the tick it triggers reads the
     * pair with acquire (J4). The line is ours (we commit to it), so the
     * load costs an L1 hit until another member takes the partition. */
    return atomic_load_explicit(&g->f->p[p].owner, memory_order_relaxed) == g->id;
}

void evb_group_close(struct evb_group *g)
{
    if (!g->f)
        return;
    evb_group_leave(g);
    munmap(g->f, g->bytes);
    g->f = NULL;
}

int evb_group_reopen(struct evb_group *g, const struct evb_topic_map *tm)
{
    /* The old file's parameters are what the member was made with; a
     * file made anew at the path by someone else keeps its own. */
    struct evb_group_params gp = {.kind = g->f->h.kind,
                                  .ack_wait_ms = g->f->h.ack_wait_ms,
                                  .max_deliveries = g->f->h.max_deliveries,
                                  .window = g->f->h.window,
                                  .dedup = g->dedup};
    char name[sizeof g->name];
    memcpy(name, g->name, sizeof name);
    uint32_t lease = g->lease_ms;
    evb_group_close(g);
    int rc = grp_open(g, tm, name, &gp, false);
    g->dedup = gp.dedup;
    if (rc == -ENOENT)
        evb_err_set(rc, "group %s of topic %s: the topic's consumers/ directory is gone (the "
                    "topic was deleted?)", name, tm->name);
    return rc ? rc : evb_group_join(g, lease);
}

static void grp_bump(struct evb_group *g)
{
    /* J3: acq_rel; the slot change before the new generation. */
    atomic_fetch_add_explicit(&g->f->h.generation, 1, memory_order_acq_rel);
    /* Bumps the bell (B1, shm/doorbell.c) and wakes every sleeper. */
    evb_bell_ring(&g->f->h.bell);
}

int evb_group_join(struct evb_group *g, uint32_t lease_ms)
{
    uint64_t self = evb_proc_self();
    uint64_t now = evb_mono_ns() / 1000000u;
    for (uint32_t s = 0; s < EVB_GRP_MEMBERS; s++) {
        struct evb_grp_member *m = &g->f->m[s];
        /* Relaxed: the CAS below decides; a stale value only fails it. */
        uint64_t o = atomic_load_explicit(&m->proc, memory_order_relaxed);
        if (o && evb_proc_alive(o))
            continue;
        /* J6: acq_rel; the slot is ours from here, after whatever its
         * last holder did in it. Relaxed on failure: another joiner won
         * it, try the next. */
        if (!atomic_compare_exchange_strong_explicit(&m->proc, &o, self, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        /* A dead member's slot taken over: it is expelled as the reaper
         * would have (a cold attack found the group's only member, killed,
         * never counted). J5: relaxed counter. */
        if (o)
            atomic_fetch_add_explicit(&g->f->h.expelled, 1, memory_order_relaxed);
        /* J5: relaxed, liveness numbers. */
        atomic_store_explicit(&m->heartbeat_ms, now, memory_order_relaxed);
        atomic_store_explicit(&m->lease_ms, lease_ms, memory_order_relaxed);
        atomic_store_explicit(&m->owned, 0, memory_order_relaxed);
        char comm[16] = {0};
        prctl(PR_GET_NAME, comm, 0, 0, 0);
        memcpy(m->comm, comm, sizeof comm);
        /* Relaxed: a fresh number; uniqueness is all it needs. */
        uint64_t id = atomic_fetch_add_explicit(&g->f->h.next_member, 1,
                                                memory_order_relaxed) + 1;
        /* J2: release; the slot's words before the id others look up. */
        atomic_store_explicit(&m->id, id, memory_order_release);
        g->slot = s;
        g->id = id;
        g->proc = self;
        g->lease_ms = lease_ms;
        memset(g->seen_at_ms, 0, sizeof g->seen_at_ms);
        grp_bump(g);
        return 0;
    }
    return evb_err_set(-EUSERS, "group %s of topic %s: all %u member slots are taken by live "
                       "members", g->name, g->topic, EVB_GRP_MEMBERS);
}

bool evb_group_member(const struct evb_group *g)
{
    const struct evb_grp_member *m = &g->f->m[g->slot];
    /* J2: acquire, as any reader of a slot's id. */
    return g->id && atomic_load_explicit(&m->proc, memory_order_acquire) == g->proc &&
           atomic_load_explicit(&m->id, memory_order_acquire) == g->id;
}

void evb_group_leave(struct evb_group *g)
{
    if (!g->id)
        return;
    /* A forked child's copy of its parent's member: the slot and the
     * partitions are the parent's, who is still a member. */
    if (g->proc != evb_proc_self()) {
        g->id = 0;
        return;
    }
    for (uint32_t p = 0; p < g->nparts; p++) {
        uint64_t e = evb_group_owned_epoch(g, p);
        if (e)
            evb_group_release(g, p, e);
    }
    struct evb_grp_member *m = &g->f->m[g->slot];
    uint64_t self = g->proc;
    /* J2: acquire, our id still there. J6: acq_rel on success, the slot
     * handed back after everything we did in it. Relaxed on failure: we
     * were expelled, the slot is someone else's. */
    if (atomic_load_explicit(&m->id, memory_order_acquire) == g->id &&
        atomic_compare_exchange_strong_explicit(&m->proc, &self, 0, memory_order_acq_rel,
                                                memory_order_relaxed)) {
        /* Relaxed: the slot is free; the proc CAS above published it. */
        atomic_store_explicit(&m->owned, 0, memory_order_relaxed);
        grp_bump(g);
    }
    g->id = 0;
}

void evb_group_beat(struct evb_group *g, uint64_t now_ms)
{
    /* J5: relaxed, a liveness number. */
    atomic_store_explicit(&g->f->m[g->slot].heartbeat_ms, now_ms, memory_order_relaxed);
}

void evb_group_count(struct evb_group *g, uint32_t owned, uint64_t delivered)
{
    struct evb_grp_member *m = &g->f->m[g->slot];
    /* J5: relaxed, display numbers. */
    atomic_store_explicit(&m->owned, owned, memory_order_relaxed);
    atomic_store_explicit(&m->delivered, delivered, memory_order_relaxed);
}

uint32_t evb_group_reap(struct evb_group *g, uint64_t now_ms)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < EVB_GRP_MEMBERS; s++) {
        if (s == g->slot)
            continue;
        struct evb_grp_member *m = &g->f->m[s];
        /* J6: acquire; pairs with the joiner's CAS, so the slot's words
         * below are its, not a previous occupant's. */
        uint64_t o = atomic_load_explicit(&m->proc, memory_order_acquire);
        if (!o) {
            g->seen_at_ms[s] = 0;
            continue;
        }
        /* J5: relaxed numbers. A heartbeat from another boot or clock
         * (ahead of now) is no sign of life; our own view of when it last
         * moved is (seen_*), so a member whose clock word is garbage
         * still gets its full lease from when we first saw it. */
        uint64_t beat = atomic_load_explicit(&m->heartbeat_ms, memory_order_relaxed);
        uint32_t lease = atomic_load_explicit(&m->lease_ms, memory_order_relaxed);
        if (lease < 10 || lease > 3600000)
            lease = 3600000; /* garbage: the pid check still applies */
        if (!g->seen_at_ms[s] || beat != g->seen_beat[s]) {
            g->seen_beat[s] = beat;
            g->seen_at_ms[s] = now_ms;
        }
        bool silent = now_ms - g->seen_at_ms[s] > lease &&
                      (beat > now_ms || now_ms - beat > lease);
        if (!silent && evb_proc_alive(o))
            continue;
        /* J6: expel, acq_rel on success; relaxed on failure (it left, or
         * someone else expelled it first). */
        if (atomic_compare_exchange_strong_explicit(&m->proc, &o, 0, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            /* J5: relaxed counter. */
            atomic_fetch_add_explicit(&g->f->h.expelled, 1, memory_order_relaxed);
            atomic_store_explicit(&m->owned, 0, memory_order_relaxed);
            grp_bump(g);
            n++;
        }
        g->seen_at_ms[s] = 0;
    }
    return n;
}

uint32_t evb_group_quota(const struct evb_group *g)
{
    uint32_t n = 0, rank = 0;
    for (uint32_t s = 0; s < EVB_GRP_MEMBERS; s++) {
        /* Relaxed: a share computed from a stale view is corrected at
         * the next tick (the generation moves with every change, J3). */
        if (!atomic_load_explicit(&g->f->m[s].proc, memory_order_relaxed))
            continue;
        if (s < g->slot)
            rank++;
        n++;
    }
    if (n == 0)
        n = 1;
    return g->nparts / n + (rank < g->nparts % n ? 1 : 0);
}

uint64_t evb_group_generation(const struct evb_group *g)
{
    /* J3: acquire; the slots read after it are at least this new. */
    return atomic_load_explicit(&g->f->h.generation, memory_order_acquire);
}

_Atomic uint32_t *evb_group_bell(const struct evb_group *g)
{
    return &g->f->h.bell;
}

uint64_t evb_group_owned_epoch(const struct evb_group *g, uint32_t p)
{
    const struct evb_grp_part *e = &g->f->p[p];
    for (;;) {
        /* Acquire both, then the owner again: a pair from one CAS (J4). */
        uint64_t o = atomic_load_explicit(&e->owner, memory_order_acquire);
        uint64_t ep = atomic_load_explicit(&e->epoch, memory_order_acquire);
        if (atomic_load_explicit(&e->owner, memory_order_acquire) != o)
            continue;
        return g->id && o == g->id ? ep : 0;
    }
}

/* Whether member id ID sits in a slot now. */
bool evb_group_id_present(const struct evb_group *g, uint64_t id)
{
    for (uint32_t s = 0; s < EVB_GRP_MEMBERS; s++) {
        const struct evb_grp_member *m = &g->f->m[s];
        /* J2: acquire; an owner's id is in its slot before it took. */
        if (atomic_load_explicit(&m->id, memory_order_acquire) == id &&
            atomic_load_explicit(&m->proc, memory_order_acquire) != 0)
            return true;
    }
    return false;
}

uint32_t evb_group_present(const struct evb_group *g, uint32_t *ids)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < EVB_GRP_MEMBERS; s++) {
        const struct evb_grp_member *m = &g->f->m[s];
        /* J6: acquire; J2: acquire, the slot's id. */
        if (atomic_load_explicit(&m->proc, memory_order_acquire))
            ids[n++] = (uint32_t)atomic_load_explicit(&m->id, memory_order_acquire);
    }
    return n;
}

int evb_group_take(struct evb_group *g, uint32_t p, uint64_t *epoch)
{
    struct evb_grp_part *e = &g->f->p[p];
    /* Relaxed: the CAS compares both words; a torn pair only fails it. */
    uint64_t o = atomic_load_explicit(&e->owner, memory_order_relaxed);
    uint64_t ep = atomic_load_explicit(&e->epoch, memory_order_relaxed);
    if (o == g->id) {
        *epoch = ep;
        return 0;
    }
    if (o && evb_group_id_present(g, o))
        return -EBUSY;
    /* J4: full barrier. */
    if (!evb_cas128(&e->owner, o, ep, g->id, ep + 1))
        return -EBUSY;
    uint64_t mine = ep + 1;
    /* Fence: stamp our epoch into the cursor's tag. An older owner's
     * commit racing with us either lands first (and we start after it)
     * or fails; a tag with a newer epoch than ours means we were already
     * replaced again, which our own commit will discover. */
    for (;;) {
        uint64_t pos = atomic_load_explicit(&e->pos, memory_order_relaxed);
        uint64_t tag = atomic_load_explicit(&e->tag, memory_order_relaxed);
        int16_t ahead = (int16_t)(uint16_t)(EVB_GRP_TAG_EPOCH(tag) - (uint16_t)mine);
        if (ahead >= 0)
            break;
        if (evb_cas128(&e->pos, pos, tag, pos, EVB_GRP_TAG(mine, tag)))
            break;
    }
    /* J5: relaxed counter. */
    atomic_fetch_add_explicit(&g->f->h.handovers, 1, memory_order_relaxed);
    *epoch = mine;
    return 0;
}

void evb_group_release(struct evb_group *g, uint32_t p, uint64_t epoch)
{
    /* J4: full barrier; everything we committed before the release. A
     * failure means the partition was taken from us already. Members
     * short of their share wake to take it. */
    if (evb_cas128(&g->f->p[p].owner, g->id, epoch, 0, epoch))
        evb_bell_ring(&g->f->h.bell);
}

bool evb_group_cursor(const struct evb_group *g, uint32_t p, uint64_t *pos, uint64_t *off)
{
    const struct evb_grp_part *e = &g->f->p[p];
    for (;;) {
        /* Acquire the pair, then the position again: one commit's pair
         * (each commit is one CAS, J4). */
        uint64_t ps = atomic_load_explicit(&e->pos, memory_order_acquire);
        uint64_t tag = atomic_load_explicit(&e->tag, memory_order_acquire);
        if (atomic_load_explicit(&e->pos, memory_order_acquire) != ps)
            continue;
        uint64_t o = tag & EVB_GRP_OFF_MASK;
        *pos = ps;
        *off = o == EVB_GRP_OFF_NONE ? EVB_FRAME_NO_OFFSET : o;
        return ps != EVB_GRP_POS_NONE;
    }
}

int evb_group_commit(struct evb_group *g, uint32_t p, uint64_t epoch, uint64_t pos,
                     uint64_t off)
{
    struct evb_grp_part *e = &g->f->p[p];
    uint64_t o = off >= EVB_GRP_OFF_MASK ? EVB_GRP_OFF_NONE : off;
    for (;;) {
        if (!evb_group_member(g) || evb_group_owned_epoch(g, p) != epoch)
            break;
        /* Relaxed: the CAS checks the pair. */
        uint64_t ps = atomic_load_explicit(&e->pos, memory_order_relaxed);
        uint64_t tag = atomic_load_explicit(&e->tag, memory_order_relaxed);
        if (EVB_GRP_TAG_EPOCH(tag) != (uint16_t)epoch)
            break;
        /* J4: full barrier. */
        if (evb_cas128(&e->pos, ps, tag, pos, EVB_GRP_TAG(epoch, o))) {
            /* J5: relaxed counter. */
            atomic_fetch_add_explicit(&g->f->m[g->slot].commits, 1, memory_order_relaxed);
            return 0;
        }
    }
    /* J5: relaxed counter. */
    atomic_fetch_add_explicit(&e->fenced, 1, memory_order_relaxed);
    return evb_err_set(-ESTALE, "group %s of topic %s: partition %u is no longer yours "
                       "(taken over by another member, or you were silent past your lease "
                       "and were expelled): commit refused", g->name, g->topic, p);
}

/* The word at OFF of FD, read until two reads agree: a read is no atomic
 * load, and a store between two reads changes the word. -errno, or
 * -EAGAIN when it never settled. */
/* pread of a word, again when a signal cut it short: 0, -ENODATA past
 * the file's end, or read's -errno. */
static int word_read(int fd, off_t off, uint64_t *w)
{
    ssize_t k;
    do
        k = pread(fd, w, sizeof *w, off);
    while (k < 0 && errno == EINTR);
    return k == (ssize_t)sizeof *w ? 0 : k < 0 ? -errno : -ENODATA;
}

static int word_at(int fd, off_t off, uint64_t *v)
{
    uint64_t a, b;
    int rc = word_read(fd, off, &a);
    if (rc)
        return rc;
    for (int tries = 0; tries < 1000; tries++) {
        if ((rc = word_read(fd, off, &b)))
            return rc;
        if (a == b) {
            *v = a;
            return 0;
        }
        a = b;
    }
    return -EAGAIN;
}

/*
 * A group file's commit in PART (a queue's floor), UINT64_MAX: none. Read
 * with pread, never mapped: the file is the group's, whose members may
 * cut it or punch a hole in it and fill the file system, and a fault on
 * either would kill the scanning flusher with SIGBUS. Only the header and
 * the one position word are read; the position is one word (a commit is
 * one CAS of the pair whose first word it is, J4), so no pair to match.
 */
static uint64_t group_commit(struct evb_topic_map *tm, uint32_t part, int fd, const char *path)
{
    (void)path;
    struct stat st;
    size_t least = evb_grp_file_bytes(tm->nparts, EVB_GRP_KIND_PARTITION, 0);
    /* A file that could not be read (fstat, read, memory failed) gives 0,
     * the log's oldest position: its group's commit is unknown, and
     * retention must hold rather than remove what the group still needs
     * (bus_internal.h). One this build cannot read holds no commit. */
    if (fstat(fd, &st) < 0)
        return 0;
    if ((size_t)st.st_size < least)
        return UINT64_MAX;
    struct evb_grp_file *f = malloc(least);
    if (!f)
        return 0;
    uint64_t pos = UINT64_MAX, v;
    char msg[160];
    ssize_t k;
    do
        k = pread(fd, f, least, 0);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        pos = 0;
    /* J1: the magic's acquire is moot on a copy of a file linked whole
     * (file_create.c); kept as for the mapping. */
    else if (k == (ssize_t)least &&
             !evb_group_check(f, atomic_load_explicit(&f->h.magic, memory_order_acquire),
                              (size_t)st.st_size, tm->nparts, msg, sizeof msg)) {
        size_t at = f->h.kind == EVB_GRP_KIND_QUEUE
                        ? least + (size_t)part * evb_grp_queue_bytes(f->h.window) +
                              offsetof(struct evb_queue_head, floor_pos)
                        : EVB_GRP_PARTS_AT + (size_t)part * EVB_GRP_PART_BYTES +
                              offsetof(struct evb_grp_part, pos);
        int rc = word_at(fd, (off_t)at, &v);
        if (rc == 0 && v != EVB_GRP_POS_NONE)
            pos = v;
        else if (rc && rc != -ENODATA)
            pos = 0; /* unread, or never settled: unknown, hold */
    }
    free(f);
    return pos;
}

uint64_t evb_groups_min_committed(struct evb_topic_map *tm, uint32_t part)
{
    return evb_scan_min_committed(tm, part, ".grp", group_commit);
}

/* Partition entry E's cursor and delivered end set back to END_POS,
 * END_OFF when past END_POS: 1 when the cursor was. */
static int part_reset(struct evb_grp_part *e, uint64_t end_pos, uint64_t end_off)
{
    uint64_t o = end_off >= EVB_GRP_OFF_MASK ? EVB_GRP_OFF_NONE : end_off;
    int rc = 0;
    for (;;) {
        /* J4: acquire, the pair as evb_group_cursor reads it; the CAS
         * below checks it. */
        uint64_t ps = atomic_load_explicit(&e->pos, memory_order_acquire);
        uint64_t tag = atomic_load_explicit(&e->tag, memory_order_acquire);
        if (ps == EVB_GRP_POS_NONE || ps <= end_pos)
            break;
        /* J4: one CAS of the pair, full barrier, as a commit; the owner's
         * epoch stays in the tag, so this is no change of owner. */
        if (evb_cas128(&e->pos, ps, tag, end_pos, EVB_GRP_TAG(EVB_GRP_TAG_EPOCH(tag), o))) {
            rc = 1;
            break;
        }
    }
    /* Relaxed: a number, as its owner stores it. Past the end it would
     * flag the new events there "may be a redelivery". */
    uint64_t d = atomic_load_explicit(&e->delivered_pos, memory_order_relaxed);
    while (d > end_pos && !atomic_compare_exchange_weak_explicit(
                              &e->delivered_pos, &d, end_pos, memory_order_relaxed,
                              memory_order_relaxed))
        ;
    return rc;
}

int evb_group_file_reset(int fd, const char *path, uint32_t nparts, uint32_t p,
                         uint64_t end_pos, uint64_t end_off)
{
    struct evb_grp_file *f;
    size_t len;
    /* Mapped as its members map it (the size is checked first): the
     * words are changed by the CASes of their own protocol. */
    int rc = evb_group_map(fd, path, nparts, PROT_READ | PROT_WRITE, &f, &len);
    if (rc)
        return rc;
    /* J7: before any reset below; once per partition rebuilt, so a
     * member of the old life sees it move whichever of them it reads. */
    atomic_fetch_add_explicit(&f->h.incarnation, 1, memory_order_seq_cst);
    rc = part_reset(&f->p[p], end_pos, end_off);
    if (f->h.kind == EVB_GRP_KIND_QUEUE) {
        int q = evb_queue_reset(f, nparts, p, end_pos);
        rc = q < 0 ? evb_err_prefix(q, "%s", path) : rc || q;
    }
    /* Durable before any event is handed out at the offsets it names;
     * and before the queue's reset mark goes (a power cut meanwhile may
     * leave slot pages unwritten under renumbered cursors, which the
     * reset put on disk first: the next rebuild finishes). */
    if (rc > 0 && msync(f, len, MS_SYNC) < 0)
        rc = evb_err_set(-errno, "%s: msync: %s", path, strerror(errno));
    else if (rc > 0 && f->h.kind == EVB_GRP_KIND_QUEUE)
        evb_queue_reset_done(f, p);
    munmap(f, len);
    return rc;
}
