// A test client of DataplaneProgrammer (hag/v1/dataplane.proto) for the integration tests: the
// system Python has no grpcio. Requests come from protobuf text-format files, answers go to
// stdout as one JSON line: {"ok":true,"reply":{...}} or {"ok":false,"code":"...","message":"..."}.
//
//   dp_program_client unix:/path apply FILE               FILE: hag.v1.ApplyRequest
//   dp_program_client unix:/path resync FILE [CHUNK] [--abort]
//                         FILE: one hag.v1.ResyncChunk with every session; sent in chunks of
//                         CHUNK sessions (default 1); --abort: the stream ends without `last`
//   dp_program_client unix:/path digest | status
//   dp_program_client unix:/path list                     every session, pages of 2
//   dp_program_client - local-digest FILE                 the digest of FILE's sessions
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "hag/v1/dataplane.grpc.pb.h"
#include "hag/v1/dataplane_digest.hpp"

namespace {

using hag::v1::DataplaneProgrammer;

bool read_text(const std::string& path, google::protobuf::Message& m) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in || !google::protobuf::TextFormat::ParseFromString(ss.str(), &m)) {
        std::fprintf(stderr, "cannot read %s as %s\n", path.c_str(), m.GetTypeName().c_str());
        return false;
    }
    return true;
}

std::string json(const google::protobuf::Message& m) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.always_print_primitive_fields = true;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &out, o);
    return out;
}

const char* code_name(grpc::StatusCode c) {
    switch (c) {
        case grpc::StatusCode::INVALID_ARGUMENT:
            return "INVALID_ARGUMENT";
        case grpc::StatusCode::FAILED_PRECONDITION:
            return "FAILED_PRECONDITION";
        case grpc::StatusCode::ABORTED:
            return "ABORTED";
        case grpc::StatusCode::CANCELLED:
            return "CANCELLED";
        case grpc::StatusCode::UNAVAILABLE:
            return "UNAVAILABLE";
        case grpc::StatusCode::RESOURCE_EXHAUSTED:
            return "RESOURCE_EXHAUSTED";
        default:
            return "OTHER";
    }
}

int print(const grpc::Status& st, const google::protobuf::Message& reply) {
    if (st.ok()) {
        std::printf("{\"ok\":true,\"reply\":%s}\n", json(reply).c_str());
    } else {
        std::string msg;
        for (char c : st.error_message()) {
            if (c == '"' || c == '\\') {
                msg += '\\';
            }
            msg += (c == '\n') ? ' ' : c;
        }
        std::printf("{\"ok\":false,\"code\":\"%s\",\"message\":\"%s\"}\n",
                    code_name(st.error_code()), msg.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: dp_program_client TARGET apply|resync|digest|status|list ...\n");
        return 2;
    }
    const std::string target = argv[1], cmd = argv[2];
    if (cmd == "local-digest" && argc >= 4) {
        hag::v1::ResyncChunk all;
        if (!read_text(argv[3], all)) {
            return 2;
        }
        std::uint64_t d = 0;
        for (const auto& s : all.sessions()) {
            d += hag::v1::session_digest(s);
        }
        std::printf("{\"digest\":\"%llu\",\"sessions\":%d}\n", static_cast<unsigned long long>(d),
                    all.sessions_size());
        return 0;
    }
    auto stub = DataplaneProgrammer::NewStub(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    auto ctx = [] {
        auto c = std::make_unique<grpc::ClientContext>();
        c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
        return c;
    };
    if (cmd == "apply" && argc >= 4) {
        hag::v1::ApplyRequest req;
        hag::v1::ApplyReply reply;
        if (!read_text(argv[3], req)) {
            return 2;
        }
        return print(stub->Apply(ctx().get(), req, &reply), reply);
    }
    if (cmd == "resync" && argc >= 4) {
        hag::v1::ResyncChunk all;
        if (!read_text(argv[3], all)) {
            return 2;
        }
        int chunk = 1;
        bool abort = false;
        for (int i = 4; i < argc; ++i) {
            if (std::string(argv[i]) == "--abort") {
                abort = true;
            } else {
                chunk = std::max(1, std::stoi(argv[i]));
            }
        }
        hag::v1::ApplyReply reply;
        auto c = ctx();
        auto writer = stub->Resync(c.get(), &reply);
        hag::v1::ResyncChunk out;
        out.set_generation(all.generation());
        for (int i = 0; i < all.sessions_size(); ++i) {
            *out.add_sessions() = all.sessions(i);
            if (out.sessions_size() == chunk && i + 1 < all.sessions_size()) {
                writer->Write(out);
                out.clear_sessions();
            }
        }
        out.set_last(!abort);
        writer->Write(out);
        writer->WritesDone();
        return print(writer->Finish(), reply);
    }
    if (cmd == "digest") {
        hag::v1::DigestReply reply;
        return print(stub->Digest(ctx().get(), {}, &reply), reply);
    }
    if (cmd == "status") {
        hag::v1::DpStatusReply reply;
        return print(stub->Status(ctx().get(), {}, &reply), reply);
    }
    if (cmd == "list") {
        hag::v1::DpListReply all;
        hag::v1::DpListRequest req;
        req.set_first_page(true);
        req.set_limit(2);
        for (int page = 0; page < 10000; ++page) {
            hag::v1::DpListReply reply;
            auto st = stub->ListSessions(ctx().get(), req, &reply);
            if (!st.ok()) {
                return print(st, reply);
            }
            for (const auto& s : reply.sessions()) {
                *all.add_sessions() = s;
            }
            if (!reply.more() || reply.sessions_size() == 0) {
                break;
            }
            req.set_first_page(false);
            req.set_after_id(reply.sessions(reply.sessions_size() - 1).session().id());
        }
        return print(grpc::Status::OK, all);
    }
    std::fprintf(stderr, "unknown command '%s'\n", cmd.c_str());
    return 2;
}
