/*
 * test_topic.c - a topic's rings checked against its topic.conf when it is
 * opened (bus/topic.c): a config that lost partitions, or names another
 * ring size or durability than the rings have, is refused with the file
 * and both values named, never read as a smaller or different topic.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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

Test(topic, an_intact_config_opens, .init = setup, .fini = teardown, .timeout = 10)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0);
    evb_producer_close(p);
}
