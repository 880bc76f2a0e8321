#include "mgmt/server.hpp"

#include <fmt/format.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hag::control::mgmt {

namespace {

Result<std::string, std::string> read_pem(const std::string& path, const char* what) {
    std::ifstream in(path);
    if (!in) {
        return unexpected(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
    }
    std::ostringstream s;
    s << in.rdbuf();
    if (s.str().find("-----BEGIN ") == std::string::npos) {
        return unexpected(fmt::format("{} {}: no PEM data", what, path));
    }
    return s.str();
}

}  // namespace

ManagementServer::ManagementServer(Backend& backend, std::string unix_path)
    : service_(backend), unix_path_(std::move(unix_path)) {}

Result<std::unique_ptr<ManagementServer>, std::string> ManagementServer::start(
    Backend& backend, const ServerOptions& o) {
    std::string unix_path;
    if (o.listen.rfind("unix:", 0) == 0) {
        unix_path = o.listen.substr(5);
        if (unix_path.empty()) {
            return unexpected(std::string("listen: empty unix socket path"));
        }
        if (unix_path.size() >= 108) {
            return unexpected("listen: unix socket path too long: " + unix_path);
        }
        // A stale socket of a previous run would make bind fail.
        struct stat st {};
        if (::lstat(unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
            ::unlink(unix_path.c_str());
        }
    } else if (o.listen.find(':') == std::string::npos) {
        return unexpected("listen: '" + o.listen + "' is neither unix:/path nor host:port");
    }
    static const bool reflection_registered = [] {
        grpc::reflection::InitProtoReflectionServerBuilderPlugin();
        return true;
    }();
    (void)reflection_registered;

    auto srv = std::make_unique<ManagementServer>(backend, unix_path);
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    const bool want_tls =
        !o.tls_cert_file.empty() || !o.tls_key_file.empty() || !o.tls_client_ca_file.empty();
    if (want_tls && unix_path.empty()) {
        auto cert = read_pem(o.tls_cert_file, "TLS certificate");
        auto key = read_pem(o.tls_key_file, "TLS key");
        auto ca = read_pem(o.tls_client_ca_file, "TLS client CA");
        for (const auto* r : {&cert, &key, &ca}) {
            if (!*r) {
                return unexpected(r->error());
            }
        }
        // Mutual TLS: a client without a certificate signed by the client CA is refused in
        // the handshake, before any method runs.
        grpc::SslServerCredentialsOptions so(
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
        so.pem_root_certs = *ca;
        so.pem_key_cert_pairs.push_back({*key, *cert});
        creds = grpc::SslServerCredentials(so);
        srv->tls_ = true;
    }
    grpc::ServerBuilder b;
    // The unix socket is created with the process umask; tighten it before chmod sets the mode.
    const mode_t old_umask = unix_path.empty() ? 0 : ::umask(0177);
    b.AddListeningPort(o.listen, creds, &srv->port_);
    b.RegisterService(&srv->service_);
    srv->server_ = b.BuildAndStart();
    if (!unix_path.empty()) {
        ::umask(old_umask);
    }
    if (!srv->server_) {
        return unexpected("cannot listen on " + o.listen);
    }
    if (!unix_path.empty()) {
        if (::chmod(unix_path.c_str(), o.socket_mode) != 0) {
            const std::string err = std::strerror(errno);
            srv->shutdown();
            return unexpected("chmod " + unix_path + ": " + err);
        }
        srv->port_ = 0;
    }
    return srv;
}

void ManagementServer::shutdown() {
    if (server_) {
        service_.stop();
        server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    }
}

ManagementServer::~ManagementServer() {
    shutdown();
    if (server_) {
        server_->Wait();
    }
    if (!unix_path_.empty()) {
        ::unlink(unix_path_.c_str());
    }
}

}  // namespace hag::control::mgmt
