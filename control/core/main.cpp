// hag-control: the PMIPv6 LMA / MIPv6 home agent daemon.
//
// Loads the configuration, binds the signalling sockets and the management API, and runs the
// LMA until SIGTERM/SIGINT (SIGHUP reloads the configuration). docs/control.md has the details.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>

#include "core/config.hpp"
#include "core/daemon.hpp"
#include "hag/log/log.hpp"

int main(int argc, char** argv) {
    CLI::App app{"hag-control: PMIPv6 LMA / MIPv6 home agent of the hybrid access gateway"};
    std::string config_path = "/etc/hag/control.conf";
    bool check_only = false;
    app.add_option("-c,--config", config_path, "configuration file (protobuf text format)");
    app.add_flag("--check-config", check_only, "validate the configuration and exit");
    std::string listen;
    app.add_option("--listen", listen,
                   "management API address, overrides management_socket (unix:/path or host:port)");
    std::uint32_t udp_port = 0;
    app.add_option("--udp-port", udp_port, "UDP port for IPv4 signalling (default 5436)")
        ->check(CLI::Range(1, 65535));
    std::string log_level;
    app.add_option("--log-level", log_level, "overrides log.level of the configuration");
    std::string log_format;
    app.add_option("--log-format", log_format,
                   "overrides log.format of the configuration: text or json (one JSON object per "
                   "line)")
        ->check(CLI::IsMember({"text", "json"}));
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
    const std::string level_name = log_level.empty() ? cfg->log().level() : log_level;
    auto level = hag::log::parse_level(level_name);
    if (!level) {
        std::fprintf(stderr, "hag-control: --log-level: %s\n", level.error().c_str());
        return 2;
    }
    const auto format =
        hag::log::parse_format(log_format.empty() ? cfg->log().format() : log_format).value();
    hag::log::init("hag-control", *level, format);
    hag::control::DaemonOptions opts;
    opts.config_path = config_path;
    if (!listen.empty()) {
        opts.listen = listen;
    }
    if (udp_port != 0) {
        opts.udp_port = udp_port;
    }
    auto daemon = hag::control::Daemon::start(*std::move(cfg), std::move(opts));
    if (!daemon) {
        std::fprintf(stderr, "hag-control: %s\n", daemon.error().c_str());
        return 1;
    }
    return (*daemon)->run();
}
