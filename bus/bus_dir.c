/*
 * bus_dir.c - the bus directory and whom it trusts: made with exactly the
 * mode asked whatever the umask, resolved once to a path without symlinks,
 * and refused when it, or a directory above it, could be changed by
 * someone the caller does not trust (ssh's StrictModes, applied to a bus).
 * The modes of everything a bus or topic makes are derived here too, who
 * may delete a topic, and the sweep of what dead creators and deleters
 * left. What lives inside the directory is bus.c's and topic.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "safe_open.h"

int evb_mode_check(uint32_t mode, const char *what)
{
    if (mode & ~0666u)
        return evb_err_set(-EINVAL, "%s mode %04o: only read and write bits (no execute, "
                           "set-id or sticky)", what, mode);
    if ((mode & 0600u) != 0600u)
        return evb_err_set(-EINVAL, "%s mode %04o: the owner needs read and write (0600)",
                           what, mode);
    if (mode & 0002u)
        return evb_err_set(-EINVAL, "%s mode %04o: writable by every user; share with a "
                           "group instead (0660)", what, mode);
    if ((mode & 0060u) == 0020u)
        return evb_err_set(-EINVAL, "%s mode %04o: a group that writes must read (0660)",
                           what, mode);
    return 0;
}

uint32_t evb_dir_mode(uint32_t file_mode)
{
    uint32_t m = 0700;
    if (file_mode & 0040)
        m |= 0050;
    if (file_mode & 0020)
        m |= 0020;
    if (file_mode & 0004)
        m |= 0005;
    /* Set-gid: whatever a member makes inside keeps the directory's group,
     * whichever group is the member's own. */
    if (m & 0070)
        m |= S_ISGID;
    return m;
}

uint32_t evb_drop_dir_mode(uint32_t file_mode)
{
    uint32_t m = evb_dir_mode(file_mode);
    if (m & 0050)
        m |= 0020;
    if (m & 0005)
        m |= 0002;
    /* Sticky, as /tmp: each file there can be removed or renamed only by
     * its owner (or the directory's). */
    if (m & 0022)
        m |= S_ISVTX;
    return m;
}

uint32_t evb_shared_dir_mode(uint32_t file_mode)
{
    uint32_t m = evb_dir_mode(file_mode);
    /* Sticky, as /tmp: a member may create topics here, and rename or
     * remove only its own (the directory's owner and root any). Without
     * it any member could rename another's topic away, 0640 ones too,
     * and make one of its own under the name. Inside a topic no sticky
     * bit: its writers remove each other's segments (retention). */
    if (m & 0022)
        m |= S_ISVTX;
    return m;
}

/* ---- who is trusted ---- */

static bool caller_in_group(gid_t gid)
{
    if (gid == getegid())
        return true;
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

/* UID belongs to GID: its primary group, or listed as a member. */
static bool uid_in_group(uid_t uid, gid_t gid)
{
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    if (!buf)
        return false;
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    bool in = false;
    if (getpwuid_r(uid, &pw, buf, cap, &pwp) == 0 && pwp) {
        in = pw.pw_gid == gid;
        char name[256];
        snprintf(name, sizeof name, "%s", pw.pw_name);
        if (!in && getgrgid_r(gid, &gr, buf, cap, &grp) == 0 && grp)
            for (char **m = gr.gr_mem; m && *m && !in; m++)
                in = strcmp(*m, name) == 0;
    }
    free(buf);
    return in;
}

/*
 * The bus directory itself, for a caller that may write into it: owned by
 * the caller or root, or shared with a group (group bits set) of which both
 * the caller and the owner are members; writable by no one outside that.
 * The message says who owns it and what to do.
 */
static int check_bus_dir(const char *path, const char *what, const struct stat *st)
{
    uid_t me = geteuid();
    bool group_ok = (st->st_mode & 0070) && caller_in_group(st->st_gid);
    if (st->st_uid != me && st->st_uid != 0 && !(group_ok && uid_in_group(st->st_uid, st->st_gid)))
        return evb_err_set(-EACCES, "%s %s is owned by uid %u, not by you (uid %u) or root, "
                           "nor shared with a group of yours",
                           what, path, (unsigned)st->st_uid, (unsigned)me);
    if (st->st_mode & 0002)
        return evb_err_set(-EACCES, "%s %s is writable by every user (mode %04o)", what,
                           path, (unsigned)(st->st_mode & 07777));
    /* Its owner chose whom to share it with; anyone else must be one of
     * them, or a member could plant what this caller then trusts. */
    if ((st->st_mode & 0020) && st->st_uid != me && !caller_in_group(st->st_gid))
        return evb_err_set(-EACCES, "%s %s is writable by group %u, which you are not in",
                           what, path, (unsigned)st->st_gid);
    return 0;
}

/* A bus its owner lets every user read (topics 0644, 0664): whoever fails
 * check_bus_dir() may still read it, never write into it. A reader takes
 * what it reads on the word of whoever may write the directory (its owner
 * and a group it shares it with), as it would reading any file of theirs;
 * what it must never do is write where they could have planted something,
 * and evb_bus.foreign keeps it from that. Not when every user may write. */
static bool readable_by_all(const struct stat *st)
{
    return (st->st_mode & 0005) == 0005 && !(st->st_mode & 0002);
}

/*
 * A directory above the bus: nobody but root, the caller and the bus
 * directory's owner may rename what is in it, so nobody else can swap the
 * bus directory for one of theirs after it was checked. Writable by others
 * only with the sticky bit (as /tmp, /dev/shm), or by a group the caller
 * is in.
 */
static int check_parent(const char *path, const char *what, const struct stat *st,
                        uid_t bus_owner)
{
    uid_t me = geteuid();
    if (st->st_uid != me && st->st_uid != 0 && st->st_uid != bus_owner)
        return evb_err_set(-EACCES, "%s, above the %s, is owned by uid %u: it could swap "
                           "what is below for its own (remove it, or use a path under a "
                           "directory of yours)", path, what, (unsigned)st->st_uid);
    bool sticky = st->st_mode & S_ISVTX;
    if ((st->st_mode & 0002) && !sticky)
        return evb_err_set(-EACCES, "%s, above the %s, is writable by every user and not "
                           "sticky (mode %04o)", path, what, (unsigned)(st->st_mode & 07777));
    if ((st->st_mode & 0020) && !sticky && !caller_in_group(st->st_gid))
        return evb_err_set(-EACCES, "%s, above the %s, is writable by group %u, which you "
                           "are not in", path, what, (unsigned)st->st_gid);
    return 0;
}

/* fstat of every directory of the absolute, resolved PATH, "/" first, each
 * opened from the one before without following a symlink: what is checked
 * is what the path names. Returns how many, or a negative errno. */
static int stat_chain(const char *path, struct stat *sts, char (*names)[PATH_MAX], int cap)
{
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int n = 0;
    const char *p = path;
    for (;;) {
        if (n == cap || fstat(fd, &sts[n]) < 0) {
            close(fd);
            return n == cap ? -ENAMETOOLONG : -errno;
        }
        snprintf(names[n], PATH_MAX, "%.*s", p == path ? 1 : (int)(p - path), path);
        n++;
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char comp[NAME_MAX + 1];
        if (len > NAME_MAX) {
            close(fd);
            return -ENAMETOOLONG;
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        int next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        if (next < 0)
            return -e;
        fd = next;
        p += len;
    }
    close(fd);
    return n;
}

int evb_dir_trusted(const char *path, const char *what, struct stat *out, bool *read_only)
{
    struct stat sts[64];
    char (*nm)[PATH_MAX] = malloc(64 * sizeof *nm);
    if (!nm)
        return -ENOMEM;
    int rc = 0;
    int n = stat_chain(path, sts, nm, 64);
    if (read_only)
        *read_only = false;
    if (n < 0) {
        rc = n == -ENOENT ? n : evb_err_set(n, "%s %s: %s", what, path, strerror(-n));
    } else if (!S_ISDIR(sts[n - 1].st_mode)) {
        rc = evb_err_set(-ENOTDIR, "%s %s: not a directory", what, path);
    } else if ((rc = check_bus_dir(path, what, &sts[n - 1])) && read_only &&
               readable_by_all(&sts[n - 1])) {
        evb_err_clear();
        *read_only = true;
        rc = 0;
    }
    if (!rc && n > 0) {
        for (int i = n - 2; i >= 0 && !rc; i--)
            rc = check_parent(nm[i], what, &sts[i], sts[n - 1].st_uid);
        if (out)
            *out = sts[n - 1];
    }
    free(nm);
    return rc;
}

int evb_path_canonical(const char *path, const char *what, char *out, size_t cap)
{
    char buf[PATH_MAX], real[PATH_MAX];
    int n;
    if (path[0] == '/')
        n = snprintf(buf, sizeof buf, "%s", path);
    else if (getcwd(real, sizeof real))
        n = snprintf(buf, sizeof buf, "%s/%s", real, path);
    else
        return evb_err_set(-errno, "%s %s: %s", what, path, strerror(errno));
    if (n < 0 || (size_t)n >= sizeof buf)
        return evb_err_set(-ENAMETOOLONG, "%s path too long", what);
    /* Cut components off the end until what is left exists, resolve
     * that, and put the rest back. */
    size_t keep = (size_t)n;
    for (;;) {
        char prefix[PATH_MAX];
        memcpy(prefix, buf, keep);
        prefix[keep] = '\0';
        if (realpath(keep ? prefix : "/", real)) {
            n = snprintf(out, cap, "%s%s", strcmp(real, "/") ? real : "", buf + keep);
            break;
        }
        char *slash = errno == ENOENT ? strrchr(prefix, '/') : NULL;
        if (!slash) {
            n = snprintf(out, cap, "%s", buf); /* nothing to resolve it against */
            break;
        }
        keep = (size_t)(slash - prefix);
    }
    if (n < 0 || (size_t)n >= cap)
        return evb_err_set(-ENAMETOOLONG, "%s path too long", what);
    return 0;
}

/* Make each missing directory of PATH: the last with DIR_MODE exactly,
 * those above with its read and search bits; each relative to its parent
 * opened without following a symlink (evb_mkdir_mode). *MADE (may be
 * NULL) gets the length of PATH's prefix naming the first directory made
 * here, 0 when none was. */
int evb_make_dirs_noted(const char *path, uint32_t dir_mode, size_t *made)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (made)
        *made = 0;
    if (n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    uint32_t above = dir_mode & 0755;
    for (char *p = buf + 1;; p++) {
        bool last = !*p;
        if (!last && *p != '/')
            continue;
        *p = '\0';
        struct stat st;
        if (fstatat(AT_FDCWD, buf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT)
                return -errno;
            int rc = evb_mkdir_mode(buf, last ? dir_mode : above);
            if (rc && rc != -EEXIST)
                return rc;
            if (!rc && made && !*made)
                *made = (size_t)(p - buf);
        }
        if (last)
            return 0;
        *p = '/';
    }
}

int evb_make_dirs(const char *path, uint32_t dir_mode)
{
    return evb_make_dirs_noted(path, dir_mode, NULL);
}

void evb_unmake_dirs(const char *path, size_t made)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (!made || n >= sizeof buf)
        return;
    memcpy(buf, path, n + 1);
    /* Deepest first, up to the first one made; each only if empty. */
    while (n >= made) {
        if (rmdir(buf) < 0)
            return;
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf)
            return;
        *slash = '\0';
        n = (size_t)(slash - buf);
    }
}

int evb_shm_root(char *out, size_t cap)
{
    /* Root's named buses in /dev/shm/evbus, every other user's in a
     * directory of their own: a shared root directory is owned by whoever
     * made it first, who could then rename anyone's bus away and put their
     * own in its place. */
    uid_t me = geteuid();
    int n = me == 0 ? snprintf(out, cap, "/dev/shm/evbus")
                    : snprintf(out, cap, "/dev/shm/evbus-%u", (unsigned)me);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* -EACCES for a bus path this caller cannot reach or make, naming the
 * directory that stops it (the deepest one that exists) with its owner and
 * mode: a named-bus root squatted by another user says so. */
static int no_access(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    struct stat st;
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        *slash = '\0';
        if (!dir[0])
            break;
        if (lstat(dir, &st) == 0) {
            if (st.st_uid == geteuid())
                break;
            return evb_err_set(-EACCES, "cannot reach bus %s: %s is owned by uid %u "
                               "(mode %04o)", path, dir,
                               (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        }
    }
    return evb_err_set(-EACCES, "cannot reach bus %s: permission denied", path);
}

int evb_bus_dir_open(evb_bus *bus, bool named)
{
    uint32_t mode = bus->opts.mode;
    int rc;
    /* Resolved first (symlinks the caller chose are followed here, once);
     * then nothing is made through a symlink. */
    char real[PATH_MAX];
    if ((rc = evb_path_canonical(bus->path, "bus", real, sizeof real)))
        return rc;
    if (strlen(real) >= sizeof bus->path - 2 * EVB_NAME_MAX - 32)
        return evb_err_set(-ENAMETOOLONG, "bus path too long");
    snprintf(bus->path, sizeof bus->path, "%s", real);
    /* The root of named buses: its owner's, searchable by all, so a bus
     * shared with a group (or every user) can be reached by its path. */
    char root[PATH_MAX];
    size_t made_root = 0;
    if (named && !evb_shm_root(root, sizeof root)) {
        rc = evb_mkdir_mode(root, 0755);
        if (rc && rc != -EEXIST)
            return evb_err_set(rc, "%s: %s", root, strerror(-rc));
        if (!rc)
            made_root = strlen(root);
    }
    size_t made = 0;
    if ((rc = evb_make_dirs_noted(bus->path, evb_shared_dir_mode(mode), &made))) {
        if (rc == -EACCES)
            return no_access(bus->path);
        if (rc == -EVB_EFTYPE)
            return rc;
        return evb_err_set(rc, "bus %s: cannot create directory: %s", bus->path,
                           strerror(-rc));
    }
    if (made_root)
        made = made_root;
    bus->made = made;
    struct stat st;
    rc = evb_dir_trusted(real, "bus directory", &st, &bus->foreign);
    if (rc == -ENOENT)
        rc = evb_err_set(rc, "bus %s vanished", real);
    if (rc) {
        /* Refused: what this call made goes again. */
        evb_unmake_dirs(real, made);
        return rc;
    }
    /* The bus's mode is its directory's, whatever this opener asked:
     * bus.meta and the data directory made later follow it. */
    mode_t dm = st.st_mode;
    bus->opts.mode = 0600 | ((dm & 0040) ? 0040 : 0) | ((dm & 0020) ? 0020 : 0) |
                     ((dm & 0004) ? 0004 : 0);
    if (bus->foreign)
        bus->meta_ro = true;
    return 0;
}

/* ---- keeping shared directories as they should be ---- */

/* A bus or data directory of the caller's that its group may write but
 * that is not sticky (made before evbus made them so, or by hand): made
 * sticky now. Nobody else may change its mode; for them the library's
 * own check (evb_topic_delete_check) still holds, plain mv does not. */
static void keep_sticky(const char *path, const struct stat *st)
{
    if (st->st_uid != geteuid() || !(st->st_mode & 0022) || (st->st_mode & S_ISVTX))
        return;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_DIR);
    if (fd < 0)
        return;
    /* Still the one checked: same inode, same owner. */
    struct stat now;
    if (fstat(fd, &now) == 0 && now.st_ino == st->st_ino && now.st_dev == st->st_dev &&
        now.st_uid == st->st_uid)
        fchmod(fd, (now.st_mode & 07777) | S_ISVTX);
    close(fd);
}

/* ".tmp.<topic>.<pid>.<n>" and ".del.<topic>.<pid>.<n>" in DIR (owned by
 * DIR_UID): a dead pid's are garbage, and a ".del." one is garbage
 * whoever made it. Each is removed by whoever the sticky bit lets remove
 * it: its owner, DIR's owner or root; everyone else leaves it alone, so a
 * member's open neither fails on nor half-empties another's leftovers. */
static void sweep_leftovers(const char *dir, uid_t dir_uid)
{
    /* DIR is resolved and checked (evb_dir_trusted). */
    DIR *d = NULL;
    if (evb_open_dir(dir, &d))
        return;
    uid_t me = geteuid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, ".tmp.", 5) && strncmp(e->d_name, ".del.", 5))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            (me != 0 && me != st.st_uid && me != dir_uid))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s", e->d_name);
        /* The pid is the second-to-last dot field. */
        char *last = strrchr(name, '.');
        if (!last || last == name)
            continue;
        *last = '\0';
        char *pidp = strrchr(name, '.');
        if (!pidp)
            continue;
        long pid = strtol(pidp + 1, NULL, 10);
        if (pid > 0 && pid <= INT_MAX && evb_proc_start((int)pid) && e->d_name[1] == 't')
            continue; /* still being created by a live process */
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            evb_rmtree(path);
    }
    closedir(d);
}

void evb_bus_dir_tend(evb_bus *bus)
{
    struct stat st;
    if (bus->foreign)
        return;
    if (evb_dir_trusted(bus->path, "bus directory", &st, NULL) == 0) {
        keep_sticky(bus->path, &st);
        sweep_leftovers(bus->path, st.st_uid);
    }
    /* The data directory too: a delete that died between its renames
     * (or one another member's rights stopped half-way, before deletes
     * were checked) left the topic's segments there. */
    if (bus->data[0] && evb_dir_trusted(bus->data, "data directory", &st, NULL) == 0) {
        keep_sticky(bus->data, &st);
        sweep_leftovers(bus->data, st.st_uid);
    }
    evb_err_clear();
}

/* ---- who may delete a topic ---- */

/* Whether the caller may remove SIDE (a topic's directory) from its
 * parent: what the sticky bit allows, so that on a bus made before
 * shared directories were sticky the library still refuses what the
 * kernel would let any member do. 0 allowed or absent; else -EACCES and
 * *OWNER the side's owner. */
static int may_remove(const char *side, uid_t *owner)
{
    char parent[PATH_MAX];
    struct stat st, pst;
    snprintf(parent, sizeof parent, "%s", side);
    char *slash = strrchr(parent, '/');
    if (!slash || slash == parent)
        return 0;
    *slash = '\0';
    if (fstatat(AT_FDCWD, side, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        fstatat(AT_FDCWD, parent, &pst, 0) < 0)
        return 0; /* absent: the delete says so */
    uid_t me = geteuid();
    if (me == 0 || me == st.st_uid || me == pst.st_uid)
        return 0;
    *owner = st.st_uid;
    return -EACCES;
}

int evb_topic_delete_check(const char *topic, const char *dir, const char *ddir)
{
    uid_t owner = 0;
    bool on_disk = false;
    int rc = may_remove(dir, &owner);
    if (!rc && ddir[0] && (rc = may_remove(ddir, &owner)))
        on_disk = true;
    if (!rc)
        return 0;
    /* What the caller may do with the topic decides what it is told. */
    char ring[PATH_MAX + 16];
    snprintf(ring, sizeof ring, "%s/0.ring", dir);
    bool writer = faccessat(AT_FDCWD, ring, W_OK, AT_EACCESS) == 0 ||
                  (on_disk && faccessat(AT_FDCWD, ddir, W_OK, AT_EACCESS) == 0);
    bool reader = faccessat(AT_FDCWD, ring, R_OK, AT_EACCESS) == 0;
    if (!writer && reader)
        return evb_err_set(-EACCES, "topic %s: you may read it, not delete it (it is uid "
                           "%u's)", topic, (unsigned)owner);
    if (!writer)
        return evb_err_set(-EACCES, "topic %s is uid %u's and not yours to use: only its "
                           "owner, the owner of the directory it is in, or root may delete it",
                           topic, (unsigned)owner);
    return evb_err_set(-EACCES, "topic %s is uid %u's: only its owner, the owner of the "
                       "directory it is in, or root may delete it", topic, (unsigned)owner);
}
