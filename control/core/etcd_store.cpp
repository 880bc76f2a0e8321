#include "etcd_store.hpp"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster_record.hpp"
#include "etcd/etcd_v3.grpc.pb.h"
#include "store_format.hpp"

namespace hag::control::store {

namespace {

constexpr std::int64_t kLeaseBucketSeconds = 10;
constexpr std::size_t kOpsPerTxn = 100;  // etcd refuses more than 128 (--max-txn-ops)
constexpr std::int64_t kRangePage = 1000;

std::int64_t wall_now() {
    using namespace std::chrono;
    return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

// The first key after every key that starts with `p`.
std::string prefix_end(std::string p) {
    while (!p.empty()) {
        auto& c = p.back();
        if (static_cast<unsigned char>(c) < 0xff) {
            ++c;
            return p;
        }
        p.pop_back();
    }
    return std::string(1, '\0');  // every key
}

std::string status_text(const grpc::Status& s) {
    return fmt::format("etcd: {} ({})", s.error_message(), static_cast<int>(s.error_code()));
}

}  // namespace

std::shared_ptr<grpc::Channel> etcd_channel(const EtcdOptions& o) {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (!o.tls_ca_pem.empty()) {
        grpc::SslCredentialsOptions so;
        so.pem_root_certs = o.tls_ca_pem;
        so.pem_cert_chain = o.tls_cert_pem;
        so.pem_private_key = o.tls_key_pem;
        creds = grpc::SslCredentials(so);
    } else {
        creds = grpc::InsecureChannelCredentials();
    }
    return grpc::CreateChannel(o.endpoint, creds);
}

struct EtcdStore::Rpc {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::chrono::milliseconds timeout;

    void deadline(grpc::ClientContext& c) const {
        c.set_deadline(std::chrono::system_clock::now() + timeout);
    }
};

EtcdStore::EtcdStore(EtcdOptions o, std::unique_ptr<Rpc> rpc)
    : opt_(std::move(o)), node_(opt_.node), rpc_(std::move(rpc)) {}

EtcdStore::~EtcdStore() = default;

Result<std::unique_ptr<EtcdStore>, std::string> EtcdStore::open(const EtcdOptions& o,
                                                                Recovery& rec) {
    if (!valid_node_name(o.node)) {
        return unexpected(fmt::format("node name '{}' is not 1-64 printable characters", o.node));
    }
    auto rpc = std::make_unique<Rpc>();
    rpc->channel = etcd_channel(o);
    rpc->kv = etcdserverpb::KV::NewStub(rpc->channel);
    rpc->lease = etcdserverpb::Lease::NewStub(rpc->channel);
    rpc->timeout = o.timeout;
    std::unique_ptr<EtcdStore> st(new EtcdStore(o, std::move(rpc)));

    // This node's restart counter.
    {
        etcdserverpb::RangeRequest req;
        req.set_key(node_key(o.prefix, o.node));
        etcdserverpb::RangeResponse resp;
        grpc::ClientContext ctx;
        st->rpc_->deadline(ctx);
        if (auto s = st->rpc_->kv->Range(&ctx, req, &resp); !s.ok()) {
            return unexpected(
                fmt::format("cannot read from etcd at {}: {}", o.endpoint, status_text(s)));
        }
        if (resp.kvs_size() == 1 && resp.kvs(0).value().size() == 4) {
            const auto& v = resp.kvs(0).value();
            std::uint32_t c = 0;
            for (int i = 3; i >= 0; --i) {
                c = (c << 8) | static_cast<std::uint8_t>(v[static_cast<std::size_t>(i)]);
            }
            rec.restart_counter = c;
        }
    }
    // The bindings this node served, page by page.
    const std::string first = binding_key(o.prefix, "");
    const std::string end = prefix_end(first);
    std::string from = first;
    for (;;) {
        etcdserverpb::RangeRequest req;
        req.set_key(from);
        req.set_range_end(end);
        req.set_limit(kRangePage);
        etcdserverpb::RangeResponse resp;
        grpc::ClientContext ctx;
        st->rpc_->deadline(ctx);
        if (auto s = st->rpc_->kv->Range(&ctx, req, &resp); !s.ok()) {
            return unexpected(fmt::format("cannot read bindings from etcd at {}: {}", o.endpoint,
                                          status_text(s)));
        }
        for (const auto& kv : resp.kvs()) {
            ++rec.log_records;
            const auto& v = kv.value();
            auto r = decode_value(std::span<const std::uint8_t>(
                reinterpret_cast<const std::uint8_t*>(v.data()), v.size()));
            if (!r) {
                rec.warnings.push_back(fmt::format("key {}: {}", kv.key(), r.error()));
                continue;
            }
            if (binding_key(o.prefix, r->session.nai) != kv.key()) {
                rec.warnings.push_back(
                    fmt::format("key {}: holds subscriber {}", kv.key(), r->session.nai));
                continue;
            }
            if (r->node != o.node) {
                if (rec.keep_foreign && rec.keep_foreign(r->session)) {
                    rec.foreign.push_back(std::move(r->session));  // held here (Lma)
                }
                continue;  // another node's
            }
            st->meta_[r->session.nai] = Meta{kv.mod_revision(), r->anchor};
            rec.sessions.push_back(std::move(r->session));
        }
        if (!resp.more() || resp.kvs_size() == 0) {
            break;
        }
        from = resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0');
    }
    // The restart counter is kept (MAGs need not re-register) only when this node had bindings.
    rec.snapshot_found = rec.restart_counter.has_value() && !rec.sessions.empty();
    return st;
}

void EtcdStore::put(const Session& s, std::int64_t to_wall) {
    Op op;
    encode_put(s, to_wall, op.value);  // the value's header is added at commit
    op.expires_wall = s.expires_at() + to_wall;
    std::lock_guard lk(mu_);
    if (!s.remote_anchors.empty()) {
        // Distributed anchoring: this node anchors the binding's new prefix; the old ones'
        // anchors are in the record's remote anchors.
        meta_[s.nai].anchor = node_;
    }
    buffer_[s.nai] = std::move(op);
}

void EtcdStore::remove(std::string_view nai) {
    std::lock_guard lk(mu_);
    if (auto it = forget_.find(nai); it != forget_.end()) {
        forget_.erase(it);  // taken over by another node: not ours to delete
        return;
    }
    Op op;
    op.del = true;
    buffer_[std::string(nai)] = std::move(op);
}

bool EtcdStore::pending() const {
    std::lock_guard lk(mu_);
    return !buffer_.empty();
}

Result<std::int64_t, std::string> EtcdStore::lease_for(std::int64_t expires_wall,
                                                       std::int64_t now) {
    const std::int64_t bucket = (expires_wall / kLeaseBucketSeconds + 1) * kLeaseBucketSeconds;
    if (auto it = leases_.find(bucket); it != leases_.end()) {
        return it->second;
    }
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(std::max<std::int64_t>(bucket - now + 1, 5));
    etcdserverpb::LeaseGrantResponse resp;
    grpc::ClientContext ctx;
    rpc_->deadline(ctx);
    ++requests_;
    if (auto s = rpc_->lease->LeaseGrant(&ctx, req, &resp); !s.ok()) {
        ++request_errors_;
        return unexpected("lease grant: " + status_text(s));
    }
    if (!resp.error().empty()) {
        ++request_errors_;
        return unexpected("lease grant: " + resp.error());
    }
    ++lease_grants_;
    leases_[bucket] = resp.id();
    // Buckets that ended are of no use any more (their leases expire by themselves).
    leases_.erase(leases_.begin(), leases_.lower_bound(now));
    return resp.id();
}

Result<void, std::string> EtcdStore::commit() {
    std::lock_guard ck(commit_mu_);
    std::map<std::string, Op> batch;
    {
        std::lock_guard lk(mu_);
        batch.swap(buffer_);
        if (!batch.empty() && std::chrono::steady_clock::now() < down_until_) {
            // Failing fast while etcd is down; the changes stay buffered.
            for (auto& [nai, op] : batch) {
                buffer_.try_emplace(nai, std::move(op));
            }
            return unexpected(std::string("etcd unreachable (retrying within a second)"));
        }
    }
    if (batch.empty()) {
        return {};
    }
    const std::int64_t now = wall_now();
    std::vector<std::string> failed;  // stale: another node took these over
    std::optional<std::string> error;
    auto it = batch.begin();
    while (it != batch.end() && !error) {
        etcdserverpb::TxnRequest txn;
        std::vector<std::map<std::string, Op>::iterator> in_txn;
        for (; it != batch.end() && in_txn.size() < kOpsPerTxn; ++it) {
            const auto& [nai, op] = *it;
            Meta meta;
            {
                std::lock_guard lk(mu_);
                if (auto m = meta_.find(nai); m != meta_.end()) {
                    meta = m->second;
                }
            }
            if (op.del && meta.revision == 0) {
                continue;  // never written by this node: nothing of ours to delete
            }
            auto* inner = txn.add_success()->mutable_request_txn();
            auto* cmp = inner->add_compare();
            cmp->set_result(etcdserverpb::Compare::EQUAL);
            cmp->set_target(etcdserverpb::Compare::MOD);
            cmp->set_key(binding_key(opt_.prefix, nai));
            cmp->set_mod_revision(meta.revision);
            if (op.del) {
                inner->add_success()->mutable_request_delete_range()->set_key(
                    binding_key(opt_.prefix, nai));
            } else {
                auto lease = lease_for(op.expires_wall, now);
                if (!lease) {
                    error = lease.error();
                    if (!in_txn.empty()) {
                        it = in_txn.front();  // none of this transaction was sent
                    }
                    break;
                }
                // The value with its anchor: the node that created the binding.
                std::vector<std::uint8_t> v;
                v.reserve(op.value.size() + 64);
                encode_value_header(node_, meta.anchor.empty() ? node_ : meta.anchor, v);
                v.insert(v.end(), op.value.begin(), op.value.end());
                auto* p = inner->add_success()->mutable_request_put();
                p->set_key(binding_key(opt_.prefix, nai));
                p->set_value(v.data(), v.size());
                p->set_lease(*lease);
            }
            in_txn.push_back(it);
        }
        if (error || in_txn.empty()) {
            continue;
        }
        etcdserverpb::TxnResponse resp;
        grpc::ClientContext ctx;
        rpc_->deadline(ctx);
        ++requests_;
        if (auto s = rpc_->kv->Txn(&ctx, txn, &resp); !s.ok()) {
            ++request_errors_;
            error = "txn: " + status_text(s);
            it = in_txn.front();  // this transaction's changes stay buffered too
            break;
        }
        std::lock_guard lk(mu_);
        for (std::size_t i = 0; i < in_txn.size(); ++i) {
            const auto& [nai, op] = *in_txn[i];
            const bool ok = static_cast<int>(i) < resp.responses_size() &&
                            resp.responses(static_cast<int>(i)).response_txn().succeeded();
            if (!ok) {
                ++stale_;
                failed.push_back(nai);
                meta_.erase(nai);
                lost_.push_back(nai);
                forget_.insert(nai);
                continue;
            }
            if (op.del) {
                ++deletes_;
                meta_.erase(nai);
            } else {
                ++puts_;
                auto& m = meta_[nai];
                m.revision = resp.header().revision();
                if (m.anchor.empty()) {
                    m.anchor = node_;
                }
            }
            ++stats_.records;
        }
        ++stats_.commits;
    }
    if (error) {
        std::lock_guard lk(mu_);
        ++stats_.errors;
        down_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        // What was not written stays buffered unless a newer change of the key came since.
        for (; it != batch.end(); ++it) {
            buffer_.try_emplace(it->first, std::move(it->second));
        }
        return unexpected(*error);
    }
    if (!failed.empty()) {
        return unexpected(fmt::format("{} binding(s) taken over by another node meanwhile ({}{})",
                                      failed.size(), failed.front(),
                                      failed.size() > 1 ? ", ..." : ""));
    }
    return {};
}

Result<void, std::string> EtcdStore::checkpoint(const SessionWalk& /*each*/,
                                                std::int64_t /*to_wall*/,
                                                std::uint32_t /*restart_counter*/) {
    return {};  // etcd compacts itself; every change is already a key
}

Result<void, std::string> EtcdStore::save_restart_counter(std::uint32_t c) {
    etcdserverpb::PutRequest req;
    req.set_key(node_key(opt_.prefix, node_));
    std::string v(4, '\0');
    for (int i = 0; i < 4; ++i) {
        v[static_cast<std::size_t>(i)] = static_cast<char>((c >> (8 * i)) & 0xff);
    }
    req.set_value(v);
    etcdserverpb::PutResponse resp;
    grpc::ClientContext ctx;
    rpc_->deadline(ctx);
    std::lock_guard ck(commit_mu_);
    ++requests_;
    if (auto s = rpc_->kv->Put(&ctx, req, &resp); !s.ok()) {
        ++request_errors_;
        return unexpected("restart counter: " + status_text(s));
    }
    return {};
}

Result<std::optional<Session>, std::string> EtcdStore::load(const std::string& nai) {
    {
        std::lock_guard lk(mu_);
        if (std::chrono::steady_clock::now() < down_until_) {
            return unexpected(std::string("etcd unreachable (retrying within a second)"));
        }
    }
    etcdserverpb::RangeRequest req;
    req.set_key(binding_key(opt_.prefix, nai));
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    rpc_->deadline(ctx);
    auto s = rpc_->kv->Range(&ctx, req, &resp);
    std::lock_guard lk(mu_);
    ++requests_;
    ++loads_;
    if (!s.ok()) {
        ++request_errors_;
        down_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        return unexpected(status_text(s));
    }
    if (resp.kvs_size() == 0) {
        meta_.erase(nai);
        return std::optional<Session>{};
    }
    const auto& kv = resp.kvs(0);
    auto r = decode_value(std::span<const std::uint8_t>(
        reinterpret_cast<const std::uint8_t*>(kv.value().data()), kv.value().size()));
    if (!r || r->session.nai != nai) {
        // Unusable: overwritten by this node's next write (conditional on this revision).
        meta_[nai] = Meta{kv.mod_revision(), node_};
        spdlog::warn("cluster: key {}: {}; treated as absent", kv.key(),
                     r ? "another subscriber's binding" : r.error());
        return std::optional<Session>{};
    }
    meta_[nai] = Meta{kv.mod_revision(), r->anchor};
    forget_.erase(nai);
    spdlog::info("cluster: binding of {} served by node {} (anchor {}) found at revision {}", nai,
                 r->node, r->anchor, kv.mod_revision());
    return std::optional<Session>{std::move(r->session)};
}

void EtcdStore::disown(std::string_view nai) {
    std::lock_guard lk(mu_);
    const std::string key(nai);
    buffer_.erase(key);
    meta_.erase(key);
    forget_.insert(key);
}

Result<void, std::string> EtcdStore::announce(const std::string& address, std::int64_t ttl_s) {
    etcdserverpb::LeaseGrantRequest greq;
    greq.set_ttl(ttl_s);
    etcdserverpb::LeaseGrantResponse gresp;
    {
        grpc::ClientContext ctx;
        rpc_->deadline(ctx);
        ++requests_;
        if (auto s = rpc_->lease->LeaseGrant(&ctx, greq, &gresp); !s.ok()) {
            ++request_errors_;
            return unexpected("liveness lease grant: " + status_text(s));
        }
        ++lease_grants_;
    }
    etcdserverpb::PutRequest req;
    req.set_key(opt_.prefix + "l/" + node_);
    req.set_value(address);
    req.set_lease(gresp.id());
    etcdserverpb::PutResponse resp;
    grpc::ClientContext ctx;
    rpc_->deadline(ctx);
    ++requests_;
    if (auto s = rpc_->kv->Put(&ctx, req, &resp); !s.ok()) {
        ++request_errors_;
        return unexpected("liveness key: " + status_text(s));
    }
    live_address_ = address;
    live_ttl_ = ttl_s;
    live_lease_ = gresp.id();
    return {};
}

bool EtcdStore::failing_now() {
    std::lock_guard lk(mu_);
    return std::chrono::steady_clock::now() < down_until_;
}

void EtcdStore::note_failure() {
    std::lock_guard lk(mu_);
    down_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
}

Result<void, std::string> EtcdStore::keep_alive() {
    if (live_ttl_ == 0) {
        return {};
    }
    if (failing_now()) {
        // Like commits and lookups: no stall of the signalling thread while etcd is away.
        return unexpected(std::string("liveness keep-alive: etcd unreachable (retrying)"));
    }
    const std::int64_t lease = live_lease_;
    grpc::ClientContext ctx;
    rpc_->deadline(ctx);
    ++requests_;
    auto stream = rpc_->lease->LeaseKeepAlive(&ctx);
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(lease);
    etcdserverpb::LeaseKeepAliveResponse resp;
    const bool ok = stream->Write(req) && stream->Read(&resp);
    stream->WritesDone();
    const auto s = stream->Finish();
    if (!ok || !s.ok()) {
        ++request_errors_;
        note_failure();
        return unexpected("liveness keep-alive: " +
                          (s.ok() ? std::string("stream closed") : status_text(s)));
    }
    if (resp.ttl() <= 0) {
        spdlog::warn("cluster: liveness lease of node {} had expired; announcing again", node_);
        return announce(live_address_, live_ttl_);
    }
    return {};
}

Result<std::optional<std::string>, std::string> EtcdStore::node_address(const std::string& node) {
    if (failing_now()) {
        return unexpected(std::string("liveness read: etcd unreachable (retrying)"));
    }
    etcdserverpb::RangeRequest req;
    req.set_key(opt_.prefix + "l/" + node);
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    rpc_->deadline(ctx);
    ++requests_;
    if (auto s = rpc_->kv->Range(&ctx, req, &resp); !s.ok()) {
        ++request_errors_;
        note_failure();
        return unexpected("liveness read: " + status_text(s));
    }
    if (resp.kvs_size() == 0 || resp.kvs(0).value().empty() || resp.kvs(0).value().size() > 64) {
        return std::optional<std::string>{};
    }
    return std::optional<std::string>{resp.kvs(0).value()};
}

std::optional<Placement> EtcdStore::placement(const std::string& nai) const {
    std::lock_guard lk(mu_);
    auto it = meta_.find(nai);
    if (it == meta_.end()) {
        return std::nullopt;
    }
    return Placement{node_, it->second.anchor.empty() ? node_ : it->second.anchor};
}

std::vector<std::string> EtcdStore::take_lost() {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    out.swap(lost_);
    return out;
}

StoreStats EtcdStore::stats() const {
    std::lock_guard lk(mu_);
    return stats_;
}

std::string EtcdStore::where() const {
    return fmt::format("etcd {} {} (node {})", opt_.endpoint, opt_.prefix, node_);
}

void EtcdStore::add_counters(std::map<std::string, std::uint64_t>& m) const {
    std::lock_guard lk(mu_);
    m["cluster.etcd_requests"] = requests_;
    m["cluster.etcd_errors"] = request_errors_;
    m["cluster.lease_grants"] = lease_grants_;
    m["cluster.puts"] = puts_;
    m["cluster.deletes"] = deletes_;
    m["cluster.stale_writes"] = stale_;
    m["cluster.loads"] = loads_;
    m["cluster.bindings"] = meta_.size();
}

}  // namespace hag::control::store
