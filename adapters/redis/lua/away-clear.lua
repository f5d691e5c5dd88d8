-- KEYS: 1 the absences (hash), 2 audit stream, 3 audit head
-- ARGV: 1 the absent person, 2 the absence to end (JSON, exactly as read), 3.. event groups
--       (away_cleared; see audit-append.lua)
-- Ends exactly the absence the caller read, with its audit event, in one step: an absence
-- replaced in between is left alone (the event would describe another one). Returns 1 when
-- ended, 0 when the stored absence is not that one (or there is none).
local HEAD = 2
local bad = audit_events_error(HEAD + 1) or audit_keys_error(KEYS[2], KEYS[3]) or type_error(KEYS[1], 'hash', 'the absences key')
if bad then return redis.error_reply(bad) end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
append_audit_events(KEYS[2], KEYS[3], HEAD + 1)
return 1
