// ESP with AES-GCM (common/src/esp): round trips, the packet layout, anti-replay, and hostile
// input (every truncation, every bit flipped, wrong keys, forged padding). The independent check
// against another implementation is tests/integration/control/esp_netns_test.py (scapy).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <openssl/evp.h>

#include "hag/esp/esp.hpp"

using namespace hag::esp;

namespace {

Key key128(std::uint8_t seed = 1) {
    std::string hex;
    for (int i = 0; i < 20; ++i) {
        constexpr char d[] = "0123456789abcdef";
        const auto b = static_cast<std::uint8_t>(seed + i * 7);
        hex += d[b >> 4];
        hex += d[b & 15];
    }
    return parse_key(hex).value();
}

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t start = 0) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = static_cast<std::uint8_t>(start + i);
    }
    return v;
}

}  // namespace

TEST_CASE("parse_key: 16 or 32 octets of key and 4 of salt, in hex") {
    auto k = parse_key("0x000102030405060708090a0b0c0d0e0f10111213");
    REQUIRE(k);
    CHECK(k->key.size() == 16);
    CHECK(k->key[15] == 0x0f);
    CHECK(k->salt == std::array<std::uint8_t, 4>{0x10, 0x11, 0x12, 0x13});
    auto k256 = parse_key(std::string(72, 'A'));
    REQUIRE(k256);
    CHECK(k256->key.size() == 32);
    CHECK(!parse_key(""));
    CHECK(!parse_key(std::string(38, '0')));
    CHECK(!parse_key(std::string(39, '0') + "g"));
    CHECK(!parse_key(std::string(64, '0')));  // no salt
}

TEST_CASE("seal and open: layout, padding to 4 octets, every payload length 0..40") {
    for (std::size_t n = 0; n <= 40; ++n) {
        Sa out(0x1234, key128());
        Sa in(0x1234, key128());
        const auto plain = bytes(n, 3);
        auto sealed = out.seal(135, plain);
        REQUIRE(sealed);
        const auto& e = *sealed;
        CHECK(spi_of(e) == 0x1234);
        CHECK(e[4] == 0);
        CHECK(e[7] == 1);                                            // the first sequence number
        CHECK((e.size() - kHeaderLen - kIvLen - kIcvLen) % 4 == 0);  // RFC 4303 alignment
        CHECK(e.size() >= kMinLen + n);
        auto opened = in.open(e);
        REQUIRE(opened);
        CHECK(opened->next_header == 135);
        CHECK(opened->sequence == 1);
        CHECK(opened->payload == plain);
    }
}

TEST_CASE("AES-256-GCM keys work the same") {
    Sa out(7, parse_key(std::string(72, '5')).value());
    Sa in(7, parse_key(std::string(72, '5')).value());
    auto e = out.seal(135, bytes(24));
    REQUIRE(e);
    auto o = in.open(*e);
    REQUIRE(o);
    CHECK(o->payload == bytes(24));
}

TEST_CASE("anti-replay: a window of 64, moved only by authentic packets") {
    Sa out(1, key128());
    Sa in(1, key128());
    std::vector<std::vector<std::uint8_t>> sent;
    for (int i = 0; i < 100; ++i) {
        sent.push_back(out.seal(135, bytes(8)).value());
    }
    // In order, then each again: replayed.
    REQUIRE(in.open(sent[0]));
    CHECK(in.open(sent[0]).error() == Error::kReplayed);
    // Out of order within the window is fine, once.
    REQUIRE(in.open(sent[10]));
    REQUIRE(in.open(sent[5]));
    CHECK(in.open(sent[5]).error() == Error::kReplayed);
    REQUIRE(in.open(sent[99]));
    CHECK(in.last_sequence() == 100);
    // 100 - 64 = 36: sequence 36 (index 35) is left of the window.
    CHECK(in.open(sent[35]).error() == Error::kReplayed);
    REQUIRE(in.open(sent[40]));  // sequence 41: inside, not seen
    // A forged packet far ahead does not move the window.
    auto forged = out.seal(135, bytes(8)).value();
    forged[20] ^= 1;
    CHECK(in.open(forged).error() == Error::kAuthFailed);
    CHECK(in.last_sequence() == 100);
    REQUIRE(in.open(sent[50]));
    // Sequence number 0 is never sent.
    auto zero = sent[1];
    zero[4] = zero[5] = zero[6] = zero[7] = 0;
    CHECK(in.open(zero).error() == Error::kReplayed);
}

TEST_CASE("hostile: every truncation, every bit flip, wrong key or SPI never opens") {
    Sa out(0xabcdef01, key128());
    const auto e = out.seal(135, bytes(37)).value();
    for (std::size_t n = 0; n < e.size(); ++n) {
        Sa in(0xabcdef01, key128());
        CHECK(!in.open(std::span(e.data(), n)));
    }
    for (std::size_t i = 0; i < e.size(); ++i) {
        for (int b = 0; b < 8; ++b) {
            Sa in(0xabcdef01, key128());
            auto x = e;
            x[i] ^= static_cast<std::uint8_t>(1 << b);
            auto r = in.open(x);
            REQUIRE(!r);
            if (i < 4) {
                CHECK(r.error() == Error::kUnknownSpi);
            }
        }
    }
    Sa wrong(0xabcdef01, key128(9));
    CHECK(wrong.open(e).error() == Error::kAuthFailed);
    Sa other(0x1, key128());
    CHECK(other.open(e).error() == Error::kUnknownSpi);
}

TEST_CASE("hostile: authentic packets with impossible trailers are refused") {
    // A peer that has the key may still send any trailer: build such packets with OpenSSL
    // directly (the test's own encoder, not Sa::seal).
    auto raw = [](const Key& k, std::uint32_t spi, std::uint32_t seq,
                  const std::vector<std::uint8_t>& inner) {
        std::vector<std::uint8_t> out(kHeaderLen + kIvLen + inner.size() + kIcvLen);
        for (int i = 0; i < 4; ++i) {
            out[i] = static_cast<std::uint8_t>(spi >> (24 - 8 * i));
            out[4 + i] = static_cast<std::uint8_t>(seq >> (24 - 8 * i));
        }
        out[15] = 0x42;  // IV
        std::array<std::uint8_t, 12> nonce{};
        std::copy(k.salt.begin(), k.salt.end(), nonce.begin());
        std::copy(out.begin() + 8, out.begin() + 16, nonce.begin() + 4);
        EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
        int len = 0;
        EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), nullptr, nullptr, nullptr);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr);
        EVP_EncryptInit_ex(c, nullptr, nullptr, k.key.data(), nonce.data());
        EVP_EncryptUpdate(c, nullptr, &len, out.data(), 8);
        EVP_EncryptUpdate(c, out.data() + 16, &len, inner.data(), static_cast<int>(inner.size()));
        EVP_EncryptFinal_ex(c, out.data() + 16 + len, &len);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out.data() + out.size() - 16);
        EVP_CIPHER_CTX_free(c);
        return out;
    };
    const Key k = key128();
    {
        Sa in(3, k);  // a well-formed one from the test's encoder opens: the encoder is right
        auto o = in.open(raw(k, 3, 1, {0xaa, 0xbb, 0x01, 0x02, 0x02, 135}));
        REQUIRE(o);
        CHECK(o->payload == std::vector<std::uint8_t>{0xaa, 0xbb});
        CHECK(o->next_header == 135);
    }
    {
        Sa in(3, k);  // pad length beyond the payload
        CHECK(in.open(raw(k, 3, 1, {0x01, 0x02, 200, 135})).error() == Error::kBadPadding);
    }
    {
        Sa in(3, k);  // pad length exactly everything but the trailer: an empty payload
        auto o = in.open(raw(k, 3, 1, {0x01, 0x02, 2, 59}));
        REQUIRE(o);
        CHECK(o->payload.empty());
        CHECK(o->next_header == 59);
    }
    {
        Sa in(3, k);  // padding octets not 1, 2, 3 ...
        CHECK(in.open(raw(k, 3, 1, {0xaa, 0xbb, 0x01, 0x07, 0x02, 135})).error() ==
              Error::kBadPadding);
        // A refused packet does not move the window: the same number, well formed, opens.
        CHECK(in.open(raw(k, 3, 1, {0xaa, 0xbb, 0x01, 0x02, 0x02, 135})));
    }
}

TEST_CASE("outbound sequence numbers increase and end at 2^32 - 1") {
    Sa out(5, key128());
    for (std::uint32_t i = 1; i <= 3; ++i) {
        auto e = out.seal(135, bytes(4)).value();
        CHECK(e[7] == i);
    }
    CHECK(out.packets() == 3);
}
