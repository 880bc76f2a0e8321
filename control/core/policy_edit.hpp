// Run-time edits of the flow policy (docs/policy.md#run-time-edits): `hagctl policy ...`
// through Management.EditPolicy.
//
// The configuration file stays the base. Edits are kept as an overlay (v1::PolicyOverlay) on
// top of the file's policy part: an application or profile named in the overlay replaces the
// file's of that name (or is added), removed names take the file's away, and the default
// profile and per-subscriber assignments set at run time win over the file's. A reload
// (SIGHUP) re-reads the file and applies the overlay again on top of it; `revert` drops the
// overlay. Every edit and every merge is checked by the configuration's own checks
// (check_policy in core/config.hpp: compile_policy and the policy_profile references), so a
// run-time edit is refused for exactly what the file would be refused for.
//
// Plain data and pure functions; the daemon keeps the overlay, persists it and installs the
// PolicySnapshot an edit produces.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/policy.hpp"
#include "hag/result.hpp"
#include "hag/v1/config.pb.h"
#include "hag/v1/management.pb.h"

namespace hag::control {

// The policy part of a configuration: `policy`, default_profile.policy_profile, and the
// subscribers that name a policy_profile (nai and profile only). What PolicySnapshot::build and
// check_policy read.
v1::ControlConfig policy_part(const v1::ControlConfig& cfg);

// `part` with the overlay applied (no checks).
v1::ControlConfig apply_overlay(const v1::ControlConfig& part, const v1::PolicyOverlay& overlay);

// Text lines describing the overlay ("application HTTP replaced", "profile old removed").
std::vector<std::string> describe_overlay(const v1::ControlConfig& file_part,
                                          const v1::PolicyOverlay& overlay);

// Whether a profile / application of the merged policy comes from the overlay.
bool overlay_has_profile(const v1::PolicyOverlay& overlay, const std::string& name);

struct PolicyEditError {
    enum class Code : std::uint8_t {
        kInvalid,      // INVALID_ARGUMENT: refused by the configuration's checks
        kExists,       // ALREADY_EXISTS: ADD of a name that exists
        kNotFound,     // NOT_FOUND: REPLACE / REMOVE of a name that does not
        kInUse,        // FAILED_PRECONDITION: removing what the policy still uses
        kVersion,      // ABORTED: expected_version is not the version in force
        kInternal,     // INTERNAL: the overlay could not be written (nothing changed)
        kUnavailable,  // UNIMPLEMENTED: this server takes no run-time edits
    };
    Code code = Code::kInvalid;
    std::string message;
};

struct PolicyEditResult {
    v1::PolicyOverlay overlay;  // the new overlay (version not set: the caller's)
    v1::ControlConfig merged;   // the file's part with it, checked
    std::string summary;        // "rule SSH of profile home replaced"
};

// Applies one edit to `overlay` over `file_part` and checks the result as the file is checked.
Result<PolicyEditResult, PolicyEditError> apply_edit(const v1::ControlConfig& file_part,
                                                     const v1::PolicyOverlay& overlay,
                                                     const v1::EditPolicyRequest& edit);

// The overlay over a (new) file's part, checked: the errors, empty when it applies.
std::vector<std::string> check_overlay(const v1::ControlConfig& file_part,
                                       const v1::PolicyOverlay& overlay);

// The overlay file in a state directory, and reading / writing it (atomically: a temporary
// file, fsync, rename, fsync of the directory). read: an absent file is an empty overlay.
std::string overlay_path(const std::string& state_directory);
Result<v1::PolicyOverlay, std::string> read_overlay(const std::string& path);
Result<void, std::string> write_overlay(const std::string& path, const v1::PolicyOverlay& o);

// The policy hag-control runs with: the file's part, the overlay, the version. Thread-safe (edits
// come from gRPC threads, reloads from the core's). Every change builds a new PolicySnapshot
// and hands it to `install` (under the editor's lock, so snapshots are installed in version
// order).
class PolicyEditor {
  public:
    using Install = std::function<void(std::shared_ptr<const PolicySnapshot>)>;
    // `overlay_file` empty: edits are not persisted (persistence off).
    PolicyEditor(Install install, std::string overlay_file);

    // Start-up: the file's policy with the persisted overlay. An overlay that cannot be read or
    // does not apply to this file is an error (hag-control does not start: the operator fixes
    // the file or removes the overlay file).
    Result<void, std::string> start(const v1::ControlConfig& cfg);
    // Reload: the new file's policy with the overlay on top. When the overlay does not apply
    // to the new file nothing changes and the error says why.
    Result<void, std::string> reload(const v1::ControlConfig& cfg);
    // One edit: checked, persisted, installed; or refused and nothing changes.
    Result<v1::EditPolicyReply, PolicyEditError> edit(const v1::EditPolicyRequest& req);

    [[nodiscard]] std::uint64_t version() const;
    [[nodiscard]] const std::string& overlay_file() const noexcept { return path_; }

  private:
    void install_locked(const v1::ControlConfig& merged);

    mutable std::mutex mu_;
    Install install_;
    std::string path_;
    v1::ControlConfig file_;     // the configuration file's policy part
    v1::PolicyOverlay overlay_;  // run-time edits
    std::uint64_t version_ = 0;
};

}  // namespace hag::control
