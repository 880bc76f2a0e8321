// Shared by the configuration fuzz targets: a valid configuration, printed in text format and
// parsed again, must be valid again and equal (validation fills in defaults once and for all).
#pragma once

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace hag::fuzz {

inline void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

// parse(text, file) -> Result<Message, Errors>.
template <typename Parse>
void check_config(const std::uint8_t* data, std::size_t size, Parse&& parse) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto cfg = parse(text, "fuzz.conf");
    if (!cfg) {
        for (const auto& e : cfg.error()) {
            require(!e.str().empty());
        }
        return;
    }
    std::string printed;
    require(google::protobuf::TextFormat::PrintToString(*cfg, &printed));
    auto again = parse(printed, "again.conf");
    require(again.ok());
    require(google::protobuf::util::MessageDifferencer::Equals(*cfg, *again));
}

}  // namespace hag::fuzz
