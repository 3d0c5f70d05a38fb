"""The Lua scripts: every routing transition is one of them, state change and event together.

Each script gets ``KEYS[1]`` = the pool's outbox (``sb:rt:{pool}:outbox``) so a
cluster client routes it to the node of the pool's hash tag, and builds every
other key from the prefix ``ARGV[1]`` (same hash tag, same slot). Common
arguments: ARGV[1] prefix, [2] now (ms), [3] now (RFC 3339), [4] event id base,
[5] correlation id; each script's own arguments follow from ARGV[6].

Events go to the pool-local outbox stream; the dispatcher relays them to
``sb:events:routing`` (consumers deduplicate on the event id).
"""

from __future__ import annotations

PRELUDE = r"""
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local NOW_ISO = ARGV[3]
local EVID = ARGV[4]
local CORR = ARGV[5]
local nev = 0
local RES_TTL = 604800  -- an answered offer is kept a week, like a finished task

local function emit(etype, data)
  nev = nev + 1
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', '1000000', '*',
    'id', EVID .. string.format('%02d', nev), 'type', etype, 'version', '1',
    'occurred_at', NOW_ISO, 'source', 'routing', 'correlation_id', CORR,
    'data', cjson.encode(data))
end

local function hgetall(key)
  local r = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #r, 2 do t[r[i]] = r[i + 1] end
  return t
end

-- Every candidate index an agent belongs to on channel ``ch``: per language (and '*')
-- the plain one, one per skill, one per skill and "at least level n" (n = 2..5: the
-- API's levels are 1..5, and level >= 1 is the skill index itself), and per team.
-- Without the level and team dimensions a demanding requirement walked an index of
-- every agent with the skill and could miss the one able agent behind 1,024 others.
local function idx_keys(ch, langs, skills, team)
  local base = P .. 'idx:' .. ch .. ':'
  local keys = {base .. '*:*'}
  local ls = {'*'}
  for _, l in ipairs(langs) do
    ls[#ls + 1] = l
    keys[#keys + 1] = base .. l .. ':*'
  end
  for _, l in ipairs(ls) do
    for s, lvl in pairs(skills) do
      keys[#keys + 1] = base .. l .. ':' .. s
      for n = 2, math.min(tonumber(lvl) or 0, 5) do
        keys[#keys + 1] = base .. l .. ':' .. s .. ':' .. n
      end
    end
    if team and team ~= '' then keys[#keys + 1] = P .. 'tidx:' .. ch .. ':' .. team .. ':' .. l end
  end
  return keys
end

-- Puts the agent into, or takes it out of, every candidate index of each channel, as
-- its state calls for: the full re-filing, for a profile change and the backfill.
local function reindex(aid, a, force_out)
  if not a.status then return end
  local caps = cjson.decode(a.channels)
  local skills = cjson.decode(a.skills)
  local langs = cjson.decode(a.languages)
  for ch, cap in pairs(caps) do
    local load = tonumber(a['load:' .. ch] or '0')
    local inside = (not force_out) and a.status == 'available' and load < cap
    for _, k in ipairs(idx_keys(ch, langs, skills, a.team)) do
      if inside then redis.call('ZADD', k, a.idle_since or NOW, aid)
      else redis.call('ZREM', k, aid) end
    end
    if inside then redis.call('SADD', P .. 'channels', ch) end
  end
end

local function copy(a)
  local c = {}
  for k, v in pairs(a) do c[k] = v end
  return c
end

-- The incremental twin of ``reindex`` for a change of status, load or idle-since (the
-- profile unchanged): the agent was filed as ``before`` calls for and is re-filed as
-- ``after`` does, writing only the channels whose membership or score changes (only
-- ``only_ch`` when given, the one whose load changed). A reserve re-scores the channels
-- the agent stays in (idle-since is reset) and leaves the ones it is not in alone; a
-- release below capacity writes nothing. A test compares the result with ``reindex``.
local function refile(aid, before, after, only_ch)
  if not after.status then return end
  local caps = cjson.decode(after.channels)
  local skills, langs
  local was_score = tonumber(before.idle_since or NOW)
  local score = tonumber(after.idle_since or NOW)
  -- The score as text once: each number argument of redis.call is formatted anew.
  local score_arg = string.format('%.17g', score)
  for ch, cap in pairs(caps) do
    if only_ch == nil or ch == only_ch then
      local was = before.status == 'available' and tonumber(before['load:' .. ch] or '0') < cap
      local inside = after.status == 'available' and tonumber(after['load:' .. ch] or '0') < cap
      if inside ~= was or (inside and score ~= was_score) then
        if not skills then
          skills, langs = cjson.decode(after.skills), cjson.decode(after.languages)
        end
        for _, k in ipairs(idx_keys(ch, langs, skills, after.team)) do
          if inside then redis.call('ZADD', k, score_arg, aid)
          else redis.call('ZREM', k, aid) end
        end
        if inside then redis.call('SADD', P .. 'channels', ch) end
      end
    end
  end
end

local function enqueue(tid, t)
  redis.call('ZADD', P .. 'queue:' .. t.channel, t.key, tid)
  redis.call('ZADD', P .. 'waiting:' .. t.category .. ':' .. t.channel, t.created, tid)
end

local function dequeue(tid, t)
  redis.call('ZREM', P .. 'queue:' .. t.channel, tid)
  redis.call('ZREM', P .. 'waiting:' .. t.category .. ':' .. t.channel, tid)
end

local function release(aid, ch)
  local akey = P .. 'agent:' .. aid
  local a = hgetall(akey)
  if not a.status then return end
  local load = redis.call('HINCRBY', akey, 'load:' .. ch, -1)
  if load < 0 then
    redis.call('HSET', akey, 'load:' .. ch, 0)
    load = 0
  else redis.call('HINCRBY', P .. 'busy_slots', ch, -1) end
  local after = copy(a)
  after['load:' .. ch] = load
  refile(aid, a, after, ch)
end

-- Capacity per channel of the agents not offline: the denominator of occupancy.
-- (A capacity of 0 is skipped: -1 * 0 reaches Redis as "-0", which HINCRBY refuses.)
local function count_capacity(channels, sign)
  for ch, cap in pairs(cjson.decode(channels)) do
    if cap ~= 0 then redis.call('HINCRBY', P .. 'capacity_slots', ch, sign * cap) end
  end
end

-- Changes the status in the hash and in ``a``, and re-files the agent accordingly.
local function set_status(aid, a, status, reason)
  local prev = a.status
  if prev == status then return end
  local before = copy(a)
  if (prev == 'offline') ~= (status == 'offline') then
    count_capacity(a.channels, status == 'offline' and -1 or 1)
  end
  redis.call('HSET', P .. 'agent:' .. aid, 'status', status)
  redis.call('HINCRBY', P .. 'agent_counts', prev, -1)
  redis.call('HINCRBY', P .. 'agent_counts', status, 1)
  a.status = status
  if status == 'available' then
    redis.call('HSET', P .. 'agent:' .. aid, 'idle_since', NOW, 'missed', 0)
    a.idle_since = NOW
  end
  refile(aid, before, a)
  emit('routing.agent.status_changed',
    {agent_id = aid, status = status, previous = prev, reason = reason})
end

-- Ends a pending reservation; the task goes back to the queue with its original key.
local function end_reservation(rid, outcome, cooloff_ms, away_after)
  local rkey = P .. 'res:' .. rid
  local r = hgetall(rkey)
  if r.status ~= 'pending' then return nil end
  redis.call('HSET', rkey, 'status', outcome, 'ended', NOW)
  redis.call('EXPIRE', rkey, RES_TTL)
  redis.call('SREM', P .. 'agent_res:' .. r.agent, rid)
  redis.call('ZREM', P .. 'timers', 'res|' .. rid)
  local tkey = P .. 'task:' .. r.task
  local t = hgetall(tkey)
  if t.status == 'reserved' and t.reservation == rid then
    local declined = cjson.decode(t.declined or '{}')
    if outcome ~= 'canceled' then declined[r.agent] = NOW + cooloff_ms end
    redis.call('HSET', tkey, 'status', 'queued', 'agent', '', 'reservation', '',
      'declined', cjson.encode(declined))
    enqueue(r.task, t)
  end
  local akey = P .. 'agent:' .. r.agent
  if outcome == 'timeout' then
    local missed = redis.call('HINCRBY', akey, 'missed', 1)
    local a = hgetall(akey)
    if missed >= away_after and a.status == 'available' then
      set_status(r.agent, a, 'away', 'missed_offers')
      redis.call('HSET', akey, 'missed', 0)
    end
  elseif outcome == 'rejected' then
    redis.call('HSET', akey, 'missed', 0)
  end
  release(r.agent, r.channel)
  local etype = 'routing.reservation.' .. outcome
  emit(etype, {reservation_id = rid, task_id = r.task, agent_id = r.agent,
    customer_id = t.customer_id, channel = r.channel, reason = outcome})
  return r
end

-- Reserves agent ``aid`` for queued task ``tid`` (both checked by the caller).
-- A status change, from either endpoint: going offline first ends the pending offers
-- (their tasks requeued and appended to ``requeued``, for the caller to match again).
local function change_status(aid, a, status, reason, requeued)
  if status == 'offline' then
    for _, rid in ipairs(redis.call('SMEMBERS', P .. 'agent_res:' .. aid)) do
      local r = end_reservation(rid, 'canceled', 0, 1000000)
      if r then requeued[#requeued + 1] = r.task end
    end
    a = hgetall(P .. 'agent:' .. aid)
  end
  set_status(aid, a, status, reason)
end

local function do_reserve(tid, t, aid, a, rid, expires, expires_iso)
  local akey = P .. 'agent:' .. aid
  local tkey = P .. 'task:' .. tid
  local load = tonumber(a['load:' .. t.channel] or '0')
  redis.call('HSET', akey, 'load:' .. t.channel, load + 1, 'idle_since', NOW)
  redis.call('HINCRBY', P .. 'busy_slots', t.channel, 1)
  local after = copy(a)
  after['load:' .. t.channel], after.idle_since = load + 1, NOW
  refile(aid, a, after)
  dequeue(tid, t)
  redis.call('HSET', tkey, 'status', 'reserved', 'agent', aid, 'reservation', rid)
  local offered = redis.call('HGET', tkey, 'offered')
  redis.call('HSET', tkey, 'offered',
    (offered and offered ~= '') and (offered .. ',' .. rid) or rid)
  redis.call('HINCRBY', tkey, 'offers', 1)
  redis.call('HSET', P .. 'res:' .. rid, 'task', tid, 'agent', aid, 'status', 'pending',
    'channel', t.channel, 'created', NOW, 'expires', expires, 'expires_at', expires_iso)
  redis.call('SADD', P .. 'agent_res:' .. aid, rid)
  redis.call('ZADD', P .. 'timers', expires, 'res|' .. rid)
  emit('routing.task.reserved', {task_id = tid, customer_id = t.customer_id, agent_id = aid,
    channel = t.channel, category = t.category, reservation_id = rid})
  emit('routing.reservation.created', {reservation_id = rid, task_id = tid, agent_id = aid,
    customer_id = t.customer_id, channel = t.channel, category = t.category,
    expires_at = expires_iso, verified = t.verified == '1'})
end

-- The server-side twin of ``domain.matching.is_eligible``: walks the smallest index
-- covering the requirements (language x skill at the level asked, or language x
-- team; longest idle first) and returns up to ``want`` eligible agents as
-- {id, HGETALL}; at most ``max_scan`` index entries are read.
local function scan_candidates(ch, lang, req, team, declined, want, max_scan, skip)
  local base = P .. 'idx:' .. ch .. ':' .. lang .. ':'
  local covering = {base .. '*'}
  for s, lvl in pairs(req) do
    local n = tonumber(lvl) or 0
    if n >= 2 and n <= 5 and n == math.floor(n) then
      covering[#covering + 1] = base .. s .. ':' .. n
    else
      covering[#covering + 1] = base .. s
    end
  end
  if team ~= '' then covering[#covering + 1] = P .. 'tidx:' .. ch .. ':' .. team .. ':' .. lang end
  local best, bestn = nil, nil
  for _, k in ipairs(covering) do
    local n = redis.call('ZCARD', k)
    if bestn == nil or n < bestn then best, bestn = k, n end
  end
  local out = {}
  local scanned, page = 0, 32
  while scanned < max_scan and #out < want do
    local ids = redis.call('ZRANGE', best, scanned, scanned + page - 1)
    if #ids == 0 then break end
    for _, aid in ipairs(ids) do
      local flat = redis.call('HGETALL', P .. 'agent:' .. aid)
      local a = {}
      for i = 1, #flat, 2 do a[flat[i]] = flat[i + 1] end
      local ok = (not skip[aid]) and a.status == 'available'
        and (team == '' or a.team == team)
        and not (declined[aid] and declined[aid] > NOW)
      if ok then
        local cap = cjson.decode(a.channels)[ch] or 0
        ok = tonumber(a['load:' .. ch] or '0') < cap
      end
      if ok then
        local sk = cjson.decode(a.skills)
        for s, lvl in pairs(req) do
          if (sk[s] or 0) < lvl then ok = false; break end
        end
      end
      if ok then
        out[#out + 1] = {aid, flat, a}
        if #out >= want then break end
      end
    end
    scanned = scanned + #ids
  end
  return out
end

local function drop_task_timers(tid)
  redis.call('ZREM', P .. 'timers', 'sla|' .. tid, 'lead|' .. tid, 'sticky|' .. tid,
    'leadend|' .. tid)
end

-- Wakes the agent's long-polls (XREAD on a tiny per-agent stream; every reader sees it).
local function notify_offer(aid, rid)
  local k = P .. 'offers:' .. aid
  redis.call('XADD', k, 'MAXLEN', '8', '*', 'reservation', rid)
  redis.call('PEXPIRE', k, 120000)
end
"""

# ARGV[6] agent id, [7] profile JSON {name, team, skills, languages, channels, status?}
# Returns {created 1/0, task requeued, ...}.
AGENT_PUT = r"""
local aid = ARGV[6]
local p = cjson.decode(ARGV[7])
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
"""

# ARGV[6] agent id, [7] status, [8] reason
AGENT_STATUS = r"""
local aid = ARGV[6]
local akey = P .. 'agent:' .. aid
local a = hgetall(akey)
if not a.status then return {'missing'} end
local requeued = {'ok'}
change_status(aid, a, ARGV[7], ARGV[8], requeued)  -- re-files the agent
return requeued
"""

# ARGV[6] task id, [7] task JSON (all hash fields), [8] timers JSON [[member, due], ...],
# [9] escalated ('1'/'0'), [10] sla_due_at iso, [11] sticky timeout (ms),
# [12] route now ('1'/'0'), [13] language or '*', [14] required skills JSON, [15] team or '',
# [16] reservation id, [17] expires (ms), [18] expires iso
# Returns {created, sticky agent, agent reserved, verification id applied}.
TASK_CREATE = r"""
local tid = ARGV[6]
local tkey = P .. 'task:' .. tid
if redis.call('EXISTS', tkey) == 1 then return {0, '', '', ''} end
local t = cjson.decode(ARGV[7])
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
for _, pair in ipairs(cjson.decode(ARGV[8])) do
  redis.call('ZADD', P .. 'timers', pair[2], pair[1])
end
-- The customer's previous agent, unless offline (then skipped at once).
local sticky = ''
local last = redis.call('GET', P .. 'last_agent:' .. t.customer_id)
if last then
  local st = redis.call('HGET', P .. 'agent:' .. last, 'status')
  if st and st ~= 'offline' then
    sticky = last
    local until_ms = NOW + tonumber(ARGV[11])
    redis.call('HSET', tkey, 'sticky_agent', last, 'sticky_until', until_ms)
    redis.call('ZADD', P .. 'timers', until_ms, 'sticky|' .. tid)
  end
end
emit('routing.task.created', {task_id = tid, customer_id = t.customer_id, channel = t.channel,
  category = t.category, priority = tonumber(t.priority), sla_due_at = ARGV[10]})
if ARGV[9] == '1' then
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
if ARGV[12] == '1' and sticky == '' then
  local found = scan_candidates(t.channel, ARGV[13], cjson.decode(ARGV[14]), ARGV[15], {},
    1, 1024, {})
  if #found > 0 then
    local aid = found[1][1]
    do_reserve(tid, t, aid, found[1][3], ARGV[16], ARGV[17], ARGV[18])
    notify_offer(aid, ARGV[16])
    return {1, '', aid, vid or ''}
  end
  return {1, '', '', vid or ''}
end
return {1, sticky, '', vid or ''}
"""

# ARGV[6] task id, [7] agent id, [8] reservation id, [9] expires (ms), [10] expires iso,
# [11] agent version seen by the decision
RESERVE = r"""
local tid, aid, rid = ARGV[6], ARGV[7], ARGV[8]
local tkey = P .. 'task:' .. tid
local t = hgetall(tkey)
if t.status ~= 'queued' then return 'task_not_queued' end
local akey = P .. 'agent:' .. aid
local a = hgetall(akey)
if a.status ~= 'available' then return 'agent_not_available' end
if a.version ~= ARGV[11] then return 'agent_changed' end
local cap = cjson.decode(a.channels)[t.channel] or 0
local load = tonumber(a['load:' .. t.channel] or '0')
if load >= cap then return 'agent_full' end
do_reserve(tid, t, aid, a, rid, ARGV[9], ARGV[10])
notify_offer(aid, rid)
return 'ok'
"""

# ARGV[6] reservation id, [7] minute bucket key suffix, [8] sticky memory (s),
# [9] cool-off (ms), [10] missed offers before away, [11] the caller's bound agent or ''
ACCEPT = r"""
local rid = ARGV[6]
local rkey = P .. 'res:' .. rid
local r = hgetall(rkey)
if not r.status then return 'missing' end
if (ARGV[11] or '') ~= '' and r.agent ~= ARGV[11] then return 'not_yours' end
if r.status ~= 'pending' then return 'res_' .. r.status end
if NOW >= tonumber(r.expires) then
  -- Expired, the dispatcher just has not ticked yet: end it as its timer would.
  end_reservation(rid, 'timeout', tonumber(ARGV[9]), tonumber(ARGV[10]))
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
redis.call('SET', P .. 'last_agent:' .. t.customer_id, r.agent, 'EX', ARGV[8])
local bucket = P .. 'stats:m:' .. ARGV[7]
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
"""

# ARGV[6] reservation id, [7] cool-off (ms), [8] the caller's bound agent or ''
REJECT = r"""
local r = hgetall(P .. 'res:' .. ARGV[6])
if not r.status then return 'missing' end
if (ARGV[8] or '') ~= '' and r.agent ~= ARGV[8] then return 'not_yours' end
if r.status ~= 'pending' then return 'res_' .. r.status end
end_reservation(ARGV[6], 'rejected', tonumber(ARGV[7]), 1000000)
return {'ok', redis.call('HGETALL', P .. 'res:' .. ARGV[6])}
"""

# Keeps ``cust:<customer>`` alive as long as its longest-lived task hash, since erasure
# and export find a customer's tasks only through it: no expiry while it lists a task
# without one (an open task), else the longest remaining TTL of its ended tasks, never
# shortened. ``tid``: a task just ended, re-filed in case an older version let the set
# expire under it. Drops ids whose hash is gone. Walks the set: not for hot paths.
CUSTOMER_FN = r"""
local function settle_customer(cust, tid)
  local ckey = P .. 'cust:' .. cust
  if tid then redis.call('SADD', ckey, tid) end
  local longest = 0
  for _, id in ipairs(redis.call('SMEMBERS', ckey)) do
    local ttl = redis.call('PTTL', P .. 'task:' .. id)
    if ttl == -1 then
      redis.call('PERSIST', ckey)
      return
    elseif ttl == -2 then
      redis.call('SREM', ckey, id)
    elseif ttl > longest then
      longest = ttl
    end
  end
  if longest > 0 and redis.call('PTTL', ckey) < longest then  -- -1 (none) included
    redis.call('PEXPIRE', ckey, longest)
  end
end
"""

# ARGV[6] task id, [7] retention (s), [8] the caller's bound agent or ''
COMPLETE = (
    CUSTOMER_FN
    + r"""
local tid = ARGV[6]
local tkey = P .. 'task:' .. tid
local t = hgetall(tkey)
if not t.status then return {'missing'} end
-- In the same step as the transition: the task's agent cannot change in between.
if (ARGV[8] or '') ~= '' and t.agent ~= ARGV[8] then return {'not_yours'} end
if t.status ~= 'assigned' then return {'task_' .. t.status} end
redis.call('HSET', tkey, 'status', 'completed', 'ended', NOW)
redis.call('EXPIRE', tkey, ARGV[7])
settle_customer(t.customer_id, tid)
release(t.agent, t.channel)
emit('routing.task.completed', {task_id = tid, customer_id = t.customer_id, agent_id = t.agent,
  channel = t.channel, category = t.category})
-- Whether the freed agent should look for work: anything waiting on that channel.
local waiting = redis.call('ZCARD', P .. 'queue:' .. t.channel)
return {'ok', t.agent, waiting, redis.call('HGETALL', tkey)}
"""
)

# Cancels an open task, freeing whatever it held; shared by cancel and erase.
CANCEL_FN = r"""
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
"""

# ARGV[6] task id, [7] reason, [8] retention (s), [9] the caller's bound agent or ''
CANCEL = (
    CANCEL_FN
    + CUSTOMER_FN
    + r"""
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
"""
)

# ARGV[6] customer id: cancel open tasks, then forget every task and the sticky memory.
ERASE = (
    CANCEL_FN
    + r"""
local cust = ARGV[6]
local ckey = P .. 'cust:' .. cust
local freed = {}
local n = 0
for _, tid in ipairs(redis.call('SMEMBERS', ckey)) do
  local agent = cancel_task(tid, 'erased')
  if agent and agent ~= '' then freed[#freed + 1] = agent end
  local res = redis.call('HGET', P .. 'task:' .. tid, 'offered')
  redis.call('DEL', P .. 'task:' .. tid)
  for rid in string.gmatch(res or '', '[^,]+') do redis.call('DEL', P .. 'res:' .. rid) end
  n = n + 1
end
redis.call('DEL', ckey, P .. 'last_agent:' .. cust, P .. 'verified:' .. cust)
return freed
"""
)

# ARGV[6] from customer, [7] to customer, [8] '1' to move only tasks merged from ARGV[7]
# (an unmerge), '0' to move all (a merge). Re-keys tasks and the sticky memory.
REKEY = (
    CUSTOMER_FN
    + r"""
local src, dst, unmerge = ARGV[6], ARGV[7], ARGV[8] == '1'
local moved = 0
for _, tid in ipairs(redis.call('SMEMBERS', P .. 'cust:' .. src)) do
  local tkey = P .. 'task:' .. tid
  local t = hgetall(tkey)
  if not t.status then
    redis.call('SREM', P .. 'cust:' .. src, tid)
  elseif (not unmerge) or t.merged_from == dst then
    redis.call('HSET', tkey, 'customer_id', dst, 'merged_from', unmerge and '' or src)
    redis.call('SMOVE', P .. 'cust:' .. src, P .. 'cust:' .. dst, tid)
    moved = moved + 1
  end
end
if not unmerge then
  local last = redis.call('GET', P .. 'last_agent:' .. src)
  if last then
    local ttl = redis.call('TTL', P .. 'last_agent:' .. src)
    redis.call('SET', P .. 'last_agent:' .. dst, last, 'NX', 'EX', ttl > 0 and ttl or 2592000)
    redis.call('DEL', P .. 'last_agent:' .. src)
  end
end
if moved > 0 then
  -- Each set lives as long as the tasks it now lists (an open one moved in: no expiry).
  settle_customer(dst)
  settle_customer(src)
  emit('routing.customer.rekeyed', {from_customer_id = src, to_customer_id = dst,
    tasks = moved, reason = unmerge and 'unmerged' or 'merged'})
end
return moved
"""
)

# ARGV[6] customer id, [7] verification id, [8] how long a later task still counts (s)
VERIFIED = r"""
-- Remembered for tasks created after the event (the customer verifies, then is queued).
redis.call('SET', P .. 'verified:' .. ARGV[6], ARGV[7], 'EX', ARGV[8])
local marked = 0
for _, tid in ipairs(redis.call('SMEMBERS', P .. 'cust:' .. ARGV[6])) do
  local tkey = P .. 'task:' .. tid
  local t = hgetall(tkey)
  if (t.status == 'queued' or t.status == 'reserved') and t.verified ~= '1' then
    redis.call('HSET', tkey, 'verified', '1', 'verification_id', ARGV[7])
    emit('routing.task.verified', {task_id = tid, customer_id = ARGV[6],
      verification_id = ARGV[7]})
    marked = marked + 1
  end
end
return marked
"""

# ARGV[6] limit, [7] cool-off (ms), [8] missed offers before away, [9] lead team,
# [10] how long the lead team alone may take an escalated task (ms)
# Claims each due timer and acts on it in the same step: a timer fires exactly once,
# however many dispatchers run. Returns 't:<task>' / 'a:<agent>' to match again.
TICK = r"""
local due = redis.call('ZRANGEBYSCORE', P .. 'timers', '-inf', NOW, 'LIMIT', 0, ARGV[6])
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', P .. 'timers', member)
  local kind, id = string.match(member, '^(%a+)|(.+)$')
  if kind == 'res' then
    local r = end_reservation(id, 'timeout', tonumber(ARGV[7]), tonumber(ARGV[8]))
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
      local until_ms = NOW + tonumber(ARGV[10])
      redis.call('HSET', tkey, 'lead_escalated', '1', 'team', ARGV[9], 'team_until', until_ms)
      redis.call('ZADD', P .. 'timers', until_ms, 'leadend|' .. tid)
      emit('routing.task.escalated', {task_id = tid, customer_id = t.customer_id,
        channel = t.channel, category = t.category, reason = 'team_lead', team = ARGV[9]})
      out[#out + 1] = 't:' .. tid
    elseif t.status == 'queued' then
      out[#out + 1] = 't:' .. tid
    end
  end
end
return out
"""

# ARGV[6] agent ids JSON: puts each agent into every index its state calls for now
# (a backfill after the index layout grew; re-running it changes nothing).
REINDEX = r"""
for _, aid in ipairs(cjson.decode(ARGV[6])) do reindex(aid, hgetall(P .. 'agent:' .. aid)) end
return 0
"""

# Read-only: eligible agents for the domain to choose from (non-default strategies,
# retries). ARGV[6] channel, [7] language or '*', [8] skills JSON, [9] team or '',
# [10] declined JSON {agent: until}, [11] want, [12] max entries scanned,
# [13] agents to leave out (JSON list). Returns [id, HGETALL, ...].
CANDIDATES = r"""
local skip = {}
for _, aid in ipairs(cjson.decode(ARGV[13])) do skip[aid] = true end
local found = scan_candidates(ARGV[6], ARGV[7], cjson.decode(ARGV[8]), ARGV[9],
  cjson.decode(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), skip)
local out = {}
for _, c in ipairs(found) do out[#out + 1] = c[1]; out[#out + 1] = c[2] end
return out
"""


def script(body: str) -> str:
    return PRELUDE + body
