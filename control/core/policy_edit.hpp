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

// Where the run-time edits are kept: a file in the state directory serves one node
// (file_overlay_store); a key in etcd serves every node of a cluster (etcd_policy.hpp). Writes
// are conditional on the revision last read or written, so two nodes editing at once cannot
// overwrite each other's edit.
class OverlayStore {
  public:
    struct Stored {
        v1::PolicyOverlay overlay;
        std::int64_t revision = 0;  // 0: nothing stored (an empty overlay)
    };
    struct WriteError {
        bool conflict = false;  // the stored overlay is no longer at the expected revision
        std::string message;
    };
    virtual ~OverlayStore() = default;
    virtual Result<Stored, std::string> read() = 0;
    // Stores `o` if the stored revision is still `expected`: the new revision.
    virtual Result<std::int64_t, WriteError> write(const v1::PolicyOverlay& o,
                                                   std::int64_t expected) = 0;
    [[nodiscard]] virtual std::string where() const = 0;
};

// The overlay file (read_overlay / write_overlay); its revision is always 0 (one writer).
std::unique_ptr<OverlayStore> file_overlay_store(std::string path);

// The policy hag-control runs with: the file's part, the overlay, the version. Thread-safe (edits
// come from gRPC threads, reloads from the core's). Every change builds a new PolicySnapshot
// and hands it to `install` (under the editor's lock, so snapshots are installed in version
// order).
class PolicyEditor {
  public:
    using Install = std::function<void(std::shared_ptr<const PolicySnapshot>)>;
    // `overlay_file` empty: edits are not persisted (persistence off).
    PolicyEditor(Install install, std::string overlay_file);
    // Keeps the edits in `store` instead of the overlay file (a cluster: etcd). Before start().
    void use_store(std::unique_ptr<OverlayStore> store);

    // Start-up: the file's policy with the persisted overlay. An overlay that cannot be read or
    // does not apply to this file is an error (hag-control does not start: the operator fixes
    // the file or removes the overlay file).
    Result<void, std::string> start(const v1::ControlConfig& cfg);
    // Reload: the new file's policy with the overlay on top. When the overlay does not apply
    // to the new file nothing changes and the error says why.
    Result<void, std::string> reload(const v1::ControlConfig& cfg);
    // One edit: checked, persisted, installed; or refused and nothing changes.
    Result<v1::EditPolicyReply, PolicyEditError> edit(const v1::EditPolicyRequest& req);

    // Why refresh() failed: the store could not be read (unreadable), or the stored edits do
    // not apply to this node's file (reported once per stored revision).
    struct RefreshError {
        bool unreadable = false;
        std::string message;
    };
    // A shared store: takes the edits another node stored since the last read or write.
    // true: they were adopted (a new version is installed); false: nothing new. On an error
    // this node keeps its version.
    Result<bool, RefreshError> refresh();

    [[nodiscard]] std::uint64_t version() const;
    [[nodiscard]] const std::string& overlay_file() const noexcept { return path_; }
    // Where the edits are kept ("" when they are not).
    [[nodiscard]] std::string where() const;

  private:
    void install_locked(const v1::ControlConfig& merged);
    Result<bool, RefreshError> refresh_locked();

    mutable std::mutex mu_;
    Install install_;
    std::string path_;
    std::unique_ptr<OverlayStore> store_;  // null: edits are not persisted
    std::int64_t revision_ = 0;            // of the overlay in force, in store_
    std::int64_t refused_revision_ = -1;   // a stored overlay that does not apply here
    v1::ControlConfig file_;               // the configuration file's policy part
    v1::PolicyOverlay overlay_;            // run-time edits
    std::uint64_t version_ = 0;
};

}  // namespace hag::control
