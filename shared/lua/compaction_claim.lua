-- Claim the run once the window since the first request has passed and nobody holds
-- the lease: the pending request becomes ``running`` (a failed or abandoned run is still
-- there and runs again), and we take the lease (shared/compaction.py; server time, ms).
-- KEYS[1] requested, KEYS[2] running, KEYS[3] lease
-- ARGV[1] holder, ARGV[2] window_ms, ARGV[3] lease_ms
-- returns 1 claimed / 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local at = redis.call('GET', KEYS[1])
  if not at or tonumber(at) + tonumber(ARGV[2]) > now then return 0 end
  redis.call('RENAME', KEYS[1], KEYS[2])
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3])
return 1
