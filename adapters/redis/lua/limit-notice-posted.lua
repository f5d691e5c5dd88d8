-- KEYS: 1 the notice (hash), 2 notices due for an update (zset).
-- ARGV: 1 the window's start (ms, as the post saw it), 2 the posted messages (JSON), 3 update every (ms), 4 member.
-- The window's notice is posted: where, saved; a count that moved while it was posted is left
-- due for the sweep (the refusals meanwhile could not update a message not posted yet).
-- A notice whose window was replaced meanwhile keeps its own messages. Returns 1 when saved.
-- Redis does not roll back: a key of the wrong type is refused before the first write.
for i, want in ipairs({'hash', 'zset'}) do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('STORE_REFUSED the key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want .. '; nothing was written')
  end
end
local h = redis.call('HMGET', KEYS[1], 'since', 'count', 'shown', 'updated')
if h[1] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'refs', ARGV[2])
if tonumber(h[2]) > tonumber(h[3]) then
  redis.call('ZADD', KEYS[2], tonumber(h[4]) + tonumber(ARGV[3]), ARGV[4])
end
return 1
