#include "capture.hpp"

#include "hag/net/builders.hpp"
#include "pcap_writer.hpp"

namespace hag::mhdump {

std::vector<std::uint8_t> exchange_pcap(const std::vector<SampleMessage>& messages) {
    constexpr MacAddress kMag{0x02, 0, 0, 0, 0, 0x01};
    constexpr MacAddress kLma{0x02, 0, 0, 0, 0, 0x02};
    constexpr std::uint32_t kStart = 1'700'000'000;  // a fixed time: the file is reproducible
    PcapWriter w;
    std::uint32_t t = kStart;
    for (const auto& m : messages) {
        const auto ip = net::build_ipv6_mh(m.src, m.dst, m.mh);
        const bool to_lma = m.mh.size() > 2 && m.mh[2] == 5;  // a (P)BU goes MAG -> LMA
        const auto frame = ethernet_frame(to_lma ? kLma : kMag, to_lma ? kMag : kLma, 0x86dd, ip);
        w.add(t++, 0, frame);
    }
    return w.bytes();
}

}  // namespace hag::mhdump
