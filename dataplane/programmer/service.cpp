#include "programmer/service.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "hag/log/log.hpp"

namespace hag::dp {

namespace {

grpc::Status to_status(const ProgramError& e) {
    switch (e.code) {
        case ProgramError::kInvalidArgument:
            return {grpc::StatusCode::INVALID_ARGUMENT, e.message};
        case ProgramError::kFailedPrecondition:
            return {grpc::StatusCode::FAILED_PRECONDITION, e.message};
        case ProgramError::kResourceExhausted:
            return {grpc::StatusCode::RESOURCE_EXHAUSTED, e.message};
        case ProgramError::kInternal:
            break;
    }
    return {grpc::StatusCode::INTERNAL, e.message};
}

const grpc::Status kShuttingDown(grpc::StatusCode::UNAVAILABLE, "hag-dataplane is stopping");

}  // namespace

ProgrammerService::ProgrammerService(Programmer& programmer, MainLoopQueue& queue,
                                     CounterSource counters)
    : programmer_(programmer),
      queue_(queue),
      counters_(std::move(counters)),
      started_(std::chrono::steady_clock::now()) {}

grpc::Status ProgrammerService::rejected_early(grpc::StatusCode code, std::string message) {
    (void)queue_.call([this, &message] {
        programmer_.note_rejected(message);
        return 0;
    });
    return {code, message};
}

grpc::Status ProgrammerService::Apply(grpc::ServerContext*, const v1::ApplyRequest* req,
                                      v1::ApplyReply* reply) {
    auto r = queue_.call([this, req] { return programmer_.apply(*req); });
    if (!r) {
        return kShuttingDown;
    }
    if (!*r) {
        return to_status(r->error());
    }
    *reply = std::move(**r);
    return grpc::Status::OK;
}

grpc::Status ProgrammerService::Resync(grpc::ServerContext* ctx,
                                       grpc::ServerReader<v1::ResyncChunk>* reader,
                                       v1::ApplyReply* reply) {
    // Chunks are collected and checked here, off the main lcore; the main lcore sees the whole
    // set once the last chunk arrived.
    std::vector<v1::DpSession> all;
    std::vector<v1::DpPolicyProfile> profiles;
    std::uint64_t generation = 0;
    bool first = true, last = false;
    v1::ResyncChunk chunk;
    while (reader->Read(&chunk)) {
        if (first) {
            generation = chunk.generation();
            first = false;
        } else if (chunk.generation() != generation) {
            return rejected_early(
                grpc::StatusCode::INVALID_ARGUMENT,
                fmt::format("resync: chunk with generation {} in a resync of generation {}",
                            chunk.generation(), generation));
        }
        for (auto& s : *chunk.mutable_sessions()) {
            if (all.size() >= programmer_.parser().capacity()) {
                return rejected_early(grpc::StatusCode::INVALID_ARGUMENT,
                                      fmt::format("resync: more sessions than the table holds ({})",
                                                  programmer_.parser().capacity()));
            }
            if (auto p = programmer_.parser().parse(s); !p) {
                return rejected_early(grpc::StatusCode::INVALID_ARGUMENT, p.error());
            }
            all.push_back(std::move(s));
        }
        for (auto& p : *chunk.mutable_profiles()) {
            if (profiles.size() >= kMaxPolicyProfiles - 1) {
                return rejected_early(
                    grpc::StatusCode::INVALID_ARGUMENT,
                    fmt::format("resync: more than {} policy profiles", kMaxPolicyProfiles - 1));
            }
            profiles.push_back(std::move(p));
        }
        if (chunk.last()) {
            last = true;
            break;
        }
    }
    if (!last || ctx->IsCancelled()) {
        spdlog::warn(
            "resync abandoned before its last chunk ({} session(s) received): nothing "
            "changed",
            all.size());
        return {grpc::StatusCode::ABORTED,
                "resync stream ended before the chunk with last set: nothing changed"};
    }
    auto r = queue_.call([this, generation, &all, &profiles] {
        return programmer_.resync(generation, std::move(all), profiles);
    });
    if (!r) {
        return kShuttingDown;
    }
    if (!*r) {
        return to_status(r->error());
    }
    *reply = std::move(**r);
    return grpc::Status::OK;
}

grpc::Status ProgrammerService::Digest(grpc::ServerContext*, const v1::DigestRequest*,
                                       v1::DigestReply* reply) {
    auto r = queue_.call([this] { return programmer_.digest(); });
    if (!r) {
        return kShuttingDown;
    }
    *reply = std::move(*r);
    return grpc::Status::OK;
}

grpc::Status ProgrammerService::Status(grpc::ServerContext*, const v1::DpStatusRequest*,
                                       v1::DpStatusReply* reply) {
    auto r = queue_.call([this] { return programmer_.stats(); });
    if (!r) {
        return kShuttingDown;
    }
    reply->set_version(HAG_VERSION);
    reply->set_uptime_seconds(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::steady_clock::now() - started_)
                                       .count()));
    reply->set_generation(r->generation);
    reply->set_sessions(r->sessions);
    reply->set_max_sessions(r->max_sessions);
    reply->set_batches_applied(r->batches_applied);
    reply->set_batches_rejected(r->batches_rejected);
    reply->set_resyncs(r->resyncs);
    {
        // Main lcore time spent applying Apply batches and resyncs.
        auto* c = reply->add_counters();
        c->set_name("hag_programmer_busy_microseconds_total");
        c->set_value(r->busy_us);
    }
    if (counters_) {
        for (auto& [name, value] : counters_()) {
            auto* c = reply->add_counters();
            c->set_name(std::move(name));
            c->set_value(value);
        }
    }
    return grpc::Status::OK;
}

grpc::Status ProgrammerService::ListSessions(grpc::ServerContext*, const v1::DpListRequest* req,
                                             v1::DpListReply* reply) {
    auto r = queue_.call([this, req] { return programmer_.list(*req); });
    if (!r) {
        return kShuttingDown;
    }
    *reply = std::move(*r);
    return grpc::Status::OK;
}

grpc::Status ProgrammerService::SetLogLevel(grpc::ServerContext*, const v1::DpLogLevelRequest* req,
                                            v1::DpLogLevelReply* reply) {
    if (req->level().empty()) {
        reply->set_level(hag::log::current_level());
        reply->set_previous(reply->level());
        return grpc::Status::OK;
    }
    auto prev = hag::log::set_level(req->level());
    if (!prev) {
        return {grpc::StatusCode::INVALID_ARGUMENT, "level: " + prev.error()};
    }
    reply->set_previous(*prev);
    reply->set_level(hag::log::current_level());
    spdlog::info("log level {} -> {} (DataplaneProgrammer)", reply->previous(), reply->level());
    return grpc::Status::OK;
}

ProgrammerServer::ProgrammerServer(Programmer& programmer, MainLoopQueue& queue,
                                   CounterSource counters, std::string unix_path)
    : service_(programmer, queue, std::move(counters)), unix_path_(std::move(unix_path)) {}

Result<std::unique_ptr<ProgrammerServer>, std::string> ProgrammerServer::start(
    const std::string& listen, unsigned socket_mode, Programmer& programmer, MainLoopQueue& queue,
    CounterSource counters) {
    std::string unix_path;
    if (listen.rfind("unix:", 0) == 0) {
        unix_path = listen.substr(5);
        if (unix_path.empty() || unix_path.size() >= 108) {
            return unexpected("programmer_listen: bad unix socket path '" + unix_path + "'");
        }
        if (auto slash = unix_path.rfind('/'); slash != std::string::npos && slash > 0) {
            const std::string dir = unix_path.substr(0, slash);
            if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
                return unexpected(fmt::format("programmer_listen: cannot create {}: {}", dir,
                                              std::strerror(errno)));
            }
        }
        struct stat st {};
        if (::lstat(unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
            ::unlink(unix_path.c_str());  // a stale socket of an earlier run
        }
    } else if (listen.find(':') == std::string::npos) {
        return unexpected("programmer_listen: '" + listen +
                          "' is neither unix:/path nor host:port");
    }
    auto srv =
        std::make_unique<ProgrammerServer>(programmer, queue, std::move(counters), unix_path);
    grpc::ServerBuilder b;
    // Tighten the umask while the socket file is created; chmod then sets the mode.
    const mode_t old_umask = unix_path.empty() ? 0 : ::umask(0177);
    b.AddListeningPort(listen, grpc::InsecureServerCredentials());
    b.RegisterService(&srv->service_);
    b.SetMaxReceiveMessageSize(64 << 20);  // large Apply batches and resync chunks
    srv->server_ = b.BuildAndStart();
    if (!unix_path.empty()) {
        ::umask(old_umask);
    }
    if (!srv->server_) {
        srv->unix_path_.clear();
        return unexpected("programmer_listen: cannot listen on " + listen);
    }
    if (!unix_path.empty() && ::chmod(unix_path.c_str(), socket_mode) != 0) {
        return unexpected(fmt::format("chmod {}: {}", unix_path, std::strerror(errno)));
    }
    return srv;
}

ProgrammerServer::~ProgrammerServer() {
    if (server_) {
        server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
        server_->Wait();
    }
    if (!unix_path_.empty()) {
        ::unlink(unix_path_.c_str());
    }
}

}  // namespace hag::dp
