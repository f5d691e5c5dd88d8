-- KEYS: 1 the posting claim (string)
-- ARGV: 1 the poster's claim token
-- A poster that could not post gives its claim up, so a retry need not wait for it to lapse;
-- only its own claim: one that lapsed and was taken by another poster stays theirs.
-- Returns 1 when the claim was this poster's.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
