-- The outcome of one webhook attempt, applied only while the caller still holds the
-- subscription's lease (shared/webhooks/store.py): a replica that lost it changes nothing.
-- KEYS[1] lease, KEYS[2] queue (list of bodies), KEYS[3] retry state (hash), KEYS[4] log (stream)
-- ARGV[1] lease token, ARGV[2] the body attempted (the queue's head),
-- ARGV[3] outcome: delivered | retrying | failed, ARGV[4] the log record (JSON),
-- ARGV[5] log length kept (exactly), ARGV[6] attempts, ARGV[7] first failure, ARGV[8] next attempt
-- returns  1 when applied, 0 when the lease was no longer ours
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == 'delivered' then
  if redis.call('LINDEX', KEYS[2], 0) == ARGV[2] then
    redis.call('LPOP', KEYS[2])
  end
  redis.call('DEL', KEYS[3])
elseif ARGV[3] == 'retrying' then
  redis.call('HSET', KEYS[3], 'attempts', ARGV[6], 'first_failure', ARGV[7], 'next_at', ARGV[8])
else
  redis.call('DEL', KEYS[2], KEYS[3])
end
redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[5], '*', 'd', ARGV[4])
redis.call('DEL', KEYS[1])
return 1
