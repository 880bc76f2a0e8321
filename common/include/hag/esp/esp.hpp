// ESP (RFC 4303) in transport mode with AES-GCM (RFC 4106), done in userspace, for protecting
// PMIPv6 signalling between a MAG and the LMA (RFC 5213 §4 asks for IPsec) on hosts whose kernel
// has no ESP. hag owns the packet format; OpenSSL's EVP interface does AES-GCM.
//
//   ESP payload = SPI (4) | sequence number (4) | IV (8) | ciphertext | ICV (16)
//   ciphertext  = AES-GCM(plaintext | padding 1, 2, 3 ... | pad length (1) | next header (1))
//   nonce       = salt (4, the last 4 octets of the keying material) | IV;  AAD = SPI | sequence
//
// The IV is the 64-bit packet counter (RFC 4106 §3.1: unique per key is what it asks). No
// extended sequence numbers. Inbound: anti-replay window of 64 (RFC 4303 §3.4.3), moved only
// after the ICV checked. Every length is checked before it is used; fuzzed in tests/fuzz/esp.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hag/result.hpp"

namespace hag::esp {

inline constexpr std::uint8_t kProtocol = 50;  // IP protocol / next header of ESP
inline constexpr std::size_t kHeaderLen = 8;   // SPI + sequence number
inline constexpr std::size_t kIvLen = 8;
inline constexpr std::size_t kIcvLen = 16;
inline constexpr std::size_t kSaltLen = 4;
// The smallest valid ESP payload: header, IV, pad length + next header, ICV.
inline constexpr std::size_t kMinLen = kHeaderLen + kIvLen + 2 + kIcvLen;

// AES-GCM keying material as RFC 4106 §8.1 has it: key (16 or 32 octets) followed by a 4-octet
// salt; written in configuration as hex (40 or 72 digits, an optional "0x").
struct Key {
    std::vector<std::uint8_t> key;  // 16 or 32 octets
    std::array<std::uint8_t, kSaltLen> salt{};
};
Result<Key, std::string> parse_key(std::string_view hex);

enum class Error {
    kTruncated,          // shorter than an ESP packet can be
    kUnknownSpi,         // no inbound SA with that SPI (from that peer)
    kReplayed,           // sequence number seen already or left of the window
    kAuthFailed,         // ICV mismatch: forged, corrupted, or the wrong key
    kBadPadding,         // pad length beyond the payload or padding octets not 1, 2, 3 ...
    kSequenceExhausted,  // outbound: 2^32 - 1 packets sent, the SA must be replaced
    kCrypto,             // OpenSSL refused (not expected)
};
std::string_view to_string(Error e) noexcept;

// One direction of a security association.
class Sa {
  public:
    Sa(std::uint32_t spi, Key key);
    ~Sa();
    Sa(Sa&&) noexcept;
    Sa& operator=(Sa&&) noexcept;
    Sa(const Sa&) = delete;
    Sa& operator=(const Sa&) = delete;

    [[nodiscard]] std::uint32_t spi() const noexcept { return spi_; }

    // Outbound: the ESP payload carrying `plaintext` (an upper-layer packet with protocol
    // `next_header`), with the next sequence number.
    Result<std::vector<std::uint8_t>, Error> seal(std::uint8_t next_header,
                                                  std::span<const std::uint8_t> plaintext);

    struct Opened {
        std::uint8_t next_header = 0;
        std::uint32_t sequence = 0;
        std::vector<std::uint8_t> payload;
    };
    // Inbound: checks the SPI, the replay window, the ICV and the padding, then moves the
    // window. `esp` is the ESP payload (from the SPI on).
    Result<Opened, Error> open(std::span<const std::uint8_t> esp);

    // Counters of this SA.
    [[nodiscard]] std::uint64_t packets() const noexcept { return packets_; }
    [[nodiscard]] std::uint32_t last_sequence() const noexcept { return seq_; }

  private:
    struct Cipher;
    std::uint32_t spi_;
    Key key_;
    std::unique_ptr<Cipher> cipher_;
    std::uint32_t seq_ = 0;     // outbound: last sent; inbound: highest accepted
    std::uint64_t window_ = 0;  // inbound: bit i = seq_ - i accepted
    std::uint64_t packets_ = 0;
};

// The SPI of an ESP payload (0 when too short): to find the SA before opening.
std::uint32_t spi_of(std::span<const std::uint8_t> esp) noexcept;

}  // namespace hag::esp
