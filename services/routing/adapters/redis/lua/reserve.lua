-- reserve.lua: Offers a queued task to an agent the caller chose, re-checking what makes it safe:
-- the task still queued, the agent available, unchanged (version) and below capacity.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] task_id: the task
-- ARGV[7] agent_id: the chosen agent
-- ARGV[8] reservation_id: the new offer's id
-- ARGV[9] expires_ms: the offer's expiry (ms)
-- ARGV[10] expires_at: the same, RFC 3339
-- ARGV[11] version: the agent's profile version the decision saw
-- Returns: 'ok', 'task_not_queued', 'agent_not_available', 'agent_changed' or 'agent_full'

local task_id = ARGV[6]
local agent_id = ARGV[7]
local reservation_id = ARGV[8]
local expires_ms = ARGV[9]
local expires_at = ARGV[10]
local version = ARGV[11]
local tid, aid, rid = task_id, agent_id, reservation_id
local tkey = P .. 'task:' .. tid
local t = hgetall(tkey)
if t.status ~= 'queued' then return 'task_not_queued' end
local akey = P .. 'agent:' .. aid
local a = hgetall(akey)
if a.status ~= 'available' then return 'agent_not_available' end
if a.version ~= version then return 'agent_changed' end
local cap = cjson.decode(a.channels)[t.channel] or 0
local load = tonumber(a['load:' .. t.channel] or '0')
if load >= cap then return 'agent_full' end
do_reserve(tid, t, aid, a, rid, expires_ms, expires_at)
notify_offer(aid, rid)
return 'ok'
