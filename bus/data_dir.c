/*
 * data_dir.c - which data directory a bus's durable topics live in. The
 * directory belongs to the bus, not to each process: it is recorded (as an
 * absolute, resolved path) in <bus>/data_dir when the first durable topic
 * is created or restored, and every later open either uses the record or,
 * when given another directory, fails. Creating topics and restoring them
 * are topic.c's; this file only resolves and records the path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "safe_open.h"

/* The directory named by the option or EVBUS_DATA_DIR; NULL when neither
 * names one (the per-user default then applies). */
static const char *explicit_dir(const evb_bus *bus)
{
    const char *d = bus->opts.data_dir;
    if (!d || !*d)
        d = getenv("EVBUS_DATA_DIR");
    return d && *d ? d : NULL;
}

/* The per-user default, named after the bus directory's last component. */
static int default_dir(const evb_bus *bus, char *out, size_t cap)
{
    const char *leaf = strrchr(bus->path, '/');
    leaf = leaf ? leaf + 1 : bus->path;
    const char *home = getenv("HOME");
    const char *xdg = getenv("XDG_DATA_HOME");
    if (geteuid() == 0)
        return snprintf(out, cap, "/var/lib/evbus/%s", leaf);
    if (xdg && *xdg)
        return snprintf(out, cap, "%s/evbus/%s", xdg, leaf);
    return snprintf(out, cap, "%s/.local/share/evbus/%s", home ? home : "/tmp", leaf);
}

/* PATH as the record spells it, and as every open below it uses it:
 * absolute, with no symlink, "." or ".." left (evb_path_canonical), so two
 * spellings of one directory compare equal, and opens that follow no
 * symlink (safe_open.h) work under a data directory reached through
 * one. */
static int canonical(const char *path, char *out, size_t cap)
{
    return evb_path_canonical(path, "data directory", out, cap);
}

static _Thread_local char untrusted_why[PATH_MAX + 96];

/* Read <bus>/data_dir: "PATH\n", PATH absolute. 0 and OUT, -ENOENT when
 * there is no record, -EBADMSG (or another open error) when it is not
 * one. */
static int record_read(const evb_bus *bus, char *out, size_t cap, bool *trusted)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/data_dir", bus->path);
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd == -ENOENT)
        return -ENOENT;
    if (fd < 0)
        return evb_open_fail(fd, path);
    /* *TRUSTED: written by the bus directory's owner, root or the
     * caller (evb_data_dir_resolve follows only such a record). */
    struct stat rs, bs;
    if (fstat(fd, &rs) < 0 || stat(bus->path, &bs) < 0) {
        int e = errno;
        close(fd);
        return evb_err_set(-e, "%s: %s", path, strerror(e));
    }
    *trusted = rs.st_uid == 0 || rs.st_uid == bs.st_uid || rs.st_uid == geteuid();
    if (!*trusted)
        snprintf(untrusted_why, sizeof untrusted_why,
                 "%s was written by uid %u, not by the bus directory's owner (uid %u) or "
                 "root", path, (unsigned)rs.st_uid, (unsigned)bs.st_uid);
    ssize_t n = read(fd, out, cap);
    int e = errno;
    close(fd);
    if (n < 0)
        return evb_err_set(-e, "%s: %s", path, strerror(e));
    /* Created whole (file_create.c): anything short of a full line is not
     * a record a bus wrote. */
    if (n < 2 || (size_t)n >= cap || out[0] != '/' || out[n - 1] != '\n' ||
        memchr(out, '\0', (size_t)n))
        return evb_err_set(-EBADMSG, "%s: not a data directory record", path);
    out[n - 1] = '\0';
    return 0;
}

int evb_data_dir_resolve(evb_bus *bus)
{
    char rec[PATH_MAX];
    const char *given = explicit_dir(bus);
    bool trusted = false;
    int rc = record_read(bus, rec, sizeof rec, &trusted);
    int n;
    if (rc && rc != -ENOENT)
        return rc;
    if (rc == 0 && given) {
        char canon[PATH_MAX];
        if ((rc = canonical(given, canon, sizeof canon)))
            return rc;
        if (strcmp(canon, rec))
            return evb_err_set(-EINVAL,
                               "data directory %s given, but the bus keeps its durable "
                               "topics in %s",
                               given, rec);
    }
    /* GIVEN, else the record, else the default; resolved (canonical), so
     * that every open under it can refuse symlinks (safe_open.h). */
    char dflt[PATH_MAX];
    const char *use = given;
    if (!use && rc == 0 && !trusted) {
        /* A member who may write a bus directory someone else made
         * (tmpfiles.d at boot, README) could record a data directory of
         * his own before its owner opens it, and every member following
         * the record would read his topics under the owner's names. A
         * record another member wrote is used only where the caller
         * names the same directory (the check above). */
        return evb_err_set(-EACCES, "%s: its data directory is not followed; give it with "
                           "--data-dir (or EVBUS_DATA_DIR), or remove the record",
                           untrusted_why);
    }
    if (!use && rc == 0) {
        use = rec;
    } else if (!use) {
        n = default_dir(bus, dflt, sizeof dflt);
        if (n < 0 || n >= (int)sizeof dflt)
            return evb_err_set(-ENAMETOOLONG, "data directory path too long");
        use = dflt;
    }
    if ((rc = canonical(use, bus->data, sizeof bus->data)))
        return rc;
    /* Trusted as the bus directory is (bus_dir.c), once it exists;
     * topic.c checks one it makes. */
    bool ro = false;
    rc = evb_dir_trusted(bus->data, "data directory", NULL, &ro);
    if (rc && rc != -ENOENT)
        return rc;
    /* Someone else's that every user may read: read, never write, as in
     * a bus directory of theirs. */
    if (ro)
        bus->foreign = bus->meta_ro = true;
    if (strlen(bus->data) >= sizeof bus->data - 2 * EVB_NAME_MAX - 64)
        return evb_err_set(-ENAMETOOLONG, "data directory path too long");
    bus->opts.data_dir = bus->data;
    return 0;
}

static void record_init(void *map, void *arg)
{
    const char *line = arg;
    memcpy(map, line, strlen(line));
}

/* The record REC against bus->data (CANON, resolved): -EINVAL naming
 * both when they differ. */
static int record_is_ours(const evb_bus *bus, const char *rec, const char *canon)
{
    if (strcmp(rec, canon))
        return evb_err_set(-EINVAL,
                           "data directory %s, but the bus keeps its durable topics in %s",
                           bus->data, rec);
    return 0;
}

int evb_data_dir_check(evb_bus *bus)
{
    char canon[PATH_MAX], rec[PATH_MAX + 1];
    int rc = canonical(bus->data, canon, sizeof canon);
    if (rc)
        return rc;
    bool trusted;
    rc = record_read(bus, rec, sizeof rec, &trusted);
    if (rc == -ENOENT)
        return 0;
    return rc ? rc : record_is_ours(bus, rec, canon);
}

int evb_data_dir_record(evb_bus *bus)
{
    char canon[PATH_MAX], line[PATH_MAX + 1], rec[PATH_MAX + 1];
    int rc = canonical(bus->data, canon, sizeof canon);
    if (rc)
        return rc;
    int n = snprintf(line, sizeof line, "%s\n", canon);
    if (n < 0 || (size_t)n >= sizeof line)
        return evb_err_set(-ENAMETOOLONG, "data directory path too long");
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/data_dir", bus->path);
    /* The mode of bus.meta: whoever may open the bus reads the record. */
    rc = evb_file_create(path, bus->opts.mode & 0444, (size_t)n, false, record_init, line);
    if (rc != -EEXIST)
        return rc;
    /* Another process recorded first (or this bus was opened before the
     * record existed): it stands, and it must be ours. */
    bool trusted;
    if ((rc = record_read(bus, rec, sizeof rec, &trusted)))
        return rc;
    return record_is_ours(bus, rec, canon);
}
