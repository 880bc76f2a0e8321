// Signalling transport of hag-control: raw IPPROTO_MH sockets for IPv6 and UDP 5436 for IPv4
// (RFC 5844), one socket per configured LMA address, received in batches (recvmmsg) on a Boost.Asio
// io_context and handed to a callback as a mobility header plus the addresses it came on.
//
// IPv6: the kernel verifies and fills the MH checksum (IPV6_CHECKSUM at offset 4) and tells the
// local address (IPV6_RECVPKTINFO). IPv4: the UDP payload is an IPv6 header (next header 135)
// followed by the mobility header, or (accepted from peers that send it) the bare mobility
// header; hag checks the MH checksum itself — over the inner IPv6 addresses, or over the
// IPv4-mapped outer addresses for the bare form — and answers in the form the peer used.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "binding_cache.hpp"
#include "hag/mh/udp_transport.hpp"
#include "hag/result.hpp"
#include "lma.hpp"

namespace hag::control {

using mh::kPmipUdpPort;

struct SignallingCounters {
    std::uint64_t rx = 0, tx = 0, rx_batches = 0;
    std::uint64_t rx_udp_bad = 0, rx_truncated = 0, tx_errors = 0, tx_no_socket = 0;
    // ESP (SignallingEsp): received and opened, refused by reason, plain MH refused.
    std::uint64_t rx_esp = 0, tx_esp = 0;
    std::uint64_t rx_esp_unknown_peer = 0, rx_esp_unknown_spi = 0, rx_esp_replayed = 0;
    std::uint64_t rx_esp_auth_failed = 0, rx_esp_malformed = 0, rx_esp_not_mh = 0;
    std::uint64_t rx_esp_bad_checksum = 0, rx_esp_required = 0;
    // MIPv6 home agent: BUs with a Home Address option, refused ones, HAAD requests / replies.
    std::uint64_t rx_home = 0, rx_home_malformed = 0, rx_home_bad_checksum = 0;
    std::uint64_t haad_requests = 0, haad_replies = 0;
};

// ESP for the signalling with some MAGs (ControlConfig.esp): the SAs by peer address.
struct EspPeerSas {
    Ipv6Address address{};
    std::uint32_t spi_in = 0, spi_out = 0;
    std::string key_in, key_out;  // hex, checked by the configuration
};
struct EspSettings {
    std::vector<EspPeerSas> peers;
    bool require = false;  // refuse plain MH from everyone, not only from the peers listed
};
// MIPv6 home agent I/O (ControlConfig.home_agent).
struct HomeAgentIoSettings {
    bool enabled = false;  // raw IPPROTO_DSTOPTS sockets for BUs with a Home Address option
    std::vector<Ipv6Address> discovery_addresses;  // HAAD replies (ICMPv6 145); empty = none
};

class SignallingIo {
  public:
    using Handler = std::function<void(std::span<const std::uint8_t> mh, const Peer& from)>;

    // Opens and binds one socket per address ("2001:db8::1" raw MH, "192.0.2.1" UDP udp_port).
    // The error names the address and the reason (EADDRNOTAVAIL: not on this host; EPERM: not
    // root / no CAP_NET_RAW).
    // With ESP peers (or esp.require), each IPv6 address also gets a raw ESP socket.
    static Result<std::unique_ptr<SignallingIo>, std::string> open(
        boost::asio::io_context& io, const std::vector<std::string>& addresses, Handler handler,
        std::uint16_t udp_port = kPmipUdpPort, const EspSettings& esp = {},
        const HomeAgentIoSettings& home = {});
    ~SignallingIo();
    SignallingIo(const SignallingIo&) = delete;
    SignallingIo& operator=(const SignallingIo&) = delete;

    // Encodes and sends (checksum by the kernel for raw MH, by hag for UDP). Errors are counted
    // and logged (rate-limited), never thrown: signalling is best effort like any datagram.
    void send(const Outbound& out);
    void send(const std::vector<Outbound>& outs) {
        for (const auto& o : outs) {
            send(o);
        }
    }

    // Safe to call from any thread.
    [[nodiscard]] SignallingCounters counters() const noexcept;
    // "2001:db8::1 (raw MH)", "192.0.2.1:5436 (UDP)"
    [[nodiscard]] std::vector<std::string> describe() const;

    struct Socket;     // one bound socket (defined in the .cpp)
    struct RxBuffers;  // recvmmsg buffers

    SignallingIo(boost::asio::io_context& io, Handler handler);

  private:
    void arm(Socket& s);
    Result<void, std::string> open_home(boost::asio::io_context& io,
                                        const std::vector<std::string>& addresses);
    void drain(Socket& s);
    void deliver_raw(Socket& s, std::span<const std::uint8_t> data, const Ipv6Address& src,
                     const Ipv6Address& dst);
    void deliver_esp(Socket& s, std::span<const std::uint8_t> data, const Ipv6Address& src,
                     const Ipv6Address& dst);
    // A packet from a raw IPPROTO_DSTOPTS socket: Destination Options header (Home Address
    // option) and what follows (MH, or ESP around it).
    void deliver_home(Socket& s, std::span<const std::uint8_t> data, const Ipv6Address& src,
                      const Ipv6Address& dst);
    void answer_haad(Socket& s, std::span<const std::uint8_t> data, const Ipv6Address& src);
    void send_home(const Outbound& out, std::vector<std::uint8_t> mh);
    void deliver_udp(Socket& s, std::span<const std::uint8_t> data, const Ipv6Address& src,
                     std::uint16_t sport, const Ipv6Address& dst);
    Socket* socket_for(const Peer& to, bool esp = false);
    struct EspPeer;
    EspPeer* esp_peer(const Ipv6Address& a);
    void log_limited(const std::string& msg);

    struct UdpPeerKey {
        Ipv6Address addr;
        std::uint16_t port;
        bool operator==(const UdpPeerKey&) const = default;
    };
    struct UdpPeerKeyHash {
        std::size_t operator()(const UdpPeerKey& k) const noexcept;
    };
    struct UdpForm {
        bool bare = false;
        Ipv6Address inner_src{}, inner_dst{};  // as the peer sent them
    };

    boost::asio::io_context& io_;
    Handler handler_;
    std::vector<std::unique_ptr<Socket>> sockets_;
    std::unique_ptr<RxBuffers> rx_;
    std::unordered_map<UdpPeerKey, UdpForm, UdpPeerKeyHash> udp_forms_;
    std::vector<std::unique_ptr<EspPeer>> esp_peers_;
    bool esp_require_ = false;
    HomeAgentIoSettings home_;
    int raw_out_fd_ = -1;  // IPPROTO_RAW (header included): BAs with a Type 2 Routing Header
    struct AtomicCounters {
        std::atomic<std::uint64_t> rx{0}, tx{0}, rx_batches{0};
        std::atomic<std::uint64_t> rx_udp_bad{0}, rx_truncated{0}, tx_errors{0}, tx_no_socket{0};
        std::atomic<std::uint64_t> rx_esp{0}, tx_esp{0};
        std::atomic<std::uint64_t> rx_esp_unknown_peer{0}, rx_esp_unknown_spi{0},
            rx_esp_replayed{0};
        std::atomic<std::uint64_t> rx_esp_auth_failed{0}, rx_esp_malformed{0}, rx_esp_not_mh{0};
        std::atomic<std::uint64_t> rx_esp_bad_checksum{0}, rx_esp_required{0};
        std::atomic<std::uint64_t> rx_home{0}, rx_home_malformed{0}, rx_home_bad_checksum{0};
        std::atomic<std::uint64_t> haad_requests{0}, haad_replies{0};
    };
    AtomicCounters counters_;
    std::int64_t last_log_ms_ = -1'000'000;
};

}  // namespace hag::control
