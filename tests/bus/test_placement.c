/*
 * test_placement.c - NUMA placement and huge pages (bus/placement.c).
 * The decisions run on hwloc synthetic topologies of 2 and 4 nodes: the
 * CPUs of a node, the node of a partition, the CPUs a producer and a
 * consumer take. On this machine: a node it lacks is refused naming those
 * it has, node 0 of a one-node machine changes nothing, a ring's memory
 * is bound where the topic says (checked with get_mempolicy and
 * move_pages, not through the library), and huge pages fall back cleanly,
 * or land when a tmpfs that allows them is mounted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "placement.h"
#include "t_helpers.h"
#include "topic_config_format.h"

extern int evb_place_bind_one_node;

/* ---- synthetic topologies ---- */

static hwloc_topology_t synthetic(const char *desc)
{
    hwloc_topology_t t;
    cr_assert_eq(hwloc_topology_init(&t), 0);
    cr_assert_eq(hwloc_topology_set_synthetic(t, desc), 0, "synthetic '%s'", desc);
    cr_assert_eq(hwloc_topology_load(t), 0);
    return t;
}

/* The CPUs evb_place_cpus gives NODE, as "a,b,c". */
static void cpus_of(hwloc_topology_t t, int node, hwloc_const_cpuset_t allowed, char *out,
                    size_t cap)
{
    int cpus[64];
    int n = evb_place_cpus(t, node, allowed, cpus, 64);
    cr_assert_gt(n, 0, "node %d: %d %s", node, n, evb_last_error());
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n && i < 64; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%d", i ? "," : "", cpus[i]);
}

Test(placement, two_nodes_cpus_of_each_node)
{
    hwloc_topology_t t = synthetic("pack:2 numa:1 core:2 pu:1");
    cr_assert_eq(evb_place_node_count(t), 2);
    hwloc_cpuset_t set = hwloc_bitmap_alloc();
    char got[256];
    cr_assert_eq(evb_place_node_cpuset(t, 0, set), 0);
    hwloc_bitmap_list_snprintf(got, sizeof got, set);
    cr_assert_str_eq(got, "0-1");
    cr_assert_eq(evb_place_node_cpuset(t, 1, set), 0);
    hwloc_bitmap_list_snprintf(got, sizeof got, set);
    cr_assert_str_eq(got, "2-3");
    /* bench --pin auto on node 1: producer on 2, consumer on 3. */
    cpus_of(t, 1, NULL, got, sizeof got);
    cr_assert_str_eq(got, "2,3");
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(t);
}

/* With hyperthreads, a producer and a consumer go to two cores of the
 * node before any sibling is used. */
Test(placement, four_nodes_cores_before_siblings)
{
    hwloc_topology_t t = synthetic("pack:4 numa:1 core:2 pu:2");
    cr_assert_eq(evb_place_node_count(t), 4);
    char got[256];
    cpus_of(t, 2, NULL, got, sizeof got);
    cr_assert_str_eq(got, "8,10,9,11");
    cpus_of(t, 3, NULL, got, sizeof got);
    cr_assert_str_eq(got, "12,14,13,15");
    /* No node: the whole machine, one PU per core first, in order. */
    cpus_of(t, -1, NULL, got, sizeof got);
    cr_assert_str_eq(got, "0,2,4,6,8,10,12,14,1,3,5,7,9,11,13,15");
    hwloc_topology_destroy(t);
}

/* Only the CPUs the caller may use; a sibling whose core-mate is not
 * allowed counts as its core's first. */
Test(placement, allowed_cpus_only)
{
    hwloc_topology_t t = synthetic("pack:4 numa:1 core:2 pu:2");
    hwloc_cpuset_t allowed = hwloc_bitmap_alloc();
    hwloc_bitmap_list_sscanf(allowed, "9-11");
    char got[256];
    cpus_of(t, 2, allowed, got, sizeof got);
    cr_assert_str_eq(got, "9,10,11");
    int cpus[4];
    cr_assert_eq(evb_place_cpus(t, 0, allowed, cpus, 4), -EINVAL);
    cr_assert(strstr(evb_last_error(), "numa node 0: no CPU of it is allowed"), "%s",
              evb_last_error());
    hwloc_bitmap_free(allowed);
    hwloc_topology_destroy(t);
}

Test(placement, missing_node_names_the_nodes_there)
{
    hwloc_topology_t t = synthetic("pack:4 numa:1 core:2 pu:1");
    cr_assert_eq(evb_place_node_check(t, 3), 0);
    cr_assert_eq(evb_place_node_check(t, 4), -EINVAL);
    cr_assert_str_eq(evb_last_error(), "numa node 4: this machine has nodes 0-3");
    hwloc_cpuset_t set = hwloc_bitmap_alloc();
    cr_assert_eq(evb_place_node_cpuset(t, 7, set), -EINVAL);
    int cpus[4];
    cr_assert_eq(evb_place_cpus(t, 5, NULL, cpus, 4), -EINVAL);
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(t);
    t = synthetic("pack:1 numa:1 core:2 pu:1");
    cr_assert_eq(evb_place_node_check(t, 1), -EINVAL);
    cr_assert_str_eq(evb_last_error(), "numa node 1: this machine has node 0");
    hwloc_topology_destroy(t);
}

/* The topic's node when the machine has it, else the one node holding
 * the ring's pages, else none. */
Test(placement, node_of_a_partition)
{
    hwloc_topology_t t = synthetic("pack:4 numa:1 core:2 pu:1");
    hwloc_nodeset_t mem = hwloc_bitmap_alloc();
    cr_assert_eq(evb_place_partition_node(t, 3, NULL), 3);
    hwloc_bitmap_only(mem, 1);
    cr_assert_eq(evb_place_partition_node(t, 3, mem), 3);
    cr_assert_eq(evb_place_partition_node(t, -1, mem), 1);
    cr_assert_eq(evb_place_partition_node(t, 9, mem), 1, "a node this machine lacks");
    hwloc_bitmap_set(mem, 2);
    cr_assert_eq(evb_place_partition_node(t, -1, mem), -1, "pages on two nodes");
    hwloc_bitmap_zero(mem);
    cr_assert_eq(evb_place_partition_node(t, -1, mem), -1);
    cr_assert_eq(evb_place_partition_node(t, -1, NULL), -1);
    hwloc_bitmap_only(mem, 6);
    cr_assert_eq(evb_place_partition_node(t, -1, mem), -1, "pages on a node it lacks");
    hwloc_bitmap_free(mem);
    hwloc_topology_destroy(t);
}

/* ---- this machine ---- */

static evb_bus *bus;

static void setup(void)
{
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), NULL), 0);
}

static void teardown(void)
{
    evb_bus_close(bus);
    t_bus_cleanup();
}

static int nodes_here(void)
{
    hwloc_topology_t t = NULL;
    cr_assert_eq(evb_place_topology(&t), 0, "%s", evb_last_error());
    return evb_place_node_count(t);
}

Test(placement_here, absent_node_is_einval_naming_nodes, .init = setup, .fini = teardown)
{
    int n = nodes_here();
    evb_topic_config tc = {.ring_bytes = 1 << 16, .numa_node = EVB_NUMA_NODE(n + 4)};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), -EINVAL);
    char want[64];
    snprintf(want, sizeof want, "topic t: numa node %d: this machine has node", n + 4);
    cr_assert(strstr(evb_last_error(), want), "%s", evb_last_error());
    tc.numa_node = EVB_NUMA_NODE(EVB_NUMA_NODE_MAX + 1);
    cr_assert_eq(evb_topic_create(bus, "t", &tc), -EINVAL);
    cr_assert(strstr(evb_last_error(), "need 0..1023"), "%s", evb_last_error());
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "t", &ti), -ENOENT);
}

/* Node 0 exists everywhere; on a one-node machine it changes nothing:
 * no binding, the thread's CPUs untouched. */
Test(placement_here, node_zero_works, .init = setup, .fini = teardown)
{
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 16,
                           .numa_node = EVB_NUMA_NODE(0)};
    cr_assert_eq(evb_topic_create(bus, "t", &tc), 0, "%s", evb_last_error());
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "t", &ti), 0);
    cr_assert_eq(EVB_NUMA_NODE_OF(ti.config.numa_node), 0);
    cpu_set_t before, after;
    cr_assert_eq(sched_getaffinity(0, sizeof before, &before), 0);
    cr_assert_eq(evb_pin_near(bus, "t", 1), 0, "%s", evb_last_error());
    cr_assert_eq(sched_getaffinity(0, sizeof after, &after), 0);
    if (nodes_here() == 1)
        cr_assert(CPU_EQUAL(&before, &after), "one node: the thread's CPUs are unchanged");
    else
        cr_assert(CPU_ISSET(0, &after) || CPU_COUNT(&after) > 0);
    cr_assert_eq(evb_pin_near(bus, "t", 2), -EINVAL, "no partition 2");
    int cpus[CPU_SETSIZE];
    int n = evb_cpus_near(bus, "t", 0, cpus, CPU_SETSIZE);
    cr_assert_gt(n, 0, "%s", evb_last_error());
    for (int i = 0; i < n; i++)
        cr_assert(CPU_ISSET(cpus[i], &before), "cpu %d is one this thread may use", cpus[i]);
    for (int i = 1; i < n; i++)
        cr_assert_neq(cpus[i], cpus[0]);
    struct evb_partition_memory pm;
    cr_assert_eq(evb_partition_memory(bus, "t", 1, &pm), 0, "%s", evb_last_error());
    cr_assert_eq(pm.node, 0, "pages on node 0");
    cr_assert_geq(pm.bytes, 1 << 16);
    if (nodes_here() == 1)
        cr_assert_eq(pm.bound_node, -1, "one node: no binding was made");
}

/* The policy of the ring file's pages and where they are, asked of the
 * kernel through a mapping of our own. */
static void ring_policy(const char *topic, uint32_t part, int *mode, unsigned long *mask,
                        int *pages_not_on, int node)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%u.ring", t_bus_dir(), topic, part);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "%s", path);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert_neq(m, MAP_FAILED);
    *mask = 0;
    long rc = syscall(SYS_get_mempolicy, mode, mask, 8 * sizeof *mask, m + st.st_size / 2,
                      MPOL_F_ADDR);
    cr_assert_eq(rc, 0, "get_mempolicy: %s", strerror(errno));
    long pg = sysconf(_SC_PAGESIZE);
    size_t n = (size_t)st.st_size / (size_t)pg;
    void **pages = calloc(n, sizeof *pages);
    int *status = calloc(n, sizeof *status);
    for (size_t i = 0; i < n; i++) {
        pages[i] = m + i * (size_t)pg;
        (void)*(volatile uint8_t *)pages[i];
    }
    rc = syscall(SYS_move_pages, 0, n, pages, NULL, status, 0);
    cr_assert_eq(rc, 0, "move_pages: %s", strerror(errno));
    *pages_not_on = 0;
    for (size_t i = 0; i < n; i++)
        *pages_not_on += status[i] != node;
    free(pages);
    free(status);
    munmap(m, (size_t)st.st_size);
    close(fd);
}

/* The binding itself, made even on one node (the test switch), on the
 * machine's last node: the kernel reports MPOL_BIND to exactly that node
 * for another mapping of the file, and every page there. A topic without
 * a node is left to the default policy. */
Test(placement_here, ring_memory_is_bound_to_the_node, .init = setup, .fini = teardown)
{
    hwloc_topology_t t = NULL;
    cr_assert_eq(evb_place_topology(&t), 0);
    hwloc_obj_t last = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE,
                                             (unsigned)evb_place_node_count(t) - 1);
    int node = (int)last->os_index;
    evb_place_bind_one_node = 1;
    evb_topic_config tc = {.partitions = 2, .ring_bytes = 1 << 20,
                           .numa_node = EVB_NUMA_NODE(node)};
    int rc = evb_topic_create(bus, "bound", &tc);
    evb_place_bind_one_node = 0;
    if (rc == -EPERM || rc == -ENOSYS)
        cr_skip_test("mbind refused here (%s)", evb_last_error());
    cr_assert_eq(rc, 0, "%s", evb_last_error());
    int mode, off;
    unsigned long mask;
    for (uint32_t p = 0; p < 2; p++) {
        ring_policy("bound", p, &mode, &mask, &off, node);
        cr_assert_eq(mode, MPOL_BIND, "partition %u: policy %d", p, mode);
        cr_assert_eq(mask, 1ul << node, "partition %u: nodemask 0x%lx", p, mask);
        cr_assert_eq(off, 0, "partition %u: %d pages off node %d", p, off, node);
    }
    struct evb_partition_memory pm;
    cr_assert_eq(evb_partition_memory(bus, "bound", 1, &pm), 0, "%s", evb_last_error());
    cr_assert_eq(pm.bound_node, node);
    cr_assert_eq(pm.node, node);

    tc.numa_node = 0;
    cr_assert_eq(evb_topic_create(bus, "free", &tc), 0, "%s", evb_last_error());
    ring_policy("free", 0, &mode, &mask, &off, -1);
    cr_assert_eq(mode, MPOL_DEFAULT, "no node: no policy (%d)", mode);
    cr_assert_eq(evb_partition_memory(bus, "free", 0, &pm), 0);
    cr_assert_eq(pm.bound_node, -1);
}

/* ---- huge pages ---- */

/* Asked for, not strictly: never an error; what came of it is reported,
 * and strict creation agrees with the report. */
Test(placement_here, huge_pages_fall_back_cleanly, .init = setup, .fini = teardown)
{
    evb_topic_config tc = {.ring_bytes = 4 << 20, .huge_pages = EVB_HUGE_PAGES_TRY};
    cr_assert_eq(evb_topic_create(bus, "try", &tc), 0, "%s", evb_last_error());
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "try", &ti), 0);
    cr_assert_eq(ti.config.huge_pages, EVB_HUGE_PAGES_TRY);
    struct evb_partition_memory pm;
    cr_assert_eq(evb_partition_memory(bus, "try", 0, &pm), 0, "%s", evb_last_error());
    tc.huge_pages = EVB_HUGE_PAGES_STRICT;
    int rc = evb_topic_create(bus, "strict", &tc);
    if (pm.huge_bytes) {
        cr_assert_eq(rc, 0, "%s", evb_last_error());
    } else {
        cr_assert_eq(rc, -EOPNOTSUPP, "no huge page here, yet strict gave %d", rc);
        cr_assert(strstr(evb_last_error(), "huge pages"), "%s", evb_last_error());
        cr_assert_eq(evb_topic_info(bus, "strict", &ti), -ENOENT, "nothing left behind");
    }
    /* A producer and a consumer work on it as on any ring. */
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "try", NULL), 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = "x", .value_len = 1,
                                           .partition = EVB_PARTITION_ANY}), 0);
    evb_producer_close(p);
}

/* In a mount namespace of its own, a tmpfs mounted huge=advise: a strict
 * topic gets its rings in huge pages. */
static int huge_child(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/evb-huge-XXXXXX";
    if (!mkdtemp(dir))
        return 10;
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("evb-huge", dir, "tmpfs", 0, "huge=advise,size=64m")) {
        rmdir(dir);
        return 77;
    }
    char path[64];
    snprintf(path, sizeof path, "%s/bus", dir);
    evb_bus *b;
    int rc = 11;
    if (evb_bus_open(&b, path, NULL))
        goto out;
    evb_topic_config tc = {.ring_bytes = 8 << 20, .huge_pages = EVB_HUGE_PAGES_STRICT};
    struct evb_partition_memory pm;
    /* A ring no huge page fits, where huge pages are allowed: strict is
     * refused for its size, not sent to mount options it has (a cold
     * attack was told to mount huge=advise, which it had). */
    evb_topic_config small = {.ring_bytes = 64 << 10, .huge_pages = EVB_HUGE_PAGES_STRICT};
    if (evb_topic_create(b, "small", &small) != -EOPNOTSUPP ||
        !strstr(evb_last_error(), "none fits a ring")) {
        fprintf(stderr, "small strict: %s\n", evb_last_error());
        rc = 14;
    } else if (evb_topic_create(b, "t", &tc)) {
        fprintf(stderr, "strict: %s\n", evb_last_error());
        rc = 12;
    } else if (evb_partition_memory(b, "t", 0, &pm) || pm.huge_bytes < (4u << 20)) {
        fprintf(stderr, "huge bytes %llu of %llu\n", (unsigned long long)pm.huge_bytes,
                (unsigned long long)pm.bytes);
        rc = 13;
    } else {
        rc = 0;
    }
    evb_bus_close(b);
out:
    umount2(dir, MNT_DETACH);
    rmdir(dir);
    return rc;
}

Test(placement_here, huge_pages_on_a_tmpfs_that_allows_them)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
    char line[128] = "";
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
    }
    if (!f || strstr(line, "[deny]"))
        cr_skip_test("no shmem transparent huge pages in this kernel");
    pid_t pid = t_spawn(huge_child, NULL);
    int st = t_wait_exit(pid, 20000);
    if (st == 77)
        cr_skip_test("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
    cr_assert_eq(st, 0, "child exit %d", st);
}

/* ---- rebuild after a reboot ---- */

static void conf_replace(const char *path, const char *from, const char *to)
{
    char text[2048] = {0}, out[2300];
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    char *at = strstr(text, from);
    cr_assert_not_null(at, "%s holds no '%s': %s", path, from, text);
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    (void)n;
    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_geq(fputs(out, f), 0);
    cr_assert_eq(fclose(f), 0);
}

/* A durable topic whose node this machine lacks, and whose strict huge
 * pages it cannot give, comes back from disk all the same: a rebuild
 * places what it can and never loses the log for it. */
Test(placement_here, rebuild_places_what_it_can, .fini = teardown)
{
    evb_bus_options o = {.data_dir = t_data_dir()};
    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0);
    evb_topic_config tc = {.ring_bytes = 1 << 16, .durability = EVB_DURABILITY_SYNC,
                           .numa_node = EVB_NUMA_NODE(0)};
    cr_assert_eq(evb_topic_create(bus, "d", &tc), 0, "%s", evb_last_error());
    evb_producer *p;
    cr_assert_eq(evb_producer_open(&p, bus, "d", NULL), 0);
    cr_assert_eq(evb_publish(p, &(evb_msg){.value = "kept", .value_len = 4,
                                           .partition = EVB_PARTITION_ANY}), 0);
    evb_producer_close(p);
    evb_bus_close(bus);
    bus = NULL;

    char conf[600];
    snprintf(conf, sizeof conf, "%s/d/topic.conf", t_data_dir());
    conf_replace(conf, "numa_node 0\n", "numa_node 1000\nhuge_pages 2\n");
    t_rmtree(t_bus_dir()); /* the reboot */

    cr_assert_eq(evb_bus_open(&bus, t_bus_dir(), &o), 0);
    cr_assert_eq(evb_producer_open(&p, bus, "d", NULL), 0, "rebuilt: %s", evb_last_error());
    evb_producer_close(p);
    struct evb_partition_stat st;
    cr_assert_eq(evb_partition_stat(bus, "d", 0, &st), 0);
    cr_assert_eq(st.tail_offset, 1, "the event is still there");
    struct evb_topic_info ti;
    cr_assert_eq(evb_topic_info(bus, "d", &ti), 0, "%s", evb_last_error());
    cr_assert_eq(EVB_NUMA_NODE_OF(ti.config.numa_node), 1000, "the wish is kept");
    struct evb_partition_memory pm;
    cr_assert_eq(evb_partition_memory(bus, "d", 0, &pm), 0);
    cr_assert_eq(pm.bound_node, -1, "not bound to a node that is not here");
    /* Its pins and CPUs: as for a topic without a node. */
    cr_assert_eq(evb_pin_near(bus, "d", 0), 0, "%s", evb_last_error());
    int cpus[8];
    cr_assert_gt(evb_cpus_near(bus, "d", 0, cpus, 8), 0, "%s", evb_last_error());
}
