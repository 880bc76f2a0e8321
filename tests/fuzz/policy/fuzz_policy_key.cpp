// libFuzzer target: the flow policy's classifier key (dataplane/policy/flow_key.hpp) over
// arbitrary IP packets. The first byte chooses the family (bit 0: IPv6) and the direction
// (bit 1: downlink); the rest is the IP packet, its length the packet's total length. Besides
// memory safety (ASan/UBSan on an exact-size copy), checks: the key does not depend on bytes
// past the packet (padding), and only TCP / UDP / SCTP / UDP-Lite keys carry ports.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "policy/flow_key.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1 || size > 65536) {
        return 0;
    }
    const bool v6 = (data[0] & 1) != 0;
    const bool downlink = (data[0] & 2) != 0;
    const std::vector<std::uint8_t> pkt(data + 1, data + size);
    const auto total = static_cast<std::uint16_t>(pkt.size());
    std::uint16_t header_len = 40;
    if (!v6) {
        if (pkt.empty()) {
            return 0;
        }
        header_len = static_cast<std::uint16_t>((pkt[0] & 0x0f) * 4);
        if (header_len < 20 || header_len > total) {
            return 0;  // parse_l3 refuses these before the key is built
        }
    } else if (total < 40) {
        return 0;
    }
    hag::dp::PolicyKey a;
    hag::dp::policy_key_from(pkt.data(), total, v6, header_len, downlink, a);
    std::vector<std::uint8_t> padded = pkt;
    padded.resize(pkt.size() + 64, 0xa5);
    hag::dp::PolicyKey b;
    hag::dp::policy_key_from(padded.data(), total, v6, header_len, downlink, b);
    if (std::memcmp(&a, &b, sizeof a) != 0) {
        std::abort();
    }
    const bool ports = a.proto == 6 || a.proto == 17 || a.proto == 132 || a.proto == 136;
    if (!ports && (a.local_port != 0 || a.remote_port != 0)) {
        std::abort();
    }
    return 0;
}
