-- Erase a customer's messages from the dev outbox (adapters/dev_outbox.py).
-- KEYS: outbox.
-- ARGV: verification ids.
-- -> how many entries were removed. One script, so a message pushed meanwhile is neither
-- lost nor kept by a rewrite of the list.

local wanted, dests, rows = {}, {}, {}
for i = 1, #ARGV do wanted[ARGV[i]] = true end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, raw in ipairs(items) do
  local ok, e = pcall(cjson.decode, raw)
  if ok and type(e) == 'table' then
    rows[i] = e
    if e['verification_id'] and wanted[tostring(e['verification_id'])] and e['to'] then
      dests[tostring(e['to'])] = true
    end
  end
end
local n = 0
for i, raw in ipairs(items) do
  local e = rows[i]
  if e and ((e['verification_id'] and wanted[tostring(e['verification_id'])])
            or (e['to'] and dests[tostring(e['to'])])) then
    n = n + redis.call('LREM', KEYS[1], 0, raw)
  end
end
return n
