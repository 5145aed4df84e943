/*
 * fuzz_bus_meta.c - libFuzzer target: the files evb_bus_open() trusts in
 * a bus directory, bus.meta (bus/bus.c, bus_meta_format.h) and the data
 * directory record data_dir (bus/data_dir.c); then a topic is created and
 * a producer draws its id from the page.
 *
 * Input: u8 flags, u16 n, n bytes of bus.meta (zero-padded to 4096 bytes
 * unless flags bit 0), and with flags bit 1 the rest as data_dir (a
 * record starting with '/' gets the scratch directory in front, so a
 * record never points the bus at a real directory of this machine).
 *
 * What must hold: evb_bus_open returns 0, -EBADMSG, -EPROTO or
 * -EMEDIUMTYPE, never crashes (issue 9 defect 1: a bad magic was read
 * after the page was unmapped); an opened bus works.
 */
#include "fuzz.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_meta_format.h"
#include "evbus.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Without a record the default data directory would be under $HOME. */
    char dd[256];
    snprintf(dd, sizeof dd, "%s/data", fuzz_scratch());
    setenv("EVBUS_DATA_DIR", dd, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    size_t n;
    const uint8_t *meta = fuzz_bytes(&in, fuzz_u16(&in), &n);
    const char *dir = fuzz_fresh_dir(0);
    char path[PATH_MAX];
    static uint8_t page[EVB_BUS_META_BYTES];
    snprintf(path, sizeof path, "%s/bus.meta", dir);
    if (flags & 1 || n > sizeof page) {
        fuzz_write(path, meta, n);
    } else {
        memset(page, 0, sizeof page);
        memcpy(page, meta, n);
        fuzz_write(path, page, sizeof page);
    }
    if (flags & 2) {
        static char rec[PATH_MAX + 300];
        const uint8_t *p = fuzz_bytes(&in, 256, &n);
        size_t at = 0;
        if (n && p[0] == '/')
            at = (size_t)snprintf(rec, sizeof rec, "%s", fuzz_scratch());
        memcpy(rec + at, p, n);
        snprintf(path, sizeof path, "%s/data_dir", dir);
        fuzz_write(path, rec, at + n);
    }
    evb_bus *bus;
    int rc = evb_bus_open(&bus, dir, NULL);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -EMEDIUMTYPE ||
                   rc == -EINVAL,
               "bus_open %d (%s)", rc, evb_last_error());
    if (rc)
        return 0;
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .max_event_bytes = 64};
    rc = evb_topic_create(bus, "t", &tc);
    FUZZ_CHECK(rc == 0, "topic_create %d (%s)", rc, evb_last_error());
    evb_producer *p;
    rc = evb_producer_open(&p, bus, "t", NULL);
    FUZZ_CHECK(rc == 0 || rc == -EOVERFLOW, "producer_open %d (%s)", rc, evb_last_error());
    if (rc == 0) {
        evb_msg m = {.value = "v", .value_len = 1};
        FUZZ_CHECK(evb_publish(p, &m) == 0, "publish");
        evb_producer_close(p);
    }
    evb_bus_close(bus);
    return 0;
}
