-- KEYS: 1 the notice (hash), 2 notices due for an update (zset).
-- ARGV: 1 the window's start (ms), 2 the count the failed update showed, 3 now (ms),
--       4 update every (ms), 5 member, 6 the most retries per window.
-- An update that failed (a platform's rate limit, an outage) is made due again after the
-- throttle, so that the last count still lands; unless a later claim already shows more, the
-- window was replaced, or the window used up its retries (an error that will not go away must
-- not call the platform every few seconds for the rest of the window). Returns 1 when due again.
-- Redis does not roll back: a key of the wrong type is refused before the first write.
for i, want in ipairs({'hash', 'zset'}) do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('STORE_REFUSED the key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want .. '; nothing was written')
  end
end
local h = redis.call('HMGET', KEYS[1], 'since', 'shown', 'retries')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] or (tonumber(h[3]) or 0) >= tonumber(ARGV[6]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'retries', 1)
redis.call('HSET', KEYS[1], 'shown', 0, 'updated', ARGV[3])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[5])
return 1
