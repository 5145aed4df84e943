/*
 * test_topic.c - a topic's rings checked against its topic.conf when it is
 * opened (bus/topic.c): a config that lost partitions, or names another
 * ring size, durability or largest event than the rings have, is refused
 * with the file and both values named, never read as a smaller or
 * different topic.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ring_format.h"
#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 16};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

/* Replace the line starting with KEY in <bus>/t/topic.conf by LINE. */
static void conf_set(const char *key, const char *line)
{
    char path[4096], buf[4096], out[4096] = "";
    snprintf(path, sizeof path, "%s/t/topic.conf", t_bus_dir());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    while (fgets(buf, sizeof buf, f)) {
        if (!strncmp(buf, key, strlen(key)) && buf[strlen(key)] == ' ')
            snprintf(buf, sizeof buf, "%s\n", line);
        strncat(out, buf, sizeof out - strlen(out) - 1);
    }
    fclose(f);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(out, f);
    fclose(f);
}

static void expect_refused(const char *what)
{
    evb_producer *p = NULL;
    int rc = evb_producer_open(&p, bus, "t", NULL);
    cr_expect_eq(rc, -EBADMSG, "%s: open gave %d", what, rc);
    cr_expect(strstr(evb_last_error(), what), "message '%s' should name '%s'",
              evb_last_error(), what);
    evb_producer_close(p);
}

Test(topic, a_config_that_lost_partitions_is_refused, .init = setup, .fini = teardown,
     .timeout = 10)
{
    conf_set("partitions", "partitions 1");
    expect_refused("says 1 partitions, but");
}

Test(topic, a_config_with_another_ring_size_is_refused, .init = setup, .fini = teardown,
     .timeout = 10)
{
    conf_set("ring_bytes", "ring_bytes 131072");
    expect_refused("capacity 65536, topic.conf says ring_bytes 131072");
}

/* Both ways the frame bound and max_event_bytes can disagree: topic.conf
 * edited, or the ring's header word changed. Either would let readers
 * hand out events the topic does not take, or refuse ones it does. */
Test(topic, a_config_with_another_max_event_is_refused, .init = setup, .fini = teardown,
     .timeout = 10)
{
    conf_set("max_event_bytes", "max_event_bytes 1000");
    expect_refused("topic.conf's max_event_bytes 1000 makes them 1088");
}

Test(topic, a_ring_header_with_another_max_frame_is_refused, .init = setup, .fini = teardown,
     .timeout = 10)
{
    char path[512];
    snprintf(path, sizeof path, "%s/t/0.ring", t_bus_dir());
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "%s", path);
    uint32_t frame;
    cr_assert_eq(fseek(f, 24, SEEK_SET), 0); /* evb_ring_hdr.max_frame_bytes */
    cr_assert_eq(fread(&frame, sizeof frame, 1, f), 1);
    frame -= EVB_FRAME_LINE; /* still a valid bound, not this topic's */
    cr_assert_eq(fseek(f, 24, SEEK_SET), 0);
    cr_assert_eq(fwrite(&frame, sizeof frame, 1, f), 1);
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "frames of up to %u bytes", frame);
    expect_refused(want);
}

Test(topic, an_intact_config_opens, .init = setup, .fini = teardown, .timeout = 10)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0);
    evb_producer_close(p);
}

/* A ring an older build made (its format word says version 5) is refused
 * with -EPROTO naming both versions and saying what to do, for a
 * ring-only topic and for a durable one. */
static void old_ring(const char *topic, bool durable, const char *todo)
{
    evb_bus_close(bus);
    evb_bus_options o = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 16,
                           .durability = durable ? EVB_DURABILITY_ASYNC : EVB_DURABILITY_NONE};
    cr_assert_eq(evb_topic_create(bus, topic, &tc), 0, "%s", evb_last_error());
    char path[512];
    snprintf(path, sizeof path, "%s/%s/0.ring", t_bus_dir(), topic);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "%s", path);
    uint64_t word;
    cr_assert_eq(fseek(f, 8, SEEK_SET), 0); /* evb_ring_hdr.format */
    cr_assert_eq(fread(&word, sizeof word, 1, f), 1);
    cr_assert_eq(word >> 48, 6, "format word 0x%llx", (unsigned long long)word);
    word = (word & ~(0xffffull << 48)) | 5ull << 48;
    cr_assert_eq(fseek(f, 8, SEEK_SET), 0);
    cr_assert_eq(fwrite(&word, sizeof word, 1, f), 1);
    fclose(f);
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, topic, NULL), -EPROTO);
    const char *e = evb_last_error();
    cr_expect(strstr(e, "(version 5)") && strstr(e, "(version 6)"), "%s", e);
    cr_expect(strstr(e, todo), "'%s' lacks '%s'", e, todo);
}

Test(topic, ring_only_topic_of_an_older_build_says_to_make_it_again)
{
    old_ring("old", false, "delete the topic and create it again");
}

Test(topic, durable_topic_of_an_older_build_says_to_remove_the_bus_directory)
{
    old_ring("oldd", true, "remove the bus directory");
}
