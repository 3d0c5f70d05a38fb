-- Settle a successful attempt and record its factor (after lib_settle_success.lua).
-- KEYS: attempts, failures, lock, streak, satisfied set.
-- ARGV: max_attempts, factor, the set's ttl, cap, approving (1: the success approves).
-- -> {remaining, [satisfied...]}
local att = settle_success(1, ARGV[2], ARGV[3], ARGV[5] == '1')
local cap = tonumber(ARGV[4])
local limit = math.min(tonumber(ARGV[1]), cap)
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
local s = tonumber(redis.call('GET', KEYS[4]) or '0')
local left = math.min(limit - math.max(att - 1, 0, f), cap - s)
return {math.max(0, left), redis.call('SMEMBERS', KEYS[5])}
