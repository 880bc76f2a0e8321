#include "etcd_policy.hpp"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "etcd/etcd_v3.grpc.pb.h"

namespace hag::control::store {

namespace {

class EtcdOverlayStore final : public OverlayStore {
  public:
    explicit EtcdOverlayStore(const EtcdOptions& o)
        : key_(policy_overlay_key(o.prefix)),
          endpoint_(o.endpoint),
          timeout_(o.timeout),
          kv_(etcdserverpb::KV::NewStub(etcd_channel(o))) {}

    Result<Stored, std::string> read() override {
        etcdserverpb::RangeRequest req;
        req.set_key(key_);
        etcdserverpb::RangeResponse resp;
        grpc::ClientContext ctx;
        deadline(ctx);
        if (auto s = kv_->Range(&ctx, req, &resp); !s.ok()) {
            return unexpected(failed("read", s));
        }
        Stored out;
        if (resp.kvs_size() == 0) {
            return out;  // no edits stored
        }
        const auto& kv = resp.kvs(0);
        if (!out.overlay.ParseFromString(kv.value())) {
            return unexpected(fmt::format("{}: {} bytes that are not a hag.v1.PolicyOverlay",
                                          where(), kv.value().size()));
        }
        out.revision = kv.mod_revision();
        return out;
    }

    Result<std::int64_t, WriteError> write(const v1::PolicyOverlay& o,
                                           std::int64_t expected) override {
        etcdserverpb::TxnRequest req;
        auto* c = req.add_compare();
        c->set_key(key_);
        c->set_target(etcdserverpb::Compare::MOD);
        c->set_result(etcdserverpb::Compare::EQUAL);
        c->set_mod_revision(expected);  // 0: the key must not exist
        auto* put = req.add_success()->mutable_request_put();
        put->set_key(key_);
        put->set_value(o.SerializeAsString());
        etcdserverpb::TxnResponse resp;
        grpc::ClientContext ctx;
        deadline(ctx);
        if (auto s = kv_->Txn(&ctx, req, &resp); !s.ok()) {
            return unexpected(WriteError{false, failed("write", s)});
        }
        if (!resp.succeeded()) {
            return unexpected(WriteError{true, where() + " changed since it was read"});
        }
        return resp.header().revision();  // the key's new mod_revision
    }

    [[nodiscard]] std::string where() const override {
        return fmt::format("etcd {} key {}", endpoint_, key_);
    }

  private:
    void deadline(grpc::ClientContext& ctx) const {
        ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
    }
    std::string failed(const char* what, const grpc::Status& s) const {
        return fmt::format("cannot {} {}: {} ({})", what, where(), s.error_message(),
                           static_cast<int>(s.error_code()));
    }

    std::string key_;
    std::string endpoint_;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<etcdserverpb::KV::Stub> kv_;
};

}  // namespace

std::string policy_overlay_key(const std::string& prefix) {
    return prefix + "p/overlay";
}

std::unique_ptr<OverlayStore> etcd_overlay_store(const EtcdOptions& o) {
    return std::make_unique<EtcdOverlayStore>(o);
}

PolicyPoller::PolicyPoller(PolicyEditor& editor, std::chrono::milliseconds interval)
    : editor_(editor), interval_(interval), thread_([this] { run(); }) {}

PolicyPoller::~PolicyPoller() {
    stop();
}

void PolicyPoller::stop() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void PolicyPoller::run() {
    bool failing = false;
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
        lock.unlock();
        auto r = editor_.refresh();
        if (r && *r) {
            adopted_.fetch_add(1, std::memory_order_relaxed);
            spdlog::info(
                "policy: adopted the run-time edits of another node from {} (policy "
                "version {})",
                editor_.where(), editor_.version());
        }
        if (r && failing) {
            spdlog::info("policy: {} answers again", editor_.where());
        }
        if (!r && r.error().unreadable) {
            read_errors_.fetch_add(1, std::memory_order_relaxed);
            if (!failing) {
                spdlog::warn("policy: {} (edits made at other nodes arrive when it answers)",
                             r.error().message);
            }
            failing = true;
        } else {
            failing = false;
            if (!r) {
                refused_.fetch_add(1, std::memory_order_relaxed);
                spdlog::error("policy: {}", r.error().message);
            }
        }
        lock.lock();
    }
}

void PolicyPoller::add_counters(std::map<std::string, std::uint64_t>& m) const {
    m["policy.cluster_adopted"] = adopted_.load(std::memory_order_relaxed);
    m["policy.cluster_refused"] = refused_.load(std::memory_order_relaxed);
    m["policy.cluster_read_errors"] = read_errors_.load(std::memory_order_relaxed);
}

}  // namespace hag::control::store
