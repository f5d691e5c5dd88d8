-- KEYS: 1 an implicit idempotency key. ARGV: 1 the proposal id it must still name.
-- Forgets the key only while it still names that proposal: a newer call's key is kept.
-- Returns 1 when it was deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
