-- Settle a reserved attempt (domain/lockout.py's settle).
-- KEYS: attempts, failures, lock, streak.
-- ARGV: success (1/0), max_attempts, lockout_seconds, cap.
-- -> {locked (1/0), remaining}
local cap = tonumber(ARGV[4])
local limit = math.min(tonumber(ARGV[2]), cap)
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] == '1' then
  if a > 0 then redis.call('DECR', KEYS[1]) end
  redis.call('DEL', KEYS[2], KEYS[4])
  return {0, limit - math.max(a - 1, 0)}
end
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
local s = tonumber(redis.call('GET', KEYS[4]) or '0')
if s >= cap then return {1, 0} end
if a >= limit or f >= limit then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return {1, 0}
end
return {0, math.max(0, math.min(limit - math.max(a, f), cap - s))}
