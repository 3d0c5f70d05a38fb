-- Delete a record only if it is still the one we could not open (shared/idempotency.py).
-- KEYS[1] the record
-- ARGV[1] the raw value that was read
-- returns 1 deleted / 0 it changed meanwhile
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
