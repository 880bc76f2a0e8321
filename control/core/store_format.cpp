#include "store_format.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace hag::control::store {

namespace {

// PUT record extensions (after the paths).
constexpr std::uint8_t kExtensionNat = 1;
constexpr std::size_t kNatEntrySize = 1 + 2 + 16;
constexpr std::uint8_t kExtensionDelegated = 2;
constexpr std::size_t kPrefixEntrySize = 16 + 1;
// Tag 5 (reserved for distributed anchoring, docs/scale-out.md): remote anchors.
constexpr std::uint8_t kExtensionRemoteAnchors = 5;
constexpr std::size_t kMaxRemoteAnchors = 8;
constexpr std::size_t kRemoteAnchorFixedSize = 16 + 1 + 16 + 16 + 4 + 4 + 1;  // + the name

constexpr std::array<std::uint8_t, 8> kLogMagic{'H', 'A', 'G', 'W', 'A', 'L', 0, 1};
constexpr std::array<std::uint8_t, 8> kSnapshotMagic{'H', 'A', 'G', 'S', 'N', 'P', 0, 1};

constexpr std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1u) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        t[i] = c;
    }
    return t;
}
constexpr auto kCrcTable = make_crc_table();

// Little-endian writer.
struct Writer {
    std::vector<std::uint8_t>& out;
    void u8(std::uint8_t v) { out.push_back(v); }
    void u16(std::uint16_t v) { le(v, 2); }
    void u32(std::uint32_t v) { le(v, 4); }
    void u64(std::uint64_t v) { le(v, 8); }
    void le(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) {
            out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
        }
    }
    void bytes(const std::uint8_t* p, std::size_t n) { out.insert(out.end(), p, p + n); }
    void str16(std::string_view s) {
        u16(static_cast<std::uint16_t>(s.size()));
        bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    }
};

// Bounds-checked little-endian reader: every read checks what is left; a failed read sets
// `bad` and returns zeros, so a decoder checks once at the end of a group of reads.
struct Reader {
    std::span<const std::uint8_t> in;
    std::size_t pos = 0;
    bool bad = false;
    bool need(std::size_t n) {
        if (bad || in.size() - pos < n) {
            bad = true;
            return false;
        }
        return true;
    }
    std::uint64_t le(int n) {
        if (!need(static_cast<std::size_t>(n))) {
            return 0;
        }
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i) {
            v |= static_cast<std::uint64_t>(in[pos + static_cast<std::size_t>(i)]) << (8 * i);
        }
        pos += static_cast<std::size_t>(n);
        return v;
    }
    std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
    std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
    std::uint64_t u64() { return le(8); }
    void bytes(std::uint8_t* dst, std::size_t n) {
        if (need(n)) {
            std::memcpy(dst, in.data() + pos, n);
            pos += n;
        }
    }
    std::string str16() {
        const std::uint16_t n = u16();
        if (!need(n)) {
            return {};
        }
        std::string s(reinterpret_cast<const char*>(in.data() + pos), n);
        pos += n;
        return s;
    }
    [[nodiscard]] bool at_end() const { return !bad && pos == in.size(); }
};

void frame(std::vector<std::uint8_t>& out, std::size_t start) {
    // The payload was appended after 8 reserved octets at `start`.
    const std::size_t len = out.size() - start - kRecordHeaderSize;
    const std::uint32_t crc =
        crc32c(std::span<const std::uint8_t>(out.data() + start + kRecordHeaderSize, len));
    for (int i = 0; i < 4; ++i) {
        out[start + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(len >> (8 * i));
        out[start + 4 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (8 * i));
    }
}

std::size_t begin_record(std::vector<std::uint8_t>& out) {
    const std::size_t start = out.size();
    out.resize(start + kRecordHeaderSize);
    return start;
}

}  // namespace

std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t crc) noexcept {
    crc = ~crc;
    for (std::uint8_t b : data) {
        crc = kCrcTable[(crc ^ b) & 0xffu] ^ (crc >> 8);
    }
    return ~crc;
}

void encode_header(const Header& h, std::vector<std::uint8_t>& out) {
    const std::size_t start = out.size();
    const auto& magic = h.kind == FileKind::kSnapshot ? kSnapshotMagic : kLogMagic;
    Writer w{out};
    w.bytes(magic.data(), magic.size());
    w.u16(kVersion);
    w.u16(static_cast<std::uint16_t>(h.kind));
    w.u32(0);
    w.u64(h.generation);
    w.u32(h.restart_counter);
    w.u32(crc32c(std::span<const std::uint8_t>(out.data() + start, kHeaderSize - 4)));
}

void encode_put(const Session& s, std::int64_t to_wall, std::vector<std::uint8_t>& out) {
    const std::size_t start = begin_record(out);
    Writer w{out};
    w.u8(static_cast<std::uint8_t>(RecordType::kPut));
    w.str16(s.nai);
    w.u16(static_cast<std::uint16_t>(s.home_prefixes.size()));
    for (const auto& p : s.home_prefixes) {
        w.bytes(p.addr.data(), p.addr.size());
        w.u8(p.length);
    }
    w.u32(s.uplink_gre_key);
    w.u16(s.last_sequence);
    w.u64(s.last_timestamp);
    w.u16(static_cast<std::uint16_t>(s.paths.size()));
    for (const auto& p : s.paths) {
        w.u16(p.bid);
        w.str16(p.mag_id);
        w.bytes(p.coa.addr.data(), p.coa.addr.size());
        w.bytes(p.local.addr.data(), p.local.addr.size());
        w.u8(p.access_technology);
        w.u8(p.if_label);
        w.u32(p.downlink_gre_key);
        w.u32(p.weight_kbps);
        w.u8(p.live ? 1 : 0);
        w.u16(p.last_sequence);
        w.u64(static_cast<std::uint64_t>(p.expires_at + to_wall));
    }
    // Extensions after the paths: tag (1), length (2), data; each written only when it has
    // something to say, so records of plain sessions are as before. Tag 1: NAT traversal, per
    // path in order: flag (1), observed port (2), the MAG's CoA (16).
    if (std::any_of(s.paths.begin(), s.paths.end(), [](const Path& p) { return p.nat; })) {
        w.u8(kExtensionNat);
        w.u16(static_cast<std::uint16_t>(s.paths.size() * kNatEntrySize));
        for (const auto& p : s.paths) {
            w.u8(p.nat ? 1 : 0);
            w.u16(p.nat_port);
            w.bytes(p.mag_coa.addr.data(), p.mag_coa.addr.size());
        }
    }
    // Tag 2: delegated prefixes (RFC 7148), per prefix: address (16), length (1).
    if (!s.delegated_prefixes.empty()) {
        w.u8(kExtensionDelegated);
        w.u16(static_cast<std::uint16_t>(s.delegated_prefixes.size() * kPrefixEntrySize));
        for (const auto& p : s.delegated_prefixes) {
            w.bytes(p.addr.data(), p.addr.size());
            w.u8(p.length);
        }
    }
    // Tag 5: prefixes anchored at other nodes, per entry: prefix (16), length (1), the anchor's
    // address (16), ours (16), uplink key (4), downlink key (4), node name length (1), name.
    if (!s.remote_anchors.empty()) {
        std::size_t len = 0;
        const std::size_t n = std::min(s.remote_anchors.size(), kMaxRemoteAnchors);
        for (std::size_t i = 0; i < n; ++i) {
            len +=
                kRemoteAnchorFixedSize + std::min<std::size_t>(s.remote_anchors[i].node.size(), 64);
        }
        w.u8(kExtensionRemoteAnchors);
        w.u16(static_cast<std::uint16_t>(len));
        for (std::size_t i = 0; i < n; ++i) {
            const auto& a = s.remote_anchors[i];
            w.bytes(a.prefix.addr.data(), a.prefix.addr.size());
            w.u8(a.prefix.length);
            w.bytes(a.anchor.addr.data(), a.anchor.addr.size());
            w.bytes(a.local.addr.data(), a.local.addr.size());
            w.u32(a.uplink_key);
            w.u32(a.downlink_key);
            const std::size_t nl = std::min<std::size_t>(a.node.size(), 64);
            w.u8(static_cast<std::uint8_t>(nl));
            w.bytes(reinterpret_cast<const std::uint8_t*>(a.node.data()), nl);
        }
    }
    frame(out, start);
}

void encode_delete(std::string_view nai, std::vector<std::uint8_t>& out) {
    const std::size_t start = begin_record(out);
    Writer w{out};
    w.u8(static_cast<std::uint8_t>(RecordType::kDelete));
    w.str16(nai);
    frame(out, start);
}

void encode_end(std::uint64_t count, std::vector<std::uint8_t>& out) {
    const std::size_t start = begin_record(out);
    Writer w{out};
    w.u8(static_cast<std::uint8_t>(RecordType::kEnd));
    w.u64(count);
    frame(out, start);
}

Result<Header, std::string> decode_header(std::span<const std::uint8_t> in) {
    if (in.size() < kHeaderSize) {
        return unexpected(
            fmt::format("header truncated ({} of {} octets)", in.size(), kHeaderSize));
    }
    Header h;
    if (std::equal(kLogMagic.begin(), kLogMagic.end(), in.begin())) {
        h.kind = FileKind::kLog;
    } else if (std::equal(kSnapshotMagic.begin(), kSnapshotMagic.end(), in.begin())) {
        h.kind = FileKind::kSnapshot;
    } else {
        return unexpected(std::string("not a hag store file (bad magic)"));
    }
    Reader r{in.first(kHeaderSize)};
    r.pos = 8;
    const std::uint16_t version = r.u16();
    const std::uint16_t kind = r.u16();
    (void)r.u32();
    h.generation = r.u64();
    h.restart_counter = r.u32();
    const std::uint32_t crc = r.u32();
    if (crc != crc32c(in.first(kHeaderSize - 4))) {
        return unexpected(std::string("header CRC mismatch"));
    }
    if (version != kVersion) {
        return unexpected(
            fmt::format("format version {} (this build reads {})", version, kVersion));
    }
    if (kind != static_cast<std::uint16_t>(h.kind)) {
        return unexpected(fmt::format("header kind {} disagrees with the magic", kind));
    }
    return h;
}

Result<Record, std::string> decode_payload(std::span<const std::uint8_t> payload) {
    Reader r{payload};
    Record rec;
    const std::uint8_t type = r.u8();
    switch (type) {
        case static_cast<std::uint8_t>(RecordType::kPut): {
            rec.type = RecordType::kPut;
            Session& s = rec.session;
            s.nai = r.str16();
            const std::uint16_t nprefixes = r.u16();
            // Each prefix takes 17 octets: a count beyond what is left is refused before any
            // allocation (a hostile count cannot make us reserve memory).
            if (r.bad || static_cast<std::size_t>(nprefixes) * 17 > payload.size() - r.pos) {
                return unexpected(std::string("PUT: prefix count beyond the record"));
            }
            for (std::uint16_t i = 0; i < nprefixes; ++i) {
                Prefix p;
                r.bytes(p.addr.data(), p.addr.size());
                p.length = r.u8();
                if (p.length > 128) {
                    return unexpected(fmt::format("PUT: prefix length {}", p.length));
                }
                s.home_prefixes.push_back(p);
            }
            s.uplink_gre_key = r.u32();
            s.last_sequence = r.u16();
            s.last_timestamp = r.u64();
            const std::uint16_t npaths = r.u16();
            constexpr std::size_t kMinPath = 2 + 2 + 16 + 16 + 1 + 1 + 4 + 4 + 1 + 2 + 8;
            if (r.bad || static_cast<std::size_t>(npaths) * kMinPath > payload.size() - r.pos) {
                return unexpected(std::string("PUT: path count beyond the record"));
            }
            for (std::uint16_t i = 0; i < npaths; ++i) {
                Path p;
                p.bid = r.u16();
                p.mag_id = r.str16();
                r.bytes(p.coa.addr.data(), p.coa.addr.size());
                r.bytes(p.local.addr.data(), p.local.addr.size());
                p.access_technology = r.u8();
                p.if_label = r.u8();
                p.downlink_gre_key = r.u32();
                p.weight_kbps = r.u32();
                const std::uint8_t live = r.u8();
                if (live > 1) {
                    return unexpected(fmt::format("PUT: live flag {}", live));
                }
                p.live = live == 1;
                p.last_sequence = r.u16();
                p.expires_at = static_cast<Seconds>(r.u64());
                if (r.bad) {
                    break;
                }
                s.paths.push_back(std::move(p));
            }
            // Extensions (see encode_put); unknown tags are skipped.
            bool seen_delegated = false;
            while (!r.bad && !r.at_end()) {
                const std::uint8_t tag = r.u8();
                const std::uint16_t len = r.u16();
                if (r.bad || len > payload.size() - r.pos) {
                    return unexpected(std::string("PUT: extension beyond the record"));
                }
                if (tag == kExtensionNat) {
                    if (len != s.paths.size() * kNatEntrySize) {
                        return unexpected(fmt::format(
                            "PUT: NAT extension of {} octets for {} paths", len, s.paths.size()));
                    }
                    for (auto& p : s.paths) {
                        const std::uint8_t nat = r.u8();
                        if (nat > 1) {
                            return unexpected(fmt::format("PUT: NAT flag {}", nat));
                        }
                        p.nat = nat == 1;
                        p.nat_port = r.u16();
                        r.bytes(p.mag_coa.addr.data(), p.mag_coa.addr.size());
                        if (!p.nat) {  // only a NATed path has them (encode_put writes zeros)
                            p.nat_port = 0;
                            p.mag_coa = {};
                        }
                    }
                } else if (tag == kExtensionDelegated) {
                    if (seen_delegated) {
                        return unexpected(std::string("PUT: delegated prefix extension repeated"));
                    }
                    seen_delegated = true;
                    if (len == 0 || len % kPrefixEntrySize != 0 ||
                        len / kPrefixEntrySize > kMaxDelegatedPrefixes) {
                        return unexpected(fmt::format(
                            "PUT: delegated prefix extension of {} octets (1 to {} prefixes of {})",
                            len, kMaxDelegatedPrefixes, kPrefixEntrySize));
                    }
                    for (std::size_t i = 0; i < len / kPrefixEntrySize; ++i) {
                        Prefix p;
                        r.bytes(p.addr.data(), p.addr.size());
                        p.length = r.u8();
                        if (p.length > 128) {
                            return unexpected(
                                fmt::format("PUT: delegated prefix length {}", p.length));
                        }
                        s.delegated_prefixes.push_back(p);
                    }
                } else if (tag == kExtensionRemoteAnchors) {
                    if (!s.remote_anchors.empty()) {
                        return unexpected(std::string("PUT: remote anchor extension repeated"));
                    }
                    const std::size_t end = r.pos + len;
                    while (!r.bad && r.pos < end) {
                        if (s.remote_anchors.size() >= kMaxRemoteAnchors ||
                            end - r.pos < kRemoteAnchorFixedSize) {
                            return unexpected(
                                std::string("PUT: remote anchor extension malformed"));
                        }
                        RemoteAnchor a;
                        r.bytes(a.prefix.addr.data(), a.prefix.addr.size());
                        a.prefix.length = r.u8();
                        r.bytes(a.anchor.addr.data(), a.anchor.addr.size());
                        r.bytes(a.local.addr.data(), a.local.addr.size());
                        a.uplink_key = r.u32();
                        a.downlink_key = r.u32();
                        const std::uint8_t nl = r.u8();
                        if (a.prefix.length > 128 || nl == 0 || nl > 64 || end - r.pos < nl) {
                            return unexpected(std::string("PUT: remote anchor entry malformed"));
                        }
                        a.node.assign(reinterpret_cast<const char*>(payload.data() + r.pos), nl);
                        r.pos += nl;
                        s.remote_anchors.push_back(std::move(a));
                    }
                    if (s.remote_anchors.empty()) {
                        return unexpected(std::string("PUT: empty remote anchor extension"));
                    }
                } else {
                    r.pos += len;
                }
            }
            if (!r.bad && s.nai.empty()) {
                return unexpected(std::string("PUT: empty NAI"));
            }
            if (!r.bad && s.paths.empty()) {
                return unexpected(std::string("PUT: session without paths"));
            }
            break;
        }
        case static_cast<std::uint8_t>(RecordType::kDelete):
            rec.type = RecordType::kDelete;
            rec.nai = r.str16();
            if (!r.bad && rec.nai.empty()) {
                return unexpected(std::string("DELETE: empty NAI"));
            }
            break;
        case static_cast<std::uint8_t>(RecordType::kEnd):
            rec.type = RecordType::kEnd;
            rec.count = r.u64();
            break;
        default:
            return unexpected(fmt::format("unknown record type {}", type));
    }
    if (r.bad) {
        return unexpected(std::string("record body truncated"));
    }
    if (!r.at_end()) {
        return unexpected(fmt::format("{} octet(s) after the record body", payload.size() - r.pos));
    }
    return rec;
}

Result<ParsedFile, std::string> parse_file(std::span<const std::uint8_t> bytes) {
    auto h = decode_header(bytes);
    if (!h) {
        return unexpected(h.error());
    }
    ParsedFile f;
    f.header = *h;
    std::size_t pos = kHeaderSize;
    while (pos < bytes.size()) {
        const std::size_t left = bytes.size() - pos;
        if (left < kRecordHeaderSize) {
            f.tail_error =
                fmt::format("record at offset {} truncated ({} octet(s) of framing)", pos, left);
            break;
        }
        Reader r{bytes.subspan(pos, kRecordHeaderSize)};
        const std::uint32_t len = r.u32();
        const std::uint32_t crc = r.u32();
        if (len == 0 || len > kMaxRecordSize) {
            f.tail_error = fmt::format("record at offset {} has an impossible length {}", pos, len);
            break;
        }
        if (len > left - kRecordHeaderSize) {
            f.tail_error = fmt::format("record at offset {} truncated ({} of {} octets)", pos,
                                       left - kRecordHeaderSize, len);
            break;
        }
        const auto payload = bytes.subspan(pos + kRecordHeaderSize, len);
        if (crc32c(payload) != crc) {
            f.tail_error = fmt::format("record at offset {}: CRC mismatch", pos);
            break;
        }
        auto rec = decode_payload(payload);
        if (!rec) {
            f.tail_error = fmt::format("record at offset {}: {}", pos, rec.error());
            break;
        }
        f.records.push_back(*std::move(rec));
        pos += kRecordHeaderSize + len;
    }
    f.valid_bytes = pos < bytes.size() ? pos : bytes.size();
    return f;
}

Result<ParsedFile, std::string> parse_snapshot(std::span<const std::uint8_t> bytes) {
    auto f = parse_file(bytes);
    if (!f) {
        return unexpected(f.error());
    }
    if (f->header.kind != FileKind::kSnapshot) {
        return unexpected(std::string("not a snapshot (log header)"));
    }
    if (f->tail_error) {
        return unexpected(*f->tail_error);
    }
    if (f->records.empty() || f->records.back().type != RecordType::kEnd) {
        return unexpected(std::string("no END record (snapshot incomplete)"));
    }
    const std::uint64_t want = f->records.back().count;
    f->records.pop_back();
    for (const auto& r : f->records) {
        if (r.type != RecordType::kPut) {
            return unexpected(std::string("snapshot holds a record other than PUT before END"));
        }
    }
    if (want != f->records.size()) {
        return unexpected(
            fmt::format("END counts {} sessions, the snapshot holds {}", want, f->records.size()));
    }
    return f;
}

}  // namespace hag::control::store
