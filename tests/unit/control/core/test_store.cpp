// The binding cache store: format round trips, hostile input (torn tails at every offset, bit
// flips, impossible lengths), snapshot + log replay, lifetimes, compaction, locking.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hag/net/address.hpp"
#include "store.hpp"
#include "store_format.hpp"

using namespace hag::control;
using namespace hag::control::store;
namespace fs = std::filesystem;

namespace {

Ipv6Address v6(const char* t) {
    return *hag::net::parse_ipv6_address(t);
}

Session make_session(int i, Seconds expires) {
    Session s;
    s.nai = "cpe" + std::to_string(i) + "@hag.example";
    Ipv6Address a = v6("2001:db8:100::");
    a[4] = static_cast<std::uint8_t>(i >> 8);
    a[5] = static_cast<std::uint8_t>(i);
    s.home_prefixes.push_back(Prefix{a, 64});
    s.uplink_gre_key = 1000 + static_cast<std::uint32_t>(i);
    s.last_sequence = static_cast<std::uint16_t>(40000 + i);
    s.last_timestamp = 0x0123456789abcdefull + static_cast<std::uint64_t>(i);
    Path p1;
    p1.bid = 1;
    p1.mag_id = "mag-" + std::to_string(i);
    p1.coa = CareOfAddress{v6("2001:db8:a::7")};
    p1.local = CareOfAddress{v6("2001:db8::1")};
    p1.access_technology = 4;
    p1.if_label = 1;
    p1.downlink_gre_key = 77;
    p1.weight_kbps = 50000;
    p1.live = true;
    p1.last_sequence = s.last_sequence;
    p1.expires_at = expires;
    Path p2 = p1;
    p2.bid = 2;
    p2.coa = CareOfAddress::from_ipv4({192, 0, 2, static_cast<std::uint8_t>(i)});
    p2.local = CareOfAddress::from_ipv4({192, 0, 2, 1});
    p2.live = false;
    p2.last_sequence = 3;
    p2.expires_at = expires + 10;
    s.paths = {p1, p2};
    return s;
}

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "hag-store-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::vector<std::uint8_t> read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void write_file(const fs::path& p, const std::vector<std::uint8_t>& b) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

StoreOptions opts(const TempDir& d) {
    StoreOptions o;
    o.dir = d.path.string();
    return o;
}

// A log file image: header and the given sessions as PUT records; record end offsets in `ends`.
std::vector<std::uint8_t> log_image(const std::vector<Session>& ss,
                                    std::vector<std::size_t>& ends) {
    std::vector<std::uint8_t> b;
    encode_header(Header{FileKind::kLog, 1, 99}, b);
    for (const auto& s : ss) {
        encode_put(s, 0, b);
        ends.push_back(b.size());
    }
    return b;
}

Store::SessionWalk walk(const std::vector<Session>& ss) {
    return [&ss](const std::function<void(const Session&)>& fn) {
        for (const auto& s : ss) {
            fn(s);
        }
    };
}

}  // namespace

TEST_CASE("CRC-32C matches the standard check value", "[store]") {
    const std::string check = "123456789";
    CHECK(crc32c(std::span(reinterpret_cast<const std::uint8_t*>(check.data()), check.size())) ==
          0xE3069283u);
}

TEST_CASE("records round-trip field by field", "[store]") {
    const Session s = make_session(5, 1234);
    std::vector<std::uint8_t> b;
    encode_put(s, 1'700'000'000, b);
    encode_delete("cpe9@hag.example", b);
    encode_end(42, b);
    std::vector<std::uint8_t> file;
    encode_header(Header{FileKind::kSnapshot, 7, 12345}, file);
    file.insert(file.end(), b.begin(), b.end());
    auto f = parse_file(file);
    REQUIRE(f.ok());
    CHECK(f->header.kind == FileKind::kSnapshot);
    CHECK(f->header.generation == 7);
    CHECK(f->header.restart_counter == 12345);
    CHECK_FALSE(f->tail_error);
    CHECK(f->valid_bytes == file.size());
    REQUIRE(f->records.size() == 3);
    Session want = s;
    for (auto& p : want.paths) {
        p.expires_at += 1'700'000'000;
    }
    CHECK(f->records[0].type == RecordType::kPut);
    CHECK(f->records[0].session == want);
    CHECK(f->records[1].type == RecordType::kDelete);
    CHECK(f->records[1].nai == "cpe9@hag.example");
    CHECK(f->records[2].type == RecordType::kEnd);
    CHECK(f->records[2].count == 42);
}

TEST_CASE("a log cut at every byte offset yields exactly the whole records before the cut",
          "[store][hostile]") {
    std::vector<std::size_t> ends;
    const std::vector<Session> ss{make_session(1, 10), make_session(2, 20), make_session(3, 30)};
    const auto full = log_image(ss, ends);
    for (std::size_t cut = 0; cut <= full.size(); ++cut) {
        const std::span<const std::uint8_t> part(full.data(), cut);
        auto f = parse_file(part);
        if (cut < kHeaderSize) {
            CHECK_FALSE(f.ok());
            continue;
        }
        REQUIRE(f.ok());
        std::size_t whole = 0;
        while (whole < ends.size() && ends[whole] <= cut) {
            ++whole;
        }
        INFO("cut at " << cut);
        REQUIRE(f->records.size() == whole);
        for (std::size_t i = 0; i < whole; ++i) {
            CHECK(f->records[i].session == ss[i]);
        }
        const std::size_t valid = whole == 0 ? kHeaderSize : ends[whole - 1];
        CHECK(f->valid_bytes == valid);
        CHECK(f->tail_error.has_value() == (cut != valid));
    }
}

TEST_CASE("the store recovers the valid prefix of a torn log, at every offset",
          "[store][hostile]") {
    std::vector<std::size_t> ends;
    const std::vector<Session> ss{make_session(1, 10), make_session(2, 20)};
    const auto full = log_image(ss, ends);
    for (std::size_t cut = 0; cut <= full.size(); ++cut) {
        TempDir d;
        write_file(d.path / "log-0000000000000001",
                   std::vector<std::uint8_t>(full.begin(), full.begin() + static_cast<long>(cut)));
        Recovery rec;
        auto st = Store::open(opts(d), rec);
        INFO("cut at " << cut);
        REQUIRE(st.ok());
        std::size_t whole = 0;
        while (whole < ends.size() && ends[whole] <= cut) {
            ++whole;
        }
        CHECK(rec.sessions.size() == whole);
        const bool torn = cut < kHeaderSize
                              ? cut != full.size()
                              : (whole == 0 ? cut != kHeaderSize : cut != ends[whole - 1]);
        CHECK(rec.warnings.empty() == !torn);
    }
}

TEST_CASE("a flipped bit anywhere never yields a changed record", "[store][hostile]") {
    std::vector<std::size_t> ends;
    const std::vector<Session> ss{make_session(1, 10), make_session(2, 20), make_session(3, 30)};
    const auto full = log_image(ss, ends);
    for (std::size_t i = 0; i < full.size(); ++i) {
        for (int bit = 0; bit < 8; bit += 3) {
            auto b = full;
            b[i] ^= static_cast<std::uint8_t>(1u << bit);
            auto f = parse_file(b);
            INFO("byte " << i << " bit " << bit);
            if (i < kHeaderSize) {
                CHECK_FALSE(f.ok());  // header CRC or magic
                continue;
            }
            REQUIRE(f.ok());
            REQUIRE(f->tail_error);
            // Records before the damaged one survive unchanged; nothing at or after it is used.
            REQUIRE(f->records.size() <= ss.size());
            for (std::size_t r = 0; r < f->records.size(); ++r) {
                CHECK(f->records[r].session == ss[r]);
                CHECK(ends[r] <= i);
            }
        }
    }
}

TEST_CASE("hostile payloads are refused without over-reading or huge allocations",
          "[store][hostile]") {
    auto bad = [](std::vector<std::uint8_t> p) { return !decode_payload(p).ok(); };
    CHECK(bad({}));
    CHECK(bad({9}));                             // unknown type
    CHECK(bad({2, 0, 0}));                       // DELETE with an empty NAI
    CHECK(bad({2, 5, 0, 'a'}));                  // NAI longer than the record
    CHECK(bad({3, 1, 2, 3}));                    // END truncated
    CHECK(bad({3, 0, 0, 0, 0, 0, 0, 0, 0, 1}));  // a trailing octet
    CHECK(bad({1, 1, 0, 'a', 0xff, 0xff}));      // 65535 prefixes announced, none present
    // One prefix of length 200.
    std::vector<std::uint8_t> p{1, 1, 0, 'a', 1, 0};
    p.insert(p.end(), 16, 0);
    p.push_back(200);
    CHECK(bad(p));
    // A well-formed session whose live flag is 2.
    std::vector<std::uint8_t> rec;
    encode_put(make_session(1, 5), 0, rec);
    std::vector<std::uint8_t> payload(rec.begin() + kRecordHeaderSize, rec.end());
    REQUIRE(decode_payload(payload).ok());
    // live flag of path 1: after type, nai ("cpe1@hag.example"), prefix count, one prefix, key,
    // seq, ts, path count, bid, mag ("mag-1"), coa, local, att, label, dl key, weight.
    const std::size_t live_at =
        1 + (2 + 16) + 2 + 17 + 4 + 2 + 8 + 2 + 2 + (2 + 5) + 16 + 16 + 1 + 1 + 4 + 4;
    REQUIRE(payload[live_at] == 1);
    payload[live_at] = 2;
    CHECK(bad(payload));
    // Every truncation of a valid payload is refused.
    payload[live_at] = 1;
    for (std::size_t n = 0; n < payload.size(); ++n) {
        CHECK(bad(
            std::vector<std::uint8_t>(payload.begin(), payload.begin() + static_cast<long>(n))));
    }
    // Framing: an impossible length is a tail error, not an allocation.
    std::vector<std::uint8_t> file;
    encode_header(Header{FileKind::kLog, 1, 1}, file);
    file.insert(file.end(), {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0});
    auto f = parse_file(file);
    REQUIRE(f.ok());
    CHECK(f->records.empty());
    CHECK(f->tail_error);
}

TEST_CASE("snapshot and log replay restore the last state; checkpoints compact", "[store]") {
    TempDir d;
    {
        Recovery rec;
        auto st = Store::open(opts(d), rec);
        REQUIRE(st.ok());
        CHECK(rec.sessions.empty());
        CHECK_FALSE(rec.restart_counter);
        const std::vector<Session> base{make_session(1, 100), make_session(2, 100)};
        REQUIRE((*st)->checkpoint(walk(base), 0, 555).ok());
        Session a = make_session(1, 500);
        a.last_sequence = 9;
        (*st)->put(a, 0);
        (*st)->put(make_session(3, 100), 0);
        (*st)->remove("cpe2@hag.example");
        CHECK((*st)->pending());
        REQUIRE((*st)->commit().ok());
        CHECK_FALSE((*st)->pending());
        CHECK((*st)->stats().records == 3);
        // Not committed: lost with the process, and never acknowledged.
        (*st)->put(make_session(4, 100), 0);
    }
    {
        Recovery rec;
        auto st = Store::open(opts(d), rec);
        REQUIRE(st.ok());
        CHECK(rec.snapshot_found);
        CHECK(rec.log_records == 3);
        REQUIRE(rec.restart_counter);
        CHECK(*rec.restart_counter == 555);
        REQUIRE(rec.sessions.size() == 2);
        Session a = make_session(1, 500);
        a.last_sequence = 9;
        CHECK(rec.sessions[0] == a);
        CHECK(rec.sessions[1] == make_session(3, 100));
        // Compaction: one snapshot, one (empty) log of the next generation.
        const auto gen_before = (*st)->stats().generation;
        REQUIRE((*st)->checkpoint(walk(rec.sessions), 0, 555).ok());
        CHECK((*st)->stats().generation == gen_before + 1);
        CHECK((*st)->stats().log_bytes == kHeaderSize);
        std::vector<std::string> logs;
        for (const auto& e : fs::directory_iterator(d.path)) {
            if (e.path().filename().string().rfind("log-", 0) == 0) {
                logs.push_back(e.path().filename().string());
            }
        }
        CHECK(logs.size() == 1);
    }
    Recovery rec;
    auto st = Store::open(opts(d), rec);
    REQUIRE(st.ok());
    CHECK(rec.sessions.size() == 2);
    CHECK(rec.log_records == 0);
}

TEST_CASE("a second hag-control cannot use a locked state directory", "[store]") {
    TempDir d;
    Recovery rec;
    auto a = Store::open(opts(d), rec);
    REQUIRE(a.ok());
    auto b = Store::open(opts(d), rec);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().find("in use") != std::string::npos);
}

TEST_CASE("a corrupt snapshot refuses the start unless told to start empty", "[store][hostile]") {
    TempDir d;
    {
        Recovery rec;
        auto st = Store::open(opts(d), rec);
        REQUIRE(st.ok());
        const std::vector<Session> base{make_session(1, 100), make_session(2, 100)};
        REQUIRE((*st)->checkpoint(walk(base), 0, 1).ok());
    }
    auto snap = read_file(d.path / "snapshot");
    SECTION("a flipped bit") {
        snap[kHeaderSize + 20] ^= 0x10;
    }
    SECTION("cut short (no END)") {
        REQUIRE(snap.size() > kHeaderSize + 3);
        snap.erase(snap.end() - 3, snap.end());
    }
    SECTION("header damaged") {
        snap[3] = 'X';
    }
    write_file(d.path / "snapshot", snap);
    {
        Recovery rec;
        auto st = Store::open(opts(d), rec);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().find("corrupt") != std::string::npos);
        CHECK(st.error().find("refusing to start") != std::string::npos);
    }
    auto o = opts(d);
    o.discard_corrupt = true;
    Recovery rec;
    auto st = Store::open(o, rec);
    REQUIRE(st.ok());
    CHECK(rec.sessions.empty());
    CHECK_FALSE(rec.warnings.empty());
    CHECK(fs::exists(d.path / "snapshot.corrupt"));
}

TEST_CASE("a crash between snapshot and new log loses nothing", "[store]") {
    TempDir d;
    std::vector<std::uint8_t> old_log;
    {
        Recovery rec;
        auto st = Store::open(opts(d), rec);
        REQUIRE(st.ok());
        REQUIRE((*st)->checkpoint(walk({}), 0, 1).ok());
        (*st)->put(make_session(1, 100), 0);
        REQUIRE((*st)->commit().ok());
        old_log = read_file(d.path / "log-0000000000000001");
        const std::vector<Session> now{make_session(1, 100)};
        REQUIRE((*st)->checkpoint(walk(now), 0, 1).ok());
    }
    // As if the checkpoint had stopped before the new log replaced the old one: the old log
    // is back and the new log was never created.
    fs::remove(d.path / "log-0000000000000002");
    write_file(d.path / "log-0000000000000001", old_log);
    Recovery rec;
    auto st = Store::open(opts(d), rec);
    REQUIRE(st.ok());
    REQUIRE(rec.sessions.size() == 1);
    CHECK(rec.sessions[0] == make_session(1, 100));
    CHECK(rec.log_records == 0);  // the older log is superseded by the snapshot
}

TEST_CASE("lifetimes: expired while down are dropped, the remaining lifetime is kept", "[store]") {
    std::vector<Session> ss{make_session(1, 1000), make_session(2, 2000)};
    // Wall clock now 1005: session 1 path 1 (1000) expired, path 2 (1010) has 5 s left, taken
    // as 4 (whole-second clocks: a lifetime must never grow); session 2 (2000, 2010) keeps both.
    const auto dropped = to_monotonic(ss, 1005, 50);
    CHECK(dropped == 0);
    REQUIRE(ss.size() == 2);
    REQUIRE(ss[0].paths.size() == 1);
    CHECK(ss[0].paths[0].bid == 2);
    CHECK(ss[0].paths[0].expires_at == 54);
    CHECK(ss[1].paths[0].expires_at == 50 + 994);
    // One second left is not enough: dropped.
    std::vector<Session> last{make_session(4, 1006)};  // paths at 1006 and 1016
    CHECK(to_monotonic(last, 1005, 50) == 0);
    REQUIRE(last[0].paths.size() == 1);
    CHECK(last[0].paths[0].bid == 2);
    CHECK(last[0].paths[0].expires_at == 50 + 10);  // 11 s left, 10 kept
    std::vector<Session> gone{make_session(3, 100)};
    CHECK(to_monotonic(gone, 5000, 1) == 1);
    CHECK(gone.empty());
}

TEST_CASE("a failed write does not leave a torn record behind later commits", "[store]") {
    TempDir d;
    Recovery rec;
    auto st = Store::open(opts(d), rec);
    REQUIRE(st.ok());
    // No checkpoint yet: no log is open, commit refuses and drops the buffer.
    (*st)->put(make_session(1, 100), 0);
    CHECK_FALSE((*st)->commit().ok());
    CHECK_FALSE((*st)->pending());
    CHECK((*st)->stats().errors == 1);
}

TEST_CASE("files written by an independent writer (the fuzz seeds, Python) are read back",
          "[store]") {
    const fs::path dir = fs::path(HAG_SOURCE_ROOT) / "tests/fuzz/store/corpus";
    auto snap = parse_snapshot(read_file(dir / "snapshot"));
    REQUIRE(snap.ok());
    REQUIRE(snap->records.size() == 2);
    const Session& s = snap->records[0].session;
    CHECK(s.nai == "cpe1@hag.example");
    CHECK(s.uplink_gre_key == 1001);
    CHECK(s.last_sequence == 7);
    REQUIRE(s.paths.size() == 2);
    CHECK(s.paths[1].coa.is_ipv4());
    CHECK(s.paths[0].expires_at == 1'800'000'000);
    auto puts = parse_file(read_file(dir / "log-puts"));
    REQUIRE(puts.ok());
    CHECK(puts->records.size() == 2);
    CHECK_FALSE(puts->tail_error);
    auto torn = parse_file(read_file(dir / "log-torn"));
    REQUIRE(torn.ok());
    CHECK(torn->records.size() == 1);
    CHECK(torn->tail_error);
    auto nat = parse_file(read_file(dir / "log-put-nat"));
    REQUIRE(nat.ok());
    REQUIRE(nat->records.size() == 1);
    const Session& n = nat->records[0].session;
    REQUIRE(n.paths.size() == 2);
    CHECK_FALSE(n.paths[0].nat);
    CHECK(n.paths[1].nat);
    CHECK(n.paths[1].nat_port == 40123);
    CHECK(to_string(n.paths[1].mag_coa) == "192.0.2.66");
    CHECK(n.delegated_prefixes.empty());
    // Extension 1 (NAT) followed by extension 2 (delegated prefixes, RFC 7148).
    auto dmnp = parse_file(read_file(dir / "log-put-nat-dmnp"));
    REQUIRE(dmnp.ok());
    REQUIRE(dmnp->records.size() == 1);
    const Session& d = dmnp->records[0].session;
    CHECK(d.nai == "cpe5@hag.example");
    REQUIRE(d.paths.size() == 2);
    CHECK(d.paths[1].nat);
    REQUIRE(d.delegated_prefixes.size() == 2);
    CHECK(to_string(d.delegated_prefixes[0]) == "2001:db8:d00:100::/56");
    CHECK(d.delegated_prefixes[1].length == 124);
    CHECK(to_string(CareOfAddress{d.delegated_prefixes[1].addr}) == "192.0.2.128");
}

TEST_CASE("NAT traversal and IPv4 home addresses are kept; hostile NAT extensions refused",
          "[store][ipv4][hostile]") {
    Session s = make_session(3, 100);
    // An IPv4 home address is an IPv4-mapped prefix among the home prefixes.
    s.home_prefixes.push_back(Prefix{CareOfAddress::from_ipv4({203, 0, 113, 130}).addr, 128});
    s.paths[1].nat = true;
    s.paths[1].nat_port = 40123;
    s.paths[1].mag_coa = CareOfAddress::from_ipv4({192, 0, 2, 66});
    std::vector<std::uint8_t> rec;
    encode_put(s, 0, rec);
    std::vector<std::uint8_t> payload(rec.begin() + kRecordHeaderSize, rec.end());
    auto r = decode_payload(payload);
    REQUIRE(r.ok());
    CHECK(r->session == s);

    // Without NATed paths nothing is appended: the record is what older builds wrote.
    Session plain = make_session(3, 100);
    std::vector<std::uint8_t> rec_plain;
    encode_put(plain, 0, rec_plain);
    const std::size_t ext = (rec_plain.size() - kRecordHeaderSize) + 17;  // + the IPv4 prefix
    REQUIRE(payload.size() == ext + 3 + 2 * 19);
    CHECK(payload[ext] == 1);       // tag
    CHECK(payload[ext + 1] == 38);  // length, little-endian as every store integer: two paths
    CHECK(payload[ext + 2] == 0);   // of 19 octets

    auto bad = [](std::vector<std::uint8_t> p) { return !decode_payload(p).ok(); };
    {
        auto p = payload;
        p[ext + 1] = 19;  // one entry for two paths
        CHECK(bad(p));
        p[ext + 2] = 0xff;  // beyond the record
        CHECK(bad(p));
    }
    {
        auto p = payload;
        p[ext + 3] = 2;  // NAT flag of path 1 not 0 / 1
        CHECK(bad(p));
    }
    {
        // A path without NAT but with a port and a MAG address in the extension (only a NATed
        // path has them): read as none, so the record reads back the same once written again.
        // Found by fuzz-store (seed regress-nat-fields-without-nat).
        auto p = payload;
        p[ext + 4] = 0x34;    // path 1 (not NATed): port
        p[ext + 6 + 15] = 7;  // path 1: last octet of the MAG address
        auto r2 = decode_payload(p);
        REQUIRE(r2.ok());
        CHECK(r2->session == s);
    }
    // Cut inside the extension: refused. (Cut right before it, the record reads as one without
    // NATed paths; the record framing's length and CRC catch that cut.)
    for (std::size_t n = ext + 1; n < payload.size(); ++n) {
        CHECK(bad(
            std::vector<std::uint8_t>(payload.begin(), payload.begin() + static_cast<long>(n))));
    }
    // An unknown extension is skipped; one past the end is refused.
    {
        auto p = payload;
        p.insert(p.end(), {9, 2, 0, 0xaa, 0xbb});
        auto ok = decode_payload(p);
        REQUIRE(ok.ok());
        CHECK(ok->session == s);
        p[p.size() - 4] = 5;  // its length now runs past the record
        CHECK(bad(p));
    }
}
