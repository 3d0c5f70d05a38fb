-- verified.lua: Marks a customer's open tasks verified and remembers it for later tasks.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] customer_id: the customer
-- ARGV[7] verification_id: the verification
-- ARGV[8] remember_s: how long a later task still counts
-- Returns: the number of tasks marked

local customer_id, verification_id, remember_s = ARGV[6], ARGV[7], ARGV[8]
-- Remembered for tasks created after the event (the customer verifies, then is queued).
redis.call('SET', P .. 'verified:' .. customer_id, verification_id, 'EX', remember_s)
local marked = 0
for _, tid in ipairs(redis.call('SMEMBERS', P .. 'cust:' .. customer_id)) do
  local tkey = P .. 'task:' .. tid
  local t = hgetall(tkey)
  if (t.status == 'queued' or t.status == 'reserved') and t.verified ~= '1' then
    redis.call('HSET', tkey, 'verified', '1', 'verification_id', verification_id)
    emit('routing.task.verified', {task_id = tid, customer_id = customer_id,
      verification_id = verification_id})
    marked = marked + 1
  end
end
return marked
