// Unit tests of hag-mhdump's codec-independent helpers: hex text and the classic pcap writer.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string_view>
#include <vector>

#include "capture.hpp"
#include "hag/net/checksum.hpp"
#include "hag/net/ipv6.hpp"
#include "hex.hpp"
#include "json.hpp"
#include "pcap_writer.hpp"

using namespace hag::mhdump;
using Bytes = std::vector<std::uint8_t>;

TEST_CASE("parse_hex accepts separators and a 0x prefix", "[mhdump][hex]") {
    CHECK(parse_hex("3b01 0500") == Bytes{0x3b, 0x01, 0x05, 0x00});
    CHECK(parse_hex("0x3B:01\n05\t00") == Bytes{0x3b, 0x01, 0x05, 0x00});
    CHECK(parse_hex("") == Bytes{});
}

TEST_CASE("parse_hex rejects hostile text", "[mhdump][hex]") {
    CHECK_FALSE(parse_hex("3b0"));  // odd digit count
    CHECK_FALSE(parse_hex("3 b"));  // separator inside an octet
    CHECK_FALSE(parse_hex("zz"));   // not hex
    CHECK_FALSE(
        parse_hex(std::string_view("3b\0"
                                   "01",
                                   5)));  // NUL is not a separator
    CHECK(parse_hex("0x") == Bytes{});    // the prefix alone is the empty string
}

TEST_CASE("to_hex and hex_dump", "[mhdump][hex]") {
    const Bytes b{0x3b, 0x01, 0x05, 0x00, 0xff};
    CHECK(to_hex(b) == "3b010500ff");
    Bytes many(18, 0xab);
    CHECK(hex_dump(many) == "0000  abab abab abab abab abab abab abab abab\n0010  abab\n");
}

TEST_CASE("pcap writer: golden file header and record header", "[mhdump][pcap]") {
    PcapWriter w;
    const Bytes frame{1, 2, 3};
    w.add(0x10, 0x20, frame);
    const Bytes want{
        0xd4, 0xc3, 0xb2, 0xa1, 2,    0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0xff, 0xff, 0,    0,    1,    0, 0, 0,                          // snaplen, linktype
        0x10, 0,    0,    0,    0x20, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0,  // record header
        1,    2,    3};
    CHECK(w.bytes() == want);

    char path[] = "/tmp/hag-mhdump-test-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(w.save(path));
    std::ifstream in(path, std::ios::binary);
    const Bytes got{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::remove(path);
    CHECK(got == want);
    CHECK_FALSE(w.save("/nonexistent-dir/x.pcap"));
}

TEST_CASE("ethernet_frame: dst, src, EtherType, payload", "[mhdump][pcap]") {
    const MacAddress dst{0x02, 0, 0, 0, 0, 1};
    const MacAddress src{0x02, 0, 0, 0, 0, 2};
    const Bytes payload{0x60};
    const Bytes want{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd, 0x60};
    CHECK(ethernet_frame(dst, src, 0x86dd, payload) == want);
}

TEST_CASE("json: escaping and layout", "[mhdump][json]") {
    CHECK(json_quote("a\"b\\c\n\x01\xff") == "\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\"");
    JsonObject opt;
    opt.num("type", 33).num("gre_key", 0x1001);
    JsonObject o;
    o.num("mh_type", 5)
        .boolean("h", false)
        .str("name", "x")
        .strings("flags", {"A", "P"})
        .objects("options", {opt});
    CHECK(o.dump() ==
          "{\"mh_type\": 5, \"h\": false, \"name\": \"x\", \"flags\": [\"A\", \"P\"], "
          "\"options\": [{\"type\": 33, \"gre_key\": 4097}]}");
    CHECK(JsonObject{}.dump() == "{}");
}

TEST_CASE("exchange_pcap: Ethernet + IPv6 + MH with a valid checksum", "[mhdump][pcap]") {
    SampleMessage m;
    m.label = "BU";
    m.src = *hag::net::parse_ipv6_address("2001:db8:a::1");
    m.dst = *hag::net::parse_ipv6_address("2001:db8:f::1");
    // BU, checksum garbage, seq 1, A|P, lifetime 900, PadN 2.
    m.mh = {59, 1, 5, 0, 0xaa, 0xbb, 0, 1, 0x82, 0, 0x03, 0x84, 1, 0, 0, 0};
    const auto file = exchange_pcap({m, m});
    REQUIRE(file.size() == 24 + 2 * (16 + 14 + 40 + 16));
    // Record 1: timestamps one second apart, lengths 70.
    CHECK(file[24 + 8] == 70);
    const std::size_t f0 = 24 + 16;
    const Bytes eth{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd};  // BU: MAG -> LMA
    CHECK(Bytes(file.begin() + f0, file.begin() + f0 + 14) == eth);
    const std::span<const std::uint8_t> ip(file.data() + f0 + 14, 40 + 16);
    auto p = hag::net::parse_ipv6(ip);
    REQUIRE(p);
    CHECK(p->header.next_header == 135);
    CHECK(hag::net::ipv6_upper_layer_checksum(m.src, m.dst, 135, p->payload) == 0);
    const std::uint32_t t0 = file[24] | file[25] << 8 | file[26] << 16 | file[27] << 24;
    const std::size_t r1 = 24 + 16 + 70;
    const std::uint32_t t1 = file[r1] | file[r1 + 1] << 8 | file[r1 + 2] << 16 | file[r1 + 3] << 24;
    CHECK(t1 == t0 + 1);
}
