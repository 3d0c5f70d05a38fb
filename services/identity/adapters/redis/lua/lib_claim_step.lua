-- Library: a TOTP time step is accepted once, and never one older. key holds the last
-- accepted step. -> true when step is accepted now, false when it was taken before.
-- KEYS, ARGV: none read here; the including script passes them in as arguments.
local function claim_step(key, step)
  local last = redis.call('GET', key)
  if last and tonumber(last) >= tonumber(step) then return false end
  redis.call('SET', key, step)
  return true
end
