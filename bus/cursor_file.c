/*
 * cursor_file.c - named consumers' committed cursors, one file per consumer
 * (format and life of the file: cursor_format.h). This file creates,
 * checks, owns, loads and stores it, and scans them all for the retention
 * of durable topics; consumer.c decides when to commit and where to start.
 *
 * Ordering edges of the cursor file (labels used at each site):
 *
 *   K1  creation: partitions, version, format and every entry's pos are
 *       stored before the magic (release); pairs with the acquire load of
 *       the magic in evb_cursor_file_open() and cur_read_checked() (scans
 *       and lists), so whoever sees the magic sees a finished file. The
 *       file is made under a temporary name and linked into place
 *       (file_create.c), so its name shows it whole; K1 still orders the
 *       words for a reader.
 *   K2  commit: the owner's release store of the even seq after pos and
 *       offset; pairs with the loader's acquire load of seq, so a loader
 *       that sees that seq sees that commit's pair.
 *   K3  torn read: the owner's release fence after storing the odd seq,
 *       before pos and offset; pairs with the loader's acquire fence after
 *       loading them, before it loads seq again: a loader that saw any word
 *       of a commit in progress sees a seq other than its first, and retries.
 *   K4  ownership: an opener's acquire load and CAS of owner pair with the
 *       previous holder's CAS (release) giving it back at close, so the
 *       new holder starts after everything the old one stored. Handles of
 *       one process take and give back under held_mu (below), so two of
 *       its threads never both see the word free or both their own.
 *   K5  upgrade of a version 1 file: its new owner stores the format word,
 *       then the version with release; pairs with the acquire load of the
 *       version in cur_check(), so whoever sees version 2 sees the format
 *       word. A reader that sees version 0 takes the file as version 1,
 *       whatever the format word holds by then (0 or this build's).
 */
#include "cursor_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "dedup.h"
#include "cursor_format.h"
#include "group.h"
#include "safe_open.h"

/*
 * The cursor files this process holds. The owner word names a process, not
 * a handle, so it cannot tell a second handle of this process from the
 * first: both would own the file, commit over each other, and the first
 * close would free the name under the second. An owner word of this
 * process that no handle here holds is a leftover of the image this one
 * exec()ed from (same pid, same start time, no handle left): taken over,
 * as a dead process's. A forked child starts with an empty list: the
 * parent's handles are not its own (and the parent's owner word is not
 * the child's, so the child is refused while the parent lives).
 */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static struct evb_cursor_file *held;

static void held_fork_prepare(void)
{
    pthread_mutex_lock(&held_mu);
}

static void held_fork_parent(void)
{
    pthread_mutex_unlock(&held_mu);
}

static void held_fork_child(void)
{
    held = NULL;
    pthread_mutex_unlock(&held_mu);
}

__attribute__((constructor)) static void held_atfork(void)
{
    pthread_atfork(held_fork_prepare, held_fork_parent, held_fork_child);
}

/* Whether a handle of this process holds the file DEV, INO; under held_mu. */
static bool held_here(uint64_t dev, uint64_t ino)
{
    for (const struct evb_cursor_file *h = held; h; h = h->next)
        if (h->dev == dev && h->ino == ino)
            return true;
    return false;
}

/* Check the header of a mapped cursor file of FILE_BYTES bytes (at least
 * the header's) against a topic of NPARTS partitions; MAGIC was loaded
 * with acquire (K1), and nothing else is read before it checks out, as
 * the rest may be a racing creator's work in progress. 0 (this build's
 * version or version 1), or -EBADMSG / -EPROTO with the reason, naming the
 * value found and the one expected, in MSG. */
static int cur_check(const struct evb_cur_hdr *h, uint64_t magic, size_t file_bytes,
                     uint32_t nparts, char *msg, size_t cap)
{
    size_t want = evb_cur_file_bytes(nparts);
    if (magic == 0 && file_bytes != want) {
        snprintf(msg, cap, "%zu bytes, expected %zu for %u partitions", file_bytes, want,
                 nparts);
        return -EBADMSG;
    }
    if (magic != EVB_CUR_MAGIC) {
        snprintf(msg, cap, "magic 0x%llx, expected 0x%llx", (unsigned long long)magic,
                 (unsigned long long)EVB_CUR_MAGIC);
        return -EBADMSG;
    }
    /* Written before the magic (K1) and never again. */
    uint32_t parts = h->partitions;
    /* K5: acquire; an upgrader's format word comes with its version. */
    uint32_t version = atomic_load_explicit(&h->version, memory_order_acquire);
    /* Relaxed: ordered by K1, or by K5 when version is 2; with version 0
     * it is 0 or, mid-upgrade, this build's word. */
    uint64_t format = atomic_load_explicit(&h->format, memory_order_relaxed);
    if (version != EVB_CUR_VERSION && version != EVB_CUR_VERSION_1) {
        snprintf(msg, cap, "version %u, this build reads %u", version, EVB_CUR_VERSION);
        return -EPROTO;
    }
    if (format != EVB_CUR_FORMAT_WORD && (version == EVB_CUR_VERSION || format != 0)) {
        snprintf(msg, cap, "format 0x%llx, this build reads 0x%llx",
                 (unsigned long long)format, (unsigned long long)EVB_CUR_FORMAT_WORD);
        return -EPROTO;
    }
    if (parts != nparts) {
        snprintf(msg, cap, "%u partitions, the topic has %u", parts, nparts);
        return -EBADMSG;
    }
    if (file_bytes != want) {
        snprintf(msg, cap, "%zu bytes, expected %zu for %u partitions", file_bytes, want,
                 nparts);
        return -EBADMSG;
    }
    return 0;
}

/* Rewrite a version 1 header as this build's, in place (the layout is the
 * same: only the zero version and format words change). Called by the
 * owner only (K4), so no two upgraders race. A process of a version 1
 * build never reads or writes these two words, so one that opens the file
 * meanwhile, or later, still works with it; it cannot own it at the same
 * time (the owner word and its protocol are unchanged). */
static void cur_upgrade(struct evb_cur_hdr *f)
{
    /* Relaxed: only the owner writes version after creation, and K4 put
     * this owner after the previous one. */
    if (atomic_load_explicit(&f->version, memory_order_relaxed) != EVB_CUR_VERSION_1)
        return;
    /* Relaxed: published by the version's release (K5). */
    atomic_store_explicit(&f->format, EVB_CUR_FORMAT_WORD, memory_order_relaxed);
    /* K5: release; the format word before the version. */
    atomic_store_explicit(&f->version, EVB_CUR_VERSION, memory_order_release);
}

/* Map a cursor file's first min(SIZE, BYTES) bytes (never past its end);
 * *LEN gets the mapped length. MAP_FAILED too when SIZE cannot hold a
 * header. */
static void *cur_map(int fd, size_t size, size_t bytes, int prot, size_t *len)
{
    if (size < EVB_CUR_HDR_BYTES)
        return MAP_FAILED;
    *len = size < bytes ? size : bytes;
    return mmap(NULL, *len, prot, MAP_SHARED, fd, 0);
}

/* A new file's content, written before it is linked into place. */
struct cur_new {
    uint32_t nparts;
};

static void cur_init(void *map, void *arg)
{
    struct evb_cur_hdr *f = map;
    const struct cur_new *cn = arg;
    f->partitions = cn->nparts;
    /* Relaxed: no one else sees the file before it is linked (file_create.c),
     * and the magic's release (K1) orders them for scans anyway. */
    atomic_store_explicit(&f->version, EVB_CUR_VERSION, memory_order_relaxed);
    atomic_store_explicit(&f->format, EVB_CUR_FORMAT_WORD, memory_order_relaxed);
    for (uint32_t i = 0; i < cn->nparts; i++)
        atomic_store_explicit(&f->e[i].pos, EVB_POS_NONE, memory_order_relaxed);
    /* K1: release; everything above before the magic. */
    atomic_store_explicit(&f->magic, EVB_CUR_MAGIC, memory_order_release);
}

int evb_cursor_file_open(struct evb_cursor_file *cf, const struct evb_topic_map *tm,
                         const char *name)
{
    char path[PATH_MAX + 128];
    const char *top = tm->ddir[0] ? tm->ddir : tm->dir;
    snprintf(path, sizeof path, "%s/consumers", top);
    if (tm->ddir[0])
        evb_make_dirs(path, evb_drop_dir_mode(tm->cfg.file_mode)); /* topics made before
                                                                      consumers/ existed */
    snprintf(path, sizeof path, "%s/consumers/%s.cur", top, name);
    size_t bytes = evb_cur_file_bytes(tm->nparts);
    /* Open it, or create it whole and open that (file_create.c): empty or
     * zeroed is then damage, not a new consumer that would deliver
     * everything again. */
    struct cur_new cn = {tm->nparts};
    int fd = evb_file_open_or_create(path, tm->cfg.file_mode, bytes, tm->ddir[0] != 0,
                                     cur_init, &cn);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    /* consumers/ is writable by every reader of the topic (sticky, as
     * /tmp), so a file there may have been planted by another of them to
     * steer this consumer (replay, skip): a cursor file is its consumer's
     * own. */
    if (st.st_uid != geteuid()) {
        int rc = evb_err_set(-EACCES, "%s: owned by uid %u, not by you (uid %u): consumer %s "
                             "belongs to another user", path, (unsigned)st.st_uid,
                             (unsigned)geteuid(), name);
        close(fd);
        return rc;
    }
    size_t size = (size_t)st.st_size;
    size_t len = 0;
    struct evb_cur_hdr *f = cur_map(fd, size, bytes, PROT_READ | PROT_WRITE, &len);
    int e = errno;
    close(fd);
    if (size == 0)
        return evb_err_set(-EBADMSG, "%s: empty (0 bytes), not a cursor file; remove it to "
                           "start the consumer over", path);
    if (size < EVB_CUR_HDR_BYTES)
        return evb_err_set(-EBADMSG, "%s: %zu bytes, smaller than a cursor file header (%u)",
                           path, size, EVB_CUR_HDR_BYTES);
    if (f == MAP_FAILED)
        return evb_err_set(-e, "%s: mmap: %s", path, strerror(e));
    /* K1: acquire; a set magic comes with a finished file. */
    uint64_t magic = atomic_load_explicit(&f->magic, memory_order_acquire);
    char msg[128];
    int rc = cur_check(f, magic, size, tm->nparts, msg, sizeof msg);
    if (rc) {
        munmap(f, len);
        if (magic == 0 && size == bytes)
            return evb_err_set(rc, "%s: %s (zeroed, not a cursor file; remove it to start "
                               "the consumer over)", path, msg);
        return evb_err_set(rc, "%s: %s", path, msg);
    }
    uint64_t self = evb_proc_self();
    uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
    pthread_mutex_lock(&held_mu);
    /* Tests cancel the thread here: the liveness look below reads /proc. */
    EVB_CRASH_POINT("cursor.held");
    for (;;) {
        /* K4: acquire; after the previous holder's release at close. */
        uint64_t o = atomic_load_explicit(&f->owner, memory_order_acquire);
        if (o == self && held_here(dev, ino)) {
            pthread_mutex_unlock(&held_mu);
            munmap(f, len);
            return evb_err_set(-EBUSY, "consumer %s of topic %s is already open in this "
                               "process (pid %u): one handle per named consumer; close the "
                               "other handle first", name, tm->name, (unsigned)(o >> 32));
        }
        if (o && o != self && evb_proc_alive(o)) {
            pthread_mutex_unlock(&held_mu);
            munmap(f, len);
            return evb_err_set(-EBUSY, "consumer %s of topic %s is open in another process "
                               "(pid %u)", name, tm->name, (unsigned)(o >> 32));
        }
        /* K4: acq_rel on success; relaxed on failure, as the loop loads
         * owner again with acquire. */
        if (atomic_compare_exchange_strong_explicit(&f->owner, &o, self, memory_order_acq_rel,
                                                    memory_order_relaxed))
            break;
    }
    cf->dev = dev;
    cf->ino = ino;
    cf->next = held;
    held = cf;
    pthread_mutex_unlock(&held_mu);
    cur_upgrade(f);
    cf->map = f;
    cf->bytes = bytes;
    return 0;
}

void evb_cursor_file_close(struct evb_cursor_file *cf)
{
    if (!cf->map)
        return;
    uint64_t self = evb_proc_self();
    pthread_mutex_lock(&held_mu);
    /* K4: release (acq_rel) hands the file to the next opener; relaxed on
     * failure: someone took it over (or this is a forked child's copy of
     * its parent's handle), nothing to hand. */
    atomic_compare_exchange_strong_explicit(&cf->map->owner, &self, 0,
                                            memory_order_acq_rel, memory_order_relaxed);
    /* Not found in a forked child, whose list starts empty. */
    for (struct evb_cursor_file **pp = &held; *pp; pp = &(*pp)->next) {
        if (*pp == cf) {
            *pp = cf->next;
            break;
        }
    }
    pthread_mutex_unlock(&held_mu);
    munmap(cf->map, cf->bytes);
    cf->map = NULL;
}

static bool cur_load(const struct evb_cur_hdr *f, uint32_t part, uint64_t *pos,
                     uint64_t *off)
{
    const struct evb_cur_entry *e = &f->e[part];
    for (int tries = 0; tries < 1000; tries++) {
        /* K2: acquire; pairs with the owner's release of an even seq. */
        uint64_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        /* Relaxed: bracketed by K2 above and the K3 fence below. */
        *pos = atomic_load_explicit(&e->pos, memory_order_relaxed);
        *off = atomic_load_explicit(&e->offset, memory_order_relaxed);
        /* K3: acquire fence; pairs with the owner's release fence after
         * its odd store, so the seq loaded next is not s1 if pos or offset
         * came from a commit in progress. */
        atomic_thread_fence(memory_order_acquire);
        /* Relaxed: ordered after the data by the K3 fence. */
        if (!(s1 & 1) && atomic_load_explicit(&e->seq, memory_order_relaxed) == s1)
            return *pos != EVB_POS_NONE;
    }
    /* A writer died mid-commit: the position alone is still a boundary.
     * Relaxed: one word, atomic by itself, pairs with nothing. */
    *pos = atomic_load_explicit(&e->pos, memory_order_relaxed);
    return *pos != EVB_POS_NONE;
}

bool evb_cursor_file_load(const struct evb_cursor_file *cf, uint32_t part, uint64_t *pos,
                          uint64_t *off)
{
    return cur_load(cf->map, part, pos, off);
}

void evb_cursor_file_store(struct evb_cursor_file *cf, uint32_t part, uint64_t pos,
                           uint64_t off)
{
    struct evb_cur_entry *e = &cf->map->e[part];
    /* Relaxed: only the owner writes seq. An owner killed between its
     * two seq stores left it odd; counting on from there would invert the
     * seqlock (odd when whole) for every later commit, so every load
     * would spin its tries out: the odd value is the next odd one. */
    uint64_t s = atomic_load_explicit(&e->seq, memory_order_relaxed) | 1;
    /* Relaxed: ordered before the data by the K3 fence. */
    atomic_store_explicit(&e->seq, s, memory_order_relaxed);
    /* K3: release fence; pairs with the loader's acquire fence. */
    atomic_thread_fence(memory_order_release);
    /* Relaxed: between the K3 fence and the K2 release below. */
    atomic_store_explicit(&e->pos, pos, memory_order_relaxed);
    atomic_store_explicit(&e->offset, off, memory_order_relaxed);
    /* K2: release; the pair before the even seq. */
    atomic_store_explicit(&e->seq, s + 1, memory_order_release);
}

/* A file of consumers/ for consumers_each(): FD, open read only and closed
 * by the walk after this returns, at PATH, whose name in consumers/ is
 * NAME; or FD is the negative errno of opening it (a file that went
 * since the directory was read is not passed). Nonzero stops the walk. */
typedef int (*consumer_file_fn)(int fd, const char *path, const char *name, void *arg);

/* Call FN for each file of TM's consumers/ whose name ends in SUFFIX (and
 * is longer than it), in directory order; one that cannot be opened as a
 * regular file comes with its negative errno as FD (a scan passes it
 * over: it holds no commit to honour; a list shows it). 0, FN's nonzero,
 * or the negative errno of opening consumers/ (-ENOENT before the first
 * named reader). */
static int consumers_each_in(const char *base, const char *suffix, int oflags,
                             consumer_file_fn fn, void *arg)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/consumers", base);
    DIR *d;
    int rc = evb_open_dir(dir, &d);
    if (rc < 0)
        return rc;
    size_t sl = strlen(suffix);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= sl || strcmp(e->d_name + n - sl, suffix))
            continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int fd = evb_open_file(AT_FDCWD, path, oflags, 0, EVB_FILE_REG);
        if (fd == -ENOENT)
            continue; /* removed since readdir */
        rc = fn(fd, path, e->d_name, arg);
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    return rc;
}

static int consumers_each(const struct evb_topic_map *tm, const char *suffix,
                          consumer_file_fn fn, void *arg)
{
    return consumers_each_in(tm->ddir[0] ? tm->ddir : tm->dir, suffix, O_RDONLY, fn, arg);
}

/* pread of N bytes at OFF, again when a signal cut it short: the bytes
 * read (fewer at the file's end), or -errno. */
static ssize_t cur_pread(int fd, void *buf, size_t n, off_t off)
{
    ssize_t k;
    do
        k = pread(fd, buf, n, off);
    while (k < 0 && errno == EINTR);
    return k < 0 ? -errno : k;
}

/*
 * Read the cursor file FD and check it against a topic of NPARTS
 * partitions, as a reader of someone else's file: NULL when this build
 * cannot read it, and *WHY says why (-EBADMSG damaged, shorter than a
 * header included; -EPROTO another build's format; else the file could
 * not be read: -ENOMEM, fstat's or read's errno), else a copy in the heap
 * to free(). Read with pread, never
 * mapped: the file is its owner's, who may cut it or punch a hole in it
 * and fill the file system, and a fault on either kills the mapper (the
 * flusher's retention, `evbus stat`) with SIGBUS. Entry PART of the copy
 * is settled: read again until two reads agree (a commit between them
 * changes its seq), so the copy holds no commit the owner was writing
 * while it was read, torn, unless its writer stopped there (a dead
 * writer's odd seq; cur_load takes its pos alone).
 */
static struct evb_cur_hdr *cur_read_checked(int fd, uint32_t nparts, uint32_t part, int *why)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        *why = -errno;
        return NULL;
    }
    size_t size = (size_t)st.st_size, want = evb_cur_file_bytes(nparts);
    size_t len = size < want ? size : want;
    if (size < EVB_CUR_HDR_BYTES) {
        *why = -EBADMSG;
        return NULL;
    }
    struct evb_cur_hdr *f = malloc(len);
    if (!f) {
        *why = -ENOMEM;
        return NULL;
    }
    ssize_t n = cur_pread(fd, f, len, 0);
    if (n != (ssize_t)len) {
        *why = n < 0 ? (int)n : -EBADMSG; /* cut since the fstat */
        free(f);
        return NULL;
    }
    char msg[128];
    /* K1: the file was linked whole (file_create.c): the copy's magic
     * comes with the words written before it. The acquire is moot on a
     * copy; kept as the mapping's loads are. */
    uint64_t magic = atomic_load_explicit(&f->magic, memory_order_acquire);
    if ((*why = cur_check(f, magic, size, nparts, msg, sizeof msg))) {
        free(f);
        return NULL;
    }
    off_t at = (off_t)(EVB_CUR_HDR_BYTES + (size_t)part * EVB_CUR_ENTRY_BYTES);
    if (part < nparts && (size_t)at + EVB_CUR_ENTRY_BYTES <= len) {
        struct evb_cur_entry x, y;
        memcpy(&x, &f->e[part], sizeof x);
        for (int tries = 0; tries < 1000; tries++) {
            ssize_t k = cur_pread(fd, &y, sizeof y, at);
            if (k < 0) {
                /* Not settled: the copy may be torn (K3). */
                *why = (int)k;
                free(f);
                return NULL;
            }
            if (k != (ssize_t)sizeof y || !memcmp(&x, &y, sizeof x))
                break;
            x = y;
        }
        memcpy(&f->e[part], &x, sizeof x);
    }
    return f;
}

struct min_scan {
    struct evb_topic_map *tm;
    uint32_t part;
    evb_commit_of_fn commit_of;
    uint64_t tail;
    uint64_t min;
};

/* Whether an open of a file (or consumers/) failed for want of a read
 * (I/O error, memory, descriptors), not for what is there: its commit is
 * unknown then, where a file that is no cursor file holds none. */
static bool scan_unreadable(int rc)
{
    return rc == -EIO || rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE || rc == -EINTR ||
           rc == -ENOBUFS;
}

static int min_scan_one(int fd, const char *path, const char *name, void *arg)
{
    (void)name;
    struct min_scan *ms = arg;
    if (fd < 0 && scan_unreadable(fd)) {
        ms->min = 0; /* its commit is not known: keep everything (see below) */
        return 0;
    }
    if (fd < 0)
        return 0; /* no commit to honour: not a file (EVB_EFTYPE), not ours to read */
    uint64_t pos = ms->commit_of(ms->tm, ms->part, fd, path);
    if (pos < ms->min && pos <= ms->tail && pos % EVB_FRAME_ALIGN == 0)
        ms->min = pos;
    return 0;
}

uint64_t evb_scan_min_committed(struct evb_topic_map *tm, uint32_t part, const char *suffix,
                                evb_commit_of_fn commit_of)
{
    struct min_scan ms = {.tm = tm, .part = part, .commit_of = commit_of, .min = UINT64_MAX};
    if (part >= tm->nparts)
        return ms.min;
    /* A commit is a frame boundary at or below the tail; any other word
     * is damage and protects nothing (it would let retention cut what
     * nobody read). */
    uint64_t toff;
    evb_ring_load_tail(&tm->rings[part], &ms.tail, &toff);
    int rc = consumers_each(tm, suffix, min_scan_one, &ms); /* no consumers/: no commit */
    if (rc < 0 && scan_unreadable(rc))
        ms.min = 0; /* consumers/ could not be read: nobody's commit is known */
    return ms.min;
}

/* A cursor file's commit in PART, UINT64_MAX when it holds none this
 * build can read; 0 (the log's oldest position: retention keeps it all)
 * when it could not be read at all (EIO, no memory): its consumer's
 * commit is not known, and what it still needs must not go on a failed
 * read. */
static uint64_t cursor_commit(struct evb_topic_map *tm, uint32_t part, int fd, const char *path)
{
    (void)path;
    int why;
    struct evb_cur_hdr *f = cur_read_checked(fd, tm->nparts, part, &why);
    if (!f)
        return why == -EBADMSG || why == -EPROTO ? UINT64_MAX : 0;
    uint64_t pos = UINT64_MAX, off;
    if (!cur_load(f, part, &pos, &off))
        pos = UINT64_MAX;
    free(f);
    return pos;
}

uint64_t evb_consumers_min_committed(struct evb_topic_map *tm, uint32_t part)
{
    return evb_scan_min_committed(tm, part, ".cur", cursor_commit);
}

struct named_list {
    struct evb_topic_map *tm;
    uint32_t part;
    uint64_t tpos, toff;    /* the partition's tail, loaded once before the walk */
    evb_named_consumer_stat *out;
    uint32_t cap;
    uint32_t n;             /* files listed, whether they fit or not */
};

/* O from the checked cursor file F of consumer NAME (NAME_LEN bytes). */
static void named_fill(const struct named_list *nl, const struct evb_cur_hdr *f,
                       const char *name, size_t name_len, evb_named_consumer_stat *o)
{
    struct evb_topic_map *tm = nl->tm;
    uint32_t partition = nl->part;
    uint64_t tpos = nl->tpos, toff = nl->toff;
    memset(o, 0, sizeof *o);
    memcpy(o->name, name, name_len);
    /* Relaxed: shown, not relied on; checked for a live process. */
    uint64_t owner = atomic_load_explicit(&f->owner, memory_order_relaxed);
    o->pid = owner && evb_proc_alive(owner) ? (uint32_t)(owner >> 32) : 0;
    uint64_t pos, off;
    if (cur_load(f, partition, &pos, &off)) {
        /* A commit made before any event (its start), or a torn
         * one, may not know its offset: the tail's, or the frame
         * there, says it. */
        uint64_t ts;
        if (off == EVB_POS_NONE && pos == tpos)
            off = toff;
        else if (off == EVB_POS_NONE &&
                 !evb_stat_frame(&tm->rings[partition], pos, tpos, &ts, &off))
            off = EVB_POS_NONE;
        if (pos > tpos || (off != EVB_POS_NONE && off > toff)) {
            /* A commit past the tail loaded before the walk may be one
             * made since: the tail never goes back, so a fresh one
             * settles it. Still past it, the file is damaged (or from
             * another life of the topic); its consumer's open refuses it
             * too, so a lag of 0 ("caught up") would be a lie. */
            evb_ring_load_tail(&tm->rings[partition], &tpos, &toff);
            if (pos > tpos || (off != EVB_POS_NONE && off > toff)) {
                o->pid = 0;
                o->error = -EBADMSG;
                o->committed_position = UINT64_MAX;
                o->committed_offset = UINT64_MAX;
                return;
            }
        }
        o->committed_position = pos;
        o->committed_offset = off;
        o->lag_bytes = tpos > pos ? tpos - pos : 0;
        uint64_t opos, ooff;
        if (off != EVB_POS_NONE)
            o->lag_events = toff > off ? toff - off : 0;
        else if (pos < tpos &&
                 evb_ring_oldest(&tm->rings[partition], &opos, &ooff) == 0 &&
                 toff > ooff)
            /* Its frame is gone (lapped, or on disk only): at least
             * the events the ring still holds are behind it; never
             * 0 for a consumer that is behind. */
            o->lag_events = toff - ooff;
    } else {
        o->committed_position = UINT64_MAX;
        o->committed_offset = UINT64_MAX;
    }
}

static int named_one(int fd, const char *path, const char *name, void *arg)
{
    (void)path;
    struct named_list *nl = arg;
    size_t len = strlen(name);
    if (len - 4 > EVB_NAME_MAX)
        return 0; /* no consumer can have that name */
    int why = fd;
    struct evb_cur_hdr *f = fd < 0 ? NULL : cur_read_checked(fd, nl->tm->nparts, nl->part, &why);
    if (!f) {
        /* Listed by name with why, never left out: a consumer whose lag
         * just disappears from evbus stat looks caught up. */
        if (nl->n < nl->cap && nl->out) {
            evb_named_consumer_stat *o = &nl->out[nl->n];
            memset(o, 0, sizeof *o);
            memcpy(o->name, name, len - 4);
            o->error = why;
            o->committed_position = UINT64_MAX;
            o->committed_offset = UINT64_MAX;
        }
        nl->n++;
        return 0;
    }
    if (nl->n < nl->cap && nl->out) {
        evb_named_consumer_stat *o = &nl->out[nl->n];
        named_fill(nl, f, name, len - 4, o);
        /* Its dedup table, if it has one: damaged (in any partition: the
         * table goes with the cursor file), its open with dedup is
         * refused. Its commit and lag stay known: an open without dedup
         * reads on. */
        char why[256];
        int bad = o->error ? 0 : evb_dedup_file_verify(nl->tm, o->name, false, UINT32_MAX, why,
                                                       sizeof why);
        if (bad)
            o->dedup_damaged = 1;
    }
    free(f);
    nl->n++;
    return 0;
}

EVB_EXPORT int evb_named_consumer_list(evb_bus *bus, const char *topic, uint32_t partition,
                                       evb_named_consumer_stat *out, uint32_t cap)
{
    EVB_NO_CANCEL;
    struct evb_topic_map *tm;
    if (!bus)
        return -EINVAL;
    int rc = evb_topic_map_open(bus, topic, &tm);
    if (rc)
        return rc;
    if (partition >= tm->nparts) {
        evb_topic_map_close(tm);
        return evb_err_set(-EINVAL, "topic %s has no partition %u", topic, partition);
    }
    struct named_list nl = {.tm = tm, .part = partition, .out = out, .cap = cap};
    evb_ring_load_tail(&tm->rings[partition], &nl.tpos, &nl.toff);
    consumers_each(tm, ".cur", named_one, &nl); /* no consumers/ yet: no named consumer */
    evb_topic_map_close(tm);
    return (int)nl.n;
}

/* ---- a rebuild's reset of commits past the log end ---- */

/* Cursor file FD at PATH (a topic of NPARTS partitions): its commit in
 * PART set back to END_POS, END_OFF when past END_POS. 1 set back, 0
 * nothing to do, -errno when it cannot be mapped or checked (message
 * set). Mapped as its owner maps it, after the size is checked: a file
 * its owner cuts meanwhile would fault this mapping, as it would the
 * owner's. Its owner, if any lives, is of the topic's previous life (the
 * rebuild runs before any ring exists for a new one to read): the write
 * takes the entry's seqlock as a commit does (K2, K3), claiming the odd
 * seq by CAS so that a commit of that owner racing it is not overwritten
 * unseen while the CAS holds; one after it is the known limit of
 * processes that outlive a reboot of their bus. */
static int cursor_reset(int fd, const char *path, uint32_t nparts, uint32_t part,
                        uint64_t end_pos, uint64_t end_off)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return evb_err_set(-errno, "%s: %s", path, strerror(errno));
    size_t want = evb_cur_file_bytes(nparts), len;
    if ((size_t)st.st_size != want)
        return evb_err_set(-EBADMSG, "%s: %lld bytes, expected %zu", path,
                           (long long)st.st_size, want);
    struct evb_cur_hdr *f = cur_map(fd, want, want, PROT_READ | PROT_WRITE, &len);
    if (f == MAP_FAILED)
        return evb_err_set(-errno, "%s: mmap: %s", path, strerror(errno));
    char msg[128];
    /* K1: acquire; the words checked below come with the magic. */
    uint64_t magic = atomic_load_explicit(&f->magic, memory_order_acquire);
    int rc = cur_check(f, magic, len, nparts, msg, sizeof msg);
    if (rc) {
        munmap(f, len);
        return evb_err_set(rc, "%s: %s", path, msg);
    }
    struct evb_cur_entry *e = &f->e[part];
    uint64_t pos, off;
    if (cur_load(f, part, &pos, &off) && pos > end_pos) {
        /* Relaxed: the CAS below claims the seq; what it orders is the
         * K3 fence's and the K2 release's, as in evb_cursor_file_store.
         * An odd seq (a writer died mid-commit) is claimed as it is. */
        uint64_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
        uint64_t odd = s | 1;
        if (atomic_compare_exchange_strong_explicit(&e->seq, &s, odd, memory_order_relaxed,
                                                    memory_order_relaxed)) {
            /* K3: release fence; pairs with the loader's acquire fence. */
            atomic_thread_fence(memory_order_release);
            /* Relaxed: under the odd seq. Looked at again: a commit that
             * came between the load and the claim may be at or below
             * the end, and stays then. */
            pos = atomic_load_explicit(&e->pos, memory_order_relaxed);
            if (pos != EVB_POS_NONE && pos > end_pos) {
                atomic_store_explicit(&e->pos, end_pos, memory_order_relaxed);
                atomic_store_explicit(&e->offset, end_off, memory_order_relaxed);
                rc = 1;
            }
            /* K2: release; the pair before the even seq. */
            atomic_store_explicit(&e->seq, odd + 1, memory_order_release);
        } else {
            rc = evb_err_set(-EAGAIN, "%s: its owner was committing", path);
        }
        /* Durable before any event is handed out at the offsets it names:
         * a crash after that must not find the old commit again. */
        if (rc == 1 && msync(f, len, MS_SYNC) < 0)
            rc = evb_err_set(-errno, "%s: msync: %s", path, strerror(errno));
    }
    munmap(f, len);
    return rc;
}

struct reset_scan {
    uint32_t nparts, part;
    uint64_t end_pos, end_off;
    bool group;
    uint64_t reset, left;
};

static int reset_one(int fd, const char *path, const char *name, void *arg)
{
    (void)name;
    struct reset_scan *rs = arg;
    int rc = fd;
    if (fd >= 0)
        rc = rs->group ? evb_group_file_reset(fd, path, rs->nparts, rs->part, rs->end_pos,
                                              rs->end_off)
                       : cursor_reset(fd, path, rs->nparts, rs->part, rs->end_pos,
                                      rs->end_off);
    if (rc > 0)
        rs->reset++;
    else if (rc < 0)
        rs->left++; /* left as it is: counted in the damage record */
    evb_err_clear();
    return 0;
}

void evb_commits_reset(const char *ddir, uint32_t nparts, uint32_t part, uint64_t end_pos,
                       uint64_t end_off, uint64_t *reset, uint64_t *left)
{
    struct reset_scan rs = {.nparts = nparts, .part = part, .end_pos = end_pos,
                            .end_off = end_off};
    /* No consumers/ (no reader ever committed) is nothing to reset; one
     * that cannot be read leaves every file unchecked: counted once. */
    int rc = consumers_each_in(ddir, ".cur", O_RDWR, reset_one, &rs);
    if (rc == 0) {
        rs.group = true;
        rc = consumers_each_in(ddir, ".grp", O_RDWR, reset_one, &rs);
    }
    if (rc < 0 && rc != -ENOENT)
        rs.left++;
    *reset += rs.reset;
    *left += rs.left;
    evb_err_clear();
}
