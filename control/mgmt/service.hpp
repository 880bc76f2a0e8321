// hag.v1.Management service: validates requests and answers them from a Backend.
#pragma once

#include <atomic>
#include <chrono>

#include "hag/v1/management.grpc.pb.h"
#include "mgmt/backend.hpp"

namespace hag::control::mgmt {

inline constexpr std::uint32_t kDefaultPageSize = 100;
inline constexpr std::uint32_t kMaxPageSize = 10000;
// Events buffered per watcher; a watcher that falls further behind is ended with
// RESOURCE_EXHAUSTED (it can reconnect with initial_snapshot).
inline constexpr std::size_t kWatchQueueLimit = 65536;

class ManagementService final : public hag::v1::Management::Service {
  public:
    explicit ManagementService(Backend& backend);

    grpc::Status GetVersion(grpc::ServerContext*, const hag::v1::GetVersionRequest*,
                            hag::v1::VersionInfo* out) override;
    grpc::Status ListBindings(grpc::ServerContext*, const hag::v1::ListBindingsRequest* req,
                              hag::v1::ListBindingsResponse* out) override;
    grpc::Status GetBinding(grpc::ServerContext*, const hag::v1::GetBindingRequest* req,
                            hag::v1::Binding* out) override;
    grpc::Status DeleteBinding(grpc::ServerContext*, const hag::v1::DeleteBindingRequest* req,
                               hag::v1::DeleteBindingResponse* out) override;
    grpc::Status WatchBindings(grpc::ServerContext* ctx, const hag::v1::WatchBindingsRequest* req,
                               grpc::ServerWriter<hag::v1::BindingEvent>* writer) override;
    grpc::Status GetCounters(grpc::ServerContext*, const hag::v1::GetCountersRequest*,
                             hag::v1::Counters* out) override;
    grpc::Status GetDataplaneSync(grpc::ServerContext*, const hag::v1::GetDataplaneSyncRequest*,
                                  hag::v1::DataplaneSync* out) override;
    grpc::Status GetPolicy(grpc::ServerContext*, const hag::v1::GetPolicyRequest* req,
                           hag::v1::PolicyView* out) override;
    grpc::Status EvaluatePolicy(grpc::ServerContext*, const hag::v1::EvaluatePolicyRequest* req,
                                hag::v1::PolicyDecision* out) override;
    grpc::Status SetLogLevel(grpc::ServerContext*, const hag::v1::SetLogLevelRequest* req,
                             hag::v1::LogLevelReply* out) override;
    grpc::Status EditPolicy(grpc::ServerContext*, const hag::v1::EditPolicyRequest* req,
                            hag::v1::EditPolicyReply* out) override;

    // Ends every WatchBindings stream (server shutdown).
    void stop() { stopping_ = true; }

  private:
    void add_placement(const std::string& nai, hag::v1::Binding* out);

    Backend& backend_;
    std::chrono::steady_clock::time_point started_;
    std::atomic<bool> stopping_{false};
};

}  // namespace hag::control::mgmt
