-- hag downlink profile for pktgen-dpdk (tools/pktgen/README.md).
--
-- HAG_MODE=pcap (default): replays the pcap given to pktgen with `-s TX:downlink.pcap`, made by
--   hag-gen pcap --direction downlink --subscribers N --sizes 64|imix --family 6|4|46
--   so the destinations are exactly the N benchmark subscribers' prefixes (IPv6 and IPv4).
-- HAG_MODE=range: pktgen builds 64-octet IPv4 UDP itself, destination 198.18.0.0 + i for
--   i < HAG_SUBSCRIBERS (default 65536): the IPv4 home addresses of sessions programmed with
--   hag-gen sessions --ipv4 / hag-dp-bench run --ipv4 (no pcap, any rate the NIC takes).
package.path = package.path .. ";tools/pktgen/?.lua;?.lua"
local hag = require("hag_common")

local s = hag.settings()
local mode = hag.env("HAG_MODE", "pcap")
local subscribers = tonumber(hag.env("HAG_SUBSCRIBERS", "65536"))

pktgen.screen("off")
pktgen.stop("all")
if mode == "pcap" then
    pktgen.pcap(s.tx, "on")
else
    if subscribers < 1 or subscribers > 131072 then
        error("HAG_SUBSCRIBERS: 1..131072 (198.18.0.0/15)")
    end
    local last = subscribers - 1
    local max_ip = string.format("198.%d.%d.%d", 18 + math.floor(last / 65536),
        math.floor(last / 256) % 256, last % 256)
    pktgen.pcap(s.tx, "off")
    pktgen.set_proto(s.tx, "udp")
    pktgen.set(s.tx, "size", 64)
    pktgen.set(s.tx, "sport", 40000)
    pktgen.set(s.tx, "dport", 9)
    pktgen.set_ipaddr(s.tx, "src", "198.51.100.1/24")
    pktgen.range.dst_ip(s.tx, "start", "198.18.0.0")
    pktgen.range.dst_ip(s.tx, "inc", "0.0.0.1")
    pktgen.range.dst_ip(s.tx, "min", "198.18.0.0")
    pktgen.range.dst_ip(s.tx, "max", max_ip)
    pktgen.range.src_ip(s.tx, "start", "198.51.100.1")
    pktgen.range.src_ip(s.tx, "inc", "0.0.0.0")
    pktgen.range.src_ip(s.tx, "min", "198.51.100.1")
    pktgen.range.src_ip(s.tx, "max", "198.51.100.1")
    pktgen.range.ip_proto(s.tx, "udp")
    pktgen.set_range(s.tx, "on")
end
hag.measure("downlink " .. mode, s)
pktgen.quit()
