#include "pcap_writer.hpp"

#include <cstdio>
#include <memory>

namespace hag::mhdump {
namespace {

void le32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}
void le16(std::vector<std::uint8_t>& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v));
    out.push_back(static_cast<std::uint8_t>(v >> 8));
}

}  // namespace

void PcapWriter::add(std::uint32_t ts_sec, std::uint32_t ts_usec,
                     std::span<const std::uint8_t> frame) {
    le32(records_, ts_sec);
    le32(records_, ts_usec);
    le32(records_, static_cast<std::uint32_t>(frame.size()));  // captured length
    le32(records_, static_cast<std::uint32_t>(frame.size()));  // original length
    records_.insert(records_.end(), frame.begin(), frame.end());
}

std::vector<std::uint8_t> PcapWriter::bytes() const {
    std::vector<std::uint8_t> out;
    le32(out, 0xa1b2c3d4u);  // magic: microsecond timestamps
    le16(out, 2);            // version 2.4
    le16(out, 4);
    le32(out, 0);      // thiszone
    le32(out, 0);      // sigfigs
    le32(out, 65535);  // snaplen
    le32(out, kLinkTypeEthernet);
    out.insert(out.end(), records_.begin(), records_.end());
    return out;
}

bool PcapWriter::save(const std::string& path) const {
    const auto data = bytes();
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) {
        return false;
    }
    return std::fwrite(data.data(), 1, data.size(), f.get()) == data.size() &&
           std::fflush(f.get()) == 0;
}

std::vector<std::uint8_t> ethernet_frame(const MacAddress& dst, const MacAddress& src,
                                         std::uint16_t ether_type,
                                         std::span<const std::uint8_t> payload) {
    std::vector<std::uint8_t> f(dst.begin(), dst.end());
    f.insert(f.end(), src.begin(), src.end());
    f.push_back(static_cast<std::uint8_t>(ether_type >> 8));
    f.push_back(static_cast<std::uint8_t>(ether_type));
    f.insert(f.end(), payload.begin(), payload.end());
    return f;
}

}  // namespace hag::mhdump
