/*
 * cli_bus.c - opening the bus for a command, and which commands may create
 * it: create, flushd and bench make a missing bus; every other command
 * only opens one that exists, or one a reboot emptied whose durable topics
 * wait in the data directory. Creating and restoring themselves are the
 * library's.
 *
 * evb_bus_open() always creates what is missing and evb_bus_options has
 * no flag to say otherwise, so this file finds the bus directory and data
 * directory itself, by the rules evbus.h documents for them, and looks
 * before opening.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The bus named by --bus, else $EVBUS_BUS, else "default" (evbus.h,
 * evb_bus_open). */
static const char *bus_name(const cli *c)
{
    const char *name = c->bus_name;
    if (name == NULL || name[0] == '\0')
        name = getenv("EVBUS_BUS");
    return name != NULL && name[0] != '\0' ? name : "default";
}

/* The bus directory: a name without '/' lives in /dev/shm/evbus (root's)
 * or /dev/shm/evbus-<uid> (everyone else's), as evb_bus_open() puts it;
 * anything else is a path. False when it does not fit. */
static bool bus_dir(const cli *c, char *out, size_t cap)
{
    const char *name = bus_name(c);
    int n;
    if (strchr(name, '/') != NULL)
        n = snprintf(out, cap, "%s", name);
    else if (geteuid() == 0)
        n = snprintf(out, cap, "/dev/shm/evbus/%s", name);
    else
        n = snprintf(out, cap, "/dev/shm/evbus-%u/%s", (unsigned)geteuid(), name);
    return n >= 0 && (size_t)n < cap;
}

/* The data directory BUS recorded (<bus>/data_dir, one line) when it has
 * a durable topic: the one evb_bus_open() uses when none is given. */
static bool recorded_data_dir(const char *bus, char *out, size_t cap)
{
    char path[PATH_MAX + sizeof("/data_dir")];
    snprintf(path, sizeof(path), "%s/data_dir", bus);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, out, cap);
    close(fd);
    if (n < 2 || (size_t)n >= cap || out[0] != '/' || out[n - 1] != '\n')
        return false; /* evb_bus_open() reports what is wrong with it */
    out[n - 1] = '\0';
    return true;
}

/* The data directory for bus directory BUS (evbus.h, evb_bus_options):
 * --data-dir, $EVBUS_DATA_DIR, else the one BUS recorded, else per user,
 * named after BUS's last component. False when it does not fit. */
static bool data_dir(const cli *c, const char *bus, char *out, size_t cap)
{
    const char *d = c->data_dir;
    if (d == NULL || d[0] == '\0')
        d = getenv("EVBUS_DATA_DIR");
    int n;
    if (d != NULL && d[0] != '\0') {
        n = snprintf(out, cap, "%s", d);
    } else if (recorded_data_dir(bus, out, cap)) {
        return true;
    } else {
        const char *leaf = strrchr(bus, '/');
        leaf = leaf != NULL ? leaf + 1 : bus;
        const char *xdg = getenv("XDG_DATA_HOME");
        const char *home = getenv("HOME");
        if (geteuid() == 0)
            n = snprintf(out, cap, "/var/lib/evbus/%s", leaf);
        else if (xdg != NULL && xdg[0] != '\0')
            n = snprintf(out, cap, "%s/evbus/%s", xdg, leaf);
        else
            n = snprintf(out, cap, "%s/.local/share/evbus/%s", home ? home : "/tmp", leaf);
    }
    return n >= 0 && (size_t)n < cap;
}

/* DIR holds a durable topic (a TOPIC/topic.conf), which opening the bus
 * would bring back into a bus directory that a reboot emptied. */
static bool holds_durable_topic(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) /* one we may not look into: evb_bus_open() says why */
        return errno != ENOENT && errno != ENOTDIR;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char conf[NAME_MAX + sizeof("/topic.conf")];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(conf, sizeof(conf), "%s/topic.conf", e->d_name);
        if (fstatat(dirfd(d), conf, &st, 0) == 0)
            found = S_ISREG(st.st_mode);
        else
            found = errno != ENOENT && errno != ENOTDIR; /* as above */
    }
    closedir(d);
    return found;
}

/*
 * Whether a command that must not create the bus may open it: the bus
 * directory has its bus.meta, or the data directory has a topic to
 * restore. Anything that cannot be looked at (no permission, a path too
 * long) is left to evb_bus_open(), whose message says what is wrong.
 * Reports and returns false when there is no bus.
 */
static bool bus_exists(const cli *c)
{
    char bus[PATH_MAX], meta[PATH_MAX + sizeof("/bus.meta")], data[PATH_MAX];
    struct stat st;
    if (!bus_dir(c, bus, sizeof(bus)))
        return true;
    snprintf(meta, sizeof(meta), "%s/bus.meta", bus);
    if (stat(meta, &st) == 0 || (errno != ENOENT && errno != ENOTDIR))
        return true;
    if (!data_dir(c, bus, data, sizeof(data)) || holds_durable_topic(data))
        return true;
    /* All we know is that DATA has no durable topic: a bus a reboot
     * emptied whose topics live elsewhere needs that directory named. */
    cli_error(c, "no bus at %s, and no durable topic in %s to rebuild it from (evbus "
              "create makes one; after a reboot, give the data directory its durable "
              "topics used: --data-dir DIR)", bus, data);
    return false;
}

int cli_open_bus(cli *c, enum cli_bus_open how)
{
    c->bus = NULL;
    if (how == CLI_BUS_EXISTING && !bus_exists(c))
        return CLI_FAIL;
    evb_bus_options opts = { .data_dir = c->data_dir, .mode = c->bus_mode };
    int rc = evb_bus_open(&c->bus, c->bus_name, &opts);
    if (rc < 0) {
        c->bus = NULL;
        return cli_fail(c, rc, "bus %s", bus_name(c));
    }
    return 0;
}

void cli_close(cli *c)
{
    evb_bus_close(c->bus);
    c->bus = NULL;
}
