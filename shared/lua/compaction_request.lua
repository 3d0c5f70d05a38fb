-- Ask for a compaction run: sets the time of the first pending request only
-- (shared/compaction.py; time is the server's, in ms).
-- KEYS[1] requested
-- ARGV    (none)
-- returns 1 first request / 0 one was already pending
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

return redis.call('SET', KEYS[1], now, 'NX') and 1 or 0
