-- KEYS: 1 proposal hash, 2 pending zset, 3 status counts, 4 audit stream, 5 audit head,
--       6 the agent's pending zset, 7 its pending zset for the proposal's rule (policy/fatigue.ts limits),
--       8 the escalations zset
-- ARGV: 1 id, 2 expected version, 3 new doc (JSON), 4 new version, 5 new status,
--       6 pending score (expires_at or +inf), 7 statuses the new status may follow
--       (space-separated, from lifecycle.ts TRANSITIONS), 8 when its next escalation step or
--       reminder is due (ms; '': none, escalation.ts nextNudgeAt), 9.. event groups (see audit-append.lua)
-- Returns 1 when committed, 0 when the proposal is missing or its version moved on; an
-- error for a transition the state machine forbids (a bug, never a race: the version
-- matched, so the status is the one the caller read).
local HEAD = 8
local bad = audit_events_error(HEAD + 1)
  or type_error(KEYS[1], 'hash', 'the proposal')
  or type_error(KEYS[2], 'zset', 'the pending set')
  or type_error(KEYS[3], 'hash', 'the status counts')
  or audit_keys_error(KEYS[4], KEYS[5])
  or type_error(KEYS[6], 'zset', "the agent's pending set")
  or type_error(KEYS[7], 'zset', "the agent's pending set for the rule")
  or type_error(KEYS[8], 'zset', 'the escalations set')
if bad then return redis.error_reply(bad) end
local current = redis.call('HMGET', KEYS[1], 'version', 'status')
if not current[1] or current[1] ~= ARGV[2] then return 0 end
local id = ARGV[1]
local old_status = current[2]
local new_status = ARGV[5]
if not string.find(' ' .. ARGV[7] .. ' ', ' ' .. tostring(old_status) .. ' ', 1, true) then
  return redis.error_reply('ERR countersign: proposal ' .. id .. ' may not go from ' .. tostring(old_status) .. ' to ' .. new_status)
end
local moved = old_status ~= new_status
if moved then
  local counts = redis.call('HMGET', KEYS[3], old_status, new_status)
  bad = count_error(counts[1], 'the status count it takes from') or count_error(counts[2], 'the status count it adds to')
  if bad then return redis.error_reply(bad) end
end
-- Checked: from here on nothing fails.
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'version', ARGV[4], 'status', new_status)
if new_status == 'pending' then
  -- ZADD again: a pending proposal's deadline may move (it is cheap when it did not).
  redis.call('ZADD', KEYS[2], ARGV[6], id)
  -- XX: only where the create counted it (a rule without limits of its own has no set).
  redis.call('ZADD', KEYS[6], 'XX', ARGV[6], id)
  redis.call('ZADD', KEYS[7], 'XX', ARGV[6], id)
  if ARGV[8] ~= '' then redis.call('ZADD', KEYS[8], ARGV[8], id) else redis.call('ZREM', KEYS[8], id) end
else
  redis.call('ZREM', KEYS[8], id)

  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[7], id)
end
if moved then
  redis.call('HINCRBY', KEYS[3], old_status, -1)
  redis.call('HINCRBY', KEYS[3], new_status, 1)
end
append_audit_events(KEYS[4], KEYS[5], HEAD + 1)
return 1
