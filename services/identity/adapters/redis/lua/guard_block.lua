-- Block a prefix and start its conversion afresh (the delivery fraud guard's auto block).
-- KEYS: blocks zset, the prefix's conversion hash, the guard's stats hash.
-- ARGV: prefix, until_ms, now_ms.
-- -> 1: blocked now; 0: it was blocked already (a concurrent send blocked it first).

local untl = redis.call('ZSCORE', KEYS[1], ARGV[1])
if untl and tonumber(untl) > tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HINCRBY', KEYS[3], 'auto_blocks', 1)
return 1
