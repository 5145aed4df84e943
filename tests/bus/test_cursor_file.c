/*
 * test_cursor_file.c - a named consumer's cursor file (bus/cursor_format.h,
 * bus/cursor_file.c): a new file carries this build's version and format;
 * a version 1 file keeps its commits and is upgraded in place; a wrong
 * magic, a newer version, another format word, another partition count or
 * a wrong size, or an empty or zeroed file, is refused at open with a
 * message naming the value found and the value expected, and skipped by
 * the retention's scan, with no crash (run it under ASan). A creator
 * killed mid-way wedges nothing. A file with holes on a full file system
 * is -ENOSPC at open, never SIGBUS at a write through its mapping.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_internal.h"
#include "cursor_format.h"
#include "t_helpers.h"

static evb_bus *bus;
static char cur_path[512];

static void setup(void)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0);
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20};
    cr_assert_eq(evb_topic_create(bus, "c", &tc), 0);
    snprintf(cur_path, sizeof cur_path, "%s/c/consumers/billing.cur", t_bus_dir());
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

TestSuite(cursor_file, .init = setup, .fini = teardown, .timeout = 30);

static int open_billing(evb_consumer **c)
{
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "billing"};
    return evb_consumer_open(c, bus, "c", &co);
}

/* Publish N events, read them as "billing", commit and close: the file
 * then holds a commit for each partition that got events. */
static void make_committed_file(int n)
{
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "c", NULL), 0);
    for (int i = 0; i < n; i++) {
        evb_msg m = {.value = "v", .value_len = 1, .partition = i & 1};
        cr_assert_eq(evb_publish(p, &m), 0);
    }
    evb_producer_close(p);
    evb_consumer *c;
    cr_assert_eq(open_billing(&c), 0, "%s", evb_last_error());
    evb_event ev;
    for (int i = 0; i < n; i++)
        cr_assert_eq(evb_consumer_next(c, &ev, 1000), 0);
    cr_assert_eq(evb_consumer_commit(c), 0);
    evb_consumer_close(c);
}

static void patch(off_t at, const void *buf, size_t n)
{
    int fd = open(cur_path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, buf, n, at), (ssize_t)n);
    close(fd);
}

static void patch_u32(off_t at, uint32_t v)
{
    patch(at, &v, sizeof v);
}

static void patch_u64(off_t at, uint64_t v)
{
    patch(at, &v, sizeof v);
}

static void truncate_to(off_t n)
{
    cr_assert_eq(truncate(cur_path, n), 0);
}

/* Opening "billing" fails with RC and a message holding WANT; the scan of
 * the retention ignores the file. */
static void expect_refused(int rc, const char *want)
{
    evb_consumer *c = NULL;
    int got = open_billing(&c);
    const char *msg = evb_last_error();
    cr_assert_eq(got, rc, "open returned %d, expected %d (%s)", got, rc, msg);
    cr_assert_null(c);
    cr_assert(strstr(msg, "billing.cur"), "message names the file: %s", msg);
    cr_assert(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
    struct evb_topic_map *tm;
    cr_assert_eq(evb_topic_map_open(bus, "c", &tm), 0);
    cr_assert_eq(evb_consumers_min_committed(tm, 0), UINT64_MAX);
    cr_assert_eq(evb_consumers_min_committed(tm, 1), UINT64_MAX);
    evb_topic_map_close(tm);
}

Test(cursor_file, new_file_has_this_builds_header)
{
    make_committed_file(10);
    struct stat st;
    cr_assert_eq(stat(cur_path, &st), 0);
    cr_assert_eq((size_t)st.st_size, evb_cur_file_bytes(2));
    struct evb_cur_hdr h;
    FILE *f = fopen(cur_path, "r");
    cr_assert_not_null(f);
    cr_assert_eq(fread(&h, 1, sizeof h, f), sizeof h);
    fclose(f);
    cr_assert_eq(atomic_load_explicit(&h.magic, memory_order_relaxed), EVB_CUR_MAGIC);
    cr_assert_eq(atomic_load_explicit(&h.version, memory_order_relaxed), EVB_CUR_VERSION);
    cr_assert_eq(atomic_load_explicit(&h.format, memory_order_relaxed), EVB_CUR_FORMAT_WORD);
    cr_assert_eq(h.partitions, 2);
    cr_assert_eq(atomic_load_explicit(&h.owner, memory_order_relaxed), 0,
                 "close gives the file back");
    /* The retention sees both partitions' commits. */
    struct evb_topic_map *tm;
    cr_assert_eq(evb_topic_map_open(bus, "c", &tm), 0);
    cr_assert_lt(evb_consumers_min_committed(tm, 0), UINT64_MAX);
    cr_assert_lt(evb_consumers_min_committed(tm, 1), UINT64_MAX);
    evb_topic_map_close(tm);
    /* And it opens again. */
    evb_consumer *c;
    cr_assert_eq(open_billing(&c), 0, "%s", evb_last_error());
    evb_consumer_close(c);
}

Test(cursor_file, wrong_magic_is_ebadmsg)
{
    make_committed_file(4);
    patch_u64(0, 0x1122334455667788ull);
    expect_refused(-EBADMSG, "magic 0x1122334455667788, expected 0x3152554342564545");
}

/* A version 1 file exactly as a build of that version wrote it. */
struct v1_cur_file {
    uint64_t magic;
    uint32_t partitions;
    uint32_t pad_;           /* now the version word */
    uint64_t owner;
    uint64_t pad2_;          /* now the format word */
    struct {
        uint64_t seq, pos, offset, pad_;
    } e[2];
};

static void read_hdr(struct evb_cur_hdr *h, struct evb_cur_entry e[2])
{
    FILE *f = fopen(cur_path, "r");
    cr_assert_not_null(f);
    cr_assert_eq(fread(h, 1, sizeof *h, f), sizeof *h);
    cr_assert_eq(fread(e, sizeof e[0], 2, f), 2);
    fclose(f);
}

Test(cursor_file, version_1_file_keeps_its_commits_and_is_upgraded)
{
    make_committed_file(10);
    struct evb_cur_hdr h;
    struct evb_cur_entry e[2];
    read_hdr(&h, e);
    struct v1_cur_file old = {.magic = EVB_CUR_MAGIC, .partitions = 2};
    for (int i = 0; i < 2; i++) {
        old.e[i].seq = 2;
        old.e[i].pos = atomic_load_explicit(&e[i].pos, memory_order_relaxed);
        old.e[i].offset = atomic_load_explicit(&e[i].offset, memory_order_relaxed);
        cr_assert_neq(old.e[i].pos, EVB_POS_NONE, "partition %d was committed", i);
    }
    FILE *f = fopen(cur_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(&old, 1, sizeof old, f), sizeof old);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(sizeof old, evb_cur_file_bytes(2));

    /* The retention's scan honours the old file's commits as they are. */
    struct evb_topic_map *tm;
    cr_assert_eq(evb_topic_map_open(bus, "c", &tm), 0);
    cr_assert_eq(evb_consumers_min_committed(tm, 0), old.e[0].pos);
    cr_assert_eq(evb_consumers_min_committed(tm, 1), old.e[1].pos);
    evb_topic_map_close(tm);

    /* The consumer resumes after its commits: nothing new to read (with
     * the commits lost it would start over at the earliest event). */
    evb_consumer *c;
    cr_assert_eq(open_billing(&c), 0, "%s", evb_last_error());
    evb_event ev;
    cr_assert_eq(evb_consumer_next(c, &ev, 0), -EAGAIN);
    evb_consumer_close(c);

    /* And the file now reads as this build's, its commits untouched. */
    read_hdr(&h, e);
    cr_assert_eq(atomic_load_explicit(&h.magic, memory_order_relaxed), EVB_CUR_MAGIC);
    cr_assert_eq(atomic_load_explicit(&h.version, memory_order_relaxed), EVB_CUR_VERSION);
    cr_assert_eq(atomic_load_explicit(&h.format, memory_order_relaxed), EVB_CUR_FORMAT_WORD);
    cr_assert_eq(h.partitions, 2);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(atomic_load_explicit(&e[i].pos, memory_order_relaxed), old.e[i].pos);
        cr_assert_eq(atomic_load_explicit(&e[i].offset, memory_order_relaxed),
                     old.e[i].offset);
    }
}

Test(cursor_file, newer_version_is_eproto)
{
    make_committed_file(4);
    patch_u32(12, EVB_CUR_VERSION + 1);
    char want[64];
    snprintf(want, sizeof want, "version %u, this build reads %u", EVB_CUR_VERSION + 1,
             EVB_CUR_VERSION);
    expect_refused(-EPROTO, want);
}

Test(cursor_file, version_1_with_a_stray_format_word_is_eproto)
{
    /* Version 1 had zero there; only this build's word (an upgrade cut
     * short) may sit beside a zero version. */
    make_committed_file(4);
    patch_u32(12, 0);
    patch_u64(24, 0xbeef);
    char want[96];
    snprintf(want, sizeof want, "format 0xbeef, this build reads 0x%llx",
             (unsigned long long)EVB_CUR_FORMAT_WORD);
    expect_refused(-EPROTO, want);
}

Test(cursor_file, other_format_word_is_eproto)
{
    make_committed_file(4);
    patch_u64(24, 0xbeef);
    char want[96];
    snprintf(want, sizeof want, "format 0xbeef, this build reads 0x%llx",
             (unsigned long long)EVB_CUR_FORMAT_WORD);
    expect_refused(-EPROTO, want);
}

Test(cursor_file, other_partition_count_is_ebadmsg)
{
    make_committed_file(4);
    patch_u32(8, 3);
    expect_refused(-EBADMSG, "3 partitions, the topic has 2");
}

Test(cursor_file, truncated_header_is_ebadmsg)
{
    make_committed_file(4);
    truncate_to(16);
    expect_refused(-EBADMSG, "16 bytes, smaller than a cursor file header (32)");
}

Test(cursor_file, truncated_entries_are_ebadmsg)
{
    make_committed_file(4);
    truncate_to(48);
    expect_refused(-EBADMSG, "48 bytes, expected 96 for 2 partitions");
}

Test(cursor_file, oversized_file_is_ebadmsg)
{
    make_committed_file(4);
    truncate_to(4096);
    expect_refused(-EBADMSG, "4096 bytes, expected 96 for 2 partitions");
}

/* The file is made under a temporary name and linked whole: at its name,
 * empty or zeroed is damage. Taking it as a new consumer would deliver
 * everything again. */
Test(cursor_file, empty_file_is_ebadmsg)
{
    int fd = open(cur_path, O_WRONLY | O_CREAT | O_TRUNC, 0660);
    cr_assert_geq(fd, 0);
    close(fd);
    expect_refused(-EBADMSG, "empty (0 bytes)");
}

Test(cursor_file, zeroed_file_is_ebadmsg)
{
    make_committed_file(4);
    static uint8_t zeros[96];
    patch(0, zeros, sizeof zeros);
    expect_refused(-EBADMSG, "magic 0x0, expected");
}

/* A creator killed mid-way leaves only a temporary file, which nothing
 * reads: the next opener creates the file as usual. */
Test(cursor_file, creator_killed_mid_way_leaves_no_wedge)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/c/consumers/.tmp.billing.cur.%d.0", t_bus_dir(),
             (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0660);
    cr_assert_geq(fd, 0);
    close(fd);
    evb_consumer *c;
    cr_assert_eq(open_billing(&c), 0, "%s", evb_last_error());
    evb_consumer_close(c);
    struct stat st;
    cr_assert_eq(stat(cur_path, &st), 0);
    cr_assert_eq(st.st_size, 96);
}

/* A consumer killed between the two seq stores of a commit leaves its
 * entry's seqlock odd. The next owner of the file must not count on from
 * there: its commits would leave the word odd when whole, and every load
 * of them (seek, retention's scan) would take them for torn. */
Test(cursor_file, a_commit_after_one_killed_mid_way_is_whole)
{
    make_committed_file(10);
    struct evb_cur_hdr h;
    struct evb_cur_entry e[2];
    read_hdr(&h, e);
    uint64_t seq = atomic_load(&e[0].seq);
    cr_assert_eq(seq % 2, 0);
    patch_u64(EVB_CUR_HDR_BYTES, seq + 1); /* killed mid-commit */
    make_committed_file(10);
    read_hdr(&h, e);
    cr_expect_eq(atomic_load(&e[0].seq) % 2, 0, "seq %llu: the commit reads as torn",
                 (unsigned long long)atomic_load(&e[0].seq));
    cr_expect_eq(atomic_load(&e[1].seq) % 2, 0);
    cr_expect_eq(atomic_load(&e[0].offset), 10, "the commit's offset");
}

/* ---- a sparse cursor file on a full file system ---- */

/* In a mount namespace of its own: a durable topic's data directory on a
 * small tmpfs, a named consumer's cursor file given a hole (as a sparse
 * copy or a restore from backup leaves one, or its owner makes one), the
 * tmpfs then filled. Any fault on the hole must allocate a page the full
 * tmpfs does not have, which is SIGBUS. A listing of the consumers and
 * the retention's scan (of the cursor file and of a group's) read the
 * files instead; the consumer, which
 * writes its cursor through a shared mapping, is -ENOSPC at open, and
 * opens again once there is room. */
static int sparse_cursor_child(void *arg)
{
    (void)arg;
    char mnt[] = "/tmp/evb-curfull-XXXXXX", busdir[] = "/dev/shm/evb-curfull-XXXXXX";
    if (!mkdtemp(mnt) || !mkdtemp(busdir))
        return 10;
    int rc = 0;
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("evb-curfull", mnt, "tmpfs", 0, "size=2m")) {
        rc = 77;
        goto out;
    }
    char data[600], cur[700], fill[600];
    snprintf(data, sizeof data, "%s/data", mnt);
    snprintf(fill, sizeof fill, "%s/fill", mnt);
    evb_bus_options o = {.data_dir = data};
    evb_bus *b;
    if (evb_bus_open(&b, busdir, &o)) {
        rc = 11;
        goto out;
    }
    /* 256 partitions: a cursor file of three pages, the hole in the
     * middle one, the header intact. */
    evb_topic_config tc = {.partitions = EVB_MAX_PARTITIONS, .ring_bytes = 64 << 10,
                           .durability = EVB_DURABILITY_ASYNC, .retain_bytes = 1 << 20,
                           .flags = EVB_TOPIC_RETAIN_UNTIL_CONSUMED};
    evb_consumer_options co = {.kind = EVB_CONSUMER, .name = "sparse"};
    evb_consumer *c;
    if (evb_topic_create(b, "t", &tc) || evb_consumer_open(&c, b, "t", &co)) {
        fprintf(stderr, "%s\n", evb_last_error());
        rc = 12;
        goto close;
    }
    int crc = evb_consumer_commit(c);
    evb_consumer_close(c);
    snprintf(cur, sizeof cur, "%s/t/consumers/sparse.cur", data);
    /* And a partition group's file, which the retention scans too. */
    evb_consumer_options go = {.kind = EVB_GROUP_MEMBER, .name = "g"};
    char grp[700];
    snprintf(grp, sizeof grp, "%s/t/consumers/g.grp", data);
    if (crc || access(cur, F_OK) || evb_consumer_open(&c, b, "t", &go)) {
        fprintf(stderr, "commit %d: %s\n", crc, evb_last_error());
        rc = 19;
        goto close;
    }
    evb_consumer_close(c);
    struct stat gs;
    int fd = open(cur, O_RDWR), gfd = open(grp, O_RDWR);
    if (fd < 0 || fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096) ||
        gfd < 0 || fstat(gfd, &gs) ||
        fallocate(gfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  ((gs.st_size & ~(off_t)4095) - 8192), 4096)) {
        fprintf(stderr, "%s: %s\n", cur, strerror(errno));
        rc = 13;
        goto close;
    }
    close(fd);
    close(gfd);
    static char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    fd = open(fill, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    while (fd >= 0 && write(fd, junk, sizeof junk) == (ssize_t)sizeof junk)
        ;
    if (fd < 0 || errno != ENOSPC) {
        rc = 14;
        goto close;
    }
    close(fd);
    /* Someone else's scan of the file (a list, the retention's) reads
     * the entries in the hole: a copy read with pread, never a fault. */
    evb_named_consumer_stat ns[4];
    int n = evb_named_consumer_list(b, "t", 200, ns, 4);
    if (n != 1) {
        fprintf(stderr, "list: %d %s\n", n, evb_last_error());
        rc = 20;
        goto close;
    }
    if ((n = evb_topic_retain(b, "t")) < 0) {
        fprintf(stderr, "retain: %d %s\n", n, evb_last_error());
        rc = 21;
        goto close;
    }
    int orc = evb_consumer_open(&c, b, "t", &co);
    if (orc == 0) {
        /* Without the reservation: the commits touch every partition's
         * entry, the hole's too (SIGBUS here, if not at the open). */
        for (uint32_t p = 0; p < EVB_MAX_PARTITIONS; p++)
            (void)evb_consumer_seek(c, p, EVB_START_LATEST, 0);
        (void)evb_consumer_commit(c);
        evb_consumer_close(c);
        rc = 15;
        goto close;
    }
    if (orc != -ENOSPC || !strstr(evb_last_error(), "sparse.cur")) {
        fprintf(stderr, "open: %d %s\n", orc, evb_last_error());
        rc = 16;
        goto close;
    }
    unlink(fill);
    if (evb_consumer_open(&c, b, "t", &co)) {
        fprintf(stderr, "open with room: %s\n", evb_last_error());
        rc = 17;
        goto close;
    }
    if (evb_consumer_commit(c))
        rc = 18;
    evb_consumer_close(c);
close:
    evb_bus_close(b);
out:
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    t_rmtree(busdir);
    return rc;
}

Test(cursor_file_full, a_sparse_cursor_file_on_a_full_fs_is_enospc_not_sigbus, .timeout = 60)
{
    pid_t pid = t_spawn(sparse_cursor_child, NULL);
    int st = t_wait_exit(pid, 50000);
    if (st == 77)
        cr_skip_test("cannot mount a tmpfs here (needs root: CAP_SYS_ADMIN)");
    cr_assert_eq(st, 0, "child exit %d (%d+128: a signal; 7 = SIGBUS)", st, st - 128);
}
