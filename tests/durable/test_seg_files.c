/*
 * test_seg_files.c - segment and index files of bus/segment.c: listing a
 * directory, creating a segment aside and reopening it, -ENOSPC on a full
 * file system, and reopening an index; an index from before the format
 * word is read, one with another format word is refused, then rebuilt or
 * walked around, losing no event. Reading a segment never dies of SIGBUS:
 * not over the holes of a full tmpfs, not past a cut made under a reader.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "crc32c.h"
#include "seg_helpers.h"
#include "t_helpers.h"

TestSuite(seg_files, .init = setup, .fini = teardown, .timeout = 60);

Test(seg_files, list_takes_only_segment_names_in_order)
{
    const char *names[] = {"00000000000000262144.log", "00000000000000000000.log",
                           "00000000000000131072.log", "00000000000000000000.idx",
                           "00000000000000393216.log.tmp", "123.log",
                           "0000000000000000000a.log", "000000000000000000000.log",
                           "99999999999999999999.log", "00000000000000524288.logx",
                           "flush.lock"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        close(open(path, O_CREAT | O_WRONLY, 0644));
    }
    uint64_t *bases;
    size_t n;
    cr_assert_eq(evb_seg_list(dir, &bases, &n), 0);
    cr_assert_eq(n, 3);
    cr_expect_eq(bases[0], 0);
    cr_expect_eq(bases[1], 131072);
    cr_expect_eq(bases[2], 262144);
    free(bases);
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    mkdir(empty, 0755);
    cr_assert_eq(evb_seg_list(empty, &bases, &n), 0);
    cr_expect_eq(n, 0);
    free(bases);
    snprintf(empty, sizeof empty, "%s/missing", dir);
    cr_expect_eq(evb_seg_list(empty, &bases, &n), -ENOENT);
}

Test(seg_files, create_builds_aside_and_reopens_existing)
{
    char path[256], tmp[300];
    evb_seg_path(path, sizeof path, dir, SEG, "log");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* A leftover of a crashed creation is overwritten. */
    int fd = open(tmp, O_CREAT | O_WRONLY, 0644);
    cr_assert_eq(write(fd, "junk", 4), 4);
    close(fd);
    fd = evb_seg_create(dir, SEG, SEG, true, 0640);
    cr_assert_geq(fd, 0, "%s", evb_last_error());
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_expect_eq(st.st_size, SEG);
    cr_expect_eq(st.st_mode & 0777, 0640);
    cr_expect_neq(access(tmp, F_OK), 0, "the .tmp file is left behind");
    cr_assert_eq(pwrite(fd, "data", 4, 100), 4);
    close(fd);
    uint8_t seg[SEG];
    read_seg(SEG, seg);
    cr_expect_neq(memcmp(seg, "junk", 4), 0, "the old .tmp bytes survived");
    /* Existing with the right size: opened as is. */
    fd = evb_seg_create(dir, SEG, SEG, false, 0640);
    cr_assert_geq(fd, 0);
    char b[4];
    cr_assert_eq(pread(fd, b, 4, 100), 4);
    cr_expect_eq(memcmp(b, "data", 4), 0);
    close(fd);
    /* Existing with another size: refused, not clobbered. */
    cr_expect_eq(evb_seg_create(dir, SEG, 2 * SEG, false, 0640), -EBADMSG);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_size, SEG);

    struct evb_seg s;
    cr_expect_eq(evb_seg_map(&s, dir, 0, SEG), -ENOENT);
    evb_seg_unmap(&s);
    cr_expect_eq(evb_seg_map(&s, dir, SEG, 2 * SEG), -EBADMSG);
    evb_seg_unmap(&s);
    cr_assert_eq(evb_seg_map(&s, dir, SEG, SEG), 0);
    cr_expect_eq(memcmp(evb_seg_bytes(&s, 100, 4), "data", 4), 0);
    evb_seg_unmap(&s);
}

Test(seg_files, create_reports_enospc)
{
    char mnt[300];
    snprintf(mnt, sizeof mnt, "%s/small", dir);
    cr_assert_eq(mkdir(mnt, 0755), 0);
    /* Smaller than the first step a new segment reserves (the rest is
     * reserved as it fills, by the flusher). */
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=32k") != 0)
        cr_skip_test("cannot mount a small tmpfs here (needs root)");
    int rc = evb_seg_create(mnt, 0, 8u << 20, false, 0644);
    cr_expect_eq(rc, -ENOSPC, "got %d (%s)", rc, evb_last_error());
    uint64_t *bases;
    size_t n;
    cr_expect_eq(evb_seg_list(mnt, &bases, &n), 0);
    cr_expect_eq(n, 0);
    free(bases);
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/00000000000000000000.log.tmp", mnt);
    cr_expect_neq(access(tmp, F_OK), 0, "the .tmp file is left behind");
    umount(mnt);
}

Test(seg_files, index_reopen_keeps_whole_checked_entries)
{
    int fd = evb_idx_create(dir, SEG, 500, 0644);
    cr_assert_geq(fd, 0);
    struct evb_idx_entry e[3] = {{SEG + 64, 501, 10}, {SEG + 640, 520, 30}, {SEG + 4096, 560, 30}};
    cr_assert_eq(evb_idx_append(fd, e, 3), 0);
    cr_assert_eq(write(fd, "torn", 4), 4); /* a partial record */
    close(fd);
    fd = evb_idx_create(dir, SEG, 500, 0644);
    cr_assert_geq(fd, 0);
    struct evb_idx_entry bad = {SEG + 128, 600, 40}; /* goes back in pos */
    cr_assert_eq(evb_idx_append(fd, &bad, 1), 0);
    close(fd);
    struct evb_idx *x;
    cr_assert_eq(evb_idx_load(dir, SEG, &x), 0);
    cr_expect_eq(x->base_pos, SEG);
    cr_expect_eq(x->base_offset, 500);
    cr_assert_eq(x->n, 3, "loaded %zu entries", x->n);
    cr_expect_eq(memcmp(x->e, e, sizeof e), 0);
    free(x);
    /* Another base offset: the old entries are not this segment's. */
    fd = evb_idx_create(dir, SEG, 900, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(evb_idx_load(dir, SEG, &x), 0);
    cr_expect_eq(x->base_offset, 900);
    cr_expect_eq(x->n, 0);
    free(x);
    cr_expect_eq(evb_idx_load(dir, 0, &x), -ENOENT);
}

/* Store FORMAT as the format word of segment BASE's index. */
static void patch_idx_format(uint64_t base, uint64_t format)
{
    char path[256];
    evb_seg_path(path, sizeof path, dir, base, "idx");
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, &format, sizeof format, offsetof(struct evb_idx_hdr, format)),
                 (ssize_t)sizeof format);
    close(fd);
}

static uint64_t idx_format(uint64_t base)
{
    char path[256];
    evb_seg_path(path, sizeof path, dir, base, "idx");
    struct evb_idx_hdr h;
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    return h.format;
}

Test(seg_files, index_carries_the_format_word)
{
    int fd = evb_idx_create(dir, SEG, 500, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_expect_eq(idx_format(SEG), EVB_IDX_FORMAT_WORD);
}

Test(seg_files, index_from_before_the_format_word_is_read_and_kept)
{
    /* Such an index is this layout with zero where the word is. */
    int fd = evb_idx_create(dir, SEG, 500, 0644);
    cr_assert_geq(fd, 0);
    struct evb_idx_entry e[2] = {{SEG + 64, 501, 10}, {SEG + 640, 520, 30}};
    cr_assert_eq(evb_idx_append(fd, e, 2), 0);
    close(fd);
    patch_idx_format(SEG, 0);
    struct evb_idx *x;
    cr_assert_eq(evb_idx_load(dir, SEG, &x), 0, "%s", evb_last_error());
    cr_expect_eq(x->base_offset, 500);
    cr_assert_eq(x->n, 2);
    cr_expect_eq(memcmp(x->e, e, sizeof e), 0);
    free(x);
    /* A flusher reopening it appends after its entries. */
    fd = evb_idx_create(dir, SEG, 500, 0644);
    cr_assert_geq(fd, 0, "%s", evb_last_error());
    struct evb_idx_entry more = {SEG + 4096, 560, 40};
    cr_assert_eq(evb_idx_append(fd, &more, 1), 0);
    close(fd);
    cr_assert_eq(evb_idx_load(dir, SEG, &x), 0);
    cr_expect_eq(x->n, 3);
    free(x);
}

Test(seg_files, index_of_another_format_is_refused_and_loses_no_event)
{
    build(3 * SEG + SEG / 3);
    write_segments(5);
    for (uint64_t base = 0; base < lg.pos; base += SEG)
        patch_idx_format(base, 0xbad);
    struct evb_idx *x = NULL;
    cr_assert_eq(evb_idx_load(dir, SEG, &x), -EBADMSG);
    cr_assert_null(x);
    char want[96];
    snprintf(want, sizeof want, "index format 0xbad, this build reads 0x%llx",
             (unsigned long long)EVB_IDX_FORMAT_WORD);
    cr_assert(strstr(evb_last_error(), want), "message '%s' lacks '%s'", evb_last_error(),
              want);
    /* Seeks walk the frames instead: every event is still found. */
    for (size_t i = 0; i < lg.nfr; i += 7) {
        if (!lg.fr[i].data)
            continue;
        uint64_t pos, off;
        cr_assert_eq(evb_seg_find_offset(dir, &geom, lg.fr[i].offset, lg.pos, &pos, &off), 0,
                     "%s", evb_last_error());
        cr_assert_eq(pos, lg.fr[i].pos);
        cr_assert_eq(off, lg.fr[i].offset);
    }
    /* Recovery finds the end all the same and removes what it cut to. */
    struct evb_seg_recovery r = recover_ok();
    cr_expect_eq(r.end_pos, lg.pos);
    cr_expect_eq(r.end_offset, lg.offset);
    uint64_t last = lg.pos - lg.pos % SEG;
    cr_expect(!exists(last, "idx"), "the last segment's refused index is removed");
    /* A flusher appending to a segment starts its index over. */
    int fd = evb_idx_create(dir, SEG, offset_at(SEG), 0644);
    cr_assert_geq(fd, 0, "%s", evb_last_error());
    close(fd);
    cr_expect_eq(idx_format(SEG), EVB_IDX_FORMAT_WORD);
    cr_assert_eq(evb_idx_load(dir, SEG, &x), 0);
    cr_expect_eq(x->n, 0);
    free(x);
}

/* ---- reading a segment never dies of SIGBUS ---- */

#define BIG_SEG (4u << 20)
static const struct evb_seg_geom big = {BIG_SEG, CAP, MAX_FRAME, MAX_FRAME - EVB_FRAME_HDR};

/* A segment of BIG_SEG bytes in MNT as the flusher leaves one: made by
 * evb_seg_create (sparse past its first reserved step), the log's frames
 * written at its start. */
static int big_segment(const char *mnt)
{
    int fd = evb_seg_create(mnt, 0, BIG_SEG, false, 0600);
    if (fd < 0)
        return 20;
    int rc = pwrite(fd, lg.buf, lg.pos, 0) == (ssize_t)lg.pos && fdatasync(fd) == 0 ? 0 : 21;
    close(fd);
    return rc;
}

/* Free blocks of the file system of PATH. */
static unsigned long long free_blocks(const char *path)
{
    struct statvfs sv;
    return statvfs(path, &sv) ? 0 : (unsigned long long)sv.f_bfree;
}

/* In a mount namespace of its own (the mount goes with the child): a
 * tmpfs smaller than the segment, filled up, then every walk of the
 * segment that reads its holes. Through a MAP_SHARED mapping a read fault
 * on a tmpfs hole allocates the page, which a full tmpfs cannot: SIGBUS
 * (the cold attack's rebuild at bus open); a tmpfs with room had every
 * hole read allocated instead. */
static int full_tmpfs_child(void *arg)
{
    const char *mnt = arg;
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("evb-full", mnt, "tmpfs", 0, "size=1m"))
        return 77;
    int rc = big_segment(mnt);
    if (rc)
        return rc;
    /* Fill what is left. */
    char fill[400];
    snprintf(fill, sizeof fill, "%s/fill", mnt);
    int fd = open(fill, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    static uint8_t junk[4096];
    memset(junk, 0xa5, sizeof junk);
    while (fd >= 0 && write(fd, junk, sizeof junk) == (ssize_t)sizeof junk)
        ;
    if (fd < 0 || errno != ENOSPC)
        return 22;
    close(fd);
    unsigned long long before = free_blocks(mnt);
    struct evb_seg_recovery r;
    if (evb_seg_fit(mnt, &big) || evb_seg_recover(mnt, &big, 0, &r)) {
        fprintf(stderr, "recover: %s\n", evb_last_error());
        return 23;
    }
    if (r.end_pos != lg.pos || r.end_offset != lg.offset || r.damaged)
        return 24;
    struct evb_seg_damage d;
    if (evb_seg_verify(mnt, &big, 0, BIG_SEG, &d))
        return 25;
    struct evb_seg s;
    if (evb_seg_map(&s, mnt, 0, BIG_SEG))
        return 26;
    struct evb_seg_frame fr;
    uint64_t q = 0;
    int rr = evb_seg_resync(&s, &big, lg.pos, BIG_SEG, &fr, &q);
    evb_seg_unmap(&s);
    if (rr || q != BIG_SEG)
        return 27;
    if (free_blocks(mnt) != before) {
        fprintf(stderr, "free blocks %llu, were %llu\n", free_blocks(mnt), before);
        return 28;
    }
    return 0;
}

Test(seg_files, walks_over_holes_of_a_full_tmpfs_neither_die_nor_allocate)
{
    log_reset(SEG);
    build(SEG / 2);
    char mnt[300];
    snprintf(mnt, sizeof mnt, "%s/full", dir);
    cr_assert_eq(mkdir(mnt, 0755), 0);
    pid_t pid = t_spawn(full_tmpfs_child, mnt);
    int st = t_wait_exit(pid, 30000);
    if (st == 77)
        cr_skip_test("cannot mount a tmpfs here (needs root: CAP_SYS_ADMIN)");
    cr_assert_eq(st, 0, "child exit %d (%d+128: a signal; 7 = SIGBUS)", st, st - 128);
}

/* A segment cut short while a reader has it open: what lies past the cut
 * is no frame, and neither a frame check, a resync nor a reader dies of
 * SIGBUS for it (through a mapping, a page past the file's end does). */
static int cut_under_reader_child(void *arg)
{
    (void)arg;
    if (big_segment(dir))
        return 20;
    struct evb_seg s;
    if (evb_seg_map(&s, dir, 0, BIG_SEG))
        return 21;
    struct evb_seg_reader sr;
    if (evb_seg_reader_open(&sr, dir, &big))
        return 22;
    evb_seg_reader_seek(&sr, 0, 0, true);
    struct evb_frame_view v;
    if (evb_seg_read(&sr, lg.pos, &v))
        return 23; /* the reader holds the segment now */
    char path[400];
    snprintf(path, sizeof path, "%s/00000000000000000000.log", dir);
    if (truncate(path, 4096))
        return 24;
    struct evb_seg_frame fr;
    const struct rec *last = &lg.fr[lg.nfr - 1];
    if (evb_seg_frame(&s, &big, last->pos, &fr) != 0)
        return 25;
    uint64_t q = 0;
    if (evb_seg_resync(&s, &big, 8192, BIG_SEG, &fr, &q) || q != BIG_SEG)
        return 26;
    evb_seg_unmap(&s);
    int rc;
    size_t n = 0;
    while ((rc = evb_seg_read(&sr, lg.pos, &v)) == 0)
        n++;
    evb_seg_reader_close(&sr);
    /* Events the reader's window read before the cut are whole copies;
     * past them, damage. */
    if (rc != -EBADMSG && !(rc == -EAGAIN && n + 1 == events_below(lg.pos))) {
        fprintf(stderr, "read %d after %zu events\n", rc, n);
        return 27;
    }
    return 0;
}

Test(seg_files, a_segment_cut_under_its_reader_is_damage_not_sigbus)
{
    log_reset(SEG);
    build(SEG / 2);
    pid_t pid = t_spawn(cut_under_reader_child, NULL);
    int st = t_wait_exit(pid, 30000);
    cr_assert_eq(st, 0, "child exit %d (%d+128: a signal; 7 = SIGBUS)", st, st - 128);
}
