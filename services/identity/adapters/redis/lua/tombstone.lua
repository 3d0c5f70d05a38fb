-- Remember an erasure's time; the latest one (a late, older erasure event does not
-- move it back).
-- KEYS: erasure tombstone. ARGV: the erasure's time (ms), ttl (ms). -> the time kept.
local held = tonumber(redis.call('GET', KEYS[1]) or '-1')
local at = math.max(held, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%d', at), 'PX', ARGV[2])
return at
