-- Check every counter of one code send and count it when all allow it (the delivery
-- fraud guard, adapters/delivery_guard_store.py; every key in the {idn-dlv} slot).
-- KEYS: blocks zset, the customer's destinations set, client hour counter, customer hour
--   counter, prefix hour counter (or a dummy), prefix conversion hash (or a dummy), the
--   sent marker of the verification's factor.
-- ARGV: now_ms, destination digest, max destinations, client cap, customer cap, prefix
--   cap (0: none), counter ttl, destinations ttl, prefix ('' when none), bucket size,
--   bucket index, window buckets, grace buckets, conversion ttl, marker ttl.
-- -> {admitted (1/0), blocked seconds, destinations, known (1/0), client count,
--   customer count, prefix count, judged sends, judged conversions}

local now = tonumber(ARGV[1])
local prefix = ARGV[9]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local blocked = 0
if prefix ~= '' then
  local untl = redis.call('ZSCORE', KEYS[1], prefix)
  if untl then blocked = math.ceil((tonumber(untl) - now) / 1000) end
end
local known = redis.call('SISMEMBER', KEYS[2], ARGV[2])
local ndest = redis.call('SCARD', KEYS[2])
local c1 = tonumber(redis.call('GET', KEYS[3]) or '0')
local c2 = tonumber(redis.call('GET', KEYS[4]) or '0')
local c3 = 0
local size, idx = ARGV[10], tonumber(ARGV[11])
local lo, hi = idx - tonumber(ARGV[12]), idx - tonumber(ARGV[13])
local sends, conv = 0, 0
if prefix ~= '' then
  c3 = tonumber(redis.call('GET', KEYS[5]) or '0')
  local flat = redis.call('HGETALL', KEYS[6])
  for i = 1, #flat, 2 do
    local kind, sz, b = string.match(flat[i], '^(%a):(%d+):(%d+)$')
    b = tonumber(b)
    if sz ~= size or b == nil or b <= lo then
      redis.call('HDEL', KEYS[6], flat[i])
    elseif b <= hi then
      if kind == 's' then sends = sends + tonumber(flat[i + 1])
      else conv = conv + tonumber(flat[i + 1]) end
    end
  end
end
local ok = blocked <= 0 and (known == 1 or ndest < tonumber(ARGV[3]))
  and c1 < tonumber(ARGV[4]) and c2 < tonumber(ARGV[5])
  and (prefix == '' or tonumber(ARGV[6]) == 0 or c3 < tonumber(ARGV[6]))
if ok then
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[8])
  for i = 3, 4 do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[7])
  end
  if prefix ~= '' then
    redis.call('INCR', KEYS[5])
    redis.call('EXPIRE', KEYS[5], ARGV[7])
    redis.call('HINCRBY', KEYS[6], 's:' .. size .. ':' .. idx, 1)
    redis.call('EXPIRE', KEYS[6], ARGV[14])
    redis.call('SET', KEYS[7], prefix .. '|' .. size .. '|' .. idx, 'EX', ARGV[15])
    if hi >= idx then sends = sends + 1 end
  end
end
return {ok and 1 or 0, blocked, ndest, known, c1, c2, c3, sends, conv}
