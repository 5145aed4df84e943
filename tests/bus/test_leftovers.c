/*
 * test_leftovers.c - a process killed (SIGKILL at a crash point) between
 * making a group file's temporary and renaming it into place leaves
 * consumers/.tmp.<group>.grp.<pid>.<n>; the next open of a file in that
 * directory removes it, for ring-only topics (tmpfs) and durable ones
 * (the data directory). A live process's temporary, and names that are
 * not a temporary's, stay.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kill_fixture.h"
#include "t_helpers.h"

TestSuite(leftovers, .init = kf_setup, .fini = kf_teardown, .timeout = 60);

/* Topic t's consumers/: in the bus, or somewhere in the data directory
 * (its layout is data_dir.c's business). */
static void consumers_dir(char *out, size_t cap, bool durable)
{
    if (!durable) {
        snprintf(out, cap, "%s/t/consumers", t_bus_dir());
        return;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "find '%s' -type d -name consumers -path '*/t/consumers'",
             t_data_dir());
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    cr_assert(fgets(out, (int)cap, f), "no consumers/ for t in the data directory");
    out[strcspn(out, "\n")] = '\0';
    pclose(f);
}

/* How many names in DIR start with PREFIX. */
static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

struct member_arg {
    bool durable;
    bool queue;
};

static int open_member(const struct member_arg *a)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = a->queue ? EVB_QUEUE_MEMBER : EVB_GROUP_MEMBER,
                               .name = "g"};
    int rc = evb_consumer_open(&c, bus, "t", &co);
    if (rc == 0)
        evb_consumer_close(c);
    return rc;
}

/* Killed at the rename: the group file's temporary is all it made. */
static int killed_creator(void *arg)
{
    const struct member_arg *a = arg;
    setenv("EVB_CRASH_AT", "file_create.before_rename", 1);
    /* With durable topics, opening the bus records its data directory
     * through evb_file_create first (and finds it recorded). */
    setenv("EVB_CRASH_SKIP", a->durable ? "1" : "0", 1);
    evb_bus *b;
    if (kf_bus_open(&b))
        return 10;
    bus = b;
    open_member(a);
    return 11;
}

static void killed_then_swept(bool durable, bool queue)
{
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20,
                           .durability = durable ? EVB_DURABILITY_ASYNC : EVB_DURABILITY_NONE};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0, "%s", evb_last_error());
    struct member_arg a = {durable, queue};
    for (int i = 0; i < 3; i++) {
        pid_t pid = t_spawn(killed_creator, &a);
        cr_assert_eq(t_wait_exit(pid, 20000), 128 + SIGKILL, "not killed at the rename");
    }
    char dir[4096];
    consumers_dir(dir, sizeof dir, durable);
    int left = count_prefix(dir, ".tmp.g.grp.");
    /* Each later creator sweeps the earlier ones' (one with the fix, three without). */
    cr_assert(left == 1 || left == 3, "the kills left %d temporaries in %s", left, dir);
    cr_assert_eq(count_prefix(dir, "g.grp"), 0);
    /* A live process's temporary (ours), and a name that only looks like
     * one, must stay. */
    char keep[4200], odd[4200];
    snprintf(keep, sizeof keep, "%s/.tmp.h.grp.%d.7", dir, (int)getpid());
    snprintf(odd, sizeof odd, "%s/.tmp.notours", dir);
    int fd = open(keep, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    fd = open(odd, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(open_member(&a), 0, "%s", evb_last_error());
    cr_expect_eq(count_prefix(dir, ".tmp.g.grp."), 0, "the dead creators' temporaries stay");
    cr_expect_eq(count_prefix(dir, "g.grp"), 1, "the group file was not made");
    cr_expect_eq(access(keep, F_OK), 0, "a live process's temporary was removed");
    cr_expect_eq(access(odd, F_OK), 0, "a name that is not a temporary's was removed");
}

Test(leftovers, queue_group_ring_only)
{
    killed_then_swept(false, true);
}

Test(leftovers, queue_group_durable)
{
    killed_then_swept(true, true);
}

Test(leftovers, partition_group_ring_only)
{
    killed_then_swept(false, false);
}
