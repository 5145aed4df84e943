/*
 * bus.c - open a bus: its directory (made, resolved and checked by
 * bus_dir.c), bus.meta (bus-wide counters; read-only for a caller that may
 * only read the bus), the sharing a bus remade after a reboot takes back
 * from its data directory, and removing what a refused open made; the
 * sweep of leftovers of processes that died while creating or deleting a
 * topic is bus_dir.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "safe_open.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int evb_rmtree(const char *path)
{
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

/*
 * Ordering edges of bus.meta (bus_meta_format.h):
 *
 *   U1  creation: version and format are stored before the magic
 *       (release); pairs with every opener's acquire load of the magic, so
 *       whoever sees the magic sees the identity.
 *   U2  upgrade of a version 1 page: the format word is stored before the
 *       version (release); pairs with meta_check's acquire load of the
 *       version, so whoever sees version 2 sees the format word. Racing
 *       upgraders store identical values.
 *
 * A process of a version 1 build that has the page mapped keeps working
 * through an upgrade: next_producer_id did not move, so ids stay unique
 * across both builds. One that opens the bus after it refuses the page
 * (-EPROTO, it reads version 2): loud, but it changes nothing.
 */

/* Check the identity of a bus.meta whose magic (loaded with acquire, U1)
 * is set; the other fields are read only once the magic checks out. The
 * message is formatted here, from values loaded before the caller unmaps
 * the page. 0 for this build's version and for version 1. */
static int meta_check(const char *path, const struct evb_bus_meta *meta, uint64_t magic)
{
    if (magic != EVB_BUS_MAGIC)
        return evb_err_set(-EBADMSG, "%s: magic 0x%llx, expected 0x%llx", path,
                           (unsigned long long)magic, (unsigned long long)EVB_BUS_MAGIC);
    /* U2: acquire; an upgrader's format word comes with its version. */
    uint32_t version = atomic_load_explicit(&meta->version, memory_order_acquire);
    /* Relaxed: ordered by U1, or by U2 when version is 2; with version 1
     * it is 0 or, mid-upgrade, this build's word. */
    uint64_t format = atomic_load_explicit(&meta->format, memory_order_relaxed);
    if (version != EVB_BUS_VERSION && version != EVB_BUS_VERSION_1)
        return evb_err_set(-EPROTO, "%s: version %u, this build reads %u", path, version,
                           EVB_BUS_VERSION);
    if (format != EVB_BUS_FORMAT_WORD && (version == EVB_BUS_VERSION || format != 0))
        return evb_err_set(-EPROTO, "%s: format 0x%llx, this build reads 0x%llx", path,
                           (unsigned long long)format,
                           (unsigned long long)EVB_BUS_FORMAT_WORD);
    return 0;
}

/* Rewrite a version 1 page as this build's, in place: same layout, only
 * the version and the zero format word change. */
static void meta_upgrade(struct evb_bus_meta *meta)
{
    /* Relaxed: a stale 1 only makes this opener repeat another's
     * identical stores. */
    if (atomic_load_explicit(&meta->version, memory_order_relaxed) != EVB_BUS_VERSION_1)
        return;
    /* Relaxed: published by the version's release (U2). */
    atomic_store_explicit(&meta->format, EVB_BUS_FORMAT_WORD, memory_order_relaxed);
    /* U2: release; the format word before the version. */
    atomic_store_explicit(&meta->version, EVB_BUS_VERSION, memory_order_release);
}

/* A new page's identity, written before it is linked into place; every
 * other field's zero is a valid start. */
static void meta_init(void *map, void *arg)
{
    (void)arg;
    struct evb_bus_meta *meta = map;
    /* Relaxed: no one sees the file before it is linked (file_create.c);
     * the magic's release (U1) orders them anyway. */
    atomic_store_explicit(&meta->version, EVB_BUS_VERSION, memory_order_relaxed);
    atomic_store_explicit(&meta->format, EVB_BUS_FORMAT_WORD, memory_order_relaxed);
    /* U1: release; version and format before the magic. */
    atomic_store_explicit(&meta->magic, EVB_BUS_MAGIC, memory_order_release);
}

/*
 * Map <bus>/bus.meta, creating it whole when missing (file_create.c: made
 * under a temporary name, then linked). Its name never shows a page
 * mid-creation, so an empty or zeroed bus.meta is damage: taking it as new
 * would hand out producer ids from 1 again, and (producer id, sequence)
 * pairs would repeat for consumers that drop duplicates.
 */
static int map_meta(evb_bus *bus)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/bus.meta", bus->path);
    size_t bytes = EVB_BUS_META_BYTES;
    /* Into a bus of someone untrusted (bus->foreign) nothing is written:
     * its bus.meta is only read. */
    int fd = bus->foreign ? -EACCES
                          : evb_file_open_or_create(path, bus->opts.mode, bytes, false,
                                                    meta_init, NULL);
    if (fd == -EACCES) {
        /* A reader of a bus shared 0640: it may read what is there, but
         * it takes no producer id. */
        fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
        if (fd < 0)
            return evb_open_fail(fd, path);
        bus->meta_ro = true;
    }
    if (fd < 0)
        return fd;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = evb_err_set(-errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_size != (off_t)bytes) {
        /* Created whole, never resized: anything else was not written by
         * a bus (and mapping past its end would fault). */
        rc = evb_err_set(-EBADMSG, "%s: %lld bytes, expected %zu%s", path,
                         (long long)st.st_size, bytes,
                         st.st_size == 0 ? " (empty, not a bus.meta)" : "");
        goto out;
    }
    void *m = mmap(NULL, bytes, bus->meta_ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd, 0);
    if (m == MAP_FAILED) {
        rc = evb_err_set(-errno, "%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    struct evb_bus_meta *meta = m;
    /* U1: acquire; pairs with the release store in meta_init (in whichever
     * process created the file): a set magic comes with its identity. */
    uint64_t magic = atomic_load_explicit(&meta->magic, memory_order_acquire);
    if ((rc = meta_check(path, meta, magic))) {
        munmap(m, bytes);
        goto out;
    }
    if (!bus->meta_ro)
        meta_upgrade(meta);
    bus->meta = meta;
out:
    close(fd);
    return rc;
}

/* The group and mode of the file or directory NAME in DIR_FD (opened
 * without following a symlink), if it is still ours. */
static int share_one(int dir_fd, const char *name, gid_t gid, mode_t mode, int kind)
{
    int fd = evb_open_file(dir_fd, name, O_RDONLY, 0, kind);
    if (fd < 0)
        return fd;
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (st.st_uid != geteuid())
        rc = -EPERM; /* not the one this open made */
    /* The group first: a chown drops the set-gid bit the chmod then sets. */
    else if (fchown(fd, (uid_t)-1, gid) < 0 || fchmod(fd, mode) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* A bus directory this open made, over a data directory that exists and
 * is shared with a group (a reboot emptied tmpfs): the bus directory and
 * bus.meta get the data directory's group and the shared modes a create
 * with that mode makes, whatever the umask and whoever restores;
 * bus->opts.mode follows, for the record and the restored topics. 0, or a
 * negative errno saying why not. */
static int share_as_data(evb_bus *bus)
{
    /* Only a bus directory this open made (bus->made: the first directory
     * made, so the bus's own too); one found is as its owner set it. Its
     * data directory was resolved and checked (evb_data_dir_resolve). */
    if (!bus->made || !bus->data[0])
        return 0;
    struct stat ds;
    if (fstatat(AT_FDCWD, bus->data, &ds, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(ds.st_mode))
        return 0; /* a new bus: its data directory comes with its first topic */
    /* Someone who may not write the data directory would own a bus in
     * front of its topics that their owner could not write into (or, for
     * a reader, not share at all): only a writer brings it back. */
    uid_t me = geteuid();
    if (ds.st_uid != me && me != 0 && (!(ds.st_mode & 0020) || bus->foreign))
        return evb_err_set(-EACCES, "the bus directory is gone (emptied by a reboot?), and "
                           "only uid %u, whose data directory %s you may not write, can "
                           "remake it", (unsigned)ds.st_uid, bus->data);
    if (!(ds.st_mode & 0070))
        return 0; /* private: the bus stays as its opener asked */
    uint32_t file_mode = 0600 | ((ds.st_mode & 0040) ? 0040 : 0) |
                         ((ds.st_mode & 0020) ? 0020 : 0) | ((ds.st_mode & 0004) ? 0004 : 0);
    int dfd = evb_open_file(AT_FDCWD, bus->path, O_RDONLY, 0, EVB_FILE_DIR);
    if (dfd < 0)
        return evb_open_fail(dfd, bus->path);
    int rc = share_one(dfd, ".", ds.st_gid, evb_shared_dir_mode(file_mode), EVB_FILE_DIR);
    if (!rc) {
        rc = share_one(dfd, "bus.meta", ds.st_gid, file_mode, EVB_FILE_REG);
        if (rc == -ENOENT)
            rc = 0; /* not made yet: made later with bus->opts.mode */
    }
    close(dfd);
    if (rc)
        return evb_err_set(rc, "cannot share it with group %u as its data directory %s "
                           "is: %s", (unsigned)ds.st_gid, bus->data, strerror(-rc));
    bus->opts.mode = file_mode;
    return 0;
}

/* A refused open: bus.meta and the directories this open made (bus->made)
 * removed again, when nothing else is in them; left behind they would be
 * private, and lock out everyone the bus is shared with. */
static void unmake(evb_bus *bus)
{
    if (!bus->made)
        return;
    char path[PATH_MAX + 16];
    /* Only what this caller owns: a bus.meta it made (another opener's
     * would be another uid's, or its directory not ours to remove). */
    snprintf(path, sizeof path, "%s/bus.meta", bus->path);
    struct stat st;
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        st.st_uid == geteuid())
        unlink(path);
    evb_unmake_dirs(bus->path, bus->made);
}

EVB_EXPORT int evb_bus_open(evb_bus **out, const char *name_or_path,
                            const evb_bus_options *opts)
{
    EVB_NO_CANCEL;
    if (!out)
        return -EINVAL;
    *out = NULL;
    evb_err_clear();
    const char *name = name_or_path && *name_or_path ? name_or_path : getenv("EVBUS_BUS");
    if (!name || !*name)
        name = "default";
    evb_bus *bus = calloc(1, sizeof *bus);
    if (!bus)
        return -ENOMEM;
    int n;
    if (strchr(name, '/')) {
        n = snprintf(bus->path, sizeof bus->path, "%s", name);
    } else {
        int rc = evb_name_check(name, "bus");
        if (rc) {
            free(bus);
            return rc;
        }
        char root[PATH_MAX];
        n = evb_shm_root(root, sizeof root) ? -1
                                             : snprintf(bus->path, sizeof bus->path, "%s/%s",
                                                        root, name);
    }
    if (n < 0 || n >= (int)sizeof bus->path - 2 * EVB_NAME_MAX - 32) {
        free(bus);
        return evb_err_set(-ENAMETOOLONG, "bus path too long");
    }
    if (opts)
        bus->opts = *opts;
    if (!bus->opts.dead_ms)
        bus->opts.dead_ms = 200;
    if (!bus->opts.stall_ms)
        bus->opts.stall_ms = 5000;
    if (!bus->opts.mode)
        bus->opts.mode = 0600;
    int rc = evb_mode_check(bus->opts.mode, "bus");
    if (!rc)
        rc = evb_bus_dir_open(bus, !strchr(name, '/'));
    if (rc) {
        free(bus);
        return rc;
    }
    /* After bus.meta: the record (data_dir.c) lives beside it. A bus
     * directory made here over a shared data directory (after a reboot)
     * is shared as that directory is, before any topic is restored into
     * it. */
    if ((rc = map_meta(bus)) || (rc = evb_data_dir_resolve(bus)) ||
        (rc = share_as_data(bus))) {
        /* Refused: what this open made goes again, or it would lock out
         * everyone the directory should have been shared with. */
        evb_err_prefix(rc, "bus %s", bus->path);
        if (bus->meta)
            munmap(bus->meta, EVB_BUS_META_BYTES);
        unmake(bus);
        free(bus);
        return rc;
    }
    evb_bus_dir_tend(bus); /* sticky bits, leftovers (bus_dir.c) */
    pthread_mutex_init(&bus->lock, NULL);
    /* After a reboot tmpfs is empty: durable topics come back from disk,
     * and the directory they came from is the bus's again (its record
     * went with tmpfs). A bus directory this process may not write keeps
     * working unrecorded, as before. */
    if (!bus->foreign && evb_topics_restore_all(bus) > 0) {
        evb_data_dir_record(bus);
        evb_err_clear();
    }
    *out = bus;
    return 0;
}

EVB_EXPORT void evb_bus_close(evb_bus *bus)
{
    EVB_NO_CANCEL;
    if (!bus)
        return;
    if (bus->meta)
        munmap(bus->meta, EVB_BUS_META_BYTES);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

EVB_EXPORT const char *evb_bus_path(const evb_bus *bus)
{
    return bus->path;
}

EVB_EXPORT const char *evb_bus_data_dir(const evb_bus *bus)
{
    return bus->data;
}
