-- Library: refund a successful attempt (counted as a failure in advance) and record
-- its factor. KEYS[k..k+4]: attempts, failures, lock, streak, satisfied set; factor
-- and ttl: the factor and the satisfied set's TTL. Only an approving success clears
-- the customer's earlier failures and streak: a factor that does not complete the
-- verification proves nothing about the others, and a known answer to the weakest
-- must not reset the count of guesses at the strongest. -> the attempts read.
-- ARGV: none read here; k, factor, ttl and approving are arguments of the including script.
local function settle_success(k, factor, ttl, approving)
  local att = tonumber(redis.call('GET', KEYS[k]) or '0')
  if att > 0 then redis.call('DECR', KEYS[k]) end
  if approving then
    redis.call('DEL', KEYS[k + 1], KEYS[k + 3])
  else -- refund only what the reservation counted in advance
    for _, i in ipairs({1, 3}) do
      if tonumber(redis.call('GET', KEYS[k + i]) or '0') > 0 then
        redis.call('DECR', KEYS[k + i])
      end
    end
  end
  redis.call('SADD', KEYS[k + 4], factor)
  redis.call('EXPIRE', KEYS[k + 4], ttl)
  return att
end
