-- KEYS: 1 audit stream, 2 audit head.
-- ARGV: event groups (see audit-append.lua). Returns the number of events appended.
local bad = audit_events_error(1) or audit_keys_error(KEYS[1], KEYS[2])
if bad then return redis.error_reply(bad) end
return append_audit_events(KEYS[1], KEYS[2], 1)
