/*
 * bus_internal.h - what the bus/ files share: the bus handle, a mapped
 * topic (config plus its partition rings) and the export macro.
 */
#ifndef EVB_BUS_INTERNAL_H
#define EVB_BUS_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include "err.h"
#include "evbus.h"
#include "ring.h"

#define EVB_EXPORT __attribute__((visibility("default")))

#define EVB_BUS_MAGIC 0x314154454d425645ull /* "EVBMETA1" */
#define EVB_BUS_VERSION 1u

/* <bus>/bus.meta, mapped shared: bus-wide counters. */
struct evb_bus_meta {
    _Atomic uint64_t magic;          /* stored last at creation (release) */
    uint32_t version;
    uint32_t pad_;
    _Atomic uint32_t next_producer_id; /* fetch_add by producer_open */
};

struct evb_bus {
    char path[PATH_MAX];
    evb_bus_options opts;
    struct evb_bus_meta *meta;
};

/* A topic opened for use: its config and every partition's ring mapped. */
struct evb_topic_map {
    char name[EVB_NAME_MAX + 1];
    char dir[PATH_MAX];
    evb_topic_config cfg;
    uint32_t nparts;
    struct evb_ring rings[];
};

int evb_name_check(const char *name, const char *what);
int evb_topic_map_open(evb_bus *bus, const char *topic, struct evb_topic_map **out);
void evb_topic_map_close(struct evb_topic_map *tm);
int evb_topic_config_read(const char *dir, evb_topic_config *cfg);
void evb_topic_config_defaults(evb_topic_config *cfg);
int evb_rmtree(const char *path);

#endif
