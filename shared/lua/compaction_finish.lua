-- End our run: drop the lease; unless the run failed, forget the request it served and
-- count the run (shared/compaction.py).
-- KEYS[1] running, KEYS[2] lease, KEYS[3] done
-- ARGV[1] holder, ARGV[2] release_only ('1': the run failed; keep it due)
-- returns the number of completed runs, or 0 (not ours, or released only)
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if ARGV[2] == '1' then return 0 end
redis.call('DEL', KEYS[1])
return redis.call('INCR', KEYS[3])
