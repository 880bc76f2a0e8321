#include "decode.hpp"

#include <string_view>
#include <type_traits>
#include <variant>

#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"
#include "hex.hpp"
#include "json.hpp"

namespace hag::mhdump {
namespace {

std::string quote(std::string_view s) {
    return json_quote(s);
}

std::string text(const mh::Bytes& b) {
    return quote(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}
std::string hex(const mh::Bytes& b) {
    return quote(to_hex(b));
}
std::string boolean(bool b) {
    return b ? "true" : "false";
}
std::string num(std::uint64_t v) {
    return std::to_string(v);
}
std::string prefix(std::uint8_t len, const mh::Ipv6& a) {
    return quote(net::format(a) + "/" + std::to_string(len));
}

// `"key": value` pairs specific to each option type (docs/tools-mhdump.md).
std::string option_fields(const mh::Option& o) {
    return std::visit(
        [](const auto& v) -> std::string {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, mh::MobileNodeIdentifier> ||
                          std::is_same_v<T, mh::MagIdentifier>) {
                return "\"subtype\": " + num(v.subtype) + ", \"identifier\": " + text(v.identifier);
            } else if constexpr (std::is_same_v<T, mh::HomeNetworkPrefix>) {
                return "\"prefix\": " + prefix(v.prefix_length, v.prefix);
            } else if constexpr (std::is_same_v<T, mh::HandoffIndicatorOption>) {
                return "\"handoff_indicator\": " + num(v.value);
            } else if constexpr (std::is_same_v<T, mh::AccessTechnologyTypeOption>) {
                return "\"access_technology_type\": " + num(v.value);
            } else if constexpr (std::is_same_v<T, mh::Timestamp>) {
                return "\"timestamp\": " + num(v.value);
            } else if constexpr (std::is_same_v<T, mh::GreKey>) {
                return "\"gre_key\": " + num(v.key);
            } else if constexpr (std::is_same_v<T, mh::BindingIdentifier>) {
                std::string s = "\"binding_id\": " + num(v.bid) + ", \"status\": " + num(v.status) +
                                ", \"h\": " + boolean(v.simultaneous_home_foreign) +
                                ", \"priority\": " + num(v.priority);
                if (v.coa6)
                    s += ", \"coa\": " + quote(net::format(*v.coa6));
                if (v.coa4)
                    s += ", \"coa\": " + quote(net::format(*v.coa4));
                return s;
            } else if constexpr (std::is_same_v<T, mh::MagMultipathBinding>) {
                return "\"if_att\": " + num(v.if_att) + ", \"if_label\": " + num(v.if_label) +
                       ", \"binding_id\": " + num(v.binding_id) + ", \"b\": " + boolean(v.bulk) +
                       ", \"o\": " + boolean(v.overwrite);
            } else if constexpr (std::is_same_v<T, mh::VendorSpecific>) {
                return "\"vendor_id\": " + num(v.vendor_id) + ", \"subtype\": " + num(v.subtype) +
                       ", \"data\": " + hex(v.data);
            } else if constexpr (std::is_same_v<T, mh::AlternateCareOfAddress> ||
                                 std::is_same_v<T, mh::LinkLocalAddress>) {
                return "\"address\": " + quote(net::format(v.address));
            } else if constexpr (std::is_same_v<T, mh::RawOption>) {
                return "\"data\": " + hex(v.data);
            } else {
                return {};
            }
        },
        o);
}

std::string option_json(const mh::Option& o) {
    std::string s = "{\"type\": " + num(mh::option_type(o));
    if (auto f = option_fields(o); !f.empty()) {
        s += ", " + f;
    }
    return s + ", \"description\": " + quote(mh::describe(o)) + "}";
}

// Fields of the message body other than options.
std::string body_fields(const mh::Message& m) {
    return std::visit(
        [](const auto& v) -> std::string {
            using T = std::decay_t<decltype(v)>;
            std::vector<const char*> flags;
            std::string s;
            if constexpr (std::is_same_v<T, mh::BindingUpdate>) {
                const std::pair<bool, const char*> all[] = {
                    {v.ack, "A"},      {v.home_registration, "H"}, {v.link_local_compat, "L"},
                    {v.key_mgmt, "K"}, {v.map_registration, "M"},  {v.mobile_router, "R"},
                    {v.proxy, "P"},    {v.force_udp, "F"},         {v.tlv_header, "T"},
                    {v.bulk, "B"}};
                for (auto [on, name] : all)
                    if (on)
                        flags.push_back(name);
                s = "\"sequence\": " + num(v.sequence) + ", \"lifetime\": " + num(v.lifetime);
            } else if constexpr (std::is_same_v<T, mh::BindingAcknowledgement>) {
                const std::pair<bool, const char*> all[] = {{v.key_mgmt, "K"},
                                                            {v.mobile_router, "R"},
                                                            {v.proxy, "P"},
                                                            {v.tlv_header, "T"},
                                                            {v.bulk, "B"}};
                for (auto [on, name] : all)
                    if (on)
                        flags.push_back(name);
                s = "\"status\": " + num(v.status) + ", \"sequence\": " + num(v.sequence) +
                    ", \"lifetime\": " + num(v.lifetime);
            } else if constexpr (std::is_same_v<T, mh::BindingError>) {
                s = "\"status\": " + num(v.status) +
                    ", \"home_address\": " + quote(net::format(v.home_address));
            } else if constexpr (std::is_same_v<T, mh::Heartbeat>) {
                if (v.unsolicited)
                    flags.push_back("U");
                if (v.response)
                    flags.push_back("R");
                s = "\"sequence\": " + num(v.sequence);
            } else if constexpr (std::is_same_v<T, mh::BindingRevocation>) {
                if (v.proxy)
                    flags.push_back("P");
                if (v.global)
                    flags.push_back("G");
                if (v.vendor)
                    flags.push_back("V");
                s = "\"br_type\": " + num(v.br_type) +
                    ", \"trigger_or_status\": " + num(v.trigger_or_status) +
                    ", \"sequence\": " + num(v.sequence);
            }
            s += ", \"flags\": [";
            for (std::size_t i = 0; i < flags.size(); ++i) {
                s += (i ? ", " : "") + quote(flags[i]);
            }
            return s + "]";
        },
        m.body);
}

std::string error_text(const mh::DecodeError& e) {
    return e.str();
}

}  // namespace

Result<std::string, std::string> describe(std::span<const std::uint8_t> bytes) {
    auto m = mh::decode(bytes);
    if (!m) {
        return unexpected(error_text(m.error()));
    }
    return mh::describe(*m);
}

Result<std::string, std::string> to_json(std::span<const std::uint8_t> bytes) {
    auto m = mh::decode(bytes);
    if (!m) {
        return unexpected(error_text(m.error()));
    }
    // decode() succeeded, so the 6-octet MH header is there.
    std::string s = "{\"mh_type\": " + num(static_cast<unsigned>(m->mh_type())) +
                    ", \"type\": " + quote(mh::mh_type_name(m->mh_type())) +
                    ", \"payload_proto\": " + num(bytes[0]) + ", \"header_len\": " + num(bytes[1]) +
                    ", \"checksum\": " + num(static_cast<unsigned>(bytes[4] << 8 | bytes[5])) +
                    ", " + body_fields(*m) + ", \"options\": [";
    const auto& opts = m->options();
    for (std::size_t i = 0; i < opts.size(); ++i) {
        s += (i ? ", " : "") + option_json(opts[i]);
    }
    return s + "]}";
}

}  // namespace hag::mhdump
