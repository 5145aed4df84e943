/*
 * test_bus_meta.c - bus.meta (bus/bus_meta_format.h): a new bus writes the
 * page this build reads; a version 1 page is upgraded in place and keeps
 * its producer ids; a page with a wrong magic, a newer version, another
 * format word, a wrong size, or an empty or zeroed file is refused with a
 * message naming the value found and the value expected, and nothing
 * crashes (run it under ASan). Creation is race-free and a creator killed
 * mid-way wedges nothing.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_meta_format.h"
#include "t_helpers.h"

static void teardown(void)
{
    t_bus_cleanup();
}

TestSuite(bus_meta, .fini = teardown, .timeout = 30);

static const char *meta_path(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/bus.meta", t_bus_dir());
    return path;
}

static void write_meta(const void *buf, size_t n)
{
    FILE *f = fopen(meta_path(), "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Open the bus over the prepared bus.meta; expect RC and a message that
 * contains WANT (and WANT2 unless NULL). */
static void open_expect(int rc, const char *want, const char *want2)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *bus = NULL;
    int got = evb_bus_open(&bus, t_bus_dir(), &o);
    const char *msg = evb_last_error();
    cr_assert_eq(got, rc, "open returned %d, expected %d (%s)", got, rc, msg);
    cr_assert_null(bus);
    cr_assert(strstr(msg, "bus.meta"), "message names the file: %s", msg);
    cr_assert(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
    if (want2)
        cr_assert(strstr(msg, want2), "message '%s' lacks '%s'", msg, want2);
}

static struct evb_bus_meta read_page(void)
{
    struct evb_bus_meta m;
    FILE *f = fopen(meta_path(), "r");
    cr_assert_not_null(f);
    cr_assert_eq(fread(&m, 1, sizeof m, f), sizeof m);
    fclose(f);
    return m;
}

static struct evb_bus_meta good_page(void)
{
    struct evb_bus_meta m;
    memset(&m, 0, sizeof m);
    atomic_store_explicit(&m.magic, EVB_BUS_MAGIC, memory_order_relaxed);
    atomic_store_explicit(&m.version, EVB_BUS_VERSION, memory_order_relaxed);
    atomic_store_explicit(&m.format, EVB_BUS_FORMAT_WORD, memory_order_relaxed);
    return m;
}

Test(bus_meta, new_bus_writes_this_builds_page)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
    evb_bus_close(bus);
    struct stat st;
    cr_assert_eq(stat(meta_path(), &st), 0);
    cr_assert_eq(st.st_size, EVB_BUS_META_BYTES);
    struct evb_bus_meta m = read_page();
    cr_assert_eq(atomic_load_explicit(&m.magic, memory_order_relaxed), EVB_BUS_MAGIC);
    cr_assert_eq(atomic_load_explicit(&m.version, memory_order_relaxed), EVB_BUS_VERSION);
    cr_assert_eq(atomic_load_explicit(&m.format, memory_order_relaxed), EVB_BUS_FORMAT_WORD);
    /* And this build opens it again. */
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
    evb_bus_close(bus);
}

/* bus.meta is made under a temporary name and linked whole: an empty or
 * zeroed one is damage. Taking it as new would hand out producer ids from
 * 1 again, so (producer id, sequence) pairs would repeat. */
Test(bus_meta, empty_file_is_ebadmsg)
{
    write_meta("", 0);
    char want[64];
    snprintf(want, sizeof want, "0 bytes, expected %u (empty", EVB_BUS_META_BYTES);
    open_expect(-EBADMSG, want, NULL);
}

Test(bus_meta, zeroed_page_is_ebadmsg)
{
    static uint8_t page[EVB_BUS_META_BYTES];
    write_meta(page, sizeof page);
    open_expect(-EBADMSG, "magic 0x0, expected 0x314154454d425645", NULL);
}

/* A creator killed mid-way leaves only its temporary file (a dead pid's,
 * or one named after our own pid by a process that had it before): the
 * next opener creates the page as usual, and the sweep removes the dead
 * one's. */
Test(bus_meta, creator_killed_mid_way_leaves_no_wedge)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/.tmp.bus.meta.%d.0", t_bus_dir(), (int)getpid());
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fclose(f);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    cr_assert_eq(t_wait_exit(dead, 5000), 0);
    snprintf(tmp, sizeof tmp, "%s/.tmp.bus.meta.%d.0", t_bus_dir(), (int)dead);
    f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fclose(f);
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
    evb_bus_close(bus);
    struct evb_bus_meta m = read_page();
    cr_assert_eq(atomic_load_explicit(&m.magic, memory_order_relaxed), EVB_BUS_MAGIC);
}

static int open_once(void *arg)
{
    struct t_shared *g = arg;
    atomic_fetch_add(&g->ready, 1);
    while (!atomic_load(&g->go))
        ;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *bus;
    int rc = evb_bus_open(&bus, t_bus_dir(), &o);
    if (rc == 0)
        evb_bus_close(bus);
    return rc == 0 ? 0 : 1;
}

/* First openers racing: one creates, the others open its page. */
Test(bus_meta, racing_first_openers_all_open_one_page)
{
    /* Name the directories before forking: each child would make its own. */
    (void)t_bus_dir();
    (void)t_data_dir();
    struct t_shared *g = t_shared_new();
    pid_t kids[6];
    for (int i = 0; i < 6; i++)
        kids[i] = t_spawn(open_once, g);
    cr_assert(t_wait_count(&g->ready, 6, 5000));
    atomic_store(&g->go, 1);
    for (int i = 0; i < 6; i++)
        cr_expect_eq(t_wait_exit(kids[i], 10000), 0, "opener %d failed", i);
    struct evb_bus_meta m = read_page();
    cr_assert_eq(atomic_load_explicit(&m.magic, memory_order_relaxed), EVB_BUS_MAGIC);
}

Test(bus_meta, wrong_magic_is_ebadmsg)
{
    struct evb_bus_meta m = good_page();
    atomic_store_explicit(&m.magic, 0x0123456789abcdefull, memory_order_relaxed);
    write_meta(&m, sizeof m);
    open_expect(-EBADMSG, "magic 0x123456789abcdef", "expected 0x314154454d425645");
}

/* The start of a version 1 page, as a build of that version wrote it;
 * the rest of its 4096 bytes were zero. */
struct v1_meta {
    uint64_t magic;
    uint32_t version;
    uint32_t pad_;
    uint32_t next_producer_id;
    uint32_t pad2_;
};

Test(bus_meta, version_1_page_is_upgraded_and_keeps_its_ids)
{
    static uint8_t page[EVB_BUS_META_BYTES];
    struct v1_meta old = {.magic = EVB_BUS_MAGIC, .version = 1, .next_producer_id = 41};
    memcpy(page, &old, sizeof old);
    write_meta(page, sizeof page);
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_bus *bus;
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "t", NULL), 0, "%s", evb_last_error());
    evb_producer_close(p);
    evb_bus_close(bus);
    struct evb_bus_meta m = read_page();
    cr_assert_eq(atomic_load_explicit(&m.magic, memory_order_relaxed), EVB_BUS_MAGIC);
    cr_assert_eq(atomic_load_explicit(&m.version, memory_order_relaxed), EVB_BUS_VERSION);
    cr_assert_eq(atomic_load_explicit(&m.format, memory_order_relaxed), EVB_BUS_FORMAT_WORD);
    /* The id went on from the old page's, at the offset old builds use. */
    cr_assert_eq(atomic_load_explicit(&m.next_producer_id, memory_order_relaxed), 42);
    uint32_t at16;
    memcpy(&at16, (const uint8_t *)&m + 16, sizeof at16);
    cr_assert_eq(at16, 42);
    /* And the upgraded page opens again. */
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0, "%s", evb_last_error());
    evb_bus_close(bus);
}

Test(bus_meta, newer_version_is_eproto)
{
    struct evb_bus_meta m = good_page();
    atomic_store_explicit(&m.version, EVB_BUS_VERSION + 1, memory_order_relaxed);
    write_meta(&m, sizeof m);
    char want[64];
    snprintf(want, sizeof want, "version %u, this build reads %u", EVB_BUS_VERSION + 1,
             EVB_BUS_VERSION);
    open_expect(-EPROTO, want, NULL);
}

Test(bus_meta, version_1_with_a_stray_format_word_is_eproto)
{
    /* Version 1 had zero there; only this build's word (an upgrade cut
     * short) may sit beside version 1. */
    struct evb_bus_meta m = good_page();
    atomic_store_explicit(&m.version, 1, memory_order_relaxed);
    atomic_store_explicit(&m.format, 0xdead, memory_order_relaxed);
    write_meta(&m, sizeof m);
    char want[96];
    snprintf(want, sizeof want, "format 0xdead, this build reads 0x%llx",
             (unsigned long long)EVB_BUS_FORMAT_WORD);
    open_expect(-EPROTO, want, NULL);
}

Test(bus_meta, other_format_word_is_eproto)
{
    struct evb_bus_meta m = good_page();
    atomic_store_explicit(&m.format, 0xdead, memory_order_relaxed);
    write_meta(&m, sizeof m);
    char want[96];
    snprintf(want, sizeof want, "format 0xdead, this build reads 0x%llx",
             (unsigned long long)EVB_BUS_FORMAT_WORD);
    open_expect(-EPROTO, want, NULL);
}

Test(bus_meta, truncated_file_is_ebadmsg)
{
    /* Magic and version only: mapping a full page of it would fault. */
    struct evb_bus_meta m = good_page();
    write_meta(&m, 16);
    char want[64];
    snprintf(want, sizeof want, "16 bytes, expected %u", EVB_BUS_META_BYTES);
    open_expect(-EBADMSG, want, NULL);
}

Test(bus_meta, oversized_file_is_ebadmsg)
{
    static uint8_t big[2 * EVB_BUS_META_BYTES];
    struct evb_bus_meta m = good_page();
    memcpy(big, &m, sizeof m);
    write_meta(big, sizeof big);
    char want[64];
    snprintf(want, sizeof want, "%u bytes, expected %u", 2 * EVB_BUS_META_BYTES,
             EVB_BUS_META_BYTES);
    open_expect(-EBADMSG, want, NULL);
}
