-- KEYS: 1 token hash, 2 proposal's token, 3 poll pick-up slot, 4 agent's tokens zset
-- ARGV: 1 jti. Revokes an issued or redeemed token and forgets the stored copies.
-- Returns 1 when the token changed to revoked.
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'issued' or state == 'redeemed' then
  redis.call('HSET', KEYS[1], 'state', 'revoked')
  return 1
end
return 0
