/*
 * evbus.h - the public API of evbus, a shared-memory event bus for one host.
 *
 * This header is the manual (ARCHITECTURE.md in the source tree maps the
 * code behind it). Concepts:
 *
 *   bus        a directory of ring files in tmpfs (default /dev/shm/evbus/<name>)
 *   topic      a named stream of events split into N partitions
 *   partition  one ring; the unit of ordering
 *   position   byte offset of an event in the partition's unbounded log
 *   offset     index of an event in its partition (0, 1, 2, ...)
 *   subscriber pub/sub reader: starts at the tail, never slows producers and
 *              is told exactly how many events it lost when lapped
 *   lossless subscriber
 *              a subscriber that gates producers: they wait for it; reaped
 *              automatically when its process dies
 *   consumer   a named reader whose committed cursor persists in the bus
 *   durable topic
 *              a topic whose partitions are also written to segment files
 *              on disk; readers that fall behind the
 *              ring read the disk log through the same calls
 *
 * Errors. Every fallible function returns 0 (or a count) on success and a
 * negative errno on failure; none sets errno. One meaning per code:
 *
 *   -EAGAIN     ring full (back-pressure) or nothing to read yet
 *   -ETIMEDOUT  a blocking call's timeout expired
 *   -EMSGSIZE   event larger than the topic's max_event_bytes, or a key
 *               longer than EVB_MAX_KEY_BYTES
 *   -ENOENT     unknown bus path component or topic
 *   -EEXIST     topic already exists
 *   -EBADMSG    corrupt ring header or frame (the handle stays failed), or
 *               a bus, topic or cursor file that is not one
 *   -EPROTO     ring or file format version not readable by this build
 *   -EACCES     no permission on a bus or topic file
 *   -ENOSPC     tmpfs cannot reserve the ring's memory
 *   -ESTALE     what the caller holds no longer stands: a receipt of a
 *               partition ring rebuilt since it was filled, a group
 *               partition taken over by another member, a resubmit
 *               claim no longer held
 *   -EINVAL     bad argument
 *   -ENOMEM     out of memory (process heap)
 *   -EBUSY      resource held by another live handle, of this process or
 *               another (a consumer name, a stable producer id, an
 *               exclusive producer's rings), all producer or reader slots
 *               of a ring taken, or a producer handle used in a child
 *               forked after it was opened (see Fork below)
 *   -ECANCELED  the claim was padded by another process because this
 *               producer stalled longer than stall_ms; the event was NOT
 *               published
 *   -ENAMETOOLONG  topic or consumer name longer than EVB_NAME_MAX
 *   -ERANGE     an offset or time older than the retained log, asked for
 *               with EVB_SEEK_STRICT
 *   -EIO        the disk failed a durable topic's write or fdatasync
 *   -EMEDIUMTYPE  a file in the bus or data directory (ring, bus.meta,
 *               cursor file, topic.conf, segment, index, flush.lock) or a
 *               directory walked there is of the wrong kind: a FIFO,
 *               socket, device, symlink, or a directory where a file
 *               belongs. Nothing there is opened through a symlink or
 *               waited on; the detail names the path and what was found.
 *               (Linux has no EFTYPE; this code means only that here.)
 *
 * evb_strerror() turns any of them into words; cold paths (open, create)
 * also leave a detail for evb_last_error() in the calling thread.
 *
 * Threads. A bus handle may be shared by threads. A producer or consumer
 * handle belongs to one thread at a time; open one per thread to publish or
 * read in parallel (they are cheap).
 *
 * Fork. Handles belong to the process that opened them: a child made by
 * fork() opens its own (a bus handle included) and leaves its parent's
 * alone, as with LMDB. A producer handle used in such a child refuses
 * evb_publish, evb_publish_batch, evb_claim (and their receipt forms),
 * evb_producer_sync and evb_producer_wait_durable with -EBUSY (its ring
 * slots, an exclusive producer's tail, its sequences and a stable id's
 * state are the parent's, which may publish on with them), before
 * anything is written; evb_producer_close() of it there frees only the
 * child's memory. A claim open at the fork is the parent's, which may
 * still be writing its event: in the child, evb_commit and evb_abort of it
 * are refused with -EBUSY too, and readers wait at it until the parent
 * commits or aborts it. evb_producer_last_seq and
 * evb_producer_durable_position only read, and still answer there. The
 * checks hang on pthread_atfork(), so a child made by clone() or vfork()
 * without those handlers must exec before it uses evbus at all. Consumer
 * handles are not
 * checked on reads: the child must not read through them; closing one
 * there (evb_consumer_close) gives back nothing of the parent's (its reader
 * slots, group membership and consumer name stay the parent's).
 *
 * Cancellation. No evbus call is a cancellation point: a thread cancelled
 * (pthread_cancel, deferred) inside one finishes the call, and the cancel
 * takes it at its next cancellation point after the call returns. That
 * holds for the calls that wait too (a full ring, EVB_MSG_SYNC,
 * evb_producer_sync, evb_producer_wait_durable, evb_consumer_next,
 * evb_bus_flushd): bound them (block_ms, timeout_ms, the stop flag) where
 * a thread must go soon after its cancel. Callbacks evbus makes run with
 * cancellation held off, except evb_consumer_poll's, which run in the
 * caller's state: a thread cancelled there, or between evb_claim and
 * evb_commit, leaves its handle for another thread to close (the close
 * aborts an open claim). Asynchronous cancellation is not supported.
 *
 * Crashes. Any process may die at any instruction. A producer killed
 * between claim and commit leaves a hole that a reader or producer pads
 * within dead_ms; its event is counted as aborted, never served half
 * written. A dead lossless reader stops gating within dead_ms. See
 * ARCHITECTURE.md for the protocol.
 */
#ifndef EVBUS_H
#define EVBUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVB_VERSION_MAJOR 0
#define EVB_VERSION_MINOR 1
#define EVB_VERSION_PATCH 0

/** Library version as "major.minor.patch". */
const char *evb_version(void);

/** Words for a negative errno returned by evbus (any int accepted). */
const char *evb_strerror(int err);

/**
 * Detail of the last cold-path failure in this thread ("topic orders:
 * partition 3: ring magic 0x0, expected 0x..."), or "" when none.
 * Read it like errno: only right after a call that returned a negative
 * errno, and before the next evbus call. A call that succeeds may leave
 * an earlier failure's text in place (most do not clear it), so a
 * non-empty text after a return of 0 means nothing. Nor does every
 * failure leave one (hot paths such as publish and next often do not),
 * and one that leaves none does not clear the old: when the text names
 * another thing than the failed call was about, it is an older failure's.
 * The waits for disk (EVB_MSG_SYNC, evb_producer_sync(),
 * evb_producer_wait_durable(), evb_producer_durable_position()) always
 * leave their own on failure (other than -ETIMEDOUT): the flusher's text,
 * or where it kept none, the partition's data directory.
 */
const char *evb_last_error(void);

/**
 * Empty the calling thread's evb_last_error() text. A caller that clears
 * it once it has taken a failure's text knows that any text found after
 * the next failure was left by that failure, even the same words again
 * (the Python binding does so). Never fails; thread-safe (the text is per
 * thread).
 */
void evb_clear_error(void);

/** Longest topic or consumer name, bytes, without the NUL. */
#define EVB_NAME_MAX 63
/** Most partitions a topic may have. */
#define EVB_MAX_PARTITIONS 256
/** Producer handles that may hold a ring at once; reader handles likewise. */
#define EVB_RING_PRODUCERS 64
#define EVB_RING_READERS 64

typedef struct evb_bus evb_bus;
typedef struct evb_producer evb_producer;
typedef struct evb_consumer evb_consumer;

/* ------------------------------------------------------------------ */
/* Value types                                                        */
/* ------------------------------------------------------------------ */

/** Options for evb_bus_open(); zero-initialise, zero means default. */
typedef struct evb_bus_options {
    /** Hole-padding bound for dead producers and reaping bound for dead
     *  readers, ms. Default 200. */
    uint32_t dead_ms;
    /** A live producer that keeps a claim uncommitted this long may have it
     *  padded (readers go past it); its commit then returns -ECANCELED.
     *  Its bytes are not reused while its process lives, since it may
     *  still write there: producers that come round the ring to it wait
     *  (block_ms), and their -ETIMEDOUT names its pid. Default 5000. */
    uint32_t stall_ms;
    /** Who may use a bus this call creates, as the mode of its files:
     *  0600 (the default, 0: the owner alone), 0640 (its group reads) or
     *  0660 (its group also publishes and creates topics); 0644 and 0664
     *  let every user read. Directories get search with read, and the
     *  set-gid bit when a group is let in; the umask changes nothing. An
     *  existing bus keeps its mode. */
    uint32_t mode;
    /** Directory for durable topics' segments and config. NULL: the
     *  EVBUS_DATA_DIR environment variable, else /var/lib/evbus/<bus> as
     *  root and ${XDG_DATA_HOME:-~/.local/share}/evbus/<bus> otherwise,
     *  <bus> being the last component of the bus path. Created when a
     *  durable topic is. The directory belongs to the bus: the first
     *  durable topic (or a restore after a reboot) records it in
     *  <bus>/data_dir; then NULL with EVBUS_DATA_DIR unset means the
     *  recorded one, and naming another is -EINVAL. */
    const char *data_dir;
} evb_bus_options;

/** How a topic keeps its events. */
enum evb_durability {
    EVB_DURABILITY_NONE = 0,  /**< ring only: gone with tmpfs */
    EVB_DURABILITY_ASYNC = 1, /**< written to disk soon, fdatasync'ed every flush_ms */
    EVB_DURABILITY_SYNC = 2,  /**< as ASYNC, and fdatasync'ed as soon as written, so
                                   evb_producer_sync() returns after one group commit */
};

/** evb_topic_config.flags */
#define EVB_TOPIC_RETAIN_UNTIL_CONSUMED 1u /**< keep segments a named consumer
                                                has not committed past (up to
                                                retain_cap_bytes) */
/*
 * Retention (retain_bytes, retain_ms, EVB_TOPIC_RETAIN_UNTIL_CONSUMED) is
 * applied by the live flusher of a partition once a second, by the last
 * producer of a process as it closes, by every evb_producer_open() and
 * evb_consumer_open() of the topic, by a named consumer's commit that moves
 * it past a segment end, and by evb_topic_retain() (`evbus retain`), so a
 * topic with no producer left does not stay over its limits. Whole segments
 * go, never the one holding the flushed position.
 *
 * A named consumer holds the log from where it first started: its first
 * open records that start as its commit. One that never comes back holds
 * the log of a topic kept until consumed for ever: up to retain_cap_bytes
 * when set (what the cap drops unread is counted in retention_unconsumed),
 * else without bound; remove its cursor file (consumers/NAME.cur in the
 * topic's data directory) while it is closed to let go.
 */

/** Topic configuration; zero-initialise, zero means default. */
typedef struct evb_topic_config {
    uint32_t partitions;      /**< 1..EVB_MAX_PARTITIONS; default 1 */
    uint32_t max_event_bytes; /**< key + value bytes; default 64 KiB, at most
                                   ring_bytes/4 - 64 (frame header and key padding;
                                   2^32 - 128 for a 16 GiB ring) */
    uint64_t ring_bytes;      /**< per partition, power of two >= 64 KiB; default 4 MiB.
                                   An event takes a 56-byte header, its key
                                   padded to 8 and its value, rounded up to
                                   whole 64-byte lines (so no two events share
                                   one): 64 B for a value of up to 8 bytes
                                   without a key, 128 B for a 64-byte value;
                                   durable segments hold the same bytes */
    /** Who may use the topic, as the mode of its files: 0600 (default: the
     *  owner alone), 0640 (the group reads), 0660 (the group publishes
     *  too); 0644 and 0664 let every user read. Anything else is -EINVAL.
     *  Directories get search with read (set-gid when shared); a durable
     *  topic's consumers/ is writable and sticky for whoever may read;
     *  topic.conf is read-only; the umask changes nothing. */
    uint32_t file_mode;
    uint32_t durability;      /**< enum evb_durability; default NONE */
    /** Durable topics: bytes per segment file, a multiple of ring_bytes;
     *  default the multiple of ring_bytes nearest 64 MiB. */
    uint64_t segment_bytes;
    uint64_t retain_bytes;    /**< per partition; whole old segments go; 0: no limit */
    uint64_t retain_ms;       /**< segments older than this go; 0: no limit */
    /** With EVB_TOPIC_RETAIN_UNTIL_CONSUMED: per partition, the size past
     *  which old segments go even when not yet consumed; 0: no cap. */
    uint64_t retain_cap_bytes;
    uint32_t flags;           /**< EVB_TOPIC_* */
    uint32_t flush_ms;        /**< ASYNC: fdatasync interval; default 200 */
    /** The NUMA node of the topic's rings and flusher thread, as
     *  EVB_NUMA_NODE(n); 0 (the default): none, the kernel places them.
     *  The field holds the node plus one so that a zeroed config places
     *  nothing; EVB_NUMA_NODE_OF() reads it back (-1: none). See "NUMA
     *  placement" below. */
    uint32_t numa_node;
    uint32_t huge_pages;      /**< EVB_HUGE_PAGES_*; 0 (default): normal pages */
    uint64_t reserved_[3];
} evb_topic_config;

/** evb_topic_config.numa_node for NUMA node N (an OS index, as numactl
 *  and /sys/devices/system/node name it). */
#define EVB_NUMA_NODE(n) ((uint32_t)(n) + 1u)
/** The node a numa_node field names; -1 for none. */
#define EVB_NUMA_NODE_OF(field) ((int32_t)(field) - 1)

/*
 * NUMA placement. A topic with a numa_node has every ring's memory bound
 * to that node (an hwloc membind of the new ring's mapping before its
 * pages exist, so they are allocated there and the policy stays with the
 * tmpfs file for every process that maps it), and the flusher thread of
 * a durable topic runs on that node's CPUs. evb_pin_near() and
 * evb_cpus_near() put the caller's threads beside a partition. A node the
 * machine lacks is -EINVAL at evb_topic_create(); a topic rebuilt after a
 * reboot on a machine without it is left unplaced. On a one-node machine
 * all of it is a no-op (numa_node 0 is accepted and changes nothing).
 */

/** evb_topic_config.huge_pages: back the rings with transparent huge
 *  pages where the tmpfs allows them (mounted with huge=advise, or
 *  /sys/kernel/mm/transparent_hugepage/shmem_enabled "force"); elsewhere
 *  normal pages, silently: evb_partition_memory() says which. */
#define EVB_HUGE_PAGES_TRY 1u
/** As EVB_HUGE_PAGES_TRY, but evb_topic_create() fails with -EOPNOTSUPP
 *  when a ring got no huge page. */
#define EVB_HUGE_PAGES_STRICT 2u

/** What evb_topic_info() reports. (Struct tags, like struct stat and
 *  stat(), because the function has the same name.) */
struct evb_topic_info {
    char name[EVB_NAME_MAX + 1];
    evb_topic_config config;  /**< with defaults filled in */
};

/** Counters of one partition, read live from shared memory. */
struct evb_partition_stat {
    uint64_t tail_position;   /**< next position to be claimed */
    uint64_t tail_offset;     /**< next offset to be assigned */
    uint64_t capacity;        /**< ring bytes */
    uint64_t published;       /**< events committed since the ring was created (or
                                   rebuilt from disk): every offset handed out since
                                   then that is neither aborted nor in a claim still
                                   open, so with no claim open
                                   published + aborted == tail_offset - the offset
                                   the ring started at. Exact when producers die at
                                   any point of a commit; a process killed in the
                                   instant between padding or aborting a claim and
                                   counting it in aborted leaves that claim here */
    uint64_t aborted;         /**< events of claims padded: evb_abort, dead or stalled
                                   producers */
    uint64_t padded_dead;     /**< of those, holes of dead producers */
    uint64_t padded_stalled;  /**< of those, claims of live producers stalled past stall_ms */
    uint64_t reaped_readers;  /**< dead readers whose slots were freed */
    uint32_t producers;       /**< producer slots in use */
    uint32_t readers;         /**< reader slots in use */
    /* Durable topics (zero otherwise). */
    uint64_t flushed_position; /**< positions below are written to disk */
    uint64_t durable_position; /**< positions below are fdatasync'ed */
    uint64_t log_start_position; /**< oldest position still on disk */
    uint64_t log_start_offset;   /**< its offset */
    uint64_t fsyncs;          /**< fdatasyncs completed */
    uint64_t recovered_dropped; /**< torn bytes cut off the log when the ring was rebuilt */
    uint64_t retention_unconsumed; /**< log bytes removed by retain_cap_bytes before a
                                        named consumer had committed past them */
    int32_t flush_error;      /**< the flusher's last write error (-errno), 0 if none;
                                   -EBADMSG when the word holds no errno (damage) */
    uint32_t flusher_pid;     /**< process holding the flush lock, 0 if none seen */
    uint32_t segments;        /**< segment files on disk */
    uint64_t disk_bytes;      /**< their total size */
};

/** One reader attached to a partition, for evb_reader_list(). */
typedef struct evb_reader_stat {
    char name[EVB_NAME_MAX + 1]; /**< consumer name, or "" for a subscriber */
    uint32_t kind;            /**< enum evb_reader_kind */
    uint32_t pid;
    uint64_t position;        /**< next position it will read */
    uint64_t offset;          /**< next offset it will read */
    uint64_t lag_bytes;       /**< tail_position - position */
    uint64_t delivered;       /**< events handed to the application */
    uint64_t lost;            /**< events it lost to lapping */
    uint64_t lag_events;      /**< tail_offset - offset */
    uint64_t next_timestamp_ns; /**< CLOCK_REALTIME of the next event it reads, the
                                     first at or after position (pads carry no time:
                                     a lap's end pad and padded claims are stepped
                                     over, up to 64): now minus this is its lag in
                                     time. 0 when it has read everything, or that
                                     frame could not be read as an event (lapped,
                                     being written) */
    uint32_t gating;          /**< 1: the slowest reader that holds producers back
                                   (lossless subscribers and named consumers gate
                                   a ring that is not durable; ties all get 1) */
    uint32_t reserved_;
} evb_reader_stat;

/** A named consumer of a topic, open or not, from its cursor file
 *  (consumers/NAME.cur), for evb_named_consumer_list(). */
typedef struct evb_named_consumer_stat {
    char name[EVB_NAME_MAX + 1];
    uint32_t pid;             /**< the process that has it open; 0: closed, or
                                   its file cannot be read */
    /** 0, or why its cursor file cannot be read: -EBADMSG (damaged: bad
     *  magic, size or partition count, or a commit past the partition's
     *  tail, which its consumer's open refuses too), -EPROTO (another build's format),
     *  -EACCES or another open error. Then only the name is known: pid 0,
     *  committed_* UINT64_MAX, lag_* 0 (not a lag: unknown). */
    int32_t error;
    uint64_t committed_position; /**< UINT64_MAX: nothing committed in this partition */
    uint64_t committed_offset;   /**< offset at that position (after a torn commit it
                                      may be stale) */
    uint64_t lag_events;      /**< tail_offset - committed_offset; when that offset
                                   is not known (a start never committed, its frame
                                   lapped or on disk only), at least the events the
                                   ring holds */
    uint64_t lag_bytes;       /**< tail_position - committed_position, 0 when unknown */
    /** 1: the cursor file reads, but the consumer's dedup table
     *  (consumers/NAME.dup) fails its check (in any partition) or cannot
     *  be opened, which its open with EVB_CONSUMER_DEDUP refuses (an open
     *  without it reads on); the fields above are as usual. */
    uint8_t dedup_damaged;
} evb_named_consumer_stat;

/** Fill up to CAP named consumers of TOPIC with their commits in
 *  PARTITION into OUT, open or closed, in directory order. A cursor file
 *  this build cannot read is listed too, by name, with .error saying why,
 *  so a damaged one is seen rather than missing. Read only; never blocks;
 *  thread-safe.
 *  Returns how many there are (may exceed CAP) or -ENOENT, -EINVAL,
 *  -EBADMSG, -EPROTO, -ENOMEM. */
int evb_named_consumer_list(evb_bus *bus, const char *topic, uint32_t partition,
                            evb_named_consumer_stat *out, uint32_t cap);

/** Which reader a consumer handle is. */
enum evb_reader_kind {
    EVB_SUBSCRIBER = 0,          /**< anonymous, lossy, never gates */
    EVB_SUBSCRIBER_LOSSLESS = 1, /**< anonymous, gates producers while alive */
    EVB_CONSUMER = 2,            /**< named: committed cursor persists; gates while open */
    EVB_GROUP_MEMBER = 3,        /**< member of the partition group .name: the group's
                                      members split the topic's partitions, one owner
                                      per partition (evb_consumer_open) */
    EVB_QUEUE_MEMBER = 4,        /**< member of the queue group .name: members take
                                      single events from any partition and
                                      acknowledge each (evb_consumer_ack) */
};

/** What a group member is told about its partitions (the rebalance
 *  callback, evb_consumer_options.on_rebalance). */
enum evb_rebalance {
    EVB_PARTITIONS_ASSIGNED = 1, /**< now yours; reading starts at the group's
                                      committed cursor */
    EVB_PARTITIONS_REVOKED = 2,  /**< about to go to another member: still yours
                                      during the call, so evb_consumer_commit() from
                                      the callback still commits them */
    EVB_PARTITIONS_LOST = 3,     /**< already another member's (you were silent past
                                      your lease, or expelled): commits on them fail */
};

/** Default lease of a group member: silent longer (no call on its handle),
 *  it is expelled and its partitions go to the others. */
#define EVB_GROUP_LEASE_MS 1000u

/** Where a reader starts, and the whence of evb_consumer_seek(). */
enum evb_start {
    EVB_START_DEFAULT = 0,   /**< subscribers: LATEST; consumers: COMMITTED */
    EVB_START_LATEST = 1,    /**< the next event published */
    EVB_START_EARLIEST = 2,  /**< the oldest event still held */
    EVB_START_COMMITTED = 3, /**< after the last committed event; a first open
                                  records where it starts as its commit;
                                  EARLIEST when nothing is recorded */
    EVB_START_OFFSET = 4,    /**< the event with this offset (value) */
    EVB_START_POSITION = 5,  /**< the frame at this position (value) */
    EVB_START_TIME = 6,      /**< the first event with timestamp_ns >= value */
};

/** Or'ed into the whence of evb_consumer_seek() / evb_consumer_options.start
 *  on durable topics: an offset or time older than the retained log gives
 *  -ERANGE instead of landing on the oldest event. */
#define EVB_SEEK_STRICT 0x100u

/** How a reader waits when there is nothing to read. */
enum evb_idle {
    EVB_IDLE_BLOCK = 0,  /**< spin briefly, then sleep on the ring's futex */
    EVB_IDLE_SPIN = 1,   /**< busy-spin (lowest latency, burns a core) */
    EVB_IDLE_YIELD = 2,  /**< spin, then sched_yield() */
};

/** How a producer picks a partition when the message leaves it to it. */
enum evb_partitioner {
    EVB_PART_KEY_HASH = 0,    /**< xxHash3 of the key; round-robin when no key (per
                                   call: evb_publish_batch keeps a run of keyless
                                   messages in one partition) */
    EVB_PART_ROUND_ROBIN = 1, /**< ignore keys */
};

/** Let the producer choose the partition. */
#define EVB_PARTITION_ANY (-1)

typedef struct evb_producer_options {
    /** 0: a full ring returns -EAGAIN at once (after freeing the slots of
     *  gating readers whose process died, as a waiting producer does);
     *  >0: wait up to this many ms; <0: wait as long as it takes.
     *  It bounds the wait for disk of a publish with EVB_MSG_SYNC as
     *  well (see there): >0 up to this many ms, <0 as long as it takes,
     *  0 as long as the partition's flusher runs. */
    int32_t block_ms;
    uint32_t partitioner;     /**< enum evb_partitioner */
    /** 0: an id drawn from the bus (below EVB_PRODUCER_ID_STABLE, new on
     *  every open). Else a stable id the caller chooses, at least
     *  EVB_PRODUCER_ID_STABLE: a restartable producer (see "Duplicate
     *  suppression" below). */
    uint32_t producer_id;
    uint32_t flags;           /**< EVB_PRODUCER_* */
    uint32_t reserved_[4];
} evb_producer_options;

/**
 * evb_producer_options.flags: EVB_PRODUCER_EXCLUSIVE makes this handle
 * the only producer of every partition of the topic for as long as it is
 * open (the single-writer mode of Aeron's ExclusivePublication and the
 * Disruptor). Its claims then move each ring's tail with a plain store, no
 * atomic read-modify-write on the publish path. evb_producer_open() takes
 * every partition at once and fails with -EBUSY (and a message naming the
 * pid) while any other producer, in this process or another, holds one;
 * while it lives, other producers' opens succeed but their first publish
 * to a partition fails with -EBUSY. A dead exclusive producer's hold ends
 * with it (its open claims are padded as any dead producer's). Not
 * thread-safe, as any producer handle. In a child forked while it is open
 * the handle refuses to publish (-EBUSY, see Fork at the top): the child's
 * copy of the tail would race the parent's stores.
 *
 * Without the flag, a producer that is alone on a partition gets the same
 * plain-store claims by itself (the tail lease, where the kernel has
 * membarrier(2)): the first claim of a second producer there takes the
 * lease back. Should the holder be stopped (SIGSTOP, a debugger) at the
 * very instant of its tail store, that claim waits until it runs or dies,
 * as on a full ring: -EAGAIN with block_ms 0, -ETIMEDOUT after block_ms
 * (counted as back-pressure in evbus stat). So does it in a process that
 * may not call membarrier(2) (a seccomp filter) until the holder's next
 * claim or close. -EBADMSG when the holder's slot says it is storing for
 * longer than stall_ms + dead_ms while its process runs (damage).
 */
#define EVB_PRODUCER_EXCLUSIVE 1u

/*
 * Duplicate suppression (Kafka's idempotent producer, on one host).
 *
 * Every event carries (producer_id, producer_seq); the sequence counts per
 * producer and partition. A producer opened with a stable producer_id
 * (>= EVB_PRODUCER_ID_STABLE; ids drawn from the bus stay below it, so
 * the two never collide) is restartable:
 *
 *  - only one handle holds a stable id on a topic at a time: a second
 *    open, in any process, is -EBUSY while the first lives (the holder's
 *    death releases it at once; a child forked while it is open holds it
 *    too until the child exits or execs);
 *  - reopened, it continues each partition's sequence after the highest
 *    one its earlier incarnations claimed, also after the topic was
 *    rebuilt from disk: the id's state file lives in tmpfs, so on a durable
 *    topic the first open of an id since the topic's tmpfs side was made
 *    (a new id, or any id after a rebuild) reads the retained disk log of
 *    every partition once to learn it; evb_producer_last_seq() tells what
 *    the log holds;
 *  - it may publish with EVB_MSG_SEQ and an explicit evb_msg.seq: below the
 *    partition's next sequence that is a republish of an event it may
 *    already have published, carried as is; at or above it, a new event,
 *    and the sequence continues after it.
 *
 * A producer that numbers its events itself (its input's offsets, say)
 * restarts like this, resending what it cannot tell was published:
 *
 *     evb_producer_options po = {.block_ms = -1,
 *                                .producer_id = EVB_PRODUCER_ID_STABLE | 7};
 *     evb_producer_open(&p, bus, "orders", &po);     (-EBUSY: still alive)
 *     for (uint64_t s = checkpoint; s < next_input; s++)
 *         evb_publish(p, &(evb_msg){.value = in[s].v, .value_len = in[s].n,
 *                                   .partition = 0, .flags = EVB_MSG_SEQ,
 *                                   .seq = s});
 *
 * where evb_producer_last_seq() may move the checkpoint up to what the log
 * already holds.
 *
 * A reader opened with EVB_CONSUMER_DEDUP drops an event of a stable
 * producer whose sequence is not above the highest it has seen from that
 * producer in that partition (evb_consumer_dedup_stat() counts them): a
 * high-water mark, 24 bytes per producer (1.5 KiB per partition read at
 * most; a named consumer's file holds two such tables per partition), not
 * a window of sequences. It
 * remembers the last EVB_DEDUP_PRODUCERS stable producers per partition
 * (least recently seen evicted first); duplicates of an evicted producer
 * are delivered again (counted as evicted). Events of ids drawn from the
 * bus are never dropped: such a producer cannot come back under its id, so
 * it cannot publish a duplicate. A named consumer keeps its tables beside
 * its cursor (consumers/NAME.dup) with each commit, so after a restart it
 * still drops copies of events it processed before; a seek forgets the
 * table of the partitions it moves (the caller asked to see them again).
 * A partition group (EVB_GROUP_MEMBER) keeps one table per partition in
 * consumers/GROUP.gdup, handed from owner to owner with the committed
 * cursor; the group's first member decides whether it deduplicates (the
 * group file records it), and a member opened otherwise is refused
 * (-EINVAL), since one that keeps no table would commit past events
 * without recording them. A queue group (EVB_QUEUE_MEMBER) cannot deduplicate (-EINVAL):
 * its members take a partition's events out of order, so the highest
 * sequence one member has seen says nothing of events another holds.
 *
 * Sequences only rise: an EVB_MSG_SEQ at or above the next sequence jumps
 * there, and nothing brings it down, so one near EVB_SEQ_LIMIT uses the id
 * up in that partition (every new event -EOVERFLOW from then on,
 * republishes below still allowed): number anew under another id.
 *
 * The id's state file (producers/ID.seq) and the tables' files check
 * every record: damage is -EBADMSG naming the file, never a sequence taken
 * as right, except that a damaged state of a partition whose log still
 * holds it from its first event is learned again from the log.
 */
/** Lowest stable producer id (evb_producer_options.producer_id). */
#define EVB_PRODUCER_ID_STABLE 0x80000000u
/** Stable producers a deduplicating reader remembers per partition. */
#define EVB_DEDUP_PRODUCERS 64

/** The longest key an event carries (a frame's 16-bit key length); key
 *  and value together are bound by the topic's max_event_bytes too. */
#define EVB_MAX_KEY_BYTES 65535u

/** One event to publish. */
typedef struct evb_msg {
    const void *key;          /**< may be NULL when key_len is 0 */
    const void *value;        /**< may be NULL when value_len is 0 */
    uint32_t key_len;         /**< at most EVB_MAX_KEY_BYTES */
    uint32_t value_len;
    int32_t partition;        /**< EVB_PARTITION_ANY or 0..partitions-1 */
    uint16_t type;            /**< application event type, carried as is */
    uint16_t flags;           /**< EVB_MSG_* */
    uint64_t seq;             /**< with EVB_MSG_SEQ: the producer sequence */
} evb_msg;

/**
 * evb_msg.flags: return only once the event is on disk (evb_producer_sync
 * after it; a batch syncs once, after its last event). The wait for disk
 * is bounded by the producer's block_ms: >0 up to that many ms; <0 as long
 * as it takes; 0 for as long as the partition's flusher runs, giving up
 * (within about 100 ms) once it sees the flusher stopped.
 *
 * The flusher is one process (whichever took the partition's flush lock)
 * and only it writes the partition: while it is stopped (SIGSTOP, Ctrl-Z,
 * a debugger, a frozen cgroup) every sync publisher of the partition
 * stalls, for the whole stop. Nobody takes the lock from a stopped
 * process, which could resume and write; its death hands the partition
 * to another process at once. When the wait runs out the call returns
 * -ETIMEDOUT, evb_last_error() naming the stopped pid when it can tell
 * (from /proc). The event IS published then (it has its offset; with
 * evb_publish_receipt() the receipt is filled) and may become durable
 * later: wait for it again with evb_producer_wait_durable() or
 * evb_producer_sync(), or publish it again if duplicates are acceptable.
 */
#define EVB_MSG_SYNC 1u
/** evb_msg.flags: publish with sequence evb_msg.seq (stable producers
 *  only, and below EVB_SEQ_LIMIT; -EINVAL otherwise). Below the partition's
 *  next sequence it republishes (the next sequence stays); at or above it
 *  the sequence continues at seq + 1 (a gap is allowed). */
#define EVB_MSG_SEQ 2u
/** Sequences stay below this (2^63), so the next one never wraps. */
#define EVB_SEQ_LIMIT (1ull << 63)

/** A reservation made by evb_claim(); fill value, then commit or abort. */
struct evb_claim {
    void *value;              /**< value_len writable bytes inside the ring,
                                   8-byte aligned whatever the key length, so
                                   a struct of alignment <= 8 can be built
                                   in place */
    uint32_t value_len;
    uint32_t partition;
    uint64_t offset;          /**< the offset the event will have */
    uint64_t position;        /**< the position the event will have */
    uint64_t priv_[4];        /**< library use */
};

/**
 * Where a published event went, filled by evb_publish_receipt(),
 * evb_publish_batch_receipts() and evb_commit_receipt(): what a reader
 * will see as its partition, offset and position, and the end of its
 * frame in the partition's log. The event is on disk (written and
 * fdatasync'ed) once the partition's durable position is at or past
 * end_position: evb_producer_wait_durable() waits for that,
 * evb_producer_durable_position() tells it without waiting. end_position
 * is never 0 for a published event, so a zeroed receipt says "not
 * published".
 *
 * Positions name an event only within one incarnation of the partition's
 * ring: after a crash and a reboot (or the bus directory removed) the ring
 * is rebuilt from disk, starting at the synced end of the log, and events
 * published then take the positions and offsets of whatever was not yet
 * synced before. So a receipt also names its ring's incarnation, and both
 * calls refuse one of an earlier incarnation with -ESTALE: its event may
 * be lost, or on disk; only reading the topic tells which.
 */
typedef struct evb_receipt {
    uint32_t partition;
    uint32_t incarnation;     /**< the partition ring's incarnation when the
                                   event was published: changes each time
                                   the ring is created or rebuilt; never 0
                                   in a filled receipt. Compare, do not
                                   interpret */
    uint64_t offset;          /**< the event's offset (evb_event.offset) */
    uint64_t position;        /**< where its frame starts (evb_event.position) */
    uint64_t end_position;    /**< where its frame ends: the durable target */
} evb_receipt;

/** A delivered event. Pointers stay valid until the next call on the
 *  consumer handle and are for reading only. They point into a read-only
 *  mapping of the ring (a store kills the caller with SIGSEGV) for events
 *  a gating reader (lossless subscriber, named consumer) of a ring-only
 *  topic reads at or after the tail it saw when it attached or last
 *  seeked. Every other event is a private copy in memory of the handle's:
 *  a lossy subscriber's, a gating reader's below that tail, any event a
 *  reader of a durable topic reads from the ring (none gates producers
 *  there), and any event read back from segment files (read with pread
 *  into the handle's read window, never mapped). Storing into a copy is
 *  not allowed either: nothing stops it and no one else sees it, but it
 *  changes what the handle still holds (the window serves the events
 *  after it too, and is checked once, when read). SECURITY.md, "Copies
 *  vs read-only views".
 *  value is 8-byte aligned for every event published by this version
 *  (ring version 3 on); events read back from segments an older version
 *  wrote keep their value right after the key, unaligned. */
typedef struct evb_event {
    const void *key;
    const void *value;
    uint32_t key_len;
    uint32_t value_len;
    uint32_t partition;
    uint16_t type;
    uint16_t flags;
    uint64_t offset;
    uint64_t position;
    uint64_t timestamp_ns;    /**< CLOCK_REALTIME at publish (one per batch run),
                                   read from the CPU's counter where the kernel
                                   keeps time by it: it follows a slewed clock
                                   within tens of ns, but a step of the clock
                                   (settimeofday, a VM's time sync) shows in the
                                   stamps only within a second */
    uint64_t producer_seq;    /**< per producer and partition, from 0, +1 per event
                                   (a stable producer's may repeat: EVB_MSG_SEQ) */
    uint32_t producer_id;     /**< below EVB_PRODUCER_ID_STABLE: drawn from the bus,
                                   unique while its tmpfs side lives; else the
                                   caller's stable id */
    uint32_t deliveries;      /**< queue group members: times this event was handed
                                   out, this time included (1: first delivery; more:
                                   a redelivery after a nack, ack_wait or a member's
                                   death; saturates at 255); partition group
                                   members: 1, or 2 when an earlier owner of the
                                   partition may have been handed it (it changed
                                   owner after that, uncommitted); 0 for others */
    uint64_t lost_events;     /**< events lost (lapped) just before this one */
    uint64_t lost_bytes;      /**< log bytes skipped with them */
    uint64_t ack_token;       /**< queue group members: names the delivery for
                                   evb_consumer_ack() and evb_consumer_nack() */
} evb_event;

/** Options for evb_consumer_open(); zero-initialise. */
typedef struct evb_consumer_options {
    uint32_t kind;            /**< enum evb_reader_kind */
    const char *name;         /**< 1..EVB_NAME_MAX bytes of [A-Za-z0-9._-]: the
                                   consumer's name (EVB_CONSUMER), or the group's
                                   (EVB_GROUP_MEMBER, EVB_QUEUE_MEMBER); ignored
                                   for EVB_SUBSCRIBER */
    uint32_t start;           /**< enum evb_start */
    uint64_t start_value;     /**< offset or position for START_OFFSET/POSITION */
    uint32_t idle;            /**< enum evb_idle */
    int32_t partition;        /**< with only_partition: the partition to read */
    uint32_t only_partition;  /**< 0: read every partition; else only .partition */
    uint32_t flags;           /**< EVB_CONSUMER_* */
    /** Group members: how long the member may go without calling into its
     *  handle (next, poll, commit) before the others expel it; 0:
     *  EVB_GROUP_LEASE_MS. A dead member's process is noticed sooner
     *  (within about 100 ms of an active member's calls). */
    uint32_t lease_ms;
    /** Group members: called from evb_consumer_next/poll/open with the
     *  partitions gained, about to be revoked, or lost (enum evb_rebalance).
     *  It may call evb_consumer_commit(), evb_consumer_assignment() and
     *  evb_consumer_seek(); not close, and next or poll there return
     *  -EINVAL. May be NULL. */
    void (*on_rebalance)(evb_consumer *c, uint32_t what, const uint32_t *parts,
                         uint32_t n, void *arg);
    void *rebalance_arg;
    /** Queue groups, taken by the member that creates the group (later
     *  members use the group's): how long a delivered event may stay
     *  unacknowledged before another member gets it (0: 30000 ms); the
     *  deliveries after which an event goes to the dead-letter topic
     *  <topic>.dlq instead (0: 5; EVB_NO_MAX_DELIVERIES: never); events
     *  in flight per partition, a power of two up to 65536 (0: 4096),
     *  32 bytes of shared memory each: a window that starts at the oldest
     *  event not acknowledged, so one event nacked with a long delay
     *  holds the window too. A queue member's lease (lease_ms) defaults
     *  to the group's ack_wait when that is longer than
     *  EVB_GROUP_LEASE_MS: a member busy with one event for up to ack_wait
     *  keeps it; a dead member's events move on at once. */
    uint32_t ack_wait_ms;
    uint32_t max_deliveries;
    uint32_t max_in_flight;
    uint32_t reserved_[4];
} evb_consumer_options;

#define EVB_NO_MAX_DELIVERIES UINT32_MAX

/** evb_consumer_options.flags: on a durable topic, go on past damage in
 *  the disk log (a range without a valid frame, a missing segment) at the
 *  next valid frame, and report what was skipped as lost_events (when the
 *  offsets tell) and lost_bytes on the next event, instead of failing
 *  with -EBADMSG there (the default, whose message names the partition,
 *  segment file and position). A seek (start) that lands past damage
 *  reports it the same way: by offset, the events from the offset asked;
 *  by time, every event the damage held. Damage that ends the disk log has
 *  no next event there: the next event from the ring carries it, and
 *  evb_consumer_skipped() hands it over before one arrives. Intact
 *  frames whose offsets went back below the next one expected (a hostile
 *  store to the ring's tail offset) are damage as well: they are skipped
 *  until the offsets reach the expected one again, each counted in
 *  lost_events and lost_bytes, so no offset is delivered twice; should
 *  the ring then go on below it, the read fails with -EBADMSG there. */
#define EVB_CONSUMER_SKIP_DAMAGE 1u
/** evb_consumer_options.flags: drop duplicates of stable producers' events
 *  (see "Duplicate suppression"). A dropped event is consumed (a commit
 *  moves past it); a loss it carried goes with the next event delivered.
 *  For subscribers, named consumers and partition group members; a queue
 *  member's open is -EINVAL (it takes events out of order). */
#define EVB_CONSUMER_DEDUP 2u

/* ------------------------------------------------------------------ */
/* Bus                                                                */
/* ------------------------------------------------------------------ */

/**
 * Open (creating when missing) the bus NAME_OR_PATH. A name without '/'
 * lives under /dev/shm/evbus/ (root) or /dev/shm/evbus-<uid>/ (any other
 * user); a value with '/' is taken as a directory
 * path. NULL or "" means the EVBUS_BUS environment variable, else
 * "default". The path is resolved once (evb_bus_path() gives the result);
 * nothing inside it is then opened through a symlink. Leftovers of
 * processes that died half-way through creating or deleting a topic are
 * cleaned up.
 * Blocking: file system calls only. Thread-safe.
 * Returns 0, -EINVAL (also: a data directory other than the one the bus
 * recorded, evb_bus_options.data_dir; the message names both),
 * -ENAMETOOLONG, -ENOMEM, -ENOSPC, -ENOTDIR, -EACCES (also: the bus
 * directory is not the caller's or root's, nor shared with a group of
 * theirs its owner is in, or a directory above it could be changed by
 * another user: SECURITY.md),
 * -EBADMSG (bus.meta or the data_dir record is not one), -EPROTO (bus.meta
 * of another format),
 * -EMEDIUMTYPE (bus.meta, or a durable topic's file being restored, is a
 * FIFO, symlink or directory).
 */
int evb_bus_open(evb_bus **out, const char *name_or_path, const evb_bus_options *opts);

/** Close a bus handle; NULL is accepted. Producers and consumers opened on
 *  it must be closed first. */
void evb_bus_close(evb_bus *bus);

/** The bus directory. */
const char *evb_bus_path(const evb_bus *bus);

/** The data directory for durable topics (it may not exist yet). */
const char *evb_bus_data_dir(const evb_bus *bus);

/* ------------------------------------------------------------------ */
/* Topics                                                             */
/* ------------------------------------------------------------------ */

/**
 * Create TOPIC with CFG (NULL: all defaults). Atomic: other processes see
 * the whole topic or none of it. The ring memory is reserved now, so a
 * full tmpfs fails here with -ENOSPC and never later with SIGBUS.
 * Returns 0, -EEXIST, -EINVAL (bad name or config, a numa_node this
 * machine lacks; or, for a durable topic, another process recorded
 * another data directory for the bus since this handle was opened),
 * -ENAMETOOLONG, -ENOSPC, -EACCES, -ENOMEM, -EOPNOTSUPP
 * (EVB_HUGE_PAGES_STRICT and no huge page given), or -errno from binding
 * the rings to their node.
 */
int evb_topic_create(evb_bus *bus, const char *topic, const evb_topic_config *cfg);

/** Delete TOPIC. Handles already open keep working on the old memory
 *  until closed. A durable topic that cannot be rebuilt from its data
 *  directory (evb_topic_damage()) is kept: -EBADMSG, see
 *  evb_topic_remove(). Only root, the topic's owner and the owner of the
 *  bus (or data) directory it is in may delete it; anyone else gets
 *  -EACCES, whatever the flags. A durable topic that a process of the bus
 *  from before its directory was removed keeps from being rebuilt (it
 *  holds a flush lock, evb_topic_damage() -EBUSY) is kept too, whatever
 *  the flags: -EBUSY naming its pid. Returns 0, -ENOENT, -EACCES,
 *  -EBADMSG, -EBUSY. */
int evb_topic_delete(evb_bus *bus, const char *topic);

/** evb_topic_remove() flags: remove a damaged topic's data too; never
 *  while another process (or another handle here) holds a partition's
 *  flush lock, which a live flusher does: -EBUSY naming its pid. */
#define EVB_DELETE_FORCE 1u

/** evb_topic_delete() with FLAGS (EVB_DELETE_*). */
int evb_topic_remove(evb_bus *bus, const char *topic, uint32_t flags);

/** Whether TOPIC is damaged: it has a durable side in the data directory
 *  but its tmpfs side is gone and cannot be rebuilt from there (the
 *  rebuild is tried now); or its tmpfs topic.conf does not read or names
 *  other rings than it has; or the last rebuild found damage below its
 *  log end and kept it (evb_partition_damage()). Such a topic keeps its
 *  data on evb_topic_remove() unless EVB_DELETE_FORCE. Returns 1 with the
 *  reason in REASON (CAP bytes, may be NULL), 0 when it is not (or does
 *  not exist), -EINVAL, -ENAMETOOLONG for a bad name. evb_topic_list() lists damaged topics.
 *  A topic whose rebuild cannot happen now is intact, not damaged: -EBUSY
 *  (another process holds a partition's flush lock: one of the bus from
 *  before its directory was removed, named with its pid) or -ENOSPC (no
 *  room in the bus's tmpfs for its rings), the reason in REASON and
 *  evb_last_error(); a later call or open rebuilds it. */
int evb_topic_damage(evb_bus *bus, const char *topic, char *reason, size_t cap);

/** Fill OUT with TOPIC's configuration (-EBADMSG naming the reason for a
 * damaged topic, evb_topic_damage(); when its tmpfs side is gone OUT then
 * holds the configuration its data directory records, or an empty name
 * when that does not read; so too for -EBUSY and -ENOSPC, a topic that
 * cannot be rebuilt now, see there). Returns 0, -ENOENT, -EBADMSG,
 * -EPROTO (topic.conf of another version), -EMEDIUMTYPE, -EBUSY, -ENOSPC. */
int evb_topic_info(evb_bus *bus, const char *topic, struct evb_topic_info *out);

/** Call FN for each topic name, in name order, damaged durable topics
 *  (evb_topic_damage()) and topics the caller may not look into (calls
 *  about them say -EACCES) included; stops early when FN returns
 *  non-zero. Returns the number of topics visited or -errno. */
int evb_topic_list(evb_bus *bus, int (*fn)(const char *topic, void *arg), void *arg);

/** Live counters of one partition. Returns 0, -ENOENT, -EINVAL,
 *  -EBADMSG, -EPROTO, -EMEDIUMTYPE. */
int evb_partition_stat(evb_bus *bus, const char *topic, uint32_t partition,
                       struct evb_partition_stat *out);

/** Damage found in a durable partition's disk log, evb_partition_damage(). */
typedef struct evb_damage {
    uint64_t ranges;          /**< damaged ranges (runs of bytes without a valid frame,
                                   missing or short segments) */
    uint64_t bytes;           /**< their bytes */
    uint64_t first_position;  /**< at or before the first one; UINT64_MAX: none */
    uint64_t checked_bytes;   /**< EVB_DAMAGE_VERIFY: log bytes walked */
    uint32_t mark;            /**< EVB_MARK_*: the durable mark a rebuild found */
    uint64_t unchecked_cut_bytes;    /**< bytes a rebuild cut as a torn tail with no
                                          valid mark to bound them (they may have
                                          held synced events) */
    uint64_t unchecked_cut_position; /**< where that cut started; UINT64_MAX: no
                                          rebuild yet (the flusher found the mark
                                          unwritable while live) */
    uint64_t skipped_offsets; /**< offsets a rebuild skipped after such a cut
                                   (voided by pads at the log end): that cut
                                   may have taken back offsets already handed
                                   out, and none is ever handed out twice */
    uint64_t bad_indexes;     /**< EVB_DAMAGE_VERIFY: segment indexes (the .idx
                                   beside a segment) that contradict its frames.
                                   Not damage to the log: an index is a hint
                                   that seeks check, walking the frames where
                                   it is wrong (time lost, no event); removing
                                   the file makes that walk the rule */
    uint64_t first_bad_index; /**< the first such segment's base position */
    char flush_error[256];    /**< the text of the partition's flush error
                                   (evb_partition_stat().flush_error), as the
                                   flusher that failed wrote it, or where it
                                   kept none, the code's words and the
                                   partition's directory; empty when there
                                   is none */
    /* Added in 0.1 after the fields above, which keep their offsets. */
    uint64_t reset_commits;   /**< readers' commits (named consumers, groups,
                                   queue floors and fetches) rebuilds set back to
                                   the log end: they were past it, made after
                                   reading events that were lost before they
                                   were durable. Their readers go on at the log
                                   end and read the new events there, whose
                                   offsets are the lost ones'. Added up over
                                   rebuilds until damage.found is removed */
    uint64_t reset_left;      /**< reader files those rebuilds could not read
                                   or check, left as they were */
} evb_damage;

/** evb_damage.mark: the partition's durable mark (which tells a torn tail
 *  from damage) was fine, missing, invalid, or not a regular file. */
enum { EVB_MARK_OK, EVB_MARK_MISSING, EVB_MARK_INVALID, EVB_MARK_NOT_FILE };

/** evb_partition_damage() flags: walk every segment now. */
#define EVB_DAMAGE_VERIFY 1u

/**
 * Damage in PARTITION's disk log (durable topics). Without flags: what the
 * last rebuild from disk found below the log end and kept (it walks the
 * newest segment only); zero when nothing. With EVB_DAMAGE_VERIFY: every
 * retained segment is walked now, read only, from the log start to the
 * flushed position, each frame checked as a reader checks it (the
 * equivalent of Kafka's DumpLogSegments --verify; costs a read of the
 * whole log). Readers stop at damage with -EBADMSG unless opened with
 * EVB_CONSUMER_SKIP_DAMAGE. Returns 0, -ENOENT, -EINVAL (not durable, or
 * no such partition), -EBADMSG, -ENOMEM.
 */
int evb_partition_damage(evb_bus *bus, const char *topic, uint32_t partition, uint32_t flags,
                         evb_damage *out);

/** Fill up to CAP readers of one partition into OUT. Returns how many
 *  readers are attached (may exceed CAP) or -errno. */
int evb_reader_list(evb_bus *bus, const char *topic, uint32_t partition,
                    evb_reader_stat *out, uint32_t cap);

/** One producer attached to a partition, for evb_producer_list(). Its
 *  counters cover the time since it took its slot in this partition (at
 *  its first publish there) and are kept by the producer itself: one
 *  killed between a commit and its count misses that claim here (the
 *  partition's published count does not). */
typedef struct evb_producer_stat {
    uint32_t pid;
    uint32_t producer_id;     /**< bus-wide id, as in its events */
    char comm[16];            /**< command name (/proc/PID/comm; bytes outside
                                   0x20..0x7e as '?'), "" when not readable */
    uint64_t published;       /**< events it committed to this partition */
    uint64_t published_bytes; /**< ring bytes of them: frame headers, keys,
                                   values and alignment */
    uint64_t backpressure;    /**< publishes that found the ring full (held by
                                   a gating reader, or the flusher on a durable
                                   topic): each waited, or failed with -EAGAIN
                                   or -ETIMEDOUT */
    uint64_t reserved_[2];
} evb_producer_stat;

/** Fill up to CAP live producers of one partition into OUT (dead ones
 *  whose slots wait to be reaped are left out). Reads shared memory and
 *  /proc only; never blocks; thread-safe. Returns how many producers are
 *  attached (may exceed CAP) or -ENOENT, -EINVAL, -EBADMSG, -EPROTO. */
int evb_producer_list(evb_bus *bus, const char *topic, uint32_t partition,
                      evb_producer_stat *out, uint32_t cap);

/* ------------------------------------------------------------------ */
/* Producers                                                          */
/* ------------------------------------------------------------------ */

/**
 * Open a producer on TOPIC. It takes a producer slot in each ring it
 * writes to, on first use. With a stable producer_id it also holds the
 * id's state file (<bus>/<topic>/producers/<id>.seq) and learns where each
 * partition's sequence goes on: it may wait up to stall_ms for the fate of
 * a claim its previous incarnation left open, and after a rebuild from
 * disk it reads the retained disk log once. Returns 0, -ENOENT, -EBADMSG
 * (also: a damaged state file; remove it only if no event of the id is
 * in the log), -EPROTO, -EACCES (the caller may read the topic or bus but
 * not write it), -ENOMEM, -EMEDIUMTYPE, -EINVAL (producer_id below
 * EVB_PRODUCER_ID_STABLE and not 0), -EBUSY (the stable id is open
 * elsewhere), -ETIMEDOUT (the log could not be read to its end),
 * -EOVERFLOW (the bus handed out all 2^31 - 1 ids it draws). A durable
 * topic whose tmpfs side is gone is rebuilt from its data directory
 * first; when that cannot happen now the topic is intact and a later open
 * rebuilds it: -EBUSY (another process holds a partition's flush lock, a
 * process of the bus from before its directory was removed; the detail
 * names its pid and whether it is stopped), -ENOSPC (no room in the bus's
 * tmpfs for a ring; the detail names it). The same for consumers.
 */
int evb_producer_open(evb_producer **out, evb_bus *bus, const char *topic,
                      const evb_producer_options *opts);

/**
 * Publish one event (copying it into the ring). Blocks only on a full
 * ring, per block_ms. Returns 0, -EAGAIN (full, block_ms == 0),
 * -ETIMEDOUT (evb_last_error() names what held the ring: a reader, the
 * flusher, another producer's claim, and whether its process is
 * stopped), -EMSGSIZE, -EINVAL (partition out of range; a flag bit that
 * is not an EVB_MSG_*; EVB_MSG_SEQ without a stable id or at
 * EVB_SEQ_LIMIT and above), -EBUSY (no free
 * producer slot in the ring, an exclusive producer holds it, or P was
 * opened by the process this one was forked from), -EOVERFLOW (a stable
 * producer's sequence would pass EVB_SEQ_LIMIT), -EBADMSG, -ECANCELED
 * (this producer stalled past stall_ms mid-publish and its claim was
 * padded: the event was not published), and with EVB_MSG_SYNC what
 * evb_producer_sync() returns (-ETIMEDOUT once block_ms runs out: the
 * event is published but not known durable, see EVB_MSG_SYNC).
 */
int evb_publish(evb_producer *p, const evb_msg *msg);

/**
 * Publish N events. Consecutive messages bound for the same partition are
 * claimed and committed together (one claim per run), so a batch is
 * published whole or not at all per partition run. Returns the number of
 * messages published (< N only when a later run could not be claimed) or
 * -errno when none was.
 */
int evb_publish_batch(evb_producer *p, const evb_msg *msgs, size_t n);

/**
 * Zero-copy publish, step 1: reserve room for one event of VALUE_LEN bytes
 * with KEY (copied now) in PARTITION (or EVB_PARTITION_ANY). Write the value
 * into c->value, then call evb_commit() or evb_abort(). At most one claim
 * per producer is open at a time. Readers wait at the claim until it is
 * committed or aborted, so keep it short:
 *
 *     struct evb_claim c;
 *     if (evb_claim(p, EVB_PARTITION_ANY, "k", 1, 64, &c) == 0) {
 *         fill(c.value, 64);
 *         evb_commit(p, &c);
 *     }
 *
 * Returns as evb_publish().
 */
int evb_claim(evb_producer *p, int32_t partition, const void *key, uint32_t key_len,
              uint32_t value_len, struct evb_claim *c);

/** Publish a claimed event. Returns 0, -ECANCELED when the claim was
 *  padded because this producer stalled past stall_ms (not published),
 *  -EINVAL when no claim is open, or -EBUSY in a child forked since P's
 *  open (the claim is the parent's; see Fork at the top). */
int evb_commit(evb_producer *p, struct evb_claim *c);

/** evb_commit(), and on success fill *R with the event's receipt (its
 *  partition, offset and position are the claim's; end_position, the
 *  durable target, is known only now, after the commit). R is left alone
 *  on failure. Returns as evb_commit(), or -EINVAL for a NULL R, which
 *  leaves the claim open (commit it with a receipt, evb_commit(), or
 *  evb_abort() it: until then readers wait at it). */
int evb_commit_receipt(evb_producer *p, struct evb_claim *c, evb_receipt *r);

/** Give a claim up: readers skip it and count it aborted. Returns 0,
 *  -ECANCELED (already padded), -EINVAL (no claim open) or -EBUSY (in a
 *  child forked since P's open, as evb_commit()). */
int evb_abort(evb_producer *p, struct evb_claim *c);

/**
 * Durable topics: wait until every event this producer has published is on
 * disk (written and fdatasync'ed), up to TIMEOUT_MS (<0: forever). Many
 * producers waiting at once share one fdatasync per partition (group
 * commit). On a topic that is not durable it returns 0 at once. A
 * stopped flusher stalls it (see EVB_MSG_SYNC): -ETIMEDOUT names its pid.
 * Returns 0, -ETIMEDOUT, or the error that stopped the partition's
 * flusher: the write's or fdatasync's (-EIO, -ENOSPC, ...), or -EBADMSG
 * when it met a corrupt committed frame (flushing of that partition stops
 * there; `evbus stat` shows it as flush_error); -EBUSY in a child forked
 * since P's open, durable topic or not (see Fork at the top).
 */
int evb_producer_sync(evb_producer *p, int32_t timeout_ms);

/*
 * Pipelined durable acknowledgements (Kafka's acks with callbacks). A
 * producer publishes without waiting, keeps each event's receipt, and
 * retires receipts as the partition's durable position passes their
 * end_position, so many events share each fdatasync and the rate is
 * bounded by the disk's bandwidth rather than by one fdatasync per event:
 *
 *     evb_receipt r[64];                      (a ring of receipts)
 *     size_t head = 0, tail = 0;              (outstanding: [tail, head))
 *     for (each event m) {
 *         if (head - tail == 64 &&            (full: wait for the oldest)
 *             evb_producer_wait_durable(p, &r[tail % 64], -1) < 0)
 *             return failed();                (nothing at or after r[tail] is
 *                                              known durable; retry or give up)
 *         uint64_t d;                         (retire all that are durable)
 *         while (tail < head &&
 *                evb_producer_durable_position(p, &r[tail % 64], &d) == 0 &&
 *                d >= r[tail % 64].end_position)
 *             acked(&r[tail++ % 64]);
 *         if (evb_publish_receipt(p, &m, &r[head % 64]) == 0)
 *             head++;                         (a failed publish takes no slot)
 *         else
 *             not_published(&m);
 *     }
 *
 * A receipt's events are durable in position order within a partition:
 * one at or below the durable position is on disk, and so is every
 * earlier one of that partition. On a topic that is not durable both
 * calls answer at once, as evb_producer_sync() does: every published
 * event counts as acknowledged. On an ASYNC topic the durable position
 * moves every flush_ms unless someone waits (evb_producer_wait_durable()
 * asks the flusher to sync now; polling does not), on a SYNC topic as
 * soon as the flusher has written and synced.
 */

/**
 * Publish one event as evb_publish() does and fill *R with its receipt.
 * R is filled whenever the event was published: on 0, and with
 * EVB_MSG_SYNC also when the wait for disk that follows fails (zero R
 * first to tell that from a publish that failed: end_position stays 0).
 * Costs what evb_publish() costs plus the stores into *R; no system call.
 * Returns as evb_publish(), and -EINVAL for a NULL R.
 * Thread-safety: as P.
 */
int evb_publish_receipt(evb_producer *p, const evb_msg *msg, evb_receipt *r);

/**
 * evb_publish_batch() filling RECEIPTS[i] for MSGS[i]: the first k
 * entries are meaningful when it returns k > 0, none when it returns an
 * error; the rest are unspecified. Events of one claimed run share one
 * commit, but each has its own end_position (a run may become durable in
 * parts). Returns as evb_publish_batch(), and -EINVAL for a NULL RECEIPTS
 * with N > 0.
 */
int evb_publish_batch_receipts(evb_producer *p, const evb_msg *msgs, size_t n,
                               evb_receipt *receipts);

/**
 * Wait until R's event is on disk (its partition's durable position
 * reaches R->end_position), up to TIMEOUT_MS (<0: forever; 0: look once,
 * after a short spin). Waiting for the newest receipt of a partition
 * covers every earlier one there, so a caller may keep only that. Many
 * producers waiting at once share one fdatasync (group commit), as
 * evb_producer_sync() does; on an ASYNC topic the flusher is asked to sync
 * now. Waiting for P's newest event on the partition, the caller may run
 * the fdatasync (or its process's flush round) itself; waiting for an
 * older one (pipelined acknowledgements: newer events of P's are in
 * flight) it leaves them to the flusher, whose rounds carry the stream,
 * and runs them itself only after 10 ms without an answer (a stopped or
 * held-up flusher). So a look with TIMEOUT_MS 0 at an older receipt
 * syncs nothing. On a topic that is not durable it returns 0 at once
 * (after the checks below).
 * What is checked of R: its partition exists; its incarnation is that of
 * the ring P has mapped (else -ESTALE: the ring was rebuilt since, see
 * evb_receipt); its end_position is not 0 (what a failed publish
 * leaves), is 8-aligned and no further than the end
 * of P's own last commit to that partition, so that the wait ends once P's
 * events are synced (else -EINVAL). Whose receipt it is, is not checked:
 * another handle's of the same ring that ends there passes, and the answer
 * is right for it too. A receipt of a closed handle usually ends past what
 * a new handle has published (-EINVAL): poll
 * evb_producer_durable_position() for those.
 * Blocking: yes, per TIMEOUT_MS (a futex sleep). Thread-safety: as P.
 * Returns 0 (durable), -ETIMEDOUT, -EBUSY (in a child forked since P's
 * open, see Fork at the top), -EINVAL (NULL P or R, no such
 * partition, a target past P's commits, incarnation 0: not filled),
 * -ESTALE (a receipt of an earlier incarnation of the ring), -EBADMSG
 * (the partition's durable word does not fit its ring: damage, never
 * taken as "durable"), or the flusher's error as evb_producer_sync()
 * returns it (-EIO, -ENOSPC, -EBADMSG, ..., with evb_last_error() saying
 * what the flusher met).
 */
int evb_producer_wait_durable(evb_producer *p, const evb_receipt *r, int32_t timeout_ms);

/**
 * The durable position of R's partition in *POS, without waiting: every
 * event published there whose end_position is at or below it is on disk
 * (R's once *POS reaches R->end_position). R may be any receipt of the topic from the ring
 * incarnation P has mapped (a closed handle's too, of this process or
 * another); one of an earlier incarnation is -ESTALE, since this ring's
 * positions are not its. The position never goes back (P keeps the
 * highest it has told, so a word a flusher taking over stores lower
 * changes nothing). Reads three words of the ring's shared header, no
 * system call, so a caller may poll it after every publish. On a topic
 * that is not durable: the end of what P has published to the partition
 * (all of it counts as acknowledged).
 * Thread-safety: as P (the word itself may be read from any thread).
 * Returns 0; the flusher's error (-EIO, -ENOSPC, -EBADMSG, ..., as
 * evb_producer_sync() returns it) when the partition's flusher has
 * stopped on one, with *POS still filled: what is below it stays durable,
 * the rest waits until a flusher takes the partition over and succeeds;
 * -EBADMSG with *POS untouched when the durable word does not fit the
 * ring (misaligned, past the tail, or past the flushed position: damage,
 * never reported as durable); -ESTALE (R of an
 * earlier incarnation, *POS untouched); -EINVAL (NULL argument, no such
 * partition, incarnation 0).
 */
int evb_producer_durable_position(evb_producer *p, const evb_receipt *r, uint64_t *pos);

/**
 * The highest producer sequence P has published to PARTITION: for a
 * stable producer, what the log holds from this id, earlier incarnations
 * included (a claim a crash left open counts only if it was committed);
 * for any other, what this handle published. Returns 0 and *SEQ, -ENOENT
 * (nothing yet), -EINVAL (no such partition). Cheap: no log read.
 */
int evb_producer_last_seq(evb_producer *p, uint32_t partition, uint64_t *seq);

/** Close a producer (NULL accepted); releases its ring slots. On a durable
 *  topic, what it published is written to disk first if this process is
 *  the flusher. In a child forked after the open it frees the child's
 *  memory only, and the parent keeps its slots. */
void evb_producer_close(evb_producer *p);

/* ------------------------------------------------------------------ */
/* Consumers (all reader kinds)                                       */
/* ------------------------------------------------------------------ */

/**
 * Open a reader on TOPIC. Subscribers start at the tail. A named consumer
 * is exclusive: a second opener of the same name gets -EBUSY while the
 * first handle is open, in another process (a forked child included) or
 * in this one (one handle per name: two would commit over each other),
 * and evb_last_error() says which. A process that exec()s keeps no handle,
 * so its new image may open the name again. Group and queue members are
 * not exclusive: each handle is a member of its own, in one process or
 * many. On a
 * durable topic no reader gates producers; one that falls behind the ring
 * reads the segment files instead, with the same events and offsets, and
 * its cursor file lives in the data directory. Opening finishes the flush
 * of partitions whose flusher died with no other candidate left.
 *
 * Events are handed out read-only: through a read-only mapping of the
 * ring, where storing through an event pointer kills the caller with
 * SIGSEGV, or as a private copy, events read back from segment files
 * included (which events are which: evb_event). A caller the topic lets
 * read but not write (file_mode 0640 and a group member) maps the rings
 * read-only: it may be a subscriber, or a named consumer of a durable
 * topic; a lossless subscriber or a named consumer of a ring-only topic
 * holds producers back and needs write access (-EACCES). Such a reader is
 * invisible to producers and evb_reader_list(), pads no hole a dead
 * producer left (a producer or writable reader does, at the latest when
 * producers come a lap around), and, with nothing to ring its doorbell,
 * sleeps in naps of at most 5 ms. A named consumer's cursor file is its
 * own: one owned by another uid is -EACCES.
 *
 * A group member (EVB_GROUP_MEMBER, .name the group) joins the group and
 * takes its share of the partitions before this returns (the callback
 * is told); it then reads only the partitions it owns, starting each at
 * the group's committed cursor (or per .start when nothing is committed
 * yet, which is then committed). Shares are rebalanced inside next and
 * poll as members come, go or die. The group file (consumers/<group>.grp)
 * must be the caller's, root's or the topic owner's (-EACCES), and
 * writable by every member. Up to 64 members (-EUSERS). On a ring-only
 * topic every member holds every partition at the group's committed
 * cursor (producers wait for the slowest commit while any member lives;
 * with none alive, what is lapped meanwhile is reported as lost_events),
 * which takes a reader slot per partition, plus one per partition it
 * owns: a ring's 64 reader slots are shared by all its readers, so such
 * a group has room for about 30 members (-EBUSY past that). A member
 * that stops running (SIGSTOP, a debugger, a write to a full pipe) is
 * expelled after its lease and its partitions go to others, but until
 * it runs again or dies its slots still hold the ring like a lossless
 * reader's: producers, and so the other members, wait for it. Durable
 * topics gate nothing and lose nothing: give a group whose members may
 * stall a durable topic.
 *
 * A queue group member (EVB_QUEUE_MEMBER, .name the group) reads every
 * partition and competes per event: next and poll hand it single events
 * nobody else has, each to be acknowledged (evb_consumer_ack) or nacked.
 * An event not acknowledged within the group's ack_wait, or whose member
 * died or was expelled, goes to another member with its delivery count
 * + 1 (evb_event.deliveries); past max_deliveries it goes to <topic>.dlq
 * instead, at least once: a member killed while it moves the event there
 * (on a sync topic, while the DLQ event goes to disk) may leave the move
 * half done, and the next member moves it again, so the DLQ can hold two
 * records of one event, the second with a delivery count past
 * max_deliveries (`evbus dlq list` marks it; EVB_RESUBMIT_ALL skips it,
 * EVB_RESUBMIT_DUPLICATE). A DLQ that refuses the record (full, too small
 * for it, a name too long) fails no call: the event waits ack_wait in the
 * queue and is tried again, the others are handed out meanwhile, and
 * evb_group_stat counts the tries (dlq_refusals, with the last error) and
 * the events waiting (dlq_due). The waiting event still holds the queue's
 * floor: past it a member takes at most max_in_flight events, and on a
 * ring-only topic producers wait once the ring is full, until the DLQ
 * takes it (make room, or give it a larger one). A new group starts at .start (default earliest); the group's
 * parameters are its creator's. On a ring-only topic the members hold the
 * ring at the oldest event not acknowledged (producers wait for it); with
 * no member alive nothing holds it, and events lapped meanwhile are
 * reported as lost_bytes (a queue keeps positions, not offsets), and a
 * stopped member holds it as a partition group's does (above). Each
 * member takes a reader slot per partition (64 per ring, shared with
 * every other reader of the topic), so a queue group has at most 64
 * members less the topic's other readers (-EBUSY past that, before
 * -EUSERS).
 * Returns 0, -ENOENT, -EINVAL, -ENAMETOOLONG, -EBUSY, -EBADMSG, -EPROTO,
 * -ENOMEM, -EACCES, -EMEDIUMTYPE, -EUSERS, -ENOSPC (-EBUSY and -ENOSPC
 * also for a topic that cannot be rebuilt now, as evb_producer_open()).
 * With EVB_CONSUMER_DEDUP a named
 * consumer also opens consumers/NAME.dup (a group member
 * consumers/GROUP.gdup): -EBADMSG or -EPROTO when it is damaged (any
 * record failing its check) or of another format (the cursor file is
 * untouched: opening without the flag, or after removing the file, resumes
 * as before); a queue member with it is -EINVAL, and so is a partition
 * group member whose setting differs from its group's.
 */
int evb_consumer_open(evb_consumer **out, evb_bus *bus, const char *topic,
                      const evb_consumer_options *opts);

/**
 * Next event from any partition (ordered within each partition), waiting
 * per the consumer's idle strategy up to TIMEOUT_MS (0: do not wait, <0:
 * forever). EV points into the ring or the handle and stays valid until the
 * next call on C. Returns 0, -EAGAIN (timeout 0, nothing yet), -ETIMEDOUT,
 * -EBADMSG (corrupt ring: the handle stays failed), -EMEDIUMTYPE (a durable
 * topic's segment it must read is a FIFO, symlink or directory), -EIO,
 * -ENOMEM, -EMFILE or -ENFILE (a durable topic's segment could not be
 * read: nothing was lost or skipped, the handle is not failed, and a later
 * call reads there again).
 */
int evb_consumer_next(evb_consumer *c, evb_event *ev, int32_t timeout_ms);

/**
 * Deliver up to MAX events that are ready now to FN, without blocking.
 * FN returns non-zero to stop after the current event. Returns the number
 * of events delivered (0 when none was ready) or -EBADMSG.
 */
int evb_consumer_poll(evb_consumer *c, int (*fn)(const evb_event *ev, void *arg),
                      void *arg, uint32_t max);

/**
 * Read up to MAX events in one call, for bindings that pay per call (the
 * Python binding's iteration and poll()): waits for the first one per
 * TIMEOUT_MS as evb_consumer_next() (0: do not wait), then takes what is
 * ready now. Every event in EVS[0..n) stays valid until the next call on
 * C, not only the last one: events a lossless subscriber or a named
 * consumer of a ring-only topic reads in place stay in place (nothing is
 * released to producers during the call, so producers may wait on a long
 * batch: keep MAX modest, a few thousand at most), every other event's
 * key and value (a lossy subscriber's, a group member's, any reader's of
 * a durable topic) are copied into ARENA (ARENA_BYTES, 8-byte aligned
 * values, may be NULL with 0). An event that does not fit in what is left
 * of ARENA ends the batch and stays where it was read, which is valid
 * until the next call like evb_consumer_next()'s event; so nothing read
 * is ever dropped, and an ARENA of a few times max_event_bytes keeps
 * batches long. Queue group members read one event per evb_consumer_next()
 * inside (each copied), with the same result.
 * Returns the number of events (0: none within TIMEOUT_MS), -EINVAL (NULL
 * C or EVS, or a NULL ARENA with ARENA_BYTES), or the errors of
 * evb_consumer_next() other than -EAGAIN and -ETIMEDOUT when no event
 * was read; an error after some events ends the batch and comes back from
 * the next call (as evb_consumer_poll()). Thread-safety: as C.
 */
int evb_consumer_read_batch(evb_consumer *c, evb_event *evs, uint32_t max, void *arena,
                            size_t arena_bytes, int32_t timeout_ms);

/** Where each value of evb_consumer_poll_values() came from (48 bytes,
 *  no padding: a binding may view an array of them as a table). */
typedef struct evb_value_meta {
    uint64_t offset;
    uint64_t position;
    uint64_t timestamp_ns;
    uint64_t lost_events;     /**< lost (lapped) just before this event */
    uint64_t ack_token;       /**< queue group members (evb_consumer_ack) */
    uint32_t partition;
    uint32_t deliveries;      /**< as evb_event.deliveries */
} evb_value_meta;

/**
 * Copy the values of up to MAX events, each exactly VALUE_BYTES long,
 * into VALUES (MAX * VALUE_BYTES bytes, value i at i * VALUE_BYTES) and,
 * when META is not NULL, where each came from into META[i]: a batch of
 * fixed-layout records for a columnar reader (numpy) in one call. Waits
 * for the first event per TIMEOUT_MS as evb_consumer_next(), then takes
 * what is ready now; *N says how many values were copied.
 * An event whose value is not VALUE_BYTES long ends the batch: it is
 * handed out whole in *ODD (valid until the next call on C, as
 * evb_consumer_next()'s event) and the call returns 1. It is consumed
 * like any delivered event (a commit covers it), so the caller owns it
 * now: handle it, reject it (evb_consumer_reject), or ack it. Nothing is
 * skipped silently.
 * Returns 0 (*N values; 0 when none came within TIMEOUT_MS), 1 (*N values,
 * then *ODD), -EINVAL (NULL C, VALUES, N or ODD, VALUE_BYTES 0, or MAX *
 * VALUE_BYTES over 2^31), or the errors of evb_consumer_next() other than
 * -EAGAIN and -ETIMEDOUT when no value was copied; an error after some
 * values ends the batch and comes back from the next call.
 * Thread-safety: as C.
 */
int evb_consumer_poll_values(evb_consumer *c, void *values, uint32_t value_bytes,
                             uint32_t max, evb_value_meta *meta, int32_t timeout_ms,
                             uint32_t *n, evb_event *odd);

/**
 * How far C is behind: the bytes between its read position and the tail,
 * summed over its partitions; what producers have claimed (committed or
 * still in flight) that C has not been given yet. 0 when C has caught up.
 * A reader whose evb_consumer_next() times out with a lag above 0 waits
 * at a claim not yet committed: it is committed, padded (dead_ms, or
 * stall_ms for a stalled live producer) or, when nothing explains it,
 * reported as -EBADMSG by a later call. A queue group member: the bytes
 * no member took yet. Returns 0 and *BYTES, or -EINVAL.
 */
int evb_consumer_lag(evb_consumer *c, uint64_t *bytes);

/**
 * Damage skipped (EVB_CONSUMER_SKIP_DAMAGE) that no event has carried yet,
 * summed over PARTITION (-1: all of C's): damage at the end of a durable
 * partition's disk log, which the next event (from the ring) would report
 * as lost_events and lost_bytes once one is published. Call it when
 * caught up (evb_consumer_next() timed out) to learn of the loss now. It
 * is handed over once: the next event no longer carries it, and a second
 * call gives 0. *EVENTS counts what the offsets tell so far (at the tail
 * they do); a count they do not tell yet still comes with the next event.
 * A seek hands what is owed to the next event after it. Returns 0 (*EVENTS
 * and *BYTES set, 0 when nothing is owed), -EINVAL (PARTITION not read
 * by C).
 */
int evb_consumer_skipped(evb_consumer *c, int32_t partition, uint64_t *events,
                         uint64_t *bytes);

/** Named consumers and group members: persist, for every partition, the
 *  position after the last event delivered (with EVB_CONSUMER_DEDUP, and
 *  the partition's duplicate table). A group member commits only
 *  on partitions it still owns: one taken over since (it was expelled,
 *  or was slow to give it back) is refused, never overwritten (-ESTALE,
 *  the others committed; its next call reports the loss). A process that
 *  outlived its bus directory (removed: a reboot's cleanup) commits
 *  nothing on a durable topic (-ESTALE: the data directory is a rebuilt
 *  bus's now; open the bus again).
 *  Returns 0, -EINVAL (not a named consumer or member), -ESTALE. */
int evb_consumer_commit(evb_consumer *c);

/**
 * Queue group members: EV (as delivered by next or poll, any time later)
 * is done: it is never delivered again. Past ack_wait the ack still
 * succeeds until another member takes the event. Returns 0, -EINVAL (not
 * a queue member's event, or one of another group or topic: its position
 * is checked), -ESTALE (no longer this member's: taken by another member
 * after ack_wait or this member's expulsion; or acknowledged already; or
 * the topic rebuilt from its log under this process, its bus directory
 * removed and the bus opened again: then it takes, settles and rejects
 * nothing more, and leaves the group; a removal alone is seen at its next
 * read, within 100 ms).
 * Thread-safe with respect to other members, not to other calls on C.
 */
int evb_consumer_ack(evb_consumer *c, const evb_event *ev);

/** Queue group members: EV failed; deliver it again (to any member) after
 *  DELAY_MS (0: at once), with its delivery count + 1, or to the
 *  dead-letter topic once max_deliveries is reached. Returns as
 *  evb_consumer_ack(). */
int evb_consumer_nack(evb_consumer *c, const evb_event *ev, uint32_t delay_ms);

/** Group members: the partitions C owns now, up to CAP of them into PARTS
 *  (may be NULL with CAP 0). Returns how many it owns, or -EINVAL. */
int evb_consumer_assignment(evb_consumer *c, uint32_t *parts, uint32_t cap);

/**
 * Move the read position of PARTITION (-1: all) per WHENCE (enum
 * evb_start, not DEFAULT, optionally | EVB_SEEK_STRICT) and VALUE. On a
 * topic that is not durable, an offset older than the ring holds lands on
 * the oldest event held and counts the gap as lost (a position the ring
 * no longer holds, the same, in lost_bytes only: how many events stood
 * before it is not known there). On a durable topic the
 * retained disk log counts too: an offset or time before the log start
 * lands there (its gap reported as lost_events on the next event), or with
 * EVB_SEEK_STRICT fails with -ERANGE. An offset past the end, or a time
 * after the newest event, lands at the tail. EVB_START_TIME lands on the
 * first event, in log order, whose timestamp_ns >= VALUE (sparse indexes
 * keep it cheap on disk). Returns 0, -EINVAL, -ERANGE, -EBADMSG,
 * -EMEDIUMTYPE (a segment or index file of the wrong kind).
 */
int evb_consumer_seek(evb_consumer *c, int32_t partition, uint32_t whence, uint64_t value);

/**
 * EVB_CONSUMER_DEDUP: events C dropped as duplicates (*DROPPED) and stable
 * producers it forgot because more than EVB_DEDUP_PRODUCERS were seen in a
 * partition (*EVICTED: their duplicates, if any come, are delivered),
 * summed over PARTITION (-1: all of C's), since C was opened. Either
 * pointer may be NULL. Returns 0, -EINVAL (no dedup, or PARTITION not read
 * by C).
 */
int evb_consumer_dedup_stat(evb_consumer *c, int32_t partition, uint64_t *dropped,
                            uint64_t *evicted);

/** Close a consumer (NULL accepted). Uncommitted progress of a named
 *  consumer is not committed. */
void evb_consumer_close(evb_consumer *c);

/* ------------------------------------------------------------------ */
/* Consumer groups: what `evbus groups` shows                          */
/* ------------------------------------------------------------------ */

/** One member of a group, evb_group_stat(). */
typedef struct evb_group_member_stat {
    uint64_t member_id;       /**< unique within the group, never reused */
    uint32_t pid;
    uint32_t partitions;      /**< partitions it owns now */
    char comm[16];            /**< its command name */
    uint32_t lease_ms;
    uint32_t alive;           /**< 1: its process lives (0: it will be expelled) */
    uint64_t silent_ms;       /**< since its last sign of life */
    uint64_t delivered;       /**< events handed to it (as of its last tick) */
    uint64_t commits;
    uint32_t in_flight;       /**< queue groups: events it holds unacknowledged */
    uint32_t reserved_;
} evb_group_member_stat;

/** One partition of a group, evb_group_stat(). */
typedef struct evb_group_partition_stat {
    uint64_t owner_id;        /**< 0: nobody owns it now */
    uint32_t owner_pid;       /**< 0: nobody, or its owner left no slot */
    uint32_t damaged;         /**< 1: a queue its members call damaged (the call
                                   then returns -EBADMSG, all filled in) */
    uint64_t epoch;           /**< changes of owner so far */
    uint64_t committed_position; /**< UINT64_MAX: nothing committed */
    uint64_t committed_offset;   /**< UINT64_MAX: not known (or nothing committed) */
    uint64_t lag_events;      /**< published offsets not committed yet */
    uint64_t fenced;          /**< commits refused: the committer no longer owned it */
    uint64_t rejected;        /**< events its members rejected to the dead-letter
                                   topic (a queue's are in dead_lettered) */
    /* Queue groups (committed_position is the floor: every event below it
     * is acknowledged; offsets are not kept, lag_events is 0): */
    uint64_t backlog_bytes;   /**< log bytes published and not taken yet */
    uint32_t in_flight;       /**< events delivered and not acknowledged */
    uint32_t dlq_due;         /**< events past max_deliveries whose dead-letter
                                   record is not written yet (it is at their
                                   next take); stays up while the dead-letter
                                   topic refuses them (see dlq_refusals) */
    uint64_t acked, nacked, redelivered, dead_lettered;
} evb_group_partition_stat;

/** A group as a whole, evb_group_stat(). */
typedef struct evb_group_summary {
    uint32_t members;         /**< members present (slots taken) */
    uint32_t partitions;
    uint64_t generation;      /**< changes of membership so far */
    uint64_t expelled;        /**< members expelled: dead, or silent past their lease */
    uint64_t handovers;       /**< partitions that changed owner */
    uint32_t kind;            /**< EVB_GROUP_MEMBER or EVB_QUEUE_MEMBER */
    uint32_t ack_wait_ms;     /**< queue groups */
    uint32_t max_deliveries;  /**< queue groups; 0: no limit */
    uint32_t max_in_flight;   /**< queue groups: per partition */
    /** Queue groups: tries to dead-letter an event past max_deliveries
     *  that the dead-letter topic refused (full, too small for it, a name
     *  too long, a full disk): tries, not events
     *  (evb_group_partition_stat.dlq_due says how many events wait). The
     *  member's evb_consumer_next() goes on with other events (as far
     *  as the floor the refused one holds lets it); the refused one
     *  waits ack_wait in the queue and is tried again. A
     *  refused evb_consumer_reject() is not counted: its caller has the
     *  error and the event. */
    uint64_t dlq_refusals;
    /** The error of the last refusal (-errno, evb_strerror() names it; 0:
     *  none yet). */
    int32_t dlq_refusal_error;
    uint32_t reserved0_;      /**< zero */
    uint64_t reserved_[3];    /**< zero: room for later fields */
} evb_group_summary;

/** Call FN for each group of TOPIC, in name order; stops early when FN
 *  returns non-zero. Returns the number visited, or -ENOENT, -errno. */
int evb_group_list(evb_bus *bus, const char *topic,
                   int (*fn)(const char *group, void *arg), void *arg);

/**
 * The state of group GROUP of TOPIC, read only (the group is not joined):
 * OUT, up to MCAP members into MEMBERS, and up to PCAP partitions (index =
 * partition) into PARTS; either may be NULL with a cap of 0. Returns the
 * number of members present (may exceed MCAP), -ENOENT (no such topic or
 * group), -EBADMSG / -EPROTO (not a group file this build reads, or a
 * dedup table (consumers/GROUP.gdup) that fails its check, which every
 * member's open refuses; the message says why), -EINVAL.
 *
 * A queue group with a partition its members call damaged is -EBADMSG
 * too, but with everything filled in: OUT->partitions is then non-zero
 * (it is 0 after every other error) and PARTS[p].damaged is 1 for each
 * such partition, so one damaged partition does not hide the others.
 */
int evb_group_stat(evb_bus *bus, const char *topic, const char *group, evb_group_summary *out,
                   evb_group_member_stat *members, uint32_t mcap,
                   evb_group_partition_stat *parts, uint32_t pcap);

/* ------------------------------------------------------------------ */
/* Dead-letter topics                                                 */
/* ------------------------------------------------------------------ */

/*
 * A consumer that cannot process an event rejects it: the event goes to
 * the dead-letter topic <topic>.dlq with why, where it came from and how
 * often it was delivered, and the consumer goes on. An error handler (or
 * a person, `evbus dlq list`) reads the DLQ; evb_dlq_resubmit() (`evbus
 * dlq resubmit`) puts events back on their topic, out of their original
 * order.
 *
 * <topic>.dlq is created by the first reject when it does not exist: one
 * partition (so a DLQ offset names one event: `--offset O` is enough),
 * the origin's durability, flush interval and file mode, room for the
 * origin's largest event plus the record header, reason and names (the
 * ring doubled from the origin's until that fits), and no retention.
 * Create it yourself first for another configuration; reject uses
 * whatever is there. Names: the origin's must leave room for ".dlq"
 * (EVB_NAME_MAX - 4 bytes). A topic whose name ends in ".dlq" is taken
 * for a DLQ: its events are not rejected again (no <topic>.dlq.dlq).
 * The DLQ of a topic that is not durable is a ring like any other: once
 * rejects lap it, the oldest are gone (`evbus dlq list` reports the
 * loss); a durable topic's DLQ keeps them on disk.
 *
 * A DLQ event's key is the rejected event's key; its value is a record
 * (bus/dlq_format.h) that evb_dlq_decode() reads: never parse it by hand.
 */

/** Suffix of a dead-letter topic's name. */
#define EVB_DLQ_SUFFIX ".dlq"
/** Longest reason accepted by evb_consumer_reject(), bytes without the NUL. */
#define EVB_DLQ_REASON_MAX 1024
/** Bytes a DLQ event needs beyond the rejected event's key and value: the
 *  record header, the origin's name, the reason, the rejecter's name and
 *  alignment. A DLQ made by reject has max_event_bytes = the origin's +
 *  this. */
#define EVB_DLQ_OVERHEAD_BYTES 1240

/**
 * Reject EV, which C delivered: append it to <topic>.dlq (created as
 * described above on first use) with REASON (a NUL-terminated text of at
 * most EVB_DLQ_REASON_MAX bytes; NULL means ""), the origin's partition,
 * offset and position, the time, C's name and pid, and a delivery count
 * of 1 (queue groups count deliveries), then count it as handled: C has
 * already moved past it, so a named consumer's next commit covers it,
 * and evb_consumer_rejects() counts it. On a topic of durability SYNC the
 * call returns once the DLQ event is on disk, so a commit after it never
 * loses the event. The way into the DLQ is at least once: a caller
 * killed after the DLQ event is written and before its commit (or ack)
 * is handed the event again and may reject it again, leaving two records
 * of one origin event (same origin partition, offset, position and
 * timestamp); EVB_RESUBMIT_ALL resubmits the first and skips the others.
 * EV's key and value are copied, so EV must still be valid (no other call
 * on C between evb_consumer_next() and this). The first reject opens a
 * producer on the DLQ that C keeps until closed, so later rejects cost a
 * publish. Any reader kind may reject; the caller needs the right to
 * publish (and, the first time, to create topics) on the bus.
 * Blocking: on the DLQ's ring when full, up to 1 s; on the first reject,
 * topic creation. Thread-safety: as C.
 * Returns 0, -EINVAL (NULL C or EV, EV not from C's partitions, REASON too
 * long, or C reads a DLQ), -ENAMETOOLONG (the origin's name leaves no room
 * for ".dlq"), -EMSGSIZE (an existing DLQ's max_event_bytes is too small
 * for this event), -ETIMEDOUT (the DLQ's ring stayed full), -EACCES,
 * -ESTALE (a queue group member's event that is no longer its own:
 * acknowledged or rejected already, taken by another member after
 * ack_wait, or the member was expelled; no record is written. While the
 * record is written the event stays the member's, for up to ack_wait +
 * 10 s and as long as its lease, renewed as the reject starts, lasts: an
 * append slower than that, a stopped process, may still see the event
 * handed on, and -ESTALE after its record), and
 * what evb_topic_create(), evb_producer_open() and evb_publish() return.
 */
int evb_consumer_reject(evb_consumer *c, const evb_event *ev, const char *reason);

/** Events C has rejected since it was opened, in *COUNT. Returns 0 or
 *  -EINVAL. */
int evb_consumer_rejects(evb_consumer *c, uint64_t *count);

/** A DLQ event decoded by evb_dlq_decode(). Strings are copied and
 *  NUL-terminated; key and value point into the event (valid as long as
 *  it is). */
struct evb_dlq_record {
    char origin_topic[EVB_NAME_MAX + 1];
    char rejecter[EVB_NAME_MAX + 1];   /**< the rejecting consumer's name, "" for
                                            a subscriber */
    char reason[EVB_DLQ_REASON_MAX + 1];
    uint32_t origin_partition;
    uint32_t deliveries;              /**< times it was delivered, >= 1 */
    uint64_t origin_offset;
    uint64_t origin_position;
    uint64_t origin_timestamp_ns;     /**< when it was first published */
    uint64_t reject_time_ns;          /**< CLOCK_REALTIME at the reject */
    uint64_t producer_seq;            /**< of the original publish */
    uint32_t producer_id;             /**< of the original publish */
    uint32_t rejecter_pid;
    uint16_t type;                    /**< the original event's type */
    uint16_t flags;                   /**< the original event's flags */
    uint32_t reason_len;
    const void *key;                  /**< the original key (EV's) */
    const void *value;                /**< the original value, inside EV's value */
    uint32_t key_len;
    uint32_t value_len;
};

/**
 * Decode EV, an event read from a dead-letter topic, into OUT. Every
 * length is checked against the event before any pointer is made, so
 * any bytes at all are safe to pass. Thread-safe, never blocks.
 * Returns 0, -EINVAL (NULL argument), -EBADMSG (not a DLQ record: wrong
 * magic, a length that does not add up, a bad name, a reason over
 * EVB_DLQ_REASON_MAX or holding a NUL), -EPROTO (a DLQ record of another
 * version).
 */
int evb_dlq_decode(const evb_event *ev, struct evb_dlq_record *out);

/** evb_dlq_resubmit() flags. */
#define EVB_RESUBMIT_ALL 1u  /**< every DLQ event present when the call starts;
                                  else only the one at OFFSET */
#define EVB_RESUBMIT_SETTLE 2u /**< a killed run's claim that can no longer be
                                    checked (-ESTALE below) counts as published:
                                    its event may be lost, never doubled. Give
                                    it after looking for the event yourself */

/** What evb_dlq_resubmit() did with one DLQ event. */
enum evb_resubmit_status {
    EVB_RESUBMIT_PUBLISHED = 1, /**< put back on the origin topic now */
    EVB_RESUBMIT_ALREADY = 2,   /**< an earlier run did (maybe one killed half way) */
    EVB_RESUBMIT_SKIPPED = 3,   /**< EVB_RESUBMIT_ALL: not a DLQ record of TOPIC
                                     (evb_dlq_decode() refused it, or it names
                                     another topic): left alone, the rest go on */
    EVB_RESUBMIT_DUPLICATE = 4, /**< EVB_RESUBMIT_ALL: a second record of an origin
                                     event an earlier DLQ record (at .offset)
                                     holds (see evb_consumer_reject): not
                                     published, not marked, reported each run */
};

/** One DLQ event dealt with by evb_dlq_resubmit(). */
typedef struct evb_resubmit_report {
    uint64_t dlq_offset;
    uint32_t status;          /**< enum evb_resubmit_status */
    uint32_t partition;       /**< PUBLISHED: where it went */
    uint64_t offset;          /**< PUBLISHED: its new offset; DUPLICATE: the DLQ
                                   offset of the earlier record */
    uint64_t position;        /**< PUBLISHED: its new position */
    int32_t error;            /**< SKIPPED: why (-EBADMSG, -EPROTO); else 0 */
    uint32_t reserved_;
} evb_resubmit_report;

/**
 * Put events of TOPIC's dead-letter topic back on TOPIC: the DLQ event at
 * OFFSET, or with EVB_RESUBMIT_ALL every one from the oldest held to the
 * DLQ's tail when the call starts (events rejected meanwhile wait for the
 * next call). Each is published with its original key, value and type to
 * its original partition (where its key hashed, or its producer put it;
 * by key hash when TOPIC no longer has that partition), as a new event:
 * new offset, position, time and producer. The DLQ is not changed; a
 * state file beside it (dlq_format.h) records what was resubmitted.
 *
 * Exactly once per DLQ event, whatever kills the caller where: before an
 * event's claim on TOPIC is committed, its position is recorded (synced
 * on a durable DLQ), and after the commit (and, on a durable topic, the
 * event's sync) the DLQ offset is marked done; a later call that finds a
 * recorded claim not marked reads TOPIC at that position to learn whether
 * the commit happened. An event already resubmitted is reported
 * EVB_RESUBMIT_ALREADY and not published again. With EVB_RESUBMIT_ALL a
 * record whose origin event (partition, offset, position, timestamp) an
 * earlier record of the DLQ names is EVB_RESUBMIT_DUPLICATE and not
 * published; OFFSET alone publishes the record asked for, repeat or not.
 * One call at a time per
 * DLQ: another running is -EBUSY. FN (may be NULL) hears of each event;
 * returning non-zero stops after it.
 * Blocking: publishes (TOPIC's ring full: up to 10 s), fdatasync on
 * durable topics (a few per event), and, after a killed run, up to 10 s
 * for TOPIC to settle the claim it left. Thread-safe.
 * Returns the number of events published (>= 0), -ENOENT (no such topic
 * or DLQ, or no DLQ event at OFFSET: never one, or no longer held),
 * -EBUSY, -EINVAL, -EBADMSG or -EPROTO (the event at OFFSET does not
 * decode, or names another origin topic; with EVB_RESUBMIT_ALL such
 * events are reported EVB_RESUBMIT_SKIPPED instead), -ESTALE (a killed run's claim is no longer held
 * by TOPIC, so whether it was committed cannot be told: nothing is
 * published until it is settled, EVB_RESUBMIT_SETTLE), -ETIMEDOUT, and
 * what evb_publish() and evb_producer_sync() return.
 */
int evb_dlq_resubmit(evb_bus *bus, const char *topic, uint64_t offset, uint32_t flags,
                     int (*fn)(const evb_resubmit_report *r, void *arg), void *arg);

/**
 * Whether the event at DLQ_OFFSET of TOPIC's dead-letter topic was
 * resubmitted (by a finished evb_dlq_resubmit(); one that is running may
 * have published one more). Returns 1, 0, -ENOENT (no such DLQ),
 * -EBADMSG (the state file is damaged: its header, its record of a claim,
 * its length or the part that holds DLQ_OFFSET; then the answer is not
 * known, never 0), -EPROTO (a state file of another version).
 */
int evb_dlq_resubmitted(evb_bus *bus, const char *topic, uint64_t dlq_offset);

/**
 * How many events of TOPIC's dead-letter topic were resubmitted (by
 * finished evb_dlq_resubmit() calls), into *COUNT; 0 when none ever was.
 * Reads the whole state file (a few bytes per 480 DLQ events), checking
 * it: a damaged one is -EBADMSG and *COUNT is then 0 and meaningless.
 * Returns 0, -ENOENT (no such DLQ), -EBADMSG, -EPROTO, -EINVAL.
 * Thread-safe; does not block beyond reading the file.
 */
int evb_dlq_resubmitted_count(evb_bus *bus, const char *topic, uint64_t *count);

/* ------------------------------------------------------------------ */
/* Durable topics: the flush daemon and segment dumps                 */
/* ------------------------------------------------------------------ */

/**
 * Be the flusher of every durable topic of BUS (topics created meanwhile
 * are picked up within a second) until *STOP becomes non-zero, then write
 * and sync what is committed and return 0. Producers' processes flush on
 * their own; this is for users who prefer one long-running process
 * (`evbus flushd`). Returns 0, or -errno from listing the bus.
 */
int evb_bus_flushd(evb_bus *bus, const volatile int *stop);

/**
 * Apply the retention of durable TOPIC now (see EVB_TOPIC_RETAIN_UNTIL_CONSUMED
 * for when it is applied anyway), to every partition no live flusher holds;
 * those a live flusher holds are retained by it within a second. Safe
 * against a concurrent flusher: each partition is done under its flush
 * lock. It removes segments, so a caller that may only read the topic
 * gets -EACCES. Returns how many partitions were left to a live flusher
 * (>= 0), -ENOENT, -EINVAL (not durable), -EACCES, -EMEDIUMTYPE.
 */
int evb_topic_retain(evb_bus *bus, const char *topic);

/** What evb_dump_segment() reports for each frame. */
enum evb_dump_kind {
    EVB_DUMP_DATA = 1, /**< an event */
    EVB_DUMP_PAD = 2,  /**< padding: a ring end, an aborted claim, a dead producer's hole */
    EVB_DUMP_END = 3,  /**< the valid log ends here; why says why */
};

typedef struct evb_dump_frame {
    uint32_t kind;            /**< enum evb_dump_kind */
    uint32_t bytes;           /**< frame bytes in the file (aligned); END: 0 */
    uint64_t position;
    uint64_t offset;          /**< DATA: its offset; PAD: the next event's offset */
    uint64_t timestamp_ns;
    uint64_t producer_seq;
    uint32_t producer_id;
    uint32_t events;          /**< PAD: events it voids */
    const void *key;
    const void *value;
    uint32_t key_len;
    uint32_t value_len;
    uint32_t crc32c;          /**< DATA: the stored checksum */
    uint16_t type;
    uint16_t reserved_;
    /** END: "end of file", "zero bytes" (the unwritten rest), "bad checksum",
     *  "stale stamp", "bad length", "event too large" (whole, but larger
     *  than the max_event_bytes the walk was given) */
    const char *why;
    uint64_t trailing_bytes;  /**< END: bytes after it up to the last non-zero one */
} evb_dump_frame;

/**
 * Walk the segment file PATH (<data>/<topic>/<partition>/<base>.log; the
 * topic's config is read from two directories up) and call FN for every
 * frame, then once with an END record. Nothing is modified. FN returns
 * non-zero to stop. Returns 0, -ENOENT, -EINVAL (not named like a segment),
 * -EBADMSG (not a segment of a durable topic), -ENOMEM, -EMEDIUMTYPE (the
 * segment or the topic's topic.conf is a FIFO, symlink or directory).
 */
int evb_dump_segment(const char *path, int (*fn)(const evb_dump_frame *f, void *arg),
                     void *arg);

/** The segment file paths of one partition of a durable topic, oldest
 *  first: *N malloc'd strings in a malloc'd array, the caller frees each
 *  and the array. Returns 0, -ENOENT (no such topic, or no topic.conf in
 *  its data directory), -EINVAL (not durable), -EBADMSG (a damaged
 *  topic.conf there), -ENOMEM, -EMEDIUMTYPE. */
int evb_segment_list(evb_bus *bus, const char *topic, uint32_t partition, char ***paths,
                     size_t *n);

/* ------------------------------------------------------------------ */
/* Placement: NUMA nodes, CPUs, huge pages                            */
/* ------------------------------------------------------------------ */

/** Where one partition's ring lives, for evb_partition_memory() (a
 *  struct tag, as struct evb_partition_stat, for the same reason). */
struct evb_partition_memory {
    int32_t bound_node;       /**< the node the ring's memory policy binds it to;
                                   -1: none (or not one node) */
    int32_t node;             /**< the one node holding every page of the ring;
                                   -1: pages on several nodes, or unknown */
    uint64_t bytes;           /**< the ring file's bytes */
    uint64_t huge_bytes;      /**< of those, in huge pages (mapped as such here) */
    uint64_t reserved_[4];
};

/**
 * Fill OUT with where PARTITION of TOPIC lives: the node its memory is
 * bound to, the node its pages are on, and how much of it is in huge
 * pages. Maps the ring and touches every page (a read), so it costs about
 * one page fault per 4 KiB the first time: a tool's call, not a hot one.
 * Thread-safe. Returns 0, -ENOENT, -EINVAL (no such partition), -EBADMSG,
 * -EPROTO, -EMEDIUMTYPE, or -errno from loading the topology.
 */
int evb_partition_memory(evb_bus *bus, const char *topic, uint32_t partition,
                         struct evb_partition_memory *out);

/**
 * Pin the calling thread to the CPUs of the NUMA node of PARTITION of
 * TOPIC: the topic's numa_node, else the node holding the ring's pages
 * (where the kernel put them at creation), else nothing is changed.
 * Those CPUs are the node's, within what the process may use (taskset,
 * cgroups). On a one-node machine this changes nothing and returns 0.
 * Never blocks beyond reading the topology once per process; thread-safe
 * (it binds only the caller). Returns 0, -ENOENT, -EINVAL, -EBADMSG,
 * -EPROTO, -EMEDIUMTYPE, or -errno from sched_setaffinity.
 */
int evb_pin_near(evb_bus *bus, const char *topic, uint32_t partition);

/**
 * The CPUs (numbers as sched_setaffinity takes them) for threads working
 * on PARTITION of TOPIC, best first, into CPUS (up to CAP entries): those
 * of the partition's node (as evb_pin_near() picks it; the whole machine
 * when it has none), one per core before any hyperthread sibling, so a
 * producer on the first and a consumer on the second share no core when
 * the node has two (what `evbus bench --pin auto` does). Only CPUs the
 * process may use. Thread-safe. Returns how many there are (may exceed
 * CAP; at least 1), or the errors of evb_pin_near().
 */
int evb_cpus_near(evb_bus *bus, const char *topic, uint32_t partition, int *cpus,
                  uint32_t cap);

#ifdef __cplusplus
}
#endif
#endif /* EVBUS_H */
