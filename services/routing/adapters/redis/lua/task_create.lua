-- task_create.lua: Stores and queues a task, arms its timers; with route = '1' also offers it
-- to the longest-idle eligible agent in the same step (unless it has a sticky agent).
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] task_id: the task
-- ARGV[7] task: JSON of every hash field
-- ARGV[8] timers: JSON [[member, due ms], ...]
-- ARGV[9] escalated: '1' / '0'
-- ARGV[10] sla_due_at: RFC 3339
-- ARGV[11] sticky_timeout_ms: how long the sticky agent is waited for
-- ARGV[12] route: '1': decide here (default strategy), '0': the caller decides
-- ARGV[13] language: required language or '*'
-- ARGV[14] skills: required skills JSON {skill: level}
-- ARGV[15] team: required team or ''
-- ARGV[16] reservation_id: the offer's id if one is made
-- ARGV[17] expires_ms: its expiry (ms)
-- ARGV[18] expires_at: its expiry, RFC 3339 ('' when none)
-- Returns: {created 1/0, sticky agent or '', agent reserved or '', verification id applied or ''}

local task_id = ARGV[6]
local task = ARGV[7]
local timers = ARGV[8]
local escalated = ARGV[9]
local sla_due_at = ARGV[10]
local sticky_timeout_ms = ARGV[11]
local route = ARGV[12]
local language = ARGV[13]
local skills = ARGV[14]
local team = ARGV[15]
local reservation_id = ARGV[16]
local expires_ms = ARGV[17]
local expires_at = ARGV[18]
local tid = task_id
local tkey = P .. 'task:' .. tid
if redis.call('EXISTS', tkey) == 1 then return {0, '', '', ''} end
local t = cjson.decode(task)
local flat = {}
for k, v in pairs(t) do flat[#flat + 1] = k; flat[#flat + 1] = tostring(v) end
redis.call('HSET', tkey, unpack(flat))
t = hgetall(tkey)
-- A verification that arrived before the task (kept a while by VERIFIED).
local vid = redis.call('GET', P .. 'verified:' .. t.customer_id)
if vid and t.verified ~= '1' then
  redis.call('HSET', tkey, 'verified', '1', 'verification_id', vid)
  t.verified, t.verification_id = '1', vid
end
enqueue(tid, t)
redis.call('SADD', P .. 'cust:' .. t.customer_id, tid)
-- No expiry while it lists an open task (open tasks never expire; erasure and export
-- find tasks only here); ending tasks give it theirs (settle_customer).
redis.call('PERSIST', P .. 'cust:' .. t.customer_id)
redis.call('SADD', P .. 'channels', t.channel)
for _, pair in ipairs(cjson.decode(timers)) do
  redis.call('ZADD', P .. 'timers', pair[2], pair[1])
end
-- The customer's previous agent, unless offline (then skipped at once).
local sticky = ''
local last = redis.call('GET', P .. 'last_agent:' .. t.customer_id)
if last then
  local st = redis.call('HGET', P .. 'agent:' .. last, 'status')
  if st and st ~= 'offline' then
    sticky = last
    local until_ms = NOW + tonumber(sticky_timeout_ms)
    redis.call('HSET', tkey, 'sticky_agent', last, 'sticky_until', until_ms)
    redis.call('ZADD', P .. 'timers', until_ms, 'sticky|' .. tid)
  end
end
emit('routing.task.created', {task_id = tid, customer_id = t.customer_id, channel = t.channel,
  category = t.category, priority = tonumber(t.priority), sla_due_at = sla_due_at})
if escalated == '1' then
  emit('routing.task.escalated', {task_id = tid, customer_id = t.customer_id,
    channel = t.channel, category = t.category, reason = 'negative_sentiment',
    team = t.team})
end
if vid then
  emit('routing.task.verified', {task_id = tid, customer_id = t.customer_id,
    verification_id = vid})
end
-- Default strategy and no sticky agent: the first eligible agent in idle order is the
-- decision, taken here - one round trip from request to offer.
if route == '1' and sticky == '' then
  local found = scan_candidates(t.channel, language, cjson.decode(skills), team, {},
    1, 1024, {})
  if #found > 0 then
    local aid = found[1][1]
    do_reserve(tid, t, aid, found[1][3], reservation_id, expires_ms, expires_at)
    notify_offer(aid, reservation_id)
    return {1, '', aid, vid or ''}
  end
  return {1, '', '', vid or ''}
end
return {1, sticky, '', vid or ''}
