-- hag uplink profile for pktgen-dpdk (tools/pktgen/README.md): replays the pcap given to pktgen
-- with `-s TX:uplink.pcap`, made by
--   hag-gen pcap --direction uplink --subscribers N --paths K [--path-weights 1,3]
--                [--permille 10] [--skew 0,4] [--loss-permille 0] --sizes 64|imix
-- i.e. GRE over IPv6 from each session's care-of addresses, with its uplink key and its sequence
-- numbers striped over its paths. pktgen cannot vary a GRE key or sequence number per session,
-- so the uplink is always a replay. HAG_REORDER=1 only changes the label: the pcap decides.
package.path = package.path .. ";tools/pktgen/?.lua;?.lua"
local hag = require("hag_common")

local s = hag.settings()
pktgen.screen("off")
pktgen.stop("all")
pktgen.pcap(s.tx, "on")
local label = "uplink"
if hag.env("HAG_REORDER", "0") == "1" then
    label = "uplink with reorder"
end
hag.measure(label, s)
pktgen.quit()
