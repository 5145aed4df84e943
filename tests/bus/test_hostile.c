/*
 * test_hostile.c - the consumer against issue 9's defect 6: an event's
 * key and value lengths are the ones the decoder checked, whatever the
 * ring says by the time the event is filled in.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "ring.h"
#include "t_helpers.h"

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 60);

/* Map partition PART of TOPIC on the test's own account. */
static void open_ring(struct evb_ring *r, const char *topic, uint32_t part)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%u.ring", t_bus_dir(), topic, part);
    cr_assert_eq(evb_ring_open(r, path), 0, "%s: %s", path, evb_err_get());
}

/* ---- defect 6: the lengths checked are the lengths used ---- */

static const char KEY[] = "k";
static const char VALUE[] = "hello-value";

/* Child: a lossless subscriber (reads the ring in place, no private copy)
 * stopped by the crash point between the frame's decoding and the event's
 * filling; reports the lengths it was given. */
static int stopped_reader(void *arg)
{
    struct t_shared *sh = arg;
    evb_bus *b;
    evb_consumer *c;
    evb_consumer_options co = {.kind = EVB_SUBSCRIBER_LOSSLESS};
    if (evb_bus_open(&b, t_bus_dir(), NULL) || evb_consumer_open(&c, b, "df", &co))
        return 10;
    setenv("EVB_CRASH_AT", "consumer.before_fill", 1);
    setenv("EVB_CRASH_SIGNAL", "STOP", 1);
    atomic_store_explicit(&sh->ready, 1, memory_order_release);
    evb_event ev;
    if (evb_consumer_next(c, &ev, 10000))
        return 11;
    atomic_store_explicit(&sh->val[0], ev.key_len, memory_order_relaxed);
    atomic_store_explicit(&sh->val[1], ev.value_len, memory_order_relaxed);
    bool same = ev.key_len == sizeof KEY - 1 && ev.value_len == sizeof VALUE - 1 &&
                !memcmp(ev.key, KEY, ev.key_len) && !memcmp(ev.value, VALUE, ev.value_len);
    return same ? 0 : 12;
}

Test(hostile, event_lengths_are_the_validated_ones)
{
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 64 << 10};
    cr_assert_eq(evb_topic_create(bus, "df", &tc), 0);
    struct t_shared *sh = t_shared_new();
    pid_t pid = t_spawn(stopped_reader, sh);
    cr_assert(t_wait_count(&sh->ready, 1, 5000), "reader never opened");
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "df", NULL), 0);
    evb_msg m = {.key = KEY, .key_len = sizeof KEY - 1, .value = VALUE,
                 .value_len = sizeof VALUE - 1, .partition = 0};
    cr_assert_eq(evb_publish(p, &m), 0);
    evb_producer_close(p);
    int st;
    cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(st), "reader did not stop between decode and fill");
    /* A hostile writer changes both lengths of the decoded frame. */
    struct evb_ring r;
    open_ring(&r, "df", 0);
    struct evb_frame *f = evb_ring_frame(&r, 0);
    cr_assert_eq(f->len, EVB_FRAME_HDR + sizeof KEY - 1 + sizeof VALUE - 1);
    f->len = UINT32_MAX - 7;
    f->key_len = UINT16_MAX;
    evb_ring_close(&r);
    kill(pid, SIGCONT);
    int code = t_wait_exit(pid, 10000);
    cr_expect_eq(atomic_load_explicit(&sh->val[0], memory_order_relaxed), sizeof KEY - 1,
                 "key_len fetched again from the ring");
    cr_expect_eq(atomic_load_explicit(&sh->val[1], memory_order_relaxed), sizeof VALUE - 1,
                 "value_len fetched again from the ring");
    cr_expect_eq(code, 0, "reader exit %d", code);
}
