// hag-magsim data mode: the home router's user traffic. A tun device is the LAN side (its address
// from the HNP), GRE over raw protocol-47 sockets carries it on every registered access. One
// thread runs the poll loop; the signalling thread only flips accesses live / not live.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data.hpp"
#include "flows.hpp"
#include "hag/result.hpp"

namespace hag::magsim {

struct DataAccess {
    std::string name;  // "access lte bid=2"
    std::uint16_t bid = 0;
    bool ipv4 = false;  // outer IPv4 (IPv4 CoA) or IPv6
    std::array<std::uint8_t, 16> coa6{}, lma6{};
    std::array<std::uint8_t, 4> coa4{}, lma4{};
    std::string device;  // bind to it (SO_BINDTODEVICE) when not empty
    std::uint32_t uplink_key = 0;
    std::uint32_t downlink_key = 0;
    std::uint64_t weight = 0;  // uplink kbps of the access; 0 = equal share
    // NAT traversal (the PBA carried a NAT Detection option): GRE in UDP from the signalling
    // socket's address and port (udp_port; the NAT maps both flows alike) to the LMA's data
    // port 5437, and a keepalive every keepalive_s seconds so the NAT keeps the mapping.
    bool udp = false;
    std::uint16_t udp_port = 0;
    // MIPv6 mobile node without GRE (the BA carried no GRE Key option): IPv6-in-IPv6 (RFC 6275
    // §4.1, RFC 2473) on a raw protocol-41 socket; IPv6 inner packets only.
    bool ipip = false;
    unsigned keepalive_s = 0;
};

struct DataOptions {
    std::string tun = "magsim0";
    unsigned mtu = 1400;
    std::vector<std::string> tun_addresses;  // ADDR/LEN
    std::vector<std::string> routes;         // prefixes routed into the tun
    std::optional<std::uint16_t> pin_bid;    // uplink on this access while it is live
    std::vector<FlowSpec> flows;             // RFC 6089 flow bindings mirrored on the uplink
    unsigned reorder_window = 256;
    unsigned reorder_timeout_ms = 50;
    std::string stats_file;  // JSON at exit, when not empty
    // The LAN behind the router: delegated prefixes (RFC 7148) are given to this device, the
    // router taking the first address of each (lan_addresses, ADDR/LEN, filled by main).
    std::string lan_dev;
    std::vector<std::string> lan_addresses;
};

class DataPath {
  public:
    // Opens the tun device (addresses, MTU, routes via `ip`) and one GRE socket per access.
    static Result<std::unique_ptr<DataPath>, std::string> open(const DataOptions& o,
                                                               std::vector<DataAccess> accesses);
    ~DataPath();
    DataPath(const DataPath&) = delete;
    DataPath& operator=(const DataPath&) = delete;

    // The poll loop, until `stop`.
    void run(const std::atomic<bool>& stop);
    // From any thread: an access revoked or back.
    void set_live(std::uint16_t bid, bool live);
    // Counters: one line per access and the session's reorder line; JSON to the stats file.
    void report() const;

    struct AccessCounters {
        std::uint64_t up_packets = 0, up_bytes = 0, up_send_errors = 0;
        std::uint64_t down_packets = 0, down_bytes = 0;
        std::uint64_t down_reordered = 0, down_late = 0, down_duplicate = 0;
        std::uint64_t down_wrong_source = 0, down_truncated = 0;
        std::array<std::uint64_t, 5> down_drops{};  // by DownlinkDrop
        std::uint64_t keepalives = 0;               // NAT keepalives sent (UDP accesses)
    };

  private:
    struct Key {
        explicit Key() = default;
    };

  public:
    // Through open() only (Key is private).
    DataPath(Key, const DataOptions& o, std::vector<DataAccess> accesses);

  private:
    struct Access {
        DataAccess cfg;
        std::size_t index = 0;  // in accesses_
        int fd = -1;
        std::atomic<bool> live{true};
        AccessCounters c;
        std::chrono::steady_clock::time_point next_keepalive{};  // UDP accesses
    };
    void on_tun_readable();
    void on_gre_readable(Access& a);
    void send_keepalives(std::chrono::steady_clock::time_point now);
    static Result<void, std::string> open_udp(Access& a);
    void deliver(std::span<const std::uint8_t> inner);

    // Datagrams per recvmmsg (and packets per tun turn), one datagram's room (tun MTU <= 4000);
    // the receive buffers of one batch are allocated once.
    static constexpr std::size_t kRxBatch = 32;
    static constexpr std::size_t kRxBufferBytes = 4096;
    using RxBuffers = std::array<std::array<std::uint8_t, kRxBufferBytes>, kRxBatch>;

    DataOptions o_;
    int tun_ = -1;
    std::vector<std::unique_ptr<Access>> accesses_;
    UplinkScheduler scheduler_;
    Reorderer reorder_;
    std::uint32_t uplink_seq_ = 0;  // one sequence space per session, over all accesses
    std::unique_ptr<RxBuffers> rx_;
    UplinkFlows flows_;
    std::uint64_t up_flow_dropped_ = 0, up_flow_pinned_ = 0;
    std::uint64_t up_no_access_ = 0, up_not_ip_ = 0, down_no_seq_ = 0, tun_write_errors_ = 0;
};

}  // namespace hag::magsim
