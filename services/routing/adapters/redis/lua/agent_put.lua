-- agent_put.lua: Creates or replaces an agent's profile (status optional) and re-files it.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] agent_id: the agent
-- ARGV[7] profile: JSON {name, team, skills, languages, channels, status?}
-- Returns: {created 1/0, task requeued, ...} (offers ended by going offline)

local agent_id, profile = ARGV[6], ARGV[7]
local aid = agent_id
local p = cjson.decode(profile)
local akey = P .. 'agent:' .. aid
local old = hgetall(akey)
local created = old.status == nil
if not created then reindex(aid, old, true) end
if not created and old.status ~= 'offline' then count_capacity(old.channels, -1) end
local function text(v) if type(v) == 'string' then return v end return '' end
redis.call('HSET', akey, 'name', text(p.name), 'team', text(p.team),
  'skills', cjson.encode(p.skills), 'languages', cjson.encode(p.languages),
  'channels', cjson.encode(p.channels))
redis.call('HINCRBY', akey, 'version', 1)
if created then
  redis.call('HSET', akey, 'status', 'offline', 'idle_since', NOW, 'missed', 0, 'created', NOW)
  redis.call('HINCRBY', P .. 'agent_counts', 'offline', 1)
  redis.call('ZADD', P .. 'agents', 0, aid)
end
local a = hgetall(akey)
if a.status ~= 'offline' then count_capacity(a.channels, 1) end
local out = {created and 1 or 0}
if type(p.status) == 'string' and p.status ~= a.status then
  change_status(aid, a, p.status, 'admin', out)  -- as the status endpoint does
end
-- A new agent was in no index: its status change filed it. A known one was taken out
-- of the indexes of its old profile above: file it in those of the new one.
if not created then reindex(aid, hgetall(akey)) end
return out
