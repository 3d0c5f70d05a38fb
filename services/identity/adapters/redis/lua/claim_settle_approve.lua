-- The approving check of a TOTP code in one round trip (after lib_claim_step.lua,
-- lib_settle_success.lua, lib_events.lua, lib_approve.lua): claim the code's time step
-- (as accept_step.lua), settle the successful attempt (as settle_success.lua, approving),
-- approve (as approve.lua).
-- KEYS: the factor's last step; attempts, failures, lock, streak, satisfied set;
--       claim, session, session set, verification, stats, durations[, stream].
-- ARGV: approve.lua's two, then the step, the factor, the satisfied set's TTL.
-- -> -1 when the step was accepted before (nothing written), else approve.lua's answer.
local a = cjson.decode(ARGV[1])
if not claim_step(KEYS[1], ARGV[3]) then return -1 end
settle_success(2, ARGV[4], ARGV[5], true)
if not approve(7, a) then return 0 end
append_events(KEYS[13], a)
return 1
