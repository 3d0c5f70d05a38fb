-- A start without a device or a session token, in one round trip (after lib_events.lua,
-- lib_create.lua): read what the start needs and create the verification the client
-- prepared under the tier it expects (the request's hint, or the default), unless the
-- customer's projected tier is another one; then the client decides on the reads, as
-- after a plain snapshot, and creates the verification itself.
-- KEYS: profile, session set, factors, verification hash, its satisfied set, the
-- customer's verifications, stats[, stream] (all in the customer's slot but the stream).
-- ARGV[1]: the verification id; ARGV[2]: JSON {fields, sat, counters, ttl, events,
-- maxlen, fresh, again} (``fresh`` / ``again``: the counter of a customer without / with
-- an active session); ARGV[3]: the expected tier; ARGV[4]: the session key prefix of the
-- customer's slot; ARGV[5]: the customer's shard in two hex digits (as ids begin).
-- -> {1 created / 0 not, projected tier or '', [sid...], [factor_id, factor JSON, ...]}

local tier = redis.call('HGET', KEYS[1], 'tier') or ''
local sids = redis.call('SMEMBERS', KEYS[2])
local factors = redis.call('HGETALL', KEYS[3])
if tier ~= '' and tier ~= ARGV[3] then return {0, tier, sids, factors} end
-- Whether an active session exists (without a token it is only counted: asked again),
-- forgetting the ids of expired ones, as a lookup by ids does.
local live, gone = false, {}
for _, sid in ipairs(sids) do
  -- "s-NN...": a session made in another shard is in another slot: the client looks.
  if string.sub(sid, 3, 4) ~= ARGV[5] then return {0, tier, sids, factors} end
  if redis.call('EXISTS', ARGV[4] .. sid) == 1 then live = true else gone[#gone + 1] = sid end
end
if #gone > 0 then redis.call('SREM', KEYS[2], unpack(gone)) end
local a = cjson.decode(ARGV[2])
a.counters[live and a.again or a.fresh] = 1
create_verification({KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]}, ARGV[1], a)
return {1, tier, sids, factors}
