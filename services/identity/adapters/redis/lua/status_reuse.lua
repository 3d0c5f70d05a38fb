-- A status answer that found the customer verified is a verification avoided: counted
-- once per session and channel, however often the IVR asks during its calls.
-- KEYS: a session's status-reuse marker, the stats hash. ARGV: ttl (s).
-- -> 1 counted now, 0 counted before.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[2], 'status_reused', 1)
  return 1
end
return 0
