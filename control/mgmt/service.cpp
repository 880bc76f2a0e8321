#include "mgmt/service.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>

#include <fmt/format.h>

#include "dpclient/session_convert.hpp"
#include "hag/log/log.hpp"
#include "hag/v1/policy_dp.hpp"
#include "mgmt/convert.hpp"

namespace hag::control::mgmt {

namespace {

grpc::Status invalid(const std::string& msg) {
    return {grpc::StatusCode::INVALID_ARGUMENT, msg};
}

hag::v1::BindingEvent::Kind to_proto(CacheEvent::Kind k) {
    switch (k) {
        case CacheEvent::Kind::kAdded:
            return hag::v1::BindingEvent::ADDED;
        case CacheEvent::Kind::kUpdated:
            return hag::v1::BindingEvent::UPDATED;
        case CacheEvent::Kind::kRemoved:
            return hag::v1::BindingEvent::REMOVED;
        case CacheEvent::Kind::kExpired:
            return hag::v1::BindingEvent::EXPIRED;
    }
    return hag::v1::BindingEvent::KIND_UNSPECIFIED;
}

void rule_view(const policy::Policy& pol, const policy::Rule& rule, hag::v1::PolicyRuleView* out) {
    out->set_application(rule.application < pol.applications.size()
                             ? pol.applications[rule.application].name
                             : std::string("?"));
    for (const policy::Step& st : rule.preference) {
        switch (st.kind) {
            case policy::Step::Kind::kDrop:
                out->add_preference("DROP");
                break;
            case policy::Step::Kind::kStripe:
                out->add_preference("STRIPE");
                break;
            case policy::Step::Kind::kAccess:
                out->add_preference(st.label < pol.labels.size() ? pol.labels[st.label].name
                                                                 : std::string("?"));
                break;
        }
    }
    out->set_priority(rule.priority);
    out->set_text(policy::describe(pol, rule));
}

std::string resolved_text(const policy::Policy& pol, const policy::Rule& rule,
                          const policy::Decision& d) {
    switch (d.kind) {
        case policy::Decision::Kind::kDrop:
            return "DROP";
        case policy::Decision::Kind::kStripe:
            return "STRIPE";
        case policy::Decision::Kind::kPath: {
            const auto& st = rule.preference[static_cast<std::size_t>(d.step)];
            return fmt::format("path bid={} ({})", d.bid,
                               st.label < pol.labels.size() ? pol.labels[st.label].name : "?");
        }
    }
    return "?";
}

// The profile a session's packets are classified with: with `merged` and flow bindings, its
// own profile (flows/<id>: the operator's rules merged with the bindings, exactly as the data
// plane is programmed with it); else the operator's profile of its subscriber.
struct ResolvedProfile {
    std::unique_ptr<policy::Policy> own;  // the merged profile's model, when merged
    const policy::Policy* pol = nullptr;
    const policy::Profile* prof = nullptr;
    bool merged = false;
};

ResolvedProfile resolve_profile(const PolicySnapshot& snap, const Session& s, std::uint32_t id,
                                bool merged) {
    ResolvedProfile out;
    out.pol = &snap.policy;
    if (merged && !s.flows.empty()) {
        if (auto dp = dpclient::flow_profile(s, id, &snap)) {
            if (auto m = policy::from_dp_profile(*dp); m && !m->profiles.empty()) {
                out.own = std::make_unique<policy::Policy>(std::move(*m));
                out.pol = out.own.get();
                out.prof = &out.own->profiles.front();
                out.merged = true;
                return out;
            }
        }
    }
    out.prof = snap.profile_for(s.nai);
    return out;
}

// The data plane's counters of `stats` into the profile's rule views, when they are the
// counters of this very profile.
void add_counters(const std::optional<hag::v1::DpPolicyStats>& stats, const std::string& profile,
                  hag::v1::PolicyProfileView* pv) {
    if (!stats || stats->profile() != profile || stats->rules_size() != pv->rules_size()) {
        return;
    }
    for (int i = 0; i < pv->rules_size(); ++i) {
        auto* rv = pv->mutable_rules(i);
        rv->set_hits(stats->rules(i).hits());
        rv->set_drops(stats->rules(i).drops());
        rv->set_uplink_forbidden(stats->rules(i).uplink_forbidden());
    }
    pv->set_counters(true);
}

grpc::Status edit_status(const PolicyEditError& e) {
    using C = PolicyEditError::Code;
    switch (e.code) {
        case C::kInvalid:
            return {grpc::StatusCode::INVALID_ARGUMENT, e.message};
        case C::kExists:
            return {grpc::StatusCode::ALREADY_EXISTS, e.message};
        case C::kNotFound:
            return {grpc::StatusCode::NOT_FOUND, e.message};
        case C::kInUse:
            return {grpc::StatusCode::FAILED_PRECONDITION, e.message};
        case C::kVersion:
            return {grpc::StatusCode::ABORTED, e.message};
        case C::kInternal:
            return {grpc::StatusCode::INTERNAL, e.message};
        case C::kUnavailable:
            return {grpc::StatusCode::UNIMPLEMENTED, e.message};
    }
    return {grpc::StatusCode::UNKNOWN, e.message};
}

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

ManagementService::ManagementService(Backend& backend)
    : backend_(backend), started_(std::chrono::steady_clock::now()) {}

grpc::Status ManagementService::GetVersion(grpc::ServerContext*, const hag::v1::GetVersionRequest*,
                                           hag::v1::VersionInfo* out) {
    out->set_version(HAG_VERSION);
    out->set_uptime_seconds(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::steady_clock::now() - started_)
                                       .count()));
    return grpc::Status::OK;
}

grpc::Status ManagementService::ListBindings(grpc::ServerContext*,
                                             const hag::v1::ListBindingsRequest* req,
                                             hag::v1::ListBindingsResponse* out) {
    BindingFilter f;
    if (!req->nai().empty()) {
        f.nai = req->nai();
    }
    if (!req->prefix().empty()) {
        f.prefix = parse_prefix(req->prefix());
        if (!f.prefix) {
            return invalid("prefix: '" + req->prefix() +
                           "' is not an IPv6 prefix like 2001:db8:1::/64");
        }
    }
    if (!req->mag().empty()) {
        f.mag = req->mag();
    }
    if (!req->coa().empty()) {
        f.coa = parse_coa(req->coa());
        if (!f.coa) {
            return invalid("coa: '" + req->coa() + "' is not an IPv6 or IPv4 address");
        }
    }
    if (req->page_size() > kMaxPageSize) {
        return invalid("page_size: " + std::to_string(req->page_size()) + " is above the maximum " +
                       std::to_string(kMaxPageSize));
    }
    const std::size_t limit = req->page_size() == 0 ? kDefaultPageSize : req->page_size();
    std::uint64_t cursor = 0;
    if (!req->page_token().empty()) {
        const std::string& t = req->page_token();
        char* end = nullptr;
        errno = 0;
        cursor = std::strtoull(t.c_str(), &end, 16);
        if (errno != 0 || end != t.c_str() + t.size() || cursor == 0 || t[0] == '-' ||
            t[0] == '+' || t[0] == ' ') {
            return invalid("page_token: '" + t + "' is not a token returned by ListBindings");
        }
    }
    BindingPage page = backend_.list(f, cursor, limit);
    const Seconds now = backend_.now();
    for (const Session& s : page.sessions) {
        auto* b = out->add_bindings();
        mgmt::to_proto(s, now, b);
        add_placement(s.nai, b);
    }
    if (page.next_cursor != 0) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(page.next_cursor));
        out->set_next_page_token(buf);
    }
    out->set_total_sessions(page.total);
    return grpc::Status::OK;
}

grpc::Status ManagementService::GetBinding(grpc::ServerContext*,
                                           const hag::v1::GetBindingRequest* req,
                                           hag::v1::Binding* out) {
    if (req->nai().empty()) {
        return invalid("nai: required");
    }
    auto s = backend_.get(req->nai());
    if (!s) {
        return {grpc::StatusCode::NOT_FOUND, "no binding for NAI '" + req->nai() + "'"};
    }
    mgmt::to_proto(*s, backend_.now(), out);
    add_placement(s->nai, out);
    return grpc::Status::OK;
}

void ManagementService::add_placement(const std::string& nai, hag::v1::Binding* out) {
    if (auto p = backend_.placement(nai)) {
        std::string node = p->node;
        for (const auto& path : out->paths()) {
            if (node.empty() && path.relay()) {
                node = path.mag_id();  // the hag node serving it, this one anchors a prefix
            }
        }
        if (!node.empty()) {
            out->set_serving_node(node);
            out->set_anchor_node(p->anchor);
        }
    }
}

grpc::Status ManagementService::DeleteBinding(grpc::ServerContext*,
                                              const hag::v1::DeleteBindingRequest* req,
                                              hag::v1::DeleteBindingResponse* out) {
    if (req->nai().empty()) {
        return invalid("nai: required");
    }
    if (req->bid() > 0xffff) {
        return invalid("bid: " + std::to_string(req->bid()) + " is above 65535");
    }
    auto r = backend_.remove(req->nai(), static_cast<std::uint16_t>(req->bid()));
    if (!r) {
        if (r.error() == CacheError::kNotFound) {
            return {grpc::StatusCode::NOT_FOUND,
                    req->bid() == 0 ? "no binding for NAI '" + req->nai() + "'"
                                    : "no path with BID " + std::to_string(req->bid()) +
                                          " for NAI '" + req->nai() + "'"};
        }
        return {grpc::StatusCode::FAILED_PRECONDITION, std::string(to_string(r.error()))};
    }
    out->set_paths_removed(r->paths_removed);
    out->set_session_removed(r->session_removed);
    out->set_revocations_sent(r->revocations_sent);
    return grpc::Status::OK;
}

grpc::Status ManagementService::WatchBindings(grpc::ServerContext* ctx,
                                              const hag::v1::WatchBindingsRequest* req,
                                              grpc::ServerWriter<hag::v1::BindingEvent>* writer) {
    struct Queue {
        std::mutex mu;
        std::condition_variable cv;
        std::deque<hag::v1::BindingEvent> events;
        bool overflow = false;
    };
    auto q = std::make_shared<Queue>();
    const std::uint64_t id = backend_.subscribe([this, q](CacheEvent::Kind k, const Session& s) {
        hag::v1::BindingEvent ev;
        ev.set_kind(to_proto(k));
        ev.set_unix_time_ms(unix_ms());
        mgmt::to_proto(s, backend_.now(), ev.mutable_binding());
        std::lock_guard lock(q->mu);
        if (q->events.size() >= kWatchQueueLimit) {
            q->overflow = true;
        } else {
            q->events.push_back(std::move(ev));
        }
        q->cv.notify_one();
    });
    if (req->initial_snapshot()) {
        std::uint64_t cursor = 0;
        do {
            BindingPage page = backend_.list({}, cursor, 1000);
            for (const Session& s : page.sessions) {
                hag::v1::BindingEvent ev;
                ev.set_kind(hag::v1::BindingEvent::ADDED);
                ev.set_unix_time_ms(unix_ms());
                mgmt::to_proto(s, backend_.now(), ev.mutable_binding());
                if (!writer->Write(ev)) {
                    backend_.unsubscribe(id);
                    return grpc::Status::OK;
                }
            }
            cursor = page.next_cursor;
        } while (cursor != 0);
    }
    grpc::Status result = grpc::Status::OK;
    while (!ctx->IsCancelled() && !stopping_) {
        std::deque<hag::v1::BindingEvent> batch;
        {
            std::unique_lock lock(q->mu);
            q->cv.wait_for(lock, std::chrono::milliseconds(200),
                           [&] { return !q->events.empty() || q->overflow; });
            if (q->overflow) {
                result = {grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "watcher fell behind by more than " + std::to_string(kWatchQueueLimit) +
                              " events"};
                break;
            }
            batch.swap(q->events);
        }
        bool ok = true;
        for (const auto& ev : batch) {
            if (!writer->Write(ev)) {
                ok = false;
                break;
            }
        }
        if (!ok) {
            break;
        }
    }
    backend_.unsubscribe(id);
    return result;
}

grpc::Status ManagementService::GetCounters(grpc::ServerContext*,
                                            const hag::v1::GetCountersRequest*,
                                            hag::v1::Counters* out) {
    for (const auto& [name, value] : backend_.counters()) {
        auto* c = out->add_counters();
        c->set_name(name);
        c->set_value(value);
    }
    return grpc::Status::OK;
}

grpc::Status ManagementService::GetDataplaneSync(grpc::ServerContext*,
                                                 const hag::v1::GetDataplaneSyncRequest*,
                                                 hag::v1::DataplaneSync* out) {
    const auto d = backend_.dataplane_sync();
    out->set_configured(d.has_value());
    if (d) {
        out->set_target(d->target);
        out->set_connected(d->connected);
        out->set_generation(d->generation);
        out->set_sessions(d->sessions);
        out->set_digest(d->digest);
        out->set_pending(d->pending);
        out->set_rejected(d->rejected);
        out->set_resync_hold_ms(d->resync_hold_ms);
    }
    return grpc::Status::OK;
}

grpc::Status ManagementService::GetPolicy(grpc::ServerContext*,
                                          const hag::v1::GetPolicyRequest* req,
                                          hag::v1::PolicyView* out) {
    const auto snap = backend_.policy();
    if (!snap) {
        return {grpc::StatusCode::FAILED_PRECONDITION, "no policy is loaded"};
    }
    const policy::Policy& pol = snap->policy;
    for (const policy::Label& l : pol.labels) {
        out->add_labels(policy::describe(l));
    }
    for (const policy::Application& a : pol.applications) {
        out->add_applications(policy::describe(a));
    }
    out->set_default_profile(snap->default_profile);
    out->set_version(snap->version);
    for (const auto& e : snap->runtime_edits) {
        out->add_runtime_edits(e);
    }
    if (req->nai().empty() && !req->has_session()) {
        const auto ids = req->no_counters() ? std::map<std::string, std::uint32_t>{}
                                            : backend_.profile_sessions(*snap, 100000);
        for (const policy::Profile& prof : pol.profiles) {
            auto* pv = out->add_profiles();
            pv->set_name(prof.name);
            pv->set_runtime(snap->runtime_profiles.count(prof.name) != 0);
            for (const policy::Rule& r : prof.rules) {
                rule_view(pol, r, pv->add_rules());
            }
            if (auto it = ids.find(prof.name); it != ids.end()) {
                add_counters(backend_.dataplane_policy_stats(it->second), prof.name, pv);
            }
        }
        out->set_has_profile(!snap->default_profile.empty());
        return grpc::Status::OK;
    }
    std::optional<Session> s;
    std::optional<std::uint32_t> id;
    if (req->has_session()) {
        s = backend_.get_by_id(req->session());
        if (!s) {
            return {grpc::StatusCode::NOT_FOUND,
                    fmt::format("no session with id {}", req->session())};
        }
        id = req->session();
        out->set_session(*id);
    } else {
        s = backend_.get(req->nai());
        if (!s) {
            return {grpc::StatusCode::NOT_FOUND, "no binding for NAI '" + req->nai() + "'"};
        }
        id = backend_.session_id(req->nai());
    }
    out->set_nai(s->nai);
    const ResolvedProfile rp = resolve_profile(*snap, *s, id.value_or(0), req->has_session());
    out->set_merged(rp.merged);
    out->set_has_profile(rp.prof != nullptr);
    if (rp.prof == nullptr) {
        return grpc::Status::OK;
    }
    const auto accesses = accesses_of(*s);
    auto* pv = out->add_profiles();
    pv->set_name(rp.prof->name);
    pv->set_runtime(!rp.merged && snap->runtime_profiles.count(rp.prof->name) != 0);
    for (const policy::Rule& r : rp.prof->rules) {
        auto* rv = pv->add_rules();
        rule_view(*rp.pol, r, rv);
        const policy::Decision d = policy::resolve(*rp.pol, r, accesses);
        rv->set_resolved(resolved_text(*rp.pol, r, d));
        if (d.kind == policy::Decision::Kind::kPath) {
            rv->set_bid(d.bid);
        }
    }
    if (id && !req->no_counters()) {
        add_counters(backend_.dataplane_policy_stats(*id), rp.prof->name, pv);
    }
    return grpc::Status::OK;
}

grpc::Status ManagementService::EvaluatePolicy(grpc::ServerContext*,
                                               const hag::v1::EvaluatePolicyRequest* req,
                                               hag::v1::PolicyDecision* out) {
    if (req->nai().empty() && !req->has_session()) {
        return invalid("nai: required (or session)");
    }
    if (req->protocol() > 255) {
        return invalid(fmt::format("protocol: {} is not 0-255", req->protocol()));
    }
    if (req->local_port() > 65535 || req->remote_port() > 65535) {
        return invalid("local_port / remote_port: not 0-65535");
    }
    if (req->dscp() > 63) {
        return invalid(fmt::format("dscp: {} is not 0-63", req->dscp()));
    }
    policy::FlowKey k;
    k.protocol = static_cast<std::uint8_t>(req->protocol());
    k.local_port = static_cast<std::uint16_t>(req->local_port());
    k.remote_port = static_cast<std::uint16_t>(req->remote_port());
    k.dscp = static_cast<std::uint8_t>(req->dscp());
    if (req->has_spi()) {
        k.spi = req->spi();
    }
    if (!req->remote_address().empty()) {
        auto a = parse_coa(req->remote_address());
        if (!a) {
            return invalid("remote_address: '" + req->remote_address() +
                           "' is not an IPv4 or IPv6 address");
        }
        k.remote = a->addr;
    }
    const auto snap = backend_.policy();
    if (!snap) {
        return {grpc::StatusCode::FAILED_PRECONDITION, "no policy is loaded"};
    }
    std::optional<Session> s;
    std::uint32_t id = 0;
    if (req->has_session()) {
        s = backend_.get_by_id(req->session());
        if (!s) {
            return {grpc::StatusCode::NOT_FOUND,
                    fmt::format("no session with id {}", req->session())};
        }
        id = req->session();
    } else {
        s = backend_.get(req->nai());
        if (!s) {
            return {grpc::StatusCode::NOT_FOUND, "no binding for NAI '" + req->nai() + "'"};
        }
    }
    if (!req->local_address().empty()) {
        auto a = parse_coa(req->local_address());
        if (!a) {
            return invalid("local_address: '" + req->local_address() +
                           "' is not an IPv4 or IPv6 address");
        }
        k.local = a->addr;
    } else if (!s->home_prefixes.empty()) {
        k.local = s->home_prefixes.front().addr;
    }
    const ResolvedProfile rp = resolve_profile(*snap, *s, id, req->has_session());
    const policy::Profile* prof = rp.prof;
    if (prof == nullptr) {
        out->set_action("stripe");
        out->set_text("stripe (no policy profile applies)");
        return grpc::Status::OK;
    }
    out->set_profile(prof->name);
    const auto accesses = accesses_of(*s);
    const policy::Decision d = policy::decide(*rp.pol, *prof, k, accesses);
    switch (d.kind) {
        case policy::Decision::Kind::kPath:
            out->set_action("path");
            out->set_bid(d.bid);
            break;
        case policy::Decision::Kind::kStripe:
            out->set_action("stripe");
            break;
        case policy::Decision::Kind::kDrop:
            out->set_action("drop");
            break;
    }
    out->set_text(policy::describe(*rp.pol, *prof, d));
    return grpc::Status::OK;
}

grpc::Status ManagementService::EditPolicy(grpc::ServerContext*,
                                           const hag::v1::EditPolicyRequest* req,
                                           hag::v1::EditPolicyReply* out) {
    auto r = backend_.edit_policy(*req);
    if (!r) {
        spdlog::warn("policy edit refused: {}", r.error().message);
        return edit_status(r.error());
    }
    *out = std::move(*r);
    spdlog::info("policy edit (management API): {}; policy version {}", out->summary(),
                 out->version());
    return grpc::Status::OK;
}

grpc::Status ManagementService::SetLogLevel(grpc::ServerContext*,
                                            const hag::v1::SetLogLevelRequest* req,
                                            hag::v1::LogLevelReply* out) {
    if (req->level().empty()) {
        out->set_level(hag::log::current_level());
        out->set_previous(out->level());
        return grpc::Status::OK;
    }
    auto prev = hag::log::set_level(req->level());
    if (!prev) {
        return invalid("level: " + prev.error());
    }
    out->set_previous(*prev);
    out->set_level(hag::log::current_level());
    spdlog::info("log level {} -> {} (management API)", out->previous(), out->level());
    return grpc::Status::OK;
}

}  // namespace hag::control::mgmt
