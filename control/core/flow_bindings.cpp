#include "core/flow_bindings.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "hag/mh/flow_binding.hpp"

namespace hag::control {

namespace {

FlowBindingEntry* find_fid(std::vector<FlowBindingEntry>& v, std::uint16_t fid) {
    auto it =
        std::find_if(v.begin(), v.end(), [&](const FlowBindingEntry& f) { return f.fid == fid; });
    return it == v.end() ? nullptr : &*it;
}

mh::Option reply(std::uint16_t fid, std::uint16_t priority, mh::FlowStatus status,
                 const std::vector<std::uint16_t>& bids = {}) {
    return mh::flow_reply(mh::FlowBinding{fid, priority, bids, std::nullopt}, status);
}

}  // namespace

std::vector<mh::Option> apply_flow_options(Session& s, const mh::Options& opts,
                                           const std::function<void(const std::string&)>& count) {
    const auto fis = mh::find_options<mh::FlowIdentification>(opts);
    const auto summaries = mh::find_options<mh::FlowSummary>(opts);
    std::vector<mh::Option> replies;
    if (fis.empty() && summaries.empty()) {
        return replies;
    }
    std::vector<FlowBindingEntry> next;
    std::vector<std::uint16_t> named;
    auto refuse = [&](std::uint16_t fid, std::uint16_t prio, mh::FlowStatus st,
                      const std::string& why) {
        count(fmt::format("flow_binding.refused.{:03d}", static_cast<int>(st)));
        spdlog::info("session {}: flow binding fid {} refused: {} ({})", s.nai, fid,
                     mh::flow_status_name(static_cast<std::uint8_t>(st)), why);
        replies.push_back(reply(fid, prio, st));
    };
    for (const auto* fs : summaries) {
        for (const std::uint16_t fid : fs->fids) {
            if (std::find(named.begin(), named.end(), fid) != named.end()) {
                continue;
            }
            named.push_back(fid);
            if (FlowBindingEntry* old = find_fid(s.flows, fid)) {
                next.push_back(*old);
                replies.push_back(reply(fid, old->priority, mh::FlowStatus::kSuccess, old->bids));
            } else {
                refuse(fid, 0, mh::FlowStatus::kFidNotFound, "flow summary names an unknown FID");
            }
        }
    }
    for (const auto* fi : fis) {
        if (std::find(named.begin(), named.end(), fi->fid) != named.end() &&
            find_fid(next, fi->fid) == nullptr) {
            // Named twice in this PBU, the first refused: refuse this one too.
            refuse(fi->fid, fi->priority, mh::FlowStatus::kMalformed, "FID named twice");
            continue;
        }
        auto b = mh::parse_flow_binding(*fi);
        if (!b.ok()) {
            refuse(fi->fid, fi->priority, b.error().status, b.error().what);
            continue;
        }
        FlowBindingEntry e;
        e.fid = b->fid;
        e.priority = b->priority;
        e.bids = b->bids;
        if (b->selector) {
            std::string why;
            const auto cs = mh::classifiers_of(*b->selector, &why);
            if (!cs) {
                refuse(e.fid, e.priority, mh::FlowStatus::kRejectedUnspecified, why);
                continue;
            }
            // The data plane expands classifiers into ACL rules (prefix x prefix x DSCP): a
            // selector must not cost the session its profile.
            std::size_t expanded = 0;
            for (const auto& c : *cs) {
                expanded += std::max<std::size_t>(1, c.local_prefixes.size()) *
                            std::max<std::size_t>(1, c.remote_prefixes.size()) *
                            std::max<std::size_t>(1, c.dscp.size());
            }
            if (expanded > kMaxFlowExpansion) {
                refuse(e.fid, e.priority, mh::FlowStatus::kRejectedUnspecified,
                       fmt::format("selector expands to {} classifier rules (at most {})", expanded,
                                   kMaxFlowExpansion));
                continue;
            }
            e.selector = mh::encode_traffic_selector(*b->selector);
        } else if (FlowBindingEntry* old = find_fid(s.flows, e.fid)) {
            e.selector = old->selector;  // a change of BIDs / priority
        } else {
            refuse(e.fid, e.priority, mh::FlowStatus::kFidNotFound,
                   "no traffic selector and no binding with this FID");
            continue;
        }
        if (e.bids.size() > kMaxFlowBids) {
            refuse(e.fid, e.priority, mh::FlowStatus::kRejectedUnspecified,
                   fmt::format("more than {} BIDs", kMaxFlowBids));
            continue;
        }
        const auto missing = std::find_if(e.bids.begin(), e.bids.end(), [&](std::uint16_t bid) {
            return s.find_path(bid) == nullptr;
        });
        if (missing != e.bids.end()) {
            refuse(e.fid, e.priority, mh::FlowStatus::kBidNotFound,
                   fmt::format("BID {} is not registered", *missing));
            continue;
        }
        if (FlowBindingEntry* dup = find_fid(next, e.fid)) {
            *dup = e;  // replaces the binding a Flow Summary kept
            for (auto& r : replies) {
                auto* ri = std::get_if<mh::FlowIdentification>(&r);
                if (ri != nullptr && ri->fid == e.fid) {
                    *ri = std::get<mh::FlowIdentification>(
                        reply(e.fid, e.priority, mh::FlowStatus::kSuccess, e.bids));
                }
            }
            continue;
        }
        named.push_back(e.fid);
        if (next.size() >= kMaxFlowBindings) {
            refuse(e.fid, e.priority, mh::FlowStatus::kAdministrativelyProhibited,
                   fmt::format("more than {} flow bindings", kMaxFlowBindings));
            continue;
        }
        count("flow_binding.accepted");
        replies.push_back(reply(e.fid, e.priority, mh::FlowStatus::kSuccess, e.bids));
        next.push_back(std::move(e));
    }
    std::stable_sort(next.begin(), next.end(),
                     [](const FlowBindingEntry& a, const FlowBindingEntry& b) {
                         return a.priority != b.priority ? a.priority < b.priority : a.fid < b.fid;
                     });
    if (next != s.flows) {
        for (const auto& f : next) {
            spdlog::info("session {}: flow binding {}", s.nai, describe(f));
        }
        if (next.empty()) {
            spdlog::info("session {}: no flow bindings", s.nai);
        }
    }
    s.flows = std::move(next);
    return replies;
}

std::string describe(const FlowBindingEntry& f) {
    std::string sel = "?";
    if (auto ts = mh::decode_traffic_selector(f.selector); ts.ok()) {
        sel = mh::describe(*ts);
    }
    std::string to = "discard";
    if (!f.bids.empty()) {
        to = "bid";
        for (std::size_t i = 0; i < f.bids.size(); ++i) {
            to += fmt::format("{}{}", i == 0 ? " " : ", ", f.bids[i]);
        }
    }
    return fmt::format("fid {} prio {} {} -> {}", f.fid, f.priority, sel, to);
}

}  // namespace hag::control
