/*
 * test_hostile_files.c - files of a bus directory replaced by a FIFO, a
 * symlink to a file outside the bus, or a directory (issue 9, defects 4
 * and 14): ring, bus.meta, cursor file and topic.conf. The operation that
 * opens each returns -EMEDIUMTYPE in bounded time (it runs in a child with
 * a deadline: a hang fails, it does not hang the suite), names the path and
 * what it found, and writes nothing through the symlink. The data
 * directory's files are tests/durable/test_hostile_disk.c's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "safe_open.h"
#include "t_helpers.h"
#include "t_hostile.h"

#define DEADLINE_MS 5000

static void teardown(void)
{
    t_bus_cleanup();
    t_hostile_cleanup();
}

TestSuite(hostile_files, .fini = teardown, .timeout = 30);

static evb_bus_options opts(void)
{
    return (evb_bus_options){.data_dir = t_data_dir()};
}

/* A bus with topic "t" of one partition; PATH gets <bus>/REL. */
static void make_topic(char *path, size_t cap, const char *rel)
{
    evb_bus_options o = opts();
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "t", &cfg), 0, "%s", evb_last_error());
    evb_bus_close(bus);
    snprintf(path, cap, "%s/%s", t_bus_dir(), rel);
}

/* ---- what opens each file, run in the child (and then in the test) ---- */

static int op_bus_open(void *arg)
{
    (void)arg;
    evb_bus_options o = opts();
    evb_bus *bus;
    int rc = evb_bus_open(&bus, t_bus_dir(), &o);
    if (!rc)
        evb_bus_close(bus);
    return -rc;
}

static int op_producer_open(void *arg)
{
    (void)arg;
    evb_bus_options o = opts();
    evb_bus *bus;
    evb_producer *p;
    int rc = evb_bus_open(&bus, t_bus_dir(), &o);
    if (rc)
        return 200; /* the bus itself did not open: not what is tested */
    if (!(rc = evb_producer_open(&p, bus, "t", NULL)))
        evb_producer_close(p);
    evb_bus_close(bus);
    return -rc;
}

static int op_consumer_open(void *arg)
{
    evb_bus_options o = opts();
    evb_bus *bus;
    evb_consumer *c;
    int rc = evb_bus_open(&bus, t_bus_dir(), &o);
    if (rc)
        return 200;
    evb_consumer_options co = {.kind = arg ? EVB_CONSUMER : EVB_SUBSCRIBER, .name = arg};
    if (!(rc = evb_consumer_open(&c, bus, "t", &co)))
        evb_consumer_close(c);
    evb_bus_close(bus);
    return -rc;
}

static int op_topic_info(void *arg)
{
    (void)arg;
    evb_bus_options o = opts();
    evb_bus *bus;
    struct evb_topic_info info;
    int rc = evb_bus_open(&bus, t_bus_dir(), &o);
    if (rc)
        return 200;
    rc = evb_topic_info(bus, "t", &info);
    evb_bus_close(bus);
    return -rc;
}

/* Plant HOW at PATH; OP must refuse it with -EMEDIUMTYPE before the
 * deadline, say what it found, and leave the symlink's target alone. */
static void expect_refused(const char *path, enum t_plant how, int (*op)(void *), void *arg)
{
    t_plant(path, how, false);
    int rc = t_bounded(op, arg, DEADLINE_MS);
    cr_assert_neq(rc, -1, "%s as a %s: still blocked after %d ms", path, t_plant_word(how),
                  DEADLINE_MS);
    cr_assert_eq(rc, EMEDIUMTYPE, "%s as a %s: returned -%d (%s), expected -EMEDIUMTYPE",
                 path, t_plant_word(how), rc, strerror(rc));
    cr_assert(t_outside_untouched(), "%s: something was written through the symlink", path);
    /* Not hanging, so the same call can run here for its message. */
    evb_err_clear();
    cr_assert_eq(op(arg), EMEDIUMTYPE);
    const char *msg = evb_last_error();
    cr_assert(strstr(msg, path) && strstr(msg, t_plant_word(how)),
              "message '%s' lacks the path or '%s'", msg, t_plant_word(how));
}

/* One Test per file and plant: FILE names it, REL is its path in the bus
 * directory, OP and ARG open it. */
#define HOSTILE(file, rel, op, arg)                                             \
    static void file##_check(enum t_plant how)                                  \
    {                                                                           \
        char path[512];                                                         \
        make_topic(path, sizeof path, rel);                                     \
        expect_refused(path, how, op, arg);                                     \
    }                                                                           \
    Test(hostile_files, file##_as_fifo) { file##_check(T_PLANT_FIFO); }         \
    Test(hostile_files, file##_as_symlink) { file##_check(T_PLANT_SYMLINK); }   \
    Test(hostile_files, file##_as_directory) { file##_check(T_PLANT_DIR); }

HOSTILE(bus_meta, "bus.meta", op_bus_open, NULL)
HOSTILE(ring_for_producer, "t/0.ring", op_producer_open, NULL)
HOSTILE(ring_for_subscriber, "t/0.ring", op_consumer_open, NULL)
HOSTILE(cursor_file, "t/consumers/c.cur", op_consumer_open, "c")
HOSTILE(topic_conf_for_info, "t/topic.conf", op_topic_info, NULL)
HOSTILE(topic_conf_for_producer, "t/topic.conf", op_producer_open, NULL)

/* A directory on the way replaced by a symlink to a directory outside:
 * refused like a file, and nothing is made in the outside directory. */
static void dir_check(const char *rel, int (*op)(void *), void *arg)
{
    char path[512];
    make_topic(path, sizeof path, rel);
    t_plant(path, T_PLANT_SYMLINK, true);
    int rc = t_bounded(op, arg, DEADLINE_MS);
    cr_assert_eq(rc, EMEDIUMTYPE, "%s as a symlink: returned -%d (%s), expected -EMEDIUMTYPE",
                 path, rc, strerror(rc));
    cr_assert(t_outside_untouched(), "%s: something was made through the symlink", path);
    evb_err_clear();
    cr_assert_eq(op(arg), EMEDIUMTYPE);
    const char *msg = evb_last_error();
    cr_assert(strstr(msg, path) && strstr(msg, "symlink"), "message '%s'", msg);
}

Test(hostile_files, topic_dir_as_symlink_for_producer) { dir_check("t", op_producer_open, NULL); }
Test(hostile_files, topic_dir_as_symlink_for_consumer) { dir_check("t", op_consumer_open, "c"); }
Test(hostile_files, topic_dir_as_symlink_for_info) { dir_check("t", op_topic_info, NULL); }
Test(hostile_files, consumers_dir_as_symlink) { dir_check("t/consumers", op_consumer_open, "c"); }
/* The same without openat2 (kernels before 5.6): the O_NOFOLLOW walk. */
Test(hostile_files, topic_dir_as_symlink_walk, .init = evb_safe_open_use_walk)
{
    dir_check("t", op_producer_open, NULL);
}
Test(hostile_files, consumers_dir_as_symlink_walk, .init = evb_safe_open_use_walk)
{
    dir_check("t/consumers", op_consumer_open, "c");
}
Test(hostile_files, regular_files_open_by_walk, .init = evb_safe_open_use_walk)
{
    char path[512];
    make_topic(path, sizeof path, "bus.meta");
    cr_assert_eq(op_producer_open(NULL), 0, "%s", evb_last_error());
    cr_assert_eq(op_consumer_open("c"), 0, "%s", evb_last_error());
}

/* The regular files themselves still open: what the refusals above must
 * not cost. */
Test(hostile_files, regular_files_open_as_before)
{
    char path[512];
    make_topic(path, sizeof path, "bus.meta");
    cr_assert_eq(op_bus_open(NULL), 0, "%s", evb_last_error());
    cr_assert_eq(op_producer_open(NULL), 0, "%s", evb_last_error());
    cr_assert_eq(op_consumer_open("c"), 0, "%s", evb_last_error());
    cr_assert_eq(op_consumer_open("c"), 0, "reopening the cursor file: %s", evb_last_error());
    cr_assert_eq(op_topic_info(NULL), 0, "%s", evb_last_error());
}
