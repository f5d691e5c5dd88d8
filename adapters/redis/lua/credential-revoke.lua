-- KEYS: 1 the credential hash, 2 live set, 3 the agent's live set. ARGV: 1 proposal id, 2 seconds to keep the record.
-- live -> revoked, once: 1 for the first caller. The pickup goes with it. Types are checked
-- before the first write: a record marked revoked but left in the live sets would be swept forever.
if redis.call('HGET', KEYS[1], 'state') ~= 'live' then return 0 end
for i = 2, 3 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= (i == 2 and 'zset' or 'set') then
    return redis.error_reply('STORE_REFUSED ' .. KEYS[i] .. ' holds a ' .. t)
  end
end
redis.call('HSET', KEYS[1], 'state', 'revoked')
redis.call('HDEL', KEYS[1], 'pickup')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
