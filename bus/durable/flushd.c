/*
 * flushd.c - the loop of `evbus flushd`: keep one flusher per durable
 * topic of the bus, starting flushers for new topics and stopping those of
 * deleted ones, once a second. Listing topics and starting a flusher are
 * the caller's (bus/durability.c), through struct evb_flushd_ops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durable.h"

struct flushd_topic {
    char name[EVB_NAME_MAX + 1];
    void *fl;
    bool seen;
};

struct flushd {
    struct flushd_topic *t;
    size_t n, cap;
};

static int flushd_seen(const char *topic, void *arg)
{
    struct flushd *d = arg;
    for (size_t i = 0; i < d->n; i++) {
        if (!strcmp(d->t[i].name, topic)) {
            d->t[i].seen = true;
            return 0;
        }
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct flushd_topic *t = realloc(d->t, cap * sizeof *t);
        if (!t)
            return 0;
        d->t = t;
        d->cap = cap;
    }
    struct flushd_topic *t = &d->t[d->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", topic);
    t->seen = true;
    return 0;
}

int evb_flushd_run(const struct evb_flushd_ops *ops, void *ctx, const volatile int *stop)
{
    struct flushd d = {0};
    int rc = 0;
    while (!*stop) {
        for (size_t i = 0; i < d.n; i++)
            d.t[i].seen = false;
        int n = ops->list(ctx, flushd_seen, &d);
        if (n < 0) {
            rc = n;
            break;
        }
        for (size_t i = 0; i < d.n; i++) {
            struct flushd_topic *t = &d.t[i];
            if (!t->seen && t->fl) {
                /* Deleted: let its flusher go. */
                ops->put(ctx, t->fl);
                t->fl = NULL;
            } else if (t->seen && t->fl && ops->stale(ctx, t->fl)) {
                /* Rebuilt under us (the bus directory was removed while
                 * we were stopped): flush the new rings, not the old. */
                ops->put(ctx, t->fl);
                t->fl = ops->get(ctx, t->name);
            } else if (t->seen && !t->fl) {
                t->fl = ops->get(ctx, t->name);
            }
        }
        for (int i = 0; i < 10 && !*stop; i++) {
            struct timespec nap = {0, 100 * 1000 * 1000};
            nanosleep(&nap, NULL);
        }
    }
    for (size_t i = 0; i < d.n; i++)
        if (d.t[i].fl)
            ops->put(ctx, d.t[i].fl);
    free(d.t);
    return rc;
}
