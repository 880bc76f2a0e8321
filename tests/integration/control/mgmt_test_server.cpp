// A management server over an in-process binding cache seeded with test sessions, for
// integration tests of hagctl and reflection that need no signalling:
//   mgmt-test-server LISTEN [SESSIONS [TLS_CERT TLS_KEY TLS_CLIENT_CA]]
// Prints "ready" on stdout once listening, then "port N" for a TCP listen; exits when stdin
// closes.
#include <cstdio>
#include <iostream>
#include <string>

#include "mgmt/cache_backend.hpp"
#include "mgmt/convert.hpp"
#include "mgmt/server.hpp"

using namespace hag::control;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s LISTEN [SESSIONS]\n", argv[0]);
        return 1;
    }
    const int n = argc > 2 ? std::stoi(argv[2]) : 3;
    BindingCache cache;
    mgmt::CacheBackend backend(
        cache, [](const Session&, const Path&) { return true; }, [] { return Seconds{0}; });
    backend.with_cache([&](BindingCache& c) {
        for (int i = 0; i < n; ++i) {
            Session s;
            s.nai = "user" + std::to_string(i) + "@example.net";
            s.home_prefixes.push_back(
                *mgmt::parse_prefix("2001:db8:" + std::to_string(1000 + i) + "::/64"));
            s.uplink_gre_key = 0x100 + static_cast<std::uint32_t>(i);
            for (int b = 1; b <= 2; ++b) {
                Path p;
                p.bid = static_cast<std::uint16_t>(b);
                p.mag_id = "mag" + std::to_string(i);
                p.coa = *mgmt::parse_coa("2001:db8:ff0" + std::to_string(b) +
                                         "::" + std::to_string(i + 1));
                p.access_technology = b == 1 ? 3 : 8;
                p.downlink_gre_key = 0x1000 * b + static_cast<std::uint32_t>(i);
                p.expires_at = 3600;
                s.paths.push_back(p);
            }
            if (!c.insert(s)) {
                return 1;
            }
        }
        return 0;
    });
    mgmt::ServerOptions o;
    o.listen = argv[1];
    if (argc > 5) {
        o.tls_cert_file = argv[3];
        o.tls_key_file = argv[4];
        o.tls_client_ca_file = argv[5];
    }
    auto srv = mgmt::ManagementServer::start(backend, o);
    if (!srv) {
        std::fprintf(stderr, "mgmt-test-server: %s\n", srv.error().c_str());
        return 1;
    }
    std::printf("ready\n");
    if ((*srv)->port() != 0) {
        std::printf("port %d\n", (*srv)->port());
    }
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    return 0;
}
