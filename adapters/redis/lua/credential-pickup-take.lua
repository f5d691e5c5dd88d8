-- KEYS: 1 the credential hash. Takes the sealed secret (the first caller only) while live.
if redis.call('HGET', KEYS[1], 'state') ~= 'live' then return false end
local v = redis.call('HGET', KEYS[1], 'pickup')
if not v then return false end
redis.call('HDEL', KEYS[1], 'pickup')
return v
