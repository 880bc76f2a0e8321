-- Shared by downlink.lua and uplink.lua: measure a profile on pktgen-dpdk and print the figures
-- to compare with hag-dataplane's own counters (tools/pktgen/README.md).
--
-- Settings come from environment variables so that one script serves every setup:
--   HAG_TX_PORT (default "0")   pktgen port toward hag (downlink: hag's core port; uplink: access)
--   HAG_RX_PORT (default "1")   pktgen port hag forwards to
--   HAG_RATE    (default 100)   percent of line rate
--   HAG_SECONDS (default 30)    measured seconds (after HAG_WARMUP, default 2)
--   HAG_OUT     (optional)      file to append one CSV line of results to
local M = {}

function M.env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

function M.settings()
    return {
        tx = M.env("HAG_TX_PORT", "0"),
        rx = M.env("HAG_RX_PORT", "1"),
        rate = tonumber(M.env("HAG_RATE", "100")),
        seconds = tonumber(M.env("HAG_SECONDS", "30")),
        warmup = tonumber(M.env("HAG_WARMUP", "2")),
        out = M.env("HAG_OUT", nil),
    }
end

-- Totals of a port from pktgen.portStats(port, "port"): opackets, ipackets, ierrors, imissed.
local function totals(port)
    local st = pktgen.portStats(port, "port")
    return st[tonumber(port)]
end

-- Runs the traffic already set up on s.tx for s.warmup + s.seconds and prints: packets sent and
-- received in the measured interval, both rates, and the difference (lost or still queued).
function M.measure(name, s)
    pktgen.clr()
    pktgen.set(s.tx, "rate", s.rate)
    pktgen.set(s.tx, "count", 0)
    pktgen.start(s.tx)
    pktgen.delay(math.floor(s.warmup * 1000))
    local tx0, rx0 = totals(s.tx), totals(s.rx)
    pktgen.delay(math.floor(s.seconds * 1000))
    local tx1, rx1 = totals(s.tx), totals(s.rx)
    pktgen.stop(s.tx)
    local sent = tx1.opackets - tx0.opackets
    local recv = rx1.ipackets - rx0.ipackets
    local missed = (rx1.imissed or 0) - (rx0.imissed or 0)
    printf("\n%s: %.3f Mpps sent, %.3f Mpps received (%d of %d packets, %d not back, "
        .. "%d missed by pktgen's own RX)\n", name, sent / s.seconds / 1e6,
        recv / s.seconds / 1e6, recv, sent, sent - recv, missed)
    printf("compare: hagctl dataplane stats (stage packets / forwarded / drops by reason) and "
        .. "hag_port_rx_packets_total, hag_stage_drops_total on /metrics\n")
    if s.out ~= nil then
        local f = io.open(s.out, "a")
        if f ~= nil then
            f:write(string.format("%s,%s,%d,%d,%d,%.6f,%.6f\n", name, os.date("!%Y-%m-%dT%H:%M:%SZ"),
                s.seconds, sent, recv, sent / s.seconds / 1e6, recv / s.seconds / 1e6))
            f:close()
        end
    end
    return sent, recv
end

return M
