// hag-control: the PMIPv6 LMA / MIPv6 home agent daemon.
//
// This build validates configuration files (--check-config); signalling I/O and the LMA
// processing arrive with issue 4's remaining parts (see docs/control.md).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>

#include "core/config.hpp"

int main(int argc, char** argv) {
    CLI::App app{"hag-control: PMIPv6 LMA / MIPv6 home agent of the hybrid access gateway"};
    std::string config_path = "/etc/hag/control.conf";
    bool check_only = false;
    app.add_option("-c,--config", config_path, "configuration file (protobuf text format)");
    app.add_flag("--check-config", check_only, "validate the configuration and exit");
    app.set_version_flag("--version", std::string("hag-control ") + HAG_VERSION);
    CLI11_PARSE(app, argc, argv);

    auto cfg = hag::control::load_control_config(config_path);
    if (!cfg) {
        for (const auto& e : cfg.error()) {
            std::fprintf(stderr, "%s\n", e.str().c_str());
        }
        std::fprintf(stderr, "hag-control: %zu error(s) in %s\n", cfg.error().size(),
                     config_path.c_str());
        return 1;
    }
    if (check_only) {
        std::printf(
            "%s: configuration OK (%d LMA address(es), %d prefix pool(s), %d subscriber(s), "
            "%d MAG(s))\n",
            config_path.c_str(), cfg->lma_addresses_size(), cfg->hnp_pools_size(),
            cfg->subscribers_size(), cfg->mags_size());
        return 0;
    }
    std::fprintf(stderr,
                 "hag-control: signalling is not implemented in this build yet; only "
                 "--check-config is available (see docs/control.md)\n");
    return 2;
}
