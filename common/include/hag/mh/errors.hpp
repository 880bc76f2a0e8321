// Why a Mobility Header could not be decoded, and what RFC 6275 §9.2 has the receiver do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hag::mh {

enum class DecodeErrorCode : std::uint8_t {
    kTooShort,                // fewer than 6 octets: not even an MH header
    kBadPayloadProto,         // Payload Proto != 59
    kLengthPastEnd,           // Header Len claims more octets than the packet has
    kTrailingData,            // the packet has octets after the length Header Len gives
    kTooShortForType,         // Header Len below the minimum of the MH type
    kUnknownType,             // MH type hag does not process
    kOptionTruncated,         // an option's type/length octets run past the end
    kOptionLengthPastEnd,     // an option's data runs past the end of the message
    kOptionBadLength,         // an option's length is not one its type allows
    kZeroLengthIdentifier,    // MN-ID or MAG identifier of length zero
    kBadPrefixLength,         // a prefix length longer than the address
    kMultipathBAndO,          // MAG Multipath-Binding with both B and O set
    kFlowSubOptionMalformed,  // a Flow Identification sub-option runs past its option
};
std::string_view to_string(DecodeErrorCode c) noexcept;

struct DecodeError {
    DecodeErrorCode code{};
    std::size_t offset = 0;  // byte offset of the problem in the MH
    std::string detail;      // human sentence for logs
    [[nodiscard]] std::string str() const;
};

// What the receiver does with a message that failed to decode (RFC 6275 §9.2).
enum class ReceiverAction : std::uint8_t {
    kDiscard,                  // silently discard
    kParameterProblem,         // discard, send ICMPv6 Parameter Problem code 0 with `pointer`
    kBindingErrorUnknownType,  // discard, send Binding Error status 2
};
struct Reaction {
    ReceiverAction action = ReceiverAction::kDiscard;
    std::uint32_t pointer = 0;  // for kParameterProblem: offset of the offending field in the MH
};
Reaction reaction_to(const DecodeError& e) noexcept;

}  // namespace hag::mh
