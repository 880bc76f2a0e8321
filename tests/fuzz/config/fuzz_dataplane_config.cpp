// libFuzzer target: hag-dataplane's configuration file, text -> validated DataplaneConfig
// (ports, static sessions and their paths, addresses, MACs, listen addresses, reorder, EAL
// lcore lists), and the reorder settings derived from a valid one.
#include <google/protobuf/stubs/logging.h>

#include "fuzz_config.hpp"
#include "runtime/config.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    google::protobuf::SetLogHandler(nullptr);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 64 * 1024) {
        return 0;
    }
    hag::fuzz::check_config(data, size, [](std::string_view text, const std::string& file) {
        auto cfg = hag::dp::parse_dataplane_config(text, file);
        if (cfg) {
            (void)hag::dp::reorder_settings(*cfg);
        }
        return cfg;
    });
    return 0;
}
