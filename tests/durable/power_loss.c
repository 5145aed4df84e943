/*
 * power_loss.c - the processes of test_power_loss.sh, which cuts the power
 * under a durable topic. Two commands, public API only (plus the freeze
 * ioctl):
 *
 *   run   BUS DATA TOPIC sync|async PRODUCERS CUT_MS LOWER IMAGE COPY ACKS
 *         create TOPIC, start PRODUCERS processes that publish with
 *         synchronous acknowledgements and tell this one each acknowledged
 *         count through a pipe as soon as they have it; CUT_MS after every
 *         producer's first acknowledgement, cut the power: freeze the file
 *         system LOWER that holds IMAGE (the backing file of the device
 *         under DATA), so that from this instant no write reaches IMAGE,
 *         copy IMAGE to COPY, take the acknowledgements given so far (all
 *         of them were given for data that reached IMAGE before the
 *         freeze), SIGKILL the producers, thaw, and write the count per
 *         producer to ACKS.
 *   check BUS DATA TOPIC PRODUCERS ACKS
 *         open the bus over DATA as a process after a reboot would (BUS is
 *         a fresh directory) and read the partition back from offset 0:
 *         every event intact, offsets dense, each producer's sequences
 *         0, 1, 2, ... and at least as many as were acknowledged.
 *
 * Exit 0 when all holds, 1 with one line per finding on stderr, 2 when the
 * run itself could not be set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t_helpers.h"

#define PL_MAX_PRODUCERS 16
#define PL_MAX_VALUE 2048u
#define PL_BATCH_MAX 8u /* events per acknowledgement, at most */
/* Unacknowledged events a producer may leave on disk: the batch it was
 * told of but could not report, and the one in flight. */
#define PL_SLACK (2 * PL_BATCH_MAX)

static int usage(void)
{
    fprintf(stderr, "usage: power_loss run BUS DATA TOPIC sync|async PRODUCERS CUT_MS LOWER "
                    "IMAGE COPY ACKS\n"
                    "       power_loss check BUS DATA TOPIC PRODUCERS ACKS\n");
    return 2;
}

/* Sizes vary so that frames straddle blocks, pages and segment ends. */
static uint32_t value_len(uint32_t producer, uint64_t seq)
{
    return 24 + (uint32_t)((seq * 7919 + producer * 104729) % (PL_MAX_VALUE - 24));
}

static evb_bus *open_bus(const char *path, const char *data)
{
    evb_bus_options o = {.data_dir = data};
    evb_bus *b;
    int rc = evb_bus_open(&b, path, &o);
    if (rc) {
        fprintf(stderr, "power_loss: bus %s over %s: %s (%s)\n", path, data, evb_strerror(rc),
                evb_last_error());
        return NULL;
    }
    return b;
}

/* ---- run ---- */

/*
 * One producer: publish sequences 0, 1, 2, ... and write each count it has
 * been told is on disk to FD, never one before the call that says so
 * returned. On a sync topic each step is one EVB_MSG_SYNC publish or a
 * batch of up to PL_BATCH_MAX whose last event carries the flag; on an
 * async topic, as many plain publishes and then evb_producer_sync().
 * Runs until killed.
 */
static int produce(const char *bus_path, const char *data, const char *topic, bool sync,
                   uint32_t me, int fd)
{
    evb_bus *b = open_bus(bus_path, data);
    if (!b)
        return 20;
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    int rc = evb_producer_open(&p, b, topic, &po);
    if (rc) {
        fprintf(stderr, "power_loss: producer %u: open: %s\n", me, evb_strerror(rc));
        return 21;
    }
    static uint8_t vals[PL_BATCH_MAX][PL_MAX_VALUE];
    evb_msg m[PL_BATCH_MAX];
    for (uint64_t seq = 0;;) {
        uint32_t n = 1 + (uint32_t)((seq * 31 + me) % PL_BATCH_MAX);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t len = value_len(me, seq + i);
            t_value_fill(vals[i], len, me, seq + i);
            m[i] = (evb_msg){.value = vals[i], .value_len = len, .partition = 0};
        }
        if (sync) {
            m[n - 1].flags = EVB_MSG_SYNC;
            rc = n == 1 ? evb_publish(p, &m[0]) : evb_publish_batch(p, m, n);
            if (n > 1 && rc == (int)n)
                rc = 0;
        } else {
            for (uint32_t i = 0; i < n && !rc; i++)
                rc = evb_publish(p, &m[i]);
            if (!rc)
                rc = evb_producer_sync(p, -1);
        }
        if (rc) {
            fprintf(stderr, "power_loss: producer %u: publish of %" PRIu64 "..: %s\n", me,
                    seq, evb_strerror(rc));
            return 22;
        }
        seq += n;
        /* Acknowledged: the count goes out at once, 8 bytes, one write
         * (atomic on a pipe). */
        if (write(fd, &seq, sizeof seq) != (ssize_t)sizeof seq)
            return 23;
    }
}

/* Copy IMAGE to COPY, leaving holes where IMAGE reads as zeros. */
static int copy_image(const char *image, const char *copy)
{
    static uint8_t buf[1 << 20], zero[1 << 20];
    int in = open(image, O_RDONLY | O_CLOEXEC);
    int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = in < 0 || out < 0 ? -errno : 0;
    off_t off = 0;
    for (ssize_t n; !rc && (n = pread(in, buf, sizeof buf, off)) != 0; off += n) {
        if (n < 0)
            rc = -errno;
        else if (memcmp(buf, zero, (size_t)n) && pwrite(out, buf, (size_t)n, off) != n)
            rc = -EIO;
    }
    if (!rc && ftruncate(out, off) < 0)
        rc = -errno;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (rc)
        fprintf(stderr, "power_loss: copy %s to %s: %s\n", image, copy, strerror(-rc));
    return rc;
}

static int cmd_run(char **av)
{
    const char *bus_path = av[0], *data = av[1], *topic = av[2], *lower = av[6];
    const char *image = av[7], *copy = av[8], *acks_path = av[9];
    bool sync = strcmp(av[3], "sync") == 0;
    uint32_t np = (uint32_t)atoi(av[4]);
    int cut_ms = atoi(av[5]);
    if ((!sync && strcmp(av[3], "async")) || np < 1 || np > PL_MAX_PRODUCERS || cut_ms < 0)
        return usage();
    int lower_fd = open(lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lower_fd < 0) {
        fprintf(stderr, "power_loss: %s: %s\n", lower, strerror(errno));
        return 2;
    }

    evb_bus *b = open_bus(bus_path, data);
    if (!b)
        return 2;
    /* 256 KiB ring, 1 MiB segments: a round crosses segment ends. ASYNC's
     * interval sync is put far off, so that only evb_producer_sync() can
     * have made its acknowledged events durable. */
    evb_topic_config tc = {.partitions = 1, .ring_bytes = 256 << 10, .segment_bytes = 1 << 20,
                           .max_event_bytes = 4096, .flush_ms = 60000,
                           .durability = sync ? EVB_DURABILITY_SYNC : EVB_DURABILITY_ASYNC};
    int rc = evb_topic_create(b, topic, &tc);
    evb_bus_close(b);
    if (rc) {
        fprintf(stderr, "power_loss: create %s: %s (%s)\n", topic, evb_strerror(rc),
                evb_last_error());
        return 2;
    }

    pid_t pids[PL_MAX_PRODUCERS];
    int fds[PL_MAX_PRODUCERS];
    uint64_t acked[PL_MAX_PRODUCERS] = {0};
    pid_t pgid = 0;
    pid_t self = getpid();
    for (uint32_t i = 0; i < np; i++) {
        int pfd[2];
        if (pipe(pfd) < 0)
            return 2;
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            /* Gone with this process whatever kills it, so that no
             * producer outlives the test and holds the mount. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != self)
                _exit(24);
            setpgid(0, pgid);
            close(pfd[0]);
            for (uint32_t j = 0; j < i; j++)
                close(fds[j]);
            _exit(produce(bus_path, data, topic, sync, i, pfd[1]));
        }
        /* Both sides set the group, so it is set before either goes on. */
        setpgid(pid, pgid);
        if (!pgid)
            pgid = pid;
        close(pfd[1]);
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        pids[i] = pid;
        fds[i] = pfd[0];
    }

    /* Take acknowledgements until every producer has one, then for
     * CUT_MS more; a producer that stops before the cut fails the run. */
    uint64_t start = t_now_ms(), armed = 0;
    int result = 0;
    for (;;) {
        uint64_t now = t_now_ms();
        bool all = true;
        for (uint32_t i = 0; i < np; i++)
            all = all && acked[i] > 0;
        if (all && !armed)
            armed = now;
        if (armed && now - armed >= (uint64_t)cut_ms)
            break;
        if (!armed && now - start > 20000) {
            fprintf(stderr, "power_loss: no acknowledgement from every producer in 20 s\n");
            result = 2;
            break;
        }
        struct pollfd pf[PL_MAX_PRODUCERS];
        for (uint32_t i = 0; i < np; i++)
            pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        (void)poll(pf, np, 1);
        bool hup = false;
        for (uint32_t i = 0; i < np; i++) {
            uint64_t v;
            ssize_t k;
            while ((k = read(fds[i], &v, sizeof v)) == (ssize_t)sizeof v)
                acked[i] = v;
            hup = hup || k == 0;
        }
        if (hup) {
            fprintf(stderr, "power_loss: a producer stopped before the cut\n");
            result = 2;
            break;
        }
    }
    /*
     * The power cut. Once LOWER is frozen no write reaches IMAGE: one in
     * progress has finished, any later one (the device's, carrying a
     * producer's data or the fdatasync's journal commit) waits, so IMAGE
     * holds what a disk would after losing power now, writes in flight
     * included. An acknowledgement given even after the freeze is for data
     * that reached IMAGE before it (an fdatasync cannot finish while its
     * writes wait), so every one read before the thaw must be in the copy.
     * The producers go only then: killed, they could not lose in-flight
     * I/O, a kill lets a running fdatasync finish.
     */
    if (ioctl(lower_fd, FIFREEZE, 0) < 0) {
        fprintf(stderr, "power_loss: freeze %s: %s\n", lower, strerror(errno));
        result = 2;
    } else {
        if (copy_image(image, copy))
            result = 2;
        for (uint32_t i = 0; i < np; i++) {
            uint64_t v;
            while (read(fds[i], &v, sizeof v) == (ssize_t)sizeof v)
                acked[i] = v;
        }
    }
    kill(-pgid, SIGKILL);
    /* Producers stuck on the frozen disk die once it thaws. */
    if (ioctl(lower_fd, FITHAW, 0) < 0 && result == 0) {
        fprintf(stderr, "power_loss: thaw %s: %s\n", lower, strerror(errno));
        result = 2;
    }
    close(lower_fd);
    for (uint32_t i = 0; i < np; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
            ;
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fprintf(stderr, "power_loss: producer %u exited with %d before the cut\n", i,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            result = 2;
        }
        close(fds[i]);
    }
    FILE *f = fopen(acks_path, "w");
    if (!f)
        return 2;
    for (uint32_t i = 0; i < np; i++)
        fprintf(f, "%" PRIu64 "\n", acked[i]);
    if (fclose(f))
        return 2;
    return result;
}

/* ---- check ---- */

static int failures;

#define FAIL(...)                                                                        \
    do {                                                                                 \
        fprintf(stderr, "power_loss: " __VA_ARGS__);                                    \
        fputc('\n', stderr);                                                             \
        failures++;                                                                      \
    } while (0)

static int cmd_check(char **av)
{
    const char *bus_path = av[0], *data = av[1], *topic = av[2], *acks_path = av[4];
    uint32_t np = (uint32_t)atoi(av[3]);
    if (np < 1 || np > PL_MAX_PRODUCERS)
        return usage();
    uint64_t acked[PL_MAX_PRODUCERS];
    FILE *f = fopen(acks_path, "r");
    if (!f)
        return 2;
    for (uint32_t i = 0; i < np; i++)
        if (fscanf(f, "%" SCNu64, &acked[i]) != 1) {
            fclose(f);
            return 2;
        }
    fclose(f);

    /* A fresh bus directory over the surviving data directory: the open
     * rebuilds the topic from its segments, as after a reboot. */
    evb_bus *b = open_bus(bus_path, data);
    if (!b) {
        FAIL("the bus does not open over the data directory the power cut left");
        for (uint32_t i = 0; i < np; i++)
            printf("producer %u: acked %" PRIu64 ", on disk 0\n", i, acked[i]);
        return 1;
    }
    struct evb_partition_stat st;
    int rc = evb_partition_stat(b, topic, 0, &st);
    if (rc) {
        char why[256] = "";
        evb_topic_damage(b, topic, why, sizeof why);
        const char *last = evb_last_error();
        FAIL("topic %s not rebuilt: %s%s%s%s%s", topic, evb_strerror(rc), *last ? ": " : "",
             last, *why ? ": " : "", why);
        for (uint32_t i = 0; i < np; i++)
            printf("producer %u: acked %" PRIu64 ", on disk 0\n", i, acked[i]);
        evb_bus_close(b);
        return 1;
    }
    /* What the rebuild found (the durable mark, a cut it could not bound)
     * and a walk of every segment now. After a power cut the log may end
     * in a torn tail, cut, never served; anything else is damage, and a
     * cut the rebuild cannot tell from synced events (no valid mark) is a
     * failure too: it reports synced events as maybe lost and skips
     * offsets. */
    evb_damage d = {.mark = 9}, dv;
    rc = evb_partition_damage(b, topic, 0, 0, &d);
    if (!rc)
        rc = evb_partition_damage(b, topic, 0, EVB_DAMAGE_VERIFY, &dv);
    static const char *const marks[] = {"ok", "missing", "invalid", "not a file"};
    const char *mark = d.mark < 4 ? marks[d.mark] : "?";
    if (rc)
        FAIL("damage report: %s", evb_strerror(rc));
    else if (d.ranges || dv.ranges)
        FAIL("damage below the log end: %" PRIu64 " ranges, %" PRIu64 " bytes from position "
             "%" PRIu64, dv.ranges, dv.bytes, dv.first_position);
    if (!rc && (d.unchecked_cut_bytes || d.skipped_offsets))
        FAIL("the rebuild cannot tell its cut from synced events: durable mark %s, %" PRIu64
             " bytes cut from position %" PRIu64 " unchecked, %" PRIu64 " offsets skipped",
             mark, d.unchecked_cut_bytes, d.unchecked_cut_position, d.skipped_offsets);
    /* The last event is below the skipped offsets. */
    uint64_t end = st.tail_offset - (rc ? 0 : d.skipped_offsets);

    evb_consumer_options co = {.kind = EVB_SUBSCRIBER, .start = EVB_START_EARLIEST};
    evb_consumer *c;
    rc = evb_consumer_open(&c, b, topic, &co);
    if (rc) {
        FAIL("consumer: %s (%s)", evb_strerror(rc), evb_last_error());
        evb_bus_close(b);
        return 1;
    }
    uint64_t next[PL_MAX_PRODUCERS] = {0}, offset = 0;
    uint32_t ids[PL_MAX_PRODUCERS] = {0};
    evb_event ev;
    /* Nothing is published now: the rebuilt log ends at END. */
    while (offset < end && failures < 10) {
        rc = evb_consumer_next(c, &ev, 5000);
        if (rc) {
            FAIL("read at offset %" PRIu64 " of %" PRIu64 ": %s", offset, end,
                 evb_strerror(rc));
            break;
        }
        uint32_t who;
        uint64_t seq;
        if (ev.lost_events)
            FAIL("%" PRIu64 " events lost before offset %" PRIu64, ev.lost_events, ev.offset);
        if (ev.offset != offset)
            FAIL("offset %" PRIu64 " where %" PRIu64 " was next", ev.offset, offset);
        offset = ev.offset + 1;
        if (ev.value_len < 24 || ev.value_len > PL_MAX_VALUE ||
            !t_value_check(ev.value, ev.value_len, &who, &seq) || who >= np) {
            FAIL("offset %" PRIu64 ": value of %u bytes is not one a producer wrote",
                 ev.offset, ev.value_len);
            continue;
        }
        if (seq != next[who] || ev.value_len != value_len(who, seq) ||
            ev.producer_seq != seq)
            FAIL("offset %" PRIu64 ": producer %u sequence %" PRIu64 " (header %" PRIu64
                 "), expected %" PRIu64, ev.offset, who, seq, ev.producer_seq, next[who]);
        if (seq == 0)
            ids[who] = ev.producer_id;
        else if (ev.producer_id != ids[who])
            FAIL("offset %" PRIu64 ": producer %u has id %u, before %u", ev.offset, who,
                 ev.producer_id, ids[who]);
        next[who] = seq + 1;
    }
    evb_consumer_close(c);
    for (uint32_t i = 0; i < np; i++) {
        if (next[i] < acked[i])
            FAIL("producer %u: %" PRIu64 " events acknowledged as on disk, %" PRIu64
                 " there after the power cut", i, acked[i], next[i]);
        else if (next[i] > acked[i] + PL_SLACK)
            FAIL("producer %u: %" PRIu64 " events on disk, only %" PRIu64 " acknowledged",
                 i, next[i], acked[i]);
        printf("producer %u: acked %" PRIu64 ", on disk %" PRIu64 "\n", i, acked[i], next[i]);
    }
    printf("log: %" PRIu64 " events, %" PRIu64 " torn bytes cut, durable mark %s\n", end,
           st.recovered_dropped, mark);
    evb_bus_close(b);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 12 && strcmp(argv[1], "run") == 0)
        return cmd_run(argv + 2);
    if (argc == 7 && strcmp(argv[1], "check") == 0)
        return cmd_check(argv + 2);
    return usage();
}
