-- KEYS: 1 counter. ARGV: 1 window (seconds).
-- Counts one more and, in the same step, gives the counter its window if it has no expiry:
-- a counter is never left without one (a crash between INCR and EXPIRE used to leave a
-- permanent lock-out), and one left so by older code gets its window at the next count.
-- The window runs from the first count; later counts do not extend it. Returns the count.
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
