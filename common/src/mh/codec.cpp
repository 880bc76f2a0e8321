// Mobility Header framing: the fixed part of each message, options with alignment and padding,
// and the checks of RFC 6275 §9.2 on receipt.
#include "hag/mh/codec.hpp"

#include <fmt/format.h>

#include "options_internal.hpp"
#include "wire.hpp"

namespace hag::mh {

using namespace wire;

MhType Message::mh_type() const noexcept {
    struct V {
        MhType operator()(const BindingUpdate&) const { return MhType::kBindingUpdate; }
        MhType operator()(const BindingAcknowledgement&) const {
            return MhType::kBindingAcknowledgement;
        }
        MhType operator()(const BindingError&) const { return MhType::kBindingError; }
        MhType operator()(const Heartbeat&) const { return MhType::kHeartbeat; }
        MhType operator()(const BindingRevocation&) const { return MhType::kBindingRevocation; }
    };
    return std::visit(V{}, body);
}

const Options& Message::options() const noexcept {
    return std::visit([](const auto& b) -> const Options& { return b.options; }, body);
}

namespace {

// Octets of each message's fixed part after the 6-octet MH header (RFC 6275 §6.1.7-9,
// RFC 5847 §5.1, RFC 5846 §6.1).
constexpr std::size_t kFixedBu = 6, kFixedBa = 6, kFixedBe = 18, kFixedHb = 6, kFixedBr = 6;

std::size_t fixed_size(MhType t) {
    switch (t) {
        case MhType::kBindingUpdate:
            return kFixedBu;
        case MhType::kBindingAcknowledgement:
            return kFixedBa;
        case MhType::kBindingError:
            return kFixedBe;
        case MhType::kHeartbeat:
            return kFixedHb;
        case MhType::kBindingRevocation:
            return kFixedBr;
        default:
            return 0;
    }
}

void put_fixed(Bytes& b, const BindingUpdate& m) {
    put16(b, m.sequence);
    std::uint16_t f = 0;
    if (m.ack)
        f |= 0x8000;
    if (m.home_registration)
        f |= 0x4000;
    if (m.link_local_compat)
        f |= 0x2000;
    if (m.key_mgmt)
        f |= 0x1000;
    if (m.map_registration)
        f |= 0x0800;
    if (m.mobile_router)
        f |= 0x0400;
    if (m.proxy)
        f |= 0x0200;
    if (m.force_udp)
        f |= 0x0100;
    if (m.tlv_header)
        f |= 0x0080;
    if (m.bulk)
        f |= 0x0040;
    put16(b, f);
    put16(b, m.lifetime);
}
void put_fixed(Bytes& b, const BindingAcknowledgement& m) {
    put8(b, m.status);
    std::uint8_t f = 0;
    if (m.key_mgmt)
        f |= 0x80;
    if (m.mobile_router)
        f |= 0x40;
    if (m.proxy)
        f |= 0x20;
    if (m.tlv_header)
        f |= 0x10;
    if (m.bulk)
        f |= 0x08;
    put8(b, f);
    put16(b, m.sequence);
    put16(b, m.lifetime);
}
void put_fixed(Bytes& b, const BindingError& m) {
    put8(b, m.status);
    put8(b, 0);
    put_bytes(b, m.home_address);
}
void put_fixed(Bytes& b, const Heartbeat& m) {
    put8(b, 0);
    put8(b, static_cast<std::uint8_t>((m.unsolicited ? 0x02 : 0) | (m.response ? 0x01 : 0)));
    put32(b, m.sequence);
}
void put_fixed(Bytes& b, const BindingRevocation& m) {
    put8(b, m.br_type);
    put8(b, m.trigger_or_status);
    put16(b, m.sequence);
    std::uint8_t f = 0;
    if (m.proxy)
        f |= 0x80;
    if (m.global)
        f |= 0x40;
    if (m.vendor && m.br_type == kBrTypeIndication)
        f |= 0x20;
    put8(b, f);
    put8(b, 0);
}

// Pads `b` with Pad1 / PadN so that b.size() % x == y.
void pad_to(Bytes& b, std::size_t x, std::size_t y) {
    const std::size_t pad = (y + x - b.size() % x) % x;
    if (pad == 1) {
        put8(b, opt::kPad1);
    } else if (pad >= 2) {
        put8(b, opt::kPadN);
        put8(b, static_cast<std::uint8_t>(pad - 2));
        b.insert(b.end(), pad - 2, 0);
    }
}

DecodeError err(DecodeErrorCode c, std::size_t off, std::string d) {
    return {c, off, std::move(d)};
}

Result<Options, DecodeError> decode_options(std::span<const std::uint8_t> mh, std::size_t off) {
    Options out;
    while (off < mh.size()) {
        const std::uint8_t type = mh[off];
        if (type == opt::kPad1) {
            ++off;
            continue;
        }
        if (off + 2 > mh.size()) {
            return unexpected(
                err(DecodeErrorCode::kOptionTruncated, off,
                    fmt::format("option type {} at offset {} has no length octet", type, off)));
        }
        const std::size_t len = mh[off + 1];
        if (off + 2 + len > mh.size()) {
            return unexpected(
                err(DecodeErrorCode::kOptionLengthPastEnd, off,
                    fmt::format("{} option (type {}) at offset {} has length {}, past the "
                                "end of the message ({} octets)",
                                option_type_name(type), type, off, len, mh.size())));
        }
        if (type != opt::kPadN) {
            auto o = decode_option(type, mh.subspan(off + 2, len), off);
            if (!o) {
                return unexpected(o.error());
            }
            out.push_back(std::move(*o));
        }
        off += 2 + len;
    }
    return out;
}

}  // namespace

std::vector<std::uint8_t> encode(const Message& m) {
    Bytes b{kPayloadProtoNone, 0, static_cast<std::uint8_t>(m.mh_type()), 0, 0, 0};
    std::visit([&](const auto& body) { put_fixed(b, body); }, m.body);
    for (const auto& o : m.options()) {
        auto e = encode_option(o);
        pad_to(b, e.align.x, e.align.y);
        put8(b, e.type);
        put8(b, static_cast<std::uint8_t>(e.data.size()));
        put_bytes(b, e.data);
    }
    pad_to(b, 8, 0);
    b[1] = static_cast<std::uint8_t>(b.size() / 8 - 1);  // Header Len, 8-octet units
    return b;
}

Result<Message, DecodeError> decode(std::span<const std::uint8_t> mh) {
    if (mh.size() < 6) {
        return unexpected(
            err(DecodeErrorCode::kTooShort, 0,
                fmt::format("{} octets is shorter than a Mobility Header", mh.size())));
    }
    if (mh[0] != kPayloadProtoNone) {
        return unexpected(err(DecodeErrorCode::kBadPayloadProto, 0,
                              fmt::format("Payload Proto is {}, not 59", mh[0])));
    }
    const std::size_t total = (std::size_t{mh[1]} + 1) * 8;
    if (total > mh.size()) {
        return unexpected(err(DecodeErrorCode::kLengthPastEnd, 1,
                              fmt::format("Header Len {} means {} octets, the packet has {}", mh[1],
                                          total, mh.size())));
    }
    if (total < mh.size()) {
        return unexpected(err(DecodeErrorCode::kTrailingData, total,
                              fmt::format("{} octets after the {} that Header Len {} gives",
                                          mh.size() - total, total, mh[1])));
    }
    const auto type = static_cast<MhType>(mh[2]);
    const std::size_t fixed = fixed_size(type);
    if (fixed == 0) {
        return unexpected(err(DecodeErrorCode::kUnknownType, 2,
                              fmt::format("MH type {} is not processed here", mh[2])));
    }
    if (total < 6 + fixed) {
        return unexpected(err(DecodeErrorCode::kTooShortForType, 1,
                              fmt::format("{} needs at least {} octets, Header Len gives {}",
                                          mh_type_name(type), 6 + fixed, total)));
    }
    auto opts = decode_options(mh, 6 + fixed);
    if (!opts) {
        return unexpected(opts.error());
    }
    Message m;
    switch (type) {
        case MhType::kBindingUpdate: {
            BindingUpdate u;
            u.sequence = get16(mh, 6);
            const std::uint16_t f = get16(mh, 8);
            u.ack = f & 0x8000;
            u.home_registration = f & 0x4000;
            u.link_local_compat = f & 0x2000;
            u.key_mgmt = f & 0x1000;
            u.map_registration = f & 0x0800;
            u.mobile_router = f & 0x0400;
            u.proxy = f & 0x0200;
            u.force_udp = f & 0x0100;
            u.tlv_header = f & 0x0080;
            u.bulk = f & 0x0040;
            u.lifetime = get16(mh, 10);
            u.options = std::move(*opts);
            m.body = std::move(u);
            break;
        }
        case MhType::kBindingAcknowledgement: {
            BindingAcknowledgement a;
            a.status = mh[6];
            const std::uint8_t f = mh[7];
            a.key_mgmt = f & 0x80;
            a.mobile_router = f & 0x40;
            a.proxy = f & 0x20;
            a.tlv_header = f & 0x10;
            a.bulk = f & 0x08;
            a.sequence = get16(mh, 8);
            a.lifetime = get16(mh, 10);
            a.options = std::move(*opts);
            m.body = std::move(a);
            break;
        }
        case MhType::kBindingError: {
            BindingError e;
            e.status = mh[6];
            e.home_address = get_array<16>(mh, 8);
            e.options = std::move(*opts);
            m.body = std::move(e);
            break;
        }
        case MhType::kHeartbeat: {
            Heartbeat h;
            h.unsolicited = mh[7] & 0x02;
            h.response = mh[7] & 0x01;
            h.sequence = get32(mh, 8);
            h.options = std::move(*opts);
            m.body = std::move(h);
            break;
        }
        case MhType::kBindingRevocation: {
            BindingRevocation r;
            r.br_type = mh[6];
            r.trigger_or_status = mh[7];
            r.sequence = get16(mh, 8);
            r.proxy = mh[10] & 0x80;
            r.global = mh[10] & 0x40;
            r.vendor = r.br_type == kBrTypeIndication && (mh[10] & 0x20);
            r.options = std::move(*opts);
            m.body = std::move(r);
            break;
        }
        default:
            break;  // unreachable: fixed_size() rejected it
    }
    return m;
}

void set_checksum(std::span<std::uint8_t> mh, const net::Ipv6Address& src,
                  const net::Ipv6Address& dst) noexcept {
    if (mh.size() < 6) {
        return;
    }
    mh[4] = mh[5] = 0;
    const std::uint16_t c = net::ipv6_upper_layer_checksum(src, dst, kIpProtoMh, mh);
    mh[4] = static_cast<std::uint8_t>(c >> 8);
    mh[5] = static_cast<std::uint8_t>(c);
}

bool checksum_ok(std::span<const std::uint8_t> mh, const net::Ipv6Address& src,
                 const net::Ipv6Address& dst) noexcept {
    return mh.size() >= 6 && net::ipv6_upper_layer_checksum(src, dst, kIpProtoMh, mh) == 0;
}

std::string_view to_string(DecodeErrorCode c) noexcept {
    switch (c) {
        case DecodeErrorCode::kTooShort:
            return "too-short";
        case DecodeErrorCode::kBadPayloadProto:
            return "bad-payload-proto";
        case DecodeErrorCode::kLengthPastEnd:
            return "length-past-end";
        case DecodeErrorCode::kTrailingData:
            return "trailing-data";
        case DecodeErrorCode::kTooShortForType:
            return "too-short-for-type";
        case DecodeErrorCode::kUnknownType:
            return "unknown-mh-type";
        case DecodeErrorCode::kOptionTruncated:
            return "option-truncated";
        case DecodeErrorCode::kOptionLengthPastEnd:
            return "option-length-past-end";
        case DecodeErrorCode::kOptionBadLength:
            return "option-bad-length";
        case DecodeErrorCode::kZeroLengthIdentifier:
            return "zero-length-identifier";
        case DecodeErrorCode::kBadPrefixLength:
            return "bad-prefix-length";
        case DecodeErrorCode::kMultipathBAndO:
            return "multipath-b-and-o";
        case DecodeErrorCode::kFlowSubOptionMalformed:
            return "flow-sub-option-malformed";
    }
    return "unknown";
}

std::string DecodeError::str() const {
    return fmt::format("{} at offset {}: {}", to_string(code), offset, detail);
}

Reaction reaction_to(const DecodeError& e) noexcept {
    switch (e.code) {
        // RFC 6275 §9.2: Payload Proto other than 59 -> Parameter Problem code 0 pointing at it.
        case DecodeErrorCode::kBadPayloadProto:
            return {ReceiverAction::kParameterProblem, 0};
        // Header Len below the type's minimum -> Parameter Problem code 0 pointing at Header Len.
        case DecodeErrorCode::kTooShortForType:
            return {ReceiverAction::kParameterProblem, 1};
        // Unknown MH type -> Binding Error, status 2.
        case DecodeErrorCode::kUnknownType:
            return {ReceiverAction::kBindingErrorUnknownType, 0};
        // Everything else is malformed beyond what §9.2 answers: silently discard.
        default:
            return {ReceiverAction::kDiscard, 0};
    }
}

}  // namespace hag::mh
