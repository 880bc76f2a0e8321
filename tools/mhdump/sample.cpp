#include "sample.hpp"

#include "hag/mh/mh.hpp"

namespace hag::mhdump {
namespace {

constexpr std::uint32_t kDocumentationEnterprise = 32473;  // RFC 5612
constexpr std::uint8_t kLinkMetricsSubtype = 1;
// 2025-11-25T00:00:00Z in NTP format (seconds since 1900 in the high 32 bits).
constexpr std::uint64_t kTimestamp = (1764028800ull + 2208988800ull) << 32;

mh::Bytes text(std::string_view s) {
    return {s.begin(), s.end()};
}

net::Ipv6Address addr(std::string_view s) {
    return *net::parse_ipv6_address(s);
}

struct Access {
    std::string name;
    net::Ipv6Address coa;
    mh::AccessTechnology att;
    std::uint8_t label;
    std::uint16_t bid;
    std::uint32_t downlink_key;  // allocated by the MAG (RFC 5845)
    std::uint32_t uplink_key;    // allocated by the LMA
    std::uint32_t down_kbps, up_kbps;
    std::uint16_t rtt_ms;
};

// Link metrics carried in the vendor-specific option: downlink and uplink capacity in kbit/s
// (4 octets each), round-trip time in ms (2 octets), big-endian.
mh::Bytes link_metrics(const Access& a) {
    mh::Bytes d;
    for (std::uint32_t v : {a.down_kbps, a.up_kbps}) {
        for (int s = 24; s >= 0; s -= 8)
            d.push_back(static_cast<std::uint8_t>(v >> s));
    }
    d.push_back(static_cast<std::uint8_t>(a.rtt_ms >> 8));
    d.push_back(static_cast<std::uint8_t>(a.rtt_ms));
    return d;
}

mh::Options common_options(const Access& a) {
    const auto hnp = *net::parse_ipv6_prefix("2001:db8:1::/64");
    mh::BindingIdentifier bid;
    bid.bid = a.bid;
    bid.priority = static_cast<std::uint8_t>(a.bid);
    return {
        mh::MobileNodeIdentifier{mh::kMnIdSubtypeNai, text("cpe-0001@hag.example")},
        mh::HomeNetworkPrefix{hnp.length, hnp.address},
        mh::HandoffIndicatorOption{static_cast<std::uint8_t>(mh::HandoffIndicator::kNewAttach)},
        mh::AccessTechnologyTypeOption{static_cast<std::uint8_t>(a.att)},
        mh::Timestamp{kTimestamp},
        bid,
        mh::MagMultipathBinding{static_cast<std::uint8_t>(a.att), a.label,
                                static_cast<std::uint8_t>(a.bid), false, false},
    };
}

SampleMessage finish(std::string label, const net::Ipv6Address& src, const net::Ipv6Address& dst,
                     const mh::Message& m) {
    SampleMessage s{std::move(label), src, dst, mh::encode(m)};
    mh::set_checksum(s.mh, src, dst);
    return s;
}

}  // namespace

std::vector<SampleMessage> sample_exchange() {
    const auto lma = addr("2001:db8:f::1");
    const std::vector<Access> accesses{
        {"DSL", addr("2001:db8:a::1"), mh::AccessTechnology::kIeee8023, 1, 1, 0x1001, 0x2001, 16000,
         2000, 25},
        {"LTE", addr("2001:db8:b::1"), mh::AccessTechnology::kEutran, 2, 2, 0x1002, 0x2002, 50000,
         20000, 45},
    };
    std::vector<SampleMessage> out;
    std::uint16_t seq = 1;
    for (const Access& a : accesses) {
        mh::BindingUpdate bu;
        bu.sequence = seq;
        bu.ack = true;
        bu.proxy = true;
        bu.tlv_header = true;
        bu.lifetime = 900;  // 3600 s
        bu.options = common_options(a);
        bu.options.emplace_back(mh::GreKey{a.downlink_key});
        bu.options.emplace_back(
            mh::MagIdentifier{mh::kMnIdSubtypeNai, text("mag-0001@hag.example")});
        bu.options.emplace_back(
            mh::VendorSpecific{kDocumentationEnterprise, kLinkMetricsSubtype, link_metrics(a)});
        out.push_back(finish("PBU over " + a.name, a.coa, lma, mh::Message{bu}));

        mh::BindingAcknowledgement ba;
        ba.status = static_cast<std::uint8_t>(mh::BaStatus::kAccepted);
        ba.proxy = true;
        ba.tlv_header = true;
        ba.sequence = seq;
        ba.lifetime = 900;
        ba.options = common_options(a);
        ba.options.emplace_back(mh::GreKey{a.uplink_key});
        out.push_back(finish("PBA over " + a.name, lma, a.coa, mh::Message{ba}));
        ++seq;
    }
    return out;
}

}  // namespace hag::mhdump
