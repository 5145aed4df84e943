/*
 * durable.h - what bus/ asks of bus/durable: flushing a durable topic,
 * waiting for the durable position, the flush lock, rebuilding a topic's
 * ring positions from its log, `evbus flushd`'s loop and `evbus dump`'s
 * walks. Segment files themselves are segment.h's.
 *
 * bus/durable knows no bus handle and no topic map: bus/ describes a
 * topic with struct evb_durable_topic (bus/durability.c fills it).
 *
 * Ordering edges of durable rings (labels used at each site in bus/ and
 * bus/durable/; the ring's own edges are listed in shm/claim.c). They are
 * kept here because their two ends sit in both layers: the flusher in
 * bus/durable, producers and consumers in bus/, which sees this header
 * through bus_internal.h.
 *
 *   F1 (defined in shm/claim.c, its other end here) flushed: the
 *       flusher's release store once the write of the bytes below has
 *       completed (flush_round.c complete()). Acquire loads: a
 *       producer's refresh_limit() (shm/claim.c), which may then overwrite
 *       them; a consumer reading from disk (bus/consumer.c), which finds
 *       them in the segments; a flusher taking over (flush_lock.c), which
 *       appends after them.
 *   F2  flush_bell: the flusher's release bump (evb_bell_ring) after each
 *       F1 store; a producer blocked on a full ring loads it with acquire
 *       before retrying its claim, then sleeps on that value
 *       (bus/producer.c). A bump it read comes with the flushed stored
 *       before it; a bump after its read ends the futex sleep at once.
 *   S2  durable and the sync doorbell (durable_wait.c): a waiter counts
 *       itself in sync_waiters (seq_cst), reads sync_bell (acquire), then
 *       loads durable (seq_cst) and sleeps on the bell value it read; the
 *       flusher stores durable (seq_cst), then bumps the bell (release) and
 *       wakes. A bump after the waiter's read makes its futex wait return
 *       at once, so no waiter sleeps through its durable update. Count
 *       and durable form a Dekker pair: a waiter whose load missed a store
 *       of durable is seen by the flusher's next seq_cst load of
 *       sync_waiters (sync_due, sleep_idle). The count only asks an ASYNC
 *       flusher to sync now rather than at flush_ms; one left by a killed
 *       waiter is zeroed (S4). Acquire loads of durable (a
 *       waiter's spin, a takeover, the orphan check) pair with the store.
 *   S3  sync leaders (durable_wait.c): a sync waiter whose target the
 *       flusher has written (flushed, F1, loaded with acquire after it
 *       takes the slot) takes a sync_lead slot by CAS
 *       (acquire: the previous leader's durable store is seen), runs
 *       fdatasync on the segment itself, publishes durable by a seq_cst
 *       CAS-max (S2: leaders and the flusher publish at once, and only a
 *       larger value goes in), frees the slot (release) and rings
 *       sync_bell. The flusher leaves the fdatasync to counted waiters
 *       for at most EVB_LEAD_DEFER_NS (flush_round.c, sync_due), and
 *       absorbs the durable word into its synced position (acquire, S2)
 *       so it does not sync again what a leader synced. A slot of a
 *       process that died is freed (relaxed CAS) by a waiter about to
 *       lead (it looks every 100 ms at most).
 *   S4  the counts' heartbeat (durable_wait.c, evb_sync_heal): a waiter
 *       stores sync_beat (seq_cst) before it counts itself (seq_cst RMW)
 *       and again while it waits; a flusher loads the counts, then the
 *       beat (seq_cst), and zeroes a count whose beat is stale with a CAS
 *       from the value it loaded, so a count taken after that load
 *       survives, and one whose beat it could miss was never loaded.
 *   S5  the sync waiters' classes (durable_wait.c, evb_sync_ring): a
 *       waiter sleeps on sync_bell with FUTEX_WAIT_BITSET in the class of
 *       its target; the flusher's write, its durable store and a leader's
 *       round ring the classes of targets in (a durable position it
 *       loaded, flushed loaded after a seq_cst fence that follows the
 *       change). The fence pairs with one a waiter takes between its load
 *       of flushed and its look at the lead slots. Every store of durable
 *       is followed by its own ring; one a killed publisher never made is
 *       made up by a ring of every class where a dead leader's slot is
 *       freed (lead_reap) and at each flusher takeover. The bump is still
 *       release (S2); which sleepers wake is the only change. Plain rings
 *       (E1) wake all.
 *   E1  flush_error rides on the bells: evb_flush_tell() (durable_wait.c,
 *       the one place that sets an error) stores it (relaxed), then bumps
 *       sync_bell and flush_bell (release). A sync waiter loads it
 *       (relaxed) after its acquire load of sync_bell, a producer blocked
 *       on a full ring after its acquire load of flush_bell, so each sees
 *       an error stored before any bump it read, and a bump after its read
 *       ends its sleep so it looks again. A new flusher clears it
 *       (relaxed) at takeover, before it publishes anything.
 *   G1  the log start before the files go (retention.c): log_start_offset
 *       then log_start_pos are stored before the segments below are
 *       unlinked; a consumer whose segment open failed with -ENOENT loads
 *       them (bus/consumer.c). The unlink and the failed open are ordered
 *       by the kernel, and the stores precede the unlink call in program
 *       order, so relaxed is enough on both sides. The pair may be read
 *       torn (new position, older offset): consumers learn the offset from
 *       the frame they land on, and a log start that still names a missing
 *       segment is reported (-EBADMSG), never read past.
 *   W1  the flusher owner word (hdr->flusher) is a hint, relaxed
 *       everywhere: set after a flusher took a partition's flock, cleared
 *       (CAS) at release, read by the orphan check and `evbus stat`, who
 *       check that its process lives. The flock on flush.lock decides who
 *       flushes; nothing is published through the word.
 *   H1  the stop flag (struct evb_flush, process-local): evb_flush_stop()
 *       stores it with release; the flusher thread loads it with acquire
 *       (evb_flush_stopping()), so the drain that follows sees every frame
 *       committed before evb_flush_stop() was called, as its promise says.
 *       No Dekker here, so no seq_cst: the sleeps it must end are a futex
 *       on the ring's bell, which evb_flush_stop() bumps unconditionally
 *       after the store, and a condition variable under fl->mu.
 *   H2  a sync waiter's own rounds (flusher.c, evb_flush_inline): where
 *       this process's flusher holds a partition's flock, a waiter takes
 *       the flush's round_mu (a pthread mutex, trylock: it never waits for
 *       the thread) and runs the thread's steps itself; every access to
 *       the partition's flush state, by the thread or a waiter, is under
 *       that mutex, which orders them (fork holds it too). The
 *       per-partition held flag is a relaxed hint (set after a takeover,
 *       cleared at release, by the flock's taker: the thread, or
 *       evb_flush_start before the thread exists), re-checked under it.
 *   H3  hints between waiters and the thread, process-local, relaxed:
 *       inline_waiters counts waiters between their hint check and the
 *       end of their round (a thread that sees any does not spin for
 *       commits), inline_here the same per partition (a thread that sees
 *       any does not work that partition); thread_wants says the thread
 *       waits for the mutex (waiters then leave it the round, so one
 *       partition's sync stream cannot starve the others). The mutex
 *       decides who runs; a wrong hint costs a round's latency.
 *   K1-K4  the cursor files that retention consults through
 *       min_committed are bus/'s: table at the top of bus/cursor_file.c.
 */
#ifndef EVB_DURABLE_H
#define EVB_DURABLE_H

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evbus.h"
#include "ring.h"
#include "segment.h"

/* A durable topic as the flusher sees it. Everything is borrowed: the
 * caller keeps it valid until evb_flush_stop() (or the call) returns. */
struct evb_durable_topic {
    const char *dir;              /* <data>/<topic> */
    const evb_topic_config *cfg;
    uint32_t nparts;
    struct evb_ring *rings;       /* every partition's ring, mapped */
    /* The smallest position a named consumer committed in PART (retention
     * with EVB_TOPIC_RETAIN_UNTIL_CONSUMED); UINT64_MAX when none has.
     * NULL: no consumer holds anything back. */
    uint64_t (*min_committed)(void *arg, uint32_t part);
    void *min_committed_arg;
    /* The CPUs the flusher thread runs on (the topic's NUMA node, chosen
     * by bus/placement.c); NULL: wherever the kernel puts it. */
    const cpu_set_t *cpus;
};

struct evb_flush;

/* The text of the flush error ERR (the ring's flush_error word) of the
 * partition directory PDIR, as the flusher that failed wrote it: 0 with
 * one printable line in OUT (CAP bytes), -ENOENT when none is kept for
 * that code. */
int evb_flush_error_text(const char *pdir, int err, char *out, size_t cap);
/* The text of ERR where its flusher could keep none in PDIR: for a full
 * or read-only file system (-ENOSPC, -EDQUOT, -EROFS, which is why no
 * text could be written there) the words say so and name PDIR; for any
 * other error its errno's words and PDIR; "" for no error (0). */
void evb_flush_error_guess(const char *pdir, int err, char *out, size_t cap);

/* Start flushing DT: this process becomes a flush candidate for each of
 * its partitions (the locks free now are taken before this returns) and
 * a thread flushes those it holds. */
int evb_flush_start(const struct evb_durable_topic *dt, struct evb_flush **out);
/* Stop: what is committed is flushed and synced, the locks let go. */
void evb_flush_stop(struct evb_flush *fl);
/* A sync waiter of this process runs FL's round for partition PART
 * itself, writing and syncing what is committed there, when this process
 * holds that partition's flush lock: no hand-off to the flusher's thread.
 * Never waits for the thread: while it runs a round, or wants to (other
 * partitions' work), 1 at once. Blocks for one write and fdatasync, and
 * starts no further round past DEADLINE (mono ns). 0: a round ran or
 * durable reached TARGET (look again); 1: not this process's partition,
 * or nothing to do now: the caller waits as any waiter; 2: the thread has
 * the round lock or wants it: the caller waits, but looks again within
 * EVB_INLINE_RETRY_NS. */
int evb_flush_inline(struct evb_flush *fl, uint32_t part, uint64_t target,
                     uint64_t deadline);
/* Rounds of FL's partition PART completed so far by such waiters and by
 * the flusher's thread (tests, benchmarks). */
void evb_flush_rounds(struct evb_flush *fl, uint32_t part, uint64_t *by_waiters,
                      uint64_t *by_thread);
/* Flush partitions whose flush lock nobody holds (the flusher died and no
 * candidate is left): everything committed goes to disk, synced. */
int evb_flush_orphans_of(const struct evb_durable_topic *dt);

/* Apply DT's retention (retention.c) to every partition no live flusher
 * holds: its flush lock is taken (waiting up to WAIT_MS; 0: try once), its
 * old segments dropped as a flusher would, the lock let go. A live flusher
 * retains its partitions by itself every second. Returns how many
 * partitions were left to a flusher (>= 0), or -errno from the lock. */
int evb_retain_idle(const struct evb_durable_topic *dt, int wait_ms);

/* What a sync waiter needs to lead a round itself (S3): where the
 * partition's segments are, and its place in the ring's counts. One per
 * producer and partition, set up by evb_sync_file_init(); used by one
 * thread at a time (a producer handle's). */
struct evb_sync_file {
    const char *ddir;      /* <data>/<topic>, borrowed */
    uint32_t part;
    uint64_t seg_bytes;
    uint64_t cannot_until; /* mono ns: the segment could not be opened; until
                              then the flusher syncs for us */
    uint64_t reaped_at;    /* mono ns: last look for dead leaders' slots */
    uint64_t id_base;      /* the segment whose file id names, or UINT64_MAX */
    struct evb_seg_id id;  /* the file a lead synced it through, so one put
                              in its place is told (evb_seg_check_file) */
    struct evb_flush *fl;  /* this process's flush of the topic, or NULL */
    uint64_t beat_at;      /* mono ns of our last sync_beat store (S4) */
    bool entered;          /* counted in sync_waiters (evb_sync_enter) */
    bool lead_counted;     /* and in lead_waiters */
};
void evb_sync_file_init(struct evb_sync_file *sf, const char *ddir, uint32_t part,
                        uint64_t seg_bytes);
/* Count SF in R's sync waiters (and, if it may LEAD, its lead waiters),
 * or out again. A producer that will wait enters before its commit, so
 * the flusher that sees the commit leaves the fdatasync to it (S3);
 * evb_wait_durable() enters and leaves by itself when it was not. */
void evb_sync_enter(struct evb_ring *r, struct evb_sync_file *sf, bool lead);
void evb_sync_leave(struct evb_ring *r, struct evb_sync_file *sf);
/* S4: zero R's waiter counts when no waiter has beaten for
 * EVB_SYNC_BEAT_STALE_NS (their waiters were killed); NOW: mono ns. A
 * flusher calls it once a round. */
void evb_sync_heal(struct evb_ring *r, uint64_t now);
/* How often a waiter beats, and when counts without a beat are stale. */
#define EVB_SYNC_BEAT_NS (10ull * 1000 * 1000)
#define EVB_SYNC_BEAT_STALE_NS (1000ull * 1000 * 1000)
/* How long a waiter that does not lead (evb_wait_durable) waits for the
 * flusher before it leads all the same. */
#define EVB_FOLLOW_NS (10ull * 1000 * 1000)
/* How soon a waiter whose round the flusher thread held up looks again. */
#define EVB_INLINE_RETRY_NS (200ull * 1000)
/* A count this large is no number of threads: a decrement wrapped it. */
#define EVB_SYNC_COUNT_WRAPPED (1u << 31)

/* Wait until R's durable position reaches TARGET or DEADLINE (mono ns,
 * UINT64_MAX: none) passes. With LEADS, once the flusher has written
 * TARGET the waiter fdatasyncs it itself (S3) unless another round is
 * running, and runs its process's flush rounds itself; without, it
 * leaves both to the flusher (a producer with events of its own in flight
 * past TARGET: producer.c) for EVB_FOLLOW_NS, then does them. With POKE (ASYNC topics) the flusher is woken
 * to write now rather than at its interval.
 * 0, -ETIMEDOUT, or the flusher's (or our fdatasync's) error. */
int evb_wait_durable(struct evb_ring *r, struct evb_sync_file *sf, uint64_t target,
                     uint64_t deadline, bool poke, bool leads);
/* R's flush error word (E1: relaxed, after an acquire load of a bell):
 * 0, a negative errno, or -EBADMSG (message set) for a word that is no
 * error code (hostile or damaged). */
int evb_flush_error_load(const struct evb_ring *r);
/* Publish POS as R's durable position unless it is already further
 * (seq_cst, S2): the flusher and leaders publish at once. A word no
 * durable position can be is replaced. Returns the durable position it
 * replaced: POS or more when it changed nothing, 0 for a garbage word. */
uint64_t evb_durable_publish_max(struct evb_ring *r, uint64_t pos);
/* Ring R's sync_bell for the waiters that may now act (S5): those whose
 * target lies past LO, a durable position loaded before the change that
 * calls for the ring, and at or below flushed. */
void evb_sync_ring(struct evb_ring *r, uint64_t lo);
/* The class (one bit) a waiter for durable position TARGET > 0 sleeps in. */
uint32_t evb_sync_class(uint64_t target);
/* R's durable position, without waiting or a system call, checked as a
 * waiter checks a durable word it would believe (aligned, not past the
 * tail): 0 with *POS and the flusher's error word (0 or -errno) in *ERR,
 * or -EBADMSG (a word that cannot be one; nothing filled). */
int evb_durable_poll(const struct evb_ring *r, uint64_t *pos, int *err);
/* Take the flush lock of partition directory PDIR (created if missing),
 * waiting up to WAIT_MS (0: try once). The fd holds it; -EWOULDBLOCK when
 * another process does. A lock file made here gets exactly MODE, the
 * topic's file mode, whatever the umask. */
int evb_flush_lock(const char *pdir, int wait_ms, uint32_t mode);
/* Who holds partition directory PDIR's flush lock, for a message, in
 * OUT: "process PID", saying when it is stopped or this process, or
 * "another process" when /proc/locks names none. Returns the pid (0 when
 * unnamed); *STOPPED (may be NULL) whether it is stopped. Reads /proc:
 * only after a lock was found held. */
int evb_flush_lock_who(const char *pdir, char *out, size_t cap, bool *stopped);
/* The owner record in the flush lock file held by LOCK_FD (owner_format.h):
 * set names the ring created at CREATED_NS from BASE_POS as the one the
 * log of partition directory PDIR continues; check is 0 when it names R
 * (or names none yet: R's is written then), -ESTALE when it names another
 * ring (R's bus was rebuilt under this process), -EBADMSG when it is
 * damaged; message set. Both only while LOCK_FD holds the lock. */
int evb_flush_owner_set(int lock_fd, const char *pdir, uint64_t created_ns, uint64_t base_pos);
int evb_flush_owner_check(int lock_fd, const char *pdir, const struct evb_ring *r);
/* mkdir -p, mode 0770 for created levels. */
int evb_mkdirs(const char *path);

/* ---- restore (restore.c) ----
 * A durable topic whose tmpfs side is gone is rebuilt from its log: each
 * partition's log end is found and cut under its flush lock, and the
 * locks stay held until the rings exist (evb_restore_end). */
struct evb_restore {
    uint32_t nparts;
    int *locks;                   /* flush lock fds, nparts */
    struct evb_seg_recovery *rec; /* per partition; NULL: a new topic */
    char ddir[PATH_MAX];
    /* Set by the caller after evb_restore_begin (may stay NULL): called by
     * evb_restore_recover for each partition PART whose log end it found
     * (END_POS, END_OFF), under its flush lock and before any ring exists,
     * to set every reader's commit past that end back to it (bus/'s
     * files); counts what it set back in *RESET and the files it could
     * not check in *LEFT, both noted in the partition's damage record. */
    void (*reset_commits)(void *arg, uint32_t part, uint64_t end_pos, uint64_t end_off,
                          uint64_t *reset, uint64_t *left);
    void *reset_arg;
};

/* Take every flush lock of the topic in DDIR (config CFG; TOPIC names it
 * in messages), waiting up to 2 s for each (-EBUSY) unless THERE(ARG)
 * (may be NULL) says the topic was rebuilt by another meanwhile
 * (-EEXIST, no message): the caller looks again under the locks before
 * it recovers. On failure nothing is held. */
int evb_restore_begin(struct evb_restore *rs, const char *ddir, const char *topic,
                      const evb_topic_config *cfg, bool (*there)(void *arg), void *arg);
/* Under those locks, recover every partition (events up to CFG's
 * max_event_bytes). On failure nothing is held any more (evb_restore_end). */
int evb_restore_recover(struct evb_restore *rs, const char *topic, const evb_topic_config *cfg);
/* Set where partition PART's ring starts: its log end and log start. */
void evb_restore_ring_init(const struct evb_restore *rs, uint32_t part,
                           struct evb_ring_init *init);
void evb_restore_end(struct evb_restore *rs);
/* A new topic in DDIR: only every partition's flush lock (waiting up to
 * 2 s each), so that its rings are made and named in the owner records
 * as a rebuild's are; evb_restore_ring_init leaves INIT as it is. */
int evb_restore_lock(struct evb_restore *rs, const char *ddir, const evb_topic_config *cfg);
/* Before a topic's data directory DDIR is removed: the flush lock of
 * every partition directory there that has one, taken without waiting
 * and without making anything. -EBUSY naming the holder when another
 * process (or another handle here) holds one: its flusher may be writing
 * the log. Nothing held then; else evb_restore_end lets go. */
int evb_restore_lock_present(struct evb_restore *rs, const char *ddir, const char *topic);
/* Under RS's lock of PART: the ring just made for PART (created at
 * CREATED_NS from BASE_POS, evb_ring_init) is the one its log continues
 * (evb_flush_owner_set). Before the rings are renamed into the bus. */
int evb_restore_own(const struct evb_restore *rs, uint32_t part, uint64_t created_ns,
                    uint64_t base_pos);

/* ---- evbus flushd (flushd.c) ----
 * Keep one flusher per topic of a listing, every second, until *STOP:
 * LIST calls SEEN once per topic; GET starts a flusher for TOPIC (NULL
 * when it is not durable or cannot be opened now: tried again next time);
 * PUT stops it; STALE says whether a flusher's rings are no longer the
 * ones the topic's log continues (the topic was rebuilt under it: its
 * flush lock takes are refused with -ESTALE), which is then stopped and
 * started again on the rings the bus holds now. */
struct evb_flushd_ops {
    int (*list)(void *ctx, int (*seen)(const char *topic, void *arg), void *arg);
    void *(*get)(void *ctx, const char *topic);
    void (*put)(void *ctx, void *flusher);
    bool (*stale)(void *ctx, void *flusher);
};
int evb_flushd_run(const struct evb_flushd_ops *ops, void *ctx, const volatile int *stop);

/* ---- evbus dump (dump.c) ---- */

/* Split "<data>/<topic>/<p>/<base>.log" into its directory DIR and BASE. */
int evb_dump_parse_path(const char *path, char *dir, size_t cap, uint64_t *base);
/* Call FN for every frame of segment BASE in DIR of a topic with config
 * CFG, then once with EVB_DUMP_END saying where and why the log ends. */
int evb_dump_walk(const char *dir, uint64_t base, const evb_topic_config *cfg,
                  int (*fn)(const evb_dump_frame *, void *), void *arg);
/* The segment file paths of partition directory PDIR, oldest first, in a
 * malloc'd array of malloc'd strings. */
int evb_dump_paths(const char *pdir, char ***paths, size_t *n);

#endif
