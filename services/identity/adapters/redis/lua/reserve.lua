-- Reserve an attempt (after lib_reserve.lua).
-- KEYS: attempts, failures, lock, streak.
-- ARGV: max_attempts, attempts_ttl, failures_ttl, cap, streak_ttl.
-- -> {granted (1/0), remaining, retry_after, held (1/0)}
return reserve()
