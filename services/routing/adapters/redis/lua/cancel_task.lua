-- cancel_task.lua (library, prepended where listed under Uses): cancel_task(tid, reason).
--
-- Cancels an open task, freeing whatever it held; shared by cancel and erase.
-- Returns (agent freed or '', 'ok') or (nil, 'missing' / 'task_<status>').
-- KEYS, ARGV: none read here; the including script passes them in as arguments.
local function cancel_task(tid, reason)
  local tkey = P .. 'task:' .. tid
  local t = hgetall(tkey)
  if not t.status then return nil, 'missing' end
  if t.status == 'completed' or t.status == 'canceled' then return nil, 'task_' .. t.status end
  local freed = ''
  if t.status == 'queued' then
    dequeue(tid, t)
  elseif t.status == 'reserved' then
    local rid = t.reservation
    redis.call('HSET', P .. 'res:' .. rid, 'status', 'canceled', 'ended', NOW)
    redis.call('EXPIRE', P .. 'res:' .. rid, RES_TTL)
    redis.call('SREM', P .. 'agent_res:' .. t.agent, rid)
    redis.call('ZREM', P .. 'timers', 'res|' .. rid)
    release(t.agent, t.channel)
    freed = t.agent
  elseif t.status == 'assigned' then
    release(t.agent, t.channel)
    freed = t.agent
  end
  drop_task_timers(tid)
  redis.call('HSET', tkey, 'status', 'canceled', 'ended', NOW, 'cancel_reason', reason)
  emit('routing.task.canceled', {task_id = tid, customer_id = t.customer_id, reason = reason})
  return freed, 'ok'
end
