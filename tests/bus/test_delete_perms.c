/*
 * test_delete_perms.c - who may delete a topic on a bus its group shares
 * 0660 (issue 9, attack 3 F2). Root owns the bus; two children become
 * members of its group: A (uid 65534) makes topics, B (uid 65533) tries
 * to delete them. A reader of a 0640 topic, and a writer of another's
 * 0660 one, get -EACCES and the topic keeps its data; its owner deletes
 * it. The bus and data directories are sticky, and a bus made before
 * that (not sticky) refuses the same deletes and is made sticky by its
 * owner's next open. Needs root (setresuid); skips otherwise.
 * tests/cli/test_cli_perms3.sh does the same through the CLI, plus mv.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t_helpers.h"
#include "t_uid.h"

#define UID_A 65534
#define UID_B 65533

TestSuite(delete_perms, .fini = t_bus_cleanup, .timeout = 60);

static char bus_path[512], data_path[512];

static int open_bus(evb_bus **bus)
{
    evb_bus_options o = {.data_dir = data_path, .mode = 0660};
    *bus = NULL;
    return evb_bus_open(bus, bus_path, &o);
}

/* Root's side: a 0660 bus (group root's, 0) with its data directory,
 * both made by evbus, the directories above letting others through. */
static void setup(void)
{
    t_need_root("to run children as other uids");
    cr_assert_eq(chmod(t_bus_dir(), 0755), 0);
    cr_assert_eq(chmod(t_data_dir(), 0755), 0);
    snprintf(bus_path, sizeof bus_path, "%s/b", t_bus_dir());
    snprintf(data_path, sizeof data_path, "%s/d", t_data_dir());
    evb_bus *bus;
    cr_assert_eq(open_bus(&bus), 0, "%s", evb_last_error());
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = 64 << 10, .file_mode = 0660,
                            .durability = EVB_DURABILITY_ASYNC};
    cr_assert_eq(evb_topic_create(bus, "orders", &cfg), 0, "%s", evb_last_error());
    evb_bus_close(bus);
}

#define CHILD_CHECK(cond, code)                                                         \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "child: %s failed: %s\n", #cond, evb_last_error());         \
            return code;                                                                \
        }                                                                               \
    } while (0)

static int publish(evb_bus *bus, const char *topic, const char *value)
{
    evb_producer *p;
    int rc = evb_producer_open(&p, bus, topic, NULL);
    if (rc)
        return rc;
    evb_msg m = {.value = value, .value_len = (uint32_t)strlen(value),
                 .partition = EVB_PARTITION_ANY, .flags = EVB_MSG_SYNC};
    rc = evb_publish(p, &m);
    evb_producer_close(p);
    return rc;
}

/* A: create TOPIC with mode (uintptr_t)ARG, durable sync, one event. */
static const char *a_topic;
static int a_creates(void *arg)
{
    evb_bus *bus;
    CHILD_CHECK(open_bus(&bus) == 0, 1);
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = 64 << 10,
                            .file_mode = (uint32_t)(uintptr_t)arg,
                            .durability = EVB_DURABILITY_SYNC};
    CHILD_CHECK(evb_topic_create(bus, a_topic, &cfg) == 0, 2);
    CHILD_CHECK(publish(bus, a_topic, "secret") == 0, 3);
    evb_bus_close(bus);
    return 0;
}

static int a_deletes(void *arg)
{
    (void)arg;
    evb_bus *bus;
    CHILD_CHECK(open_bus(&bus) == 0, 1);
    CHILD_CHECK(evb_topic_delete(bus, a_topic) == 0, 2);
    evb_bus_close(bus);
    return 0;
}

/* B, who may only read A's topic: delete, forced delete and retain are
 * -EACCES, saying so in one line. */
static int b_reader_tries(void *arg)
{
    (void)arg;
    evb_bus *bus;
    CHILD_CHECK(open_bus(&bus) == 0, 1);
    CHILD_CHECK(evb_topic_delete(bus, a_topic) == -EACCES, 2);
    CHILD_CHECK(strstr(evb_last_error(), "you may read it, not delete it"), 3);
    CHILD_CHECK(evb_topic_remove(bus, a_topic, EVB_DELETE_FORCE) == -EACCES, 4);
    CHILD_CHECK(evb_topic_retain(bus, a_topic) == -EACCES, 5);
    CHILD_CHECK(strstr(evb_last_error(), "you may read it"), 6);
    evb_bus_close(bus);
    return 0;
}

/* B, who may not even read A's topic: not told it may read it. */
static int b_stranger_tries(void *arg)
{
    (void)arg;
    evb_bus *bus;
    CHILD_CHECK(open_bus(&bus) == 0, 1);
    CHILD_CHECK(evb_topic_delete(bus, a_topic) == -EACCES, 2);
    CHILD_CHECK(!strstr(evb_last_error(), "you may read it"), 3);
    CHILD_CHECK(strstr(evb_last_error(), "not yours to use"), 4);
    CHILD_CHECK(strstr(evb_last_error(), "only its owner"), 5);
    evb_bus_close(bus);
    return 0;
}

/* B, who may write A's topic: publishes and retains, may not delete. */
static int b_writer_tries(void *arg)
{
    (void)arg;
    evb_bus *bus;
    CHILD_CHECK(open_bus(&bus) == 0, 1);
    CHILD_CHECK(publish(bus, a_topic, "from-b") == 0, 2);
    CHILD_CHECK(evb_topic_retain(bus, a_topic) >= 0, 3);
    CHILD_CHECK(evb_topic_delete(bus, a_topic) == -EACCES, 4);
    CHILD_CHECK(strstr(evb_last_error(), "only its owner"), 5);
    evb_bus_close(bus);
    return 0;
}

/* FN as UID, in the bus's group (root's, 0) only. */
static void run_child(uid_t uid, int (*fn)(void *), void *arg, const char *what)
{
    int rc = t_wait_exit(t_spawn_as(uid, 0, fn, arg), 20000);
    cr_assert_eq(rc, 0, "%s: exit %d (the failed step's number)", what, rc);
}

static void expect_topic_intact(const char *topic, const char *first)
{
    char path[700];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/0.ring", bus_path, topic);
    cr_assert_eq(stat(path, &st), 0, "%s is gone", path);
    snprintf(path, sizeof path, "%s/%s/topic.conf", data_path, topic);
    cr_assert_eq(stat(path, &st), 0, "%s is gone", path);
    evb_bus *bus;
    cr_assert_eq(open_bus(&bus), 0, "%s", evb_last_error());
    evb_consumer *c;
    evb_consumer_options o = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, topic, &o), 0, "%s", evb_last_error());
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert(ev.value_len == strlen(first) && !memcmp(ev.value, first, ev.value_len));
    evb_consumer_close(c);
    evb_bus_close(bus);
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

Test(delete_perms, shared_bus_and_data_directories_are_sticky)
{
    setup();
    cr_assert_eq(mode_of(bus_path), 03770, "bus directory %o", mode_of(bus_path));
    cr_assert_eq(mode_of(data_path), 03770, "data directory %o", mode_of(data_path));
    char p[700];
    snprintf(p, sizeof p, "%s/orders/0", data_path);
    cr_assert_eq(mode_of(p), 02770, "partition directory %o: writers remove each "
                 "other's segments", mode_of(p));
}

Test(delete_perms, a_reader_may_not_delete)
{
    setup();
    a_topic = "ro";
    run_child(UID_A, a_creates, (void *)(uintptr_t)0640, "A creates");
    run_child(UID_B, b_reader_tries, NULL, "B, a reader");
    expect_topic_intact("ro", "secret");
    run_child(UID_A, a_deletes, NULL, "A deletes its own");
}

Test(delete_perms, a_stranger_may_not_delete_and_is_not_told_it_may_read)
{
    setup();
    a_topic = "mine";
    run_child(UID_A, a_creates, (void *)(uintptr_t)0600, "A creates");
    run_child(UID_B, b_stranger_tries, NULL, "B, neither reader nor writer");
    expect_topic_intact("mine", "secret");
    run_child(UID_A, a_deletes, NULL, "A deletes its own");
}

Test(delete_perms, a_writer_may_not_delete_anothers_topic)
{
    setup();
    a_topic = "w";
    run_child(UID_A, a_creates, (void *)(uintptr_t)0660, "A creates");
    run_child(UID_B, b_writer_tries, NULL, "B, a writer");
    expect_topic_intact("w", "secret");
    run_child(UID_A, a_deletes, NULL, "A deletes its own");
    char p[700];
    struct stat st;
    snprintf(p, sizeof p, "%s/w", bus_path);
    cr_assert_neq(stat(p, &st), 0, "%s is still there", p);
    snprintf(p, sizeof p, "%s/w", data_path);
    cr_assert_neq(stat(p, &st), 0, "%s is still there", p);
}

/* A bus made before shared directories were sticky: the library refuses
 * the same deletes, and its owner's next open makes it sticky. */
Test(delete_perms, a_bus_made_without_sticky_bits)
{
    setup();
    cr_assert_eq(chmod(bus_path, 02770), 0);
    cr_assert_eq(chmod(data_path, 02770), 0);
    a_topic = "ro";
    run_child(UID_A, a_creates, (void *)(uintptr_t)0640, "A creates");
    run_child(UID_B, b_reader_tries, NULL, "B, a reader");
    expect_topic_intact("ro", "secret"); /* root's open: sticky again */
    cr_assert_eq(mode_of(bus_path), 03770, "bus directory %o", mode_of(bus_path));
    cr_assert_eq(mode_of(data_path), 03770, "data directory %o", mode_of(data_path));
}
