#include "cluster_record.hpp"

#include <fmt/format.h>

#include <cstring>

#include "store_format.hpp"

namespace hag::control::store {

namespace {

constexpr std::uint8_t kMagic[4] = {'H', 'A', 'G', 'B'};
constexpr std::uint8_t kValueVersion = 1;

std::uint32_t le32(const std::uint8_t* p) noexcept {
    return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
           (std::uint32_t{p[3]} << 24);
}

}  // namespace

bool valid_node_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > kMaxNodeName) {
        return false;
    }
    for (const char c : name) {
        if (c <= ' ' || c > '~') {
            return false;
        }
    }
    return true;
}

void encode_value_header(std::string_view node, std::string_view anchor,
                         std::vector<std::uint8_t>& out) {
    out.insert(out.end(), std::begin(kMagic), std::end(kMagic));
    out.push_back(kValueVersion);
    for (const auto name : {node, anchor}) {
        const auto n = std::min(name.size(), kMaxNodeName);
        out.push_back(static_cast<std::uint8_t>(n));
        out.insert(out.end(), name.begin(), name.begin() + static_cast<std::ptrdiff_t>(n));
    }
}

void encode_value(std::string_view node, std::string_view anchor, const Session& s,
                  std::int64_t to_wall, std::vector<std::uint8_t>& out) {
    encode_value_header(node, anchor, out);
    encode_put(s, to_wall, out);
}

Result<ClusterRecord, std::string> decode_value(std::span<const std::uint8_t> in) {
    if (in.size() < 5 || std::memcmp(in.data(), kMagic, 4) != 0) {
        return unexpected(std::string("binding value: no HAGB magic"));
    }
    if (in[4] != kValueVersion) {
        return unexpected(fmt::format("binding value: version {} not supported", in[4]));
    }
    std::size_t at = 5;
    ClusterRecord r;
    for (std::string* name : {&r.node, &r.anchor}) {
        if (at >= in.size()) {
            return unexpected(std::string("binding value: truncated node name"));
        }
        const std::size_t n = in[at++];
        if (n > in.size() - at) {
            return unexpected(std::string("binding value: node name beyond the value"));
        }
        name->assign(reinterpret_cast<const char*>(in.data() + at), n);
        at += n;
        if (!valid_node_name(*name)) {
            return unexpected(std::string("binding value: node name not 1-64 printable octets"));
        }
    }
    if (in.size() - at < kRecordHeaderSize) {
        return unexpected(std::string("binding value: truncated record header"));
    }
    const std::uint32_t len = le32(in.data() + at);
    const std::uint32_t crc = le32(in.data() + at + 4);
    at += kRecordHeaderSize;
    if (len != in.size() - at) {
        return unexpected(
            fmt::format("binding value: record of {} octets in {} left", len, in.size() - at));
    }
    const auto payload = in.subspan(at);
    if (crc32c(payload) != crc) {
        return unexpected(std::string("binding value: record CRC mismatch"));
    }
    auto rec = decode_payload(payload);
    if (!rec) {
        return unexpected("binding value: " + rec.error());
    }
    if (rec->type != RecordType::kPut) {
        return unexpected(std::string("binding value: not a PUT record"));
    }
    r.session = std::move(rec->session);
    return r;
}

std::string binding_key(std::string_view prefix, std::string_view nai) {
    std::string k(prefix);
    k += "b/";
    k += nai;
    return k;
}

std::string node_key(std::string_view prefix, std::string_view node) {
    std::string k(prefix);
    k += "n/";
    k += node;
    return k;
}

}  // namespace hag::control::store
