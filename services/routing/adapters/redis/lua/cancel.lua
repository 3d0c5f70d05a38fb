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

if (ARGV[9] or '') ~= '' then
  local t = hgetall(P .. 'task:' .. ARGV[6])
  if t.status and t.agent ~= ARGV[9] then return {'not_yours', ''} end
end
local freed, outcome = cancel_task(ARGV[6], ARGV[7])
if outcome == 'ok' then
  redis.call('EXPIRE', P .. 'task:' .. ARGV[6], ARGV[8])
  local cust = redis.call('HGET', P .. 'task:' .. ARGV[6], 'customer_id')
  if cust then settle_customer(cust, ARGV[6]) end
end
return {outcome, freed or ''}
