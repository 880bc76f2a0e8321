#include "mgmt/service.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>

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
        mgmt::to_proto(s, now, out->add_bindings());
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
    return grpc::Status::OK;
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

}  // namespace hag::control::mgmt
