// RFC 6089 flow bindings and RFC 6088 binary traffic selectors.
#include "hag/mh/flow_binding.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "hag/net/address.hpp"
#include "wire.hpp"

namespace hag::mh {

using namespace wire;

std::string_view flow_status_name(std::uint8_t status) noexcept {
    switch (static_cast<FlowStatus>(status)) {
        case FlowStatus::kSuccess:
            return "flow binding successful";
        case FlowStatus::kAdministrativelyProhibited:
            return "administratively prohibited";
        case FlowStatus::kRejectedUnspecified:
            return "flow binding rejected, reason unspecified";
        case FlowStatus::kMalformed:
            return "flow identification mobility option malformed";
        case FlowStatus::kBidNotFound:
            return "BID not found";
        case FlowStatus::kFidNotFound:
            return "FID not found";
        case FlowStatus::kTsFormatNotSupported:
            return "traffic selector format not supported";
    }
    return "unknown";
}

namespace {

FlowError malformed(std::string what) {
    return {FlowStatus::kMalformed, std::move(what)};
}

// The fields of a selector in flag order: width in octets (0 = address: 4 or 16).
enum class Field : std::uint8_t { kAddr, kU32, kU16, kU8 };

struct Cursor {
    std::span<const std::uint8_t> d;
    std::size_t at = 0;
    bool take(std::size_t n) {
        if (d.size() - at < n) {
            return false;
        }
        at += n;
        return true;
    }
};

template <typename T>
Result<std::optional<Range<T>>, FlowError> read_range(Cursor& c, bool has_start, bool has_end,
                                                      std::size_t width, const char* name,
                                                      T (*read)(std::span<const std::uint8_t>,
                                                                std::size_t)) {
    if (has_end && !has_start) {
        return unexpected(
            malformed(fmt::format("traffic selector: end {} without its start", name)));
    }
    if (!has_start) {
        return std::optional<Range<T>>{};
    }
    Range<T> r;
    std::size_t o = c.at;
    if (!c.take(width)) {
        return unexpected(malformed(fmt::format("traffic selector: start {} past its end", name)));
    }
    r.first = read(c.d, o);
    r.last = r.first;
    if (has_end) {
        o = c.at;
        if (!c.take(width)) {
            return unexpected(
                malformed(fmt::format("traffic selector: end {} past its end", name)));
        }
        r.last = read(c.d, o);
        if (r.last < r.first) {
            return unexpected(
                malformed(fmt::format("traffic selector: {} range ends below its start", name)));
        }
    }
    return std::optional<Range<T>>{r};
}

net::Ipv6Address read_v4(std::span<const std::uint8_t> d, std::size_t o) {
    return net::ipv4_mapped(get_array<4>(d, o));
}
net::Ipv6Address read_v6(std::span<const std::uint8_t> d, std::size_t o) {
    return get_array<16>(d, o);
}
std::uint32_t read32(std::span<const std::uint8_t> d, std::size_t o) {
    return get32(d, o);
}
std::uint16_t read16(std::span<const std::uint8_t> d, std::size_t o) {
    return get16(d, o);
}
std::uint8_t read8(std::span<const std::uint8_t> d, std::size_t o) {
    return d[o];
}

}  // namespace

Result<TrafficSelector, FlowError> decode_traffic_selector(std::span<const std::uint8_t> data) {
    if (data.size() < 2) {
        return unexpected(malformed("traffic selector sub-option shorter than 2 octets"));
    }
    const std::uint8_t format = data[0];
    if (format != kTsFormatIpv4 && format != kTsFormatIpv6) {
        return unexpected(FlowError{FlowStatus::kTsFormatNotSupported,
                                    fmt::format("traffic selector format {}", format)});
    }
    TrafficSelector ts;
    ts.ipv6 = format == kTsFormatIpv6;
    Cursor c{data.subspan(2)};
    if (!c.take(4)) {
        return unexpected(malformed("traffic selector without its flags"));
    }
    const std::uint32_t flags = get32(c.d, 0);
    // The reserved bits after the flags are ignored (RFC 6088: sent as 0).
    auto flag = [&](int i) { return ((flags >> (31 - i)) & 1U) != 0; };
    const std::size_t aw = ts.ipv6 ? 16 : 4;
    auto* ra = ts.ipv6 ? &read_v6 : &read_v4;
    int i = 0;
#define HAG_TS_RANGE(member, width, name, reader)                          \
    do {                                                                   \
        auto r = read_range(c, flag(i), flag(i + 1), width, name, reader); \
        if (!r.ok()) {                                                     \
            return unexpected(r.error());                                  \
        }                                                                  \
        ts.member = *r;                                                    \
        i += 2;                                                            \
    } while (false)
    HAG_TS_RANGE(source, aw, "source address", ra);
    HAG_TS_RANGE(destination, aw, "destination address", ra);
    HAG_TS_RANGE(spi, 4, "SPI", &read32);
    if (ts.ipv6) {
        HAG_TS_RANGE(flow_label, 4, "flow label", &read32);
        if (ts.flow_label && ts.flow_label->last > 0xfffff) {
            return unexpected(malformed("traffic selector: flow label above 20 bits"));
        }
    }
    HAG_TS_RANGE(source_port, 2, "source port", &read16);
    HAG_TS_RANGE(destination_port, 2, "destination port", &read16);
    HAG_TS_RANGE(ds, 1, ts.ipv6 ? "traffic class" : "DS", &read8);
    HAG_TS_RANGE(protocol, 1, ts.ipv6 ? "next header" : "protocol", &read8);
#undef HAG_TS_RANGE
    if (c.at != c.d.size()) {
        return unexpected(malformed(fmt::format(
            "traffic selector: {} octets after the fields its flags name", c.d.size() - c.at)));
    }
    return ts;
}

Bytes encode_traffic_selector(const TrafficSelector& ts) {
    Bytes d{ts.ipv6 ? kTsFormatIpv6 : kTsFormatIpv4, 0};
    std::uint32_t flags = 0;
    Bytes body;
    int i = 0;
    auto addr = [&](const std::optional<Range<net::Ipv6Address>>& r) {
        if (r) {
            flags |= 1U << (31 - i);
            if (ts.ipv6) {
                put_bytes(body, r->first);
            } else {
                put_bytes(body, net::mapped_ipv4(r->first));
            }
            if (r->last != r->first) {
                flags |= 1U << (30 - i);
                if (ts.ipv6) {
                    put_bytes(body, r->last);
                } else {
                    put_bytes(body, net::mapped_ipv4(r->last));
                }
            }
        }
        i += 2;
    };
    auto num = [&](const auto& r, auto put) {
        if (r) {
            flags |= 1U << (31 - i);
            put(body, r->first);
            if (r->last != r->first) {
                flags |= 1U << (30 - i);
                put(body, r->last);
            }
        }
        i += 2;
    };
    addr(ts.source);
    addr(ts.destination);
    num(ts.spi, put32);
    if (ts.ipv6) {
        num(ts.flow_label, put32);
    }
    num(ts.source_port, put16);
    num(ts.destination_port, put16);
    num(ts.ds, put8);
    num(ts.protocol, put8);
    put32(d, flags);
    put_bytes(d, body);
    return d;
}

std::string describe(const TrafficSelector& ts) {
    std::string s = ts.ipv6 ? "ipv6" : "ipv4";
    auto addr = [&](const char* n, const std::optional<Range<net::Ipv6Address>>& r) {
        if (!r) {
            return;
        }
        auto f = [&](const net::Ipv6Address& a) {
            return ts.ipv6 ? net::format(a) : net::format(net::mapped_ipv4(a));
        };
        s += r->first == r->last ? fmt::format(" {}={}", n, f(r->first))
                                 : fmt::format(" {}={}-{}", n, f(r->first), f(r->last));
    };
    auto num = [&](const char* n, const auto& r) {
        if (!r) {
            return;
        }
        s += r->first == r->last ? fmt::format(" {}={}", n, +r->first)
                                 : fmt::format(" {}={}-{}", n, +r->first, +r->last);
    };
    num("protocol", ts.protocol);
    addr("src", ts.source);
    addr("dst", ts.destination);
    num("sport", ts.source_port);
    num("dport", ts.destination_port);
    num("spi", ts.spi);
    num("flow_label", ts.flow_label);
    num("ds", ts.ds);
    return s;
}

Result<FlowBinding, FlowError> parse_flow_binding(const FlowIdentification& o) {
    FlowBinding b;
    b.fid = o.fid;
    b.priority = o.priority;
    bool saw_bids = false;
    for (const FlowSubOption& s : o.sub_options) {
        if (s.type == kFlowSubPad1 || s.type == kFlowSubPadN) {
            continue;
        }
        if (s.type == kFlowSubBidReference) {
            if (saw_bids) {
                return unexpected(malformed("two BID Reference sub-options"));
            }
            saw_bids = true;
            if (s.data.empty() || s.data.size() % 2 != 0) {
                return unexpected(malformed("BID Reference of odd or zero length"));
            }
            for (std::size_t i = 0; i + 1 < s.data.size(); i += 2) {
                const auto bid = get16(s.data, i);
                if (std::find(b.bids.begin(), b.bids.end(), bid) != b.bids.end()) {
                    return unexpected(malformed(fmt::format("BID {} referenced twice", bid)));
                }
                b.bids.push_back(bid);
            }
        } else if (s.type == kFlowSubTrafficSelector) {
            if (b.selector) {
                return unexpected(malformed("two Traffic Selector sub-options"));
            }
            auto ts = decode_traffic_selector(s.data);
            if (!ts.ok()) {
                return unexpected(ts.error());
            }
            b.selector = std::move(*ts);
        }
        // Other sub-options (RFC 7109's action and target care-of address) are not used.
    }
    return b;
}

FlowIdentification flow_identification(const FlowBinding& b) {
    FlowIdentification o;
    o.fid = b.fid;
    o.priority = b.priority;
    if (!b.bids.empty()) {
        Bytes d;
        for (auto bid : b.bids) {
            put16(d, bid);
        }
        o.sub_options.push_back({kFlowSubBidReference, std::move(d)});
    }
    if (b.selector) {
        o.sub_options.push_back({kFlowSubTrafficSelector, encode_traffic_selector(*b.selector)});
    }
    return o;
}

FlowIdentification flow_reply(const FlowBinding& b, FlowStatus status) {
    FlowIdentification o;
    o.fid = b.fid;
    o.priority = b.priority;
    o.status = static_cast<std::uint8_t>(status);
    if (status == FlowStatus::kSuccess && !b.bids.empty()) {
        Bytes d;
        for (auto bid : b.bids) {
            put16(d, bid);
        }
        o.sub_options.push_back({kFlowSubBidReference, std::move(d)});
    }
    return o;
}

namespace {

// a + 1 == b, as 128-bit big-endian numbers, computed without overflow handling beyond 2^128.
bool increment(net::Ipv6Address& a) {
    for (int i = 15; i >= 0; --i) {
        if (++a[static_cast<std::size_t>(i)] != 0) {
            return true;
        }
    }
    return false;  // wrapped
}

bool less_equal(const net::Ipv6Address& a, const net::Ipv6Address& b) {
    return a <= b;  // std::array compares lexicographically = numerically big-endian
}

// Trailing zero bits of `a` (128 when zero).
int trailing_zero_bits(const net::Ipv6Address& a) {
    int n = 0;
    for (int i = 15; i >= 0; --i) {
        const auto v = a[static_cast<std::size_t>(i)];
        if (v == 0) {
            n += 8;
            continue;
        }
        for (int b = 0; b < 8 && ((v >> b) & 1) == 0; ++b) {
            ++n;
        }
        return n;
    }
    return n;
}

// The last address of the prefix a/len.
net::Ipv6Address last_of(const net::Ipv6Address& a, int len) {
    net::Ipv6Address r = a;
    for (int bit = len; bit < 128; ++bit) {
        r[static_cast<std::size_t>(bit / 8)] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    }
    return r;
}

}  // namespace

std::vector<net::Ipv6Prefix> range_to_prefixes(const net::Ipv6Address& first,
                                               const net::Ipv6Address& last) {
    std::vector<net::Ipv6Prefix> out;
    if (!less_equal(first, last)) {
        return out;
    }
    net::Ipv6Address cur = first;
    for (int guard = 0; guard < 260; ++guard) {
        // The largest aligned block starting at cur that ends at or before last.
        int len = 128 - trailing_zero_bits(cur);
        if (len < 0) {
            len = 0;
        }
        while (len < 128 && !less_equal(last_of(cur, len), last)) {
            ++len;
        }
        out.push_back({cur, static_cast<std::uint8_t>(len)});
        net::Ipv6Address end = last_of(cur, len);
        if (end == last) {
            break;
        }
        if (!increment(end)) {
            break;
        }
        cur = end;
    }
    return out;
}

std::optional<std::vector<policy::Classifier>> classifiers_of(const TrafficSelector& ts,
                                                              std::string* why) {
    auto fail = [&](const char* w) -> std::optional<std::vector<policy::Classifier>> {
        if (why != nullptr) {
            *why = w;
        }
        return std::nullopt;
    };
    if (ts.flow_label) {
        return fail("flow label selectors are not supported");
    }
    if (ts.spi && ts.spi->first != ts.spi->last) {
        return fail("SPI ranges are not supported (one SPI only)");
    }
    policy::Classifier base;
    if (ts.source) {
        base.remote_prefixes = range_to_prefixes(ts.source->first, ts.source->last);
    }
    if (ts.destination) {
        base.local_prefixes = range_to_prefixes(ts.destination->first, ts.destination->last);
    }
    if (ts.source_port) {
        base.remote_ports.push_back({ts.source_port->first, ts.source_port->last});
    }
    if (ts.destination_port) {
        base.local_ports.push_back({ts.destination_port->first, ts.destination_port->last});
    }
    if (ts.ds) {
        std::set<std::uint8_t> dscp;
        for (unsigned v = ts.ds->first; v <= ts.ds->last; ++v) {
            dscp.insert(static_cast<std::uint8_t>(v >> 2));
        }
        base.dscp.assign(dscp.begin(), dscp.end());
    }
    if (ts.spi) {
        base.spi = ts.spi->first;
    }
    std::vector<policy::Classifier> out;
    if (!ts.protocol) {
        out.push_back(std::move(base));
        return out;
    }
    for (unsigned p = ts.protocol->first; p <= ts.protocol->last; ++p) {
        policy::Classifier c = base;
        c.protocol = static_cast<std::uint8_t>(p);
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace hag::mh
