/*
 * test_consumer_open.c - a consumer open that fails leaves nothing behind
 * and takes nothing from others: no reader slot (its own or another
 * reader's), no owned cursor file, no mapping, no descriptor. The
 * failures: no free reader slot on the first or a later partition, a
 * strict seek that fails on a later partition, a damaged cursor file.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 64 << 10, .max_event_bytes = 1024};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(consumer_open, .init = setup, .fini = teardown, .timeout = 60);

/* Entries of a /proc/self directory listing or lines of a /proc/self file:
 * what a leaked descriptor or mapping changes. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert(f);
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* Readers attached to partition PART, and how many of them are lossless
 * subscribers of this process. */
static int readers(uint32_t part, int *lossless)
{
    evb_reader_stat rs[EVB_RING_READERS];
    int n = evb_reader_list(bus, "t", part, rs, EVB_RING_READERS);
    cr_assert_geq(n, 0);
    *lossless = 0;
    for (int i = 0; i < n && i < EVB_RING_READERS; i++)
        *lossless += rs[i].kind == EVB_SUBSCRIBER_LOSSLESS && rs[i].pid == (uint32_t)getpid();
    return n;
}

static evb_consumer *open_kind(uint32_t kind, int part, const char *name)
{
    evb_consumer *c;
    evb_consumer_options o = {.kind = kind, .name = name, .partition = part,
                              .only_partition = part >= 0};
    cr_assert_eq(evb_consumer_open(&c, bus, "t", &o), 0, "%s", evb_last_error());
    return c;
}

/* Fill partition PART's ring with 512-byte events until a producer that
 * does not wait is refused: the lossless reader holds it. Returns the
 * events published. */
static int fill(uint32_t part)
{
    evb_producer *p;
    evb_producer_options po = {.block_ms = 0};
    cr_assert_eq(evb_producer_open(&p, bus, "t", &po), 0);
    static char v[512];
    evb_msg m = {.value = v, .value_len = sizeof v, .partition = (int32_t)part};
    int n = 0, rc;
    while ((rc = evb_publish(p, &m)) == 0 && n < 10000)
        n++;
    evb_producer_close(p);
    cr_expect_eq(rc, -EAGAIN, "publish %d after %d events", rc, n);
    return n;
}

/* A child (another process) opens the named consumer NAME: fails with
 * -EBUSY while this process still owns its cursor file. */
static int child_open(void *arg)
{
    evb_bus *b;
    if (evb_bus_open(&b, t_bus_dir(), NULL))
        return 10;
    evb_consumer *c;
    evb_consumer_options o = {.kind = EVB_CONSUMER, .name = arg};
    int rc = evb_consumer_open(&c, b, "t", &o);
    if (rc == 0)
        evb_consumer_close(c);
    evb_bus_close(b);
    return rc == 0 ? 0 : rc == -EBUSY ? 1 : 2;
}

static void expect_cursor_free(const char *name)
{
    pid_t pid = t_spawn(child_open, (void *)name);
    cr_expect_eq(t_wait_exit(pid, 10000), 0, "another process cannot open consumer %s", name);
}

/*
 * Every reader slot of partition FULL taken (a lossless subscriber on
 * both partitions, subscribers of FULL only for the rest): a named
 * consumer of both partitions fails with -EBUSY, on partition 0 before it
 * attached anything or on partition 1 after it attached partition 0.
 * Before the fix, the failed attach left its reader pointing at the ring
 * with slot 0, and the cleanup freed slot 0: the lossless subscriber's,
 * which then stopped holding producers.
 */
static void busy_open(uint32_t full)
{
    evb_consumer *lossless = open_kind(EVB_SUBSCRIBER_LOSSLESS, -1, NULL);
    evb_consumer *subs[EVB_RING_READERS];
    int nsubs = 0;
    for (; nsubs < EVB_RING_READERS - 1; nsubs++)
        subs[nsubs] = open_kind(EVB_SUBSCRIBER, (int)full, NULL);
    int fds = count_fds(), maps = count_maps(), ll;
    cr_assert_eq(readers(full, &ll), EVB_RING_READERS);

    evb_consumer *c = NULL;
    for (uint32_t kind = EVB_SUBSCRIBER; kind <= EVB_CONSUMER; kind++) {
        evb_consumer_options o = {.kind = kind, .name = kind == EVB_CONSUMER ? "n" : NULL};
        cr_expect_eq(evb_consumer_open(&c, bus, "t", &o), -EBUSY, "kind %u", kind);
        cr_expect_null(c);
        evb_consumer_close(c);
        c = NULL;
    }
    cr_expect_eq(count_fds(), fds, "a descriptor leaked");
    cr_expect_eq(count_maps(), maps, "a mapping leaked");
    for (uint32_t part = 0; part < 2; part++) {
        int n = readers(part, &ll);
        cr_expect_eq(n, part == full ? EVB_RING_READERS : 1, "partition %u: %d readers",
                     part, n);
        cr_expect_eq(ll, 1, "partition %u lost its lossless reader", part);
    }
    /* The lossless reader, which read nothing, still holds producers. */
    cr_expect_lt(fill(full) * 512, 64 << 10);
    for (int i = 0; i < nsubs; i++)
        evb_consumer_close(subs[i]);
    /* With reader slots free again, another process can have "n". */
    expect_cursor_free("n");
    evb_consumer_close(lossless);
}

Test(consumer_open, busy_first_partition_frees_no_other_reader)
{
    busy_open(0);
}

Test(consumer_open, busy_later_partition_frees_no_other_reader)
{
    busy_open(1);
}

/* A strict seek that fails on partition 1 (lapped: offset 0 is gone) after
 * partition 0 attached and seeked: both slots and the cursor file freed. */
Test(consumer_open, failed_seek_on_later_partition_gives_everything_back)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0);
    static char v[512];
    evb_msg m = {.value = v, .value_len = sizeof v, .partition = 1};
    for (int i = 0; i < 400; i++)
        cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
    /* Map the topic once first, so its mappings are not what is counted. */
    evb_consumer *keep = open_kind(EVB_SUBSCRIBER, 0, NULL);
    int fds = count_fds(), maps = count_maps(), ll;
    evb_consumer *c = NULL;
    evb_consumer_options o = {.kind = EVB_CONSUMER, .name = "n",
                              .start = EVB_START_OFFSET | EVB_SEEK_STRICT, .start_value = 0};
    cr_expect_eq(evb_consumer_open(&c, bus, "t", &o), -ERANGE, "%s", evb_last_error());
    cr_expect_null(c);
    cr_expect_eq(count_fds(), fds, "a descriptor leaked");
    cr_expect_eq(count_maps(), maps, "a mapping leaked");
    cr_expect_eq(readers(0, &ll), 1);
    cr_expect_eq(readers(1, &ll), 0);
    expect_cursor_free("n");
    evb_consumer_close(keep);
}

/* Where the library keeps consumer NAME's cursor file: found, not
 * assumed (the layout of the bus and data directories is the library's). */
static char found[PATH_MAX];
static const char *want;
static int find_one(const char *p, const struct stat *s, int flag, struct FTW *w)
{
    (void)s;
    if (flag == FTW_F && !strcmp(p + w->base, want))
        snprintf(found, sizeof found, "%s", p);
    return 0;
}

/* A damaged cursor file: -EBADMSG, and nothing held. */
Test(consumer_open, damaged_cursor_file_holds_nothing)
{
    evb_consumer *c = open_kind(EVB_CONSUMER, -1, "n");
    evb_consumer_close(c);
    want = "n.cur";
    found[0] = '\0';
    nftw(t_bus_dir(), find_one, 16, FTW_PHYS);
    cr_assert(found[0], "no n.cur under %s", t_bus_dir());
    int fd = open(found, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "junk", 4, 0), 4);
    close(fd);
    evb_consumer *keep = open_kind(EVB_SUBSCRIBER, 0, NULL);
    int fds = count_fds(), maps = count_maps(), ll;
    c = NULL;
    evb_consumer_options o = {.kind = EVB_CONSUMER, .name = "n"};
    cr_expect_eq(evb_consumer_open(&c, bus, "t", &o), -EBADMSG);
    cr_expect_null(c);
    cr_expect_eq(count_fds(), fds, "a descriptor leaked");
    cr_expect_eq(count_maps(), maps, "a mapping leaked");
    cr_expect_eq(readers(0, &ll), 1);
    cr_expect_eq(readers(1, &ll), 0);
    evb_consumer_close(keep);
}
