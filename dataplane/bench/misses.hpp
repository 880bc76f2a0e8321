#pragma once

// hag-dp-bench misses: what random cache-line reads cost this host's core, the way the stages
// issue them (bursts of 32: every line prefetched, then every line read). It tells whether a
// stage's cost at many subscribers is the latency of its misses (then prefetching earlier
// helps) or how many of them the core keeps in flight (then only fewer lines per packet, or a
// table small enough for the caches, help). docs/benchmarks.md, "Misses per packet".

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hag/result.hpp"

namespace hag::dp::bench {

struct MissResult {
    std::string mode;   // see misses.cpp: none, prefetch, prefetch_ahead, two_lines, ...
    double cycles = 0;  // TSC cycles per record read
};

// Reads `reads` random records (64 or 128 octets) of an anonymous region of `megabytes`
// (advised for transparent huge pages) in every mode. Error: no memory.
Result<std::vector<MissResult>, std::string> measure_misses(std::size_t megabytes,
                                                            std::size_t reads);

}  // namespace hag::dp::bench
