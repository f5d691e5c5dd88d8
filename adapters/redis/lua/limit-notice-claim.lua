-- KEYS: 1 the notice (hash), 2 notices due for an update (zset).
-- ARGV: 1 now (ms), 2 update every (ms), 3 member.
-- The sweep's claim of one due update: the count moved since the last update, which is old
-- enough, and the notice is posted. Claimed (what is shown now recorded), it is the caller's
-- to send; on two replicas one claims. Returns the notice as JSON, or false.
-- Redis does not roll back: a key of the wrong type is refused before the first write.
for i, want in ipairs({'hash', 'zset'}) do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('STORE_REFUSED the key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want .. '; nothing was written')
  end
end
local flat = redis.call('HGETALL', KEYS[1])
local t = {}
for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
-- Gone (expired), still being posted (posted() puts it back), or nothing new to show.
if t.count == nil or t.refs == nil or tonumber(t.count) <= tonumber(t.shown) then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return false
end
local at = tonumber(t.updated) + tonumber(ARGV[2])
if tonumber(ARGV[1]) < at then
  redis.call('ZADD', KEYS[2], at, ARGV[3])
  return false
end
redis.call('HSET', KEYS[1], 'shown', t.count, 'updated', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[3])
t.shown = t.count
return cjson.encode(t)
