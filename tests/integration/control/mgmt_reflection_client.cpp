// Talks to a server's reflection service the way grpcurl does, with no hag .proto at hand:
// lists services, fetches the file descriptors that define hag.v1.Management, builds them into
// a descriptor pool and prints the service's methods ("describe"). Exit 0 when
// hag.v1.Management is listed and describable, 1 otherwise.
//   usage: mgmt-reflection-client unix:/path/control.sock
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <set>

#include "mgmt_reflection_wire.grpc.pb.h"

namespace refl = grpc::reflection::v1alpha;
namespace pb = google::protobuf;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s SERVER\n", argv[0]);
        return 1;
    }
    auto stub = refl::ServerReflection::NewStub(
        grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->ServerReflectionInfo(&ctx);

    refl::ServerReflectionRequest req;
    req.set_list_services("*");
    refl::ServerReflectionResponse resp;
    if (!stream->Write(req) || !stream->Read(&resp) || !resp.has_list_services_response()) {
        std::fprintf(stderr, "list_services failed: %s\n",
                     stream->Finish().error_message().c_str());
        return 1;
    }
    bool listed = false;
    for (const auto& s : resp.list_services_response().service()) {
        std::printf("service %s\n", s.name().c_str());
        listed |= s.name() == "hag.v1.Management";
    }

    // Fetch the file with the symbol, then any dependency not yet seen, into one pool.
    pb::DescriptorPool pool;
    std::set<std::string> have;
    std::vector<pb::FileDescriptorProto> files;
    req.set_file_containing_symbol("hag.v1.Management");
    std::vector<refl::ServerReflectionRequest> todo{req};
    for (int rounds = 0; !todo.empty() && rounds < 32; ++rounds) {
        auto r = todo.back();
        todo.pop_back();
        if (!stream->Write(r) || !stream->Read(&resp)) {
            break;
        }
        if (resp.has_error_response()) {
            std::fprintf(stderr, "reflection error: %s\n",
                         resp.error_response().error_message().c_str());
            return 1;
        }
        for (const auto& raw : resp.file_descriptor_response().file_descriptor_proto()) {
            pb::FileDescriptorProto f;
            if (!f.ParseFromString(raw) || !have.insert(f.name()).second) {
                continue;
            }
            for (const auto& dep : f.dependency()) {
                if (!have.count(dep)) {
                    refl::ServerReflectionRequest d;
                    d.set_file_by_filename(dep);
                    todo.push_back(d);
                }
            }
            files.push_back(std::move(f));
        }
    }
    stream->WritesDone();
    // Dependencies first: retry until every file builds (bounded by the file count).
    for (std::size_t pass = 0; pass <= files.size(); ++pass) {
        for (const auto& f : files) {
            if (pool.FindFileByName(f.name()) == nullptr) {
                pool.BuildFile(f);
            }
        }
    }
    const pb::ServiceDescriptor* svc = pool.FindServiceByName("hag.v1.Management");
    if (!listed || svc == nullptr) {
        std::fprintf(stderr, "hag.v1.Management %s\n", listed ? "not describable" : "not listed");
        return 1;
    }
    std::printf("%s is a service:\n", svc->full_name().c_str());
    for (int i = 0; i < svc->method_count(); ++i) {
        const auto* m = svc->method(i);
        std::printf("  rpc %s(%s) returns (%s%s)\n", m->name().c_str(),
                    m->input_type()->full_name().c_str(), m->server_streaming() ? "stream " : "",
                    m->output_type()->full_name().c_str());
    }
    return 0;
}
