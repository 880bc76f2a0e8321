#include "dpclient/pusher.hpp"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "dpclient/dirty_set.hpp"
#include "dpclient/programmed.hpp"
#include "dpclient/session_convert.hpp"
#include "hag/v1/dataplane.grpc.pb.h"
#include "hag/v1/dataplane_digest.hpp"

namespace hag::control::dpclient {

namespace {

using Clock = std::chrono::steady_clock;

// Shared with the cache observer, which may outlive the pusher (observers cannot be removed).
struct Tracker {
    std::mutex mu;
    std::condition_variable cv;
    DirtySet dirty;
    // The observer wakes the pusher when the dirty set reaches this size (1: at the first
    // change; batch_size while a batch lingers, so that it is not woken per change).
    std::size_t wake_at = 1;
    bool stopping = false;
    bool restored = false;        // cache_restored() was called
    bool policy_changed = false;  // policy_changed() was called: resync with the new policy
};

std::uint64_t micros_since(Clock::time_point t0) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
}

std::string describe(const grpc::Status& s) {
    return fmt::format("{} (code {})", s.error_message().empty() ? "no message" : s.error_message(),
                       static_cast<int>(s.error_code()));
}

}  // namespace

struct Pusher::Impl {
    Impl(mgmt::CacheBackend& b, PusherOptions o)
        : backend(b), opts(std::move(o)), tracker(std::make_shared<Tracker>()) {}

    mgmt::CacheBackend& backend;
    PusherOptions opts;
    std::shared_ptr<Tracker> tracker;
    std::thread thread;

    // Pusher thread only.
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::DataplaneProgrammer::Stub> stub;
    ProgrammedSet programmed;
    RejectedMap rejected;
    std::uint64_t generation = 0;
    // The flow policy the data plane holds (its profiles' digests summed into profiles_digest);
    // sessions name their profiles from it, so a new policy takes a resync to take effect.
    std::shared_ptr<const PolicySnapshot> pushed_policy;
    std::uint64_t profiles_digest = 0;
    std::size_t profiles = 0;
    bool synced = false;
    bool check_now = false;  // an Apply reply's session count disagreed: check the digest

    // Published for status().
    mutable std::mutex status_mu;
    PusherStatus st;

    // The call in flight, cancelled by stop().
    std::mutex call_mu;
    grpc::ClientContext* call = nullptr;

    struct CallGuard {
        CallGuard(Impl& i, grpc::ClientContext& ctx, std::chrono::milliseconds timeout) : impl(i) {
            ctx.set_deadline(std::chrono::system_clock::now() + timeout);
            std::lock_guard lk(impl.call_mu);
            impl.call = &ctx;
            if (impl.stopping()) {
                ctx.TryCancel();
            }
        }
        ~CallGuard() {
            std::lock_guard lk(impl.call_mu);
            impl.call = nullptr;
        }
        CallGuard(const CallGuard&) = delete;
        CallGuard& operator=(const CallGuard&) = delete;
        Impl& impl;
    };

    bool stopping() {
        std::lock_guard lk(tracker->mu);
        return tracker->stopping;
    }

    template <typename F>
    void update(F&& f) {
        std::lock_guard lk(status_mu);
        f(st);
    }

    void publish() {
        update([&](PusherStatus& s) {
            s.connected = synced;
            s.generation = generation;
            s.sessions = programmed.size();
            s.digest = programmed.digest() + profiles_digest;
            s.profiles = profiles + programmed.flow_profiles();
            s.refused_now = rejected.size();
        });
    }

    void new_channel() {
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
        // Our own backoff decides when to reconnect; a private subchannel keeps gRPC's shared
        // one (and its reconnect backoff) out of the way.
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                    static_cast<int>(opts.backoff_min.count()));
        args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(opts.backoff_min.count()));
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(opts.backoff_max.count()));
        args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, INT_MAX);
        args.SetMaxReceiveMessageSize(64 << 20);
        args.SetMaxSendMessageSize(64 << 20);
        channel = grpc::CreateCustomChannel(opts.target, grpc::InsecureChannelCredentials(), args);
        stub = v1::DataplaneProgrammer::NewStub(channel);
    }

    static constexpr std::chrono::milliseconds kConnectionCheck{200};

    // A connection that dropped since the last call means the data plane may have restarted:
    // only a resync is safe then. (The channel reconnects only when asked, so a state other than
    // READY between our calls means the connection was lost.)
    bool connection_intact() {
        if (channel->GetState(false) == GRPC_CHANNEL_READY) {
            return true;
        }
        spdlog::warn("data plane {}: connection lost; resyncing", opts.target);
        return false;
    }

    bool resync(std::string& err) {
        new_channel();
        v1::DigestReply dr;
        {
            grpc::ClientContext ctx;
            CallGuard g(*this, ctx, opts.rpc_timeout);
            auto s = stub->Digest(&ctx, {}, &dr);
            if (!s.ok()) {
                err = "unreachable: " + describe(s);
                return false;
            }
        }
        const std::uint64_t gen = std::max(generation, dr.generation()) + 1;
        {
            // Everything dirty now is in the snapshot; changes from here on are marked again.
            std::lock_guard lk(tracker->mu);
            tracker->dirty.clear();
            tracker->policy_changed = false;
        }
        // The policy now in force goes first: every session of the resync is named against it.
        std::shared_ptr<const PolicySnapshot> pol = backend.policy();
        std::vector<v1::DpPolicyProfile> profs = policy_profiles(pol.get());
        std::uint64_t next_profiles_digest = 0;
        for (const auto& p : profs) {
            next_profiles_digest += v1::profile_digest(p);
        }
        bool first_chunk = true;
        ProgrammedSet next;
        RejectedMap still_refused;
        grpc::ClientContext ctx;
        CallGuard g(*this, ctx, opts.resync_timeout);
        v1::ApplyReply reply;
        auto writer = stub->Resync(&ctx, &reply);
        std::uint64_t cursor = 0;
        do {
            v1::ResyncChunk chunk;
            chunk.set_generation(gen);
            if (first_chunk) {
                for (auto& p : profs) {
                    *chunk.add_profiles() = p;
                }
                first_chunk = false;
            }
            cursor = backend.with_cache([&](BindingCache& c) {
                return c.for_each_page_id(
                    cursor, opts.resync_chunk, [&](std::uint32_t id, const Session& s) {
                        v1::DpSession dp = to_dp_session(s, id, pol.get());
                        auto fp = flow_profile(s, id, pol.get());
                        const std::uint64_t d = v1::session_digest(dp) +
                                                (fp ? v1::profile_digest(*fp) : std::uint64_t{0});
                        if (auto r = rejected.find(id); r != rejected.end() && r->second == d) {
                            still_refused.emplace(id, d);  // refused before, unchanged since
                            return;
                        }
                        next.set(id, d, fp.has_value());
                        if (fp) {
                            *chunk.add_profiles() = std::move(*fp);
                        }
                        *chunk.add_sessions() = std::move(dp);
                    });
            });
            chunk.set_last(cursor == 0);
            if (!writer->Write(chunk)) {
                break;  // the stream broke: Finish() says why
            }
        } while (cursor != 0);
        writer->WritesDone();
        auto s = writer->Finish();
        if (!s.ok()) {
            err = "resync refused: " + describe(s);
            return false;
        }
        generation = gen;
        programmed = std::move(next);
        rejected = std::move(still_refused);
        pushed_policy = std::move(pol);
        profiles_digest = next_profiles_digest;
        profiles = profs.size();
        synced = true;
        publish();
        update([&](PusherStatus& x) {
            ++x.resyncs;
            x.resync_sessions = programmed.size();
        });
        if (reply.sessions() != programmed.size()) {
            check_now = true;
        }
        return true;
    }

    enum class Sent : std::uint8_t { kOk, kRefused, kFailed };

    // One Apply. kRefused: INVALID_ARGUMENT, nothing applied (`why` says what). kFailed: the
    // data plane's state is uncertain (resync).
    Sent apply(PlannedBatch& b, grpc::Status& why) {
        if (!connection_intact()) {
            return Sent::kFailed;
        }
        const std::uint64_t gen = generation + 1;
        b.request.set_generation(gen);
        v1::ApplyReply reply;
        const auto t0 = Clock::now();
        {
            grpc::ClientContext ctx;
            CallGuard g(*this, ctx, opts.rpc_timeout);
            why = stub->Apply(&ctx, b.request, &reply);
        }
        const auto took = micros_since(t0);
        update([&](PusherStatus& x) { x.apply_us += took; });
        if (why.ok()) {
            generation = gen;
            commit(b.effects, programmed);
            for (const auto& e : b.effects) {
                rejected.erase(e.id);
            }
            publish();
            update([&](PusherStatus& x) {
                ++x.batches;
                x.changes += b.effects.size();
            });
            if (reply.sessions() != programmed.size()) {
                spdlog::warn(
                    "data plane {}: holds {} sessions after generation {}, control expected {}; "
                    "checking the digest",
                    opts.target, reply.sessions(), gen, programmed.size());
                check_now = true;
            }
            return Sent::kOk;
        }
        if (why.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
            return Sent::kRefused;
        }
        spdlog::warn("data plane {}: Apply of generation {} ({} changes) failed: {}; resyncing",
                     opts.target, gen, b.effects.size(), describe(why));
        update([](PusherStatus& x) { ++x.errors; });
        return Sent::kFailed;
    }

    // A refused single change: an upsert is remembered as refused (not offered again until the
    // session changes); a refused remove means control's view is wrong (false: resync).
    bool refused(const PlannedBatch& one, const grpc::Status& why) {
        const PlannedChange& e = one.effects[0];
        if (!e.digest) {
            spdlog::warn("data plane {}: refused to remove session {}: {}; resyncing", opts.target,
                         e.id, describe(why));
            return false;
        }
        rejected[e.id] = *e.digest;
        update([](PusherStatus& x) { ++x.rejected; });
        publish();
        std::string nai;
        for (const auto& c : one.request.changes()) {
            if (c.has_upsert()) {
                nai = c.upsert().nai();
            }
        }
        spdlog::error("data plane {}: refused session {} ({}): {}", opts.target, e.id, nai,
                      why.error_message());
        return true;
    }

    // Sends one planned batch; false = the data plane's state is uncertain (resync).
    bool send(PlannedBatch& b) {
        grpc::Status why;
        const Sent r = apply(b, why);
        if (r != Sent::kRefused) {
            return r == Sent::kOk;
        }
        if (b.effects.size() == 1) {
            return refused(b, why);
        }
        // Nothing was applied. Find the refused change(s): one by one, then the refused ones
        // once more (a change may have depended on a later one, e.g. a prefix moving).
        std::vector<PlannedBatch> again;
        int next_change = 0;
        for (const PlannedChange& e : b.effects) {
            PlannedBatch one;
            for (int k = 0; k < e.changes && next_change < b.request.changes_size(); ++k) {
                *one.request.add_changes() = b.request.changes(next_change++);
            }
            one.effects.push_back(e);
            const Sent r1 = apply(one, why);
            if (r1 == Sent::kFailed) {
                return false;
            }
            if (r1 == Sent::kRefused) {
                again.push_back(std::move(one));
            }
        }
        for (auto& one : again) {
            const Sent r2 = apply(one, why);
            if (r2 == Sent::kFailed || (r2 == Sent::kRefused && !refused(one, why))) {
                return false;
            }
        }
        return true;
    }

    bool push(const std::vector<std::uint32_t>& ids) {
        const auto t0 = Clock::now();
        PlannedBatch b = backend.with_cache([&](BindingCache& c) {
            for (std::uint32_t id : ids) {
                if (c.at(id) == nullptr) {
                    rejected.erase(id);
                }
            }
            return plan_batch(ids, c, programmed, rejected, pushed_policy.get());
        });
        const auto took = micros_since(t0);
        update([&](PusherStatus& x) { x.plan_us += took; });
        if (b.effects.empty()) {
            return true;
        }
        return send(b);
    }

    // False: the data plane disagrees and must be resynced (or could not be asked).
    bool check_digest(bool just_resynced) {
        if (!connection_intact()) {
            return false;
        }
        v1::DigestReply r;
        grpc::Status s;
        {
            grpc::ClientContext ctx;
            CallGuard g(*this, ctx, opts.rpc_timeout);
            s = stub->Digest(&ctx, {}, &r);
        }
        if (!s.ok()) {
            spdlog::warn("data plane {}: Digest failed: {}; resyncing", opts.target, describe(s));
            update([](PusherStatus& x) { ++x.errors; });
            return false;
        }
        update([](PusherStatus& x) { ++x.digest_checks; });
        if (r.digest() == programmed.digest() + profiles_digest &&
            r.sessions() == programmed.size() &&
            r.profiles() == profiles + programmed.flow_profiles() && r.generation() == generation) {
            return true;
        }
        update([](PusherStatus& x) { ++x.digest_mismatches; });
        const std::string what = fmt::format(
            "control: generation {}, {} sessions, {} policy profiles, digest {:016x}; data plane: "
            "generation {}, {} sessions, {} policy profiles, digest {:016x}",
            generation, programmed.size(), profiles + programmed.flow_profiles(),
            programmed.digest() + profiles_digest, r.generation(), r.sessions(), r.profiles(),
            r.digest());
        if (just_resynced) {
            // Resyncing again at once would loop: something else changes the data plane's table.
            spdlog::error("data plane {}: differs right after a resync ({}); next check in {} s",
                          opts.target, what, opts.digest_interval.count() / 1000);
            return true;
        }
        spdlog::warn("data plane {}: digest differs ({}); resyncing", opts.target, what);
        return false;
    }

    bool sleep_for(std::chrono::milliseconds d) {
        std::unique_lock lk(tracker->mu);
        return !tracker->cv.wait_for(lk, d, [&] { return tracker->stopping; });
    }

    // The start-up hold (see pusher.hpp). Returns when the first resync may replace the data
    // plane's state.
    void hold_at_start() {
        const auto deadline = Clock::now() + opts.resync_hold;
        auto backoff = opts.backoff_min;
        bool announced = false;
        std::uint64_t held = 0;
        auto finish = [&](const char* why) {
            if (announced) {
                spdlog::info("data plane {}: start-up hold ends ({}); resyncing", opts.target, why);
            }
            update([](PusherStatus& x) {
                x.holding = false;
                x.hold_remaining = std::chrono::milliseconds{0};
            });
        };
        new_channel();
        while (!stopping()) {
            const auto now = Clock::now();
            if (now >= deadline) {
                return finish("hold time over");
            }
            {
                std::lock_guard lk(tracker->mu);
                if (tracker->restored) {
                    return finish("binding cache restored");
                }
            }
            v1::DigestReply dr;
            grpc::Status s;
            {
                grpc::ClientContext ctx;
                CallGuard g(*this, ctx, opts.rpc_timeout);
                s = stub->Digest(&ctx, {}, &dr);
            }
            std::chrono::milliseconds pause{200};
            if (!s.ok()) {
                // Not reachable (yet): whether it holds anything is unknown; keep the hold so a
                // data plane that comes up with state within it is not wiped.
                pause = backoff;
                backoff = std::min(backoff * 2, opts.backoff_max);
            } else if (dr.generation() == 0) {
                return finish("the data plane holds no state of an earlier hag-control");
            } else {
                backoff = opts.backoff_min;
                if (!announced) {
                    held = dr.sessions();
                    spdlog::warn(
                        "data plane {}: holds {} sessions of an earlier hag-control (generation "
                        "{}); keeping them for up to {} s until the binding cache is restored or "
                        "the MAGs have re-registered",
                        opts.target, held, dr.generation(),
                        (std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)
                             .count() +
                         999) /
                            1000);
                    announced = true;
                    update([&](PusherStatus& x) {
                        x.holding = true;
                        x.held_sessions = held;
                        ++x.holds;
                    });
                }
                const std::size_t have =
                    backend.with_cache([](BindingCache& c) { return c.size(); });
                if (have >= held) {
                    return finish("the binding cache holds as many sessions as the data plane");
                }
            }
            update([&](PusherStatus& x) {
                x.hold_remaining =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            });
            std::unique_lock lk(tracker->mu);
            tracker->cv.wait_until(lk, std::min(deadline, Clock::now() + pause),
                                   [&] { return tracker->stopping || tracker->restored; });
        }
        finish("stopping");
    }

    void run() {
        if (opts.resync_hold.count() > 0) {
            hold_at_start();
        }
        auto backoff = opts.backoff_min;
        bool down_logged = false;
        bool just_resynced = false;
        auto next_digest = Clock::now();
        auto last_push = Clock::time_point{};  // end of the last Apply (batch_linger)
        while (!stopping()) {
            if (!synced) {
                publish();
                std::string err;
                const auto resync_start = Clock::now();
                if (!resync(err)) {
                    if (stopping()) {
                        break;
                    }
                    if (!down_logged) {
                        spdlog::warn("data plane {}: {}; retrying every {}..{} ms", opts.target,
                                     err, opts.backoff_min.count(), opts.backoff_max.count());
                        down_logged = true;
                    } else {
                        spdlog::debug("data plane {}: {}", opts.target, err);
                    }
                    update([](PusherStatus& x) { ++x.errors; });
                    sleep_for(backoff);
                    backoff = std::min(backoff * 2, opts.backoff_max);
                    continue;
                }
                const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                    Clock::now() - resync_start);
                update([&](PusherStatus& x) {
                    x.resync_ms = static_cast<std::uint64_t>(took.count());
                });
                spdlog::info(
                    "data plane {}: in sync, resync of {} sessions at generation {} in {} ms",
                    opts.target, programmed.size(), generation, took.count());
                down_logged = false;
                backoff = opts.backoff_min;
                just_resynced = true;
                next_digest = Clock::now();
            }
            std::vector<std::uint32_t> ids;
            bool woke_early = false;
            {
                // Idle, the connection is looked at every kConnectionCheck: a data plane that
                // restarted is resynced within that, not at the next digest check.
                const auto wake = check_now
                                      ? Clock::now()
                                      : std::min(next_digest, Clock::now() + kConnectionCheck);
                std::unique_lock lk(tracker->mu);
                tracker->cv.wait_until(lk, wake, [&] {
                    return tracker->stopping || !tracker->dirty.empty() || tracker->policy_changed;
                });
                if (tracker->stopping) {
                    break;
                }
                if (tracker->policy_changed) {
                    // Profiles and the sessions that name them change together: a resync
                    // applies both at once (all or nothing), traffic flowing meanwhile.
                    spdlog::info("data plane {}: flow policy changed; resyncing", opts.target);
                    synced = false;
                    continue;
                }
                // Under load: let the batch fill (see PusherOptions::batch_linger).
                const auto linger_end = last_push + opts.batch_linger;
                if (!tracker->dirty.empty() && tracker->dirty.size() < opts.batch_size &&
                    !check_now && Clock::now() < linger_end) {
                    tracker->wake_at = opts.batch_size;
                    tracker->cv.wait_until(lk, linger_end, [&] {
                        return tracker->stopping || tracker->dirty.size() >= opts.batch_size;
                    });
                    tracker->wake_at = 1;
                    if (tracker->stopping) {
                        break;
                    }
                }
                ids = tracker->dirty.take(opts.batch_size);
                woke_early = ids.empty() && !check_now && Clock::now() < next_digest;
            }
            if (woke_early) {
                if (!connection_intact()) {
                    synced = false;
                }
                continue;
            }
            if (!ids.empty()) {
                const bool ok = push(ids);
                last_push = Clock::now();
                if (!ok) {
                    synced = false;
                    continue;
                }
            }
            if (check_now || Clock::now() >= next_digest) {
                check_now = false;
                next_digest = Clock::now() + opts.digest_interval;
                if (!check_digest(just_resynced)) {
                    synced = false;
                }
                just_resynced = false;
            }
        }
        synced = false;
        publish();
    }
};

Pusher::Pusher(mgmt::CacheBackend& backend, PusherOptions opts)
    : impl_(std::make_unique<Impl>(backend, std::move(opts))) {
    std::shared_ptr<Tracker> t = impl_->tracker;
    backend.with_cache([&](BindingCache& c) {
        c.add_observer([t](const CacheEvent& ev) {
            std::lock_guard lk(t->mu);
            if (t->dirty.mark(ev.id) && t->dirty.size() >= t->wake_at) {
                t->cv.notify_one();
            }
        });
        return 0;
    });
}

Pusher::~Pusher() {
    stop();
}

void Pusher::start() {
    if (!impl_->thread.joinable()) {
        impl_->thread = std::thread([this] { impl_->run(); });
    }
}

void Pusher::stop() {
    {
        std::lock_guard lk(impl_->tracker->mu);
        impl_->tracker->stopping = true;
        impl_->tracker->cv.notify_all();
    }
    {
        std::lock_guard lk(impl_->call_mu);
        if (impl_->call != nullptr) {
            impl_->call->TryCancel();
        }
    }
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    }
}

void Pusher::policy_changed() {
    std::lock_guard lk(impl_->tracker->mu);
    impl_->tracker->policy_changed = true;
    impl_->tracker->cv.notify_all();
}

void Pusher::cache_restored() {
    std::lock_guard lk(impl_->tracker->mu);
    impl_->tracker->restored = true;
    impl_->tracker->cv.notify_all();
}

PusherStatus Pusher::status() const {
    PusherStatus s;
    {
        std::lock_guard lk(impl_->status_mu);
        s = impl_->st;
    }
    std::lock_guard lk(impl_->tracker->mu);
    s.pending = impl_->tracker->dirty.size();
    return s;
}

const std::string& Pusher::target() const noexcept {
    return impl_->opts.target;
}

}  // namespace hag::control::dpclient
