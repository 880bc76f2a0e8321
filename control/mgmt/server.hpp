// Runs the management gRPC server (with server reflection) on "unix:/path" or "host:port".
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "hag/result.hpp"
#include "mgmt/service.hpp"

namespace hag::control::mgmt {

struct ServerOptions {
    std::string listen = "unix:/run/hag/control.sock";
    unsigned socket_mode = 0660;  // unix socket file permissions (access control)
    // TCP only: TLS with client certificates (all three PEM files, or none = plaintext). Clients
    // must present a certificate that chains to one of tls_client_ca's certificates.
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_client_ca_file;
};

class ManagementServer {
  public:
    // Starts listening; the error string says why not (bad address, bind failure, chmod).
    static Result<std::unique_ptr<ManagementServer>, std::string> start(Backend& backend,
                                                                        const ServerOptions& o);
    ~ManagementServer();
    ManagementServer(const ManagementServer&) = delete;
    ManagementServer& operator=(const ManagementServer&) = delete;

    void shutdown();
    void wait() { server_->Wait(); }
    // The bound TCP port (0 for unix sockets).
    [[nodiscard]] int port() const noexcept { return port_; }
    // True when TCP clients must present a valid certificate.
    [[nodiscard]] bool tls() const noexcept { return tls_; }

    ManagementServer(Backend& backend, std::string unix_path);

  private:
    ManagementService service_;
    std::unique_ptr<grpc::Server> server_;
    std::string unix_path_;
    int port_ = 0;
    bool tls_ = false;
};

}  // namespace hag::control::mgmt
