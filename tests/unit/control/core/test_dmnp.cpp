// Delegated mobile network prefixes (RFC 7148) in the LMA: allocation from IPv6 and IPv4 pools,
// specific requests, static prefixes, every refusal status, release on de-registration and
// expiry, persistence (store records, restore), the data plane conversion and hagctl's view.
// Messages go through the real codec (encode -> receive).
#include <catch2/catch.hpp>

#include "core/config.hpp"
#include "core/dmnp.hpp"
#include "core/lma.hpp"
#include "core/store_format.hpp"
#include "dpclient/session_convert.hpp"
#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::control;
using mh::BaStatus;

namespace {

const char* kConfig = R"(
lma_addresses: "2001:db8::1"
hnp_pools { name: "main" prefix: "2001:db8:100::/56" assign_length: 64 }
dmnp_pools { name: "lan6" prefix: "2001:db8:d00::/54" assign_length: 56 }
dmnp_pools { name: "lan4" prefix: "192.0.2.128/27" assign_length: 28 }
dmnp_pools { name: "one6" prefix: "2001:db8:e00::/55" assign_length: 56 }
default_profile { dmnp_pool: "lan6" dmnp_pool_ipv4: "lan4" }
subscribers { nai: "cpe1@example.net" }
subscribers { nai: "cpe2@example.net" }
subscribers { nai: "cpe3@example.net" }
subscribers { nai: "nolan@example.net" profile { dmnp_pool: "" dmnp_pool_ipv4: "" } }
subscribers { nai: "strict@example.net" profile { allow_requested_dmnp: false } }
subscribers { nai: "small@example.net" profile { dmnp_pool: "one6" } }
subscribers { nai: "small2@example.net" profile { dmnp_pool: "one6" } }
subscribers { nai: "small3@example.net" profile { dmnp_pool: "one6" } }
subscribers { nai: "fixed@example.net" delegated_prefixes: "2001:db8:f00::/48"
              delegated_prefixes: "198.51.100.0/24" }
subscribers { nai: "wide@example.net" home_prefixes: "2001:db8:300::/64"
              home_prefixes: "2001:db8:301::/64" home_prefixes: "2001:db8:302::/64" }
allow_unknown_mags: true
)";

v1::ControlConfig test_config() {
    auto r = parse_control_config(kConfig, "test.conf");
    if (!r) {
        FAIL(r.error().front().str());
    }
    return *r;
}

Ipv6Address ip(const char* s) {
    return *net::parse_ipv6_address(s);
}

mh::DelegatedMobileNetworkPrefix any6() {
    return mh::DelegatedMobileNetworkPrefix{false, 0, mh::Bytes(16, 0)};
}
mh::DelegatedMobileNetworkPrefix any4() {
    return mh::DelegatedMobileNetworkPrefix{true, 0, mh::Bytes(4, 0)};
}
mh::DelegatedMobileNetworkPrefix want(const char* text) {
    auto p = parse_prefix_any(text);
    REQUIRE(p);
    return to_option(*p);
}

std::vector<std::uint8_t> pbu(const std::string& nai, std::uint16_t seq,
                              std::vector<mh::DelegatedMobileNetworkPrefix> dmnp,
                              std::uint16_t lifetime_units = 100) {
    mh::BindingUpdate bu;
    bu.sequence = seq;
    bu.ack = true;
    bu.home_registration = true;
    bu.proxy = true;
    bu.lifetime = lifetime_units;
    bu.options.push_back(mh::MobileNodeIdentifier{1, mh::Bytes(nai.begin(), nai.end())});
    bu.options.push_back(mh::HomeNetworkPrefix{0, {}});
    bu.options.push_back(mh::HandoffIndicatorOption{1});
    bu.options.push_back(mh::AccessTechnologyTypeOption{3});
    bu.options.push_back(mh::GreKey{7});
    for (auto& d : dmnp) {
        bu.options.push_back(d);
    }
    const std::string mag = "mag-" + nai;
    bu.options.push_back(mh::MagIdentifier{1, mh::Bytes(mag.begin(), mag.end())});
    return mh::encode(mh::Message{bu});
}

struct Fixture {
    BindingCache cache{1000};
    Lma lma;
    LmaTime t{1000, 1'000'000, std::uint64_t{1'700'000'000} << 16};
    Fixture() : lma(test_config(), cache, 7) {}

    mh::BindingAcknowledgement send(const std::vector<std::uint8_t>& bytes) {
        Peer p;
        p.local = ip("2001:db8::1");
        p.remote = ip("2001:db8:a::1");
        auto out = lma.receive(bytes, p, t);
        REQUIRE(out.size() == 1);
        auto again = mh::decode(mh::encode(out[0].message));
        REQUIRE(again);
        auto* ba = std::get_if<mh::BindingAcknowledgement>(&again->body);
        REQUIRE(ba != nullptr);
        return *ba;
    }
    std::uint64_t counter(const std::string& name) const {
        for (const auto& [k, v] : lma.counters()) {
            if (k == name) {
                return v;
            }
        }
        return 0;
    }
};

std::vector<std::string> granted(const mh::BindingAcknowledgement& ba) {
    std::vector<std::string> out;
    for (const auto* d : mh::find_options<mh::DelegatedMobileNetworkPrefix>(ba.options)) {
        auto p = dmnp_requests(mh::Options{*d});
        REQUIRE(p);
        REQUIRE(p->size() == 1);
        REQUIRE(p->front().specific);
        out.push_back(prefix_text_any(*p->front().specific));
    }
    return out;
}

std::vector<std::string> texts(const std::vector<Prefix>& v) {
    std::vector<std::string> out;
    for (const auto& p : v) {
        out.push_back(prefix_text_any(p));
    }
    return out;
}

constexpr std::uint8_t S(BaStatus s) {
    return static_cast<std::uint8_t>(s);
}

}  // namespace

TEST_CASE("any IPv6 and any IPv4 delegated prefix: granted from the pools, kept, released",
          "[dmnp]") {
    Fixture f;
    auto ba = f.send(pbu("cpe1@example.net", 1, {any6(), any4()}));
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(granted(ba) == std::vector<std::string>{"2001:db8:d00::/56", "192.0.2.128/28"});
    const Session* s = f.cache.find("cpe1@example.net");
    REQUIRE(s != nullptr);
    CHECK(texts(s->delegated_prefixes) == granted(ba));
    // Indexed with the home prefixes: the prefix finds its session, another cannot take it.
    CHECK(f.cache.find_by_prefix(s->delegated_prefixes[0]) == s);
    CHECK(f.counter("dmnp_pool.lan6.in_use") == 1);
    CHECK(f.counter("dmnp_pool.lan4.in_use") == 1);

    // A re-registration asking again, or not asking, keeps the same prefixes.
    ba = f.send(pbu("cpe1@example.net", 2, {any6(), any4()}));
    CHECK(granted(ba) == std::vector<std::string>{"2001:db8:d00::/56", "192.0.2.128/28"});
    ba = f.send(pbu("cpe1@example.net", 3, {}));
    CHECK(granted(ba) == std::vector<std::string>{"2001:db8:d00::/56", "192.0.2.128/28"});
    CHECK(f.counter("dmnp_pool.lan6.in_use") == 1);

    // Another subscriber gets the next ones.
    ba = f.send(pbu("cpe2@example.net", 1, {any6(), any4()}));
    CHECK(granted(ba) == std::vector<std::string>{"2001:db8:d00:100::/56", "192.0.2.144/28"});

    // The data plane routes every delegated prefix to the session (longest-prefix match).
    const auto dp = dpclient::to_dp_session(*f.cache.find("cpe2@example.net"), 3, nullptr);
    REQUIRE(dp.prefixes_size() == 3);
    CHECK(dp.prefixes(1) == "2001:db8:d00:100::/56");
    CHECK(dp.prefixes(2) == "192.0.2.144/28");

    // De-registration gives them back: the next subscriber gets cpe1's.
    ba = f.send(pbu("cpe1@example.net", 4, {}, 0));
    CHECK(ba.status == S(BaStatus::kAccepted));
    CHECK(f.counter("dmnp_pool.lan6.in_use") == 1);
    ba = f.send(pbu("cpe3@example.net", 1, {any6()}));
    CHECK(granted(ba) == std::vector<std::string>{"2001:db8:d00::/56"});
}

TEST_CASE("a specific delegated prefix: granted when free and allowed, 178 / 177 otherwise",
          "[dmnp]") {
    Fixture f;
    auto ba = f.send(pbu("cpe1@example.net", 1, {want("2001:db8:d00:200::/56")}));
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(granted(ba) == std::vector<std::string>{"2001:db8:d00:200::/56"});
    // Held by cpe1: REQUESTED_DMNP_IN_USE for cpe2, and the options come back as asked.
    ba = f.send(pbu("cpe2@example.net", 1, {want("2001:db8:d00:200::/56")}));
    CHECK(ba.status == S(BaStatus::kRequestedDmnpInUse));
    CHECK(granted(ba) == std::vector<std::string>{"2001:db8:d00:200::/56"});
    CHECK(f.cache.find("cpe2@example.net") == nullptr);
    // Outside the pool, or the pool's prefix with another length: not authorised.
    CHECK(f.send(pbu("cpe2@example.net", 2, {want("2001:db8:9999::/56")})).status ==
          S(BaStatus::kNotAuthorizedForDelegatedMnp));
    CHECK(f.send(pbu("cpe2@example.net", 3, {want("2001:db8:d00:300::/60")})).status ==
          S(BaStatus::kNotAuthorizedForDelegatedMnp));
    CHECK(f.send(pbu("cpe2@example.net", 4, {want("203.0.113.0/28")})).status ==
          S(BaStatus::kNotAuthorizedForDelegatedMnp));
    // A profile that does not honour requests.
    CHECK(f.send(pbu("strict@example.net", 1, {want("2001:db8:d00:300::/56")})).status ==
          S(BaStatus::kNotAuthorizedForDelegatedMnp));
    // No pool of the family for this subscriber.
    CHECK(f.send(pbu("nolan@example.net", 1, {any6()})).status ==
          S(BaStatus::kNotAuthorizedForDelegatedMnp));
    CHECK(f.send(pbu("nolan@example.net", 2, {any4()})).status ==
          S(BaStatus::kNotAuthorizedForDelegatedMnp));
    CHECK(f.counter("pbu.refused.dmnp") == 7);
    // A refused PBU took nothing: the HNP pool and the DMNP pools are as before.
    CHECK(f.counter("pool.main.in_use") == 1);
    CHECK(f.counter("dmnp_pool.lan6.in_use") == 1);
}

TEST_CASE("an exhausted pool gives INSUFFICIENT_RESOURCES, freed prefixes come back", "[dmnp]") {
    Fixture f;  // one6: 2001:db8:e00::/55 in /56s = 2 prefixes
    CHECK(granted(f.send(pbu("small@example.net", 1, {any6()}))) ==
          std::vector<std::string>{"2001:db8:e00::/56"});
    CHECK(granted(f.send(pbu("small2@example.net", 1, {any6()}))) ==
          std::vector<std::string>{"2001:db8:e00:100::/56"});
    CHECK(f.send(pbu("small3@example.net", 1, {any6()})).status ==
          S(BaStatus::kInsufficientResources));
    CHECK(f.counter("pool.main.in_use") == 2);  // the third one's HNP went back
    // Lifetime expiry frees the prefix too.
    (void)f.lma.tick(f.t);
    f.t.now += 1000;
    (void)f.lma.tick(f.t);
    CHECK(f.cache.size() == 0);
    CHECK(f.counter("dmnp_pool.one6.in_use") == 0);
    CHECK(f.send(pbu("small3@example.net", 2, {any6()})).status == S(BaStatus::kAccepted));
}

TEST_CASE("static delegated prefixes: granted first, specific ones authorised", "[dmnp]") {
    Fixture f;
    auto ba = f.send(pbu("fixed@example.net", 1, {any6(), want("198.51.100.0/24")}));
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(granted(ba) == std::vector<std::string>{"2001:db8:f00::/48", "198.51.100.0/24"});
    CHECK(f.counter("dmnp_pool.lan6.in_use") == 0);
    // More than two per session is refused (the data plane holds four prefixes per session).
    CHECK(f.send(pbu("fixed@example.net", 2, {want("2001:db8:d00:300::/56")})).status ==
          S(BaStatus::kInsufficientResources));
}

TEST_CASE("malformed delegated prefix options are refused or not decoded", "[dmnp][hostile]") {
    Fixture f;
    // Host bits past the prefix length, an IPv4-mapped prefix without the V flag, a zero-length
    // IPv6 prefix with bits set: NOT_AUTHORIZED_FOR_DELEGATED_MNP.
    for (const auto& bad :
         {mh::DelegatedMobileNetworkPrefix{
              false, 56, mh::Bytes{0x20, 1, 0xd, 0xb8, 0xd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
          mh::DelegatedMobileNetworkPrefix{
              false, 120, mh::Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 0}},
          mh::DelegatedMobileNetworkPrefix{true, 24, mh::Bytes{192, 0, 2, 1}},
          mh::DelegatedMobileNetworkPrefix{
              false, 0, mh::Bytes{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}) {
        CHECK(f.send(pbu("cpe1@example.net", 1, {bad})).status ==
              S(BaStatus::kNotAuthorizedForDelegatedMnp));
    }
    CHECK(f.cache.size() == 0);
    // Lengths the codec refuses never reach the LMA: counted as malformed, no reply.
    auto bytes = pbu("cpe1@example.net", 2, {any4()});
    // The DMNP option is the only type 55: make its length 5 (the data 6) -> bad length.
    bool patched = false;
    for (std::size_t i = 8; i + 1 < bytes.size(); ++i) {
        if (bytes[i] == 55 && bytes[i + 1] == 6) {
            bytes[i + 1] = 5;
            patched = true;
            break;
        }
    }
    REQUIRE(patched);
    Peer p;
    p.local = ip("2001:db8::1");
    p.remote = ip("2001:db8:a::1");
    CHECK(f.lma.receive(bytes, p, f.t).empty());
    CHECK(f.counter("mh.malformed") == 1);
}

TEST_CASE("delegated prefixes persist: store records round trip, restore claims them",
          "[dmnp][store]") {
    Fixture f;
    REQUIRE(f.send(pbu("cpe1@example.net", 1, {any6(), any4()})).status == 0);
    const Session s = *f.cache.find("cpe1@example.net");
    std::vector<std::uint8_t> rec;
    store::encode_put(s, 0, rec);
    auto parsed = store::decode_payload(std::span(rec).subspan(store::kRecordHeaderSize));
    REQUIRE(parsed);
    CHECK(parsed->session.delegated_prefixes == s.delegated_prefixes);
    // The prefixes are store extension 2 at the end of the record: tag (1), length (2, little-
    // endian), 17 octets per prefix. Hostile extensions are refused.
    auto payload = std::vector<std::uint8_t>(rec.begin() + store::kRecordHeaderSize, rec.end());
    const std::size_t tail = payload.size() - 3 - 2 * 17;
    REQUIRE(payload[tail] == 2);
    REQUIRE(payload[tail + 1] == 34);
    REQUIRE(payload[tail + 2] == 0);
    auto bad = payload;
    bad[tail + 1] = 33;  // not a multiple of 17
    bad.pop_back();
    CHECK_FALSE(store::decode_payload(bad));
    bad = payload;
    bad.resize(tail + 3);
    bad[tail + 1] = 0;  // empty
    CHECK_FALSE(store::decode_payload(bad));
    bad = payload;
    bad[tail + 1] = 51;  // 3 prefixes, more than a session may hold
    bad.insert(bad.end(), payload.end() - 17, payload.end());
    CHECK_FALSE(store::decode_payload(bad));
    bad = payload;
    bad[tail + 3 + 16] = 129;  // prefix length
    CHECK_FALSE(store::decode_payload(bad));
    bad = payload;
    bad.pop_back();  // extension beyond the record
    CHECK_FALSE(store::decode_payload(bad));
    bad = payload;
    bad.insert(bad.end(), payload.begin() + static_cast<long>(tail), payload.end());  // twice
    CHECK_FALSE(store::decode_payload(bad));
    // An unknown extension after it is skipped.
    auto extra = payload;
    extra.insert(extra.end(), {9, 1, 0, 0xaa});
    auto skipped = store::decode_payload(extra);
    REQUIRE(skipped);
    CHECK(skipped->session == s);
    // Together with the NAT extension (tag 1), both read back.
    Session natted = s;
    natted.paths[0].nat = true;
    natted.paths[0].nat_port = 40123;
    natted.paths[0].mag_coa = CareOfAddress::from_ipv4({192, 0, 2, 66});
    std::vector<std::uint8_t> both;
    store::encode_put(natted, 0, both);
    auto both_parsed = store::decode_payload(std::span(both).subspan(store::kRecordHeaderSize));
    REQUIRE(both_parsed);
    CHECK(both_parsed->session == natted);
    // A record without delegated prefixes is byte for byte what it was before they existed.
    Session plain = s;
    plain.delegated_prefixes.clear();
    std::vector<std::uint8_t> old;
    store::encode_put(plain, 0, old);
    CHECK(old.size() == rec.size() - 3 - 2 * 17);

    // Restore into a fresh LMA: the prefixes are claimed, so nobody else gets them.
    BindingCache cache2{1000};
    Lma lma2(test_config(), cache2, 8);
    REQUIRE(lma2.restore(parsed->session, f.t));
    Peer p;
    p.local = ip("2001:db8::1");
    p.remote = ip("2001:db8:a::2");
    auto out = lma2.receive(pbu("cpe2@example.net", 1, {any6()}), p, f.t);
    REQUIRE(out.size() == 1);
    auto* ba = std::get_if<mh::BindingAcknowledgement>(&out[0].message.body);
    REQUIRE(ba != nullptr);
    CHECK(granted(*ba) == std::vector<std::string>{"2001:db8:d00:100::/56"});
    // A second restore of the same session is refused with nothing changed.
    CHECK_FALSE(lma2.restore(parsed->session, f.t));
}

TEST_CASE("no binding holds more prefixes than the data plane routes per session",
          "[dmnp][limits]") {
    Fixture f;  // wide: three static home prefixes; the data plane routes four per session
    auto ba = f.send(pbu("wide@example.net", 1, {any6(), any4()}));
    CHECK(ba.status == S(BaStatus::kInsufficientResources));  // 3 + 2 > 4: refused whole
    CHECK(f.counter("pbu.too_many_prefixes") == 1);
    CHECK(f.cache.size() == 0);
    CHECK(f.counter("dmnp_pool.lan6.in_use") == 0);  // what the refusal had claimed came back
    CHECK(f.counter("dmnp_pool.lan4.in_use") == 0);
    ba = f.send(pbu("wide@example.net", 2, {any6()}));
    REQUIRE(ba.status == S(BaStatus::kAccepted));  // 3 + 1: accepted
    CHECK(granted(ba).size() == 1);
    // A re-registration asking for one more is refused and leaves the binding as it was.
    CHECK(f.send(pbu("wide@example.net", 3, {any6(), any4()})).status ==
          S(BaStatus::kInsufficientResources));
    REQUIRE(f.cache.find("wide@example.net") != nullptr);
    CHECK(f.cache.find("wide@example.net")->home_prefixes.size() == 3);
    CHECK(f.cache.find("wide@example.net")->delegated_prefixes.size() == 1);
    CHECK(f.counter("dmnp_pool.lan4.in_use") == 0);
    // The binding cache itself refuses a fifth prefix, whatever asks for it.
    Session s = *f.cache.find("wide@example.net");
    s.home_prefixes.push_back(*parse_prefix("2001:db8:303::/64"));
    auto r = f.cache.update(s);
    REQUIRE(!r);
    CHECK(r.error() == CacheError::kTooManyPrefixes);
}

TEST_CASE("configuration of delegated prefix pools is checked", "[dmnp][config]") {
    auto bad = [](const std::string& extra) {
        auto r = parse_control_config(std::string(kConfig) + extra, "t.conf");
        return r ? std::string() : r.error().front().str();
    };
    CHECK(bad("").empty());
    CHECK_THAT(bad(R"(dmnp_pools { name: "x" prefix: "2001:db8:100::/60" assign_length: 64 })"),
               Catch::Contains("overlaps pool 'main'"));
    CHECK_THAT(bad(R"(dmnp_pools { name: "y" prefix: "192.0.2.0/24" assign_length: 33 })"),
               Catch::Contains("dmnp_pools.assign_length"));
    CHECK_THAT(bad(R"(dmnp_pools { name: "z" prefix: "192.0.2.1/24" assign_length: 28 })"),
               Catch::Contains("bits set past"));
    CHECK_THAT(bad(R"(subscribers { nai: "q" profile { dmnp_pool: "lan4" } })"),
               Catch::Contains("not an IPv6 dmnp_pools entry"));
    CHECK_THAT(bad(R"(subscribers { nai: "q" profile { dmnp_pool_ipv4: "nope" } })"),
               Catch::Contains("no dmnp_pools entry named"));
    CHECK_THAT(bad(R"(subscribers { nai: "q" delegated_prefixes: "2001:db8::1/48" })"),
               Catch::Contains("subscribers.delegated_prefixes"));
    CHECK_THAT(bad(R"(subscribers { nai: "q" home_prefixes: "2001:db8:400::/64"
        home_prefixes: "2001:db8:401::/64" home_prefixes: "2001:db8:402::/64"
        home_prefixes: "2001:db8:403::/64" ipv4_home_address: "192.0.2.9" })"),
               Catch::Contains("the data plane routes at most 4 per session"));
}
