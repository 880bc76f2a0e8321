#include "bench/misses.hpp"

#include <sys/mman.h>
#include <x86intrin.h>

#include <cstring>
#include <random>

namespace hag::dp::bench {

namespace {

constexpr unsigned kBurst = 32;  // the stages' burst

// Dependent multiply-adds standing for a stage's work between its prefetches and its reads.
std::uint64_t work(std::uint64_t x, unsigned n) noexcept {
    for (unsigned i = 0; i < n; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    }
    return x;
}

}  // namespace

Result<std::vector<MissResult>, std::string> measure_misses(std::size_t megabytes,
                                                            std::size_t reads) {
    const std::size_t bytes = megabytes << 20;
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return unexpected(std::string("misses: mmap of ") + std::to_string(megabytes) +
                          " MB: " + std::strerror(errno));
    }
    madvise(m, bytes, MADV_HUGEPAGE);  // as the session table's arrays
    auto* base = static_cast<std::uint8_t*>(m);
    std::memset(base, 1, bytes);
    const std::size_t records = bytes / 128;
    std::mt19937_64 rng(1);
    reads = (reads / kBurst + 2) * kBurst;
    std::vector<std::uint32_t> order(reads + kBurst);
    for (auto& o : order) {
        o = static_cast<std::uint32_t>(rng() % records);
    }
    auto line = [base, &order](std::size_t i) { return base + std::size_t{order[i]} * 128; };
    struct Mode {
        const char* name;
        unsigned lines;  // 64-octet lines read per record
        bool prefetch;   // the burst prefetched before it is read
        bool ahead;      // prefetched one burst earlier instead
        unsigned work;   // multiply-adds per burst between prefetch and read
    };
    static constexpr Mode kModes[] = {
        {"none", 1, false, false, 0},
        {"prefetch", 1, true, false, 0},
        {"prefetch_ahead", 1, true, true, 0},
        {"prefetch_work", 1, true, false, 1000},
        {"prefetch_ahead_work", 1, true, true, 1000},
        {"work_only", 0, false, false, 1000},
        {"two_lines", 2, true, false, 0},
    };
    std::vector<MissResult> out;
    std::uint64_t sink = 0;
    for (const Mode& mode : kModes) {
        const std::uint64_t t0 = __rdtsc();
        for (std::size_t b = 0; b + kBurst <= reads; b += kBurst) {
            if (mode.prefetch) {
                const std::size_t first = mode.ahead ? b + kBurst : b;
                for (unsigned i = 0; i < kBurst; ++i) {
                    _mm_prefetch(reinterpret_cast<const char*>(line(first + i)), _MM_HINT_T0);
                    if (mode.lines == 2) {
                        _mm_prefetch(reinterpret_cast<const char*>(line(first + i) + 64),
                                     _MM_HINT_T0);
                    }
                }
            }
            sink = work(sink, mode.work);
            for (unsigned i = 0; i < kBurst && mode.lines != 0; ++i) {
                sink += *reinterpret_cast<const volatile std::uint8_t*>(line(b + i));
                if (mode.lines == 2) {
                    sink += *reinterpret_cast<const volatile std::uint8_t*>(line(b + i) + 64);
                }
            }
        }
        const std::uint64_t t1 = __rdtsc();
        out.push_back({mode.name, static_cast<double>(t1 - t0) / static_cast<double>(reads)});
    }
    munmap(m, bytes);
    __asm__ volatile("" : : "r"(sink));  // the reads and the work are used
    return out;
}

}  // namespace hag::dp::bench
