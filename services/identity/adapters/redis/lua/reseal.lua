-- Write back factors only while each still holds exactly the value read, so a factor
-- deleted or saved since that read stays as it is now (never resurrected nor rolled back).
-- KEYS: a customer's factors hash. ARGV: triples of field, the value read, the value to
-- store. -> how many fields were replaced.
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    n = n + 1
  end
end
return n
