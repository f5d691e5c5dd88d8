-- KEYS: 1 the credential hash. ARGV: 1 the sealed secret.
-- Kept only while the credential is live: one revoked meanwhile never gets a pickup.
if redis.call('HGET', KEYS[1], 'state') ~= 'live' then return 0 end
redis.call('HSET', KEYS[1], 'pickup', ARGV[1])
return 1
