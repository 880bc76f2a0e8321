// libFuzzer target: the metrics endpoint's HTTP request parser (network input) and the
// Prometheus label escaping, over arbitrary bytes.
//   - the parser never reads outside its input; what it accepts is a GET or HEAD whose views
//     lie inside the input, and every strict prefix of an accepted request is "incomplete";
//   - escaping leaves no raw control character, and unescaping gives the input back with
//     control characters other than line feed replaced by '?'.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "telemetry/http_request.hpp"
#include "telemetry/prometheus.hpp"

namespace {

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

bool inside(std::string_view part, std::string_view whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\') {
            out += s[i];
            continue;
        }
        require(i + 1 < s.size());
        const char c = s[++i];
        require(c == '\\' || c == '"' || c == 'n');
        out += c == 'n' ? '\n' : c;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hag::dp;
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    const http::ParseResult r = http::parse_request(in);
    require(http::status_code(r.status) == 0 || http::status_code(r.status) >= 200);
    if (r.status == http::Parse::kOk) {
        const http::Request& q = r.request;
        require(q.method == "GET" || q.method == "HEAD");
        require(inside(q.method, in) && inside(q.target, in) && inside(q.path, in));
        require(!q.target.empty() && q.target.front() == '/');
        require(q.path.data() == q.target.data() && q.path.size() <= q.target.size());
        require(q.minor <= 1);
        require(q.length > 0 && q.length <= in.size() && q.length <= http::kMaxRequestBytes);
        // What follows the header block does not change the outcome.
        require(http::parse_request(in.substr(0, q.length)).status == http::Parse::kOk);
        for (std::size_t cut : {q.length - 1, q.length / 2, std::size_t{0}}) {
            require(http::parse_request(in.substr(0, cut)).status == http::Parse::kIncomplete);
        }
    }

    const std::string esc = prom::escape_label_value(in);
    std::string expect;
    for (char c : in) {
        const auto u = static_cast<unsigned char>(c);
        expect += (u < 0x20 && c != '\n') || u == 0x7f ? '?' : c;
    }
    for (char c : esc) {
        const auto u = static_cast<unsigned char>(c);
        require(u >= 0x20 && u != 0x7f);
    }
    require(unescape(esc) == expect);
    return 0;
}
