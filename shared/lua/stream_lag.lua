-- The lag of a consumer group, counted in the server (shared/metrics.py): no entry
-- crosses the network, at most ``limit`` entries read from either end. Exact when the
-- group is behind the stream's first entry (all of it is lag), when at most ``limit``
-- entries follow it, or when at most ``limit`` precede it (then the length minus those).
-- Only a group with more than ``limit`` on both sides is estimated, by the share of the
-- stream's time span still ahead of it, within the bounds known. Each side reads
-- ``limit + 1``: only the one past the limit tells "more" from "exactly".
-- KEYS[1] the stream
-- ARGV[1] the group's last-delivered id, ARGV[2] limit
-- returns {lag, lowest, highest}
local len = redis.call('XLEN', KEYS[1])
if len == 0 then return {0, 0, 0} end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms or 0), tonumber(seq or 0)
end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][1]
local fm, fs = parse(first)
local gm, gs = parse(ARGV[1])
if gm < fm or (gm == fm and gs < fs) then return {len, len, len} end
local limit = tonumber(ARGV[2])
local after = #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', limit + 1)
if after <= limit then return {after, after, after} end
local upto = #redis.call('XRANGE', KEYS[1], '-', ARGV[1], 'COUNT', limit + 1)
if upto <= limit then return {len - upto, len - upto, len - upto} end
local low, high = limit + 1, len - limit - 1
local lm = parse(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][1])
local share = (lm - gm) / math.max(lm - fm, 1)
return {math.min(math.max(math.floor(len * share), low), high), low, high}
