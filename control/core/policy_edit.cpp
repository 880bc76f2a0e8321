#include "core/policy_edit.hpp"

#include <fcntl.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "core/config.hpp"

namespace hag::control {

namespace {

using Code = PolicyEditError::Code;

PolicyEditError err(Code c, std::string m) {
    return PolicyEditError{c, std::move(m)};
}

template <typename List>
int index_of(const List& list, const std::string& name) {
    for (int i = 0; i < list.size(); ++i) {
        if (list.Get(i).name() == name) {
            return i;
        }
    }
    return -1;
}

template <typename List, typename T>
void upsert(List& list, const T& item) {
    const int i = index_of(list, item.name());
    if (i >= 0) {
        *list.Mutable(i) = item;
    } else {
        *list.Add() = item;
    }
}

template <typename List>
void erase_named(List& list, const std::string& name) {
    const int i = index_of(list, name);
    if (i >= 0) {
        list.DeleteSubrange(i, 1);
    }
}

void erase_string(google::protobuf::RepeatedPtrField<std::string>& list, const std::string& s) {
    for (int i = 0; i < list.size(); ++i) {
        if (list.Get(i) == s) {
            list.DeleteSubrange(i, 1);
            return;
        }
    }
}

void add_string(google::protobuf::RepeatedPtrField<std::string>& list, const std::string& s) {
    if (std::find(list.begin(), list.end(), s) == list.end()) {
        *list.Add() = s;
    }
}

// The profile subscribers without one of their own use, as PolicySnapshot::build resolves it.
std::string effective_default(const v1::ControlConfig& part) {
    return !part.default_profile().policy_profile().empty()
               ? part.default_profile().policy_profile()
               : part.policy().default_profile();
}

const char* verb(v1::EditPolicyRequest::Mode m, bool existed) {
    switch (m) {
        case v1::EditPolicyRequest::ADD:
            return "added";
        case v1::EditPolicyRequest::REPLACE:
            return "replaced";
        case v1::EditPolicyRequest::REMOVE:
            return "removed";
        default:
            return existed ? "replaced" : "added";
    }
}

// ADD / REPLACE / SET / REMOVE against whether the thing exists.
std::optional<PolicyEditError> check_mode(v1::EditPolicyRequest::Mode m, bool exists,
                                          const std::string& what) {
    switch (m) {
        case v1::EditPolicyRequest::ADD:
            if (exists) {
                return err(Code::kExists, what + " exists (use replace)");
            }
            return std::nullopt;
        case v1::EditPolicyRequest::REPLACE:
        case v1::EditPolicyRequest::REMOVE:
            if (!exists) {
                return err(Code::kNotFound, "no " + what);
            }
            return std::nullopt;
        case v1::EditPolicyRequest::SET:
            return std::nullopt;
        default:
            return err(Code::kInvalid, "mode: ADD, REPLACE, REMOVE or SET is required");
    }
}

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : sep) + s;
    }
    return out;
}

}  // namespace

v1::ControlConfig policy_part(const v1::ControlConfig& cfg) {
    v1::ControlConfig out;
    *out.mutable_policy() = cfg.policy();
    // Not policy, but programmed with the policy snapshot (PolicySnapshot::build): the home
    // agent's tunnel type (IP-in-IP for home registrations without GRE keys).
    out.mutable_home_agent()->set_tunnel(cfg.home_agent().tunnel());
    // Likewise the paths' tunnel MTUs (PolicySnapshot::path_mtus).
    *out.mutable_path_mtus() = cfg.path_mtus();
    if (!cfg.default_profile().policy_profile().empty()) {
        out.mutable_default_profile()->set_policy_profile(cfg.default_profile().policy_profile());
    }
    for (const auto& sub : cfg.subscribers()) {
        if (!sub.profile().policy_profile().empty()) {
            auto* s = out.add_subscribers();
            s->set_nai(sub.nai());
            s->mutable_profile()->set_policy_profile(sub.profile().policy_profile());
        }
    }
    return out;
}

v1::ControlConfig apply_overlay(const v1::ControlConfig& part, const v1::PolicyOverlay& o) {
    v1::ControlConfig out = part;
    v1::PolicyConfig* pol = out.mutable_policy();
    for (const auto& name : o.removed_applications()) {
        erase_named(*pol->mutable_applications(), name);
    }
    for (const auto& a : o.applications()) {
        upsert(*pol->mutable_applications(), a);
    }
    for (const auto& name : o.removed_profiles()) {
        erase_named(*pol->mutable_profiles(), name);
    }
    for (const auto& p : o.profiles()) {
        upsert(*pol->mutable_profiles(), p);
    }
    if (o.has_default_profile()) {
        pol->set_default_profile(o.default_profile());
        out.mutable_default_profile()->clear_policy_profile();
    }
    if (o.assignments_size() > 0) {
        std::unordered_map<std::string, int> by_nai;
        for (int i = 0; i < out.subscribers_size(); ++i) {
            by_nai.emplace(out.subscribers(i).nai(), i);
        }
        for (const auto& a : o.assignments()) {
            auto it = by_nai.find(a.nai());
            v1::Subscriber* s = nullptr;
            if (it != by_nai.end()) {
                s = out.mutable_subscribers(it->second);
            } else {
                by_nai.emplace(a.nai(), out.subscribers_size());
                s = out.add_subscribers();
                s->set_nai(a.nai());
            }
            s->mutable_profile()->set_policy_profile(a.profile());
        }
    }
    return out;
}

bool overlay_has_profile(const v1::PolicyOverlay& overlay, const std::string& name) {
    return index_of(overlay.profiles(), name) >= 0;
}

std::vector<std::string> describe_overlay(const v1::ControlConfig& file_part,
                                          const v1::PolicyOverlay& o) {
    std::vector<std::string> out;
    for (const auto& a : o.applications()) {
        out.push_back(fmt::format(
            "application {} {}", a.name(),
            index_of(file_part.policy().applications(), a.name()) >= 0 ? "replaced" : "added"));
    }
    for (const auto& n : o.removed_applications()) {
        out.push_back(fmt::format("application {} removed", n));
    }
    for (const auto& p : o.profiles()) {
        out.push_back(fmt::format(
            "profile {} {}", p.name(),
            index_of(file_part.policy().profiles(), p.name()) >= 0 ? "replaced" : "added"));
    }
    for (const auto& n : o.removed_profiles()) {
        out.push_back(fmt::format("profile {} removed", n));
    }
    if (o.has_default_profile()) {
        out.push_back(o.default_profile().empty()
                          ? std::string("default profile: none")
                          : fmt::format("default profile: {}", o.default_profile()));
    }
    for (const auto& a : o.assignments()) {
        out.push_back(a.profile().empty()
                          ? fmt::format("subscriber {}: the default profile", a.nai())
                          : fmt::format("subscriber {}: profile {}", a.nai(), a.profile()));
    }
    return out;
}

Result<PolicyEditResult, PolicyEditError> apply_edit(const v1::ControlConfig& file_part,
                                                     const v1::PolicyOverlay& overlay,
                                                     const v1::EditPolicyRequest& edit) {
    const v1::ControlConfig merged = apply_overlay(file_part, overlay);
    const v1::PolicyConfig& pol = merged.policy();
    v1::PolicyOverlay o = overlay;
    std::string summary;
    const auto mode = edit.mode();
    switch (edit.target_case()) {
        case v1::EditPolicyRequest::kApplication: {
            const auto& app = edit.application();
            if (app.name().empty()) {
                return unexpected(err(Code::kInvalid, "application.name: required"));
            }
            const bool exists = index_of(pol.applications(), app.name()) >= 0;
            if (auto e = check_mode(mode, exists, "application '" + app.name() + "'")) {
                return unexpected(*e);
            }
            if (mode == v1::EditPolicyRequest::REMOVE) {
                for (const auto& p : pol.profiles()) {
                    for (int r = 0; r < p.rules_size(); ++r) {
                        if (p.rules(r).application() == app.name()) {
                            return unexpected(
                                err(Code::kInUse,
                                    fmt::format("application '{}' is used by rule {} of profile "
                                                "'{}': remove that rule first",
                                                app.name(), r + 1, p.name())));
                        }
                    }
                }
                erase_named(*o.mutable_applications(), app.name());
                if (index_of(file_part.policy().applications(), app.name()) >= 0) {
                    add_string(*o.mutable_removed_applications(), app.name());
                }
            } else {
                upsert(*o.mutable_applications(), app);
                erase_string(*o.mutable_removed_applications(), app.name());
            }
            summary = fmt::format("application {} {}", app.name(), verb(mode, exists));
            break;
        }
        case v1::EditPolicyRequest::kProfile: {
            const auto& prof = edit.profile();
            if (prof.name().empty()) {
                return unexpected(err(Code::kInvalid, "profile.name: required"));
            }
            const bool exists = index_of(pol.profiles(), prof.name()) >= 0;
            if (auto e = check_mode(mode, exists, "profile '" + prof.name() + "'")) {
                return unexpected(*e);
            }
            if (mode == v1::EditPolicyRequest::REMOVE) {
                if (pol.default_profile() == prof.name() ||
                    merged.default_profile().policy_profile() == prof.name()) {
                    return unexpected(
                        err(Code::kInUse,
                            fmt::format("profile '{}' is the default profile: set another default "
                                        "profile (or remove the default) first",
                                        prof.name())));
                }
                std::vector<std::string> users;
                std::size_t n = 0;
                for (const auto& s : merged.subscribers()) {
                    if (s.profile().policy_profile() == prof.name()) {
                        if (++n <= 3) {
                            users.push_back(s.nai());
                        }
                    }
                }
                if (n > 0) {
                    return unexpected(err(
                        Code::kInUse,
                        fmt::format("profile '{}' is assigned to {} subscriber(s) ({}{}): assign "
                                    "them another profile first",
                                    prof.name(), n, join(users, ", "), n > 3 ? ", ..." : "")));
                }
                erase_named(*o.mutable_profiles(), prof.name());
                if (index_of(file_part.policy().profiles(), prof.name()) >= 0) {
                    add_string(*o.mutable_removed_profiles(), prof.name());
                }
            } else {
                upsert(*o.mutable_profiles(), prof);
                erase_string(*o.mutable_removed_profiles(), prof.name());
            }
            summary = fmt::format("profile {} {}", prof.name(), verb(mode, exists));
            break;
        }
        case v1::EditPolicyRequest::kRule: {
            const auto& re = edit.rule();
            const std::string& app = re.rule().application();
            if (re.profile().empty()) {
                return unexpected(err(Code::kInvalid, "rule.profile: required"));
            }
            if (app.empty()) {
                return unexpected(err(Code::kInvalid, "rule.rule.application: required"));
            }
            const int pi = index_of(pol.profiles(), re.profile());
            if (pi < 0) {
                return unexpected(err(Code::kNotFound, "no profile '" + re.profile() + "'"));
            }
            v1::PolicyProfile prof = pol.profiles(pi);
            int ri = -1;
            for (int r = 0; r < prof.rules_size(); ++r) {
                if (prof.rules(r).application() == app) {
                    ri = r;
                    break;
                }
            }
            if (auto e = check_mode(
                    mode, ri >= 0,
                    fmt::format("rule for application '{}' in profile '{}'", app, re.profile()))) {
                return unexpected(*e);
            }
            if (mode == v1::EditPolicyRequest::REMOVE) {
                prof.mutable_rules()->DeleteSubrange(ri, 1);
            } else if (ri >= 0) {
                *prof.mutable_rules(ri) = re.rule();
            } else {
                *prof.add_rules() = re.rule();
            }
            upsert(*o.mutable_profiles(), prof);
            summary =
                fmt::format("rule {} of profile {} {}", app, re.profile(), verb(mode, ri >= 0));
            break;
        }
        case v1::EditPolicyRequest::kDefaultProfile: {
            const std::string& name = edit.default_profile();
            const bool exists = !effective_default(merged).empty();
            if (auto e = check_mode(mode, exists, "default profile")) {
                return unexpected(*e);
            }
            if (mode == v1::EditPolicyRequest::REMOVE) {
                o.set_default_profile("");
                summary = "default profile removed (subscribers without a profile stripe)";
            } else {
                if (name.empty()) {
                    return unexpected(err(Code::kInvalid,
                                          "default_profile: a profile name is required (remove "
                                          "clears the default)"));
                }
                o.set_default_profile(name);
                summary = fmt::format("default profile {} ({})", name, verb(mode, exists));
            }
            break;
        }
        case v1::EditPolicyRequest::kAssignment: {
            const auto& a = edit.assignment();
            if (a.nai().empty()) {
                return unexpected(err(Code::kInvalid, "assignment.nai: required"));
            }
            bool exists = false;
            for (const auto& s : merged.subscribers()) {
                if (s.nai() == a.nai() && !s.profile().policy_profile().empty()) {
                    exists = true;
                    break;
                }
            }
            if (auto e = check_mode(mode, exists, "profile assignment for '" + a.nai() + "'")) {
                return unexpected(*e);
            }
            if (mode != v1::EditPolicyRequest::REMOVE && a.profile().empty()) {
                return unexpected(err(Code::kInvalid,
                                      "assignment.profile: a profile name is required (remove "
                                      "returns the subscriber to the default profile)"));
            }
            const std::string profile =
                mode == v1::EditPolicyRequest::REMOVE ? std::string() : a.profile();
            bool in_file = false;
            for (const auto& s : file_part.subscribers()) {
                in_file = in_file || s.nai() == a.nai();
            }
            auto* list = o.mutable_assignments();
            int idx = -1;
            for (int i = 0; i < list->size(); ++i) {
                if (list->Get(i).nai() == a.nai()) {
                    idx = i;
                }
            }
            if (profile.empty() && !in_file) {
                if (idx >= 0) {
                    list->DeleteSubrange(idx, 1);
                }
            } else {
                v1::PolicyAssignment* dst = idx >= 0 ? list->Mutable(idx) : list->Add();
                dst->set_nai(a.nai());
                dst->set_profile(profile);
            }
            summary = profile.empty()
                          ? fmt::format("subscriber {}: back to the default profile", a.nai())
                          : fmt::format("subscriber {}: profile {} ({})", a.nai(), profile,
                                        verb(mode, exists));
            break;
        }
        case v1::EditPolicyRequest::kRevert:
            o.Clear();
            summary = "run-time edits dropped: the configuration file's policy";
            break;
        case v1::EditPolicyRequest::TARGET_NOT_SET:
            return unexpected(err(Code::kInvalid,
                                  "no edit: give an application, profile, rule, default_profile, "
                                  "assignment or revert"));
    }
    o.clear_version();
    v1::ControlConfig next = apply_overlay(file_part, o);
    if (auto errors = check_policy(next); !errors.empty()) {
        return unexpected(err(Code::kInvalid, join(errors, "; ")));
    }
    return PolicyEditResult{std::move(o), std::move(next), std::move(summary)};
}

std::vector<std::string> check_overlay(const v1::ControlConfig& file_part,
                                       const v1::PolicyOverlay& overlay) {
    return check_policy(apply_overlay(file_part, overlay));
}

std::string overlay_path(const std::string& state_directory) {
    return (std::filesystem::path(state_directory) / "policy-overlay.txtpb").string();
}

Result<v1::PolicyOverlay, std::string> read_overlay(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) {
            return v1::PolicyOverlay{};
        }
        return unexpected(fmt::format("{}: {}", path, std::strerror(errno)));
    }
    std::ostringstream text;
    text << in.rdbuf();
    struct FirstError : google::protobuf::io::ErrorCollector {
        std::string text;
        void AddError(int line, google::protobuf::io::ColumnNumber column,
                      const std::string& message) override {
            if (text.empty()) {
                text = fmt::format("{}:{}: {}", line + 1, column + 1, message);
            }
        }
    } errors;
    google::protobuf::TextFormat::Parser parser;
    parser.RecordErrorsTo(&errors);
    v1::PolicyOverlay o;
    if (!parser.ParseFromString(text.str(), &o)) {
        return unexpected(
            fmt::format("{}:{} (not a hag.v1.PolicyOverlay in text format)", path, errors.text));
    }
    return o;
}

Result<void, std::string> write_overlay(const std::string& path, const v1::PolicyOverlay& o) {
    std::string text =
        "# hag-control's run-time flow policy edits (hagctl policy ...), applied over the\n"
        "# configuration file's policy; `hagctl policy revert` drops them. hag.v1.PolicyOverlay.\n";
    std::string body;
    google::protobuf::TextFormat::PrintToString(o, &body);
    text += body;
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        return unexpected(fmt::format("{}: {}", tmp, std::strerror(errno)));
    }
    std::size_t off = 0;
    while (off < text.size()) {
        const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            const int e = errno;
            ::close(fd);
            return unexpected(fmt::format("{}: {}", tmp, std::strerror(e)));
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fdatasync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        return unexpected(fmt::format("{}: fdatasync: {}", tmp, std::strerror(e)));
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        return unexpected(fmt::format("{}: rename: {}", path, std::strerror(errno)));
    }
    const std::string dir = std::filesystem::path(path).parent_path().string();
    if (const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

namespace {

class FileOverlayStore final : public OverlayStore {
  public:
    explicit FileOverlayStore(std::string path) : path_(std::move(path)) {}
    Result<Stored, std::string> read() override {
        auto o = read_overlay(path_);
        if (!o) {
            return unexpected(o.error());
        }
        return Stored{std::move(*o), 0};
    }
    Result<std::int64_t, WriteError> write(const v1::PolicyOverlay& o, std::int64_t) override {
        if (auto w = write_overlay(path_, o); !w) {
            return unexpected(WriteError{false, w.error()});
        }
        return 0;
    }
    [[nodiscard]] std::string where() const override { return path_; }

  private:
    std::string path_;
};

}  // namespace

std::unique_ptr<OverlayStore> file_overlay_store(std::string path) {
    return std::make_unique<FileOverlayStore>(std::move(path));
}

PolicyEditor::PolicyEditor(Install install, std::string overlay_file)
    : install_(std::move(install)), path_(std::move(overlay_file)) {
    if (!path_.empty()) {
        store_ = file_overlay_store(path_);
    }
}

void PolicyEditor::use_store(std::unique_ptr<OverlayStore> store) {
    std::lock_guard lock(mu_);
    store_ = std::move(store);
    path_.clear();
}

std::string PolicyEditor::where() const {
    std::lock_guard lock(mu_);
    return store_ ? store_->where() : std::string{};
}

std::uint64_t PolicyEditor::version() const {
    std::lock_guard lock(mu_);
    return version_;
}

void PolicyEditor::install_locked(const v1::ControlConfig& merged) {
    auto snap = PolicySnapshot::build(merged);
    if (!snap) {
        return;  // checked before: cannot happen
    }
    snap->version = version_;
    snap->runtime_edits = describe_overlay(file_, overlay_);
    for (const auto& p : overlay_.profiles()) {
        snap->runtime_profiles.insert(p.name());
    }
    install_(std::move(snap));
}

Result<void, std::string> PolicyEditor::start(const v1::ControlConfig& cfg) {
    std::lock_guard lock(mu_);
    file_ = policy_part(cfg);
    if (store_) {
        auto o = store_->read();
        if (!o) {
            return unexpected("policy overlay " + o.error());
        }
        if (auto errors = check_overlay(file_, o->overlay); !errors.empty()) {
            return unexpected(fmt::format(
                "policy overlay {} (run-time edits) does not apply to the configuration: {}; "
                "fix the configuration, or {} to drop the edits",
                store_->where(), join(errors, "; "),
                path_.empty() ? "`hagctl policy revert` at another node" : "remove the file"));
        }
        overlay_ = std::move(o->overlay);
        revision_ = o->revision;
    }
    version_ = overlay_.version() + 1;
    install_locked(apply_overlay(file_, overlay_));
    return {};
}

Result<void, std::string> PolicyEditor::reload(const v1::ControlConfig& cfg) {
    std::lock_guard lock(mu_);
    v1::ControlConfig part = policy_part(cfg);
    if (auto errors = check_overlay(part, overlay_); !errors.empty()) {
        return unexpected(fmt::format(
            "the run-time policy edits ({}) do not apply to the new file: {} (fix the file, or "
            "drop the edits with `hagctl policy revert`)",
            join(describe_overlay(part, overlay_), ", "), join(errors, "; ")));
    }
    file_ = std::move(part);
    refused_revision_ = -1;  // stored edits refused before may apply to the new file
    ++version_;
    install_locked(apply_overlay(file_, overlay_));
    return {};
}

Result<bool, PolicyEditor::RefreshError> PolicyEditor::refresh() {
    std::lock_guard lock(mu_);
    return refresh_locked();
}

Result<bool, PolicyEditor::RefreshError> PolicyEditor::refresh_locked() {
    if (!store_) {
        return false;
    }
    auto s = store_->read();
    if (!s) {
        return unexpected(RefreshError{true, s.error()});
    }
    if (s->revision == revision_ || s->revision == refused_revision_) {
        return false;
    }
    if (auto errors = check_overlay(file_, s->overlay); !errors.empty()) {
        refused_revision_ = s->revision;
        return unexpected(RefreshError{
            false,
            fmt::format("the run-time policy edits in {} (version {}) do not apply to this node's "
                        "configuration file: {}; this node keeps policy version {} (fix its file "
                        "and reload)",
                        store_->where(), s->overlay.version(), join(errors, "; "), version_)});
    }
    overlay_ = std::move(s->overlay);
    revision_ = s->revision;
    version_ = std::max(version_ + 1, overlay_.version());
    install_locked(apply_overlay(file_, overlay_));
    return true;
}

Result<v1::EditPolicyReply, PolicyEditError> PolicyEditor::edit(const v1::EditPolicyRequest& req) {
    std::lock_guard lock(mu_);
    if (req.expected_version() != 0 && req.expected_version() != version_) {
        return unexpected(
            err(Code::kVersion, fmt::format("expected_version {}: the policy is at version {}",
                                            req.expected_version(), version_)));
    }
    auto r = apply_edit(file_, overlay_, req);
    if (!r) {
        return unexpected(r.error());
    }
    const v1::ControlConfig before = apply_overlay(file_, overlay_);
    r->overlay.set_version(version_ + 1);
    if (store_) {
        auto w = store_->write(r->overlay, revision_);
        if (!w && w.error().conflict) {
            // Another node stored an edit first: take it, so the next attempt starts from it.
            auto taken = refresh_locked();
            return unexpected(
                err(Code::kVersion,
                    fmt::format("the policy was edited at another node meanwhile ({}); nothing "
                                "changed here: look at `hagctl policy show` and repeat the edit",
                                taken ? fmt::format("now at version {}", version_)
                                      : taken.error().message)));
        }
        if (!w) {
            return unexpected(
                err(Code::kInternal, "cannot persist the edit: " + w.error().message));
        }
        revision_ = *w;
    }
    overlay_ = std::move(r->overlay);
    ++version_;
    install_locked(r->merged);
    v1::EditPolicyReply out;
    out.set_version(version_);
    out.set_summary(r->summary);
    out.set_persisted(store_ != nullptr);
    // Profiles whose content changed (what the data plane compiles again).
    std::uint32_t changed = 0;
    for (const auto& p : r->merged.policy().profiles()) {
        const int i = index_of(before.policy().profiles(), p.name());
        changed += i < 0 || !google::protobuf::util::MessageDifferencer::Equals(
                                before.policy().profiles(i), p);
    }
    out.set_profiles_changed(changed);
    return out;
}

}  // namespace hag::control
