/*
 * test_enospc.c - a topic whose rings cannot be reserved fails to create
 * with -ENOSPC (never a SIGBUS later), leaves nothing behind, and the bus
 * keeps working. Uses a 1 MiB tmpfs when this process may mount one.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include "t_helpers.h"

Test(enospc, topic_larger_than_tmpfs_fails_cleanly, .timeout = 30)
{
    char dir[] = "/tmp/evbus-enospc-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
        rmdir(dir);
        cr_skip_test("cannot mount a small tmpfs here (needs root)");
    }
    char busdir[300];
    snprintf(busdir, sizeof busdir, "%s/bus", dir);
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, busdir, NULL), 0);
    evb_topic_config big = {.partitions = 2, .ring_bytes = 1 << 20};
    int rc = evb_topic_create(bus, "big", &big);
    cr_expect_eq(rc, -ENOSPC, "got %d (%s)", rc, evb_last_error());
    struct evb_topic_info ti;
    cr_expect_eq(evb_topic_info(bus, "big", &ti), -ENOENT, "half a topic was left behind");
    evb_topic_config small = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_expect_eq(evb_topic_create(bus, "small", &small), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "small", NULL), 0);
    evb_msg m = {.value = "x", .value_len = 1, .partition = EVB_PARTITION_ANY};
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
    evb_bus_close(bus);
    umount(dir);
    rmdir(dir);
}
