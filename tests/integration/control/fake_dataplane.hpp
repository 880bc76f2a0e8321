// A fake hag-dataplane for tests of hag-control's pusher: serves DataplaneProgrammer
// (proto/hag/v1/dataplane.proto) from an in-memory table with the contract's checks (generations
// strictly increasing, all-or-nothing batches, removes of unknown ids refused, resync replaces
// the whole table) and records what it was sent. Test hooks: hold Apply calls (back-pressure),
// refuse sessions whose NAI contains a string.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hag/v1/dataplane.grpc.pb.h"

namespace hag::test {

class FakeDataplane final : public v1::DataplaneProgrammer::Service {
  public:
    explicit FakeDataplane(std::uint32_t max_sessions = 1'000'000) : max_sessions_(max_sessions) {}

    grpc::Status Apply(grpc::ServerContext*, const v1::ApplyRequest* req,
                       v1::ApplyReply* out) override;
    grpc::Status Resync(grpc::ServerContext*, grpc::ServerReader<v1::ResyncChunk>* reader,
                        v1::ApplyReply* out) override;
    grpc::Status Digest(grpc::ServerContext*, const v1::DigestRequest*,
                        v1::DigestReply* out) override;
    grpc::Status Status(grpc::ServerContext*, const v1::DpStatusRequest*,
                        v1::DpStatusReply* out) override;
    grpc::Status ListSessions(grpc::ServerContext*, const v1::DpListRequest* req,
                              v1::DpListReply* out) override;

    struct Snapshot {
        std::uint64_t generation = 0;
        std::map<std::uint32_t, v1::DpSession> sessions;
        std::vector<v1::ApplyRequest> applied;  // every acknowledged batch, in order
        std::uint64_t resyncs = 0;
        std::uint64_t rejected = 0;
        std::uint64_t digest = 0;                             // sessions' and profiles'
        std::map<std::string, v1::DpPolicyProfile> profiles;  // flow policy profiles held
    };
    Snapshot snapshot() const;

    // While held, Apply calls wait (counted in applies_waiting()) until release().
    void hold();
    void release();
    std::size_t applies_waiting() const;
    // Upserts of sessions whose NAI contains `s` are refused (INVALID_ARGUMENT).
    void refuse_nai(std::string s);
    // Called (under no lock) with one line per acknowledged batch or resync.
    void on_event(std::function<void(const std::string&)> f) { event_ = std::move(f); }

  private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool held_ = false;
    std::size_t waiting_ = 0;
    std::string refuse_;
    std::uint32_t max_sessions_;
    std::uint64_t generation_ = 0;
    std::map<std::uint32_t, v1::DpSession> sessions_;
    std::map<std::string, v1::DpPolicyProfile> profiles_;
    std::vector<v1::ApplyRequest> applied_;
    std::uint64_t batches_ = 0;
    std::uint64_t rejected_ = 0;
    std::uint64_t resyncs_ = 0;
    std::function<void(const std::string&)> event_;

    grpc::Status check(const v1::DpSession& s) const;
};

// Starts a server for `svc` on `listen` ("unix:/path": a stale socket file is removed first).
std::unique_ptr<grpc::Server> start_fake_dataplane(FakeDataplane& svc, const std::string& listen);

}  // namespace hag::test
