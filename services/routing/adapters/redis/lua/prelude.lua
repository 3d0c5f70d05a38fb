-- prelude.lua: prepended to every routing script (the helpers and the common arguments).
--
-- Every transition is one script: state change and event together, atomically.
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): a cluster client routes the script to
--   the node of the pool's hash tag; every other key is built from the prefix ARGV[1]
--   (same hash tag, same slot). See keys.py for the layout.
-- ARGV[1] prefix (sb:rt:{pool}:), [2] now (ms), [3] now (RFC 3339), [4] event id base,
-- [5] correlation id; each script's own arguments follow from ARGV[6].
-- Events go to the pool-local outbox stream; the dispatcher relays them to
-- sb:events:routing (consumers deduplicate on the event id).
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
