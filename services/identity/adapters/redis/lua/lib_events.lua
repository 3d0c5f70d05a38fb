-- Library: append a.events (field lists) to the stream key, if one is given
-- (a.maxlen: the stream's approximate bound).
-- KEYS, ARGV: none read here; the including script passes them in as arguments.
local function append_events(stream, a)
  if stream then
    for _, fields in ipairs(a.events) do
      redis.call('XADD', stream, 'MAXLEN', '~', a.maxlen, '*', unpack(fields))
    end
  end
end
