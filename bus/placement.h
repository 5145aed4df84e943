/*
 * placement.h - where a topic's memory and threads go (DESIGN §7): the
 * NUMA node of its rings, the CPUs near a partition, huge pages. The
 * decisions are functions of an hwloc topology, so tests hand them a
 * synthetic one of several nodes; the rest applies them to this machine,
 * whose topology is loaded once per process and only when a placement is
 * asked for (a topic without a node never loads hwloc).
 */
#ifndef EVB_PLACEMENT_H
#define EVB_PLACEMENT_H

#include <hwloc.h>
#include <sched.h>
#include <stdint.h>

#include "evbus.h"

/* ---- decisions: pure functions of TOPO ---- */

/* The NUMA nodes TOPO has, by OS index (hwloc's nodeset). */
int evb_place_node_count(hwloc_topology_t topo);
/* 0 when TOPO has NUMA node NODE (OS index); else -EINVAL with a message
 * naming the nodes it has ("numa node 3: this machine has nodes 0-1"). */
int evb_place_node_check(hwloc_topology_t topo, int node);
/* The CPUs of node NODE into OUT (a cpuset). 0, or -EINVAL as above. */
int evb_place_node_cpuset(hwloc_topology_t topo, int node, hwloc_cpuset_t out);
/* Which node a partition's threads belong near: TOPIC_NODE (the topic's
 * numa_node, -1: none) when TOPO has it, else the one node holding all of
 * the ring's pages (MEM_NODES, the nodeset they lie on; NULL or empty:
 * unknown), else -1 (no preference). */
int evb_place_partition_node(hwloc_topology_t topo, int topic_node,
                             hwloc_const_nodeset_t mem_nodes);
/* The CPUs (OS indexes) threads near node NODE (-1: anywhere) should use,
 * best first, among ALLOWED (NULL: all), into CPUS (up to CAP): one PU of each core of the node, in
 * topology order, then the cores' other PUs (hyperthread siblings), so
 * that the first two go to different cores when the node has two. A
 * producer takes the first, a consumer the second (evbus bench --pin
 * auto). Returns how many there are (may exceed CAP), or -EINVAL. */
int evb_place_cpus(hwloc_topology_t topo, int node, hwloc_const_cpuset_t allowed, int *cpus,
                   uint32_t cap);

/* ---- this machine ---- */

/* This process's topology, loaded on first use (thread-safe). 0 or the
 * load's -errno, every call after a failure returning it again. */
int evb_place_topology(hwloc_topology_t *out);

/* A ring being created (shm/map.c calls this on the new file's mapping
 * before its pages exist, evb_ring_init.place): bind the mapping to the
 * topic's node so every page is allocated there, and ask for huge pages.
 * ARG is the evb_topic_config. */
int evb_place_ring(void *base, uint64_t bytes, void *arg);
/* The same for a ring rebuilt from disk: what cannot be placed is left
 * to the kernel (always 0). */
int evb_place_ring_lenient(void *base, uint64_t bytes, void *arg);

/* CPUS: the CPUs of node NODE (an OS index) on this machine. Returns 1
 * when the machine has more than one node (CPUS filled), 0 on a one-node
 * machine (nothing to place: CPUS untouched), or -EINVAL naming the nodes
 * it has. */
int evb_place_node_cpus(int node, cpu_set_t *cpus);

#endif /* EVB_PLACEMENT_H */
