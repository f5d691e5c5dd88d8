-- KEYS: 1 revoked-agent:<agent>, 2 restored-agent:<agent>
-- ARGV: 1 the restore time (ms)
-- Lifts the kill switch when it is pulled: returns {revoked_at, restored_at}, or false when the
-- agent is not revoked (never, or restored since). The revocation time stays: proposals made
-- before it never get a token. The restore is recorded no earlier than the revocation, so a
-- replica whose clock is behind cannot leave the agent looking revoked after a restore.
local revoked = redis.call('GET', KEYS[1])
if not revoked then return false end
local restored = redis.call('GET', KEYS[2])
if restored and tonumber(restored) >= tonumber(revoked) then return false end
local at = ARGV[1]
if tonumber(at) < tonumber(revoked) then at = revoked end
redis.call('SET', KEYS[2], at)
return {revoked, at}
