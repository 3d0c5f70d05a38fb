-- Library: store an approval. KEYS[k..k+5]: first-approval claim, session, the
-- customer's session set, verification hash, stats, durations. a: the decoded payload
-- {session, sid, ttl, fields, counters, duration}; ARGV[2]: durations kept.
-- Always stores the session and the verification state; only the first caller for a
-- verification (the claim) counts the KPIs. -> true for that first caller.
local function approve(k, a)
  local first = redis.call('SET', KEYS[k], '1', 'NX', 'EX', 3600)
  redis.call('SET', KEYS[k + 1], a.session, 'EX', a.ttl)
  redis.call('SADD', KEYS[k + 2], a.sid)
  redis.call('EXPIRE', KEYS[k + 2], 172800)
  for name, value in pairs(a.fields) do redis.call('HSET', KEYS[k + 3], name, value) end
  if not first then return false end
  for name, n in pairs(a.counters) do redis.call('HINCRBY', KEYS[k + 4], name, n) end
  redis.call('LPUSH', KEYS[k + 5], a.duration)
  redis.call('LTRIM', KEYS[k + 5], 0, tonumber(ARGV[2]) - 1)
  return true
end
