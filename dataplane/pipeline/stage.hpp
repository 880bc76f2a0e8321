// What every data-plane stage shares: the burst signature, and drop reasons declared once.
//
// A stage is `uint16_t stage(Ctx&, rte_mbuf** pkts, uint16_t n)`: it processes the burst in
// place, frees and counts what it drops, compacts the packets it keeps to the front of `pkts`
// and returns how many it kept. Stages allocate nothing, take no lock and make no virtual call
// per packet. A context (with its counters) belongs to one worker.
//
// Counters are per worker (telemetry/counter.hpp): one writer, read by any thread.
//
// Drop reasons are one X-macro list per stage, X(enumerator, name, sentence); the list
// generates the enum, the counter array and the strings operators see in telemetry.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "telemetry/counter.hpp"

#define HAG_DROP_ENUM(e, name, text) e,
#define HAG_DROP_NAME(e, name, text) std::string_view{name},
#define HAG_DROP_TEXT(e, name, text) std::string_view{text},

// Declares enum class `Enum` with the reasons of `LIST`, plus kCount, and the tables
// `Enum##_names` / `Enum##_texts`, and the counter array type `Enum##Counters`.
#define HAG_DECLARE_DROPS(Enum, LIST)                                                     \
    enum class Enum : std::uint8_t { LIST(HAG_DROP_ENUM) kCount };                        \
    inline constexpr std::array<std::string_view, static_cast<std::size_t>(Enum::kCount)> \
        Enum##_names{LIST(HAG_DROP_NAME)};                                                \
    inline constexpr std::array<std::string_view, static_cast<std::size_t>(Enum::kCount)> \
        Enum##_texts{LIST(HAG_DROP_TEXT)};                                                \
    using Enum##Counters = std::array<::hag::dp::Counter, static_cast<std::size_t>(Enum::kCount)>;

namespace hag::dp {

// Per-stage cost accounting from the TSC: cycles spent and packets seen.
// Written by the owning worker only (see telemetry/counter.hpp).
struct StageCycles {
    Counter cycles;
    Counter packets;  // packets that entered the stage
    Counter bursts;
};

}  // namespace hag::dp
