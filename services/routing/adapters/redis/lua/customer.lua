-- customer.lua (library, prepended where listed under Uses): settle_customer(cust, tid).
--
-- Keeps ``cust:<customer>`` alive as long as its longest-lived task hash, since erasure
-- and export find a customer's tasks only through it: no expiry while it lists a task
-- without one (an open task), else the longest remaining TTL of its ended tasks, never
-- shortened. ``tid``: a task just ended, re-filed in case an older version let the set
-- expire under it. Drops ids whose hash is gone. Walks the set: not for hot paths.
-- KEYS, ARGV: none read here; the including script passes them in as arguments.
local function settle_customer(cust, tid)
  local ckey = P .. 'cust:' .. cust
  if tid then redis.call('SADD', ckey, tid) end
  local longest = 0
  for _, id in ipairs(redis.call('SMEMBERS', ckey)) do
    local ttl = redis.call('PTTL', P .. 'task:' .. id)
    if ttl == -1 then
      redis.call('PERSIST', ckey)
      return
    elseif ttl == -2 then
      redis.call('SREM', ckey, id)
    elseif ttl > longest then
      longest = ttl
    end
  end
  if longest > 0 and redis.call('PTTL', ckey) < longest then  -- -1 (none) included
    redis.call('PEXPIRE', ckey, longest)
  end
end
