-- Reserve an attempt and take the code's turn (after lib_reserve.lua); see
-- services/identity/resubmission.py.
-- KEYS: attempts, failures, lock, streak, the turn marker, the verification hash.
-- ARGV: reserve's five (max_attempts, attempts_ttl, failures_ttl, cap, streak_ttl),
--       the busy marker's TTL (ms).
-- -> reserve's answer, the marker set when granted; or, when the turn is taken,
--    {-1, 0, 0, 0, marker, the verification's status (JSON)} and nothing written.
local held = redis.call('GET', KEYS[5])
if held then return {-1, 0, 0, 0, held, redis.call('HGET', KEYS[6], 'status') or ''} end
local r = reserve()
if r[1] == 1 then redis.call('SET', KEYS[5], 'busy', 'PX', ARGV[6]) end
return r
