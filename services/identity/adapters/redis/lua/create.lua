-- Create a verification (after lib_events.lua). One command instead of a MULTI of a
-- dozen: the client packs one, not each of them.
-- KEYS: verification hash, its satisfied set, the customer's verifications, stats[, stream].
-- ARGV[1]: the verification id; ARGV[2]: JSON {fields, sat, counters, ttl, events, maxlen}.
-- -> 1
local a = cjson.decode(ARGV[2])
for name, n in pairs(a.counters) do redis.call('HINCRBY', KEYS[4], name, n) end
for k, v in pairs(a.fields) do redis.call('HSET', KEYS[1], k, v) end
redis.call('EXPIRE', KEYS[1], a.ttl)
if #a.sat > 0 then
  redis.call('SADD', KEYS[2], unpack(a.sat))
  redis.call('EXPIRE', KEYS[2], a.ttl)
end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], a.ttl)
append_events(KEYS[5], a)
return 1
