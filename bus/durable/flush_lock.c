/*
 * flush_lock.c - who flushes a partition: its flock on
 * <data>/<topic>/<p>/flush.lock, taken over when the holder dies (the
 * kernel drops its flock) and resumed from the ring's flushed position,
 * and given back on release. The flush itself is flush_round.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "err.h"
#include "flush_internal.h"
#include "owner_format.h"
#include "safe_open.h"
#include "seg_internal.h"

/* flush.lock carries the writers' bits of the topic's mode only: flock
 * needs nothing but an open descriptor, so a reader who could open the
 * file could hold the lock and stall the partition's flushing. */
static uint32_t lock_mode(uint32_t topic_mode)
{
    return 0600 | ((topic_mode & 0020) ? 0060 : 0);
}

int evb_flush_lock(const char *pdir, int wait_ms, uint32_t mode)
{
    mode = lock_mode(mode);
    char path[PATH_MAX + 16];
    int rc = evb_mkdirs(pdir);
    if (rc)
        return evb_err_set(rc, "%s: %s", pdir, strerror(-rc));
    snprintf(path, sizeof path, "%s/flush.lock", pdir);
    int fd = evb_open_file(AT_FDCWD, path, O_RDWR | O_CREAT, mode, EVB_FILE_REG);
    if (fd < 0)
        return evb_open_fail(fd, path);
    /* Exactly lock_mode(), not narrowed by the umask (and narrowed back if
     * an older build made it readable); a lock file made by another user
     * is left as it is (the fchmod fails, and the open above already said
     * we may use it). */
    (void)fchmod(fd, mode);
    uint64_t deadline = evb_mono_ns() + (uint64_t)wait_ms * 1000000ull;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        int e = errno;
        if (e != EWOULDBLOCK || evb_mono_ns() >= deadline) {
            close(fd);
            return e == EWOULDBLOCK ? -EWOULDBLOCK
                                    : evb_err_set(-e, "%s: flock: %s", path, strerror(e));
        }
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

/* The pid /proc/locks names as holding a flock on the file ST describes:
 * a line "ID: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF" (the device
 * numbers in hex; a waiter's line has "->" after the id). 0 when none
 * does: no /proc, the lock let go meanwhile, or a holder of another pid
 * namespace (shown as pid 0 or -1). */
static int flock_holder(const struct stat *st)
{
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return 0;
    char line[256];
    int pid = 0;
    while (!pid && fgets(line, sizeof line, f)) {
        char type[16], dev[64];
        int who;
        unsigned maj, min;
        unsigned long long ino;
        /* The waiters' lines do not parse: "->" is not a lock type. */
        if (sscanf(line, "%*d: %15s %*s %*s %d %63s", type, &who, dev) != 3 ||
            strcmp(type, "FLOCK") || who <= 0 ||
            sscanf(dev, "%x:%x:%llu", &maj, &min, &ino) != 3)
            continue;
        if (maj == major(st->st_dev) && min == minor(st->st_dev) && ino == st->st_ino)
            pid = who;
    }
    fclose(f);
    return pid;
}

int evb_flush_lock_who(const char *pdir, char *out, size_t cap, bool *stopped)
{
    char path[PATH_MAX + 16];
    struct stat st;
    int pid = 0;
    snprintf(path, sizeof path, "%s/flush.lock", pdir);
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
        pid = flock_holder(&st);
    /* evb_proc_stopped reads only the pid half of an owner word. */
    bool halted = pid > 0 && evb_proc_stopped((uint64_t)pid << 32) == 1;
    if (stopped)
        *stopped = halted;
    if (!pid)
        snprintf(out, cap, "another process (not named in /proc/locks)");
    else if (pid == getpid())
        snprintf(out, cap, "process %d (this process, another handle)", pid);
    else
        snprintf(out, cap, "process %d%s", pid,
                 halted ? " (stopped: SIGSTOP, a debugger or a frozen cgroup)" : "");
    return pid;
}

int evb_flush_owner_set(int lock_fd, const char *pdir, uint64_t created_ns, uint64_t base_pos)
{
    struct evb_owner_rec o = {.magic = EVB_OWNER_MAGIC, .format = EVB_OWNER_FORMAT_WORD,
                              .created_ns = created_ns, .base_pos = base_pos};
    o.crc = evb_crc32c(0, &o, offsetof(struct evb_owner_rec, crc));
    /* One pwrite of 40 bytes at 0: readers hold the flock, so none sees
     * it half done; a crash mid-write leaves a record that fails its
     * check, which the next rebuild writes again. */
    int rc = evb_seg_write_at(lock_fd, &o, sizeof o, 0);
    return rc ? evb_err_set(rc, "%s/flush.lock: cannot record which ring the log continues: "
                            "%s", pdir, strerror(-rc))
              : 0;
}

int evb_flush_owner_check(int lock_fd, const char *pdir, const struct evb_ring *r)
{
    struct evb_owner_rec o;
    /* Written once by the ring's creator, before its magic (M1). */
    uint64_t created = r->hdr->created_ns;
    ssize_t n = pread(lock_fd, &o, sizeof o, 0);
    if (n < 0)
        return evb_err_set(-errno, "%s/flush.lock: %s", pdir, strerror(errno));
    if (n == 0) /* a lock file of an older build: this ring is the log's */
        return evb_flush_owner_set(lock_fd, pdir, created, r->base_pos);
    if ((size_t)n != sizeof o || o.magic != EVB_OWNER_MAGIC ||
        o.format != EVB_OWNER_FORMAT_WORD || o.zero ||
        o.crc != evb_crc32c(0, &o, offsetof(struct evb_owner_rec, crc)))
        return evb_err_set(-EBADMSG, "%s/flush.lock: the record of which ring the log "
                           "continues is damaged (%zd bytes); nothing is written to the log "
                           "until the topic is rebuilt from it (remove the bus directory "
                           "while no process uses it)", pdir, n);
    if (o.created_ns == created && o.base_pos == r->base_pos)
        return 0;
    return evb_err_set(-ESTALE, "partition %u: the bus was rebuilt under this process: its "
                       "bus directory was removed and the topic made again from the data "
                       "directory, whose log now continues another ring (created %llu ns, "
                       "base %llu; this process maps the one created %llu ns, base %llu); "
                       "what this process publishes is not written there: open the bus "
                       "again", r->partition, (unsigned long long)o.created_ns,
                       (unsigned long long)o.base_pos, (unsigned long long)created,
                       (unsigned long long)r->base_pos);
}

void evb_flush_release(struct fpart *fp)
{
    /* H2: relaxed, as where it is set. */
    atomic_store_explicit(&fp->held, false, memory_order_relaxed);
    evb_flush_prep_join(fp);
    evb_flush_seg_close(fp);
    if (fp->lock_fd >= 0) {
        /* No longer the flusher: orphan flushes may look at it again.
         * W1: relaxed; the owner word is a hint, the flock decides. */
        uint64_t self = evb_proc_self();
        atomic_compare_exchange_strong_explicit(&fp->r->hdr->flusher, &self, 0,
                                                memory_order_relaxed, memory_order_relaxed);
    }
    if (fp->has_slot)
        evb_ring_slot_release(fp->r, fp->slot);
    fp->has_slot = false;
    if (fp->lock_fd >= 0)
        close(fp->lock_fd);
    fp->lock_fd = -1;
}

/* Whether R's file was removed (its bus directory, or its topic deleted):
 * no process opens it again. A file we cannot look at is not called gone. */
static bool ring_gone(const struct evb_ring *r)
{
    struct stat st;
    return fstat(r->fd, &st) == 0 && st.st_nlink == 0;
}

/* -ESTALE, with its text, for FP's ring file gone. */
static int ring_gone_err(const struct fpart *fp)
{
    return evb_err_set(-ESTALE, "partition %u: its ring file was removed (the bus directory "
                       "removed, or the topic deleted): this process's ring is no longer the "
                       "bus's, so it is flushed no more and its flush lock is left to a "
                       "rebuild; open the bus again", fp->part);
}

/*
 * The ring file gone (its bus directory removed: a reboot's cleanup, a
 * hand; or the topic deleted): this process flushes a ring no other can
 * open, while the next opener of the bus rebuilds the topic from the data
 * directory, which needs this lock. Kept, it made every opener fail
 * -EBUSY until this process exited. So what was committed is written (as
 * a stopping flusher drains: a round is cut at lap, segment and write
 * limits; a hole not yet padded ends it), and the lock let go for good:
 * this ring's producers and sync waiters get -ESTALE, as a rebuild under
 * them says. A file still linked is ours (st_nlink; one fstat a second).
 */
void evb_flush_check_ring(struct evb_flush *fl, struct fpart *fp, uint64_t now)
{
    if (fp->lock_fd < 0 || fp->failed || !ring_gone(fp->r))
        return;
    for (int round = 0; round < 1000 && evb_flush_prepare(fl, fp, now); round++)
        evb_flush_run_ops(fl, fl->nparts, now);
    int err = ring_gone_err(fp);
    evb_flush_release(fp);
    fp->next_try = UINT64_MAX;
    evb_flush_tell(fp->r->hdr, err);
}

/*
 * A predecessor may have died (or failed) after writing past durable into
 * earlier segments than the one it was writing: those files are synced
 * here, before anything above durable can be published as durable. (After
 * an fdatasync error Linux may report success on a retry while the pages
 * were never written; a partition whose flusher saw an error keeps it in
 * flush_error until a new flusher takes over, and that is all it can do.)
 */
static int sync_behind(struct evb_flush *fl, struct fpart *fp)
{
    uint64_t seg = fl->cfg.segment_bytes;
    uint64_t cur = fp->written - fp->written % seg;
    for (uint64_t b = fp->synced - fp->synced % seg; fp->synced < cur && b < cur; b += seg) {
        char path[PATH_MAX + 32];
        evb_seg_path(path, sizeof path, fp->dir, b, "log");
        int fd = evb_open_file(AT_FDCWD, path, O_RDWR, 0, EVB_FILE_REG);
        if (fd == -ENOENT)
            continue; /* removed by retention: nothing left to sync */
        if (fd < 0)
            return evb_open_fail(fd, path);
        if (fdatasync(fd) < 0) {
            int e = errno;
            close(fd);
            return evb_err_set(-e, "%s: fdatasync: %s", path, strerror(e));
        }
        close(fd);
    }
    if (fp->synced < cur)
        fp->synced = cur;
    return 0;
}

/*
 * The lock could not even be tried (its file is not ours to open: a mode
 * an older build or a hand left, EACCES; or the directory is gone). With
 * a live flusher elsewhere that is its business, and its producers must
 * not see our error; with none, nobody will ever flush this partition,
 * so its producers are told (flush_error, as a write error would be)
 * instead of timing out. Not evb_flush_fail: without the lock, this
 * process must not publish durable. The next flusher to take the
 * partition clears the error.
 */
static void lock_failed(struct fpart *fp, int err)
{
    struct evb_ring_hdr *h = fp->r->hdr;
    /* W1: relaxed; the owner word is a hint, as everywhere. */
    uint64_t fo = atomic_load_explicit(&h->flusher, memory_order_relaxed);
    if (fo && evb_proc_alive(fo))
        return;
    evb_flush_error_note(fp, err);
    evb_flush_tell(h, err);
}

/*
 * The log is not this ring's (-ESTALE: rebuilt under us) or its owner
 * record is damaged (-EBADMSG): this ring's producers and sync waiters
 * are told. A rebuilt partition is never ours again (no more tries); its
 * data directory is another ring's now, so no note goes there either. A
 * damaged record is tried again now and then, as a failed flush is.
 */
static void owner_refused(struct fpart *fp, int err, uint64_t now)
{
    if (err == -ESTALE) {
        fp->next_try = UINT64_MAX;
    } else {
        fp->next_try = now + EVB_FAIL_RETRY_NS;
        evb_flush_error_note(fp, err);
    }
    evb_flush_tell(fp->r->hdr, err);
}

/*
 * A partition that has no durable mark yet gets one, at the ring's base,
 * before its first segment is made (evb_flush_seg_resume below): else a
 * process killed between its first fdatasync and the flusher's first mark
 * (a sync publish acknowledged, then SIGKILL within milliseconds) leaves
 * segments without a mark, which a rebuild must report as possible
 * damage ("may have been synced events"), for an ordinary crash. With
 * this mark, a segment without one means it was removed or never
 * written. Only while nothing of this ring is synced: the mark bounds
 * what may be torn, and the base is what the ring was built at (0 for a
 * new topic, the log end a rebuild found). A failure is left to the
 * first real mark write, which reports it (flush_round.c, mark_failed).
 */
static void first_mark(struct evb_flush *fl, struct fpart *fp)
{
    struct evb_seg_mark m;
    if (fp->synced != fp->r->base_pos ||
        evb_seg_mark_load(fp->dir, &m) != EVB_SEG_MARK_MISSING)
        return;
    /* Written once by the ring's creator, before its magic (M1). */
    uint64_t off = fp->r->hdr->base_offset;
    (void)evb_seg_mark_durable(fp->dir, fp->synced, off, fl->cfg.file_mode);
}

bool evb_flush_take(struct evb_flush *fl, struct fpart *fp, uint64_t now)
{
    if (now < fp->next_try)
        return false;
    fp->next_try = now + EVB_LOCK_RETRY_NS;
    if (ring_gone(fp->r)) {
        /* Another process of the removed bus let go for the rebuild:
         * not ours to take either (evb_flush_check_ring). */
        fp->next_try = UINT64_MAX;
        evb_flush_tell(fp->r->hdr, ring_gone_err(fp));
        return false;
    }
    int fd = evb_flush_lock(fp->dir, 0, fl->cfg.file_mode);
    if (fd < 0) {
        if (fd != -EWOULDBLOCK)
            lock_failed(fp, fd);
        return false;
    }
    struct evb_ring_hdr *h = fp->r->hdr;
    /* Under the flock, before anything of the ring is trusted or written:
     * the log must continue this ring, not one made after it (a rebuild
     * under this process; owner_format.h). The record changes only under
     * the flock, which we keep while we write, so once is enough. */
    int own = evb_flush_owner_check(fd, fp->dir, fp->r);
    if (own) {
        owner_refused(fp, own, now);
        close(fd);
        return false;
    }
    /* A taker stopped here holds the flock it checked under: a rebuild
     * waits for it (tests/durable/test_rebuilt.c). */
    EVB_CRASH_POINT("flush.owned");
    fp->lock_fd = fd;
    /* F1, S2 (takeover side): acquire pairs with the previous holder's
     * release store of flushed and seq_cst store of durable; its writes
     * below them happened before, and we only append after them. */
    fp->written = atomic_load_explicit(&h->flushed, memory_order_acquire);
    fp->synced = atomic_load_explicit(&h->durable, memory_order_acquire);
    /* Trust neither before it is checked against the tail (a garbage
     * flushed would send sync_behind over every segment name below it). */
    int bad = evb_flush_check_words(fp->r, fp->written, fp->synced, fl->cfg.segment_bytes);
    if (bad) {
        fp->failed = bad;
        /* Not evb_flush_fail: durable is not ours to publish. The words
         * are left as found: they are the evidence. */
        evb_flush_error_note(fp, bad);
        evb_flush_tell(h, bad);
        evb_flush_release(fp);
        return false;
    }
    if (fp->synced > fp->written)
        fp->synced = fp->written;
    /* What sync_behind() syncs below; the segment being written is synced
     * by us before we leave it. */
    fp->self_synced = fp->written - fp->written % fl->cfg.segment_bytes;
    fp->mark_pos = 0;
    fp->pub_next = 0;
    memset(fp->pub_pos, 0, sizeof fp->pub_pos);
    fp->walk = fp->written;
    fp->hole.pos = EVB_POS_NONE;
    fp->failed = 0;
    fp->last_sync = now;
    /* E1: relaxed; waiters re-read it after each bell (S2). */
    atomic_store_explicit(&h->flush_error, 0, memory_order_relaxed);
    evb_flush_error_clear(fp->dir);
    int rc = sync_behind(fl, fp);
    if (!rc)
        first_mark(fl, fp);
    if (!rc)
        rc = evb_flush_seg_resume(fl, fp, fp->written);
    if (!rc)
        rc = evb_ring_slot_take(fp->r, EVB_SLOT_FLUSHER, "flusher", 0, &fp->slot);
    if (rc) {
        evb_flush_fail(fp, rc);
        evb_flush_release(fp);
        return false;
    }
    fp->has_slot = true;
    /* S5: the flusher before us may have died between a store of durable
     * and its ring; a ring of every class wakes whoever it left asleep
     * (S2: release bump). Once per takeover. */
    evb_bell_ring(&h->sync_bell);
    /* Not for an orphan flush: it lets go soon. W1: relaxed, a hint. */
    if (!evb_flush_stopping(fl)) {
        atomic_store_explicit(&h->flusher, evb_proc_self(), memory_order_relaxed);
        /* H2: relaxed; tells this process's sync waiters they may run
         * rounds themselves (evb_flush_inline), which the round lock
         * orders. */
        atomic_store_explicit(&fp->held, true, memory_order_relaxed);
    }
    return true;
}
