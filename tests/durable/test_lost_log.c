/*
 * test_lost_log.c - a durable topic whose disk side went missing while its
 * ring did not (issue 9, defect 11): a seek by time falls back to what the
 * ring holds, and listing segments without the data directory's
 * topic.conf is an error, not an empty list. Recovery and the seam between
 * disk and ring are test_durable.c's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "durable_fixture.h"

TestSuite(lost_log, .init = df_setup, .fini = df_teardown, .timeout = 60);

static uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A one-partition sync topic T holding N events of sequences 0..N-1;
 * *CUT is the time just before event N/2. */
static void make_topic(const char *t, int n, uint64_t *cut)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    tc.max_event_bytes = 256;
    df_create(t, &tc);
    df_publish(t, 0, (uint64_t)n / 2);
    /* Distinct stamps on both sides of the cut. */
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    *cut = real_ns();
    nanosleep(&ts, NULL);
    df_publish(t, (uint64_t)n / 2, (uint64_t)(n - n / 2));
}

static void remove_segments(const char *t)
{
    char **paths;
    size_t n;
    cr_assert_eq(evb_segment_list(df_bus, t, 0, &paths, &n), 0, "%s", evb_last_error());
    cr_assert_gt(n, 0u);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(unlink(paths[i]), 0);
        size_t len = strlen(paths[i]);
        memcpy(paths[i] + len - 3, "idx", 3);
        (void)unlink(paths[i]);
        free(paths[i]);
    }
    free(paths);
}

Test(lost_log, seek_by_time_without_segments_reads_the_ring)
{
    uint64_t cut = 0;
    make_topic("t", 10, &cut);
    remove_segments("t");
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS, .start = EVB_START_TIME,
                               .start_value = cut};
    evb_consumer *c;
    cr_assert_eq(evb_consumer_open(&c, df_bus, "t", &co), 0, "consumer: %s", evb_last_error());
    for (uint64_t want = 5; want < 10; want++)
        cr_expect_geq(df_next(c, want).timestamp_ns, cut);
    evb_event ev;
    cr_expect_eq(evb_consumer_next(c, &ev, 0), -EAGAIN);
    /* A time before everything gives all ten, from the ring. */
    cr_assert_eq(evb_consumer_seek(c, -1, EVB_START_TIME, cut - 60000000000ull), 0);
    df_read(c, 0, 10);
    evb_consumer_close(c);
}

Test(lost_log, segment_list_without_topic_conf_is_enoent)
{
    uint64_t cut;
    make_topic("u", 4, &cut);
    char conf[600];
    snprintf(conf, sizeof conf, "%s/u/topic.conf", t_data_dir());
    cr_assert_eq(unlink(conf), 0);
    char **paths = NULL;
    size_t n = 7;
    cr_assert_eq(evb_segment_list(df_bus, "u", 0, &paths, &n), -ENOENT);
    cr_expect_null(paths);
    cr_expect_eq(n, 0u);
    cr_expect_not_null(strstr(evb_last_error(), "topic.conf"), "message: %s",
                       evb_last_error());
}
