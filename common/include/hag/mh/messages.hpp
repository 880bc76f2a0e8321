// Mobility Header messages (RFC 6275 §6.1 and extensions). A PBU is a BindingUpdate with the P
// flag (RFC 5213 §8.1), a PBA a BindingAcknowledgement with P (RFC 5213 §8.2).
#pragma once

#include <cstdint>
#include <variant>

#include "hag/mh/constants.hpp"
#include "hag/mh/options.hpp"

namespace hag::mh {

struct BindingUpdate {  // MH type 5, RFC 6275 §6.1.7
    std::uint16_t sequence = 0;
    bool ack = false;                // A
    bool home_registration = false;  // H
    bool link_local_compat = false;  // L
    bool key_mgmt = false;           // K
    bool map_registration = false;   // M (RFC 5380)
    bool mobile_router = false;      // R (RFC 3963)
    bool proxy = false;              // P (RFC 5213)
    bool force_udp = false;          // F (RFC 5555)
    bool tlv_header = false;         // T (RFC 5845)
    bool bulk = false;               // B (RFC 6602)
    std::uint16_t lifetime = 0;      // units of 4 seconds
    Options options;
    bool operator==(const BindingUpdate&) const = default;
};

struct BindingAcknowledgement {  // MH type 6, RFC 6275 §6.1.8
    std::uint8_t status = 0;     // BaStatus
    bool key_mgmt = false;       // K
    bool mobile_router = false;  // R
    bool proxy = false;          // P
    bool tlv_header = false;     // T
    bool bulk = false;           // B
    std::uint16_t sequence = 0;
    std::uint16_t lifetime = 0;  // units of 4 seconds
    Options options;
    bool operator==(const BindingAcknowledgement&) const = default;
};

struct BindingError {  // MH type 7, RFC 6275 §6.1.9
    std::uint8_t status = 0;
    Ipv6 home_address{};
    Options options;
    bool operator==(const BindingError&) const = default;
};

struct Heartbeat {             // MH type 13, RFC 5847 §5.1
    bool unsolicited = false;  // U
    bool response = false;     // R
    std::uint32_t sequence = 0;
    Options options;
    bool operator==(const Heartbeat&) const = default;
};

struct BindingRevocation {                     // MH type 16, RFC 5846 §6.1
    std::uint8_t br_type = kBrTypeIndication;  // 1 indication, 2 acknowledgement
    // Indication: revocation trigger; acknowledgement: status.
    std::uint8_t trigger_or_status = 0;
    std::uint16_t sequence = 0;
    bool proxy = false;   // P
    bool global = false;  // G
    bool vendor = false;  // V (indication only)
    Options options;
    bool operator==(const BindingRevocation&) const = default;
};

struct Message {
    std::variant<BindingUpdate, BindingAcknowledgement, BindingError, Heartbeat, BindingRevocation>
        body;
    [[nodiscard]] MhType mh_type() const noexcept;
    [[nodiscard]] const Options& options() const noexcept;
    bool operator==(const Message&) const = default;
};

}  // namespace hag::mh
