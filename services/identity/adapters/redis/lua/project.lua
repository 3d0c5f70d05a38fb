-- Project CRM profile fields as of an event's time.
-- KEYS: a customer's profile projection, their erasure tombstone.
-- ARGV: the event's time (ms), n, n fields to delete, then field/value pairs to set.
-- -> 1 applied, 0 older than what it holds or not newer than the customer's erasure.
-- Several consumers of one group, or a re-sent batch, may deliver a customer's events
-- out of order: an older tier must never overwrite a newer one, nor recreate a projection
-- of an erased customer (a profile re-created later, with a newer event, projects again).
local at = tonumber(ARGV[1])
if at <= tonumber(redis.call('GET', KEYS[2]) or '-1') then return 0 end
if at < tonumber(redis.call('HGET', KEYS[1], 'as_of') or '0') then return 0 end
local n = tonumber(ARGV[2])
for i = 3, 2 + n do redis.call('HDEL', KEYS[1], ARGV[i]) end
local set = {'as_of', ARGV[1]}
for i = 3 + n, #ARGV do set[#set + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(set))
return 1
