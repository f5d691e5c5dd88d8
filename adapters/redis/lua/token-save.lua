-- KEYS: 1 token hash (by jti), 2 proposal's token, 3 poll pick-up slot, 4 agent's tokens (zset by expiry)
-- ARGV: 1 jti, 2 proposal id, 3 agent, 4 expires_at (ms), 5 token, 6 pick-up ('1'/'0'),
--       7 how long the state outlives the token (ms), 8 now (ms), 9 replace ('1': a recovery
--       replaces what a crashed issuer left behind)
-- Returns 1 when stored, 0 when the proposal already has a token (a second issuer loses).
if ARGV[9] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local expires_at = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'proposal_id', ARGV[2], 'agent', ARGV[3], 'state', 'issued', 'expires_at', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], expires_at + tonumber(ARGV[7]))
-- The slots hold "<jti> <token>" (a JWT has no spaces), so a revocation deletes only its own.
local stored = ARGV[1] .. ' ' .. ARGV[5]
redis.call('SET', KEYS[2], stored, 'PXAT', expires_at)
if ARGV[6] == '1' then redis.call('SET', KEYS[3], stored, 'PXAT', expires_at) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[8])
redis.call('ZADD', KEYS[4], expires_at, ARGV[1])
return 1
