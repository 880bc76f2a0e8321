#include "hag/esp/esp.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace hag::esp {
namespace {

void put32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t get32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

}  // namespace

struct Sa::Cipher {
    struct Free {
        void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
    };
    std::unique_ptr<EVP_CIPHER_CTX, Free> ctx{EVP_CIPHER_CTX_new()};
    const EVP_CIPHER* algo = nullptr;
};

std::string_view to_string(Error e) noexcept {
    switch (e) {
        case Error::kTruncated:
            return "truncated";
        case Error::kUnknownSpi:
            return "unknown SPI";
        case Error::kReplayed:
            return "replayed";
        case Error::kAuthFailed:
            return "authentication failed";
        case Error::kBadPadding:
            return "bad padding";
        case Error::kSequenceExhausted:
            return "sequence numbers exhausted";
        case Error::kCrypto:
            return "crypto library error";
    }
    return "unknown";
}

Result<Key, std::string> parse_key(std::string_view hex) {
    if (hex.starts_with("0x") || hex.starts_with("0X")) {
        hex.remove_prefix(2);
    }
    if (hex.size() != 2 * (16 + kSaltLen) && hex.size() != 2 * (32 + kSaltLen)) {
        return unexpected(std::string(
            "an AES-GCM key is 40 or 72 hex digits (16 or 32 octets of key, then 4 of salt)"));
    }
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = hex_digit(hex[i]);
        const int lo = hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return unexpected(std::string("a key has hex digits only"));
        }
        bytes.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    Key k;
    k.key.assign(bytes.begin(), bytes.end() - kSaltLen);
    std::copy(bytes.end() - kSaltLen, bytes.end(), k.salt.begin());
    return k;
}

std::uint32_t spi_of(std::span<const std::uint8_t> esp) noexcept {
    return esp.size() < 4 ? 0 : get32(esp.data());
}

Sa::Sa(std::uint32_t spi, Key key)
    : spi_(spi), key_(std::move(key)), cipher_(std::make_unique<Cipher>()) {
    cipher_->algo = key_.key.size() == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
}
Sa::~Sa() = default;
Sa::Sa(Sa&&) noexcept = default;
Sa& Sa::operator=(Sa&&) noexcept = default;

Result<std::vector<std::uint8_t>, Error> Sa::seal(std::uint8_t next_header,
                                                  std::span<const std::uint8_t> plaintext) {
    if (seq_ == UINT32_MAX) {
        return unexpected(Error::kSequenceExhausted);
    }
    const std::uint32_t seq = ++seq_;
    // Padding so that payload + pad length + next header end on a 4-octet boundary.
    const std::size_t pad = (4 - (plaintext.size() + 2) % 4) % 4;
    const std::size_t inner = plaintext.size() + pad + 2;
    std::vector<std::uint8_t> out(kHeaderLen + kIvLen + inner + kIcvLen);
    put32(&out[0], spi_);
    put32(&out[4], seq);
    const std::uint64_t iv = seq;  // unique per packet under this key
    for (int i = 0; i < 8; ++i) {
        out[8 + i] = static_cast<std::uint8_t>(iv >> (56 - 8 * i));
    }
    std::vector<std::uint8_t> clear(plaintext.begin(), plaintext.end());
    for (std::size_t i = 1; i <= pad; ++i) {
        clear.push_back(static_cast<std::uint8_t>(i));
    }
    clear.push_back(static_cast<std::uint8_t>(pad));
    clear.push_back(next_header);

    std::array<std::uint8_t, kSaltLen + kIvLen> nonce{};
    std::copy(key_.salt.begin(), key_.salt.end(), nonce.begin());
    std::copy(&out[8], &out[16], nonce.begin() + kSaltLen);
    EVP_CIPHER_CTX* c = cipher_->ctx.get();
    int len = 0;
    if (c == nullptr || EVP_EncryptInit_ex(c, cipher_->algo, nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) !=
            1 ||
        EVP_EncryptInit_ex(c, nullptr, nullptr, key_.key.data(), nonce.data()) != 1 ||
        EVP_EncryptUpdate(c, nullptr, &len, out.data(), kHeaderLen) != 1 ||
        EVP_EncryptUpdate(c, &out[kHeaderLen + kIvLen], &len, clear.data(),
                          static_cast<int>(clear.size())) != 1 ||
        EVP_EncryptFinal_ex(c, &out[kHeaderLen + kIvLen] + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kIcvLen, &out[out.size() - kIcvLen]) != 1) {
        return unexpected(Error::kCrypto);
    }
    ++packets_;
    return out;
}

Result<Sa::Opened, Error> Sa::open(std::span<const std::uint8_t> esp) {
    if (esp.size() < kMinLen) {
        return unexpected(Error::kTruncated);
    }
    if (get32(esp.data()) != spi_) {
        return unexpected(Error::kUnknownSpi);
    }
    const std::uint32_t seq = get32(esp.data() + 4);
    // Anti-replay, before the (costlier) ICV check; the window moves only after it.
    if (seq == 0) {
        return unexpected(Error::kReplayed);  // never sent (the counter starts at 1)
    }
    if (seq <= seq_) {
        const std::uint32_t back = seq_ - seq;
        if (back >= 64 || (window_ >> back & 1U) != 0) {
            return unexpected(Error::kReplayed);
        }
    }
    const std::size_t inner = esp.size() - kHeaderLen - kIvLen - kIcvLen;
    std::vector<std::uint8_t> clear(inner);
    std::array<std::uint8_t, kSaltLen + kIvLen> nonce{};
    std::copy(key_.salt.begin(), key_.salt.end(), nonce.begin());
    std::copy(esp.begin() + 8, esp.begin() + 16, nonce.begin() + kSaltLen);
    std::array<std::uint8_t, kIcvLen> tag{};
    std::copy(esp.end() - kIcvLen, esp.end(), tag.begin());
    EVP_CIPHER_CTX* c = cipher_->ctx.get();
    int len = 0;
    if (c == nullptr || EVP_DecryptInit_ex(c, cipher_->algo, nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) !=
            1 ||
        EVP_DecryptInit_ex(c, nullptr, nullptr, key_.key.data(), nonce.data()) != 1 ||
        EVP_DecryptUpdate(c, nullptr, &len, esp.data(), kHeaderLen) != 1 ||
        EVP_DecryptUpdate(c, clear.data(), &len, esp.data() + kHeaderLen + kIvLen,
                          static_cast<int>(inner)) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kIcvLen, tag.data()) != 1) {
        return unexpected(Error::kCrypto);
    }
    if (EVP_DecryptFinal_ex(c, clear.data() + len, &len) != 1) {
        return unexpected(Error::kAuthFailed);
    }
    const std::uint8_t next = clear[inner - 1];
    const std::uint8_t pad = clear[inner - 2];
    if (static_cast<std::size_t>(pad) + 2 > inner) {
        return unexpected(Error::kBadPadding);
    }
    const std::size_t payload_len = inner - 2 - pad;
    for (std::size_t i = 0; i < pad; ++i) {
        if (clear[payload_len + i] != static_cast<std::uint8_t>(i + 1)) {
            return unexpected(Error::kBadPadding);
        }
    }
    // Authentic: move the window.
    if (seq > seq_) {
        const std::uint32_t shift = seq - seq_;
        window_ = shift >= 64 ? 1U : (window_ << shift) | 1U;
        seq_ = seq;
    } else {
        window_ |= std::uint64_t{1} << (seq_ - seq);
    }
    ++packets_;
    clear.resize(payload_len);
    return Opened{next, seq, std::move(clear)};
}

}  // namespace hag::esp
