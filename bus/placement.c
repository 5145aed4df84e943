/*
 * placement.c - NUMA nodes, CPUs and huge pages for topics (DESIGN §7).
 * The decisions (which CPUs a node has, which node a partition belongs
 * to, which CPUs a producer and a consumer take) are functions of an
 * hwloc topology, tested on synthetic ones; the rest applies them here:
 * binding a new ring's memory, pinning threads, reporting where a ring's
 * pages are. The topology of this machine is loaded once per process, and
 * only by a caller that asks for a placement.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus_internal.h"
#include "placement.h"

/* Tests set this to bind rings on a one-node machine too, so the binding
 * itself (and its check after the fact) runs where there is one node. */
int evb_place_bind_one_node;

/* ---- decisions ---- */

int evb_place_node_count(hwloc_topology_t topo)
{
    return hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
}

int evb_place_node_check(hwloc_topology_t topo, int node)
{
    if (node >= 0 && hwloc_get_numanode_obj_by_os_index(topo, (unsigned)node))
        return 0;
    char have[128];
    hwloc_bitmap_list_snprintf(have, sizeof have, hwloc_topology_get_topology_nodeset(topo));
    return evb_err_set(-EINVAL, "numa node %d: this machine has node%s %s", node,
                       evb_place_node_count(topo) == 1 ? "" : "s", have);
}

int evb_place_node_cpuset(hwloc_topology_t topo, int node, hwloc_cpuset_t out)
{
    int rc = evb_place_node_check(topo, node);
    if (rc)
        return rc;
    /* A NUMA node object's cpuset is the CPUs local to it (hwloc 2 hangs
     * memory off its locality's object, and gives it that cpuset). */
    hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(topo, (unsigned)node);
    hwloc_bitmap_copy(out, n->cpuset);
    return 0;
}

int evb_place_partition_node(hwloc_topology_t topo, int topic_node,
                             hwloc_const_nodeset_t mem_nodes)
{
    if (topic_node >= 0 && hwloc_get_numanode_obj_by_os_index(topo, (unsigned)topic_node))
        return topic_node;
    /* No node asked for (or one this machine lacks, a topic rebuilt
     * elsewhere): where first touch put the pages is where its readers
     * and writers are cheapest, when that is one node. */
    if (mem_nodes && hwloc_bitmap_weight(mem_nodes) == 1) {
        int n = hwloc_bitmap_first(mem_nodes);
        if (hwloc_get_numanode_obj_by_os_index(topo, (unsigned)n))
            return n;
    }
    return -1;
}

int evb_place_cpus(hwloc_topology_t topo, int node, hwloc_const_cpuset_t allowed, int *cpus,
                   uint32_t cap)
{
    hwloc_cpuset_t set = hwloc_bitmap_alloc();
    if (!set)
        return -ENOMEM;
    int rc = 0;
    if (node < 0)
        hwloc_bitmap_copy(set, hwloc_topology_get_topology_cpuset(topo));
    else if ((rc = evb_place_node_cpuset(topo, node, set)))
        goto out;
    if (allowed)
        hwloc_bitmap_and(set, set, allowed);
    /* Two passes over the PUs in topology order (cores of one cache
     * together): first each core's first PU of the set, then the rest.
     * Cores come from their PUs' parents, so a topology without core
     * objects (each PU its own core) works too. */
    uint32_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        hwloc_obj_t pu = NULL;
        while ((pu = hwloc_get_next_obj_inside_cpuset_by_type(topo, set, HWLOC_OBJ_PU, pu))) {
            hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
            hwloc_const_cpuset_t mine = core ? core->cpuset : pu->cpuset;
            hwloc_cpuset_t in = hwloc_bitmap_alloc();
            if (!in) {
                rc = -ENOMEM;
                goto out;
            }
            hwloc_bitmap_and(in, mine, set);
            bool first = hwloc_bitmap_first(in) == (int)pu->os_index;
            hwloc_bitmap_free(in);
            if (first == (pass == 0)) {
                if (n < cap)
                    cpus[n] = (int)pu->os_index;
                n++;
            }
        }
    }
    rc = n ? (int)n : evb_err_set(-EINVAL, "numa node %d: no CPU of it is allowed here", node);
out:
    hwloc_bitmap_free(set);
    return rc;
}

/* ---- this machine's topology ---- */

static pthread_once_t topo_once = PTHREAD_ONCE_INIT;
static hwloc_topology_t topo_here;
static int topo_err;

static void topo_load(void)
{
    hwloc_topology_t t = NULL;
    if (hwloc_topology_init(&t) < 0) {
        topo_err = errno ? -errno : -ENOMEM;
        return;
    }
    /* Nodes, packages, cores and PUs are all placement needs: no caches,
     * no I/O devices (a load without them is a few hundred microseconds). */
    hwloc_topology_set_all_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_type_filter(t, HWLOC_OBJ_PACKAGE, HWLOC_TYPE_FILTER_KEEP_ALL);
    hwloc_topology_set_type_filter(t, HWLOC_OBJ_CORE, HWLOC_TYPE_FILTER_KEEP_ALL);
    hwloc_topology_set_type_filter(t, HWLOC_OBJ_NUMANODE, HWLOC_TYPE_FILTER_KEEP_ALL);
    hwloc_topology_set_type_filter(t, HWLOC_OBJ_PU, HWLOC_TYPE_FILTER_KEEP_ALL);
    if (hwloc_topology_load(t) < 0) {
        topo_err = errno ? -errno : -EIO;
        hwloc_topology_destroy(t);
        return;
    }
    topo_here = t;
}

int evb_place_topology(hwloc_topology_t *out)
{
    pthread_once(&topo_once, topo_load);
    if (topo_err)
        return evb_err_set(topo_err, "hwloc: cannot load this machine's topology: %s",
                           strerror(-topo_err));
    *out = topo_here;
    return 0;
}

int evb_place_node_cpus(int node, cpu_set_t *cpus)
{
    hwloc_topology_t t = NULL;
    int rc = evb_place_topology(&t);
    if (rc)
        return rc;
    if ((rc = evb_place_node_check(t, node)))
        return rc;
    if (evb_place_node_count(t) < 2)
        return 0;
    hwloc_cpuset_t set = hwloc_bitmap_alloc();
    if (!set)
        return -ENOMEM;
    evb_place_node_cpuset(t, node, set);
    CPU_ZERO(cpus);
    int i;
    hwloc_bitmap_foreach_begin(i, set)
        if (i < CPU_SETSIZE)
            CPU_SET(i, cpus);
    hwloc_bitmap_foreach_end();
    hwloc_bitmap_free(set);
    return 1;
}

/* ---- rings ---- */

/* Bytes of the mapping at BASE that this process maps with huge pages
 * (ShmemPmdMapped in /proc/self/smaps: a tmpfs page of 2 MiB mapped by
 * one page-table entry). 0 when that cannot be read. */
static uint64_t huge_mapped_bytes(const void *base)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    if (!f)
        return 0;
    char line[512];
    bool ours = false;
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-') {
            if (ours)
                break;
            ours = lo == (unsigned long)(uintptr_t)base;
        } else if (ours) {
            unsigned long long v;
            if (sscanf(line, "ShmemPmdMapped: %llu kB", &v) == 1 ||
                sscanf(line, "FilePmdMapped: %llu kB", &v) == 1)
                kb += v;
        }
    }
    fclose(f);
    return kb * 1024;
}

/* The size of a transparent huge page (PMD), 2 MiB where the kernel
 * does not say. */
static uint64_t hpage_bytes(void)
{
    unsigned long long v = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v ? v : 2u << 20;
}

static int place_huge(void *base, uint64_t bytes, const evb_topic_config *cfg)
{
    /* A tmpfs page's size is chosen when the page is allocated, from the
     * mapping that faults it (huge=advise wants MADV_HUGEPAGE on it):
     * posix_fallocate, which has no mapping, would allocate small pages.
     * So fault every page in here through an advised mapping first; the
     * creator's fallocate after this only checks the space. */
    int rc = madvise(base, bytes, MADV_HUGEPAGE) ? -errno : 0;
#ifdef MADV_POPULATE_WRITE
    if (!rc && madvise(base, bytes, MADV_POPULATE_WRITE))
        rc = -errno;
#else
    rc = -EOPNOTSUPP;
#endif
    if (cfg->huge_pages != EVB_HUGE_PAGES_STRICT)
        return 0; /* whatever came of it: evb_partition_memory() tells */
    if (rc)
        return evb_err_set(rc == -EINVAL ? -EOPNOTSUPP : rc,
                           "huge pages: madvise: %s (a kernel without transparent huge "
                           "pages, or older than 5.14)", strerror(-rc));
    if (!huge_mapped_bytes(base)) {
        /* The mounts are fine, and still none fits: say that first (a
         * cold attack was told to mount huge=advise, which it had). */
        uint64_t hp = hpage_bytes();
        if (bytes < hp)
            return evb_err_set(-EOPNOTSUPP, "huge pages: none fits a ring of %llu bytes "
                               "with its header (a huge page is %llu): a ring_bytes of %llu "
                               "or more can have them", (unsigned long long)bytes,
                               (unsigned long long)hp, (unsigned long long)hp);
        return evb_err_set(-EOPNOTSUPP, "huge pages: none given (the tmpfs must be mounted "
                           "with huge=advise, or shmem_enabled be force)");
    }
    return 0;
}

int evb_place_ring(void *base, uint64_t bytes, void *arg)
{
    const evb_topic_config *cfg = arg;
    int node = EVB_NUMA_NODE_OF(cfg->numa_node);
    if (node >= 0) {
        hwloc_topology_t t = NULL;
        int rc = evb_place_topology(&t);
        if (rc)
            return rc;
        /* A node this machine lacks can only be a topic rebuilt after a
         * reboot elsewhere (creation checks it): left to the kernel. */
        if (hwloc_get_numanode_obj_by_os_index(t, (unsigned)node) &&
            (evb_place_node_count(t) > 1 || evb_place_bind_one_node)) {
            hwloc_nodeset_t ns = hwloc_bitmap_alloc();
            if (!ns)
                return -ENOMEM;
            hwloc_bitmap_only(ns, (unsigned)node);
            /* The mapping of a tmpfs file: mbind sets the file's shared
             * policy, which every later allocation of its pages follows
             * (the fallocate after this, and any process's fault). STRICT:
             * a policy the kernel cannot give is an error, not a hint. */
            rc = hwloc_set_area_membind(t, base, bytes, ns, HWLOC_MEMBIND_BIND,
                                        HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_STRICT);
            int e = errno;
            hwloc_bitmap_free(ns);
            if (rc < 0)
                return evb_err_set(-e, "numa node %d: binding ring memory: %s", node,
                                   strerror(e));
        }
    }
    return cfg->huge_pages ? place_huge(base, bytes, cfg) : 0;
}

int evb_place_ring_lenient(void *base, uint64_t bytes, void *arg)
{
    (void)evb_place_ring(base, bytes, arg);
    return 0;
}

/* ---- partitions ---- */

/* Map PARTITION of TOPIC; the caller closes *TM. */
static int map_partition(evb_bus *bus, const char *topic, uint32_t partition,
                         struct evb_topic_map **tm)
{
    int rc = evb_topic_map_open(bus, topic, tm);
    if (rc)
        return rc;
    if (partition >= (*tm)->nparts) {
        rc = evb_err_set(-EINVAL, "topic %s: partition %u, it has %u", topic, partition,
                         (*tm)->nparts);
        evb_topic_map_close(*tm);
    }
    return rc;
}

/* Touch every page of R's mapping (a read), so that resident pages are
 * mapped here and the kernel can say where they are. */
static void touch(const struct evb_ring *r)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t sum = 0;
    for (size_t off = 0; off < r->map_bytes; off += (size_t)pg)
        sum ^= ((const volatile uint8_t *)r->base)[off];
    (void)sum;
}

EVB_EXPORT int evb_partition_memory(evb_bus *bus, const char *topic, uint32_t partition,
                         struct evb_partition_memory *out)
{
    EVB_NO_CANCEL;
    hwloc_topology_t t = NULL;
    struct evb_topic_map *tm;
    int rc = evb_place_topology(&t);
    if (rc || (rc = map_partition(bus, topic, partition, &tm)))
        return rc;
    const struct evb_ring *r = &tm->rings[partition];
    memset(out, 0, sizeof *out);
    out->bound_node = out->node = -1;
    out->bytes = r->map_bytes;
    touch(r);
    hwloc_nodeset_t ns = hwloc_bitmap_alloc();
    if (!ns) {
        evb_topic_map_close(tm);
        return -ENOMEM;
    }
    hwloc_membind_policy_t pol;
    if (!hwloc_get_area_membind(t, r->base, r->map_bytes, ns, &pol, HWLOC_MEMBIND_BYNODESET) &&
        pol == HWLOC_MEMBIND_BIND && hwloc_bitmap_weight(ns) == 1)
        out->bound_node = hwloc_bitmap_first(ns);
    hwloc_bitmap_zero(ns);
    if (!hwloc_get_area_memlocation(t, r->base, r->map_bytes, ns, HWLOC_MEMBIND_BYNODESET) &&
        hwloc_bitmap_weight(ns) == 1)
        out->node = hwloc_bitmap_first(ns);
    hwloc_bitmap_free(ns);
    out->huge_bytes = huge_mapped_bytes(r->base);
    evb_topic_map_close(tm);
    return 0;
}

/* *NODE: the node of PARTITION of TOPIC on this machine, as
 * evb_place_partition_node() decides it (-1: none). */
static int partition_node(evb_bus *bus, const char *topic, uint32_t partition, int *node)
{
    hwloc_topology_t t = NULL;
    struct evb_topic_map *tm;
    int rc = evb_place_topology(&t);
    if (rc || (rc = map_partition(bus, topic, partition, &tm)))
        return rc;
    const struct evb_ring *r = &tm->rings[partition];
    int want = EVB_NUMA_NODE_OF(tm->cfg.numa_node);
    hwloc_nodeset_t ns = NULL;
    /* Where the pages are matters only without a node of this machine. */
    if ((want < 0 || !hwloc_get_numanode_obj_by_os_index(t, (unsigned)want)) &&
        (ns = hwloc_bitmap_alloc())) {
        touch(r);
        if (hwloc_get_area_memlocation(t, r->base, r->map_bytes, ns, HWLOC_MEMBIND_BYNODESET))
            hwloc_bitmap_zero(ns);
    }
    *node = evb_place_partition_node(t, want, ns);
    hwloc_bitmap_free(ns);
    evb_topic_map_close(tm);
    return 0;
}

EVB_EXPORT int evb_pin_near(evb_bus *bus, const char *topic, uint32_t partition)
{
    EVB_NO_CANCEL;
    hwloc_topology_t t = NULL;
    int node, rc = evb_place_topology(&t);
    if (rc || (rc = partition_node(bus, topic, partition, &node)))
        return rc;
    if (node < 0 || evb_place_node_count(t) < 2)
        return 0; /* nothing to choose between */
    hwloc_cpuset_t set = hwloc_bitmap_alloc();
    if (!set)
        return -ENOMEM;
    evb_place_node_cpuset(t, node, set);
    rc = hwloc_set_cpubind(t, set, HWLOC_CPUBIND_THREAD) ? -errno : 0;
    hwloc_bitmap_free(set);
    return rc ? evb_err_set(rc, "topic %s: partition %u: pinning to node %d: %s", topic,
                            partition, node, strerror(-rc))
              : 0;
}

EVB_EXPORT int evb_cpus_near(evb_bus *bus, const char *topic, uint32_t partition, int *cpus,
                  uint32_t cap)
{
    EVB_NO_CANCEL;
    hwloc_topology_t t = NULL;
    int node, rc = evb_place_topology(&t);
    if (rc || (rc = partition_node(bus, topic, partition, &node)))
        return rc;
    /* Within the caller's affinity (taskset), as `evbus bench --pin` is. */
    hwloc_cpuset_t mine = hwloc_bitmap_alloc();
    if (!mine)
        return -ENOMEM;
    if (hwloc_get_cpubind(t, mine, HWLOC_CPUBIND_THREAD) < 0)
        hwloc_bitmap_copy(mine, hwloc_topology_get_allowed_cpuset(t));
    rc = evb_place_cpus(t, node, mine, cpus, cap);
    hwloc_bitmap_free(mine);
    return rc;
}
