/*
 * test_readonly.c - a second uid against a bus shared with its group
 * (issue 9, #14-#16). Root makes the bus and its topics 0640 (group
 * readers) or 0600; a child that drops to uid nobody, in the bus's group
 * only, then tries what a reader may and may not do: a subscriber and a
 * durable topic's named consumer read, with the rings mapped read-only (a
 * store through an event pointer kills that child with SIGSEGV, and the
 * bus goes on); publishing, a gating reader of a ring-only topic, or
 * anything on a 0600 topic is -EACCES; the ring cannot be opened for
 * writing, so it cannot be truncated or punched. Needs root (setresuid);
 * skips, saying so, otherwise.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_helpers.h"
#include "t_uid.h"

#define NOBODY T_NOBODY

TestSuite(readonly, .fini = t_bus_cleanup, .timeout = 60);

static char bus_path[512];

static evb_bus *open_bus(void)
{
    evb_bus_options o = {.data_dir = t_data_dir(), .mode = 0640};
    evb_bus *bus = NULL;
    cr_assert_eq(evb_bus_open(&bus, bus_path, &o), 0, "%s", evb_last_error());
    return bus;
}

static void publish(evb_bus *bus, const char *topic, const char *value)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, topic, NULL), 0, "%s", evb_last_error());
    evb_msg m = {.value = value, .value_len = (uint32_t)strlen(value),
                 .partition = EVB_PARTITION_ANY};
    cr_assert_eq(evb_publish(p, &m), 0, "%s", evb_last_error());
    evb_producer_close(p);
}

/* Root's side: a 0640 bus with "mem" (ring only, 0640), "disk" (durable,
 * 0640) and "private" (0600), one event each; the directories above the
 * bus let others through. */
static evb_bus *setup(void)
{
    t_need_root("run a child as another uid");
    cr_assert_eq(chmod(t_bus_dir(), 0755), 0);
    cr_assert_eq(chmod(t_data_dir(), 0755), 0);
    snprintf(bus_path, sizeof bus_path, "%s/b", t_bus_dir());
    evb_bus *bus = open_bus();
    evb_topic_config mem = {.partitions = 2, .ring_bytes = 64 << 10, .file_mode = 0640};
    evb_topic_config disk = mem;
    disk.durability = EVB_DURABILITY_SYNC;
    evb_topic_config priv = mem;
    priv.file_mode = 0600;
    cr_assert_eq(evb_topic_create(bus, "mem", &mem), 0, "%s", evb_last_error());
    cr_assert_eq(evb_topic_create(bus, "disk", &disk), 0, "%s", evb_last_error());
    cr_assert_eq(evb_topic_create(bus, "private", &priv), 0, "%s", evb_last_error());
    publish(bus, "mem", "m0");
    publish(bus, "disk", "d0");
    publish(bus, "private", "p0");
    return bus;
}

/* Run fn(arg) in a child that is nobody, in the bus's group (root's, 0)
 * only. */
static pid_t spawn_reader(int (*fn)(void *arg), void *arg)
{
    return t_spawn_as(NOBODY, 0, fn, arg);
}

/* In a child: the shared bus as that child sees it, NULL when it cannot
 * open it (O's data directory is filled in). */
static evb_bus *child_bus(evb_bus_options o)
{
    evb_bus *bus = NULL;
    o.data_dir = t_data_dir();
    if (evb_bus_open(&bus, bus_path, &o))
        return NULL;
    return bus;
}

#define CHILD_CHECK(cond, code)                                                         \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "child: %s failed: %s\n", #cond, evb_last_error());         \
            return code;                                                                \
        }                                                                               \
    } while (0)

static int reader_side(void *arg)
{
    (void)arg;
    evb_bus *bus = child_bus((evb_bus_options){0});
    CHILD_CHECK(bus, 1);
    evb_producer *p;
    /* Publishing takes write access: -EACCES, for every topic. */
    CHILD_CHECK(evb_producer_open(&p, bus, "mem", NULL) == -EACCES, 2);
    CHILD_CHECK(evb_producer_open(&p, bus, "disk", NULL) == -EACCES, 3);
    CHILD_CHECK(evb_producer_open(&p, bus, "private", NULL) == -EACCES, 4);
    evb_consumer *c;
    evb_consumer_options lossless = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    evb_consumer_options named = {.kind = EVB_CONSUMER, .name = "ro",
                                  .start = EVB_START_EARLIEST};
    evb_consumer_options sub = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    /* Gating readers of a ring-only topic slow producers: -EACCES. */
    CHILD_CHECK(evb_consumer_open(&c, bus, "mem", &lossless) == -EACCES, 5);
    CHILD_CHECK(evb_consumer_open(&c, bus, "mem", &named) == -EACCES, 6);
    /* Nothing of a 0600 topic. */
    CHILD_CHECK(evb_consumer_open(&c, bus, "private", &sub) == -EACCES, 7);
    /* The ring files cannot be opened for writing (so not truncated or
     * punched either). */
    char ring[600];
    snprintf(ring, sizeof ring, "%s/mem/0.ring", bus_path);
    CHILD_CHECK(open(ring, O_RDWR) < 0 && errno == EACCES, 8);
    int fd = open(ring, O_RDONLY);
    CHILD_CHECK(fd >= 0, 9);
    CHILD_CHECK(ftruncate(fd, 0) < 0, 10);
    close(fd);
    /* A subscriber reads. */
    evb_event ev;
    CHILD_CHECK(evb_consumer_open(&c, bus, "mem", &sub) == 0, 11);
    CHILD_CHECK(evb_consumer_next(c, &ev, 1000) == 0, 12);
    CHILD_CHECK(ev.value_len == 2 && !memcmp(ev.value, "m0", 2), 13);
    evb_consumer_close(c);
    /* A named consumer of the durable topic reads, commits into a cursor
     * file of its own, and resumes after it. */
    CHILD_CHECK(evb_consumer_open(&c, bus, "disk", &named) == 0, 14);
    CHILD_CHECK(evb_consumer_next(c, &ev, 1000) == 0, 15);
    CHILD_CHECK(ev.value_len == 2 && !memcmp(ev.value, "d0", 2), 16);
    CHILD_CHECK(evb_consumer_commit(c) == 0, 17);
    evb_consumer_close(c);
    named.start = EVB_START_DEFAULT; /* committed */
    CHILD_CHECK(evb_consumer_open(&c, bus, "disk", &named) == 0, 18);
    CHILD_CHECK(evb_consumer_next(c, &ev, 100) == -ETIMEDOUT, 19);
    evb_consumer_close(c);
    evb_bus_close(bus);
    return 0;
}

Test(readonly, a_group_reader_reads_and_nothing_more)
{
    evb_bus *bus = setup();
    int rc = t_wait_exit(spawn_reader(reader_side, NULL), 20000);
    cr_assert_eq(rc, 0, "reader child: exit %d (the failed step's number)", rc);
    /* Its cursor file is its own, in the durable topic's consumers/. */
    char cur[600];
    struct stat st;
    snprintf(cur, sizeof cur, "%s/disk/consumers/ro.cur", t_data_dir());
    cr_assert_eq(stat(cur, &st), 0, "%s: %s", cur, strerror(errno));
    cr_assert_eq(st.st_uid, NOBODY);
    cr_assert_eq(st.st_mode & 07777, 0640);
    evb_bus_close(bus);
}

/* A reader that stores through an event pointer dies with SIGSEGV: its
 * mapping is read-only. The event under it is unchanged, and producers
 * and other readers go on. */
static int scribbler(void *arg)
{
    (void)arg;
    evb_bus *bus = child_bus((evb_bus_options){0});
    if (!bus)
        return 1;
    evb_consumer *c;
    evb_consumer_options sub = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_event ev;
    if (evb_consumer_open(&c, bus, "mem", &sub) || evb_consumer_next(c, &ev, 1000))
        return 2;
    signal(SIGSEGV, SIG_DFL);
    *(volatile char *)ev.value = 'X';
    return 3; /* the store went through: a copy, not the ring */
}

Test(readonly, a_reader_writing_through_an_event_dies_and_the_bus_goes_on)
{
    evb_bus *bus = setup();
    int rc = t_wait_exit(spawn_reader(scribbler, NULL), 20000);
    /* 3: the event was a copy in the reader's heap; then the ring is
     * still untouched, which the read below shows either way. */
    cr_assert(rc == 128 + SIGSEGV || rc == 3, "scribbler: exit %d", rc);
    evb_consumer *c;
    evb_consumer_options sub = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "mem", &sub), 0, "%s", evb_last_error());
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert(ev.value_len == 2 && !memcmp(ev.value, "m0", 2), "the event changed");
    publish(bus, "mem", "m1");
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert(ev.value_len == 2 && !memcmp(ev.value, "m1", 2));
    evb_consumer_close(c);
    evb_bus_close(bus);
}

/* A read-only subscriber blocked in next() gets a new event without a
 * writable reader around: its naps are bounded. */
static int waiter(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus *bus = child_bus((evb_bus_options){0});
    if (!bus)
        return 1;
    evb_consumer *c;
    evb_consumer_options sub = {.kind = EVB_SUBSCRIBER};
    if (evb_consumer_open(&c, bus, "mem", &sub))
        return 2;
    atomic_store(&sh->ready, 1);
    evb_event ev;
    int rc = evb_consumer_next(c, &ev, 5000);
    if (rc)
        return 3;
    atomic_store(&sh->val[0], t_now_ms());
    return ev.value_len == 4 && !memcmp(ev.value, "late", 4) ? 0 : 4;
}

Test(readonly, a_blocked_read_only_subscriber_wakes)
{
    evb_bus *bus = setup();
    struct t_shared *sh = t_shared_new();
    pid_t pid = spawn_reader(waiter, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 5000));
    usleep(200 * 1000); /* let it go to sleep, its naps grown to the longest */
    uint64_t sent = t_now_ms();
    publish(bus, "mem", "late");
    int rc = t_wait_exit(pid, 10000);
    cr_assert_eq(rc, 0, "waiter: exit %d", rc);
    uint64_t took = atomic_load(&sh->val[0]) - sent;
    cr_assert_lt(took, 500, "woke %llu ms after the event", (unsigned long long)took);
    evb_bus_close(bus);
}

/* The same for a reader that may write (same uid), reading in place an
 * event published after it attached: a lossless subscriber and a named
 * consumer. Events are handed out through a read-only view of the ring, so
 * the store faults. No root needed. */
struct scrib {
    evb_consumer_options co;
    struct t_shared *sh;
};

static int own_scribbler(void *arg)
{
    struct scrib *sc = arg;
    evb_bus *bus = child_bus((evb_bus_options){0});
    if (!bus)
        return 1;
    evb_consumer *c;
    evb_event ev;
    if (evb_consumer_open(&c, bus, "mem", &sc->co))
        return 2;
    atomic_store(&sc->sh->ready, 1);
    if (evb_consumer_next(c, &ev, 5000))
        return 4;
    /* The default action, whatever a sanitizer's runtime installed. */
    signal(SIGSEGV, SIG_DFL);
    *(volatile char *)ev.value = 'X';
    return 3;
}

static void own_reader_faults(evb_consumer_options co)
{
    snprintf(bus_path, sizeof bus_path, "%s/b", t_bus_dir());
    evb_bus *bus = open_bus();
    evb_topic_config mem = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "mem", &mem), 0, "%s", evb_last_error());
    struct scrib sc = {.co = co, .sh = t_shared_new()};
    pid_t pid = t_spawn(own_scribbler, &sc);
    cr_assert(t_wait_count(&sc.sh->ready, 1, 5000));
    publish(bus, "mem", "m0");
    int rc = t_wait_exit(pid, 20000);
    cr_assert_eq(rc, 128 + SIGSEGV, "scribbler: exit %d, expected death by SIGSEGV", rc);
    evb_consumer *c;
    evb_consumer_options sub = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "mem", &sub), 0, "%s", evb_last_error());
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert(ev.value_len == 2 && !memcmp(ev.value, "m0", 2), "the event changed");
    /* The dead reader's slot is reaped; producers go on. */
    for (int i = 0; i < 3; i++)
        publish(bus, "mem", "m1");
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert(ev.value_len == 2 && !memcmp(ev.value, "m1", 2));
    evb_consumer_close(c);
    evb_bus_close(bus);
}

Test(readonly, a_lossless_subscriber_writing_through_an_event_dies)
{
    own_reader_faults((evb_consumer_options){.kind = EVB_SUBSCRIBER_LOSSLESS});
}

Test(readonly, a_named_consumer_writing_through_an_event_dies)
{
    own_reader_faults((evb_consumer_options){.kind = EVB_CONSUMER, .name = "c",
                                             .start = EVB_START_LATEST});
}

/* consumers/ is writable by every reader of the topic. What one of them
 * plants there cannot steer another user's consumer: a cursor file of
 * theirs is refused (-EACCES), a symlink is not followed (-EMEDIUMTYPE),
 * and the file it points at is unchanged. */
static int planter(void *arg)
{
    (void)arg;
    evb_bus *bus = child_bus((evb_bus_options){0});
    if (!bus)
        return 1;
    evb_consumer *c;
    evb_consumer_options named = {.kind = EVB_CONSUMER, .name = "victim"};
    if (evb_consumer_open(&c, bus, "disk", &named))
        return 2;
    evb_consumer_close(c);
    char link[700];
    snprintf(link, sizeof link, "%s/disk/consumers/root.cur", t_data_dir());
    char target[600];
    snprintf(target, sizeof target, "%s/root-file", t_bus_dir());
    if (symlink(target, link))
        return 3;
    evb_bus_close(bus);
    return 0;
}

Test(readonly, what_a_reader_plants_in_consumers_steers_nobody)
{
    evb_bus *bus = setup();
    char target[600];
    snprintf(target, sizeof target, "%s/root-file", t_bus_dir());
    int fd = open(target, O_WRONLY | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "keep", 4), 4);
    close(fd);
    int rc = t_wait_exit(spawn_reader(planter, NULL), 20000);
    cr_assert_eq(rc, 0, "planter: exit %d", rc);
    evb_consumer *c;
    evb_consumer_options named = {.kind = EVB_CONSUMER, .name = "victim"};
    cr_assert_eq(evb_consumer_open(&c, bus, "disk", &named), -EACCES);
    cr_assert(strstr(evb_last_error(), "another user"), "%s", evb_last_error());
    named.name = "root";
    cr_assert_eq(evb_consumer_open(&c, bus, "disk", &named), -EMEDIUMTYPE);
    struct stat st;
    cr_assert_eq(stat(target, &st), 0);
    cr_assert_eq(st.st_size, 4, "written through the symlink");
    evb_bus_close(bus);
}

/* A hole a dead producer left: a read-only reader cannot pad it, so it
 * waits (no -EBADMSG, no fault) until someone who may write pads it, then
 * goes on. */
static int claim_and_die(void *arg)
{
    (void)arg;
    evb_bus *bus = child_bus((evb_bus_options){0});
    evb_producer *p;
    struct evb_claim cl;
    if (!bus || evb_producer_open(&p, bus, "mem", NULL) ||
        evb_claim(p, 0, NULL, 0, 8, &cl))
        return 1;
    raise(SIGKILL);
    return 2;
}

static int hole_reader(void *arg)
{
    struct t_shared *sh = arg;
    /* Short bounds, so the hole is past stall + dead well within the
     * first wait: a reader that took it for damage would say so there. */
    evb_bus *bus = child_bus((evb_bus_options){.dead_ms = 20, .stall_ms = 50});
    if (!bus)
        return 1;
    evb_consumer *c;
    evb_consumer_options sub = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST,
                                .only_partition = 1, .partition = 0};
    evb_event ev;
    if (evb_consumer_open(&c, bus, "mem", &sub) || evb_consumer_next(c, &ev, 1000) ||
        memcmp(ev.value, "m0", 2))
        return 2;
    int rc = evb_consumer_next(c, &ev, 600);
    if (rc != -ETIMEDOUT) {
        fprintf(stderr, "at the hole: %d (%s)\n", rc, evb_last_error());
        return 3;
    }
    atomic_store(&sh->ready, 1);
    if ((rc = evb_consumer_next(c, &ev, 5000)) || ev.value_len != 5 ||
        memcmp(ev.value, "after", 5))
        return 4;
    return 0;
}

Test(readonly, a_read_only_reader_waits_at_a_hole_for_a_writer)
{
    evb_bus *bus = setup(); /* "mem" partition 0 or 1 holds m0 */
    evb_bus_close(bus);
    /* Everything in partition 0: m0, the hole, then "after". */
    evb_bus_options o = {.data_dir = t_data_dir(), .dead_ms = 20, .stall_ms = 50};
    cr_assert_eq(evb_bus_open(&bus, bus_path, &o), 0, "%s", evb_last_error());
    cr_assert_eq(evb_topic_delete(bus, "mem"), 0, "%s", evb_last_error());
    evb_topic_config mem = {.partitions = 1, .ring_bytes = 64 << 10, .file_mode = 0640};
    cr_assert_eq(evb_topic_create(bus, "mem", &mem), 0, "%s", evb_last_error());
    publish(bus, "mem", "m0");
    cr_assert_eq(t_wait_exit(t_spawn(claim_and_die, NULL), 10000), 128 + SIGKILL);
    publish(bus, "mem", "after");
    struct t_shared *sh = t_shared_new();
    pid_t pid = spawn_reader(hole_reader, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 10000), "the read-only reader did not wait");
    /* A writable reader pads the dead producer's hole and reads on. */
    evb_consumer *c;
    evb_consumer_options sub = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, "mem", &sub), 0, "%s", evb_last_error());
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0, "%s", evb_last_error());
    cr_assert_eq(evb_consumer_next(c, &ev, 2000), 0, "%s", evb_last_error());
    cr_assert(ev.value_len == 5 && !memcmp(ev.value, "after", 5));
    evb_consumer_close(c);
    int rc = t_wait_exit(pid, 10000);
    cr_assert_eq(rc, 0, "read-only reader: exit %d", rc);
    evb_bus_close(bus);
}
