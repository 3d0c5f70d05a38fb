-- Throttle the codes sent to one destination. The server's clock orders the sends, so
-- concurrent callers (and hosts with skewed clocks) cannot slip past the cooldown.
-- KEYS: throttle zset. ARGV: unused, window_ms, max_sends, cooldown_ms, member.
-- -> 0 (send now, recorded) or seconds to wait.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] and now - tonumber(last[2]) < tonumber(ARGV[4]) then
  return math.ceil((tonumber(last[2]) + tonumber(ARGV[4]) - now) / 1000)
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.ceil((tonumber(first[2]) + tonumber(ARGV[2]) - now) / 1000)
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
