// ManagementServer over a unix socket: file mode, calls through a real channel, the watch
// stream, and server reflection (what grpcurl uses) without any .proto at hand.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "hag/v1/management.grpc.pb.h"
#include "mgmt/cache_backend.hpp"
#include "mgmt/convert.hpp"
#include "mgmt/server.hpp"

using namespace hag::control;
using namespace hag::control::mgmt;

namespace {

std::string temp_socket(const char* tag) {
    return (std::filesystem::temp_directory_path() /
            ("hag-mgmt-" + std::string(tag) + "-" + std::to_string(::getpid()) + ".sock"))
        .string();
}

Session one_session(const std::string& nai) {
    Session s;
    s.nai = nai;
    s.home_prefixes.push_back(*parse_prefix("2001:db8:42::/64"));
    Path p;
    p.bid = 1;
    p.mag_id = "mag-a";
    p.coa = *parse_coa("2001:db8:a::1");
    s.paths.push_back(p);
    return s;
}

std::chrono::system_clock::time_point in(int ms) {
    return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

}  // namespace

TEST_CASE("unix socket gets the configured mode and serves calls") {
    BindingCache cache;
    CacheBackend backend(cache, nullptr, [] { return Seconds{0}; });
    for (unsigned mode : {0660u, 0600u}) {
        const std::string path = temp_socket("mode");
        ServerOptions o;
        o.listen = "unix:" + path;
        o.socket_mode = mode;
        auto srv = ManagementServer::start(backend, o);
        REQUIRE(srv);
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 07777) == mode);

        auto stub = hag::v1::Management::NewStub(
            grpc::CreateChannel(o.listen, grpc::InsecureChannelCredentials()));
        grpc::ClientContext ctx;
        ctx.set_deadline(in(10000));
        hag::v1::VersionInfo v;
        REQUIRE(stub->GetVersion(&ctx, {}, &v).ok());
        CHECK(v.version() == HAG_VERSION);
        (*srv).reset();
        CHECK_FALSE(std::filesystem::exists(path));  // removed on shutdown
    }
}

TEST_CASE("bad listen addresses are reported") {
    BindingCache cache;
    CacheBackend backend(cache, nullptr, [] { return Seconds{0}; });
    for (const char* bad : {"unix:", "no-port-here", "unix:/nonexistent-dir-hag/x.sock"}) {
        ServerOptions o;
        o.listen = bad;
        auto srv = ManagementServer::start(backend, o);
        CHECK_FALSE(srv);
    }
}

TEST_CASE("WatchBindings streams additions, updates and removals") {
    BindingCache cache;
    CacheBackend backend(cache, nullptr, [] { return Seconds{0}; });
    backend.with_cache([](BindingCache& c) { return c.insert(one_session("old@example.net")); });
    const std::string path = temp_socket("watch");
    ServerOptions o;
    o.listen = "unix:" + path;
    auto srv = ManagementServer::start(backend, o);
    REQUIRE(srv);
    auto stub = hag::v1::Management::NewStub(
        grpc::CreateChannel(o.listen, grpc::InsecureChannelCredentials()));

    grpc::ClientContext ctx;
    ctx.set_deadline(in(30000));
    hag::v1::WatchBindingsRequest req;
    req.set_initial_snapshot(true);
    auto reader = stub->WatchBindings(&ctx, req);
    hag::v1::BindingEvent ev;
    REQUIRE(reader->Read(&ev));  // the snapshot
    CHECK(ev.kind() == hag::v1::BindingEvent::ADDED);
    CHECK(ev.binding().nai() == "old@example.net");

    // The subscription exists before the snapshot is sent, so these are all seen.
    backend.with_cache([](BindingCache& c) {
        auto s = one_session("new@example.net");
        s.home_prefixes[0] = *parse_prefix("2001:db8:43::/64");
        s.paths[0].bid = 2;
        return c.insert(s);
    });
    REQUIRE(backend.remove("old@example.net", 0));
    REQUIRE(reader->Read(&ev));
    CHECK(ev.kind() == hag::v1::BindingEvent::ADDED);
    CHECK(ev.binding().nai() == "new@example.net");
    CHECK(ev.binding().home_prefixes(0) == "2001:db8:43::/64");
    REQUIRE(reader->Read(&ev));
    CHECK(ev.kind() == hag::v1::BindingEvent::REMOVED);
    CHECK(ev.binding().nai() == "old@example.net");
    ctx.TryCancel();
    hag::v1::BindingEvent rest;
    while (reader->Read(&rest)) {
    }
    CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
}
