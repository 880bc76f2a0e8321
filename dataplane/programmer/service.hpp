// The DataplaneProgrammer gRPC service (hag/v1/dataplane.proto) and its server on a unix socket
// ("unix:/run/hag/dataplane.sock", file mode 0660) or TCP ("host:port").
//
// Handlers run on gRPC's threads and never touch a table: Apply, Resync, Digest and
// ListSessions go to the main lcore through the MainLoopQueue and wait for its answer; Status
// reads the counters through the telemetry Collector (thread-safe) besides.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hag/result.hpp"
#include "hag/v1/dataplane.grpc.pb.h"
#include "programmer/main_loop_queue.hpp"
#include "programmer/programmer.hpp"

namespace hag::dp {

// Named counters for DpStatusReply.counters (names as in /metrics, labels included).
using CounterSource = std::function<std::vector<std::pair<std::string, std::uint64_t>>()>;

class ProgrammerService final : public v1::DataplaneProgrammer::Service {
  public:
    ProgrammerService(Programmer& programmer, MainLoopQueue& queue, CounterSource counters);

    grpc::Status Apply(grpc::ServerContext* ctx, const v1::ApplyRequest* req,
                       v1::ApplyReply* reply) override;
    grpc::Status Resync(grpc::ServerContext* ctx, grpc::ServerReader<v1::ResyncChunk>* reader,
                        v1::ApplyReply* reply) override;
    grpc::Status Digest(grpc::ServerContext* ctx, const v1::DigestRequest* req,
                        v1::DigestReply* reply) override;
    grpc::Status Status(grpc::ServerContext* ctx, const v1::DpStatusRequest* req,
                        v1::DpStatusReply* reply) override;
    grpc::Status ListSessions(grpc::ServerContext* ctx, const v1::DpListRequest* req,
                              v1::DpListReply* reply) override;
    // Changes spdlog's level on the calling gRPC thread: the level is atomic, so the lcores
    // see it at their next log call without a trip through the main loop.
    grpc::Status SetLogLevel(grpc::ServerContext* ctx, const v1::DpLogLevelRequest* req,
                             v1::DpLogLevelReply* reply) override;

  private:
    grpc::Status rejected_early(grpc::StatusCode code, std::string message);

    Programmer& programmer_;
    MainLoopQueue& queue_;
    CounterSource counters_;
    std::chrono::steady_clock::time_point started_;
};

class ProgrammerServer {
  public:
    // listen: "unix:/path" (socket file created with `socket_mode`, a stale socket replaced,
    // the parent directory created if missing) or "host:port".
    static Result<std::unique_ptr<ProgrammerServer>, std::string> start(const std::string& listen,
                                                                        unsigned socket_mode,
                                                                        Programmer& programmer,
                                                                        MainLoopQueue& queue,
                                                                        CounterSource counters);
    ~ProgrammerServer();
    ProgrammerServer(const ProgrammerServer&) = delete;
    ProgrammerServer& operator=(const ProgrammerServer&) = delete;

    ProgrammerServer(Programmer& programmer, MainLoopQueue& queue, CounterSource counters,
                     std::string unix_path);

  private:
    ProgrammerService service_;
    std::unique_ptr<grpc::Server> server_;
    std::string unix_path_;
};

}  // namespace hag::dp
