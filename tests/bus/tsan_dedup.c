/*
 * tsan_dedup.c - a group's duplicate table saved by one member while
 * another loads it, with a plain main() so it runs under ThreadSanitizer
 * (suite tsan). This is the handover race: an expelled member that
 * checked its ownership just before is still inside evb_dedup_save() for
 * the partition when the new owner loads the table. The load must never
 * call a slot caught mid-write damage (-EBADMSG), and whatever table it
 * takes must be the one saved for the position it loads at.
 *
 * The writer's table at position 8 x i holds every producer at sequence
 * i, so a table loaded for a position says by itself whether it is that
 * position's. EVB_TEST_THREAD_EVENTS sets the number of saves.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dedup.h"
#include "dedup_format.h"
#include "evbus.h"

#define IDS 48u

static uint64_t saves;
static _Atomic uint64_t saved_at;    /* the last position saved, 0: none */
static _Atomic int writer_done;
static struct evb_dup_hdr *map;
static size_t bytes;

static struct evb_dedup *handle(void)
{
    struct evb_dedup *d = evb_dedup_new(1);
    if (!d)
        abort();
    d->map = map;
    d->bytes = bytes;
    d->path = strdup("tsan.gdup");
    return d;
}

static void *writer(void *arg)
{
    (void)arg;
    struct evb_dedup *d = handle();
    for (uint64_t i = 1; i <= saves; i++) {
        /* Every producer moves on to sequence i: a new table. */
        for (uint32_t k = 0; k < IDS; k++)
            if (evb_dedup_drop(d, 0, EVB_PRODUCER_ID_STABLE | k, i))
                abort();
        evb_dedup_save(d, 0, 0, 8 * i);
        atomic_store(&saved_at, 8 * i);
    }
    atomic_store(&writer_done, 1);
    d->map = NULL;
    evb_dedup_free(d);
    return NULL;
}

int main(void)
{
    const char *env = getenv("EVB_TEST_THREAD_EVENTS");
    saves = env ? strtoull(env, NULL, 10) : 200000;
    if (saves < 1000)
        saves = 1000;
    bytes = evb_dup_file_bytes(1);
    map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        abort();
    map->version = EVB_DUP_VERSION;
    map->partitions = 1;
    map->format = EVB_DUP_FORMAT_WORD;
    map->producers = EVB_DUP_PRODUCERS;
    for (int k = 0; k < 2; k++) {
        atomic_store(&map->s[k].from, UINT64_MAX);
        atomic_store(&map->s[k].to, UINT64_MAX);
    }
    atomic_store(&map->magic, EVB_DUP_MAGIC);
    pthread_t w;
    if (pthread_create(&w, NULL, writer, NULL))
        abort();
    struct evb_dedup *d = handle();
    uint64_t loads = 0, whole = 0;
    while (!atomic_load(&writer_done)) {
        uint64_t pos = atomic_load(&saved_at);
        int rc = evb_dedup_load(d, 0, 0, pos);
        if (rc) {
            fprintf(stderr, "load at %llu during a save: %d %s\n", (unsigned long long)pos,
                    rc, evb_last_error());
            return 1;
        }
        loads++;
        const struct evb_dedup_part *t = &d->p[0];
        if (!t->n)
            continue; /* the slot for pos was rewritten since: none covers it */
        whole++;
        if (t->n != IDS) {
            fprintf(stderr, "load at %llu: %u entries, saved %u\n", (unsigned long long)pos,
                    t->n, IDS);
            return 1;
        }
        for (uint32_t k = 0; k < t->n; k++)
            if (t->seq[k] != pos / 8) {
                fprintf(stderr, "load at %llu: producer %u at %llu, saved %llu\n",
                        (unsigned long long)pos, k, (unsigned long long)t->seq[k],
                        (unsigned long long)(pos / 8));
                return 1;
            }
    }
    pthread_join(w, NULL);
    printf("%llu saves, %llu loads, %llu found the table for their position\n",
           (unsigned long long)saves, (unsigned long long)loads, (unsigned long long)whole);
    d->map = NULL;
    evb_dedup_free(d);
    munmap(map, bytes);
    /* A test that saw nothing proves nothing. */
    return whole ? 0 : 1;
}
