-- cancel.lua: Cancels an open task, freeing whatever it held.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] task_id: the task
-- ARGV[7] reason: the cancel reason
-- ARGV[8] retention_s: how long the ended task is kept
-- ARGV[9] as_agent: the caller's bound agent or ''
-- Uses: cancel_task.lua, customer.lua
-- Returns: {outcome ('ok', 'missing', 'not_yours', 'task_<status>'), agent freed or ''}

local task_id, reason, retention_s, as_agent = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
if (as_agent or '') ~= '' then
  local t = hgetall(P .. 'task:' .. task_id)
  if t.status and t.agent ~= as_agent then return {'not_yours', ''} end
end
local freed, outcome = cancel_task(task_id, reason)
if outcome == 'ok' then
  redis.call('EXPIRE', P .. 'task:' .. task_id, retention_s)
  local cust = redis.call('HGET', P .. 'task:' .. task_id, 'customer_id')
  if cust then settle_customer(cust, task_id) end
end
return {outcome, freed or ''}
