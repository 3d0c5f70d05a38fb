-- Extend a claim only while it is still ours and still pending (shared/idempotency.py).
-- KEYS[1] the record (JSON with ``state`` and ``token``)
-- ARGV[1] our claim's token, ARGV[2] the new time to live (ms)
-- returns 1 extended / 0 not ours or no longer pending
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, d = pcall(cjson.decode, v)
if ok and d['state'] == 'pending' and d['token'] == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
