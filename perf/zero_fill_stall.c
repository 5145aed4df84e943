/*
 * zero_fill_stall.c - does reserving a SYNC segment's disk ahead of the
 * writes (fallocate, zero-fill, fdatasync: bus/durable/segment.c
 * evb_seg_reserve, in the flusher's helper thread) stall the fdatasyncs
 * of sync publishes to the same file? No evbus here: the kernel
 * mechanism alone, so the answer says what any zero-filling scheme on
 * this file system and disk would cost.
 *
 * The main thread loops pwrite 1 KiB + fdatasync at rising offsets of a
 * pre-zeroed file, as a sync producer's round does, and times each pair.
 * A second thread, every 200 ms, reserves the next 4 MiB of the same file
 * (the flusher's largest reservation step) by one of:
 *   none      nothing (the disk's own tail)
 *   buffered  posix_fallocate, 4 x 1 MiB zeros through the page cache,
 *             fdatasync (what the flusher does)
 *   direct    the same with the zeros written O_DIRECT (a concurrent
 *             fdatasync then finds no dirty zero pages to write)
 * Modes run interleaved, --rounds times, --ms each.
 *
 *   zero_fill_stall [--dir DIR] [--rounds N] [--ms MS]
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STEP (4u << 20)
#define CHUNK (1u << 20)
#define HOT (32u << 20)      /* where the sync loop writes */
#define MAX_SAMPLES 200000

enum { NONE, BUFFERED, DIRECT, MODES };
static const char *mode_name[MODES] = {"none", "buffered", "direct"};

struct run {
    const char *path;
    int mode;
    atomic_bool stop;
    int err;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *reserver(void *arg)
{
    struct run *r = arg;
    int fd = open(r->path, O_RDWR);
    int dfd = open(r->path, O_RDWR | O_DIRECT);
    void *z = NULL;
    if (fd < 0 || (r->mode == DIRECT && dfd < 0) || posix_memalign(&z, 4096, CHUNK)) {
        r->err = errno ? errno : ENOMEM;
        goto out;
    }
    memset(z, 0, CHUNK);
    for (off_t off = 2 * (off_t)HOT; !atomic_load(&r->stop); off += STEP) {
        if (r->mode != NONE) {
            if (posix_fallocate(fd, off, STEP)) {
                r->err = ENOSPC;
                break;
            }
            for (unsigned i = 0; i < STEP / CHUNK; i++)
                if (pwrite(r->mode == DIRECT ? dfd : fd, z, CHUNK, off + (off_t)i * CHUNK) !=
                    (ssize_t)CHUNK)
                    r->err = errno;
            fdatasync(fd);
        }
        struct timespec nap = {0, 200 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
out:
    free(z);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int one(const char *path, int mode, int ms)
{
    static double lat[MAX_SAMPLES];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    static char zeros[1 << 16];
    for (off_t o = 0; o < HOT; o += sizeof zeros)
        if (pwrite(fd, zeros, sizeof zeros, o) != (ssize_t)sizeof zeros) {
            perror("pre-zero");
            return 1;
        }
    fsync(fd);
    struct run r = {.path = path, .mode = mode};
    pthread_t t;
    pthread_create(&t, NULL, reserver, &r);
    char v[1024];
    memset(v, 0x5a, sizeof v);
    int n = 0;
    off_t off = 0;
    double end = now_s() + ms / 1000.0;
    while (now_s() < end && n < MAX_SAMPLES && off + 1024 <= HOT) {
        double s = now_s();
        if (pwrite(fd, v, sizeof v, off) != (ssize_t)sizeof v || fdatasync(fd)) {
            perror("pwrite/fdatasync");
            break;
        }
        lat[n++] = (now_s() - s) * 1e6;
        off += 1024;
    }
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    close(fd);
    unlink(path);
    if (r.err) {
        fprintf(stderr, "%s: reserving: %s\n", mode_name[mode], strerror(r.err));
        return 1;
    }
    qsort(lat, (size_t)n, sizeof lat[0], cmp);
    printf("  %-8s %6d syncs  p50 %7.0f  p99 %7.0f  p99.9 %7.0f  max %7.0f us\n",
           mode_name[mode], n, lat[n / 2], lat[n * 99 / 100], lat[n * 999 / 1000], lat[n - 1]);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = "/work";
    int rounds = 3, ms = 3000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ms"))
            ms = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: zero_fill_stall [--dir DIR] [--rounds N] [--ms MS]\n");
            return 2;
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/zero_fill_stall.%d", dir, (int)getpid());
    printf("# zero_fill_stall --dir %s --rounds %d --ms %d: pwrite 1 KiB + fdatasync "
           "while 4 MiB steps are reserved every 200 ms\n", dir, rounds, ms);
    for (int r = 1; r <= rounds; r++) {
        printf("round %d\n", r);
        for (int m = 0; m < MODES; m++)
            if (one(path, m, ms))
                return 1;
    }
    return 0;
}
