-- What a verification-status answer needs, in one round trip. On a cluster the policies
-- are in another slot and read beside the script (KEYS[3] not given).
-- KEYS: profile, session set[, policies]. ARGV: session key prefix (same slot).
-- -> {projected tier or '', [session JSON...], [tier, policy, ...]}
local tier = redis.call('HGET', KEYS[1], 'tier') or ''
local sessions = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local v = redis.call('GET', ARGV[1] .. sid)
  if v then sessions[#sessions + 1] = v end
end
local policies = {}
if KEYS[3] then policies = redis.call('HGETALL', KEYS[3]) end
return {tier, sessions, policies}
