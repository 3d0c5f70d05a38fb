-- accept.lua: Accepts a pending offer: the task is assigned; an offer past its expiry ends as a timeout.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] reservation_id: the offer
-- ARGV[7] minute: minute bucket key suffix (now // 60 s)
-- ARGV[8] sticky_memory_s: how long the customer's agent is remembered
-- ARGV[9] cooloff_ms: decline cool-off of a timed-out offer
-- ARGV[10] away_after: missed offers before away
-- ARGV[11] as_agent: the caller's bound agent or ''
-- Returns: 'missing', 'not_yours', 'res_<status>', {'expired', HGETALL res} or {'ok', HGETALL res}

local reservation_id = ARGV[6]
local minute = ARGV[7]
local sticky_memory_s = ARGV[8]
local cooloff_ms = ARGV[9]
local away_after = ARGV[10]
local as_agent = ARGV[11]
local rid = reservation_id
local rkey = P .. 'res:' .. rid
local r = hgetall(rkey)
if not r.status then return 'missing' end
if (as_agent or '') ~= '' and r.agent ~= as_agent then return 'not_yours' end
if r.status ~= 'pending' then return 'res_' .. r.status end
if NOW >= tonumber(r.expires) then
  -- Expired, the dispatcher just has not ticked yet: end it as its timer would.
  end_reservation(rid, 'timeout', tonumber(cooloff_ms), tonumber(away_after))
  return {'expired', redis.call('HGETALL', rkey)}
end
local tkey = P .. 'task:' .. r.task
local t = hgetall(tkey)
redis.call('HSET', rkey, 'status', 'accepted', 'ended', NOW)
redis.call('EXPIRE', rkey, RES_TTL)
redis.call('SREM', P .. 'agent_res:' .. r.agent, rid)
redis.call('ZREM', P .. 'timers', 'res|' .. rid)
drop_task_timers(r.task)
local waited = NOW - tonumber(t.created)
redis.call('HSET', tkey, 'status', 'assigned', 'assigned', NOW, 'waited_ms', waited)
redis.call('HSET', P .. 'agent:' .. r.agent, 'missed', 0)
redis.call('SET', P .. 'last_agent:' .. t.customer_id, r.agent, 'EX', sticky_memory_s)
local bucket = P .. 'stats:m:' .. minute
local prefix = t.category .. '|' .. t.channel .. '|'
redis.call('HINCRBY', bucket, prefix .. 'answered', 1)
if NOW <= tonumber(t.due) then redis.call('HINCRBY', bucket, prefix .. 'within', 1) end
redis.call('HINCRBY', bucket, prefix .. 'wait_ms', waited)
redis.call('EXPIRE', bucket, 7500)
emit('routing.reservation.accepted', {reservation_id = rid, task_id = r.task,
  agent_id = r.agent, customer_id = t.customer_id, channel = r.channel})
emit('routing.task.assigned', {task_id = r.task, customer_id = t.customer_id,
  agent_id = r.agent, channel = t.channel, category = t.category, waited_ms = waited})
return {'ok', redis.call('HGETALL', rkey)}
