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

local channel = ARGV[6]
local language = ARGV[7]
local skills = ARGV[8]
local team = ARGV[9]
local declined = ARGV[10]
local want = ARGV[11]
local max_scan = ARGV[12]
local exclude = ARGV[13]
local skip = {}
for _, aid in ipairs(cjson.decode(exclude)) do skip[aid] = true end
local found = scan_candidates(channel, language, cjson.decode(skills), team,
  cjson.decode(declined), tonumber(want), tonumber(max_scan), skip)
local out = {}
for _, c in ipairs(found) do out[#out + 1] = c[1]; out[#out + 1] = c[2] end
return out
