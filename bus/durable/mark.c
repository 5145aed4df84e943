/*
 * mark.c - the durable mark of a partition (mark_format.h): the flusher
 * records where its last fdatasync reached, recovery reads it back. What
 * the mark means for a damaged log is recover.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "mark_format.h"
#include "safe_open.h"
#include "seg_internal.h"

static int mark_path(char *out, size_t cap, const char *dir)
{
    int n = snprintf(out, cap, "%s/%s", dir, EVB_MARK_NAME);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

void evb_seg_mark_durable(const char *dir, uint64_t pos, uint64_t offset, uint32_t mode)
{
    char path[PATH_MAX];
    if (mark_path(path, sizeof path, dir))
        return;
    struct evb_mark m = {.magic = EVB_MARK_MAGIC, .format = EVB_MARK_FORMAT_WORD,
                         .pos = pos, .offset = offset};
    m.crc = evb_crc32c(0, &m, offsetof(struct evb_mark, crc));
    int fd = evb_open_file(AT_FDCWD, path, O_WRONLY | O_CREAT, mode, EVB_FILE_REG);
    if (fd < 0)
        return; /* a hint that may lag: recovery only trusts less */
    (void)evb_seg_write_at(fd, &m, sizeof m, 0);
    close(fd);
}

bool evb_seg_mark_read(const char *dir, uint64_t *pos, uint64_t *offset)
{
    char path[PATH_MAX];
    struct evb_mark m;
    if (mark_path(path, sizeof path, dir))
        return false;
    int fd = evb_open_file(AT_FDCWD, path, O_RDONLY, 0, EVB_FILE_REG);
    if (fd < 0)
        return false;
    int rc = evb_seg_read_at(fd, &m, sizeof m, 0);
    close(fd);
    if (rc || m.magic != EVB_MARK_MAGIC || m.format != EVB_MARK_FORMAT_WORD || m.zero ||
        m.crc != evb_crc32c(0, &m, offsetof(struct evb_mark, crc)) ||
        m.pos % EVB_FRAME_ALIGN)
        return false;
    *pos = m.pos;
    *offset = m.offset;
    return true;
}
