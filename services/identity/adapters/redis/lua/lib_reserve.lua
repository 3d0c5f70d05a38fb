-- Library (prepended to reserve.lua and reserve_turn.lua): the attempt reservation.
-- The rule of domain/lockout.py (tests/integration/identity/test_identity_lockout_model.py
-- drives both with the same random sequences). The streak counts consecutive failures
-- across lockouts; at the cap the customer is held: no attempt is evaluated until an
-- administrator unlocks them, so the streak then loses its TTL.
-- KEYS[1..4]: attempts, failures, lock, streak.
-- ARGV[1..5]: max_attempts, attempts_ttl, failures_ttl, cap, streak_ttl.
-- reserve() -> {granted (1/0), remaining, retry_after, held (1/0)}
local function reserve()
  local cap = tonumber(ARGV[4])
  local s = tonumber(redis.call('GET', KEYS[4]) or '0')
  if s >= cap then return {0, 0, 0, 1} end
  local lock_ttl = redis.call('PTTL', KEYS[3])
  if lock_ttl > 0 then return {0, 0, math.ceil(lock_ttl / 1000), 0} end
  local limit = math.min(tonumber(ARGV[1]), cap)
  local a = tonumber(redis.call('GET', KEYS[1]) or '0')
  local f = tonumber(redis.call('GET', KEYS[2]) or '0')
  if a >= limit or f >= limit then return {0, 0, 1, 0} end
  a = redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  f = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  s = redis.call('INCR', KEYS[4])
  if s >= cap then redis.call('PERSIST', KEYS[4]) else redis.call('EXPIRE', KEYS[4], ARGV[5]) end
  return {1, math.max(0, math.min(limit - math.max(a, f), cap - s)), 0, 0}
end
