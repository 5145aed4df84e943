/*
 * test_map.c - shm/map.c: a created ring opens with its header's values
 * in the locals, creation refuses bad geometry and existing files, and
 * evb_ring_validate rejects each corrupt header field with a message that
 * names the value found and the value expected.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring_helpers.h"
#include "t_helpers.h"

TestSuite(ring_map, .fini = tr_fini, .timeout = 10);

Test(ring_map, create_then_open_fills_the_locals)
{
    struct evb_ring r;
    struct evb_ring_init init = {.capacity = 1u << 17, .max_frame = 8192, .partition = 3,
                                 .mode = 0640, .flags = EVB_RING_F_DURABLE,
                                 .base_pos = 4096, .base_offset = 77, .log_start_pos = 8,
                                 .log_start_offset = 1, .dropped = 5};
    const char *path = tr_ring(&r, &init);
    cr_expect_eq(r.capacity, 1u << 17);
    cr_expect_eq(r.mask, (1u << 17) - 1);
    cr_expect_eq(r.max_frame, 8192);
    cr_expect_eq(r.partition, 3);
    cr_expect(r.durable);
    cr_expect_eq(r.base_pos, 4096);
    cr_expect_eq(r.data, r.base + EVB_RING_DATA_OFFSET);
    uint64_t pos, off;
    evb_ring_load_tail(&r, &pos, &off);
    cr_expect_eq(pos, 4096);
    cr_expect_eq(off, 77);
    cr_expect_eq(TR_LD(r.hdr->flushed), 4096);
    cr_expect_eq(TR_LD(r.hdr->durable), 4096);
    cr_expect_eq(TR_LD(r.hdr->log_start_pos), 8);
    cr_expect_eq(TR_LD(r.hdr->recovered_dropped), 5);
    for (uint32_t i = 0; i < EVB_RING_PRODUCER_SLOTS; i++)
        cr_expect_eq(TR_LD(r.pslots[i].pending), EVB_POS_NONE);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0640);
    cr_expect_eq(st.st_size, EVB_RING_DATA_OFFSET + (1u << 17));
    evb_ring_close(&r);
    /* Defaults of the times (the bus sets its own after open). */
    cr_assert_eq(evb_ring_open(&r, path), 0);
    cr_expect_eq(r.dead_ns, 200ull * 1000 * 1000);
    cr_expect_eq(r.stall_ns, 5000ull * 1000 * 1000);
    evb_ring_close(&r);
}

Test(ring_map, create_refuses_bad_geometry_and_existing_files)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bad", t_bus_dir());
    struct evb_ring_init init = {.capacity = TR_CAP, .max_frame = TR_MAX_FRAME, .mode = 0600};
    init.capacity = TR_CAP + 8;
    cr_expect_eq(evb_ring_create(path, &init), -EINVAL);
    cr_expect(strstr(evb_err_get(), "ring bytes 65544"), "%s", evb_err_get());
    init.capacity = EVB_RING_MIN_CAPACITY / 2;
    cr_expect_eq(evb_ring_create(path, &init), -EINVAL);
    init.capacity = TR_CAP;
    init.max_frame = TR_CAP / 2;
    cr_expect_eq(evb_ring_create(path, &init), -EINVAL);
    init.max_frame = 100;
    cr_expect_eq(evb_ring_create(path, &init), -EINVAL);
    init.max_frame = TR_MAX_FRAME;
    init.base_pos = 12;
    cr_expect_eq(evb_ring_create(path, &init), -EINVAL);
    cr_expect_eq(access(path, F_OK), -1, "nothing left behind");
    init.base_pos = 0;
    cr_assert_eq(evb_ring_create(path, &init), 0);
    cr_expect_eq(evb_ring_create(path, &init), -EEXIST);
}

Test(ring_map, open_refuses_a_file_too_small_for_a_header)
{
    char path[512];
    snprintf(path, sizeof path, "%s/small", t_bus_dir());
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 4096), 0);
    close(fd);
    struct evb_ring r;
    cr_expect_eq(evb_ring_open(&r, path), -EBADMSG);
    cr_expect(strstr(evb_err_get(), "4096 bytes is too small"), "%s", evb_err_get());
}

/* A copy of a valid ring file's bytes, for validate to judge. */
static uint8_t *ring_image(size_t *bytes)
{
    struct evb_ring r;
    tr_ring(&r, NULL);
    *bytes = r.map_bytes;
    uint8_t *img = malloc(*bytes);
    cr_assert_not_null(img);
    memcpy(img, r.base, *bytes);
    evb_ring_close(&r);
    return img;
}

/* Validate the damaged IMG: CODE, and a message holding N1 and N2 (the
 * value found, the one expected). */
static void expect_rejected(uint8_t *img, size_t bytes, int code, const char *n1,
                            const char *n2)
{
    struct evb_ring r;
    evb_err_clear();
    cr_expect_eq(evb_ring_validate(&r, img, bytes), code);
    cr_expect(strstr(evb_err_get(), n1), "'%s' lacks '%s'", evb_err_get(), n1);
    if (n2)
        cr_expect(strstr(evb_err_get(), n2), "'%s' lacks '%s'", evb_err_get(), n2);
}

#define HDR(img) ((struct evb_ring_hdr *)(void *)(img))

Test(ring_map, validate_accepts_the_image_it_created)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    struct evb_ring r;
    cr_expect_eq(evb_ring_validate(&r, img, bytes), 0);
    free(img);
}

Test(ring_map, validate_rejects_a_wrong_magic)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    TR_ST(HDR(img)->magic, 0x1234);
    expect_rejected(img, bytes, -EBADMSG, "magic 0x1234", "expected 0x31474e4952425645");
    free(img);
}

Test(ring_map, validate_rejects_another_format_with_eproto)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    HDR(img)->format = EVB_RING_FORMAT_WORD + (1ull << 48);
    char found[64], want[64];
    snprintf(found, sizeof found, "format 0x%llx",
             (unsigned long long)(EVB_RING_FORMAT_WORD + (1ull << 48)));
    snprintf(want, sizeof want, "reads 0x%llx", (unsigned long long)EVB_RING_FORMAT_WORD);
    expect_rejected(img, bytes, -EPROTO, found, want);
    free(img);
}

/* Issue 9, defect 20: version 3 moved values to an 8-byte boundary. A
 * version 2 ring (value right after the key) is refused, naming both
 * versions, never read with the wrong layout. */
Test(ring_map, version_2_ring_of_packed_values_is_refused_naming_both_versions)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    uint64_t v2 = (EVB_RING_FORMAT_WORD & ~(0xffffull << 48)) | 2ull << 48;
    HDR(img)->format = v2;
    cr_assert_eq(EVB_RING_VERSION, 6);
    expect_rejected(img, bytes, -EPROTO, "(version 2)", "(version 6)");
    free(img);
}

/* Version 4 lets producers commit with a plain store (claim.c X1); a
 * padder of version 3 would race it with a CAS, so a version 3 ring (or a
 * version 3 build opening a newer ring) is refused, naming both. */
Test(ring_map, version_3_ring_of_cas_only_commits_is_refused_naming_both_versions)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    HDR(img)->format = (EVB_RING_FORMAT_WORD & ~(0xffffull << 48)) | 3ull << 48;
    expect_rejected(img, bytes, -EPROTO, "(version 3)", "(version 6)");
    free(img);
}

/* Version 5 lets a lone shared producer move the tail with a plain store
 * under the tail lease (claim.c X4); a version 4 producer attaching would
 * CAS the tail without revoking it, so the two must not share a ring. */
Test(ring_map, version_4_ring_without_the_tail_lease_is_refused_naming_both_versions)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    HDR(img)->format = (EVB_RING_FORMAT_WORD & ~(0xffffull << 48)) | 4ull << 48;
    expect_rejected(img, bytes, -EPROTO, "(version 4)", "(version 6)");
    free(img);
}

/* Version 6 pads data frames to whole lines (EVB_FRAME_F_LINE_PADDED); a
 * version 5 reader would refuse every such frame as bad flags, and its
 * producers would write frames off the line, so the two are kept apart. */
Test(ring_map, version_5_ring_of_unpadded_frames_is_refused_naming_both_versions)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    HDR(img)->format = (EVB_RING_FORMAT_WORD & ~(0xffffull << 48)) | 5ull << 48;
    expect_rejected(img, bytes, -EPROTO, "(version 5)", "(version 6)");
    free(img);
}

Test(ring_map, validate_rejects_a_capacity_that_does_not_fit_the_file)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    HDR(img)->capacity = 2 * TR_CAP;
    char sz[32];
    snprintf(sz, sizeof sz, "file of %zu bytes", bytes);
    expect_rejected(img, bytes, -EBADMSG, "capacity 131072", sz);
    HDR(img)->capacity = TR_CAP - 8;
    expect_rejected(img, bytes, -EBADMSG, "capacity 65528", sz);
    HDR(img)->capacity = TR_CAP;
    expect_rejected(img, bytes - 8, -EBADMSG, "capacity 65536", "file of");
    free(img);
}

Test(ring_map, validate_rejects_a_bad_max_frame)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    HDR(img)->max_frame_bytes = TR_CAP / 2;
    expect_rejected(img, bytes, -EBADMSG, "max frame 32768", "capacity 65536");
    HDR(img)->max_frame_bytes = 60;
    expect_rejected(img, bytes, -EBADMSG, "max frame 60", NULL);
    HDR(img)->max_frame_bytes = 1001;
    expect_rejected(img, bytes, -EBADMSG, "max frame 1001", NULL);
    free(img);
}

Test(ring_map, validate_rejects_an_unaligned_base_or_unknown_flags)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    HDR(img)->base_pos = 4100;
    expect_rejected(img, bytes, -EBADMSG, "base 4100", NULL);
    HDR(img)->base_pos = 0;
    HDR(img)->flags = 0x6;
    expect_rejected(img, bytes, -EBADMSG, "flags 0x6", NULL);
    free(img);
}

Test(ring_map, validate_rejects_a_file_shorter_than_the_header)
{
    size_t bytes;
    uint8_t *img = ring_image(&bytes);
    expect_rejected(img, EVB_RING_DATA_OFFSET - 1, -EBADMSG, "20479 bytes", NULL);
    free(img);
}

/* evb_ring_open adds the path to validate's message. */
Test(ring_map, open_prefixes_the_path_to_the_message)
{
    struct evb_ring r;
    const char *path = tr_ring(&r, NULL);
    char copy[512];
    snprintf(copy, sizeof copy, "%s", path);
    TR_ST(r.hdr->magic, 7);
    evb_ring_close(&r);
    cr_expect_eq(evb_ring_open(&r, copy), -EBADMSG);
    cr_expect(strstr(evb_err_get(), copy) == evb_err_get(), "%s", evb_err_get());
    cr_expect(strstr(evb_err_get(), "magic 0x7"), "%s", evb_err_get());
}
