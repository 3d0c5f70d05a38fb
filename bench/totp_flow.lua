-- wrk script: complete TOTP flows (POST /v1/verifications, then POST .../checks
-- with the customer's code), one connection per wrk thread so that a thread's
-- Lua state is its connection's state and requests strictly alternate.
--
-- Arguments (after "--"): a file of "customer_id code" lines, the thread count.
-- Each thread takes every n-th line, so no customer is used twice. Prints one
-- JSON line: approved and failed flows, customers left over, flow latencies.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } sb_timespec;
  int clock_gettime(int clk_id, sb_timespec *tp);
]]
local ts = ffi.new("sb_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(args[2])
  customers, i, phase = {}, 1, "start"
  approved, failed, exhausted, latencies = 0, 0, 0, {}
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % n == id then
      table.insert(customers, line)
    end
    line_no = line_no + 1
  end
end

function request()
  if phase == "check" then
    return wrk.format("POST", "/v1/verifications/" .. vid .. "/checks", nil,
      '{"factor": "totp", "code": "' .. code .. '"}')
  end
  local line = customers[i]
  if line == nil then
    -- Out of customers: keep the connection busy without counting anything.
    exhausted, phase = 1, "idle"
    return wrk.format("GET", "/healthz", nil, "")
  end
  i = i + 1
  local cid
  cid, code = line:match("(%S+) (%S+)")
  began = now()
  return wrk.format("POST", "/v1/verifications", nil,
    '{"customer_id": "' .. cid .. '", "channel": "chat"}')
end

function response(status, headers, body)
  if phase == "start" then
    vid = body:match('"verification_id"%s*:%s*"([^"]+)"')
    if vid then
      phase = "check"
    else
      failed = failed + 1
    end
  elseif phase == "check" then
    phase = "start"
    if body:find('"status"%s*:%s*"approved"') then
      approved = approved + 1
      table.insert(latencies, now() - began)
    else
      failed = failed + 1
    end
  end
end

function done(summary, latency, requests)
  local ok, bad, left, all = 0, 0, 0, {}
  for _, t in ipairs(threads) do
    ok = ok + t:get("approved")
    bad = bad + t:get("failed")
    left = left + t:get("exhausted")
    for _, v in ipairs(t:get("latencies")) do
      table.insert(all, v)
    end
  end
  table.sort(all)
  local function pct(p)
    if #all == 0 then return 0 end
    return all[math.max(1, math.ceil(#all * p / 100))] * 1000
  end
  io.write(string.format(
    '{"flows": %d, "failed": %d, "exhausted_threads": %d, "us": %d, "p50": %f, "p99": %f}\n',
    ok, bad, left, summary.duration, pct(50), pct(99)))
end
