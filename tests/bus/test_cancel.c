/*
 * test_cancel.c - pthread_cancel (deferred) of a thread inside an evbus
 * call. No call is a cancellation point (evbus.h, Cancellation): a cancel
 * that arrives while a call runs must leave no process mutex held, no
 * slot of a live process taken, no claim open in the ring and no call cut
 * short; it is acted on at the thread's next cancellation point after the
 * call. Each test cancels real threads at chosen points: a cancel made
 * pending just before the call (so the call's first cancellation point
 * would act on it), or one made from a crash point inside the call.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "t_helpers.h"

#define VLEN 64u

static evb_bus *bus;

static void setup(void)
{
    evb_bus_options bo = {.data_dir = t_data_dir(), .dead_ms = 100, .stall_ms = 300};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &bo), 0, "%s", evb_last_error());
}

static void teardown(void)
{
    atomic_store(&evb_crash_hook, NULL);
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(cancel, .init = setup, .fini = teardown, .timeout = 60);

static void topic(const char *name, uint32_t durability)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10, .durability = durability};
    cr_assert_eq(evb_topic_create(bus, name, &tc), 0, "%s", evb_last_error());
}

static evb_producer *producer(const char *name)
{
    evb_producer *p;
    evb_producer_options po = {.block_ms = 2000};
    cr_assert_eq(evb_producer_open(&p, bus, name, &po), 0, "%s", evb_last_error());
    return p;
}

/* Join T within MS; false if it is still running (hung). */
static bool join_within(pthread_t t, int ms, void **rv)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    return pthread_timedjoin_np(t, rv, &dl) == 0;
}

/* A child's own handle on the test's bus (a fork opens its own). */
static evb_bus *child_bus(void)
{
    evb_bus *b;
    evb_bus_options bo = {.data_dir = t_data_dir(), .dead_ms = 100, .stall_ms = 300};
    return evb_bus_open(&b, t_bus_dir(), &bo) ? NULL : b;
}

/* ---- a call made with a cancel pending ---- */

struct call {
    int (*fn)(struct call *c);
    const char *topic;
    evb_producer *p;
    evb_consumer *c;
    _Atomic int returned; /* the call ran to its end */
    int rc;
    char err[256]; /* its evb_last_error() */
};

/* The thread: cancel ourselves (pending: nothing here is a cancellation
 * point), make the call, then act on the cancel. */
static void *cancelled_call(void *arg)
{
    struct call *c = arg;
    pthread_cancel(pthread_self());
    c->rc = c->fn(c);
    snprintf(c->err, sizeof c->err, "%s", evb_last_error());
    atomic_store(&c->returned, 1);
    pthread_testcancel();
    return NULL;
}

/* FN in a thread with a cancel pending: it must return (its result in
 * C->rc), and the cancel take the thread right after. */
static void run_cancelled(struct call *c, const char *what)
{
    pthread_t t;
    void *rv = NULL;
    cr_assert_eq(pthread_create(&t, NULL, cancelled_call, c), 0);
    cr_assert(join_within(t, 20000, &rv), "%s: the cancelled thread hangs", what);
    cr_expect_eq(rv, PTHREAD_CANCELED, "%s: the thread was not cancelled", what);
    cr_expect(atomic_load(&c->returned), "%s was cut short by the cancel", what);
    cr_expect_eq(c->rc, 0, "%s: %d (%s)", what, c->rc, c->err);
}

/* Publish 20 events on TOPIC with FLAGS from a fresh producer, in a
 * thread bounded in time (a lock left held hangs it), and read the topic
 * back from the earliest: those 20 and EXPECT_OTHERS more, no damage. */
struct after {
    const char *topic;
    uint32_t flags;
    int rc;
    char err[256];
};

static void *publish_some(void *arg)
{
    struct after *a = arg;
    evb_producer *p;
    evb_producer_options po = {.block_ms = 2000};
    if ((a->rc = evb_producer_open(&p, bus, a->topic, &po))) {
        snprintf(a->err, sizeof a->err, "%s", evb_last_error());
        return NULL;
    }
    for (uint64_t i = 0; i < 20 && !a->rc; i++) {
        uint8_t v[VLEN];
        t_value_fill(v, VLEN, 7, i);
        evb_msg m = {.value = v, .value_len = VLEN, .partition = 0, .flags = a->flags};
        a->rc = evb_publish(p, &m);
    }
    snprintf(a->err, sizeof a->err, "%s", evb_last_error());
    evb_producer_close(p);
    return NULL;
}

static void topic_works(const char *name, uint32_t flags, uint64_t expect_others)
{
    struct after a = {.topic = name, .flags = flags};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, publish_some, &a), 0);
    cr_assert(join_within(t, 10000, NULL),
              "topic %s: a producer of another thread hangs (a lock left held?)", name);
    cr_assert_eq(a.rc, 0, "topic %s: %d (%s)", name, a.rc, a.err);
    evb_consumer *c;
    evb_consumer_options co = {.start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&c, bus, name, &co), 0, "%s", evb_last_error());
    uint64_t got = 0, mine = 0;
    evb_event ev;
    int rc;
    while ((rc = evb_consumer_next(c, &ev, 1000)) == 0) {
        uint32_t who;
        uint64_t seq;
        got++;
        if (ev.value_len == VLEN && t_value_check(ev.value, VLEN, &who, &seq) && who == 7)
            mine++;
    }
    cr_expect_eq(rc, -ETIMEDOUT, "topic %s: reading it back: %d (%s)", name, rc,
                 evb_last_error());
    cr_expect_eq(mine, 20, "topic %s: %llu of the 20 events read back", name,
                 (unsigned long long)mine);
    cr_expect_eq(got, 20 + expect_others, "topic %s: %llu events read back", name,
                 (unsigned long long)got);
    evb_consumer_close(c);
}

static int do_open(struct call *c)
{
    evb_producer_options po = {.block_ms = 2000};
    return evb_producer_open(&c->p, bus, c->topic, &po);
}

static int do_close(struct call *c)
{
    evb_producer_close(c->p);
    c->p = NULL;
    return 0;
}

static int do_claim_commit(struct call *c)
{
    struct evb_claim cl;
    int rc = evb_claim(c->p, 0, NULL, 0, VLEN, &cl);
    if (rc)
        return rc;
    t_value_fill(cl.value, VLEN, 8, 0);
    return evb_commit(c->p, &cl);
}

static int do_publish_sync(struct call *c)
{
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 8, 1);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = 0, .flags = EVB_MSG_SYNC};
    return evb_publish(c->p, &m);
}

static int do_producer_sync(struct call *c)
{
    return evb_producer_sync(c->p, 5000);
}

static int do_consumer_open(struct call *c)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "cx",
                               .start = EVB_START_EARLIEST};
    return evb_consumer_open(&c->c, bus, c->topic, &co);
}

static int do_consumer_commit(struct call *c)
{
    evb_event ev;
    int rc = evb_consumer_next(c->c, &ev, 1000);
    return rc ? rc : evb_consumer_commit(c->c);
}

static int do_consumer_close(struct call *c)
{
    evb_consumer_close(c->c);
    c->c = NULL;
    return 0;
}

static int do_topic_create(struct call *c)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10,
                           .durability = EVB_DURABILITY_SYNC};
    return evb_topic_create(bus, c->topic, &tc);
}

/*
 * Every step of a durable producer's and a named consumer's life, each
 * made by a thread with a cancel pending (open, read, fdatasync,
 * pthread_join and nanosleep are all reached on the way): each call must
 * run to its end, and the topic go on working for other threads of the
 * process (its flusher, its locks, its ring).
 */
Test(cancel, a_pending_cancel_cuts_no_call_short)
{
    struct call c = {.topic = "d"};
    struct {
        int (*fn)(struct call *c);
        const char *what;
    } steps[] = {
        {do_topic_create, "evb_topic_create"},
        {do_open, "evb_producer_open"},
        {do_claim_commit, "evb_claim and evb_commit"},
        {do_publish_sync, "evb_publish (EVB_MSG_SYNC)"},
        {do_producer_sync, "evb_producer_sync"},
        {do_close, "evb_producer_close"},
        {do_consumer_open, "evb_consumer_open"},
        {do_consumer_commit, "evb_consumer_next and evb_consumer_commit"},
        {do_consumer_close, "evb_consumer_close"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        c.fn = steps[i].fn;
        atomic_store(&c.returned, 0);
        c.rc = -1;
        run_cancelled(&c, steps[i].what);
    }
    topic_works("d", EVB_MSG_SYNC, 2);
}

/*
 * The first claim of a process reads the kernel's clock source (open,
 * read: cancellation points) to set up the event clock, after the claim
 * took its place in the ring and before the handle knew it had one open.
 * A thread cancelled there died with its claim open in the ring but not
 * in its handle, and the handle's close, from another thread, gave up
 * the slot without aborting it: a hole no producer's intent explains,
 * and the partition read as damaged for good. The claim must come back
 * whole, and the ring stay whole.
 */
Test(cancel, a_cancel_in_the_first_claim_of_a_process_leaves_the_ring_whole)
{
    topic("n", EVB_DURABILITY_NONE);
    struct call c = {.topic = "n", .p = producer("n"), .fn = do_claim_commit};
    run_cancelled(&c, "the process's first evb_claim and its evb_commit");
    evb_producer_close(c.p);
    topic_works("n", 0, 1);
}

/* ---- a cancel made at a crash point inside a call ---- */

/* The thread to cancel at the crash point named AT, once. */
static _Thread_local bool cancel_me;
static _Atomic int cancel_armed;
static const char *cancel_at;

static void cancel_at_point(const char *name)
{
    if (!cancel_me || strcmp(name, cancel_at) || !atomic_exchange(&cancel_armed, 0))
        return;
    pthread_cancel(pthread_self()); /* acted on at the next cancellation point */
}

/* The thread: make the call (through its pointer: a local of an inlined
 * call left out of scope in this frame, which the cancel's unwinding
 * leaves poisoned, trips ASan as the thread's stack is torn down), then
 * act on a cancel made inside it. */
static void *marked_call(void *arg)
{
    struct call *c = arg;
    cancel_me = true;
    c->rc = c->fn(c);
    snprintf(c->err, sizeof c->err, "%s", evb_last_error());
    atomic_store(&c->returned, 1);
    pthread_testcancel();
    return NULL;
}

/*
 * The first producer of a durable topic in a process starts its flusher
 * under the bus handle's mutex (evb_flusher_get): mapping the topic and
 * starting the thread open files. A thread cancelled there died with the
 * mutex held, and every later producer open of the process, on any
 * durable topic, hung for ever (cold attack). The open must complete,
 * and another thread's open and sync publishes go through.
 */
Test(cancel, a_cancel_inside_producer_open_leaves_no_lock_held)
{
    topic("d", EVB_DURABILITY_SYNC);
    cancel_at = "flusher.get";
    atomic_store(&cancel_armed, 1);
    atomic_store(&evb_crash_hook, cancel_at_point);
    struct call c = {.topic = "d", .fn = do_open};
    pthread_t t;
    void *rv = NULL;
    cr_assert_eq(pthread_create(&t, NULL, marked_call, &c), 0);
    cr_assert(join_within(t, 10000, &rv), "the cancelled opener hangs");
    atomic_store(&evb_crash_hook, NULL);
    cr_assert_eq(atomic_load(&cancel_armed), 0, "the opener never reached flusher.get");
    cr_expect_eq(rv, PTHREAD_CANCELED);
    cr_expect(atomic_load(&c.returned), "evb_producer_open was cut short by the cancel");
    topic_works("d", EVB_MSG_SYNC, 0);
    if (c.p)
        evb_producer_close(c.p);
}

/* Child: holds the named consumer "x" of TOPIC open until killed. */
static int hold_consumer(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus *b = child_bus();
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "x"};
    if (!b || evb_consumer_open(&c, b, "k", &co))
        return 1;
    atomic_store(&sh->ready, 1);
    for (;;)
        pause();
}

static int do_open_x(struct call *c)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "x"};
    int rc = evb_consumer_open(&c->c, bus, c->topic, &co);
    return rc == -EBUSY ? 0 : rc ? rc : -EEXIST; /* held by the child */
}

static void *open_named(void *arg)
{
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "y"};
    *(int *)arg = evb_consumer_open(&c, bus, "k", &co);
    if (!*(int *)arg)
        evb_consumer_close(c);
    return NULL;
}

/*
 * A named consumer's open looks whether the process holding its cursor
 * file is alive (/proc: open, read) under the process's list of cursor
 * files held (a mutex). A thread cancelled there died with the mutex
 * held, and every later named consumer open or close of the process hung.
 * The open must complete (-EBUSY: the name is held), and another
 * thread's open of another name go through.
 */
Test(cancel, a_cancel_inside_consumer_open_leaves_no_lock_held)
{
    topic("k", EVB_DURABILITY_NONE);
    struct t_shared *sh = t_shared_new();
    pid_t pid = t_spawn(hold_consumer, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 5000), "the child did not open its consumer");
    cancel_at = "cursor.held";
    atomic_store(&cancel_armed, 1);
    atomic_store(&evb_crash_hook, cancel_at_point);
    struct call c = {.topic = "k", .fn = do_open_x};
    pthread_t t;
    void *rv = NULL;
    cr_assert_eq(pthread_create(&t, NULL, marked_call, &c), 0);
    cr_assert(join_within(t, 10000, &rv), "the cancelled opener hangs");
    atomic_store(&evb_crash_hook, NULL);
    cr_assert_eq(atomic_load(&cancel_armed), 0, "the opener never reached cursor.held");
    cr_expect_eq(rv, PTHREAD_CANCELED);
    cr_expect(atomic_load(&c.returned), "evb_consumer_open was cut short by the cancel");
    cr_expect_eq(c.rc, 0, "evb_consumer_open: %d", c.rc);
    int rc = -1;
    cr_assert_eq(pthread_create(&t, NULL, open_named, &rc), 0);
    cr_expect(join_within(t, 5000, NULL), "another named consumer's open hangs (a lock left "
              "held?)");
    cr_expect_eq(rc, 0, "another named consumer's open: %d", rc);
    kill(pid, SIGKILL);
    t_wait_exit(pid, 5000);
}

/* ---- a claim open in the application's code ---- */

static __attribute__((noinline)) int claim_only(struct call *c)
{
    struct evb_claim cl;
    int rc = evb_claim(c->p, 0, NULL, 0, VLEN, &cl);
    if (!rc)
        t_value_fill(cl.value, VLEN, 8, 0);
    return rc;
}

/* No locals in the frame the cancel unwinds (see marked_call). */
static void *claim_then_sleep(void *arg)
{
    struct call *c = arg;
    c->rc = claim_only(c);
    snprintf(c->err, sizeof c->err, "%s", evb_last_error());
    atomic_store(&c->returned, 1);
    for (;;)
        usleep(1000); /* the application's cancellation point */
    return NULL;
}

/*
 * A thread cancelled in its own code between evb_claim and evb_commit (a
 * write, a sleep), its producer then closed by another thread: the close
 * aborts the claim as the handle's owner would (a pad, counted aborted),
 * so the ring stays whole for every reader and producer.
 */
Test(cancel, a_claim_left_open_by_a_cancelled_thread_is_aborted_at_close)
{
    topic("s", EVB_DURABILITY_SYNC);
    struct call c = {.topic = "s", .p = producer("s")};
    pthread_t t;
    void *rv = NULL;
    cr_assert_eq(pthread_create(&t, NULL, claim_then_sleep, &c), 0);
    while (!atomic_load(&c.returned))
        usleep(1000);
    cr_assert_eq(c.rc, 0, "%s", c.err);
    pthread_cancel(t);
    cr_assert(join_within(t, 5000, &rv));
    cr_assert_eq(rv, PTHREAD_CANCELED);
    evb_producer_close(c.p);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "s", 0, &st), 0, "%s", evb_last_error());
    cr_expect_eq(st.aborted, 1);
    topic_works("s", EVB_MSG_SYNC, 0);
}

/* ---- waits that look at other processes (/proc) ---- */

/* Child: a lossless reader of TOPIC that reads nothing, so the ring fills
 * and producers wait for it; alive until killed. */
static int gating_reader(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus *b = child_bus();
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    if (!b || evb_consumer_open(&c, b, "g", &co))
        return 1;
    atomic_store(&sh->ready, 1);
    for (;;)
        pause();
}

static int do_publish_full(struct call *c)
{
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 8, 2);
    evb_msg m = {.value = v, .value_len = VLEN, .partition = 0};
    int rc = evb_publish(c->p, &m);
    return rc == -ETIMEDOUT ? 0 : rc ? rc : -EEXIST; /* it must wait, and time out */
}

/*
 * A producer that waits for room looks whether the readers holding the
 * ring are alive (/proc: open and read, cancellation points) every
 * dead_ms / 4. With a cancel pending, the wait must still run out
 * (-ETIMEDOUT after block_ms), not die in its look at /proc.
 */
Test(cancel, a_producer_waiting_for_room_is_not_cut_short)
{
    topic("g", EVB_DURABILITY_NONE);
    struct t_shared *sh = t_shared_new();
    pid_t pid = t_spawn(gating_reader, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 5000), "the reader did not start");
    evb_producer *p;
    evb_producer_options po = {.block_ms = 300};
    cr_assert_eq(evb_producer_open(&p, bus, "g", &po), 0, "%s", evb_last_error());
    uint8_t v[VLEN] = {0};
    int rc;
    for (int i = 0; i < 100000; i++)
        if ((rc = evb_publish(p, &(evb_msg){.value = v, .value_len = VLEN, .partition = 0})))
            break;
    cr_assert_eq(rc, -ETIMEDOUT, "the ring never filled: %d", rc);
    struct call c = {.topic = "g", .p = p, .fn = do_publish_full};
    run_cancelled(&c, "evb_publish on a full ring");
    kill(pid, SIGKILL);
    t_wait_exit(pid, 5000);
    evb_producer_close(p);
}

/* Child: claim in TOPIC and stall there, alive, until killed: a hole. */
static int stall_in_claim(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus *b = child_bus();
    evb_producer *p;
    struct evb_claim cl;
    if (!b || evb_producer_open(&p, b, "h", NULL) || evb_claim(p, 0, NULL, 0, VLEN, &cl))
        return 1;
    atomic_store(&sh->ready, 1);
    for (;;)
        pause();
}

static int do_read_past_hole(struct call *c)
{
    evb_event ev;
    int rc = evb_consumer_next(c->c, &ev, 5000);
    uint32_t who;
    uint64_t seq;
    if (!rc && (!t_value_check(ev.value, ev.value_len, &who, &seq) || who != 9))
        return -EBADMSG;
    return rc;
}

/*
 * A reader at a hole times it, and looks whether its owner is alive
 * (/proc: open and read) before it pads a claim stalled past stall_ms.
 * With a cancel pending, the read must pad the stalled claim and return
 * the event after it, not die in its look at /proc.
 */
Test(cancel, a_reader_padding_a_stalled_claim_is_not_cut_short)
{
    topic("h", EVB_DURABILITY_NONE);
    evb_consumer *co;
    evb_consumer_options o = {.start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&co, bus, "h", &o), 0, "%s", evb_last_error());
    struct t_shared *sh = t_shared_new();
    pid_t pid = t_spawn(stall_in_claim, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 5000), "the child did not claim");
    evb_producer *p = producer("h");
    uint8_t v[VLEN];
    t_value_fill(v, VLEN, 9, 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = VLEN, .partition = 0}), 0);
    struct call c = {.topic = "h", .c = co, .fn = do_read_past_hole};
    run_cancelled(&c, "evb_consumer_next at a stalled claim");
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "h", 0, &st), 0, "%s", evb_last_error());
    cr_expect_eq(st.padded_stalled, 1);
    kill(pid, SIGKILL);
    t_wait_exit(pid, 5000);
    evb_consumer_close(co);
    evb_producer_close(p);
}

static int do_read_all(struct call *c)
{
    evb_event ev;
    int rc;
    uint64_t n = 0;
    while ((rc = evb_consumer_next(c->c, &ev, 1000)) == 0) {
        uint32_t who;
        uint64_t seq;
        if (!t_value_check(ev.value, ev.value_len, &who, &seq) || who != 7 || seq != n)
            return -EBADMSG;
        n++;
    }
    return rc != -ETIMEDOUT ? rc : n == 3000 ? 0 : -ENODATA;
}

/*
 * A reader behind the ring reads the disk log: it maps each segment as it
 * gets there (its open and close are cancellation points). With a cancel pending,
 * the read of every event must run to its end.
 */
Test(cancel, a_reader_of_the_disk_log_is_not_cut_short)
{
    /* Segments of one ring each: the 3000 events span five of them. */
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10,
                           .segment_bytes = 64 << 10, .durability = EVB_DURABILITY_ASYNC};
    cr_assert_eq(evb_topic_create(bus, "l", &tc), 0, "%s", evb_last_error());
    evb_producer *p = producer("l");
    for (uint64_t i = 0; i < 3000; i++) {
        uint8_t v[VLEN];
        t_value_fill(v, VLEN, 7, i);
        cr_assert_eq(evb_publish(p, &(evb_msg){.value = v, .value_len = VLEN, .partition = 0}),
                     0, "%s", evb_last_error());
    }
    cr_assert_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());
    evb_consumer *co;
    evb_consumer_options o = {.start = EVB_START_EARLIEST};
    cr_assert_eq(evb_consumer_open(&co, bus, "l", &o), 0, "%s", evb_last_error());
    struct call c = {.topic = "l", .c = co, .fn = do_read_all};
    run_cancelled(&c, "evb_consumer_next through the disk log");
    evb_consumer_close(co);
    evb_producer_close(p);
}
