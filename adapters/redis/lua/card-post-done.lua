-- KEYS: 1 the proposal's card references (hash), 2 the posting claim (string), 3 the proposal
--       (hash), 4 audit stream, 5 audit head
-- ARGV: 1 reference field (`platform:conversation`), 2 the reference (JSON), 3 the poster's
--       claim token, 4.. event groups (card_posted; see audit-append.lua)
-- A posted card, in one step: its reference saved, its events appended, and the poster's claim
-- ended (only its own: a claim that lapsed and was taken by another poster stays theirs).
-- Returns the proposal's version now ('' when it is gone), so the poster can tell whether it
-- moved on while the card was on its way.
local HEAD = 3
local bad = audit_events_error(HEAD + 1) or audit_keys_error(KEYS[4], KEYS[5])
if bad then return redis.error_reply(bad) end
-- A claim or proposal key of the wrong type fails these reads, and a references key of the wrong
-- type the first write (HSET): either way before anything is written, so no TYPE call for them.
local version = redis.call('HGET', KEYS[3], 'version') or ''
local ours = redis.call('GET', KEYS[2]) == ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
-- Written: from here on nothing fails.
if ours then redis.call('DEL', KEYS[2]) end
append_audit_events(KEYS[4], KEYS[5], HEAD + 1)
return version
