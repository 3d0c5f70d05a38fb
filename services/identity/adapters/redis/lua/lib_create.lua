-- Library: create a verification (after lib_events.lua): counters, fields, satisfied set,
-- the customer's set of verifications, events. keys: {verification hash, its satisfied
-- set, the customer's verifications, stats[, stream]}; a: {fields, sat, counters, ttl,
-- events, maxlen}.
-- KEYS, ARGV: none read here; the including script passes them in as arguments.
local function create_verification(keys, vid, a)
  for name, n in pairs(a.counters) do redis.call('HINCRBY', keys[4], name, n) end
  for k, v in pairs(a.fields) do redis.call('HSET', keys[1], k, v) end
  redis.call('EXPIRE', keys[1], a.ttl)
  if #a.sat > 0 then
    redis.call('SADD', keys[2], unpack(a.sat))
    redis.call('EXPIRE', keys[2], a.ttl)
  end
  redis.call('SADD', keys[3], vid)
  redis.call('EXPIRE', keys[3], a.ttl)
  append_events(keys[5], a)
end
