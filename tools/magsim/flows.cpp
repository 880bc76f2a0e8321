#include "flows.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>

#include "policy/flow_key.hpp"  // dataplane/: the data plane's own key, DPDK-free

namespace hag::magsim {

namespace {

std::optional<unsigned> number(std::string_view s, unsigned max) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v > max) {
        return std::nullopt;
    }
    return v;
}

std::optional<std::uint8_t> protocol(std::string_view s) {
    if (s == "tcp")
        return 6;
    if (s == "udp")
        return 17;
    if (s == "esp")
        return 50;
    if (s == "ah")
        return 51;
    if (s == "sctp")
        return 132;
    if (s == "icmp")
        return 1;
    if (s == "icmpv6")
        return 58;
    if (auto n = number(s, 255))
        return static_cast<std::uint8_t>(*n);
    return std::nullopt;
}

}  // namespace

std::optional<FlowSpec> parse_flow(std::string_view text, std::size_t index, std::string* why) {
    auto fail = [&](std::string w) -> std::optional<FlowSpec> {
        if (why != nullptr) {
            *why = fmt::format("flow '{}': {}", text, w);
        }
        return std::nullopt;
    };
    const auto eq = text.find('=');
    const auto gt = text.find('>');
    if (eq == std::string_view::npos || gt == std::string_view::npos || gt < eq || eq == 0) {
        return fail("expected NAME=PROTO[:PORT[-PORT]]>BID[,BID...] or ...>drop");
    }
    if (index >= 0xffff) {
        return fail("too many flows");
    }
    FlowSpec f;
    f.name = std::string(text.substr(0, eq));
    f.binding.fid = static_cast<std::uint16_t>(index + 1);
    f.binding.priority = static_cast<std::uint16_t>(index + 1);
    std::string_view match = text.substr(eq + 1, gt - eq - 1);
    std::string_view to = text.substr(gt + 1);
    mh::TrafficSelector ts;
    const auto colon = match.find(':');
    const auto proto = protocol(match.substr(0, colon));
    if (!proto) {
        return fail(fmt::format("unknown protocol '{}'", match.substr(0, colon)));
    }
    ts.protocol = mh::Range<std::uint8_t>{*proto, *proto};
    if (colon != std::string_view::npos) {
        std::string_view ports = match.substr(colon + 1);
        const auto dash = ports.find('-');
        const auto first = number(ports.substr(0, dash), 65535);
        const auto last =
            dash == std::string_view::npos ? first : number(ports.substr(dash + 1), 65535);
        if (!first || !last || *last < *first) {
            return fail(fmt::format("bad port range '{}'", ports));
        }
        if (*proto != 6 && *proto != 17 && *proto != 132 && *proto != 136) {
            return fail("ports need tcp, udp or sctp");
        }
        ts.source_port = mh::Range<std::uint16_t>{static_cast<std::uint16_t>(*first),
                                                  static_cast<std::uint16_t>(*last)};
    }
    f.binding.selector = ts;
    if (to != "drop") {
        while (!to.empty()) {
            const auto comma = to.find(',');
            const auto bid = number(to.substr(0, comma), 65535);
            if (!bid || *bid == 0) {
                return fail(fmt::format("bad BID '{}'", to.substr(0, comma)));
            }
            if (std::find(f.binding.bids.begin(), f.binding.bids.end(), *bid) !=
                f.binding.bids.end()) {
                return fail(fmt::format("BID {} listed twice", *bid));
            }
            f.binding.bids.push_back(static_cast<std::uint16_t>(*bid));
            to = comma == std::string_view::npos ? std::string_view{} : to.substr(comma + 1);
        }
        if (f.binding.bids.empty()) {
            return fail("no BID");
        }
    }
    return f;
}

std::optional<std::vector<FlowSpec>> read_flows_file(const std::string& path, std::string* why) {
    std::ifstream in(path);
    if (!in) {
        *why = fmt::format("{}: cannot read", path);
        return std::nullopt;
    }
    std::vector<FlowSpec> out;
    std::string line;
    for (unsigned n = 1; std::getline(in, line) && n <= 100000; ++n) {
        if (auto hash = line.find('#'); hash != std::string::npos) {
            line.resize(hash);
        }
        const auto b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos) {
            continue;
        }
        const auto e = line.find_last_not_of(" \t\r");
        auto f = parse_flow(std::string_view(line).substr(b, e - b + 1), out.size(), why);
        if (!f) {
            *why = fmt::format("{}:{}: {}", path, n, *why);
            return std::nullopt;
        }
        out.push_back(std::move(*f));
    }
    return out;
}

std::vector<mh::FlowBinding> flows_to_signal(const std::vector<FlowSpec>& specs,
                                             const std::function<bool(std::uint16_t)>& registered) {
    std::vector<mh::FlowBinding> out;
    for (const FlowSpec& s : specs) {
        mh::FlowBinding b = s.binding;
        if (!b.bids.empty()) {
            std::erase_if(b.bids, [&](std::uint16_t bid) { return !registered(bid); });
            if (b.bids.empty()) {
                continue;
            }
        }
        out.push_back(std::move(b));
    }
    return out;
}

UplinkFlows::UplinkFlows(const std::vector<FlowSpec>& specs) {
    std::vector<const FlowSpec*> sorted;
    for (const auto& s : specs) {
        sorted.push_back(&s);
    }
    std::stable_sort(sorted.begin(), sorted.end(), [](const FlowSpec* a, const FlowSpec* b) {
        return a->binding.priority < b->binding.priority;
    });
    for (const FlowSpec* s : sorted) {
        if (!s->binding.selector) {
            continue;
        }
        auto cs = mh::classifiers_of(*s->binding.selector);
        if (!cs) {
            continue;
        }
        flows_.push_back({std::move(*cs), s->binding.bids});
    }
}

std::optional<policy::FlowKey> uplink_key(std::span<const std::uint8_t> ip) {
    if (ip.empty()) {
        return std::nullopt;
    }
    const unsigned version = ip[0] >> 4;
    std::uint16_t total = 0;
    std::uint16_t hl = 0;
    if (version == 4) {
        if (ip.size() < 20) {
            return std::nullopt;
        }
        total = static_cast<std::uint16_t>(ip[2] << 8 | ip[3]);
        hl = static_cast<std::uint16_t>((ip[0] & 0x0f) * 4);
        if (hl < 20 || total < hl || total > ip.size()) {
            return std::nullopt;
        }
    } else if (version == 6) {
        if (ip.size() < 40) {
            return std::nullopt;
        }
        const std::size_t t = 40u + (ip[4] << 8 | ip[5]);
        if (t > ip.size() || t > 0xffff) {
            return std::nullopt;
        }
        total = static_cast<std::uint16_t>(t);
        hl = 40;
    } else {
        return std::nullopt;
    }
    dp::PolicyKey k;
    dp::policy_key_from(ip.data(), total, version == 6, hl, false, k);
    policy::FlowKey f;
    std::copy(std::begin(k.local), std::end(k.local), f.local.begin());
    std::copy(std::begin(k.remote), std::end(k.remote), f.remote.begin());
    f.protocol = k.proto;
    auto be16 = [](std::uint16_t v) {
        const auto* b = reinterpret_cast<const std::uint8_t*>(&v);
        return static_cast<std::uint16_t>(b[0] << 8 | b[1]);
    };
    auto be32 = [](std::uint32_t v) {
        const auto* b = reinterpret_cast<const std::uint8_t*>(&v);
        return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 |
               b[3];
    };
    f.local_port = be16(k.local_port);
    f.remote_port = be16(k.remote_port);
    f.dscp = static_cast<std::uint8_t>(be32(k.dscp));
    if (k.proto == dp::kPolicyProtoEsp || k.proto == dp::kPolicyProtoAh) {
        f.spi = be32(k.spi);
    }
    return f;
}

std::optional<UplinkFlows::Choice> UplinkFlows::decide(
    std::span<const std::uint8_t> ip, const std::function<bool(std::uint16_t)>& live) const {
    if (flows_.empty()) {
        return std::nullopt;
    }
    const auto key = uplink_key(ip);
    if (!key) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < flows_.size(); ++i) {
        const Flow& f = flows_[i];
        if (!std::any_of(f.any_of.begin(), f.any_of.end(),
                         [&](const policy::Classifier& c) { return c.matches(*key); })) {
            continue;
        }
        for (const std::uint16_t bid : f.bids) {
            if (live(bid)) {
                return Choice{false, bid, i};
            }
        }
        return Choice{true, 0, i};
    }
    return std::nullopt;
}

}  // namespace hag::magsim
