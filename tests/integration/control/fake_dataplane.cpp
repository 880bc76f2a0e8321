#include "fake_dataplane.hpp"

#include <unistd.h>

#include <algorithm>

#include "hag/v1/dataplane_digest.hpp"

namespace hag::test {

grpc::Status FakeDataplane::check(const v1::DpSession& s) const {
    if (s.id() >= max_sessions_) {
        return {grpc::StatusCode::INVALID_ARGUMENT,
                "session id " + std::to_string(s.id()) + " >= max_sessions"};
    }
    if (!refuse_.empty() && s.nai().find(refuse_) != std::string::npos) {
        return {grpc::StatusCode::INVALID_ARGUMENT, "refused by test hook: " + s.nai()};
    }
    std::uint32_t prev_bid = 0;
    for (const auto& p : s.paths()) {
        if (p.bid() == 0 || p.bid() <= prev_bid) {
            return {grpc::StatusCode::INVALID_ARGUMENT, "paths not in BID order: " + s.nai()};
        }
        prev_bid = p.bid();
    }
    return grpc::Status::OK;
}

grpc::Status FakeDataplane::Apply(grpc::ServerContext*, const v1::ApplyRequest* req,
                                  v1::ApplyReply* out) {
    std::string line;
    {
        std::unique_lock lk(mu_);
        ++waiting_;
        cv_.wait(lk, [&] { return !held_; });
        --waiting_;
        if (req->generation() <= generation_) {
            return {grpc::StatusCode::FAILED_PRECONDITION,
                    "generation " + std::to_string(req->generation()) + " is not above " +
                        std::to_string(generation_)};
        }
        auto next = sessions_;
        auto next_profiles = profiles_;
        std::size_t ups = 0, rms = 0;
        for (const auto& c : req->changes()) {
            if (c.has_upsert_profile()) {
                next_profiles[c.upsert_profile().name()] = c.upsert_profile();
            } else if (c.op_case() == v1::DpChange::kRemoveProfile) {
                next_profiles.erase(c.remove_profile());
            } else if (c.has_upsert()) {
                if (auto st = check(c.upsert()); !st.ok()) {
                    ++rejected_;
                    return st;
                }
                next[c.upsert().id()] = c.upsert();
                ++ups;
            } else {
                if (next.erase(c.remove()) == 0) {
                    ++rejected_;
                    return {grpc::StatusCode::INVALID_ARGUMENT,
                            "remove of unknown session " + std::to_string(c.remove())};
                }
                ++rms;
            }
        }
        sessions_ = std::move(next);
        profiles_ = std::move(next_profiles);
        generation_ = req->generation();
        applied_.push_back(*req);
        ++batches_;
        out->set_generation(generation_);
        out->set_sessions(static_cast<std::uint32_t>(sessions_.size()));
        line = "apply generation=" + std::to_string(generation_) +
               " upserts=" + std::to_string(ups) + " removes=" + std::to_string(rms) +
               " sessions=" + std::to_string(sessions_.size());
    }
    if (event_) {
        event_(line);
    }
    return grpc::Status::OK;
}

grpc::Status FakeDataplane::Resync(grpc::ServerContext*,
                                   grpc::ServerReader<v1::ResyncChunk>* reader,
                                   v1::ApplyReply* out) {
    std::map<std::uint32_t, v1::DpSession> next;
    std::map<std::string, v1::DpPolicyProfile> next_profiles;
    v1::ResyncChunk chunk;
    std::uint64_t gen = 0;
    bool first = true, last = false;
    while (!last && reader->Read(&chunk)) {
        if (!first && chunk.generation() != gen) {
            return {grpc::StatusCode::INVALID_ARGUMENT, "generation changed within a resync"};
        }
        gen = chunk.generation();
        first = false;
        for (const auto& s : chunk.sessions()) {
            if (auto st = check(s); !st.ok()) {
                return st;
            }
            if (!next.emplace(s.id(), s).second) {
                return {grpc::StatusCode::INVALID_ARGUMENT,
                        "session id " + std::to_string(s.id()) + " twice in a resync"};
            }
        }
        for (const auto& p : chunk.profiles()) {
            next_profiles[p.name()] = p;
        }
        last = chunk.last();
    }
    if (!last) {
        return {grpc::StatusCode::ABORTED, "resync stream ended without its last chunk"};
    }
    std::string line;
    {
        std::lock_guard lk(mu_);
        if (gen <= generation_) {
            return {grpc::StatusCode::FAILED_PRECONDITION,
                    "resync generation " + std::to_string(gen) + " is not above " +
                        std::to_string(generation_)};
        }
        sessions_ = std::move(next);
        profiles_ = std::move(next_profiles);
        generation_ = gen;
        ++resyncs_;
        out->set_generation(gen);
        out->set_sessions(static_cast<std::uint32_t>(sessions_.size()));
        line = "resync generation=" + std::to_string(gen) +
               " sessions=" + std::to_string(sessions_.size());
    }
    if (event_) {
        event_(line);
    }
    return grpc::Status::OK;
}

grpc::Status FakeDataplane::Digest(grpc::ServerContext*, const v1::DigestRequest*,
                                   v1::DigestReply* out) {
    std::lock_guard lk(mu_);
    std::uint64_t d = 0;
    for (const auto& [id, s] : sessions_) {
        d += v1::session_digest(s);
    }
    for (const auto& [name, p] : profiles_) {
        d += v1::profile_digest(p);
    }
    out->set_profiles(static_cast<std::uint32_t>(profiles_.size()));
    out->set_generation(generation_);
    out->set_sessions(static_cast<std::uint32_t>(sessions_.size()));
    out->set_digest(d);
    return grpc::Status::OK;
}

grpc::Status FakeDataplane::Status(grpc::ServerContext*, const v1::DpStatusRequest*,
                                   v1::DpStatusReply* out) {
    std::lock_guard lk(mu_);
    out->set_version("fake-dataplane");
    out->set_generation(generation_);
    out->set_sessions(static_cast<std::uint32_t>(sessions_.size()));
    out->set_max_sessions(max_sessions_);
    out->set_batches_applied(batches_);
    out->set_batches_rejected(rejected_);
    out->set_resyncs(resyncs_);
    auto* c = out->add_counters();
    c->set_name("fake.sessions");
    c->set_value(sessions_.size());
    return grpc::Status::OK;
}

grpc::Status FakeDataplane::ListSessions(grpc::ServerContext*, const v1::DpListRequest* req,
                                         v1::DpListReply* out) {
    std::lock_guard lk(mu_);
    const std::uint32_t limit = req->limit() == 0 ? 100 : std::min(req->limit(), 1000u);
    auto it = req->first_page() ? sessions_.begin() : sessions_.upper_bound(req->after_id());
    for (; it != sessions_.end() && static_cast<std::uint32_t>(out->sessions_size()) < limit;
         ++it) {
        auto* s = out->add_sessions();
        *s->mutable_session() = it->second;
        s->set_downlink_packets(it->first);  // recognisable numbers for the CLI tests
        s->set_uplink_bytes(1000 + it->first);
    }
    out->set_more(it != sessions_.end());
    return grpc::Status::OK;
}

FakeDataplane::Snapshot FakeDataplane::snapshot() const {
    std::lock_guard lk(mu_);
    Snapshot s;
    s.generation = generation_;
    s.sessions = sessions_;
    s.applied = applied_;
    s.resyncs = resyncs_;
    s.rejected = rejected_;
    for (const auto& [id, x] : sessions_) {
        s.digest += v1::session_digest(x);
    }
    s.profiles = profiles_;
    for (const auto& [name, p] : profiles_) {
        s.digest += v1::profile_digest(p);
    }
    return s;
}

void FakeDataplane::hold() {
    std::lock_guard lk(mu_);
    held_ = true;
}

void FakeDataplane::release() {
    std::lock_guard lk(mu_);
    held_ = false;
    cv_.notify_all();
}

std::size_t FakeDataplane::applies_waiting() const {
    std::lock_guard lk(mu_);
    return waiting_;
}

void FakeDataplane::refuse_nai(std::string s) {
    std::lock_guard lk(mu_);
    refuse_ = std::move(s);
}

std::unique_ptr<grpc::Server> start_fake_dataplane(FakeDataplane& svc, const std::string& listen) {
    if (listen.rfind("unix:", 0) == 0) {
        ::unlink(listen.substr(5).c_str());
    }
    grpc::ServerBuilder b;
    b.AddListeningPort(listen, grpc::InsecureServerCredentials());
    b.RegisterService(&svc);
    b.SetMaxReceiveMessageSize(64 << 20);
    return b.BuildAndStart();
}

}  // namespace hag::test
