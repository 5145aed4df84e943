/*
 * fuzz_util.c - scratch directories, file writes and input cursors for
 * the fuzz targets (fuzz.h). Nothing here parses evbus formats.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[128];
static char fresh[8][192];

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *w)
{
    (void)s;
    (void)w;
    if (flag == FTW_DP)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

void fuzz_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void scratch_remove(void)
{
    if (scratch[0])
        fuzz_rmtree(scratch);
}

const char *fuzz_scratch(void)
{
    if (!scratch[0]) {
        snprintf(scratch, sizeof scratch, "/dev/shm/evb-fuzz.%d", (int)getpid());
        fuzz_rmtree(scratch);
        if (mkdir(scratch, 0700) < 0) {
            fprintf(stderr, "fuzz: mkdir %s: %s\n", scratch, strerror(errno));
            abort();
        }
        atexit(scratch_remove);
    }
    return scratch;
}

const char *fuzz_fresh_dir(int slot)
{
    static unsigned n;
    char *d = fresh[slot];
    if (d[0])
        fuzz_rmtree(d);
    snprintf(d, sizeof fresh[0], "%s/%d.%u", fuzz_scratch(), slot, n++);
    if (mkdir(d, 0700) < 0) {
        fprintf(stderr, "fuzz: mkdir %s: %s\n", d, strerror(errno));
        abort();
    }
    return d;
}

bool fuzz_write(const char *path, const void *p, size_t n)
{
    /* No O_NOFOLLOW games: the inputs name files, never symlinks. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0)
        return false; /* a directory or FIFO the input put there first */
    if (n && write(fd, p, n) != (ssize_t)n) {
        fprintf(stderr, "fuzz: write %s: %s\n", path, strerror(errno));
        abort();
    }
    close(fd);
    return true;
}

uint8_t fuzz_u8(struct fuzz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

uint16_t fuzz_u16(struct fuzz_in *in)
{
    uint16_t lo = fuzz_u8(in);
    return (uint16_t)(lo | fuzz_u8(in) << 8);
}

uint64_t fuzz_u64(struct fuzz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)fuzz_u8(in) << (8 * i);
    return v;
}

const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t want, size_t *got)
{
    const uint8_t *p = in->p;
    *got = want < in->n ? want : in->n;
    in->p += *got;
    in->n -= *got;
    return p;
}

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void fuzz_take(struct fuzz_in *in, void *dst, size_t n)
{
    size_t got;
    const uint8_t *p = fuzz_bytes(in, n, &got);
    memcpy(dst, p, got);
    memset((uint8_t *)dst + got, 0, n - got);
}
