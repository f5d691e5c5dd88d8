-- KEYS: 1 token hash, 2 proposal's token, 3 poll pick-up slot, 4 agent's tokens zset
-- ARGV: 1 jti, 2 'revoked' (an issued or redeemed token: the kill switch, a lost issue race)
--       or 'closed' (an issued token whose execution is over; a redeemed one stays redeemed).
-- Forgets the stored copies of THIS token only: the slots hold "<jti> <token>", and after a
-- recovery's replace they may hold the winning issuer's token, which must stay. A value
-- without a space was stored by an older version (no jti): it is deleted as before.
-- Returns 1 when the token's state changed.
local prefix = ARGV[1] .. ' '
for i = 2, 3 do
  local v = redis.call('GET', KEYS[i])
  if v and (string.sub(v, 1, #prefix) == prefix or not string.find(v, ' ', 1, true)) then
    redis.call('DEL', KEYS[i])
  end
end
redis.call('ZREM', KEYS[4], ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'issued' or (state == 'redeemed' and ARGV[2] == 'revoked') then
  redis.call('HSET', KEYS[1], 'state', ARGV[2])
  return 1
end
return 0
