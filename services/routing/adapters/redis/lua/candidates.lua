-- candidates.lua: Read-only: eligible agents for the domain to choose from (non-default strategies, retries).
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] channel: the channel
-- ARGV[7] language: language or '*'
-- ARGV[8] skills: required skills JSON
-- ARGV[9] team: team or ''
-- ARGV[10] declined: JSON {agent: declined until ms}
-- ARGV[11] want: how many
-- ARGV[12] max_scan: most index entries read
-- ARGV[13] exclude: JSON list of agents to leave out
-- Returns: {agent id, HGETALL agent, ...}

local skip = {}
for _, aid in ipairs(cjson.decode(ARGV[13])) do skip[aid] = true end
local found = scan_candidates(ARGV[6], ARGV[7], cjson.decode(ARGV[8]), ARGV[9],
  cjson.decode(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), skip)
local out = {}
for _, c in ipairs(found) do out[#out + 1] = c[1]; out[#out + 1] = c[2] end
return out
