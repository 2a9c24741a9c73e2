// Process statistics the node reports in INFO that Swift's Glibc overlay does not expose directly.
#ifndef CPROCESSSTATS_H
#define CPROCESSSTATS_H
#include <stddef.h>

/// Bytes the allocator has handed out and not yet freed (glibc mallinfo2: in-use arena + mmapped blocks).
size_t cps_heap_allocated_bytes(void);

/// User and system CPU seconds used by this process.
void cps_cpu_seconds(double *user, double *system);

/// CPUs in this process's scheduler affinity mask (what `taskset` or `numactl` allow), or 0 when unknown.
int cps_affinity_cpu_count(void);

#endif
