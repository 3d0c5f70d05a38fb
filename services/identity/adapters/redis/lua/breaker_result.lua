-- Record a call's outcome (adapters/breaker.py). Needs lib_now.
-- KEYS: the breaker's hash.
-- ARGV: ok (1/0), failures to open, open_ms, memory_ms.
-- -> 1: this failure opened (or re-opened) the breaker; 2: this success closed it; 0.
-- A success forgets every failure. Failures count while they come within memory_ms of
-- each other; a failed probe re-opens at once.

local was_open = redis.call('HEXISTS', KEYS[1], 'open_until') == 1
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1])
  if was_open then return 2 end
  return 0
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local opened = 0
local probe_failed = open_until > 0 and now >= open_until
if probe_failed or (open_until == 0 and failures >= tonumber(ARGV[2])) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[3]))
  redis.call('HDEL', KEYS[1], 'probe')
  opened = 1
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
return opened
