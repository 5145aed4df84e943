/*
 * test_topic_config.c - topic.conf (bus/topic_config_format.h): what a new
 * topic writes reads back the same; another version is -EPROTO, and a
 * foreign first line, a malformed line, a bad or oversized number, a key
 * given twice, a line over EVB_CONF_LINE_MAX bytes with its newline, a NUL
 * byte or a config out of range is -EBADMSG, each with a message naming
 * the key and the value; a key of a later build is skipped.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus_internal.h"
#include "frame.h"
#include "t_helpers.h"
#include "topic_config_format.h"

static evb_bus *bus;
static char conf_path[512];

static void setup(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0);
    evb_topic_config tc = {.partitions = 3, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0);
    snprintf(conf_path, sizeof conf_path, "%s/t/topic.conf", t_bus_dir());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(topic_config, .init = setup, .fini = teardown, .timeout = 30);

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    cr_assert_geq(fputs(text, f), 0);
    cr_assert_eq(fclose(f), 0);
}

/* The topic's info fails with RC and a message holding WANT. */
static void expect_refused(int rc, const char *want)
{
    struct evb_topic_info ti;
    int got = evb_topic_info(bus, "t", &ti);
    const char *msg = evb_last_error();
    cr_assert_eq(got, rc, "info returned %d, expected %d (%s)", got, rc, msg);
    cr_assert(strstr(msg, "topic.conf"), "message names the file: %s", msg);
    cr_assert(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
}

#define GOOD_HEAD "evbus-topic 1\nring_bytes 1048576\nmax_event_bytes 1024\nfile_mode 660\n"

Test(topic_config, new_topic_reads_back)
{
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "t", &ti), 0, "%s", evb_last_error());
    cr_assert_eq(ti.config.partitions, 3);
    cr_assert_eq(ti.config.ring_bytes, 1 << 20);
    cr_assert_eq(ti.config.file_mode, 0600);
    FILE *f = fopen(conf_path, "r");
    char first[64] = {0};
    cr_assert_not_null(fgets(first, sizeof first, f));
    fclose(f);
    cr_assert_str_eq(first, "evbus-topic 2\n");
}

/* A version 1 file (every build before ring version 6 wrote one) reads
 * as it did: the keys are the same. */
Test(topic_config, version_1_file_reads)
{
    write_conf(GOOD_HEAD "partitions 2\n");
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "t", &ti), 0, "%s", evb_last_error());
    cr_assert_eq(ti.config.partitions, 2);
}

Test(topic_config, unknown_key_is_skipped)
{
    write_conf(GOOD_HEAD "partitions 2\ncompression zstd\n");
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "t", &ti), 0, "%s", evb_last_error());
    cr_assert_eq(ti.config.partitions, 2);
}

/* The writer gives segment and retention keys only with a durability; a
 * file holding them without one lost its durability line, and reading it
 * as an in-memory topic would leave its log behind (found by fuzz_topic_conf). */
Test(topic_config, durable_keys_without_durability_are_ebadmsg)
{
    static const char *keys[] = {"segment_bytes 65536", "retain_bytes 0", "retain_ms 0",
                                 "retain_cap_bytes 0", "flags 0", "flush_ms 200"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, GOOD_HEAD "partitions 3\n%s\n", keys[i]);
        write_conf(text);
        char want[64];
        snprintf(want, sizeof want, "%.*s given for a topic that is not durable",
                 (int)strcspn(keys[i], " "), keys[i]);
        expect_refused(-EBADMSG, want);
    }
}

Test(topic_config, other_version_is_eproto)
{
    write_conf("evbus-topic 3\npartitions 3\n");
    expect_refused(-EPROTO, "version 3, this build reads 1 to 2");
    write_conf("evbus-topic 0\npartitions 3\n");
    expect_refused(-EPROTO, "version 0, this build reads 1 to 2");
    write_conf("evbus-topic 12\npartitions 3\n");
    expect_refused(-EPROTO, "version 12, this build reads 1 to 2");
}

Test(topic_config, foreign_first_line_is_ebadmsg)
{
    write_conf("partitions 3\nring_bytes 1048576\n");
    expect_refused(-EBADMSG, "first line 'partitions 3', expected 'evbus-topic 2'");
}

Test(topic_config, unversioned_header_is_ebadmsg)
{
    write_conf("evbus-topic\npartitions 3\n");
    expect_refused(-EBADMSG, "first line 'evbus-topic', expected 'evbus-topic 2'");
}

Test(topic_config, empty_file_is_ebadmsg)
{
    write_conf("");
    expect_refused(-EBADMSG, "empty");
}

Test(topic_config, line_without_value_is_ebadmsg)
{
    write_conf(GOOD_HEAD "partitions\n");
    expect_refused(-EBADMSG, "topic.conf:5: 'partitions': expected 'key value'");
}

Test(topic_config, trailing_text_is_ebadmsg)
{
    write_conf(GOOD_HEAD "partitions 3 4\n");
    expect_refused(-EBADMSG, "'partitions 3 4': expected 'key value'");
}

Test(topic_config, bad_key_is_ebadmsg)
{
    write_conf(GOOD_HEAD "partitions 3\nPart-itions 3\n");
    expect_refused(-EBADMSG, "topic.conf:6: 'Part-itions 3': expected 'key value'");
}

Test(topic_config, key_given_twice_is_ebadmsg)
{
    write_conf(GOOD_HEAD "partitions 3\npartitions 4\n");
    expect_refused(-EBADMSG, "topic.conf:6: partitions given twice");
}

Test(topic_config, non_number_is_ebadmsg)
{
    write_conf(GOOD_HEAD "partitions 3x\n");
    expect_refused(-EBADMSG, "partitions '3x': not a number");
}

Test(topic_config, negative_number_is_ebadmsg)
{
    write_conf(GOOD_HEAD "partitions -3\n");
    expect_refused(-EBADMSG, "partitions '-3': not a number");
}

Test(topic_config, number_overflowing_u64_is_ebadmsg)
{
    write_conf(GOOD_HEAD "partitions 3\nretain_ms 99999999999999999999999\n");
    expect_refused(-EBADMSG, "retain_ms '99999999999999999999999': not a number that fits");
}

Test(topic_config, number_overflowing_u32_is_ebadmsg)
{
    /* Once skipped as if unknown, leaving the field at zero. */
    write_conf(GOOD_HEAD "partitions 3\nflags 4294967296\n");
    expect_refused(-EBADMSG, "flags 4294967296: above 4294967295");
}

Test(topic_config, octal_mode_checked)
{
    write_conf("evbus-topic 1\npartitions 3\nring_bytes 1048576\nmax_event_bytes 1024\n"
               "file_mode 1777\n");
    expect_refused(-EBADMSG, "file_mode 1777: above 777");
    write_conf("evbus-topic 1\npartitions 3\nring_bytes 1048576\nmax_event_bytes 1024\n"
               "file_mode 689\n");
    expect_refused(-EBADMSG, "file_mode '689': not an octal number");
}

Test(topic_config, value_out_of_range_is_ebadmsg)
{
    write_conf(GOOD_HEAD "partitions 0\n");
    expect_refused(-EBADMSG, "partitions 0: need 1..256");
    write_conf("evbus-topic 1\npartitions 1\nring_bytes 1000000\nmax_event_bytes 1024\n");
    expect_refused(-EBADMSG, "ring bytes 1000000: need a power of two");
}

Test(topic_config, long_line_is_ebadmsg)
{
    char text[1024];
    int n = snprintf(text, sizeof text, GOOD_HEAD "partitions 3\nx ");
    memset(text + n, '7', 400);
    snprintf(text + n + 400, sizeof text - (size_t)n - 400, "\n");
    write_conf(text);
    expect_refused(-EBADMSG, "topic.conf:6: line longer than 255 bytes");
}

/* GOOD_HEAD, then a line of "x " and '7's, LEN bytes before
 * its newline, then partitions, a key the reader must still reach. */
static void write_long_line(size_t len)
{
    char text[1024];
    int n = snprintf(text, sizeof text, GOOD_HEAD "x ");
    memset(text + n, '7', len - 2);
    snprintf(text + n + len - 2, sizeof text - (size_t)n - len + 2, "\npartitions 3\n");
    write_conf(text);
}

Test(topic_config, line_of_255_bytes_and_newline_is_read)
{
    /* 256 bytes with the newline: EVB_CONF_LINE_MAX, the largest line. */
    write_long_line(EVB_CONF_LINE_MAX - 1);
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "t", &ti), 0, "%s", evb_last_error());
    cr_assert_eq(ti.config.partitions, 3, "the line after it is read too");
}

Test(topic_config, line_of_256_bytes_and_newline_is_ebadmsg)
{
    write_long_line(EVB_CONF_LINE_MAX);
    expect_refused(-EBADMSG, "topic.conf:5: line longer than 255 bytes");
}

Test(topic_config, nul_byte_is_ebadmsg_with_its_own_message)
{
    static const char text[] = GOOD_HEAD "partitions 3\nflush_ms 1\0002\n";
    FILE *f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    cr_assert_eq(fclose(f), 0);
    expect_refused(-EBADMSG, "topic.conf:6: NUL byte at column 11");
}

/* The placement keys: written only when set, the node as itself (the
 * field holds it plus one), and a file without them (every file written
 * before them) reads as no node and normal pages. */
Test(topic_config, placement_keys)
{
    write_conf(GOOD_HEAD "partitions 3\n");
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "t", &ti), 0, "%s", evb_last_error());
    cr_assert_eq(ti.config.numa_node, 0);
    cr_assert_eq(EVB_NUMA_NODE_OF(ti.config.numa_node), -1);
    cr_assert_eq(ti.config.huge_pages, 0);
    write_conf(GOOD_HEAD "partitions 3\nnuma_node 0\nhuge_pages 2\n");
    cr_assert_eq(evb_topic_info(bus, "t", &ti), 0, "%s", evb_last_error());
    cr_assert_eq(ti.config.numa_node, EVB_NUMA_NODE(0));
    cr_assert_eq(ti.config.huge_pages, EVB_HUGE_PAGES_STRICT);
    write_conf(GOOD_HEAD "partitions 3\nnuma_node 1024\n");
    expect_refused(-EBADMSG, "numa_node 1024: above 1023");
    write_conf(GOOD_HEAD "partitions 3\nhuge_pages 3\n");
    expect_refused(-EBADMSG, "huge_pages 3: above 2");
    write_conf(GOOD_HEAD "partitions 3\nnuma_node -1\n");
    expect_refused(-EBADMSG, "numa_node '-1': not a number");
}

Test(topic_config, placement_keys_written_when_set)
{
    evb_topic_config tc = {.ring_bytes = 1 << 16, .numa_node = EVB_NUMA_NODE(0),
                           .huge_pages = EVB_HUGE_PAGES_TRY};
    cr_assert_eq(evb_topic_create(bus, "placed", &tc), 0, "%s", evb_last_error());
    char path[600], text[1024] = {0};
    snprintf(path, sizeof path, "%s/placed/topic.conf", t_bus_dir());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    cr_assert_gt(n, 0);
    cr_assert(strstr(text, "\nnuma_node 0\nhuge_pages 1\n"), "%s", text);
    FILE *g = fopen(conf_path, "r");
    n = fread(text, 1, sizeof text - 1, g);
    text[n] = '\0';
    fclose(g);
    cr_assert_null(strstr(text, "numa_node"), "not written unless set: %s", text);
    cr_assert_null(strstr(text, "huge_pages"), "%s", text);
}

/* The bound evbus.h states (a quarter of the ring less 64) is the bound
 * accepted, for every ring size, and every accepted max_event_bytes makes
 * a largest frame that fits the ring's quarter and a frame's 32-bit
 * length: a 16 GiB ring's quarter is 2^32, one past it (the frame limit
 * wrapped to 0 and the topic could not be made). */
Test(topic_config, every_accepted_max_event_makes_a_ring_that_holds_it)
{
    for (uint64_t rb = EVB_RING_MIN_CAPACITY; rb <= EVB_RING_MAX_CAPACITY; rb *= 2) {
        uint64_t top = evb_topic_max_event(rb);
        uint64_t stated = rb / 4 - 64 < (1ull << 32) - 128 ? rb / 4 - 64 : (1ull << 32) - 128;
        cr_assert_eq(top, stated, "ring %llu", (unsigned long long)rb);
        for (uint64_t m = top - 80; m <= top + 1; m++) {
            evb_topic_config cfg = {.partitions = 1, .ring_bytes = rb,
                                    .max_event_bytes = (uint32_t)m};
            int rc = evb_topic_config_check(&cfg);
            if (m > top) {
                cr_assert_eq(rc, -EINVAL, "ring %llu max %llu", (unsigned long long)rb,
                             (unsigned long long)m);
                continue;
            }
            cr_assert_eq(rc, 0, "ring %llu max %llu: %s", (unsigned long long)rb,
                         (unsigned long long)m, evb_last_error());
            uint32_t frame = evb_topic_max_frame(&cfg);
            cr_assert_eq(frame, evb_frame_max(m), "ring %llu max %llu: frame limit wrapped",
                         (unsigned long long)rb, (unsigned long long)m);
            cr_assert_leq(frame, rb / 4);
            cr_assert_eq(frame % EVB_FRAME_LINE, 0);
            cr_assert_leq(frame, evb_topic_max_run(rb), "a batch must take one largest event");
        }
        /* A batch's claim: a quarter ring, in 32 bits, whole lines (a 16
         * GiB ring's quarter truncated to a claim of 0 bytes). */
        uint64_t run = evb_topic_max_run(rb);
        cr_assert_leq(run, rb / 4);
        cr_assert_leq(run, UINT32_MAX, "ring %llu", (unsigned long long)rb);
        cr_assert_eq(run % EVB_FRAME_LINE, 0);
        cr_assert_geq(run, rb / 4 < (1ull << 32) ? rb / 4 : (1ull << 32) - EVB_FRAME_LINE);
    }
}
