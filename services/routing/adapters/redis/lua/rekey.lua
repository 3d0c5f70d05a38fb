-- rekey.lua: Moves tasks (and the sticky memory) between customers: a merge or an unmerge.
--
-- KEYS[1] the pool's outbox (sb:rt:{pool}:outbox): routes a cluster client to the pool's slot
-- ARGV[1..5] the common arguments (prelude.lua)
-- ARGV[6] from_customer: from customer
-- ARGV[7] to_customer: to customer
-- ARGV[8] unmerge: '1': only tasks merged from to_customer, '0': all
-- Uses: customer.lua
-- Returns: the number of tasks moved

local src, dst, unmerge = ARGV[6], ARGV[7], ARGV[8] == '1'
local moved = 0
for _, tid in ipairs(redis.call('SMEMBERS', P .. 'cust:' .. src)) do
  local tkey = P .. 'task:' .. tid
  local t = hgetall(tkey)
  if not t.status then
    redis.call('SREM', P .. 'cust:' .. src, tid)
  elseif (not unmerge) or t.merged_from == dst then
    redis.call('HSET', tkey, 'customer_id', dst, 'merged_from', unmerge and '' or src)
    redis.call('SMOVE', P .. 'cust:' .. src, P .. 'cust:' .. dst, tid)
    moved = moved + 1
  end
end
if not unmerge then
  local last = redis.call('GET', P .. 'last_agent:' .. src)
  if last then
    local ttl = redis.call('TTL', P .. 'last_agent:' .. src)
    redis.call('SET', P .. 'last_agent:' .. dst, last, 'NX', 'EX', ttl > 0 and ttl or 2592000)
    redis.call('DEL', P .. 'last_agent:' .. src)
  end
end
if moved > 0 then
  -- Each set lives as long as the tasks it now lists (an open one moved in: no expiry).
  settle_customer(dst)
  settle_customer(src)
  emit('routing.customer.rekeyed', {from_customer_id = src, to_customer_id = dst,
    tasks = moved, reason = unmerge and 'unmerged' or 'merged'})
end
return moved
