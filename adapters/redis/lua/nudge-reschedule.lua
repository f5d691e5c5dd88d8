-- KEYS: 1 proposal hash, 2 the escalations zset
-- ARGV: 1 id, 2 the version the caller read, 3 when its next escalation step or reminder is due
--       (ms; '': none)
-- The escalation sweep found nothing due for a proposal in the set (another sweep took the step,
-- or it is past its deadline): its place is set from what the caller read, but only while the
-- proposal is still at that version, so a commit made since (which set its own place) is never
-- undone. A proposal that is gone leaves the set. Returns 1 when the set changed.
local bad = type_error(KEYS[2], 'zset', 'the escalations set')
if bad then return redis.error_reply(bad) end
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return redis.call('ZREM', KEYS[2], ARGV[1]) end
if version ~= ARGV[2] then return 0 end
if ARGV[3] == '' then return redis.call('ZREM', KEYS[2], ARGV[1]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
