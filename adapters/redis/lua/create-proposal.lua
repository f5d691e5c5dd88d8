-- KEYS: 1 proposal hash, 2 idempotency key, 3 pending zset, 4 status counts, 5 audit stream, 6 audit head,
--       7 the agent's revoked-agent time, 8 its restored-agent time (the token ledger's),
--       9 the card outbox stream: a new pending proposal's id goes there in this same step, so
--         its card is posted (card-relay.ts) even when the process dies right after the commit
-- ARGV: 1 id, 2 doc (JSON), 3 version, 4 status, 5 agent, 6 pending score (expires_at or +inf),
--       7 idempotency TTL in seconds ('0': the proposal has no idempotency key and KEYS[2] is unused),
--       8 when the agent proposed (ms: the earlier of its signed time and created_at), 9.. event groups (see audit-append.lua)
-- Returns {1, id} when stored, {0, existing id} when the agent already used the idempotency key,
-- {2, revoked_at} when the agent is revoked (not restored since, or restored but the proposal
-- was made at or before the revocation: it could never get a token). Checked here, in the step
-- that writes, so a proposal is stored either before the switch is pulled (and the revocation's
-- sweep finds it) or not at all.
local HEAD = 8
local idem_ttl = tonumber(ARGV[7])
local status = ARGV[4]
local bad = audit_events_error(HEAD + 1)
  or (idem_ttl > 0 and type_error(KEYS[2], 'string', 'the idempotency record'))
  or type_error(KEYS[3], 'zset', 'the pending set')
  or type_error(KEYS[4], 'hash', 'the status counts')
  or audit_keys_error(KEYS[5], KEYS[6])
  or type_error(KEYS[7], 'string', "the agent's revocation time")
  or type_error(KEYS[8], 'string', "the agent's restore time")
  or (status == 'pending' and type_error(KEYS[9], 'stream', 'the card outbox'))
  or count_error(redis.call('HGET', KEYS[4], status), 'the status count it adds to')
if bad then return redis.error_reply(bad) end
local revoked_at = redis.call('GET', KEYS[7])
if revoked_at then
  local restored_at = redis.call('GET', KEYS[8])
  if not restored_at or tonumber(restored_at) < tonumber(revoked_at) or tonumber(ARGV[8]) <= tonumber(revoked_at) then
    return {2, revoked_at}
  end
end
local id = ARGV[1]
if idem_ttl > 0 then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {0, existing} end
end
-- Ids are random; a collision would silently replace another proposal, so refuse it.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('ERR countersign: proposal ' .. id .. ' already exists')
end
-- Checked: from here on nothing fails.
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', ARGV[3], 'status', status, 'agent', ARGV[5])
if idem_ttl > 0 then
  redis.call('SET', KEYS[2], id, 'EX', idem_ttl)
end
if status == 'pending' then
  redis.call('ZADD', KEYS[3], ARGV[6], id)
  redis.call('XADD', KEYS[9], '*', 'p', id)
end
redis.call('HINCRBY', KEYS[4], status, 1)
append_audit_events(KEYS[5], KEYS[6], HEAD + 1)
return {1, id}
