-- KEYS: 1 token hash. Spends an issued token: 1 for the first caller, 0 for everyone else.
if redis.call('HGET', KEYS[1], 'state') == 'issued' then
  redis.call('HSET', KEYS[1], 'state', 'redeemed')
  return 1
end
return 0
