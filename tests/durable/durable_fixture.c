/*
 * durable_fixture.c - the bus, topic, publish and read-back fixture of
 * the durable API tests; see durable_fixture.h. What each suite checks
 * stays in its own file.
 */
#include <signal.h>
#include "durable_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "segment.h"

evb_bus *df_bus;

void df_setup(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&df_bus, t_bus_dir(), &o), 0, "bus open: %s", evb_last_error());
}

void df_teardown(void)
{
    evb_bus_close(df_bus);
    df_bus = NULL;
    t_bus_cleanup();
}

evb_topic_config df_config(uint32_t durability)
{
    return (evb_topic_config){.partitions = 1, .ring_bytes = 64 << 10,
                              .segment_bytes = 128 << 10, .durability = durability,
                              .max_event_bytes = 4096};
}

void df_create(const char *topic, const evb_topic_config *tc)
{
    cr_assert_eq(evb_topic_create(df_bus, topic, tc), 0, "create %s: %s", topic,
                 evb_last_error());
}

void df_publish_on(evb_producer *p, uint64_t seq)
{
    uint8_t v[DF_VLEN];
    t_value_fill(v, DF_VLEN, 1, seq);
    evb_msg m = {.value = v, .value_len = DF_VLEN, .partition = 0};
    cr_assert_eq(evb_publish(p, &m), 0, "publish %llu: %s", (unsigned long long)seq,
                 evb_last_error());
}

evb_producer *df_child_flusher(const char *topic)
{
    evb_bus *b;
    evb_producer *p;
    evb_bus_options o = {.data_dir = t_data_dir()};
    evb_producer_options po = {.block_ms = -1};
    if (evb_bus_open(&b, t_bus_dir(), &o) || evb_producer_open(&p, b, topic, &po))
        return NULL;
    uint8_t v[DF_VLEN];
    t_value_fill(v, DF_VLEN, 1, 0);
    evb_msg m = {.value = v, .value_len = DF_VLEN, .partition = 0, .flags = EVB_MSG_SYNC};
    return evb_publish(p, &m) ? NULL : p;
}

static struct t_shared *flusher_ready;

static int flusher_child(void *arg)
{
    if (!df_child_flusher(arg))
        return 10;
    atomic_store(&flusher_ready->ready, 1);
    for (;;)
        pause();
}

pid_t df_start_flusher(const char *topic)
{
    flusher_ready = t_shared_new();
    pid_t pid = t_spawn(flusher_child, (void *)topic);
    cr_assert(t_wait_count(&flusher_ready->ready, 1, 10000),
              "the flusher child never got ready");
    return pid;
}

void df_stop_flusher(pid_t pid)
{
    kill(pid, SIGKILL);
    kill(pid, SIGCONT);
    t_wait_exit(pid, 10000);
}

void df_publish(const char *topic, uint64_t from, uint64_t n)
{
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, topic, &po), 0, "producer: %s",
                 evb_last_error());
    for (uint64_t i = 0; i < n; i++)
        df_publish_on(p, from + i);
    cr_assert_eq(evb_producer_sync(p, 10000), 0, "sync: %s", evb_last_error());
    evb_producer_close(p);
}

void df_link_next_segment(const char *topic, const evb_topic_config *tc)
{
    char tdir[PATH_MAX], pdir[PATH_MAX], seg[PATH_MAX + 32], victim[PATH_MAX + 32];
    snprintf(tdir, sizeof tdir, "%s/%s", t_data_dir(), topic);
    evb_seg_part_dir(tdir, 0, pdir, sizeof pdir);
    snprintf(victim, sizeof victim, "%s/victim", t_data_dir());
    FILE *f = fopen(victim, "w");
    cr_assert_not_null(f);
    fputs("not a segment\n", f);
    fclose(f);
    cr_assert_eq(evb_seg_path(seg, sizeof seg, pdir, tc->segment_bytes, "log"), 0);
    cr_assert_eq(link(victim, seg), 0, "%s", strerror(errno));
}

struct evb_partition_stat df_stat(const char *topic)
{
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(df_bus, topic, 0, &st), 0, "stat %s: %s", topic,
                 evb_last_error());
    return st;
}

evb_event df_next(evb_consumer *c, uint64_t offset)
{
    evb_event ev;
    int rc = evb_consumer_next(c, &ev, 1000);
    cr_assert_eq(rc, 0, "event %llu: %s", (unsigned long long)offset, evb_strerror(rc));
    cr_assert_eq(ev.offset, offset, "offset %llu where %llu was due",
                 (unsigned long long)ev.offset, (unsigned long long)offset);
    uint32_t producer;
    uint64_t seq;
    cr_assert(t_value_check(ev.value, ev.value_len, &producer, &seq), "event %llu is torn",
              (unsigned long long)offset);
    cr_assert_eq(seq, offset, "event %llu carries sequence %llu",
                 (unsigned long long)offset, (unsigned long long)seq);
    return ev;
}

void df_read(evb_consumer *c, uint64_t from, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        df_next(c, from + i);
}

/* Set and read across threads (a flusher's scan, a reader): relaxed
 * atomics suffice, the test sets it before the calls that read and
 * clears it after they returned. */
static const char *fail_suffix;
static unsigned fails;

unsigned df_fail_reads(const char *suffix)
{
    __atomic_store_n(&fail_suffix, suffix, __ATOMIC_RELAXED);
    return __atomic_exchange_n(&fails, 0, __ATOMIC_RELAXED);
}

static const char *count_suffix; /* as fail_suffix */
static uint64_t counted;

uint64_t df_count_reads(const char *suffix)
{
    __atomic_store_n(&count_suffix, suffix, __ATOMIC_RELAXED);
    return __atomic_exchange_n(&counted, 0, __ATOMIC_RELAXED);
}

static bool fd_named(int fd, const char *suf)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, path, sizeof path - 1);
    size_t sl = strlen(suf);
    return k > 0 && (size_t)k >= sl && !memcmp(path + k - sl, suf, sl);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    const char *cs = __atomic_load_n(&count_suffix, __ATOMIC_RELAXED);
    if (cs && fd_named(fd, cs)) {
        ssize_t k = syscall(SYS_pread64, fd, buf, n, off);
        if (k > 0)
            __atomic_fetch_add(&counted, (uint64_t)k, __ATOMIC_RELAXED);
        return k;
    }
    const char *suf = __atomic_load_n(&fail_suffix, __ATOMIC_RELAXED);
    if (suf) {
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(link, path, sizeof path - 1);
        size_t sl = strlen(suf);
        if (k > 0 && (size_t)k >= sl && !memcmp(path + k - sl, suf, sl)) {
            __atomic_fetch_add(&fails, 1, __ATOMIC_RELAXED);
            errno = EIO;
            return -1;
        }
    }
    return syscall(SYS_pread64, fd, buf, n, off);
}
