-- KEYS: 1 revoked-agent:<agent>, 2 restored-agent:<agent>
-- ARGV: 1 the revocation time (ms)
-- Pulls the kill switch: the revocation time is set and an earlier restore forgotten, in one
-- step, so the intake check (create-proposal.lua) never sees the new time beside the old lift.
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
