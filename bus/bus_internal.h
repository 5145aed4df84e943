/*
 * bus_internal.h - what the bus/ files share: the bus handle, a mapped
 * topic (config plus its partition rings) and the export macro. Disk
 * work is bus/durable's (durable.h), reached through durability.c.
 */
#ifndef EVB_BUS_INTERNAL_H
#define EVB_BUS_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus_meta_format.h"
#include "durable.h"
#include "err.h"
#include "evbus.h"
#include "nocancel.h"
#include "ring.h"

#define EVB_EXPORT __attribute__((visibility("default")))

struct evb_flusher;

struct evb_bus {
    char path[PATH_MAX];
    char data[PATH_MAX];        /* durable topics live under here */
    evb_bus_options opts;       /* opts.data_dir points at data */
    struct evb_bus_meta *meta;  /* mapped read-only when meta_ro */
    bool meta_ro;               /* may read the bus, not write it: no producers */
    bool foreign;               /* a bus of someone untrusted that every user may
                                   read (bus_dir.c): read, never write, into it */
    size_t made;                /* length of the prefix of path naming the first
                                   directory this open made; 0 none (bus.c) */
    pthread_mutex_t lock;       /* guards flushers */
    struct evb_flusher *flushers; /* this process's, one per durable topic */
};

/* A topic opened for use: its config and every partition's ring mapped. */
struct evb_topic_map {
    char name[EVB_NAME_MAX + 1];
    char dir[PATH_MAX];         /* <bus>/<topic> in tmpfs */
    char ddir[PATH_MAX];        /* <data>/<topic> when durable, else "" */
    evb_topic_config cfg;
    uint32_t nparts;
    bool readonly;              /* rings mapped read-only: this caller may not
                                   write them (no producer, no gating reader) */
    struct evb_ring rings[];
};

int evb_name_check(const char *name, const char *what);

/* ---- bus_dir.c: modes and whom a bus trusts ---- */
/* 0, or -EINVAL naming WHAT: MODE must be 0600 plus group read (0640),
 * group read-write (0660), and maybe others' read (0644, 0664). */
int evb_mode_check(uint32_t mode, const char *what);
/* A directory for files of FILE_MODE: search with read, set-gid when a
 * group is let in (what members make keeps the group). */
uint32_t evb_dir_mode(uint32_t file_mode);
/* A bus or data directory: as evb_dir_mode(), and sticky when a group may
 * write it, so a member renames and removes only its own topics. */
uint32_t evb_shared_dir_mode(uint32_t file_mode);
/* A durable topic's consumers/: as evb_dir_mode(), plus write for whoever may read, and
 * sticky, so a read-only consumer can keep its cursor file there. */
uint32_t evb_drop_dir_mode(uint32_t file_mode);
/* Make each missing directory of PATH: the last with DIR_MODE exactly,
 * those above with its read and search bits, none through a symlink
 * (-EMEDIUMTYPE). 0 or a negative errno. */
int evb_make_dirs(const char *path, uint32_t dir_mode);
/* The same, and *MADE the length of the prefix of PATH naming the first
 * directory made (0: none), for evb_unmake_dirs() to take them back. */
int evb_make_dirs_noted(const char *path, uint32_t dir_mode, size_t *made);
void evb_unmake_dirs(const char *path, size_t made);
/* PATH made absolute, the longest prefix that exists resolved (symlinks,
 * ".", "..") and the rest appended. WHAT names it in messages. */
int evb_path_canonical(const char *path, const char *what, char *out, size_t cap);
/* The checks evb_bus_dir_open() makes, of the absolute, resolved PATH (a
 * bus or data directory; WHAT names it in messages). 0 and *OUT (may be
 * NULL) its stat; -ENOENT (no message) when it does not exist; -EACCES
 * saying why. READ_ONLY NULL: the caller will write into it. Else a
 * directory only fit for reading (someone else's that every user may
 * read) is accepted with *READ_ONLY true. */
struct stat;
int evb_dir_trusted(const char *path, const char *what, struct stat *out, bool *read_only);
/* The directory of this user's named buses: /dev/shm/evbus for root,
 * /dev/shm/evbus-<uid> for everyone else. */
int evb_shm_root(char *out, size_t cap);
/* Resolve bus->path in place (and when NAMED, make the root of named
 * buses), create it when missing (with evb_dir_mode(bus->opts.mode)) and
 * refuse it (-EACCES, saying why; what was made is removed) when it or a
 * directory above could be changed by someone untrusted. Sets
 * bus->opts.mode to the mode the directory has, bus->foreign, and
 * bus->made (what a later refusal removes: bus.c). */
int evb_bus_dir_open(evb_bus *bus, bool named);
/* At open, by a caller that may write the bus: a shared bus or data
 * directory of the caller's made sticky if it is not, and the leftovers
 * of dead creators and deleters that the caller may remove swept from
 * both. Never fails. */
void evb_bus_dir_tend(evb_bus *bus);
/* Whether the caller may delete TOPIC, whose tmpfs directory is DIR and
 * data directory DDIR ("" when not durable): root, the owner of each
 * side, or the owner of the directory it is in. 0, or -EACCES saying
 * whose it is (to a read-only caller: that it may read, not delete). */
int evb_topic_delete_check(const char *topic, const char *dir, const char *ddir);
/* topic.c: <bus>/<topic> after checking TOPIC's name; <data>/<topic>;
 * the largest frame CFG's max_event_bytes allows. 0 or -errno. */
int evb_topic_dir(evb_bus *bus, const char *topic, char *out, size_t cap);
int evb_data_topic_dir(evb_bus *bus, const char *topic, char *out, size_t cap);
uint32_t evb_topic_max_frame(const evb_topic_config *cfg);
/* topic_state.c: 0 when the rings in tmpfs topic directory DIR are those
 * its topic.conf (CFG) names, else -EBADMSG saying what disagrees. */
int evb_topic_rings_match(const char *topic, const char *dir, const evb_topic_config *cfg);
/* topic_map.c */
int evb_topic_map_open(evb_bus *bus, const char *topic, struct evb_topic_map **out);
void evb_topic_map_close(struct evb_topic_map *tm);
int evb_topic_config_read(const char *dir, evb_topic_config *cfg);
/* The same, and VERSION (NULL: not wanted) the file's first line says. */
int evb_topic_config_read_version(const char *dir, evb_topic_config *cfg, unsigned *version);
/* DIR/topic.conf written again, as this version writes it (its version
 * line), replaced in one rename and synced; the file's mode as at its
 * making. */
int evb_topic_config_upgrade(const char *dir, const evb_topic_config *cfg);
void evb_topic_config_defaults(evb_topic_config *cfg);
/* topic_config.c: 0, or -EINVAL naming the first field out of range. */
int evb_topic_config_check(const evb_topic_config *cfg);
/* The largest max_event_bytes a ring of RING_BYTES takes. */
uint64_t evb_topic_max_event(uint64_t ring_bytes);
/* The most bytes of frames one claim of a batch takes in such a ring: a
 * quarter of it, within a claim's 32-bit length. */
uint64_t evb_topic_max_run(uint64_t ring_bytes);
/* Write DIR/topic.conf, which must not exist yet (DIR is a topic being
 * built aside, renamed into place when complete). */
int evb_topic_config_write(const char *dir, const evb_topic_config *cfg);
int evb_rmtree(const char *path);

/* file_create.c: create PATH, BYTES long with MODE, initialised by
 * INIT(map, ARG) under a temporary name and then linked into place, so it
 * appears whole or not at all (SYNC: fdatasync first, for files on disk).
 * 0 created; -EEXIST it exists already (another creator won); else -errno
 * with the message set. */
int evb_file_create(const char *path, mode_t mode, size_t bytes, bool sync,
                    void (*init)(void *map, void *arg), void *arg);
/* Open PATH read-write, creating it whole first (as above) when missing.
 * The fd, or -errno with the message set. */
int evb_file_open_or_create(const char *path, mode_t mode, size_t bytes, bool sync,
                            void (*init)(void *map, void *arg), void *arg);
/* Rebuild the tmpfs side of durable topic TOPIC from its data directory
 * (after a reboot wiped tmpfs). 0 also when someone else did it first. */
int evb_topic_restore(evb_bus *bus, const char *topic);
/* Whether a rebuild that failed with RC left the topic intact, to be
 * rebuilt by a later open: another process holds a flush lock (-EBUSY),
 * or the bus's tmpfs has no room for the rings (-ENOSPC). Not damage. */
static inline bool evb_restore_later(int rc)
{
    return rc == -EBUSY || rc == -ENOSPC;
}
/* Restore every durable topic of the bus whose tmpfs side is missing.
 * Returns how many durable topics the data directory holds. */
int evb_topics_restore_all(evb_bus *bus);

/* ---- data_dir.c: the bus's data directory ---- */
/* Set bus->data: the record in <bus>/data_dir when there is one, else the
 * option, EVBUS_DATA_DIR or the per-user default (evbus.h). An option or
 * EVBUS_DATA_DIR naming another directory than the record: -EINVAL naming
 * both. Needs bus->path and bus->opts. */
int evb_data_dir_resolve(evb_bus *bus);
/* Record bus->data (resolved) as the bus's data directory, which must
 * exist. 0 also when that is already the record; -EINVAL naming both
 * when another directory is. */
int evb_data_dir_record(evb_bus *bus);
/* Whether bus->data may be the bus's: 0 when it is the record or there
 * is none, -EINVAL naming both when another directory is. Nothing is
 * written: a create checks first and records only once the directory
 * took its files (a read-only or unwritable one never becomes the
 * bus's; a record once made is never taken back, as another creator may
 * stand on it). */
int evb_data_dir_check(evb_bus *bus);

/* ---- durability.c: bus/'s side of bus/durable ---- */
/* Make this process a flush candidate for every partition of TM's durable
 * topic (refcounted per bus and topic); drop with evb_flusher_put(), which
 * flushes and syncs what is committed before the last holder lets go. */
int evb_flusher_get(evb_bus *bus, struct evb_topic_map *tm, struct evb_flusher **out);
void evb_flusher_put(evb_bus *bus, struct evb_flusher *f);
/* Its flush, for sync waiters that run its rounds themselves. */
struct evb_flush *evb_flusher_flush(const struct evb_flusher *f);
/* Flush partitions whose flush lock nobody holds (the flusher died and no
 * candidate is left): everything committed goes to disk, synced; then
 * apply the retention of those no live flusher holds (evb_retain_now). */
int evb_flush_orphans(struct evb_topic_map *tm);
/* Apply TM's retention to the partitions no live flusher holds, waiting up
 * to WAIT_MS for each one's flush lock (evb_retain_idle in durable.h).
 * Returns how many were left to a live flusher, or -errno. */
int evb_retain_now(struct evb_topic_map *tm, int wait_ms);
/* cursor_file.c: the smallest position a named consumer of TM has committed
 * in PART (cursor files); UINT64_MAX when none has. */
uint64_t evb_consumers_min_committed(struct evb_topic_map *tm, uint32_t part);
/* A reader's commit in PART from its file FD at PATH, UINT64_MAX: none;
 * 0 (hold the whole log) when the file could not be read (a read error),
 * so that a failed read never lets retention remove what it still needs. */
typedef uint64_t (*evb_commit_of_fn)(struct evb_topic_map *tm, uint32_t part, int fd,
                                     const char *path);
/* cursor_file.c: the smallest commit in PART of the files in TM's
 * consumers/ whose name ends in SUFFIX, as COMMIT_OF reads them; only a
 * frame boundary at or below the tail counts. UINT64_MAX when none; 0
 * when a file, or consumers/, could not be read (I/O error, no memory or
 * descriptors): retention holds rather than guess. */
uint64_t evb_scan_min_committed(struct evb_topic_map *tm, uint32_t part, const char *suffix,
                                evb_commit_of_fn commit_of);
/* cursor_file.c: a rebuild of the durable topic in DDIR (NPARTS
 * partitions) found PART's log ending at END_POS (offset END_OFF), under
 * its flush lock, before any ring of it exists: every reader's commit in
 * PART past that end (named consumers' cursors, groups' cursors, queue
 * groups' floor and fetch, in DDIR/consumers/) is set back to it, each
 * file as its own commits write it, and synced. *RESET counts the files
 * set back, *LEFT the ones that could not be opened, mapped or checked
 * (left as they are). A commit at or below the end is never touched. */
void evb_commits_reset(const char *ddir, uint32_t nparts, uint32_t part, uint64_t end_pos,
                       uint64_t end_off, uint64_t *reset, uint64_t *left);

/* <ddir>/<partition> */
static inline void evb_part_dir(const struct evb_topic_map *tm, uint32_t part, char *out,
                                size_t cap)
{
    evb_seg_part_dir(tm->ddir, part, out, cap);
}

/* stat.c: the timestamp and offset of the committed event at POS below
 * the tail TPOS of R, read as a reader would; false when there is none. */
bool evb_stat_frame(const struct evb_ring *r, uint64_t pos, uint64_t tpos, uint64_t *ts,
                    uint64_t *off);

#endif
