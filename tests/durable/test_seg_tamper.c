/*
 * test_seg_tamper.c - the segment being written removed, put aside by a
 * copy renamed over its name, or cut short under running sync producers.
 * What the flusher wrote through its descriptor is then in no file a
 * reader or a rebuild opens, so acknowledging it would be a lie: the
 * next round fails the partition with -EIO naming the file, and every
 * sync waiter hears it (bus/durable/segment.c, evb_seg_check_file; the
 * cold attack of issue 13, D7, found acks going on for seconds).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "durable_fixture.h"

#define TOPIC "tp"

TestSuite(seg_tamper, .init = df_setup, .fini = df_teardown, .timeout = 60);

static char seg[PATH_MAX];

static int publish_sync(evb_producer *p, uint64_t seq)
{
    uint8_t v[DF_VLEN];
    t_value_fill(v, DF_VLEN, 1, seq);
    evb_msg m = {.value = v, .value_len = DF_VLEN, .partition = 0, .flags = EVB_MSG_SYNC};
    return evb_publish(p, &m);
}

static void rm_seg(void)
{
    cr_assert_eq(unlink(seg), 0, "%s: %s", seg, strerror(errno));
}

/* A copy of the file as it is now, renamed over its name. */
static void replace_seg(void)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.cp", seg);
    int in = open(seg, O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(in >= 0 && out >= 0, "%s", strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    cr_assert_eq(rename(tmp, seg), 0, "%s: %s", seg, strerror(errno));
}

static void truncate_seg(void)
{
    cr_assert_eq(truncate(seg, 4096), 0, "%s: %s", seg, strerror(errno));
}

/* Sync publishes go on until the tampering; the next few fail with -EIO
 * naming the segment, not acknowledged. */
static void tampered(void (*tamper)(void), const char *what)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    snprintf(seg, sizeof seg, "%s/" TOPIC "/0/%020llu.log", t_data_dir(), 0ull);
    evb_producer_options po = {.block_ms = 5000};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, TOPIC, &po), 0, "%s", evb_last_error());
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(publish_sync(p, i), 0, "%s", evb_last_error());
    tamper();
    int rc = 0;
    unsigned acked = 0;
    for (uint64_t i = 20; i < 220 && rc == 0; i++) {
        rc = publish_sync(p, i);
        acked += rc == 0;
    }
    cr_expect_eq(rc, -EIO, "%s: %u sync publishes acknowledged after it, then %d %s", what,
                 acked, rc, evb_last_error());
    cr_expect_leq(acked, 2u, "%s: %u acknowledged after it", what, acked);
    cr_expect(strstr(evb_last_error(), seg), "%s: the detail names %s: %s", what, seg,
              evb_last_error());
    evb_producer_close(p);
}

Test(seg_tamper, removed_segment_fails_sync_publishes) { tampered(rm_seg, "rm"); }
Test(seg_tamper, segment_replaced_by_a_copy_fails_sync_publishes)
{
    tampered(replace_seg, "replace");
}
Test(seg_tamper, truncated_segment_fails_sync_publishes) { tampered(truncate_seg, "truncate"); }
