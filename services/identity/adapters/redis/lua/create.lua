-- Create a verification (after lib_events.lua, lib_create.lua). One command instead of a
-- MULTI of a dozen: the client packs one, not each of them.
-- KEYS: verification hash, its satisfied set, the customer's verifications, stats[, stream].
-- ARGV[1]: the verification id; ARGV[2]: JSON {fields, sat, counters, ttl, events, maxlen}.
-- -> 1

create_verification(KEYS, ARGV[1], cjson.decode(ARGV[2]))
return 1
