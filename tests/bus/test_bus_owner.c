/*
 * test_bus_owner.c - whom a bus directory trusts (issue 9, #14): a bus
 * directory owned by another user, one under a directory another user
 * could rename it in, or one writable by everyone is refused with -EACCES
 * naming why, and nothing is written there (a bus.meta symlinked to a file
 * of ours stays as it was). Changing owners needs root: those tests skip,
 * saying so, otherwise.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "t_helpers.h"
#include "t_uid.h"

#define OTHER_UID T_NOBODY
#define OTHER_GID T_NOBODY

TestSuite(bus_owner, .fini = t_bus_cleanup, .timeout = 60);

static void need_root(void)
{
    t_need_root("give a directory to another uid");
}

static int open_at(const char *path, evb_bus **bus)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    *bus = NULL;
    return evb_bus_open(bus, path, &o);
}

static void path_of(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", t_bus_dir(), rel);
}

static void refused(const char *bus_path, const char *why)
{
    evb_bus *bus;
    evb_err_clear();
    int rc = open_at(bus_path, &bus);
    cr_assert_eq(rc, -EACCES, "%s: returned %d, expected -EACCES", bus_path, rc);
    cr_assert(strstr(evb_last_error(), why), "message '%s' lacks '%s'", evb_last_error(), why);
    char meta[600];
    snprintf(meta, sizeof meta, "%s/bus.meta", bus_path);
    struct stat st;
    cr_assert_neq(lstat(meta, &st), 0, "%s was made in a refused bus", meta);
}

/* Another user's bus B (made with MODE) whose bus.meta (path in META) is
 * a symlink to TARGET, a file of ours holding "keep". */
static void plant_meta_link(char b[512], mode_t mode, char target[512], char meta[600])
{
    path_of(b, 512, "b");
    path_of(target, 512, "root-file");
    cr_assert_eq(mkdir(b, mode), 0);
    int fd = open(target, O_WRONLY | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "keep", 4), 4);
    close(fd);
    snprintf(meta, 600, "%s/bus.meta", b);
    cr_assert_eq(symlink(target, meta), 0);
    cr_assert_eq(lchown(meta, OTHER_UID, OTHER_GID), 0);
    cr_assert_eq(chown(b, OTHER_UID, OTHER_GID), 0);
}

static void target_kept(const char *target)
{
    struct stat st;
    cr_assert_eq(stat(target, &st), 0);
    cr_assert_eq(st.st_size, 4, "the symlink's target was written");
}

Test(bus_owner, owned_by_another_user)
{
    need_root();
    char b[512];
    path_of(b, sizeof b, "b");
    cr_assert_eq(mkdir(b, 0700), 0);
    cr_assert_eq(chown(b, OTHER_UID, OTHER_GID), 0);
    refused(b, "owned by uid 65534");
}

/* Root follows nothing planted by the bus's owner: the open is refused
 * before bus.meta is looked at, so the file it points to is unchanged. */
Test(bus_owner, planted_bus_meta_symlink_changes_nothing)
{
    need_root();
    char b[512], target[512], meta[600];
    plant_meta_link(b, 0750, target, meta);
    evb_bus *bus;
    cr_assert_eq(open_at(b, &bus), -EACCES, "%s", evb_last_error());
    target_kept(target);
}

/* One every user may read is opened read-only (SECURITY.md): the planted
 * link is refused all the same, and nothing is written into it. */
Test(bus_owner, readable_bus_of_another_user_is_only_read)
{
    need_root();
    char b[512], target[512], meta[600];
    plant_meta_link(b, 0755, target, meta);
    evb_bus *bus;
    cr_assert_eq(open_at(b, &bus), -EMEDIUMTYPE, "%s", evb_last_error());
    target_kept(target);
    /* With a real bus.meta (theirs), it opens, and root creates nothing. */
    cr_assert_eq(unlink(meta), 0);
    cr_assert_eq(chown(b, 0, 0), 0);
    cr_assert_eq(open_at(b, &bus), 0, "%s", evb_last_error());
    evb_bus_close(bus);
    cr_assert_eq(chmod(meta, 0644), 0);
    cr_assert_eq(lchown(meta, OTHER_UID, OTHER_GID), 0);
    cr_assert_eq(chown(b, OTHER_UID, OTHER_GID), 0);
    cr_assert_eq(open_at(b, &bus), 0, "%s", evb_last_error());
    cr_assert_eq(evb_topic_create(bus, "t", NULL), -EACCES);
    evb_producer *p;
    cr_assert_lt(evb_producer_open(&p, bus, "t", NULL), 0);
    evb_bus_close(bus);
    struct stat st;
    char t[700];
    snprintf(t, sizeof t, "%s/t", b);
    cr_assert_neq(stat(t, &st), 0, "a topic was made in it");
}

Test(bus_owner, under_a_directory_of_another_user)
{
    need_root();
    char p[512], b[600];
    path_of(p, sizeof p, "theirs");
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(b, sizeof b, "%s/b", p);
    cr_assert_eq(mkdir(b, 0700), 0);
    cr_assert_eq(chown(p, OTHER_UID, OTHER_GID), 0);
    refused(b, "could swap");
}

/* Writable by everyone: sticky (as /tmp) is fine, not sticky is not. */
Test(bus_owner, under_a_world_writable_directory)
{
    char p[512], b[600];
    path_of(p, sizeof p, "open");
    cr_assert_eq(mkdir(p, 0700), 0);
    cr_assert_eq(chmod(p, 0777), 0);
    snprintf(b, sizeof b, "%s/b", p);
    refused(b, "not sticky");
    cr_assert_eq(chmod(p, 01777), 0);
    evb_bus *bus;
    cr_assert_eq(open_at(b, &bus), 0, "%s", evb_last_error());
    evb_bus_close(bus);
}

Test(bus_owner, writable_by_everyone)
{
    char b[512];
    path_of(b, sizeof b, "b");
    cr_assert_eq(mkdir(b, 0700), 0);
    cr_assert_eq(chmod(b, 0777), 0);
    refused(b, "writable by every user");
}

/* The caller's own directory reached through a symlink is still the
 * caller's: the path is resolved first, then checked. */
Test(bus_owner, own_bus_through_a_symlink)
{
    char b[512], l[512];
    path_of(b, sizeof b, "real");
    path_of(l, sizeof l, "link");
    cr_assert_eq(mkdir(b, 0700), 0);
    cr_assert_eq(symlink(b, l), 0);
    evb_bus *bus;
    cr_assert_eq(open_at(l, &bus), 0, "%s", evb_last_error());
    cr_assert_str_eq(evb_bus_path(bus), b);
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "t", &cfg), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0, "%s", evb_last_error());
    evb_producer_close(p);
    evb_bus_close(bus);
}

/* The data directory is trusted as the bus directory is: one owned by
 * another user, or under one, is refused before anything is written
 * there. */
static int open_with_data(const char *data)
{
    char b[512];
    path_of(b, sizeof b, "b");
    evb_bus_options o = {.data_dir = data};
    evb_bus *bus = NULL;
    int rc = evb_bus_open(&bus, b, &o);
    if (rc)
        return rc;
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = 64 << 10,
                            .durability = EVB_DURABILITY_ASYNC};
    rc = evb_topic_create(bus, "t", &cfg);
    evb_bus_close(bus);
    return rc;
}

Test(bus_owner, data_dir_of_another_user)
{
    need_root();
    char d[600];
    snprintf(d, sizeof d, "%s/theirs", t_data_dir());
    cr_assert_eq(mkdir(d, 0750), 0);
    cr_assert_eq(chown(d, OTHER_UID, OTHER_GID), 0);
    cr_assert_eq(open_with_data(d), -EACCES);
    cr_assert(strstr(evb_last_error(), "data directory"), "%s", evb_last_error());
    /* One every user may read: read, not written into. */
    cr_assert_eq(chmod(d, 0755), 0);
    cr_assert_eq(open_with_data(d), -EACCES);
    char t[700];
    snprintf(t, sizeof t, "%s/t", d);
    struct stat st;
    cr_assert_neq(stat(t, &st), 0, "a topic was made in it");
}

Test(bus_owner, data_dir_made_under_a_directory_of_another_user)
{
    need_root();
    char p[600], d[700];
    snprintf(p, sizeof p, "%s/theirs", t_data_dir());
    snprintf(d, sizeof d, "%s/data", p);
    cr_assert_eq(mkdir(p, 0755), 0);
    cr_assert_eq(chown(p, OTHER_UID, OTHER_GID), 0);
    cr_assert_eq(open_with_data(d), -EACCES);
    cr_assert(strstr(evb_last_error(), "could swap"), "%s", evb_last_error());
}
