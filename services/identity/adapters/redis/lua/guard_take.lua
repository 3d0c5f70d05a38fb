-- Take (read and delete) the marker of the last code sent for a verification's factor.
-- KEYS: the sent marker.
-- ARGV (none).
-- -> the marker ("prefix|bucket size|bucket"), or nil.

local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
