/*
 * test_modes.c - the modes a bus and its topics get (issue 9, #15): 0600
 * files and 0700 directories by default, a group given read (0640) or
 * read-write (0660) gets exactly that on every file and directory, whatever
 * the umask; modes that make no sense are refused. Who may open what with
 * those modes (a second uid) is tests/cli/test_cli_perms.sh's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "t_helpers.h"

TestSuite(modes, .fini = t_bus_cleanup, .timeout = 60);

static char bus_path[512];

/* Open (creating) a bus directory that does not exist yet, with MODE. */
static evb_bus *open_bus(uint32_t mode)
{
    snprintf(bus_path, sizeof bus_path, "%s/b", t_bus_dir());
    evb_bus_options o = {.data_dir = t_data_dir(), .mode = mode};
    evb_bus *bus = NULL;
    cr_assert_eq(evb_bus_open(&bus, bus_path, &o), 0, "%s", evb_last_error());
    return bus;
}

static unsigned mode_of(const char *fmt, const char *a, const char *b)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, fmt, a, b);
    cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

#define EXPECT_MODE(want, fmt, a, b)                                                        \
    do {                                                                                \
        unsigned got_ = mode_of(fmt, a, b);                                             \
        cr_assert_eq(got_, (unsigned)(want), fmt ": mode %04o, expected %04o", a, b, got_, \
                     (unsigned)(want));                                                 \
    } while (0)

/* Every file and directory of a bus of BUS_MODE with a durable topic of
 * FILE_MODE and a named consumer, made under UMASK. */
static void check_modes(mode_t umask_, uint32_t bus_mode, uint32_t file_mode)
{
    mode_t old = umask(umask_);
    evb_bus *bus = open_bus(bus_mode);
    evb_topic_config cfg = {.partitions = 1, .ring_bytes = 64 << 10, .file_mode = file_mode,
                            .durability = EVB_DURABILITY_ASYNC};
    cr_assert_eq(evb_topic_create(bus, "t", &cfg), 0, "%s", evb_last_error());
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "c"};
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &co), 0, "%s", evb_last_error());
    evb_consumer_close(c);
    /* A producer's flusher makes the partition's lock, segment, index and
     * durable mark. */
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0, "%s", evb_last_error());
    evb_msg m = {.value = "v", .value_len = 1, .partition = 0, .flags = EVB_MSG_SYNC};
    cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    evb_producer_close(p);
    umask(old);

    uint32_t bm = bus_mode ? bus_mode : 0600, fm = file_mode ? file_mode : 0600;
    /* The bus directory is sticky when its group may make topics in it:
     * a member renames and removes only its own (attack 3, F2). */
    unsigned bdir = 0700 | ((bm & 0040) ? 0050 : 0) | ((bm & 0020) ? 0020 | S_ISVTX : 0) |
                    ((bm & 0040) ? S_ISGID : 0);
    unsigned tdir = 0700 | ((fm & 0040) ? 0050 : 0) | ((fm & 0020) ? 0020 : 0) |
                    ((fm & 0040) ? S_ISGID : 0);
    /* consumers/: whoever may read may also make a cursor file, sticky. */
    unsigned cdir = (fm & 0040) ? (tdir | 0020 | S_ISVTX) : tdir;
    const char *b = bus_path, *d = t_data_dir();
    EXPECT_MODE(bdir, "%s%s", b, "");
    EXPECT_MODE(bm, "%s/%s", b, "bus.meta");
    EXPECT_MODE(bm & 0444, "%s/%s", b, "data_dir");
    EXPECT_MODE(tdir, "%s/%s", b, "t");
    EXPECT_MODE(fm & 0444, "%s/%s", b, "t/topic.conf");
    EXPECT_MODE(fm, "%s/%s", b, "t/0.ring");
    /* In tmpfs only ring-only topics' consumers (writers) keep cursors. */
    EXPECT_MODE(tdir, "%s/%s", b, "t/consumers");
    EXPECT_MODE(tdir, "%s/%s", d, "t");
    EXPECT_MODE(tdir, "%s/%s", d, "t/0");
    EXPECT_MODE(fm & 0444, "%s/%s", d, "t/topic.conf");
    EXPECT_MODE(cdir, "%s/%s", d, "t/consumers");
    EXPECT_MODE(fm, "%s/%s", d, "t/consumers/c.cur");
    /* The lock: writers' bits only, or a reader could hold it. */
    EXPECT_MODE(0600 | ((fm & 0020) ? 0060 : 0), "%s/%s", d, "t/0/flush.lock");
    EXPECT_MODE(fm, "%s/%s", d, "t/0/00000000000000000000.log");
    EXPECT_MODE(fm, "%s/%s", d, "t/0/00000000000000000000.idx");
    EXPECT_MODE(fm, "%s/%s", d, "t/0/durable.mark");
    evb_bus_close(bus);
}

Test(modes, default_is_private_under_umask_022) { check_modes(022, 0, 0); }
Test(modes, default_is_private_under_umask_0) { check_modes(0, 0, 0); }
Test(modes, group_readers_under_umask_077) { check_modes(077, 0640, 0640); }
Test(modes, group_readers_under_umask_022) { check_modes(022, 0640, 0640); }
Test(modes, group_writers_under_umask_077) { check_modes(077, 0660, 0660); }
Test(modes, group_writers_under_umask_022) { check_modes(022, 0660, 0660); }
Test(modes, private_topic_on_a_shared_bus) { check_modes(077, 0660, 0600); }

/* An existing bus keeps its mode: a later opener asking for another one
 * changes nothing, and the files made later follow the directory. */
Test(modes, an_existing_bus_keeps_its_mode)
{
    evb_bus *bus = open_bus(0640);
    evb_bus_close(bus);
    bus = open_bus(0660);
    EXPECT_MODE(02750, "%s%s", bus_path, "");
    EXPECT_MODE(0640, "%s/%s", bus_path, "bus.meta");
    evb_bus_close(bus);
}

Test(modes, nonsense_is_refused)
{
    static const uint32_t bad[] = {0700, 0400, 0200, 0666, 0602, 0620, 0610, 01600, 04600,
                                   0100600, 0607};
    snprintf(bus_path, sizeof bus_path, "%s/b", t_bus_dir());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        evb_bus_options o = {.data_dir = t_data_dir(), .mode = bad[i]};
        evb_bus *bus = NULL;
        cr_assert_eq(evb_bus_open(&bus, bus_path, &o), -EINVAL, "bus mode %o accepted",
                     bad[i]);
        cr_assert(strstr(evb_last_error(), "mode"), "message: %s", evb_last_error());
        struct stat st;
        cr_assert_neq(stat(bus_path, &st), 0, "bus mode %o: the directory was made", bad[i]);
    }
    evb_bus *bus = open_bus(0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        evb_topic_config cfg = {.partitions = 1, .ring_bytes = 64 << 10, .file_mode = bad[i]};
        cr_assert_eq(evb_topic_create(bus, "t", &cfg), -EINVAL, "topic mode %o accepted",
                     bad[i]);
        cr_assert(strstr(evb_last_error(), "mode"), "message: %s", evb_last_error());
    }
    evb_bus_close(bus);
}
