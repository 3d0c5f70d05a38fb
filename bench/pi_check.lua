-- wrk script: privacyIDEA's POST /validate/check, one TOTP code per request, with
-- the settings of bench/totp_flow.lua (one connection per wrk thread).
--
-- Arguments (after "--"): a file of "user code" lines, the thread count, the realm.
-- Each thread takes every n-th line, so no code is sent twice. Prints one JSON
-- line: accepted and rejected checks, threads that ran out of codes, latencies.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(args[2])
  realm = args[3]
  lines, i, accepted, rejected, exhausted = {}, 1, 0, 0, 0
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % n == id then
      table.insert(lines, line)
    end
    line_no = line_no + 1
  end
end

function request()
  local line = lines[i]
  if line == nil then
    -- Out of codes: keep the connection busy without counting anything.
    exhausted = 1
    return wrk.format("GET", "/", nil, "")
  end
  i = i + 1
  local user, code = line:match("(%S+) (%S+)")
  return wrk.format("POST", "/validate/check",
    { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "user=" .. user .. "&realm=" .. realm .. "&pass=" .. code)
end

function response(status, headers, body)
  if exhausted == 1 then
    return
  end
  if body:find('"value"%s*:%s*true') then
    accepted = accepted + 1
  else
    rejected = rejected + 1
  end
end

function done(summary, latency, requests)
  local ok, bad, left = 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + t:get("accepted")
    bad = bad + t:get("rejected")
    left = left + t:get("exhausted")
  end
  io.write(string.format(
    '{"accepted": %d, "rejected": %d, "exhausted_threads": %d, "us": %d, "p50": %f, "p99": %f}\n',
    ok, bad, left, summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
