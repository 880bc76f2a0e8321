// libFuzzer target: hag-control's configuration file, text -> validated ControlConfig (the
// protobuf text parser with file:line errors, every field check, defaults, and the flow policy
// compile of proto/hag/v1/policy_config.cpp). Also builds what the LMA derives from a valid one.
#include <google/protobuf/stubs/logging.h>

#include "core/config.hpp"
#include "fuzz_config.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    google::protobuf::SetLogHandler(nullptr);  // the text parser's own complaints: not needed
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 64 * 1024) {
        return 0;
    }
    hag::fuzz::check_config(data, size, [](std::string_view text, const std::string& file) {
        auto cfg = hag::control::parse_control_config(text, file);
        if (cfg) {
            const hag::control::SubscriberIndex subs(*cfg);
            for (const auto& s : cfg->subscribers()) {
                hag::fuzz::require(subs.find(s.nai()) != nullptr);
                (void)hag::control::effective_profile(*cfg, s.nai());
            }
        }
        return cfg;
    });
    return 0;
}
