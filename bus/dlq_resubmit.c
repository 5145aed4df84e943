/*
 * dlq_resubmit.c - putting dead-letter events back on their topic, each
 * exactly once whatever kills the resubmitter where. The state file
 * (dlq_format.h) keeps one intent record and a bitmap of DLQ offsets done;
 * the DLQ itself is never written here.
 *
 * Per DLQ event O, under an exclusive flock of the state file:
 *
 *   1. skip O if its bit is set;
 *   2. claim room on the origin partition: the claim's position is known
 *      now, and nobody can see the event yet;
 *   3. write the intent (O, partition, position), fdatasync'ed when the
 *      DLQ is durable;
 *   4. fill the value, commit;
 *   5. on a durable origin, wait until the event is on disk;
 *   6. set O's bit (fdatasync'ed when durable).
 *
 * Killed before 3: no intent for O, the claim is a dead producer's hole
 * that readers pad: nothing published, O's bit clear, a rerun publishes O.
 * Killed between 3 and 6: the next run finds an intent whose bit is clear
 * and reads the origin partition at the recorded position: a committed
 * frame there with O's key, value and type means 4 happened (set the bit);
 * a pad (the hole padded, or an abort) means it did not. Only this process
 * could commit that claim, and it is dead (its flock is gone), so the
 * answer cannot change after it is read. Killed after 6: done. The flock
 * keeps a second resubmitter out, including one started while a stopped
 * (not dead) one still holds its claim.
 *
 * What can defeat the check is losing the position: a ring-only origin
 * lapped, or a durable one's retention, between the kill and the rerun.
 * Then the rerun refuses (-ESTALE) instead of guessing; the message says
 * which DLQ offset and how to settle it (EVB_RESUBMIT_SETTLE).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "crc32c.h"
#include "dlq.h"
#include "dlq_format.h"
#include "safe_open.h"

/* How long a rerun waits for the origin to settle a killed run's claim
 * (a dead producer's hole is padded within dead_ms), and a publish for
 * room in the origin's ring. */
#define EVB_RESUBMIT_WAIT_MS 10000

struct resub {
    evb_bus *bus;
    const char *topic;         /* the origin */
    char dlq[EVB_NAME_MAX + 1];
    char path[PATH_MAX + 32];  /* the state file */
    int fd;
    bool sync;                 /* the DLQ is durable: fdatasync the state */
    bool origin_durable;
    uint32_t nparts;           /* the origin's */
    uint32_t base;             /* the state file's first block number */
    uint32_t blocks;           /* bitmap blocks the state file holds */
    evb_producer *p;
    struct seen *seen;         /* EVB_RESUBMIT_ALL: origin events met so far */
    size_t seen_cap, seen_n;
};

/* ---- repeats ----
 *
 * The way into the DLQ is at least once: a reader killed between its
 * reject and its commit or ack (a queue member while a sync topic's DLQ
 * event goes to disk) is handed the event again and may reject it again.
 * Both records name the same origin event: its partition, offset,
 * position and publish time (the time tells a topic deleted and made
 * again, whose offsets restart, from the old one). An --all run
 * publishes the first it meets and reports the later ones as
 * EVB_RESUBMIT_DUPLICATE, leaving their bits clear: nothing was
 * published for them. */
struct seen {
    uint64_t offset, position, ts_ns, dlq_offset;
    uint32_t partition, used;
};

static uint64_t seen_hash(const struct evb_dlq_record *r)
{
    uint64_t h = r->origin_position * 0x9e3779b97f4a7c15ull;
    h ^= (r->origin_offset + r->origin_partition) * 0xc2b2ae3d27d4eb4full;
    h ^= r->origin_timestamp_ns * 0x165667b19e3779f9ull;
    return h ^ (h >> 29);
}

/* 1 and *FIRST the DLQ offset of an earlier record of R's origin event; 0
 * when R is the first (remembered now as DLQ_OFFSET's); -ENOMEM. */
static int seen_add(struct resub *rs, const struct evb_dlq_record *r, uint64_t dlq_offset,
                    uint64_t *first)
{
    if (2 * (rs->seen_n + 1) > rs->seen_cap) {
        size_t cap = rs->seen_cap ? 2 * rs->seen_cap : 1024;
        struct seen *t = calloc(cap, sizeof *t);
        if (!t)
            return evb_err_set(-ENOMEM, "dead-letter topic %s: out of memory", rs->dlq);
        for (size_t i = 0; i < rs->seen_cap; i++) {
            if (!rs->seen[i].used)
                continue;
            struct evb_dlq_record k = {.origin_partition = rs->seen[i].partition,
                                       .origin_offset = rs->seen[i].offset,
                                       .origin_position = rs->seen[i].position,
                                       .origin_timestamp_ns = rs->seen[i].ts_ns};
            size_t j = seen_hash(&k) & (cap - 1);
            while (t[j].used)
                j = (j + 1) & (cap - 1);
            t[j] = rs->seen[i];
        }
        free(rs->seen);
        rs->seen = t;
        rs->seen_cap = cap;
    }
    size_t j = seen_hash(r) & (rs->seen_cap - 1);
    for (; rs->seen[j].used; j = (j + 1) & (rs->seen_cap - 1)) {
        const struct seen *e = &rs->seen[j];
        if (e->partition == r->origin_partition && e->offset == r->origin_offset &&
            e->position == r->origin_position && e->ts_ns == r->origin_timestamp_ns) {
            *first = e->dlq_offset;
            return 1;
        }
    }
    rs->seen[j] = (struct seen){.offset = r->origin_offset, .position = r->origin_position,
                                .ts_ns = r->origin_timestamp_ns, .dlq_offset = dlq_offset,
                                .partition = r->origin_partition, .used = 1};
    rs->seen_n++;
    return 0;
}

/* ---- the state file ---- */

static int state_path(evb_bus *bus, const char *dlq, char *out, size_t cap, bool *durable)
{
    struct evb_topic_map *tm;
    int rc = evb_topic_map_open(bus, dlq, &tm);
    if (rc)
        return rc;
    *durable = tm->ddir[0] != '\0';
    snprintf(out, cap, "%s/resubmit.state", *durable ? tm->ddir : tm->dir);
    evb_topic_map_close(tm);
    return 0;
}

static int pread_all(int fd, void *buf, size_t n, off_t at)
{
    ssize_t k = pread(fd, buf, n, at);
    return k < 0 ? -errno : (int)k;
}

static int pwrite_all(int fd, const void *buf, size_t n, off_t at)
{
    ssize_t k = pwrite(fd, buf, n, at);
    if (k < 0)
        return -errno;
    return (size_t)k == n ? 0 : -EIO;
}

static uint32_t hdr_crc(const struct evb_dlqs_hdr *h)
{
    return evb_crc32c(0, h, offsetof(struct evb_dlqs_hdr, crc32c));
}

static uint32_t intent_crc(const struct evb_dlqs_intent *in)
{
    return evb_crc32c(0, in, offsetof(struct evb_dlqs_intent, crc32c));
}

/* The block's index goes into its crc, so a block copied to another
 * place (or a zeroed one, whose crc is not 0) reads as damage. */
static uint32_t block_crc(uint64_t k, const struct evb_dlqs_block *b)
{
    return evb_crc32c(evb_crc32c(0, &k, sizeof k), b->bits, sizeof b->bits);
}

/* Where the file's I-th block (block number base + I) is. */
static off_t block_at(uint64_t i)
{
    return (off_t)(EVB_DLQS_HDR_BYTES + i * EVB_DLQS_BLOCK_BYTES);
}

/* The one text every kind of damage ends with: what it means and what
 * removing the file would cost. */
#define DAMAGED_TAIL "so what was resubmitted is not known (removing the file forgets it: " \
                     "--all would resubmit every event again)"

/* Check the header and intent of FD (PATH) and that the file is as long
 * as the header says, into *H. 0, -EBADMSG or -EPROTO naming what was
 * found. The file is made whole (state_open), so an empty one is damage:
 * taking it for new would resubmit everything again. */
static int state_check(int fd, const char *path, struct evb_dlqs_hdr *h)
{
    int k = pread_all(fd, h, sizeof *h, 0);
    if (k < 0)
        return evb_err_set(k, "%s: %s", path, strerror(-k));
    if (k == 0)
        return evb_err_set(-EBADMSG, "%s: empty, not a DLQ resubmit state file, "
                           DAMAGED_TAIL, path);
    if ((size_t)k < sizeof *h || h->magic != EVB_DLQS_MAGIC)
        return evb_err_set(-EBADMSG, "%s: not a DLQ resubmit state file (%d bytes, magic "
                           "0x%llx), " DAMAGED_TAIL, path, k, (unsigned long long)h->magic);
    if (h->version != EVB_DLQS_VERSION || h->format != EVB_DLQS_FORMAT_WORD ||
        h->hdr_bytes != EVB_DLQS_HDR_BYTES)
        return evb_err_set(-EPROTO, "%s: version %u format 0x%llx, this build reads version "
                           "%u format 0x%llx", path, h->version, (unsigned long long)h->format,
                           EVB_DLQS_VERSION, (unsigned long long)EVB_DLQS_FORMAT_WORD);
    if (h->crc32c != hdr_crc(h))
        return evb_err_set(-EBADMSG, "%s: header damaged (crc32c), " DAMAGED_TAIL, path);
    const struct evb_dlqs_intent *in = &h->intent;
    static const struct evb_dlqs_intent none;
    if (memcmp(in, &none, sizeof none) != 0 &&
        (in->crc32c != intent_crc(in) || in->reserved != 0 ||
         (in->state != EVB_DLQS_NONE && in->state != EVB_DLQS_CLAIMED)))
        return evb_err_set(-EBADMSG, "%s: the resubmit intent is damaged, " DAMAGED_TAIL,
                           path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return evb_err_set(-errno, "%s: fstat: %s", path, strerror(errno));
    if ((uint64_t)st.st_size < (uint64_t)block_at(h->blocks))
        return evb_err_set(-EBADMSG, "%s: truncated to %lld bytes, its header counts %u "
                           "bitmap blocks (%lld bytes), " DAMAGED_TAIL, path,
                           (long long)st.st_size, h->blocks, (long long)block_at(h->blocks));
    return 0;
}

/* Read the I-th bitmap block of FD (PATH), whose first is block BASE,
 * into *B and check it. */
static int block_read(int fd, const char *path, uint32_t base, uint64_t i,
                      struct evb_dlqs_block *b)
{
    uint64_t k = base + i;
    int n = pread_all(fd, b, sizeof *b, block_at(i));
    if (n < 0)
        return evb_err_set(n, "%s: %s", path, strerror(-n));
    if ((size_t)n < sizeof *b || b->crc32c != block_crc(k, b))
        return evb_err_set(-EBADMSG, "%s: bitmap block %llu (dead-letter offsets %llu..%llu) "
                           "damaged, " DAMAGED_TAIL, path, (unsigned long long)k,
                           (unsigned long long)(k * EVB_DLQS_BLOCK_BITS),
                           (unsigned long long)((k + 1) * EVB_DLQS_BLOCK_BITS - 1));
    return 0;
}

/* Every bitmap block of FD (PATH), which holds BLOCKS from BASE: a
 * resubmit checks them all before it publishes anything. */
static int blocks_check(int fd, const char *path, uint32_t base, uint32_t blocks)
{
    struct evb_dlqs_block b;
    for (uint64_t i = 0; i < blocks; i++) {
        int rc = block_read(fd, path, base, i, &b);
        if (rc)
            return rc;
    }
    return 0;
}

static int state_sync(const struct resub *rs)
{
    if (rs->sync && fdatasync(rs->fd) < 0)
        return evb_err_set(-errno, "%s: fdatasync: %s", rs->path, strerror(errno));
    return 0;
}

/* 1 when DLQ offset O is marked done in FD (PATH, BLOCKS bitmap blocks
 * from block BASE), 0 when not, or -errno (-EBADMSG: its block is
 * damaged). Below BASE: not done, and no longer held (the DLQ had moved
 * past it when the file was made). */
static int bit_get(int fd, const char *path, uint32_t base, uint32_t blocks, uint64_t o)
{
    uint64_t k = o / EVB_DLQS_BLOCK_BITS, i = o % EVB_DLQS_BLOCK_BITS;
    if (k < base || k - base >= blocks)
        return 0;
    struct evb_dlqs_block b;
    int rc = block_read(fd, path, base, k - base, &b);
    if (rc)
        return rc;
    return b.bits[i / 8] >> (i % 8) & 1;
}

/* Count bitmap blocks up to block number K: each new block is written
 * (no bits, its crc) and synced before the header counts it, so a kill
 * between leaves a block nobody reads. */
static int blocks_grow(struct resub *rs, uint64_t k)
{
    if (k - rs->base >= UINT32_MAX || k >= UINT32_MAX)
        return evb_err_set(-EFBIG, "%s: dead-letter offsets past %llu are not recorded",
                           rs->path, (unsigned long long)UINT32_MAX * EVB_DLQS_BLOCK_BITS);
    struct evb_dlqs_block b = {0};
    for (uint64_t j = rs->blocks; j <= k - rs->base; j++) {
        b.crc32c = block_crc(rs->base + j, &b);
        int rc = pwrite_all(rs->fd, &b, sizeof b, block_at(j));
        if (rc)
            return evb_err_set(rc, "%s: %s", rs->path, strerror(-rc));
    }
    int rc = state_sync(rs);
    if (rc)
        return rc;
    struct evb_dlqs_hdr h;
    int n = pread_all(rs->fd, &h, offsetof(struct evb_dlqs_hdr, intent), 0);
    if (n < 0)
        return evb_err_set(n, "%s: %s", rs->path, strerror(-n));
    h.blocks = (uint32_t)(k - rs->base) + 1;
    h.crc32c = hdr_crc(&h);
    if ((rc = pwrite_all(rs->fd, &h, offsetof(struct evb_dlqs_hdr, intent), 0)))
        return evb_err_set(rc, "%s: %s", rs->path, strerror(-rc));
    rs->blocks = h.blocks;
    return state_sync(rs);
}

static int bit_set(struct resub *rs, uint64_t o)
{
    uint64_t k = o / EVB_DLQS_BLOCK_BITS, i = o % EVB_DLQS_BLOCK_BITS;
    int rc;
    /* The DLQ had moved past O when the file was made: nothing can have
     * read it since to resubmit it. */
    if (k < rs->base)
        return evb_err_set(-ERANGE, "%s: dead-letter offset %llu is below the oldest this "
                           "file records (%llu)", rs->path, (unsigned long long)o,
                           (unsigned long long)rs->base * EVB_DLQS_BLOCK_BITS);
    if (k - rs->base >= rs->blocks && (rc = blocks_grow(rs, k)))
        return rc;
    struct evb_dlqs_block b;
    if ((rc = block_read(rs->fd, rs->path, rs->base, k - rs->base, &b)))
        return rc;
    b.bits[i / 8] |= (uint8_t)(1u << (i % 8));
    b.crc32c = block_crc(k, &b);
    if ((rc = pwrite_all(rs->fd, &b, sizeof b, block_at(k - rs->base))))
        return evb_err_set(rc, "%s: %s", rs->path, strerror(-rc));
    return state_sync(rs);
}

static int intent_write(struct resub *rs, uint64_t o, uint32_t part, uint64_t pos, uint32_t st)
{
    struct evb_dlqs_intent in = {.dlq_offset = o, .origin_position = pos,
                                 .origin_partition = part, .state = st};
    in.crc32c = intent_crc(&in);
    int rc = pwrite_all(rs->fd, &in, sizeof in, EVB_DLQS_INTENT_AT);
    if (rc)
        return evb_err_set(rc, "%s: %s", rs->path, strerror(-rc));
    return state_sync(rs);
}

static void state_init(void *map, void *arg)
{
    const uint32_t *base = arg;
    struct evb_dlqs_hdr h = {.magic = EVB_DLQS_MAGIC, .version = EVB_DLQS_VERSION,
                             .hdr_bytes = EVB_DLQS_HDR_BYTES, .base = *base,
                             .format = EVB_DLQS_FORMAT_WORD};
    h.crc32c = hdr_crc(&h);
    memcpy(map, &h, sizeof h);
}

/* The block number a new state file starts at: that of the oldest event
 * the DLQ holds, or of its tail when it holds none (every later event is
 * at or past it). 0, the whole range, when that cannot be read. */
static uint32_t state_base(struct resub *rs)
{
    struct evb_partition_stat st;
    if (evb_partition_stat(rs->bus, rs->dlq, 0, &st))
        return 0;
    uint64_t oldest = st.tail_offset;
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    if (evb_consumer_open(&c, rs->bus, rs->dlq, &co))
        return 0;
    evb_event ev;
    uint64_t lag = 1;
    int rc = evb_consumer_next(c, &ev, 0);
    if (rc == 0 && ev.offset < oldest)
        oldest = ev.offset;
    else if (rc != 0 && (evb_consumer_lag(c, &lag) != 0 || lag != 0))
        /* Nothing readable yet below the tail: a reject still being
         * written there would get an offset below the tail's block. */
        oldest = 0;
    evb_consumer_close(c);
    evb_err_clear();
    uint64_t k = oldest / EVB_DLQS_BLOCK_BITS;
    return k < UINT32_MAX ? (uint32_t)k : 0;
}

/* Open (creating it whole: header written aside, then linked in) and
 * lock the state file of RS's DLQ. */
static int state_open(struct resub *rs, uint32_t file_mode)
{
    /* Looked at only when there is no file yet: a base must not depend on
     * events read after other runs marked bits. */
    uint32_t base = 0;
    if (access(rs->path, F_OK) != 0)
        base = state_base(rs);
    int fd = evb_file_open_or_create(rs->path, file_mode & 0666, EVB_DLQS_HDR_BYTES, rs->sync,
                                     state_init, &base);
    if (fd < 0)
        return fd;
    rs->fd = fd;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK
                   ? evb_err_set(-EBUSY, "dead-letter topic %s: another resubmit is running "
                                 "(it holds %s)", rs->dlq, rs->path)
                   : evb_err_set(-errno, "%s: flock: %s", rs->path, strerror(errno));
    struct evb_dlqs_hdr h;
    int rc = state_check(fd, rs->path, &h);
    if (rc || (rc = blocks_check(fd, rs->path, h.base, h.blocks)))
        return rc;
    rs->base = h.base;
    rs->blocks = h.blocks;
    return 0;
}

/* ---- reading events ---- */

/* The DLQ event at offset O into EV through a new subscriber *C (closed
 * by the caller). -ENOENT when the DLQ no longer (or never) held it. */
static int dlq_read(struct resub *rs, uint64_t o, evb_consumer **c, evb_event *ev)
{
    struct evb_partition_stat st;
    int rc = evb_partition_stat(rs->bus, rs->dlq, 0, &st);
    if (rc)
        return rc;
    if (o >= st.tail_offset)
        return evb_err_set(-ENOENT, "dead-letter topic %s has no event at offset %llu (its "
                           "next offset is %llu)", rs->dlq, (unsigned long long)o,
                           (unsigned long long)st.tail_offset);
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_OFFSET,
                               .start_value = o};
    if ((rc = evb_consumer_open(c, rs->bus, rs->dlq, &co)))
        return rc;
    rc = evb_consumer_next(*c, ev, EVB_RESUBMIT_WAIT_MS);
    if (rc)
        return rc;
    if (ev->offset != o)
        return evb_err_set(-ENOENT, "dead-letter topic %s no longer holds offset %llu (it "
                           "starts at %llu)", rs->dlq, (unsigned long long)o,
                           (unsigned long long)ev->offset);
    return 0;
}

static int decode_own(struct resub *rs, const evb_event *ev, struct evb_dlq_record *rec)
{
    int rc = evb_dlq_decode(ev, rec);
    if (rc)
        return evb_err_prefix(rc, "dead-letter topic %s", rs->dlq);
    if (strcmp(rec->origin_topic, rs->topic) != 0)
        return evb_err_set(-EBADMSG, "dead-letter topic %s: the event at offset %llu comes "
                           "from topic %s, not %s", rs->dlq, (unsigned long long)ev->offset,
                           rec->origin_topic, rs->topic);
    return 0;
}

/*
 * Whether the killed run's claim for DLQ event O at (PART, POS) was
 * committed: 1 yes, 0 no, or -errno (-ESTALE: the origin no longer holds
 * the position, so nobody can tell).
 */
static int claim_committed(struct resub *rs, uint64_t o, uint32_t part, uint64_t pos)
{
    evb_consumer *dc = NULL, *oc = NULL;
    evb_event dev, oev;
    struct evb_dlq_record rec;
    int rc = dlq_read(rs, o, &dc, &dev);
    if (rc == -ENOENT) {
        /* Gone from the DLQ: nothing can resubmit it again, so marking it
         * done publishes nothing twice. */
        rc = 1;
        goto out;
    }
    if (rc || (rc = decode_own(rs, &dev, &rec)))
        goto out;
    struct evb_partition_stat st;
    if (part >= rs->nparts) {
        rc = 0;
        goto out;
    }
    if ((rc = evb_partition_stat(rs->bus, rs->topic, part, &st)))
        goto out;
    if (pos >= st.tail_position) {
        /* The ring was rebuilt below the claim: it never reached disk. */
        rc = 0;
        goto out;
    }
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_POSITION,
                               .start_value = pos, .only_partition = 1,
                               .partition = (int32_t)part};
    if ((rc = evb_consumer_open(&oc, rs->bus, rs->topic, &co)))
        goto out;
    /* The claim is committed, padded (a dead producer's hole, within
     * dead_ms) or, if the ring moved on, gone. A pad with nothing after
     * it yields no event: the reader then stands at the tail, past POS. */
    uint64_t deadline = evb_mono_ns() + EVB_RESUBMIT_WAIT_MS * 1000000ull;
    while ((rc = evb_consumer_next(oc, &oev, 50)) == -ETIMEDOUT) {
        uint64_t lag = 1;
        if (evb_consumer_lag(oc, &lag) == 0 && lag == 0) {
            rc = 0;
            goto out;
        }
        if (evb_mono_ns() >= deadline) {
            rc = evb_err_set(rc, "topic %s, partition %u: the claim a killed resubmit left "
                             "at position %llu is still unsettled after %d ms", rs->topic,
                             part, (unsigned long long)pos, EVB_RESUBMIT_WAIT_MS);
            goto out;
        }
    }
    if (rc)
        goto out;
    if (oev.lost_events || oev.lost_bytes || oev.position < pos) {
        rc = evb_err_set(-ESTALE, "topic %s, partition %u no longer holds position %llu, "
                         "where a killed resubmit claimed room for dead-letter offset %llu: "
                         "whether it was published cannot be told; look for it in the "
                         "topic, then settle it (evbus dlq resubmit --settle)",
                         rs->topic, part, (unsigned long long)pos, (unsigned long long)o);
        goto out;
    }
    rc = oev.position == pos && oev.type == rec.type && oev.key_len == rec.key_len &&
         oev.value_len == rec.value_len &&
         (!rec.key_len || memcmp(oev.key, rec.key, rec.key_len) == 0) &&
         (!rec.value_len || memcmp(oev.value, rec.value, rec.value_len) == 0);
out:
    evb_consumer_close(oc);
    evb_consumer_close(dc);
    return rc;
}

/* Settle what a killed run left: the intent's bit set when its claim was
 * committed, then the intent cleared. SETTLE_DONE: a claim nobody can
 * check any more counts as done (risking its loss, never a duplicate). */
static int recover(struct resub *rs, bool settle_done)
{
    struct evb_dlqs_intent in;
    int k = pread_all(rs->fd, &in, sizeof in, EVB_DLQS_INTENT_AT);
    if (k < 0)
        return evb_err_set(k, "%s: %s", rs->path, strerror(-k));
    /* state_check found it whole (or all zero: none). */
    if ((size_t)k < sizeof in || in.state != EVB_DLQS_CLAIMED)
        return 0;
    if (in.origin_position % 8)
        return evb_err_set(-EBADMSG, "%s: the recorded claim's position %llu is not a frame "
                           "boundary", rs->path, (unsigned long long)in.origin_position);
    int rc = bit_get(rs->fd, rs->path, rs->base, rs->blocks, in.dlq_offset);
    if (rc == 0) {
        rc = claim_committed(rs, in.dlq_offset, in.origin_partition, in.origin_position);
        if (rc == -ESTALE && settle_done)
            rc = 1;
        if (rc == 1)
            rc = bit_set(rs, in.dlq_offset);
    }
    if (rc < 0)
        return rc;
    return intent_write(rs, 0, 0, 0, EVB_DLQS_NONE);
}

/* ---- publishing ---- */

static int resubmit_one(struct resub *rs, const evb_event *ev, const struct evb_dlq_record *rec,
                        evb_resubmit_report *rep)
{
    int rc;
    int32_t part = rec->origin_partition < rs->nparts ? (int32_t)rec->origin_partition
                                                      : EVB_PARTITION_ANY;
    struct evb_claim cl;
    if ((rc = evb_claim(rs->p, part, rec->key, rec->key_len, rec->value_len, &cl)))
        return evb_err_set(rc, "topic %s: claiming room for dead-letter offset %llu: %s",
                           rs->topic, (unsigned long long)ev->offset, evb_strerror(rc));
    evb_claim_set_type(rs->p, rec->type);
    if ((rc = intent_write(rs, ev->offset, cl.partition, cl.position, EVB_DLQS_CLAIMED))) {
        evb_abort(rs->p, &cl);
        return rc;
    }
    EVB_CRASH_POINT("dlq.resubmit.after_intent");
    if (rec->value_len)
        memcpy(cl.value, rec->value, rec->value_len);
    if ((rc = evb_commit(rs->p, &cl))) {
        /* Padded: not published. The intent says so to any rerun too. */
        intent_write(rs, 0, 0, 0, EVB_DLQS_NONE);
        return evb_err_set(rc, "topic %s: dead-letter offset %llu not resubmitted: %s",
                           rs->topic, (unsigned long long)ev->offset, evb_strerror(rc));
    }
    EVB_CRASH_POINT("dlq.resubmit.after_commit");
    /* A durable origin: the bit must not reach the disk before the event
     * it stands for, or a power cut loses the event and keeps the bit. */
    if (rs->origin_durable && (rc = evb_producer_sync(rs->p, EVB_RESUBMIT_WAIT_MS)))
        return rc;
    if ((rc = bit_set(rs, ev->offset)))
        return rc;
    EVB_CRASH_POINT("dlq.resubmit.after_mark");
    *rep = (evb_resubmit_report){.dlq_offset = ev->offset, .status = EVB_RESUBMIT_PUBLISHED,
                                 .partition = cl.partition, .offset = cl.offset,
                                 .position = cl.position};
    return 1;
}

/* One DLQ event: skipped when done, else published. 1 published, 0
 * skipped, or -errno; *STOP when FN asked to stop. */
static int deal(struct resub *rs, const evb_event *ev, bool all,
                int (*fn)(const evb_resubmit_report *r, void *arg), void *arg, bool *stop)
{
    evb_resubmit_report rep = {.dlq_offset = ev->offset, .status = EVB_RESUBMIT_ALREADY};
    /* A damaged state file stops the run: its -EBADMSG is not a bad DLQ
     * record to skip. */
    int rc = bit_get(rs->fd, rs->path, rs->base, rs->blocks, ev->offset);
    if (rc < 0)
        return rc;
    struct evb_dlq_record rec;
    int decoded = decode_own(rs, ev, &rec);
    if (all && decoded == 0) {
        /* Every record counts, resubmitted ones too: a repeat of one
         * published by an earlier run is as much a repeat. */
        uint64_t first = 0;
        int s = seen_add(rs, &rec, ev->offset, &first);
        if (s < 0)
            return s;
        if (s == 1 && rc == 0) {
            rep.status = EVB_RESUBMIT_DUPLICATE;
            rep.offset = first;
            if (fn && fn(&rep, arg))
                *stop = true;
            return 0;
        }
    }
    if (rc == 0) {
        rc = decoded;
        if (rc == 0) {
            rc = resubmit_one(rs, ev, &rec, &rep);
        } else if (all && (rc == -EBADMSG || rc == -EPROTO)) {
            /* Garbage in the DLQ (anyone who may publish there can put
             * it there) must not stop every event after it from going
             * back. */
            rep.status = EVB_RESUBMIT_SKIPPED;
            rep.error = rc;
            rc = 0;
        }
    } else {
        rc = 0;
    }
    if (rc >= 0 && fn && fn(&rep, arg))
        *stop = true;
    return rc;
}

/* Every DLQ event below the tail seen at the start. */
static int run_all(struct resub *rs, int (*fn)(const evb_resubmit_report *r, void *arg),
                   void *arg)
{
    struct evb_partition_stat st;
    int rc = evb_partition_stat(rs->bus, rs->dlq, 0, &st);
    if (rc)
        return rc;
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    if ((rc = evb_consumer_open(&c, rs->bus, rs->dlq, &co)))
        return rc;
    int done = 0;
    bool stop = false;
    uint64_t deadline = evb_mono_ns() + EVB_RESUBMIT_WAIT_MS * 1000000ull;
    while (!stop) {
        evb_event ev;
        rc = evb_consumer_next(c, &ev, 50);
        if (rc == -ETIMEDOUT) {
            /* Caught up: the last events were pads, or there were none.
             * Else it waits at a hole in the DLQ, padded within dead_ms. */
            uint64_t lag = 1;
            if (evb_consumer_lag(c, &lag) == 0 && lag == 0) {
                rc = 0;
                break;
            }
            if (evb_mono_ns() < deadline)
                continue;
            rc = evb_err_set(rc, "dead-letter topic %s: no event came for %d ms below its "
                             "tail", rs->dlq, EVB_RESUBMIT_WAIT_MS);
        }
        if (rc || ev.offset >= st.tail_offset)
            break;
        if ((rc = deal(rs, &ev, true, fn, arg, &stop)) < 0)
            break;
        done += rc;
        rc = 0;
        if (ev.offset + 1 >= st.tail_offset)
            break;
        deadline = evb_mono_ns() + EVB_RESUBMIT_WAIT_MS * 1000000ull;
    }
    evb_consumer_close(c);
    return rc < 0 ? rc : done;
}

EVB_EXPORT int evb_dlq_resubmit(evb_bus *bus, const char *topic, uint64_t offset, uint32_t flags,
                                int (*fn)(const evb_resubmit_report *r, void *arg), void *arg)
{
    EVB_NO_CANCEL;
    if (!bus || !topic || (flags & ~(EVB_RESUBMIT_ALL | EVB_RESUBMIT_SETTLE)))
        return evb_err_set(-EINVAL, "evb_dlq_resubmit: %s",
                           !bus ? "bus is NULL" : !topic ? "topic is NULL" : "unknown flags");
    evb_err_clear();
    struct resub rs = {.bus = bus, .topic = topic, .fd = -1};
    struct evb_topic_info oi, di;
    int rc = evb_name_check(topic, "topic");
    if (rc || (rc = evb_dlq_name(topic, rs.dlq)))
        return rc;
    if ((rc = evb_topic_info(bus, topic, &oi)) || (rc = evb_topic_info(bus, rs.dlq, &di)))
        return rc;
    if (di.config.partitions != 1)
        return evb_dlq_parts_refused(rs.dlq, di.config.partitions);
    if ((rc = state_path(bus, rs.dlq, rs.path, sizeof rs.path, &rs.sync)))
        return rc;
    rs.nparts = oi.config.partitions;
    rs.origin_durable = oi.config.durability != EVB_DURABILITY_NONE;
    evb_producer_options po = {.block_ms = EVB_RESUBMIT_WAIT_MS};
    if ((rc = state_open(&rs, di.config.file_mode)) ||
        (rc = evb_producer_open(&rs.p, bus, topic, &po)) ||
        (rc = recover(&rs, flags & EVB_RESUBMIT_SETTLE)))
        goto out;
    if (flags & EVB_RESUBMIT_ALL) {
        rc = run_all(&rs, fn, arg);
    } else {
        evb_consumer *c = NULL;
        evb_event ev;
        bool stop = false;
        if (!(rc = dlq_read(&rs, offset, &c, &ev)))
            rc = deal(&rs, &ev, false, fn, arg, &stop);
        evb_consumer_close(c);
    }
out:
    evb_producer_close(rs.p);
    free(rs.seen);
    if (rs.fd >= 0)
        close(rs.fd);
    return rc;
}

/* The state file as a question about it sees it (state_peek). */
struct state_view {
    char path[PATH_MAX + 32]; /* for messages */
    struct evb_dlqs_hdr h;    /* checked */
    int fd;                   /* read only, no flock; the caller closes it */
};

/* Open the state file of TOPIC's DLQ read only into *SV and check its
 * header, for a question about it: no flock, as a running resubmit may
 * hold it, and no bitmap block is read here. 1 when it is open, 0 when
 * there is none yet (nothing was resubmitted), or a negative errno. */
static int state_peek(evb_bus *bus, const char *topic, struct state_view *sv)
{
    char dlq[EVB_NAME_MAX + 1];
    bool durable;
    int rc = evb_name_check(topic, "topic");
    if (rc || (rc = evb_dlq_name(topic, dlq)) ||
        (rc = state_path(bus, dlq, sv->path, sizeof sv->path, &durable)))
        return rc;
    int fd = evb_open_file(AT_FDCWD, sv->path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return evb_open_fail(fd, sv->path);
    if ((rc = state_check(fd, sv->path, &sv->h))) {
        close(fd);
        return rc;
    }
    sv->fd = fd;
    return 1;
}

EVB_EXPORT int evb_dlq_resubmitted(evb_bus *bus, const char *topic, uint64_t dlq_offset)
{
    EVB_NO_CANCEL;
    if (!bus || !topic)
        return evb_err_set(-EINVAL, "evb_dlq_resubmitted: %s is NULL", !bus ? "bus" : "topic");
    evb_err_clear();
    struct state_view sv;
    int rc = state_peek(bus, topic, &sv);
    if (rc <= 0)
        return rc;
    rc = bit_get(sv.fd, sv.path, sv.h.base, sv.h.blocks, dlq_offset);
    close(sv.fd);
    return rc;
}

EVB_EXPORT int evb_dlq_resubmitted_count(evb_bus *bus, const char *topic, uint64_t *count)
{
    EVB_NO_CANCEL;
    if (!bus || !topic || !count)
        return evb_err_set(-EINVAL, "evb_dlq_resubmitted_count: %s is NULL",
                           !bus ? "bus" : !topic ? "topic" : "count");
    evb_err_clear();
    *count = 0;
    struct state_view sv;
    int rc = state_peek(bus, topic, &sv);
    if (rc <= 0)
        return rc;
    rc = 0;
    uint64_t n = 0;
    struct evb_dlqs_block b;
    for (uint64_t i = 0; rc == 0 && i < sv.h.blocks; i++) {
        if ((rc = block_read(sv.fd, sv.path, sv.h.base, i, &b)))
            break;
        for (size_t i = 0; i < sizeof b.bits; i++)
            n += (uint64_t)__builtin_popcount(b.bits[i]);
    }
    close(sv.fd);
    if (rc == 0)
        *count = n;
    return rc;
}
