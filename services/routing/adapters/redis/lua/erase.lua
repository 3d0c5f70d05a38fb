-- erase.lua: Cancels a customer's open tasks, then forgets every task, offer and the sticky memory.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] customer_id: the customer
-- Uses: cancel_task.lua
-- Returns: {agent freed, ...}

local customer_id = ARGV[6]
local cust = customer_id
local ckey = P .. 'cust:' .. cust
local freed = {}
local n = 0
for _, tid in ipairs(redis.call('SMEMBERS', ckey)) do
  local agent = cancel_task(tid, 'erased')
  if agent and agent ~= '' then freed[#freed + 1] = agent end
  local res = redis.call('HGET', P .. 'task:' .. tid, 'offered')
  redis.call('DEL', P .. 'task:' .. tid)
  for rid in string.gmatch(res or '', '[^,]+') do redis.call('DEL', P .. 'res:' .. rid) end
  n = n + 1
end
redis.call('DEL', ckey, P .. 'last_agent:' .. cust, P .. 'verified:' .. cust)
return freed
