-- KEYS: 1 the absences (hash: person -> JSON {delegate, until, set_at}), 2 audit stream,
--       3 audit head
-- ARGV: 1 the absent person, 2 the absence (JSON), 3 its delegate, 4 now (ms),
--       5.. event groups (away_set; see audit-append.lua)
-- An absence set (or replaced) with its audit event, in one step, unless the delegate is away
-- now themselves: delegation is one hop, and two people naming each other at the same moment
-- must not both succeed. Returns {'set'} or {'delegate_away', <their until, ms>}.
local HEAD = 4
local bad = audit_events_error(HEAD + 1) or audit_keys_error(KEYS[2], KEYS[3]) or type_error(KEYS[1], 'hash', 'the absences key')
if bad then return redis.error_reply(bad) end
local now = tonumber(ARGV[4])
if not now then return redis.error_reply('away-set: now must be a number') end
local raw = redis.call('HGET', KEYS[1], ARGV[3])
if raw then
  local ok, theirs = pcall(cjson.decode, raw)
  -- `until` is a Lua keyword: indexed by string.
  if ok and type(theirs) == 'table' and type(theirs['until']) == 'number' and now < theirs['until'] then
    return {'delegate_away', string.format('%d', theirs['until'])}
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
-- Written: from here on nothing fails.
append_audit_events(KEYS[2], KEYS[3], HEAD + 1)
return {'set'}
