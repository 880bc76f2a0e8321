// The value of a binding key in the cluster binding store (docs/scale-out.md):
//
//   value  = magic "HAGB" version:u8 (1) node_len:u8 node[node_len] anchor_len:u8
//            anchor[anchor_len] record
//   record = a PUT record of the embedded store (store_format.hpp): length:u32 crc32c:u32
//            payload, path expiries in wall-clock seconds
//
// `node` serves the binding now (the node that wrote it); `anchor` is the node that first
// created it (whose pools its prefixes came from). Names are 1-64 printable ASCII octets.
// Everything read from etcd is input: decode_value() checks every length and the CRC.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "binding_cache.hpp"
#include "hag/result.hpp"

namespace hag::control::store {

inline constexpr std::size_t kMaxNodeName = 64;

struct ClusterRecord {
    std::string node;    // serving node
    std::string anchor;  // node that created the binding
    Session session;     // path expires_at in wall-clock seconds
};

// True for a usable node name (1-64 printable ASCII octets, no space).
bool valid_node_name(std::string_view name) noexcept;

// Appends the value's header (magic, version, names) to `out`; a PUT record (encode_put)
// follows it.
void encode_value_header(std::string_view node, std::string_view anchor,
                         std::vector<std::uint8_t>& out);
// Appends the value to `out`. `to_wall` converts the session's monotonic expiries.
void encode_value(std::string_view node, std::string_view anchor, const Session& s,
                  std::int64_t to_wall, std::vector<std::uint8_t>& out);
Result<ClusterRecord, std::string> decode_value(std::span<const std::uint8_t> in);

// Keys: <prefix>b/<nai> for bindings, <prefix>n/<node> for a node's restart counter.
std::string binding_key(std::string_view prefix, std::string_view nai);
std::string node_key(std::string_view prefix, std::string_view node);

}  // namespace hag::control::store
