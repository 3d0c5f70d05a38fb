-- agent_status.lua: Changes an agent's status; going offline ends its pending offers.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] agent_id: the agent
-- ARGV[7] status: available / away / offline
-- ARGV[8] reason: why (agent, admin...)
-- Returns: {'missing'} or {'ok', task requeued, ...}

local agent_id, status, reason = ARGV[6], ARGV[7], ARGV[8]
local aid = agent_id
local akey = P .. 'agent:' .. aid
local a = hgetall(akey)
if not a.status then return {'missing'} end
local requeued = {'ok'}
change_status(aid, a, status, reason, requeued)  -- re-files the agent
return requeued
