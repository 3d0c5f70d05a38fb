-- reindex.lua: Puts each agent into every index its state calls for now (a backfill; idempotent).
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] agent_ids: JSON list of agent ids
-- Returns: 0

local agent_ids = ARGV[6]
for _, aid in ipairs(cjson.decode(agent_ids)) do reindex(aid, hgetall(P .. 'agent:' .. aid)) end
return 0
