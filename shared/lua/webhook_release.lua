-- Give a webhook subscription's lease back, only if it is still the caller's
-- (shared/webhooks/store.py): an expired lease may be another worker's by now.
-- KEYS[1] the lease
-- ARGV[1] the caller's token
-- returns  1 when released, 0 when it was not the caller's
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
