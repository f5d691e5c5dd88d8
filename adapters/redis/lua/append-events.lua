-- KEYS: audit stream, audit head. ARGV: event groups (see audit-append.lua).
-- Returns the number of events appended.
if (#ARGV % EVENT_ARITY) ~= 0 then
  return redis.error_reply('ERR countersign: event arguments must come in groups of 8')
end
return append_audit_events(KEYS[1], KEYS[2], 1)
