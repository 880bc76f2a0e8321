// hag-mhdump: build, decode and capture PMIPv6 Mobility Header messages (docs/tools-mhdump.md).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "capture.hpp"
#include "decode.hpp"
#include "hag/net/address.hpp"
#include "hex.hpp"
#include "sample.hpp"

namespace {

using hag::mhdump::SampleMessage;

constexpr int kExitDecodeError = 1;
constexpr int kExitInputError = 2;

// The status octet of a (P)BA (MH type 6, octet 6 of the MH; RFC 6275 §6.1.8), if it is one.
std::optional<unsigned> ba_status(std::span<const std::uint8_t> mh) {
    if (mh.size() < 8 || mh[2] != 6) {
        return std::nullopt;
    }
    return mh[6];
}

int run_sample() {
    const auto messages = hag::mhdump::sample_exchange();
    int rc = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const SampleMessage& m = messages[i];
        std::cout << "#" << i + 1 << " " << m.label << "  " << hag::net::format(m.src) << " -> "
                  << hag::net::format(m.dst) << "  (" << m.mh.size() << " octets)\n"
                  << hag::mhdump::hex_dump(m.mh);
        const auto d = hag::mhdump::describe(m.mh);
        if (!d) {
            std::cerr << "hag-mhdump: sample message " << i + 1 << " does not decode: " << d.error()
                      << "\n";
            rc = kExitDecodeError;
            continue;
        }
        std::cout << *d << "\n";
        if (const auto s = ba_status(m.mh)) {
            std::cout << "PBA status: " << *s << (*s < 128 ? " (accepted)" : " (rejected)") << "\n";
        }
        std::cout << "\n";
    }
    return rc;
}

int run_decode(const std::string& hex, const std::string& file, bool json) {
    std::vector<std::uint8_t> bytes;
    if (!file.empty()) {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            std::cerr << "hag-mhdump: cannot read " << file << "\n";
            return kExitInputError;
        }
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
        std::string text = hex;
        if (text.empty()) {
            std::ostringstream ss;
            ss << std::cin.rdbuf();
            text = ss.str();
        }
        auto parsed = hag::mhdump::parse_hex(text);
        if (!parsed) {
            std::cerr << "hag-mhdump: not a hex string (pairs of hex digits, optionally separated "
                         "by spaces or colons)\n";
            return kExitInputError;
        }
        bytes = std::move(*parsed);
    }
    const auto out = json ? hag::mhdump::to_json(bytes) : hag::mhdump::describe(bytes);
    if (!out) {
        std::cerr << "hag-mhdump: cannot decode: " << out.error() << "\n";
        return kExitDecodeError;
    }
    std::cout << *out << "\n";
    return 0;
}

int run_pcap(const std::string& path) {
    const auto messages = hag::mhdump::sample_exchange();
    const auto data = hag::mhdump::exchange_pcap(messages);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    out.close();
    if (!out) {
        std::cerr << "hag-mhdump: cannot write " << path << "\n";
        return kExitInputError;
    }
    std::cout << "wrote " << messages.size() << " packets to " << path << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hag-mhdump: build, decode and capture PMIPv6 Mobility Header messages"};
    app.require_subcommand(1);

    auto* sample =
        app.add_subcommand("sample", "print a PBU/PBA exchange (DSL + LTE) built by the codec");

    std::string hex;
    std::string file;
    bool json = false;
    auto* decode =
        app.add_subcommand("decode", "decode one Mobility Header (hex on stdin by default)");
    auto* hex_opt = decode->add_option("--hex", hex, "the message as hex digits");
    decode->add_option("--file", file, "a file with the raw message octets")->excludes(hex_opt);
    decode->add_flag("--json", json, "print JSON instead of the description");

    std::string pcap_path;
    auto* pcap =
        app.add_subcommand("pcap", "write the sample exchange as Ethernet+IPv6 into a pcap");
    pcap->add_option("OUT", pcap_path, "output file")->required();

    CLI11_PARSE(app, argc, argv);
    if (*sample)
        return run_sample();
    if (*decode)
        return run_decode(hex, file, json);
    if (*pcap)
        return run_pcap(pcap_path);
    return kExitInputError;
}
