-- Release an Idempotency-Key claim only if it is still ours: a slow request's claim
-- may have expired and been taken by another (shared/idempotency.py).
-- KEYS[1] the record (JSON with ``token``)
-- ARGV[1] our claim's token
-- returns 1 released / 0 not ours
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['token'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
