-- Accept a TOTP time step (after lib_claim_step.lua).
-- KEYS: the factor's last step. ARGV: step. -> 1 accepted, 0 taken before.
if claim_step(KEYS[1], ARGV[1]) then return 1 end
return 0
