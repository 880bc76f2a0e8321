#include "mgmt/cache_backend.hpp"

#include <algorithm>

namespace hag::control::mgmt {

bool BindingFilter::matches(const Session& s) const {
    if (nai && s.nai != *nai) {
        return false;
    }
    if (prefix && std::find(s.home_prefixes.begin(), s.home_prefixes.end(), *prefix) ==
                      s.home_prefixes.end()) {
        return false;
    }
    if (mag && std::none_of(s.paths.begin(), s.paths.end(),
                            [&](const Path& p) { return p.mag_id == *mag; })) {
        return false;
    }
    if (coa && std::none_of(s.paths.begin(), s.paths.end(),
                            [&](const Path& p) { return p.coa == *coa; })) {
        return false;
    }
    return true;
}

CacheBackend::CacheBackend(BindingCache& cache, Revoker revoker, Clock clock)
    : cache_(cache), revoker_(std::move(revoker)), clock_(std::move(clock)) {
    cache_.add_observer([this](const CacheEvent& ev) {
        std::lock_guard lock(watch_mu_);
        for (auto& [id, cb] : watchers_) {
            cb(ev.kind, *ev.session);
        }
    });
}

BindingPage CacheBackend::list(const BindingFilter& f, std::uint64_t cursor, std::size_t limit) {
    std::lock_guard lock(mu_);
    BindingPage page;
    page.total = cache_.size();
    // Exact-key filters use the cache's indexes: the result is small and fits one page.
    const Session* one = nullptr;
    if (f.nai || f.prefix) {
        one = f.nai ? cache_.find(*f.nai) : cache_.find_by_prefix(*f.prefix);
        if (one != nullptr && cursor == 0 && f.matches(*one)) {
            page.sessions.push_back(*one);
        }
        return page;
    }
    if (f.coa) {
        if (cursor == 0) {
            for (const Session* s : cache_.find_by_coa(*f.coa)) {
                if (f.matches(*s) && page.sessions.size() < limit) {
                    page.sessions.push_back(*s);
                }
            }
        }
        return page;
    }
    // Walk pages until `limit` matches are found or the cache ends; a bounded walk per call.
    std::uint64_t c = cursor;
    std::size_t visited = 0;
    const std::size_t max_visit = std::max<std::size_t>(limit * 64, 4096);
    do {
        const std::size_t want = limit - page.sessions.size();
        c = cache_.for_each_page(c, want, [&](const Session& s) {
            ++visited;
            if (f.matches(s)) {
                page.sessions.push_back(s);
            }
        });
    } while (c != 0 && page.sessions.size() < limit && visited < max_visit);
    page.next_cursor = c;
    return page;
}

std::optional<Session> CacheBackend::get(const std::string& nai) {
    std::lock_guard lock(mu_);
    const Session* s = cache_.find(nai);
    if (s == nullptr) {
        return std::nullopt;
    }
    return *s;
}

Result<DeleteOutcome, CacheError> CacheBackend::remove(const std::string& nai, std::uint16_t bid) {
    std::lock_guard lock(mu_);
    const Session* s = cache_.find(nai);
    if (s == nullptr) {
        return unexpected(CacheError::kNotFound);
    }
    DeleteOutcome out;
    const Session copy = *s;
    if (bid == 0) {
        for (const Path& p : copy.paths) {
            out.revocations_sent += (revoker_ && revoker_(copy, p)) ? 1 : 0;
        }
        auto r = cache_.remove(nai);
        if (!r) {
            return unexpected(r.error());
        }
        out.paths_removed = static_cast<std::uint32_t>(copy.paths.size());
        out.session_removed = true;
    } else {
        const Path* p = copy.find_path(bid);
        if (p == nullptr) {
            return unexpected(CacheError::kNotFound);
        }
        out.revocations_sent += (revoker_ && revoker_(copy, *p)) ? 1 : 0;
        auto r = cache_.remove_path(nai, bid);
        if (!r) {
            return unexpected(r.error());
        }
        out.paths_removed = 1;
        out.session_removed = *r;
    }
    counters_["mgmt.deletes"] += 1;
    counters_["mgmt.revocations_sent"] += out.revocations_sent;
    return out;
}

std::vector<std::pair<std::string, std::uint64_t>> CacheBackend::counters() {
    std::lock_guard lock(mu_);
    auto c = counters_;
    c["bindings.sessions"] = cache_.size();
    return {c.begin(), c.end()};
}

void CacheBackend::count(const std::string& name, std::uint64_t n) {
    std::lock_guard lock(mu_);
    counters_[name] += n;
}

std::uint64_t CacheBackend::subscribe(WatchCallback cb) {
    std::lock_guard lock(watch_mu_);
    const std::uint64_t id = next_watch_id_++;
    watchers_.emplace(id, std::move(cb));
    return id;
}

void CacheBackend::unsubscribe(std::uint64_t id) {
    std::lock_guard lock(watch_mu_);
    watchers_.erase(id);
}

std::optional<Session> CacheBackend::get_by_id(std::uint32_t id) {
    std::lock_guard lock(mu_);
    const Session* s = cache_.at(id);
    if (s == nullptr) {
        return std::nullopt;
    }
    return *s;
}

std::optional<std::uint32_t> CacheBackend::session_id(const std::string& nai) {
    std::lock_guard lock(mu_);
    return cache_.session_id(nai);
}

std::map<std::string, std::uint32_t> CacheBackend::profile_sessions(const PolicySnapshot& policy,
                                                                    std::size_t max_sessions) {
    std::map<std::string, std::uint32_t> out;
    const std::size_t want = policy.policy.profiles.size();
    std::uint64_t cursor = 0;
    std::size_t seen = 0;
    std::lock_guard lock(mu_);
    do {
        cursor = cache_.for_each_page_id(cursor, 1024, [&](std::uint32_t id, const Session& s) {
            ++seen;
            if (!s.flows.empty()) {
                return;  // classified with its own profile (flows/<id>)
            }
            if (const policy::Profile* p = policy.profile_for(s.nai); p != nullptr) {
                out.emplace(p->name, id);
            }
        });
    } while (cursor != 0 && out.size() < want && seen < max_sessions);
    return out;
}

}  // namespace hag::control::mgmt
