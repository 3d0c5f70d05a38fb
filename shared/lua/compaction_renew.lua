-- Extend the run's lease while we still hold it (shared/compaction.py).
-- KEYS[1] lease
-- ARGV[1] holder, ARGV[2] lease_ms
-- returns 1 extended / 0 not ours
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
