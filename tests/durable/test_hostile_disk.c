/*
 * test_hostile_disk.c - files of a data directory replaced by a FIFO, a
 * symlink to something outside, or a directory (issue 9, defect 4):
 * segment .log and its temp file, .idx, flush.lock, the partition
 * directory and the data-side topic.conf. Each operation that opens one
 * runs in a child with a deadline and must return -EMEDIUMTYPE in time
 * (an index, only a hint, is replaced instead), leaving the symlink's
 * target alone; before the fix a FIFO hung recovery,
 * dump and every reader of the log. The bus directory's files are
 * tests/bus/test_hostile_files.c's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "seg_helpers.h"
#include "t_helpers.h"
#include "t_hostile.h"

#define DEADLINE_MS 5000

static void fini(void)
{
    teardown();
    t_bus_cleanup();
    t_hostile_cleanup();
}

TestSuite(hostile_disk, .init = setup, .fini = fini, .timeout = 60);

static char planted[256]; /* the path under test */

/* ---- what opens each file, run in the child ---- */

static int op_seg_map(void *arg)
{
    (void)arg;
    struct evb_seg s;
    int rc = evb_seg_map(&s, dir, 0, SEG);
    if (!rc)
        evb_seg_unmap(&s);
    return -rc;
}

static int op_seg_create(void *arg)
{
    (void)arg;
    int fd = evb_seg_create(dir, 0, SEG, false, 0600);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -fd : 0;
}

static int op_seg_recover(void *arg)
{
    (void)arg;
    struct evb_seg_recovery rec;
    return -evb_seg_recover(dir, &geom, 0, &rec);
}

static int op_idx_load(void *arg)
{
    (void)arg;
    struct evb_idx *x = NULL;
    int rc = evb_idx_load(dir, 0, &x);
    free(x);
    return -rc;
}

static int op_idx_create(void *arg)
{
    (void)arg;
    int fd = evb_idx_create(dir, 0, 0, 0600);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -fd : 0;
}

static int op_idx_cut(void *arg)
{
    (void)arg;
    return -evb_idx_cut(dir, 0, 0, EVB_SEG_NO_OFFSET);
}

static int op_flush_lock(void *arg)
{
    (void)arg;
    int fd = evb_flush_lock(dir, 0, 0600);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -fd : 0;
}

static int op_seg_list(void *arg)
{
    (void)arg;
    uint64_t *bases = NULL;
    size_t n;
    int rc = evb_seg_list(planted, &bases, &n);
    free(bases);
    return -rc;
}

static int count_frame(const evb_dump_frame *f, void *arg)
{
    (void)f;
    (*(unsigned *)arg)++;
    return 0;
}

static int op_dump_segment(void *arg)
{
    (void)arg;
    char seg[300];
    unsigned n = 0;
    snprintf(seg, sizeof seg, "%s/t/0/00000000000000000000.log", dir);
    return -evb_dump_segment(seg, count_frame, &n);
}

/* Plant HOW at planted[]; OP must refuse it with -EMEDIUMTYPE within the
 * deadline and write nothing through a symlink. */
static void expect_refused(enum t_plant how, bool to_dir, int (*op)(void *))
{
    t_plant(planted, how, to_dir);
    int rc = t_bounded(op, NULL, DEADLINE_MS);
    cr_assert_neq(rc, -1, "%s as a %s: still blocked after %d ms", planted,
                  t_plant_word(how), DEADLINE_MS);
    cr_assert_eq(rc, EMEDIUMTYPE, "%s as a %s: returned -%d (%s), expected -EMEDIUMTYPE",
                 planted, t_plant_word(how), rc, strerror(rc));
    cr_assert(t_outside_untouched(), "%s: something was written through the symlink",
              planted);
}

/* One Test per file, operation and plant: NAME names them, REL is the
 * file's name in the partition directory. */
#define HOSTILE(name, rel, op)                                                       \
    static void name##_check(enum t_plant how)                                       \
    {                                                                                \
        snprintf(planted, sizeof planted, "%s/%s", dir, rel);                        \
        expect_refused(how, false, op);                                              \
    }                                                                                \
    Test(hostile_disk, name##_as_fifo) { name##_check(T_PLANT_FIFO); }               \
    Test(hostile_disk, name##_as_symlink) { name##_check(T_PLANT_SYMLINK); }         \
    Test(hostile_disk, name##_as_directory) { name##_check(T_PLANT_DIR); }

#define LOG0 "00000000000000000000.log"
#define IDX0 "00000000000000000000.idx"

HOSTILE(log_for_map, LOG0, op_seg_map)
HOSTILE(log_for_create, LOG0, op_seg_create)
HOSTILE(log_for_recover, LOG0, op_seg_recover)
HOSTILE(log_tmp_for_create, LOG0 ".tmp", op_seg_create)
HOSTILE(idx_for_load, IDX0, op_idx_load)

/* An index is only a hint (attack report 5): what is planted at its name
 * is not refused but replaced, in time, without following a symlink:
 * create leaves a regular file there, cut leaves nothing. */
static void expect_replaced(enum t_plant how, int (*op)(void *), bool regular_after)
{
    snprintf(planted, sizeof planted, "%s/%s", dir, IDX0);
    t_plant(planted, how, false);
    int rc = t_bounded(op, NULL, DEADLINE_MS);
    cr_assert_neq(rc, -1, "%s as a %s: still blocked after %d ms", planted,
                  t_plant_word(how), DEADLINE_MS);
    cr_assert_eq(rc, 0, "%s as a %s: returned -%d (%s)", planted, t_plant_word(how), rc,
                 strerror(rc));
    cr_assert(t_outside_untouched(), "%s: something was written through the symlink",
              planted);
    struct stat st;
    if (regular_after)
        cr_assert(lstat(planted, &st) == 0 && S_ISREG(st.st_mode),
                  "%s as a %s: no regular file there after", planted, t_plant_word(how));
    else
        cr_assert(lstat(planted, &st) < 0 && errno == ENOENT, "%s as a %s: still there",
                  planted, t_plant_word(how));
}

#define HINT(name, op, regular_after)                                                  \
    Test(hostile_disk, name##_as_fifo) { expect_replaced(T_PLANT_FIFO, op, regular_after); } \
    Test(hostile_disk, name##_as_symlink)                                              \
    {                                                                                  \
        expect_replaced(T_PLANT_SYMLINK, op, regular_after);                           \
    }                                                                                  \
    Test(hostile_disk, name##_as_directory) { expect_replaced(T_PLANT_DIR, op, regular_after); }

HINT(idx_for_create, op_idx_create, true)
HINT(idx_for_cut, op_idx_cut, false)
HOSTILE(flush_lock, "flush.lock", op_flush_lock)

/* A partition directory is walked (listing segments) only when it is one:
 * not through a symlink to a directory elsewhere, not a FIFO. */
Test(hostile_disk, partition_dir_as_fifo)
{
    snprintf(planted, sizeof planted, "%s/p", dir);
    expect_refused(T_PLANT_FIFO, true, op_seg_list);
}

Test(hostile_disk, partition_dir_as_symlink)
{
    snprintf(planted, sizeof planted, "%s/p", dir);
    expect_refused(T_PLANT_SYMLINK, true, op_seg_list);
}

/* The data directory's topic.conf, read by evbus dump ... */
static void conf_check(enum t_plant how)
{
    char pdir[300];
    snprintf(pdir, sizeof pdir, "%s/t/0", dir);
    cr_assert_eq(evb_mkdirs(pdir), 0);
    snprintf(planted, sizeof planted, "%s/t/topic.conf", dir);
    expect_refused(how, false, op_dump_segment);
}

Test(hostile_disk, data_topic_conf_for_dump_as_fifo) { conf_check(T_PLANT_FIFO); }
Test(hostile_disk, data_topic_conf_for_dump_as_symlink) { conf_check(T_PLANT_SYMLINK); }
Test(hostile_disk, data_topic_conf_for_dump_as_directory) { conf_check(T_PLANT_DIR); }

/* ... and when a durable topic is rebuilt after a reboot emptied the bus
 * directory (before the fix a FIFO here hung every command, list too). */
static int op_restore(void *arg)
{
    (void)arg;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *bus;
    if (evb_bus_open(&bus, t_bus_dir(), &o))
        return 200;
    int rc = evb_topic_restore(bus, "t");
    evb_bus_close(bus);
    return -rc;
}

static void restore_check(const char *rel, enum t_plant how)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = 64 << 10,
                            .durability = EVB_DURABILITY_ASYNC, .segment_bytes = 256 << 10};
    cr_assert_eq(evb_topic_create(bus, "t", &cfg), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0, "%s", evb_last_error());
    evb_msg m = {.partition = 0, .value = "event", .value_len = 5};
    cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
    evb_bus_close(bus);
    char top[300];
    snprintf(top, sizeof top, "%s/t", t_bus_dir());
    t_rmtree(top); /* the reboot */
    snprintf(planted, sizeof planted, "%s/t/%s", t_data_dir(), rel);
    expect_refused(how, false, op_restore);
}

Test(hostile_disk, data_topic_conf_for_restore_as_fifo)
{
    restore_check("topic.conf", T_PLANT_FIFO);
}

Test(hostile_disk, data_topic_conf_for_restore_as_symlink)
{
    restore_check("topic.conf", T_PLANT_SYMLINK);
}

Test(hostile_disk, segment_for_restore_as_fifo)
{
    restore_check("0/" LOG0, T_PLANT_FIFO);
}

Test(hostile_disk, segment_for_restore_as_symlink)
{
    restore_check("0/" LOG0, T_PLANT_SYMLINK);
}
