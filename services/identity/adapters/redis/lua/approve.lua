-- Approve a verification (after lib_events.lua, lib_approve.lua): one round trip.
-- KEYS: claim, session, customer's session set, verification hash, stats, durations[, stream].
-- ARGV[1]: JSON {session, sid, ttl, fields, counters, duration, events: [[k, v, ...]], maxlen};
-- ARGV[2]: durations kept. The first caller also appends the events.
-- -> 1 for the first caller of this verification, else 0.
local a = cjson.decode(ARGV[1])
if not approve(1, a) then return 0 end
append_events(KEYS[7], a)
return 1
