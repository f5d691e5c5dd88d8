-- KEYS: 1 proposal hash, 2 pending zset, 3 status counts, 4 audit stream, 5 audit head,
--       6 the agent's pending zset, 7 its pending zset for the proposal's rule (policy/fatigue.ts limits),
--       8 the escalations zset, 9 the absences (hash, away-store.ts), for a revision's move
--       between aggregate groups (ports.ts AggregateMove) 10 the group it leaves, 11 its version,
--       12 the group it joins, 13 its version (unused without a move: still keys of the slot)
-- ARGV: 1 id, 2 expected version, 3 new doc (JSON), 4 new version, 5 new status,
--       6 pending score (expires_at or +inf), 7 statuses the new status may follow
--       (space-separated, from lifecycle.ts TRANSITIONS), 8 when its next escalation step or
--       reminder is due (ms; '': none, escalation.ts nextNudgeAt), 9-11 for a delegate's vote
--       the absent person, the delegate and the vote's time (ms; '' otherwise),
--       12 the member leaving KEYS[10] ('': none), 13 the member joining KEYS[12] ('': none),
--       14 its score, 15 the groups' window (ms), 16 the version of KEYS[12] the revision was
--       decided on ('': unchecked), 17 the member taken out of KEYS[10] without moving its version,
--       the proposal's place when its new status no longer counts ('': none), 18.. event groups
--       (see audit-append.lua)
-- Returns 1 when committed, 0 when the proposal is missing or its version moved on, or a
-- delegate's vote whose absence no longer names that delegate at its time (ended, or handed to
-- someone else since it was read), or a revision decided on an aggregate group that changed since; an error for a transition the state machine forbids (a
-- bug, never a race: the version matched, so the status is the one the caller read).
local HEAD = 17
local bad = audit_events_error(HEAD + 1)
  or type_error(KEYS[1], 'hash', 'the proposal')
  or type_error(KEYS[2], 'zset', 'the pending set')
  or type_error(KEYS[3], 'hash', 'the status counts')
  or audit_keys_error(KEYS[4], KEYS[5])
  or type_error(KEYS[6], 'zset', "the agent's pending set")
  or type_error(KEYS[7], 'zset', "the agent's pending set for the rule")
  or type_error(KEYS[8], 'zset', 'the escalations set')
  or type_error(KEYS[9], 'hash', 'the absences key')
if bad then return redis.error_reply(bad) end
if ARGV[12] ~= '' or ARGV[13] ~= '' then
  bad = type_error(KEYS[10], 'zset', 'the aggregate group it leaves') or type_error(KEYS[11], 'string', "that group's version")
    or type_error(KEYS[12], 'zset', 'the aggregate group it joins') or type_error(KEYS[13], 'string', "that group's version")
  if bad then return redis.error_reply(bad) end
end
if ARGV[17] ~= '' then
  bad = type_error(KEYS[10], 'zset', 'the aggregate group it counted in')
  if bad then return redis.error_reply(bad) end
end
local current = redis.call('HMGET', KEYS[1], 'version', 'status')
if not current[1] or current[1] ~= ARGV[2] then return 0 end
if ARGV[16] ~= '' and (redis.call('GET', KEYS[13]) or '0') ~= ARGV[16] then return 0 end
if ARGV[9] ~= '' then
  local raw = redis.call('HGET', KEYS[9], ARGV[9])
  local ok, absence = false, nil
  if raw then ok, absence = pcall(cjson.decode, raw) end
  -- `until` is a Lua keyword: indexed by string.
  if not (ok and type(absence) == 'table' and absence['delegate'] == ARGV[10] and type(absence['until']) == 'number' and tonumber(ARGV[11]) < absence['until']) then return 0 end
end
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
-- A revision counts with its revised amount (and target): both groups' versions move, so a
-- create decided on what they held before is refused as stale.
local window = tonumber(ARGV[15]) or 0
if ARGV[12] ~= '' and redis.call('ZREM', KEYS[10], ARGV[12]) == 1 then
  redis.call('INCR', KEYS[11])
  redis.call('PEXPIRE', KEYS[11], window)
end
if ARGV[13] ~= '' then
  redis.call('ZADD', KEYS[12], ARGV[14], ARGV[13])
  redis.call('PEXPIRE', KEYS[12], window)
  redis.call('INCR', KEYS[13])
  redis.call('PEXPIRE', KEYS[13], window)
end
-- Decided against, expired, cancelled, failed outright: readAggregate sums what the group holds,
-- so it is taken out here. No version move: a decision made on a sum that still held it is stricter.
if ARGV[17] ~= '' then redis.call('ZREM', KEYS[10], ARGV[17]) end
append_audit_events(KEYS[4], KEYS[5], HEAD + 1)
return 1
