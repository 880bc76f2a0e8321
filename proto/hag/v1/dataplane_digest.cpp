#include "hag/v1/dataplane_digest.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <string>

namespace hag::v1 {

std::uint64_t session_digest(const DpSession& s) {
    // One buffer per thread, reused: no allocation per session once it has grown.
    thread_local std::string bytes;
    bytes.clear();
    {
        google::protobuf::io::StringOutputStream out(&bytes);
        google::protobuf::io::CodedOutputStream coded(&out);
        coded.SetSerializationDeterministic(true);
        s.SerializeToCodedStream(&coded);
    }
    std::uint64_t h = 14695981039346656037ULL;  // FNV-1a 64 offset basis
    for (unsigned char c : bytes) {
        h ^= c;
        h *= 1099511628211ULL;  // FNV-1a 64 prime
    }
    return h;
}

}  // namespace hag::v1
