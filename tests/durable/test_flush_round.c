/*
 * test_flush_round.c - the flusher's walk (df_bus/durable/flush_round.c)
 * refuses a committed frame the decoder calls bad: the partition stops
 * with -EBADMSG, reported to sync waiters and in the partition's stat,
 * and the frame never reaches its segment. Flushing good frames is
 * test_durable.c's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "frame.h"
#include "ring.h"
#include "segment.h"
#include "durable_fixture.h"

#define TOPIC "k"
#define VLEN DF_VLEN

TestSuite(flush_round, .init = df_setup, .fini = df_teardown, .timeout = 60);

/*
 * Commit, through the ring API on the topic's own ring file, one frame
 * whose key is one byte longer than its payload, checksum sealed over it.
 * The bad key_len is written before the commit's stamp (R1 in
 * shm/claim.c), so a flusher that sees the frame committed sees it bad:
 * no timing involved.
 * Returns the frame's position.
 */
static uint64_t commit_bad_key(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" TOPIC "/0.ring", t_bus_dir());
    struct evb_ring r;
    struct evb_ring_producer rp;
    struct evb_ring_claim c;
    cr_assert_eq(evb_ring_open(&r, path), 0, "%s: %s", path, evb_last_error());
    cr_assert_eq(evb_ring_producer_attach(&rp, &r, 4242), 0);
    uint32_t len = (uint32_t)evb_frame_len(4, VLEN);
    cr_assert_eq(evb_ring_claim(&rp, (uint32_t)evb_frame_bytes(4, VLEN), 1, &c), 0);
    cr_assert_eq(c.pad, 0, "the test expects no end pad this early in the ring");
    struct evb_frame *f = evb_ring_frame(&r, c.data_pos);
    struct evb_frame_fields x = {.offset = c.offset, .timestamp_ns = 1, .producer_seq = 0,
                                 .producer_id = 4242, .key_len = 4, .value_len = VLEN,
                                 .type = 0, .claim_len = c.len, .claim_events = 1};
    evb_frame_init(f, &x);
    memset((uint8_t *)f + EVB_FRAME_HDR, 0x3c, len - EVB_FRAME_HDR);
    /* One byte more than the frame holds, even before its padding. */
    f->key_len = (uint16_t)(len - EVB_FRAME_HDR + 1);
    f->crc32c = evb_frame_crc(f, len);
    cr_assert_eq(evb_ring_commit(&rp, &c), 0);
    evb_ring_producer_detach(&rp);
    evb_ring_close(&r);
    return c.data_pos;
}

Test(flush_round, committed_frame_with_a_bad_key_length_stops_the_partition)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    tc.ring_bytes = 1 << 20;
    tc.segment_bytes = 1 << 20;
    df_create(TOPIC, &tc);
    evb_producer_options po = {.block_ms = -1};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, TOPIC, &po), 0, "producer: %s",
                 evb_last_error());
    for (uint64_t i = 0; i < 10; i++)
        df_publish_on(p, i);
    cr_assert_eq(evb_producer_sync(p, 10000), 0, "%s", evb_last_error());

    uint64_t bad = commit_bad_key();
    /* A good event behind it, so this producer has something to wait for. */
    df_publish_on(p, 10);
    int rc = evb_producer_sync(p, 10000);
    cr_expect_eq(rc, -EBADMSG, "sync: %d %s", rc, evb_strerror(rc));

    struct evb_partition_stat st = df_stat(TOPIC);
    cr_expect_eq(st.flush_error, -EBADMSG);
    cr_expect_eq(st.flushed_position, bad, "flushed %llu, the bad frame is at %llu",
                 (unsigned long long)st.flushed_position, (unsigned long long)bad);
    cr_expect_leq(st.durable_position, bad);
    evb_producer_close(p);

    /* Nothing of the frame reached the segment. Under O_DIRECT the block
     * holding the last good frames is written whole, ring bytes after
     * them included, so only the page-cache flusher is held to this. */
    if (getenv("EVBUS_FLUSH_DIRECT"))
        return;
    char tdir[PATH_MAX], pdir[PATH_MAX], seg[PATH_MAX + 32];
    snprintf(tdir, sizeof tdir, "%s/" TOPIC, t_data_dir());
    evb_seg_part_dir(tdir, 0, pdir, sizeof pdir);
    cr_assert_eq(evb_seg_path(seg, sizeof seg, pdir, 0, "log"), 0);
    int fd = open(seg, O_RDONLY);
    cr_assert_geq(fd, 0, "%s", seg);
    uint8_t hdr[EVB_FRAME_HDR], zero[EVB_FRAME_HDR] = {0};
    ssize_t n = pread(fd, hdr, sizeof hdr, (off_t)bad);
    close(fd);
    cr_expect(n == 0 || (n == (ssize_t)sizeof hdr && !memcmp(hdr, zero, sizeof hdr)),
              "the bad frame's header is in %s (read %zd)", seg, n);
}

/* A hard-linked regular file planted as the next segment (attack 3, F7):
 * the flusher refuses it, and the sync publish that fails says why, as
 * the flusher put it (the file, its links), though the flusher is another
 * thread; evb_partition_damage carries the same text for `evbus info`.
 * Before, the publish gave -EMEDIUMTYPE with an empty evb_last_error()
 * and info said "fifo, symlink, directory". */
Test(flush_round, a_hard_linked_next_segment_fails_sync_with_the_reason)
{
    evb_topic_config tc = df_config(EVB_DURABILITY_SYNC);
    df_create(TOPIC, &tc);
    df_link_next_segment(TOPIC, &tc);
    char victim[PATH_MAX + 32];
    snprintf(victim, sizeof victim, "%s/victim", t_data_dir());

    evb_producer_options po = {.block_ms = 2000};
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, df_bus, TOPIC, &po), 0, "%s", evb_last_error());
    char value[DF_VLEN] = "x";
    evb_msg m = {.value = value, .value_len = sizeof value, .flags = EVB_MSG_SYNC};
    int rc = 0;
    /* Past the first segment: the flusher must open the planted one. */
    for (int i = 0; i < 10000 && rc == 0; i++)
        rc = evb_publish(p, &m);
    cr_assert_eq(rc, -EMEDIUMTYPE, "publish: %d %s", rc, evb_strerror(rc));
    const char *why = evb_last_error();
    cr_expect(strstr(why, "00000000000000131072.log") && strstr(why, "2 hard links"),
              "the reason: '%s'", why);
    evb_damage d;
    cr_assert_eq(evb_partition_damage(df_bus, TOPIC, 0, 0, &d), 0, "%s", evb_last_error());
    cr_expect(strstr(d.flush_error, "2 hard links"), "info's text: '%s'", d.flush_error);
    evb_producer_close(p);
    FILE *f = fopen(victim, "r");
    char back[64] = "";
    cr_assert_not_null(f);
    cr_expect_not_null(fgets(back, sizeof back, f));
    fclose(f);
    cr_expect_str_eq(back, "not a segment\n", "the planted file was written through");
}
