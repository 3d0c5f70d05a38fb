-- Store the response where the claim is still ours, or lapsed and not taken since
-- (shared/idempotency.py).
-- KEYS[1] the record
-- ARGV[1] our claim's token, ARGV[2] the record to store (JSON), ARGV[3] its TTL (s)
-- returns 1 stored / 0 another request holds the key
local v = redis.call('GET', KEYS[1])
if v then
  local ok, d = pcall(cjson.decode, v)
  if not ok or d['token'] ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
