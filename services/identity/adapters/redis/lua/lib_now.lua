-- Library: the Redis server's clock in ms, as local `now` (hosts with skewed clocks agree
-- on when a breaker opens). KEYS (none), ARGV (none): the script after it reads `now`.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
