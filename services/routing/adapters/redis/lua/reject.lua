-- reject.lua: Declines a pending offer: the task is requeued, the agent cooled off for it.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] reservation_id: the offer
-- ARGV[7] cooloff_ms: decline cool-off (ms)
-- ARGV[8] as_agent: the caller's bound agent or ''
-- Returns: 'missing', 'not_yours', 'res_<status>' or {'ok', HGETALL res}

local r = hgetall(P .. 'res:' .. ARGV[6])
if not r.status then return 'missing' end
if (ARGV[8] or '') ~= '' and r.agent ~= ARGV[8] then return 'not_yours' end
if r.status ~= 'pending' then return 'res_' .. r.status end
end_reservation(ARGV[6], 'rejected', tonumber(ARGV[7]), 1000000)
return {'ok', redis.call('HGETALL', P .. 'res:' .. ARGV[6])}
