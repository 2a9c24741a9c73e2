// A CPU cache prefetch hint for Swift, which has no prefetch intrinsic of its own. The keyspace uses it to start
// loading the hash-table slots and entries of a pipelined batch's keys before the batch runs, so their cache
// misses overlap instead of stalling one command at a time (redis 8's prefetchCommands does the same).
#ifndef C_MEMORY_PREFETCH_H
#define C_MEMORY_PREFETCH_H

/// Hints the CPU to load the cache line at `address` for reading. Never faults, even on an unmapped address.
static inline void memory_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
