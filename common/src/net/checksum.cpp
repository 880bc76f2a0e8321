#include "hag/net/checksum.hpp"

namespace hag::net {

std::uint32_t ones_sum(std::span<const std::uint8_t> data, std::uint32_t initial) noexcept {
    std::uint64_t sum = initial;
    std::size_t i = 0;
    for (; i + 1 < data.size(); i += 2) {
        sum += static_cast<std::uint32_t>(data[i]) << 8 | data[i + 1];
    }
    if (i < data.size()) {
        sum += static_cast<std::uint32_t>(data[i]) << 8;
    }
    while (sum >> 32) {
        sum = (sum & 0xffffffffu) + (sum >> 32);
    }
    return static_cast<std::uint32_t>(sum);
}

std::uint16_t fold_complement(std::uint32_t sum) noexcept {
    while (sum >> 16) {
        sum = (sum & 0xffffu) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum & 0xffffu);
}

std::uint16_t internet_checksum(std::span<const std::uint8_t> data) noexcept {
    return fold_complement(ones_sum(data));
}

std::uint16_t ipv6_upper_layer_checksum(const Ipv6Address& src, const Ipv6Address& dst,
                                        std::uint8_t next_header,
                                        std::span<const std::uint8_t> payload) noexcept {
    std::uint32_t sum = ones_sum(src);
    sum = ones_sum(dst, sum);
    const auto len = static_cast<std::uint32_t>(payload.size());
    const std::array<std::uint8_t, 8> tail{static_cast<std::uint8_t>(len >> 24),
                                           static_cast<std::uint8_t>(len >> 16),
                                           static_cast<std::uint8_t>(len >> 8),
                                           static_cast<std::uint8_t>(len),
                                           0,
                                           0,
                                           0,
                                           next_header};
    sum = ones_sum(tail, sum);
    sum = ones_sum(payload, sum);
    return fold_complement(sum);
}

}  // namespace hag::net
