-- tick.lua: Claims each due timer and acts on it in the same step: a timer fires exactly once,
-- however many dispatchers run.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] limit: timers per call
-- ARGV[7] cooloff_ms: decline cool-off of a timed-out offer
-- ARGV[8] away_after: missed offers before away
-- ARGV[9] lead_team: the team-lead team
-- ARGV[10] lead_wait_ms: how long the lead team alone may take an escalated task
-- Returns: {'t:<task>' / 'a:<agent>' to match again, ...}

local limit = ARGV[6]
local cooloff_ms = ARGV[7]
local away_after = ARGV[8]
local lead_team = ARGV[9]
local lead_wait_ms = ARGV[10]
local due = redis.call('ZRANGEBYSCORE', P .. 'timers', '-inf', NOW, 'LIMIT', 0, limit)
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', P .. 'timers', member)
  local kind, id = string.match(member, '^(%a+)|(.+)$')
  if kind == 'res' then
    local r = end_reservation(id, 'timeout', tonumber(cooloff_ms), tonumber(away_after))
    if r then out[#out + 1] = 't:' .. r.task; out[#out + 1] = 'a:' .. r.agent end
  else
    local tid = id
    if kind == 'relax' then tid = string.match(id, '^(.+)|%d+$') or id end
    local tkey = P .. 'task:' .. tid
    local t = hgetall(tkey)
    local open = t.status == 'queued' or t.status == 'reserved'
    if kind == 'sla' and open and t.sla_escalated ~= '1' then
      redis.call('HSET', tkey, 'sla_escalated', '1')
      emit('routing.task.escalated', {task_id = tid, customer_id = t.customer_id,
        channel = t.channel, category = t.category, reason = 'sla'})
    elseif kind == 'lead' and open and t.lead_escalated ~= '1' then
      -- Leads first, then anyone qualified (a 'leadend' timer retries then): a
      -- requirement for good would strand the task when no lead comes on shift.
      local until_ms = NOW + tonumber(lead_wait_ms)
      redis.call('HSET', tkey, 'lead_escalated', '1', 'team', lead_team, 'team_until', until_ms)
      redis.call('ZADD', P .. 'timers', until_ms, 'leadend|' .. tid)
      emit('routing.task.escalated', {task_id = tid, customer_id = t.customer_id,
        channel = t.channel, category = t.category, reason = 'team_lead', team = lead_team})
      out[#out + 1] = 't:' .. tid
    elseif t.status == 'queued' then
      out[#out + 1] = 't:' .. tid
    end
  end
end
return out
