#include "hag/v1/dataplane_digest.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <string>

namespace hag::v1 {

namespace {

constexpr std::uint64_t kFnvBasis = 14695981039346656037ULL;  // FNV-1a 64 offset basis

std::uint64_t fnv(const google::protobuf::MessageLite& m, std::uint64_t h) {
    // One buffer per thread, reused: no allocation per session once it has grown.
    thread_local std::string bytes;
    bytes.clear();
    {
        google::protobuf::io::StringOutputStream out(&bytes);
        google::protobuf::io::CodedOutputStream coded(&out);
        coded.SetSerializationDeterministic(true);
        m.SerializeToCodedStream(&coded);
    }
    for (unsigned char c : bytes) {
        h ^= c;
        h *= 1099511628211ULL;  // FNV-1a 64 prime
    }
    return h;
}

}  // namespace

std::uint64_t session_digest(const DpSession& s) {
    return fnv(s, kFnvBasis);
}

std::uint64_t profile_digest(const DpPolicyProfile& p) {
    return fnv(p, kFnvBasis ^ 0x9e3779b97f4a7c15ULL);
}

}  // namespace hag::v1
