/*
 * dedup.c - the tables of a deduplicating reader: per partition read, the
 * highest sequence seen from each of the last EVB_DEDUP_PRODUCERS stable
 * producers (least recently seen evicted), and for a named consumer their
 * file beside its cursor (dedup_format.h). consumer.c decides when events
 * are checked, tables saved (commit) and forgotten (seek).
 *
 * Ordering edges of the dedup file (labels used at each site):
 *
 *   Y1  a slot rewrite (every commit): from and to set to EVB_POS_NONE,
 *       a release fence, then the table and its check, then to and from
 *       (release: a kill cannot leave from set on a half-written slot);
 *       then the cursor file's or group's commit, whose release (K2, J4)
 *       keeps them all before it.
 *   Y2  creation: the header before the magic (release); pairs with the
 *       opener's acquire load. The file is also linked whole.
 *
 * Loads while someone writes (a group's table, <group>.gdup):
 *
 *   Z1  a loader reads a slot's from (acquire, pairs with Y1's final
 *       release store of from): a from that is set comes with the table
 *       and check stored before it.
 *   Z2  it then copies the slot, issues an acquire fence and reads from,
 *       to and gen again (pairs with Y1's release fence after clearing
 *       from and to): a copy that saw any word of a later rewrite sees
 *       from EVB_POS_NONE in that second read, or that rewrite's end,
 *       whose gen differs (every rewrite takes a gen above both slots'
 *       as its writer last knew them). So equal words before and after
 *       mean the copy is one save's whole slot; only such a stable copy
 *       that fails its check is damage. An unstable one is read again, a
 *       bounded number of times, then counts as a slot being rewritten
 *       (from EVB_POS_NONE), which it is.
 *
 * Who can be writing while a member loads: a named consumer's file has
 * one reader at a time (its cursor file decides), so nobody. A group's
 * partition can have a fenced zombie: a member expelled while busy that
 * checked its ownership just before entering evb_dedup_save(), and then
 * finishes that one save at any later time (it checks ownership before
 * every save, and its commit after it fails with -ESTALE). It writes the
 * slot other than its `cur`, and its `cur` is the slot whose table goes
 * with the group's committed cursor, because the table is saved before
 * the commit (Y1) and the commit is fenced by epoch: the last commit the
 * group took from it is its last save. (Its last save whose commit was
 * refused flips `cur` too, but that commit's refusal is how it learns it
 * is fenced: no save follows.) The new owner loads the slot covering the
 * committed cursor, the highest gen first, so:
 *   - the zombie's slot never is the one holding the committed table;
 *   - caught mid-write it is skipped (Z2), never damage;
 *   - done before the load, it covers the committed cursor only if its
 *     table was unchanged since that save (from kept: the same table,
 *     so the same answer) or if the zombie moved back there by a seek,
 *     which forgets the table (an empty table: copies delivered again,
 *     never an event dropped that was not seen). A table is only ever
 *     saved for a range of positions it is right at.
 * What remains: the new owner's first save goes to the same slot as the
 * zombie's late one. Both follow Y1, so the slot ends as one of them
 * whole, or mixed; mixed fails its check and is reported as damage by
 * the next load, unless the owner's next-but-one save (to the same slot)
 * came first. That needs a member stopped inside the save past its lease
 * and woken exactly during the next owner's first save.
 */
#include "dedup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "bus_internal.h"
#include "dedup_format.h"
#include "group.h"
#include "safe_open.h"

static_assert(EVB_DEDUP_PRODUCERS == EVB_DUP_PRODUCERS, "dedup table size");

struct evb_dedup *evb_dedup_new(uint32_t n)
{
    struct evb_dedup *d = calloc(1, sizeof *d + (size_t)n * sizeof d->p[0]);
    if (d)
        d->n = n;
    return d;
}

void evb_dedup_free(struct evb_dedup *d)
{
    if (!d)
        return;
    if (d->map)
        munmap(d->map, d->bytes);
    free(d->path);
    free(d);
}

bool evb_dedup_check(struct evb_dedup_part *t, uint32_t id, uint64_t seq)
{
    uint32_t k = 0;
    while (k < t->n && t->id[k] != id)
        k++;
    if (k < t->n) {
        t->last = k;
        if (seq <= t->seq[k]) {
            t->dropped++;
            return true;
        }
    } else if (t->n < EVB_DEDUP_PRODUCERS) {
        t->n++;
    } else {
        /* Full: the least recently seen producer goes; its duplicates, if
         * it ever sends any, are no longer recognised. */
        k = 0;
        for (uint32_t j = 1; j < t->n; j++)
            if (t->used[j] < t->used[k])
                k = j;
        t->evicted++;
    }
    t->id[k] = id;
    t->seq[k] = seq;
    t->used[k] = ++t->tick;
    t->last = k;
    t->dirty = true;
    return false;
}

void evb_dedup_reset(struct evb_dedup *d, uint32_t i)
{
    struct evb_dedup_part *t = &d->p[i];
    t->n = 0;
    t->last = 0;
    t->dirty = true;
}

/* ---- the file ---- */

/* The check of slot INDEX (2 x partition + 0 or 1) holding FROM, TO and
 * its table: the slot's words first, then its entries in use, seeded with
 * the first hash. */
static uint64_t slot_check(const struct evb_dup_slot *s, uint32_t index, uint64_t from,
                           uint64_t to, uint32_t count)
{
    struct {
        uint64_t from, to, gen;
        uint32_t count, zero;
    } w = {from, to, s->gen, count, s->zero_};
    uint64_t h = XXH3_64bits_withSeed(&w, sizeof w, index);
    return XXH3_64bits_withSeed(s->e, (size_t)count * sizeof s->e[0], h);
}

static void dup_init(void *map, void *arg)
{
    struct evb_dup_hdr *h = map;
    uint32_t nparts = *(const uint32_t *)arg;
    h->version = EVB_DUP_VERSION;
    h->partitions = nparts;
    h->format = EVB_DUP_FORMAT_WORD;
    h->producers = EVB_DUP_PRODUCERS;
    for (uint32_t i = 0; i < 2 * nparts; i++) {
        /* Relaxed: nobody sees the file before it is linked (Y2). */
        atomic_store_explicit(&h->s[i].from, EVB_POS_NONE, memory_order_relaxed);
        atomic_store_explicit(&h->s[i].to, EVB_POS_NONE, memory_order_relaxed);
    }
    /* Y2: release; the header before the magic. */
    atomic_store_explicit(&h->magic, EVB_DUP_MAGIC, memory_order_release);
}

static int dup_check(const struct evb_dup_hdr *h, size_t size, uint32_t nparts, char *msg,
                     size_t cap)
{
    /* Y2: acquire; a set magic comes with a whole header. */
    uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
    if (magic != EVB_DUP_MAGIC) {
        snprintf(msg, cap, "magic 0x%llx, expected 0x%llx", (unsigned long long)magic,
                 (unsigned long long)EVB_DUP_MAGIC);
        return -EBADMSG;
    }
    if (h->version != EVB_DUP_VERSION || h->format != EVB_DUP_FORMAT_WORD) {
        snprintf(msg, cap, "version %u format 0x%llx, this build reads %u (0x%llx)",
                 h->version, (unsigned long long)h->format, EVB_DUP_VERSION,
                 (unsigned long long)EVB_DUP_FORMAT_WORD);
        return -EPROTO;
    }
    if (h->partitions != nparts || h->producers != EVB_DUP_PRODUCERS ||
        size != evb_dup_file_bytes(nparts)) {
        snprintf(msg, cap, "%u partitions of %u producers in %zu bytes, expected %u of %u "
                 "(%zu bytes)", h->partitions, h->producers, size, nparts, EVB_DUP_PRODUCERS,
                 evb_dup_file_bytes(nparts));
        return -EBADMSG;
    }
    return 0;
}

/* A slot's words as one save left them. */
struct slot_copy {
    uint64_t from, to;
    struct evb_dup_slot s;
};

/* Tries before a slot that keeps changing under a loader counts as being
 * rewritten (Z2). A save is a few microseconds; a writer rewrites a slot
 * every other commit. */
#define EVB_DUP_LOAD_TRIES 64

/* Copy slot S into C. 1: a stable copy of a slot in use; 0: the slot is
 * empty or being rewritten. */
static int slot_copy(const struct evb_dup_slot *s, struct slot_copy *c)
{
    for (int tries = 0; tries < EVB_DUP_LOAD_TRIES; tries++) {
        if (tries)
            sched_yield();
        /* Z1: acquire; a set from comes with the table stored before it. */
        uint64_t from = atomic_load_explicit(&s->from, memory_order_acquire);
        if (from == EVB_POS_NONE)
            return 0; /* empty, or its rewrite was cut short or is under way */
        /* Relaxed: Z2's fence and second reads decide whether these words
         * belong together. */
        uint64_t to = atomic_load_explicit(&s->to, memory_order_relaxed);
        if (to == EVB_POS_NONE)
            return 0; /* a rewrite cleared from and to since */
        c->s.gen = __atomic_load_n(&s->gen, __ATOMIC_RELAXED);
        c->s.count = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
        c->s.zero_ = __atomic_load_n(&s->zero_, __ATOMIC_RELAXED);
        c->s.check = __atomic_load_n(&s->check, __ATOMIC_RELAXED);
        uint32_t n = c->s.count <= EVB_DUP_PRODUCERS ? c->s.count : EVB_DUP_PRODUCERS;
        for (uint32_t j = 0; j < n; j++) {
            /* Relaxed: as above (Z2). */
            c->s.e[j].id = __atomic_load_n(&s->e[j].id, __ATOMIC_RELAXED);
            c->s.e[j].zero_ = __atomic_load_n(&s->e[j].zero_, __ATOMIC_RELAXED);
            c->s.e[j].seq = __atomic_load_n(&s->e[j].seq, __ATOMIC_RELAXED);
            c->s.e[j].used = __atomic_load_n(&s->e[j].used, __ATOMIC_RELAXED);
        }
        /* Z2: acquire fence; a copy that read any word of a later rewrite
         * reads from NONE, or that rewrite's gen, below. */
        atomic_thread_fence(memory_order_acquire);
        /* Relaxed: ordered by the fence above (Z2). */
        uint64_t from2 = atomic_load_explicit(&s->from, memory_order_relaxed);
        uint64_t to2 = atomic_load_explicit(&s->to, memory_order_relaxed);
        uint64_t gen2 = __atomic_load_n(&s->gen, __ATOMIC_RELAXED);
        if (from2 == from && to2 == to && gen2 == c->s.gen) {
            c->from = from;
            c->to = to;
            return 1;
        }
    }
    return 0; /* rewritten all along: being written, not damage */
}

/* Load table T from the slot of PART covering POS, if any; both slots of
 * PART in use must pass their check (dedup_format.h). */
static int dup_load(struct evb_dedup_part *t, const struct evb_dup_hdr *h, uint32_t part,
                    uint64_t pos, char *msg, size_t cap)
{
    int best = -1;
    uint64_t gen = 0;
    *t = (struct evb_dedup_part){.dropped = t->dropped, .evicted = t->evicted};
    if (part >= h->partitions) {
        snprintf(msg, cap, "no partition %u in a file of %u", part, h->partitions);
        return -EINVAL;
    }
    /* Copies, not the map: a writer may move on while we choose (Z2). */
    struct slot_copy c[2];
    for (int k = 0; k < 2; k++) {
        uint32_t index = 2 * part + (uint32_t)k;
        if (!slot_copy(&h->s[index], &c[k]))
            continue;
        const struct evb_dup_slot *s = &c[k].s;
        uint32_t count = s->count;
        if (count > EVB_DUP_PRODUCERS ||
            s->check != slot_check(s, index, c[k].from, c[k].to, count)) {
            snprintf(msg, cap, "partition %u: slot %d (%u entries, check 0x%llx) fails its "
                     "check", part, k, count, (unsigned long long)s->check);
            return -EBADMSG;
        }
        if (s->gen > gen)
            gen = s->gen; /* the next save's must pass both */
        if (pos < c[k].from || pos > c[k].to)
            continue;
        if (best < 0 || s->gen > c[best].s.gen)
            best = k;
    }
    t->cur = best < 0 ? 0 : (uint8_t)best;
    t->gen = gen;
    t->dirty = true;
    if (best < 0)
        return 0;
    const struct evb_dup_slot *s = &c[best].s;
    uint32_t count = s->count;
    for (uint32_t j = 0; j < count; j++) {
        t->id[j] = s->e[j].id;
        t->seq[j] = s->e[j].seq;
        t->used[j] = s->e[j].used;
        if (t->used[j] > t->tick)
            t->tick = t->used[j];
    }
    t->n = count;
    t->from = c[best].from;
    t->dirty = false;
    return 0;
}

int evb_dedup_file_open(struct evb_dedup *d, const struct evb_topic_map *tm,
                        const char *name, bool group)
{
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/consumers/%s.%s", tm->ddir[0] ? tm->ddir : tm->dir, name,
             group ? "gdup" : "dup");
    size_t bytes = evb_dup_file_bytes(tm->nparts);
    uint32_t nparts = tm->nparts;
    int fd = evb_file_open_or_create(path, tm->cfg.file_mode, bytes, tm->ddir[0] != 0,
                                     dup_init, &nparts);
    if (fd < 0)
        return fd;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
    /* consumers/ is shared by every reader of a durable topic: a table
     * planted there could hide events from this consumer. A group's is
     * trusted as the group file is: whoever may join the group. */
    else if (group && (rc = evb_group_trusted(tm, &st, path)))
        ;
    else if (!group && st.st_uid != geteuid())
        rc = evb_err_set(-EACCES, "%s: owned by uid %u, not by you (uid %u)", path,
                         (unsigned)st.st_uid, (unsigned)geteuid());
    else if ((size_t)st.st_size < EVB_DUP_HDR_BYTES)
        rc = evb_err_set(-EBADMSG, "%s: %lld bytes, not a dedup file; remove it to start "
                         "the tables empty", path, (long long)st.st_size);
    void *m = MAP_FAILED;
    if (!rc) {
        m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            rc = evb_err_set(-errno, "%s: mmap: %s", path, strerror(errno));
    }
    close(fd);
    if (rc)
        return rc;
    d->map = m;
    d->bytes = (size_t)st.st_size;
    if (!(d->path = strdup(path)))
        return -ENOMEM;
    char msg[200];
    if ((rc = dup_check(d->map, d->bytes, tm->nparts, msg, sizeof msg)))
        return evb_err_set(rc, "%s: %s; remove it to start the tables empty (duplicates "
                           "of events before are then delivered again)", path, msg);
    return 0;
}

/* Verify TM's table in the copy COPY (WANT bytes) for PART (UINT32_MAX:
 * all): 0 or -errno, MSG says why. */
static int dup_verify_copy(const struct evb_topic_map *tm, const void *copy, size_t want,
                           uint32_t part, char *msg, size_t cap)
{
    int rc = dup_check(copy, want, tm->nparts, msg, cap);
    if (rc)
        return rc;
    /* The check a partition's reader makes as it loads its table. */
    struct evb_dedup_part *t = calloc(1, sizeof *t);
    rc = t ? 0 : -ENOMEM;
    for (uint32_t p = part == UINT32_MAX ? 0 : part;
         !rc && p < (part == UINT32_MAX ? tm->nparts : part + 1); p++)
        rc = dup_load(t, copy, p, 0, msg, cap);
    free(t);
    return rc;
}

/* Tries at a table its writer may be saving: a copy read across a save
 * can fail its check where the file is sound (the reader's own load looks
 * at the slot's words again, Z2; a copy cannot). Damage reads the same
 * twice in a row; a save in progress does not. */
#define EVB_DUP_VERIFY_TRIES 16

int evb_dedup_file_verify(const struct evb_topic_map *tm, const char *name, bool group,
                          uint32_t part, char *why, size_t cap)
{
    char path[PATH_MAX + 128];
    const char *ext = group ? "gdup" : "dup";
    snprintf(path, sizeof path, "%s/consumers/%s.%s", tm->ddir[0] ? tm->ddir : tm->dir, name,
             ext);
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd == -ENOENT)
        return 0; /* no table: nothing to refuse */
    if (fd < 0) {
        snprintf(why, cap, "consumers/%s.%s: %s", name, ext, strerror(-fd));
        return fd;
    }
    /* Copies read with pread, not a mapping: the file sits in a directory
     * other users may write, and one cut short after the size check would
     * fault a mapping (SIGBUS in whoever runs the stat). The size first,
     * so no size on disk decides what is allocated. */
    struct stat st;
    size_t want = evb_dup_file_bytes(tm->nparts);
    char msg[200] = "";
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (!rc && (uint64_t)st.st_size != want) {
        snprintf(msg, sizeof msg, "%lld bytes, a table of %u partitions has %zu",
                 (long long)st.st_size, tm->nparts, want);
        rc = -EBADMSG;
    }
    uint8_t *copy = rc ? NULL : malloc(2 * want), *prev = copy ? copy + want : NULL;
    if (!rc && !copy)
        rc = -ENOMEM;
    for (int tries = 0; !rc; tries++) {
        ssize_t got = pread(fd, copy, want, 0);
        if (got < 0) {
            rc = -errno;
            break;
        }
        if ((size_t)got != want) {
            snprintf(msg, sizeof msg, "%zd bytes read of %zu: cut short", got, want);
            rc = -EBADMSG;
            break;
        }
        int v = dup_verify_copy(tm, copy, want, part, msg, sizeof msg);
        if (v == 0)
            break; /* sound */
        if (v != -EBADMSG || (tries && !memcmp(copy, prev, want))) {
            rc = v; /* the same twice in a row: damage */
            break;
        }
        if (tries + 1 == EVB_DUP_VERIFY_TRIES)
            break; /* never the same twice: saved all along, not damage */
        memcpy(prev, copy, want);
        msg[0] = '\0';
        if (tries)
            sched_yield();
    }
    close(fd);
    free(copy);
    if (rc)
        snprintf(why, cap, "consumers/%s.%s: %s", name, ext, msg[0] ? msg : strerror(-rc));
    return rc;
}

int evb_dedup_load(struct evb_dedup *d, uint32_t i, uint32_t part, uint64_t pos)
{
    char msg[200];
    int rc = dup_load(&d->p[i], d->map, part, pos, msg, sizeof msg);
    if (rc)
        return evb_err_set(rc, "%s: %s; remove it to start the tables empty (duplicates "
                           "of events before are then delivered again)", d->path, msg);
    return 0;
}

void evb_dedup_save(struct evb_dedup *d, uint32_t i, uint32_t part, uint64_t pos)
{
    if (!d->map)
        return;
    struct evb_dedup_part *t = &d->p[i];
    /* Unchanged since the last save: the same table stands from there to
     * POS. Either way it goes to the other slot, whole, never in place. */
    uint64_t from = t->dirty ? pos : t->from;
    uint8_t k = t->cur ^ 1;
    uint32_t index = 2 * part + k;
    struct evb_dup_slot *s = &d->map->s[index];
    /* Y1: relaxed; the fence below keeps them before the table. */
    atomic_store_explicit(&s->from, EVB_POS_NONE, memory_order_relaxed);
    atomic_store_explicit(&s->to, EVB_POS_NONE, memory_order_relaxed);
    /* Y1: release fence; the slot is invalid before the table changes. */
    atomic_thread_fence(memory_order_release);
    for (uint32_t j = 0; j < t->n; j++) {
        /* Relaxed: the slot is invalid until Y1's stores below; a loader
         * that reads these meanwhile throws its copy away (Z2). */
        __atomic_store_n(&s->e[j].id, t->id[j], __ATOMIC_RELAXED);
        __atomic_store_n(&s->e[j].zero_, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->e[j].seq, t->seq[j], __ATOMIC_RELAXED);
        __atomic_store_n(&s->e[j].used, t->used[j], __ATOMIC_RELAXED);
    }
    /* Tests die here: a slot half rewritten (its from is NONE). */
    EVB_CRASH_POINT("dedup.half_slot");
    /* Relaxed: as the entries (Z2). */
    __atomic_store_n(&s->count, t->n, __ATOMIC_RELAXED);
    __atomic_store_n(&s->zero_, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->gen, ++t->gen, __ATOMIC_RELAXED);
    struct evb_dup_slot mine;
    mine.gen = t->gen;
    mine.zero_ = 0;
    for (uint32_t j = 0; j < t->n; j++)
        mine.e[j] = (struct evb_dup_entry){.id = t->id[j], .seq = t->seq[j], .used = t->used[j]};
    /* Relaxed: as the entries (Z2). */
    __atomic_store_n(&s->check, slot_check(&mine, index, from, pos, t->n), __ATOMIC_RELAXED);
    /* Y1: release; the table and its check before the range that makes it
     * valid, from last. */
    atomic_store_explicit(&s->to, pos, memory_order_release);
    atomic_store_explicit(&s->from, from, memory_order_release);
    t->cur = k;
    t->from = from;
    t->dirty = false;
}
