-- reject.lua: Declines a pending offer: the task is requeued, the agent cooled off for it.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] reservation_id: the offer
-- ARGV[7] cooloff_ms: decline cool-off (ms)
-- ARGV[8] as_agent: the caller's bound agent or ''
-- Returns: 'missing', 'not_yours', 'res_<status>' or {'ok', HGETALL res}

local reservation_id, cooloff_ms, as_agent = ARGV[6], ARGV[7], ARGV[8]
local r = hgetall(P .. 'res:' .. reservation_id)
if not r.status then return 'missing' end
if (as_agent or '') ~= '' and r.agent ~= as_agent then return 'not_yours' end
if r.status ~= 'pending' then return 'res_' .. r.status end
end_reservation(reservation_id, 'rejected', tonumber(cooloff_ms), 1000000)
return {'ok', redis.call('HGETALL', P .. 'res:' .. reservation_id)}
