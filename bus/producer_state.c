/*
 * producer_state.c - the state file of a stable producer id on a topic
 * (producer_state_format.h): made, checked and locked here, and settled at
 * open from the log when a previous holder died mid-claim or the topic was
 * rebuilt from disk. The stores around each claim are producer.c's.
 *
 * Ordering edges of the state file (labels used at each site):
 *
 *   N1  the holder's updates (evb_pstate_put): a release fence, so the
 *       previous update's cur is stored before this one touches a record
 *       (a kill in between must not find cur naming a record being
 *       rewritten); the whole record cur does not name; then cur, with
 *       release, so the record (and a commit CAS before it) comes first.
 *       Updates before a claim come before the claim's CAS (a full
 *       barrier, C1 in shm/claim.c). The next holder reads them only after
 *       taking the OFD lock, which the kernel grants after the previous
 *       holder's death or close: that system call orders it after every
 *       store the old holder made, so only what a kill cuts short matters,
 *       and the two orders above keep that to "before or after".
 *   N2  creation: the header before the magic (release); pairs with the
 *       opener's acquire load of the magic. The file is also linked whole
 *       (file_create.c).
 */
#include "producer_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
/* Inlined: three records a publish, each hashed over a fixed 40 bytes. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bus_internal.h"

/* How long settling the state may wait for the log: a hole a dead holder
 * left is padded within dead_ms; this is a bound for damage, not a wait. */
#define EVB_PST_WAIT_NS (10ull * 1000000000ull)

struct pst_new {
    uint32_t nparts;
    uint32_t id;
    uint32_t learned;
};

static uint64_t pst_seed(uint32_t id, uint32_t part)
{
    return (uint64_t)id << 32 | part;
}

static uint64_t rec_check(const struct evb_pst_rec *r, uint64_t seed)
{
    return XXH3_64bits_withSeed(r, offsetof(struct evb_pst_rec, check), seed);
}

/* The word naming record GEN & 1 whose check is CHECK: a cur altered to
 * name the other record (or another gen) no longer matches its check. */
static uint64_t cur_word(uint32_t gen, uint64_t check)
{
    return (uint64_t)gen << 32 | (uint32_t)check;
}

static void rec_fill(struct evb_pst_rec *r, uint32_t gen, const struct evb_pst_vals *v,
                     uint64_t seed)
{
    r->gen = gen;
    r->claimed = v->claimed;
    r->committed = v->committed;
    r->pending_pos = v->pending_pos;
    r->pending_seq = v->pending_seq;
    r->check = rec_check(r, seed);
}

static void pst_init(void *map, void *arg)
{
    struct evb_pst_hdr *h = map;
    const struct pst_new *pn = arg;
    h->version = EVB_PST_VERSION;
    h->partitions = pn->nparts;
    h->format = EVB_PST_FORMAT_WORD;
    h->producer_id = pn->id;
    /* Relaxed: nobody sees the file before it is linked (file_create.c). */
    atomic_store_explicit(&h->learned, pn->learned, memory_order_relaxed);
    const struct evb_pst_vals v0 = {.pending_pos = EVB_POS_NONE};
    for (uint32_t i = 0; i < pn->nparts; i++) {
        uint64_t seed = pst_seed(pn->id, i);
        rec_fill(&h->e[i].r[0], 0, &v0, seed);
        /* Relaxed: nobody sees the file before it is linked (file_create.c). */
        atomic_store_explicit(&h->e[i].cur, cur_word(0, h->e[i].r[0].check),
                              memory_order_relaxed);
    }
    /* N2: release; the header before the magic. */
    atomic_store_explicit(&h->magic, EVB_PST_MAGIC, memory_order_release);
}

/* Partition PART's state as its holder last stored it, into V and GEN; 0,
 * or -EBADMSG with what is wrong in MSG (damage: a kill cannot leave it). */
static int pst_read(const struct evb_pst_hdr *h, uint32_t part, uint32_t id,
                    struct evb_pst_vals *v, uint32_t *gen, char *msg, size_t cap)
{
    const struct evb_pst_entry *e = &h->e[part];
    uint64_t seed = pst_seed(id, part);
    /* Relaxed: N1, the lock orders us after the last holder. */
    uint64_t cur = atomic_load_explicit(&e->cur, memory_order_relaxed);
    uint32_t g = (uint32_t)(cur >> 32);
    const struct evb_pst_rec *r = &e->r[g & 1];
    if (r->gen != g || r->check != rec_check(r, seed) || cur != cur_word(g, r->check)) {
        snprintf(msg, cap, "partition %u: record %u (gen %u, named by 0x%llx) fails its "
                 "check", part, g & 1, g, (unsigned long long)cur);
        return -EBADMSG;
    }
    if (r->committed > r->claimed || r->claimed > EVB_SEQ_LIMIT) {
        snprintf(msg, cap, "partition %u: committed %llu, claimed %llu: not committed "
                 "<= claimed <= 2^63", part, (unsigned long long)r->committed,
                 (unsigned long long)r->claimed);
        return -EBADMSG;
    }
    *v = (struct evb_pst_vals){r->claimed, r->committed, r->pending_pos, r->pending_seq};
    *gen = g;
    return 0;
}

void evb_pstate_put(struct evb_pstate *ps, uint32_t part, const struct evb_pst_vals *v)
{
    struct evb_pst_entry *e = &ps->map->e[part];
    uint64_t seed = pst_seed(ps->id, part);
    uint32_t gen = ps->gen[part] + 1;
    struct evb_pst_rec *r = &e->r[gen & 1];
    /* N1: release fence; the previous update's cur before this record. */
    atomic_thread_fence(memory_order_release);
    r->gen = gen;
    r->claimed = v->claimed;
    /* Tests die here and below: half a record, or a whole one not named. */
    EVB_CRASH_POINT("pstate.half_record");
    r->committed = v->committed;
    r->pending_pos = v->pending_pos;
    r->pending_seq = v->pending_seq;
    r->check = rec_check(r, seed);
    EVB_CRASH_POINT("pstate.before_cur");
    /* N1: release; the record (and a commit CAS before) before cur names it. */
    atomic_store_explicit(&e->cur, cur_word(gen, r->check), memory_order_release);
    ps->v[part] = *v;
    ps->gen[part] = gen;
}

/* A mapped file of SIZE bytes against TM and ID; 0 or -EBADMSG/-EPROTO
 * with the value found and the one expected in MSG. */
static int pst_check(const struct evb_pst_hdr *h, size_t size, uint32_t nparts, uint32_t id,
                     char *msg, size_t cap)
{
    /* N2: acquire; a set magic comes with a whole header. */
    uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
    if (magic != EVB_PST_MAGIC) {
        snprintf(msg, cap, "magic 0x%llx, expected 0x%llx", (unsigned long long)magic,
                 (unsigned long long)EVB_PST_MAGIC);
        return -EBADMSG;
    }
    if (h->version != EVB_PST_VERSION || h->format != EVB_PST_FORMAT_WORD) {
        snprintf(msg, cap, "version %u format 0x%llx, this build reads %u (0x%llx)",
                 h->version, (unsigned long long)h->format, EVB_PST_VERSION,
                 (unsigned long long)EVB_PST_FORMAT_WORD);
        return -EPROTO;
    }
    if (h->partitions != nparts || size != evb_pst_file_bytes(nparts)) {
        snprintf(msg, cap, "%u partitions in %zu bytes, the topic has %u (%zu bytes)",
                 h->partitions, size, nparts, evb_pst_file_bytes(nparts));
        return -EBADMSG;
    }
    if (h->producer_id != id) {
        snprintf(msg, cap, "producer id 0x%x, expected 0x%x", h->producer_id, id);
        return -EBADMSG;
    }
    return 0;
}

static int sub_open(evb_bus *bus, const struct evb_topic_map *tm, uint32_t part,
                    uint32_t start, uint64_t value, evb_consumer **c)
{
    evb_consumer_options o = {.kind = EVB_SUBSCRIBER, .start = start, .start_value = value,
                              .only_partition = 1, .partition = (int32_t)part};
    int rc = evb_consumer_open(c, bus, tm->name, &o);
    if (rc)
        evb_err_prefix(rc, "partition %u", part);
    return rc;
}

/* Whether PART's log still starts at position 0: every event ever
 * published to it is there to read (the disk log of a durable topic, else
 * the ring, which must not have lapped its first frame). */
static bool log_from_start(struct evb_topic_map *tm, uint32_t part)
{
    struct evb_ring *r = &tm->rings[part];
    if (tm->ddir[0])
        /* Relaxed: a hint checked again by the read (a loss reported). */
        return atomic_load_explicit(&r->hdr->log_start_pos, memory_order_relaxed) == 0;
    uint64_t pos = 1, off;
    int rc = evb_ring_oldest(r, &pos, &off);
    return (rc == 0 || rc == -EAGAIN) && pos == 0;
}

/* Next sequence after the highest of ID in PART's whole log (durable
 * topics: segments, then the ring), read to the tail it had when we
 * started: no frame of ID can come after it, as we hold the id. WHOLE
 * (when not NULL) tells whether the read began at the partition's first
 * event and lost nothing on the way: only then is NEXT exact, rather than
 * what the retained log holds. */
static int log_next_seq(evb_bus *bus, struct evb_topic_map *tm, uint32_t part, uint32_t id,
                        uint64_t *next, bool *whole)
{
    uint64_t end, endoff;
    evb_ring_load_tail(&tm->rings[part], &end, &endoff);
    *next = 0;
    bool from_start = log_from_start(tm, part);
    evb_consumer *c;
    int rc = sub_open(bus, tm, part, EVB_START_EARLIEST, 0, &c);
    if (rc)
        return rc;
    uint64_t idle_since = evb_mono_ns();
    int32_t wait_ms = 0; /* the first time nothing is ready: maybe at END already */
    for (;;) {
        evb_event ev;
        rc = evb_consumer_next(c, &ev, wait_ms);
        if (rc == 0) {
            idle_since = evb_mono_ns();
            wait_ms = 0;
            if (ev.lost_events || ev.lost_bytes)
                from_start = false;
            if (ev.position >= end)
                break;
            if (ev.producer_id == id && ev.producer_seq >= *next)
                *next = ev.producer_seq + 1;
            continue;
        }
        if (rc != -ETIMEDOUT && rc != -EAGAIN)
            break;
        wait_ms = 100;
        /* Caught up with END? The tail first, so it is not above the one
         * the lag was measured against: t - lag is then at most our pos. */
        uint64_t t, toff, lag;
        evb_ring_load_tail(&tm->rings[part], &t, &toff);
        evb_consumer_lag(c, &lag);
        rc = 0;
        if (lag <= t && t - lag >= end)
            break;
        if (evb_mono_ns() - idle_since > EVB_PST_WAIT_NS) {
            rc = evb_err_set(-ETIMEDOUT, "partition %u: the log did not read to its end "
                             "(position %llu) within 10 s", part, (unsigned long long)end);
            break;
        }
    }
    evb_consumer_close(c);
    if (whole)
        *whole = from_start;
    return rc;
}

/* Whether the claim at POS was committed: 1 yes
 * (or unknown: the log no longer holds POS, so count it, and never hand
 * its sequences out again), 0 it was padded. */
static int claim_made(evb_bus *bus, struct evb_topic_map *tm, uint32_t part, uint64_t pos)
{
    evb_consumer *c;
    int rc = sub_open(bus, tm, part, EVB_START_POSITION, pos, &c);
    if (rc)
        return rc;
    uint64_t deadline = evb_mono_ns() + EVB_PST_WAIT_NS;
    for (;;) {
        evb_event ev;
        rc = evb_consumer_next(c, &ev, 100);
        if (rc == 0) {
            /* Started at POS: an event there, or after it with nothing
             * lost on the way (a pad was skipped). */
            if (ev.position == pos)
                rc = 1; /* ours (id and seq), or a state that does not
                           match the log: then count it too */
            else
                rc = ev.lost_events || ev.lost_bytes ? 1 : 0;
            break;
        }
        if (rc != -ETIMEDOUT)
            break;
        uint64_t lag = 1;
        evb_consumer_lag(c, &lag);
        if (lag == 0) {
            rc = 0; /* past POS at the tail: it was padded */
            break;
        }
        if (evb_mono_ns() >= deadline) {
            rc = evb_err_set(-ETIMEDOUT, "partition %u: the claim at position %llu a "
                             "previous holder left open was neither committed nor padded "
                             "within 10 s", part, (unsigned long long)pos);
            break;
        }
    }
    evb_consumer_close(c);
    return rc;
}

/* Make every entry say committed == claimed == the next sequence. A
 * damaged entry is learned again from the log when the log holds all of
 * its partition; PATH names the file for the error otherwise. */
static int pst_settle(struct evb_pstate *ps, evb_bus *bus, struct evb_topic_map *tm,
                      const char *path)
{
    struct evb_pst_hdr *h = ps->map;
    uint32_t id = ps->id;
    /* Relaxed: N1, only the holder writes it and we are the holder. */
    bool learned = atomic_load_explicit(&h->learned, memory_order_relaxed) == EVB_PST_LEARNED;
    for (uint32_t i = 0; i < tm->nparts; i++) {
        struct evb_pst_vals v;
        uint32_t gen = 0;
        char msg[160];
        int bad = pst_read(h, i, id, &v, &gen, msg, sizeof msg);
        if (bad || !learned) {
            uint64_t next;
            bool whole;
            int rc = log_next_seq(bus, tm, i, id, &next, &whole);
            if (rc)
                return rc;
            if (bad && !whole)
                return evb_err_set(-EBADMSG, "%s: %s, and the log no longer holds all of "
                                   "partition %u to learn it again: the id's next sequence "
                                   "there is unknown. Remove the file only if no event of "
                                   "the id is in the topic (its sequences then start at 0, "
                                   "and readers with duplicate suppression drop its new "
                                   "events as copies of old ones)", path, msg, i);
            if (bad)
                v = (struct evb_pst_vals){.claimed = next, .committed = next};
            else if (next > v.claimed)
                v.claimed = v.committed = next;
            else
                v.committed = v.claimed;
        } else if (v.claimed != v.committed) {
            int made = v.pending_pos == EVB_POS_NONE ? 0 : claim_made(bus, tm, i, v.pending_pos);
            if (made < 0)
                return made;
            if (made)
                v.committed = v.claimed;
            else
                v.claimed = v.committed;
        }
        v.pending_pos = EVB_POS_NONE;
        ps->gen[i] = gen;
        evb_pstate_put(ps, i, &v);
    }
    /* Relaxed: N1, read only by the next holder, after the lock. */
    atomic_store_explicit(&h->learned, EVB_PST_LEARNED, memory_order_relaxed);
    return 0;
}

int evb_pstate_open(struct evb_pstate *ps, evb_bus *bus, struct evb_topic_map *tm,
                    uint32_t id)
{
    char path[PATH_MAX + 64];
    *ps = (struct evb_pstate){.fd = -1, .id = id};
    snprintf(path, sizeof path, "%s/producers", tm->dir);
    int rc = evb_make_dirs(path, evb_dir_mode(tm->cfg.file_mode));
    if (rc)
        return evb_err_prefix(rc, "topic %s: producers/", tm->name);
    snprintf(path, sizeof path, "%s/producers/%08x.seq", tm->dir, id);
    size_t bytes = evb_pst_file_bytes(tm->nparts);
    struct pst_new pn = {tm->nparts, id, tm->ddir[0] ? 0u : EVB_PST_LEARNED};
    int fd = evb_file_open_or_create(path, tm->cfg.file_mode, bytes, false, pst_init, &pn);
    if (fd < 0)
        return fd;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    /* An OFD lock, not flock: the same, per open file description, and it
     * also refuses a second handle of this process. */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        rc = errno == EAGAIN || errno == EACCES
                 ? evb_err_set(-EBUSY, "topic %s: producer id 0x%x is open in another handle",
                               tm->name, id)
                 : evb_err_set(-errno, "%s: lock: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if ((size_t)st.st_size < EVB_PST_HDR_BYTES) {
        rc = evb_err_set(-EBADMSG, "%s: %lld bytes, not a producer state file", path,
                         (long long)st.st_size);
        goto fail;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rc = evb_err_set(-errno, "%s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    ps->map = m;
    ps->bytes = (size_t)st.st_size;
    ps->fd = fd;
    ps->v = calloc(tm->nparts, sizeof *ps->v);
    ps->gen = calloc(tm->nparts, sizeof *ps->gen);
    if (!ps->v || !ps->gen) {
        evb_pstate_close(ps);
        return -ENOMEM;
    }
    char msg[160];
    if ((rc = pst_check(ps->map, ps->bytes, tm->nparts, id, msg, sizeof msg))) {
        evb_err_set(rc, "%s: %s (the id's sequences are unknown: remove the file only if "
                    "no event of it is in the topic)", path, msg);
        evb_pstate_close(ps);
        return rc;
    }
    if ((rc = pst_settle(ps, bus, tm, path))) {
        evb_err_prefix(rc, "topic %s: producer id 0x%x", tm->name, id);
        evb_pstate_close(ps);
    }
    return rc;
fail:
    close(fd);
    return rc;
}

void evb_pstate_close(struct evb_pstate *ps)
{
    if (ps->map)
        munmap(ps->map, ps->bytes);
    if (ps->fd >= 0)
        close(ps->fd); /* drops the lock */
    free(ps->v);
    free(ps->gen);
    *ps = (struct evb_pstate){.fd = -1};
}
