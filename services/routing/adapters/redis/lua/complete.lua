-- complete.lua: Completes an assigned task, freeing the agent's slot.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] task_id: the task
-- ARGV[7] retention_s: how long the ended task is kept
-- ARGV[8] as_agent: the caller's bound agent or ''
-- Uses: customer.lua
-- Returns: {'missing'}, {'not_yours'}, {'task_<status>'} or {'ok', agent, tasks waiting on its channel, HGETALL task}

local task_id, retention_s, as_agent = ARGV[6], ARGV[7], ARGV[8]
local tid = task_id
local tkey = P .. 'task:' .. tid
local t = hgetall(tkey)
if not t.status then return {'missing'} end
-- In the same step as the transition: the task's agent cannot change in between.
if (as_agent or '') ~= '' and t.agent ~= as_agent then return {'not_yours'} end
if t.status ~= 'assigned' then return {'task_' .. t.status} end
redis.call('HSET', tkey, 'status', 'completed', 'ended', NOW)
redis.call('EXPIRE', tkey, retention_s)
settle_customer(t.customer_id, tid)
release(t.agent, t.channel)
emit('routing.task.completed', {task_id = tid, customer_id = t.customer_id, agent_id = t.agent,
  channel = t.channel, category = t.category})
-- Whether the freed agent should look for work: anything waiting on that channel.
local waiting = redis.call('ZCARD', P .. 'queue:' .. t.channel)
return {'ok', t.agent, waiting, redis.call('HGETALL', tkey)}
