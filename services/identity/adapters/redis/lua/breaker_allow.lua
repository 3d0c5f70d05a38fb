-- May a call go to the external service (adapters/breaker.py)? Needs lib_now.
-- KEYS: the breaker's hash.
-- ARGV: probe_ms.
-- -> 0: send; n > 0: refused, wait n ms.
-- Closed (no open_until): send. Open: refuse until open_until. After that, half-open:
-- one probe at a time is let through; a probe whose process died is replaced after
-- probe_ms.

local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 0 end
if now < open_until then return open_until - now end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe') or '0')
if probe > now then return math.min(probe - now, 1000) end
redis.call('HSET', KEYS[1], 'probe', now + tonumber(ARGV[1]))
return 0
