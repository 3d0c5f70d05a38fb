-- Delete a delivered code only if it is the one given: single use.
-- KEYS: code key. ARGV: digest. -> 1 consumed, 0 absent or another code.
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if cjson.decode(v)['digest'] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
