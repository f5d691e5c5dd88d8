-- KEYS: 1 token hash, 2 poll pick-up slot. ARGV: 1 jti, 2 token.
-- Puts back a pick-up whose read was never written, while the token is still issued; it
-- expires with the token. Returns 1 when restored.
if redis.call('HGET', KEYS[1], 'state') ~= 'issued' then return 0 end
local expires_at = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if expires_at == nil then return 0 end
local ok = redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[2], 'PXAT', expires_at, 'NX')
if ok then return 1 end
return 0
