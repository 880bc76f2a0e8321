// libFuzzer target: hag-control's binding cache store files (write-ahead log and snapshot) as
// read back from disk at start-up. Any input: parse as a log and as a snapshot; every record
// accepted must survive a re-encode / re-parse unchanged. The same bytes are also decoded as a
// binding value of the cluster store (read from etcd), which must round-trip too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "cluster_record.hpp"
#include "store_format.hpp"

using namespace hag::control::store;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    if (auto v = decode_value(in)) {
        std::vector<std::uint8_t> again;
        encode_value(v->node, v->anchor, v->session, 0, again);
        auto w = decode_value(again);
        if (!w || w->node != v->node || w->anchor != v->anchor || !(w->session == v->session)) {
            std::abort();
        }
    }
    (void)parse_snapshot(in);
    auto f = parse_file(in);
    if (!f) {
        return 0;
    }
    if (f->valid_bytes > size) {
        std::abort();
    }
    std::vector<std::uint8_t> again;
    encode_header(f->header, again);
    for (const auto& r : f->records) {
        switch (r.type) {
            case RecordType::kPut:
                encode_put(r.session, 0, again);
                break;
            case RecordType::kDelete:
                encode_delete(r.nai, again);
                break;
            case RecordType::kEnd:
                encode_end(r.count, again);
                break;
        }
    }
    auto g = parse_file(again);
    if (!g || g->tail_error || g->records.size() != f->records.size()) {
        std::abort();
    }
    for (std::size_t i = 0; i < f->records.size(); ++i) {
        const auto& a = f->records[i];
        const auto& b = g->records[i];
        if (a.type != b.type || !(a.session == b.session) || a.nai != b.nai || a.count != b.count) {
            std::abort();
        }
    }
    return 0;
}
