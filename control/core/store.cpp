#include "store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>

#include "store_format.hpp"

namespace hag::control::store {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int e) {
    return std::strerror(e);
}

std::string log_name(std::uint64_t gen) {
    return fmt::format("log-{:016x}", gen);
}

Result<std::vector<std::uint8_t>, std::string> read_all(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return unexpected(fmt::format("{}: {}", p.string(), errno_text(errno)));
    }
    std::vector<std::uint8_t> out;
    std::uint8_t buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            return unexpected(fmt::format("{}: read: {}", p.string(), errno_text(e)));
        }
        if (n == 0) {
            break;
        }
        out.insert(out.end(), buf, buf + n);
    }
    ::close(fd);
    return out;
}

Result<void, std::string> write_all(int fd, const std::uint8_t* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return unexpected(std::string("write: ") + errno_text(errno));
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return {};
}

Result<void, std::string> sync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return unexpected(fmt::format("{}: {}", dir, errno_text(errno)));
    }
    const int r = ::fsync(fd);
    const int e = errno;
    ::close(fd);
    if (r != 0) {
        return unexpected(fmt::format("fsync {}: {}", dir, errno_text(e)));
    }
    return {};
}

// Moves a file aside as <name>.corrupt (replacing an older one) for inspection.
void set_aside(const fs::path& p, Recovery& rec) {
    std::error_code ec;
    fs::rename(p, fs::path(p.string() + ".corrupt"), ec);
    rec.warnings.push_back(fmt::format("moved {} aside to {}.corrupt{}", p.string(), p.string(),
                                       ec ? " (failed: " + ec.message() + ")" : ""));
}

void apply(const Record& r, std::map<std::string, Session, std::less<>>& state) {
    if (r.type == RecordType::kPut) {
        state[r.session.nai] = r.session;
    } else if (r.type == RecordType::kDelete) {
        state.erase(r.nai);
    }
}

}  // namespace

std::string_view to_string(FsyncPolicy p) noexcept {
    return p == FsyncPolicy::kAlways ? "always" : "none";
}

Store::Store(StoreOptions o, int lock_fd)
    : dir_(std::move(o.dir)), fsync_(o.fsync), lock_fd_(lock_fd) {}

Store::~Store() {
    if (log_fd_ >= 0) {
        ::close(log_fd_);
    }
    if (lock_fd_ >= 0) {
        ::close(lock_fd_);  // releases the flock
    }
}

Result<std::unique_ptr<Store>, std::string> Store::open(const StoreOptions& o, Recovery& rec) {
    rec = Recovery{};
    std::error_code ec;
    fs::create_directories(o.dir, ec);
    if (ec) {
        return unexpected(fmt::format("state directory {}: {}", o.dir, ec.message()));
    }
    const fs::path dir(o.dir);
    const int lock_fd = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        return unexpected(fmt::format("state directory {}: lock: {}", o.dir, errno_text(errno)));
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        ::close(lock_fd);
        return unexpected(fmt::format("state directory {} is in use by another hag-control ({})",
                                      o.dir, e == EWOULDBLOCK ? "locked" : errno_text(e)));
    }
    std::unique_ptr<Store> st(new Store(o, lock_fd));

    // Files present.
    std::map<std::uint64_t, fs::path> logs;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() == 20 && name.rfind("log-", 0) == 0 &&
            name.find_first_not_of("0123456789abcdef", 4) == std::string::npos) {
            logs[std::stoull(name.substr(4), nullptr, 16)] = e.path();
        }
    }
    if (ec) {
        return unexpected(fmt::format("state directory {}: {}", o.dir, ec.message()));
    }

    std::map<std::string, Session, std::less<>> state;
    std::uint64_t base_gen = 0;
    const fs::path snap = dir / "snapshot";
    bool discard_all = false;
    if (fs::exists(snap, ec)) {
        auto bytes = read_all(snap);
        if (!bytes) {
            return unexpected("snapshot: " + bytes.error());
        }
        auto parsed = parse_snapshot(*bytes);
        if (!parsed) {
            if (!o.discard_corrupt) {
                return unexpected(fmt::format(
                    "snapshot {} is corrupt ({}); refusing to start. Move it away to start with "
                    "an empty binding cache, or set state_discard_corrupt: true",
                    snap.string(), parsed.error()));
            }
            rec.warnings.push_back(fmt::format("snapshot {} is corrupt ({}): starting EMPTY",
                                               snap.string(), parsed.error()));
            set_aside(snap, rec);
            discard_all = true;
        } else {
            rec.snapshot_found = true;
            base_gen = parsed->header.generation;
            rec.restart_counter = parsed->header.restart_counter;
            st->generation_ = base_gen;
            for (const auto& r : parsed->records) {
                apply(r, state);
            }
        }
    }
    for (const auto& [gen, path] : logs) {
        st->generation_ = std::max(st->generation_, gen);
        if (discard_all) {
            set_aside(path, rec);
            continue;
        }
        if (gen < base_gen) {
            continue;  // superseded by the snapshot; removed at the checkpoint
        }
        auto bytes = read_all(path);
        if (!bytes) {
            return unexpected("log: " + bytes.error());
        }
        if (bytes->size() < kHeaderSize) {
            // Created but its header never fully written (crash right at a checkpoint).
            rec.warnings.push_back(fmt::format("log {} has no complete header ({} octets): ignored",
                                               path.string(), bytes->size()));
            continue;
        }
        auto parsed = parse_file(*bytes);
        if (!parsed || parsed->header.kind != FileKind::kLog) {
            const std::string why = parsed ? "snapshot header in a log" : parsed.error();
            if (!o.discard_corrupt) {
                return unexpected(fmt::format(
                    "log {} is corrupt ({}); refusing to start. Move the state directory away "
                    "to start empty, or set state_discard_corrupt: true",
                    path.string(), why));
            }
            rec.warnings.push_back(
                fmt::format("log {} is corrupt ({}): its records are dropped", path.string(), why));
            set_aside(path, rec);
            continue;
        }
        ++rec.log_files;
        rec.restart_counter = parsed->header.restart_counter;
        for (const auto& r : parsed->records) {
            apply(r, state);
        }
        rec.log_records += parsed->records.size();
        if (parsed->tail_error) {
            rec.warnings.push_back(fmt::format(
                "log {}: {}; the {} record(s) before it ({} of {} octets) are used, the rest is "
                "dropped (a write torn by a crash, or corruption)",
                path.string(), *parsed->tail_error, parsed->records.size(), parsed->valid_bytes,
                bytes->size()));
            std::error_code cec;
            fs::copy_file(path, fs::path(path.string() + ".corrupt"),
                          fs::copy_options::overwrite_existing, cec);
        }
    }
    rec.sessions.reserve(state.size());
    for (auto& [nai, s] : state) {
        rec.sessions.push_back(std::move(s));
    }
    return st;
}

void Store::put(const Session& s, std::int64_t to_wall) {
    std::lock_guard lk(mu_);
    encode_put(s, to_wall, buffer_);
    ++buffered_records_;
}

void Store::remove(std::string_view nai) {
    std::lock_guard lk(mu_);
    encode_delete(nai, buffer_);
    ++buffered_records_;
}

bool Store::pending() const {
    std::lock_guard lk(mu_);
    return !buffer_.empty();
}

Result<void, std::string> Store::commit() {
    std::lock_guard commit_lk(commit_mu_);
    std::vector<std::uint8_t> out;
    std::uint64_t records = 0;
    {
        std::lock_guard lk(mu_);
        out.swap(buffer_);
        std::swap(records, buffered_records_);
        buffer_.reserve(out.capacity());
    }
    if (out.empty()) {
        return {};
    }
    // log_fd_ and log_size_ change only under commit_mu_ (here and in checkpoint()).
    if (log_fd_ < 0) {
        std::lock_guard lk(mu_);
        ++stats_.errors;
        return unexpected(std::string("no log open (no checkpoint yet)"));
    }
    auto w = write_all(log_fd_, out.data(), out.size());
    if (w && fsync_ == FsyncPolicy::kAlways && ::fdatasync(log_fd_) != 0) {
        w = unexpected(std::string("fdatasync: ") + errno_text(errno));
    }
    std::lock_guard lk(mu_);
    if (!w) {
        // Cut off whatever part was written: later appends must follow a whole record, or
        // recovery would stop at this one and lose them.
        if (::ftruncate(log_fd_, static_cast<off_t>(log_size_)) != 0 ||
            ::lseek(log_fd_, static_cast<off_t>(log_size_), SEEK_SET) < 0) {
            ::close(log_fd_);
            log_fd_ = -1;  // appending is no longer safe; the next checkpoint opens a new log
        }
        ++stats_.errors;
        return unexpected(fmt::format("{}/{}: {}", dir_, log_name(generation_), w.error()));
    }
    log_size_ += out.size();
    stats_.records += records;
    ++stats_.commits;
    return {};
}

Result<void, std::string> Store::checkpoint(const SessionWalk& each, std::int64_t to_wall,
                                            std::uint32_t restart_counter) {
    std::lock_guard commit_lk(commit_mu_);
    std::lock_guard lk(mu_);
    const std::uint64_t gen = generation_ + 1;
    const fs::path dir(dir_);
    const fs::path tmp = dir / "snapshot.tmp";
    auto fail = [&](std::string why) -> Result<void, std::string> {
        ++stats_.errors;
        return unexpected(fmt::format("checkpoint {}: {}", dir_, why));
    };

    // 1. The snapshot, written to a temporary file in 1 MiB chunks, synced, renamed over.
    const int sfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sfd < 0) {
        return fail(fmt::format("{}: {}", tmp.string(), errno_text(errno)));
    }
    std::vector<std::uint8_t> out;
    encode_header(Header{FileKind::kSnapshot, gen, restart_counter}, out);
    std::uint64_t count = 0;
    Result<void, std::string> wr;
    each([&](const Session& s) {
        if (!wr) {
            return;
        }
        encode_put(s, to_wall, out);
        ++count;
        if (out.size() >= (1u << 20)) {
            wr = write_all(sfd, out.data(), out.size());
            out.clear();
        }
    });
    encode_end(count, out);
    if (wr) {
        wr = write_all(sfd, out.data(), out.size());
    }
    if (wr && ::fdatasync(sfd) != 0) {
        wr = unexpected(std::string("fdatasync: ") + errno_text(errno));
    }
    ::close(sfd);
    if (!wr) {
        ::unlink(tmp.c_str());
        return fail(tmp.string() + ": " + wr.error());
    }
    if (::rename(tmp.c_str(), (dir / "snapshot").c_str()) != 0) {
        return fail(fmt::format("rename {}: {}", tmp.string(), errno_text(errno)));
    }
    if (auto r = sync_dir(dir_); !r) {
        return fail(r.error());
    }
    // From here the snapshot is the state: the commit buffer's effect is in it.
    buffer_.clear();
    buffered_records_ = 0;
    generation_ = gen;

    // 2. The next log, with its header synced, then the old files removed.
    const fs::path logp = dir / log_name(gen);
    const int lfd = ::open(logp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (lfd < 0) {
        return fail(fmt::format("{}: {}", logp.string(), errno_text(errno)));
    }
    out.clear();
    encode_header(Header{FileKind::kLog, gen, restart_counter}, out);
    if (auto r = write_all(lfd, out.data(), out.size()); !r || ::fdatasync(lfd) != 0) {
        ::close(lfd);
        return fail(logp.string() + ": cannot write the header");
    }
    if (auto r = sync_dir(dir_); !r) {
        ::close(lfd);
        return fail(r.error());
    }
    if (log_fd_ >= 0) {
        ::close(log_fd_);
    }
    log_fd_ = lfd;
    log_size_ = out.size();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() == 20 && name.rfind("log-", 0) == 0 && name != log_name(gen)) {
            fs::remove(e.path(), ec);
        }
    }
    ++stats_.checkpoints;
    return {};
}

std::size_t to_monotonic(std::vector<Session>& sessions, std::int64_t wall_now, Seconds mono_now) {
    const std::size_t before = sessions.size();
    // Both clocks are read in whole seconds, at write time and now, so the wall/monotonic offset
    // is off by up to a second either way: a remaining lifetime is taken one second shorter, so
    // that it never grows across a restart (a path with a second or less left is dropped).
    for (auto& s : sessions) {
        std::erase_if(s.paths, [&](const Path& p) { return p.expires_at - 1 <= wall_now; });
        for (auto& p : s.paths) {
            p.expires_at = mono_now + (p.expires_at - wall_now) - 1;
        }
    }
    std::erase_if(sessions, [](const Session& s) { return s.paths.empty(); });
    return before - sessions.size();
}

StoreStats Store::stats() const {
    std::lock_guard lk(mu_);
    StoreStats s = stats_;
    s.log_bytes = log_size_;
    s.generation = generation_;
    return s;
}

}  // namespace hag::control::store
