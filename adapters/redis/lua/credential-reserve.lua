-- KEYS: 1 the credential hash, 2 live set (zset by expiry), 3 the agent's live set.
-- ARGV: 1 proposal id, 2 agent, 3 issuer, 4 handle, 5 expires_at (ms).
-- Records a credential about to be issued, once per proposal. Returns 1 when recorded, 0 when
-- the proposal already has one. Types are checked before the first write.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, 3 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= (i == 2 and 'zset' or 'set') then
    return redis.error_reply('STORE_REFUSED ' .. KEYS[i] .. ' holds a ' .. t)
  end
end
redis.call('HSET', KEYS[1], 'agent', ARGV[2], 'issuer', ARGV[3], 'handle', ARGV[4], 'expires_at', ARGV[5], 'state', 'live')
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
