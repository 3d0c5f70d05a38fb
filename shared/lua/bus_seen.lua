-- Which of the ids were processed, in either bucket of processed ids; one command for
-- a whole batch, each id once (shared/bus.py).
-- KEYS[1] the current bucket, KEYS[2] the previous bucket (sets of event ids)
-- ARGV     the event ids
-- returns  one number per id, in order: > 0 where it was processed
local out = {}
for i, id in ipairs(ARGV) do
  out[i] = redis.call('SISMEMBER', KEYS[1], id) + redis.call('SISMEMBER', KEYS[2], id)
end
return out
