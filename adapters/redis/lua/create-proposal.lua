-- KEYS: 1 proposal hash, 2 idempotency key, 3 pending zset, 4 status counts, 5 audit stream, 6 audit head,
--       7 the agent's revoked-agent time, 8 its restored-agent time (the token ledger's),
--       9 the card outbox stream: a new pending proposal's id goes there in this same step, so
--         its card is posted (card-relay.ts) even when the process dies right after the commit
--       approval fatigue (policy/fatigue.ts): 10 the agent's pending zset, 11 its pending zset for
--       the rule, 12 its rate zset (last minute), 13 its rate zset for the rule, 14 the aggregate
--       group's zset, 15 the group's version, 16 the escalations zset (when the proposal's first
--       escalation step or reminder is due: escalation.ts nextNudgeAt)
-- ARGV: 1 id, 2 doc (JSON), 3 version, 4 status, 5 agent, 6 pending score (expires_at or +inf),
--       7 idempotency TTL in seconds ('0': the proposal has no idempotency key and KEYS[2] is unused),
--       8 when the agent proposed (ms: the earlier of its signed time and created_at),
--       9 now (ms), 10 proposals per minute, 11 pending, 12 the rule's per minute, 13 the rule's
--       pending (each '0': no limit; checked only for a pending proposal), 14 the group version the
--       decision was made on ('': no aggregate, KEYS 14-15 unused), 15 the group member
--       (`<id>|<amount>`), 16 the group's window (ms), 17 its first escalation step or reminder
--       (ms; '': none), 18.. event groups (see audit-append.lua)
-- Returns {1, id} when stored, {0, existing id} when the agent already used the idempotency key,
-- {2, revoked_at} when the agent is revoked (not restored since, or restored but the proposal
-- was made at or before the revocation: it could never get a token). Checked here, in the step
-- that writes, so a proposal is stored either before the switch is pulled (and the revocation's
-- sweep finds it) or not at all. {3, 'stale'}: a proposal joined the aggregate group since the
-- caller read it (it decides again); {4, limit, max, retry after ms}: over an agent's limit.
-- Neither stores anything.
local HEAD = 17
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
  -- Only a pending proposal reads or writes the limit sets: an allowed or denied one pays nothing for them.
  or (status == 'pending' and (type_error(KEYS[10], 'zset', "the agent's pending set")
    or type_error(KEYS[11], 'zset', "the agent's pending set for the rule")
    or type_error(KEYS[12], 'zset', "the agent's proposals this minute")
    or type_error(KEYS[13], 'zset', "the agent's proposals this minute for the rule")))
  or (ARGV[14] ~= '' and (type_error(KEYS[14], 'zset', 'the aggregate group') or type_error(KEYS[15], 'string', "the aggregate group's version")))
  or (ARGV[17] ~= '' and type_error(KEYS[16], 'zset', 'the escalations set'))
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
local now = tonumber(ARGV[9])
local aggregated = ARGV[14] ~= '' and (status == 'pending' or status == 'approved' or status == 'executing')
if ARGV[14] ~= '' and (redis.call('GET', KEYS[15]) or '0') ~= ARGV[14] then return {3, 'stale'} end
local rule_pending = tonumber(ARGV[13])
local rule_rate = tonumber(ARGV[12])
if status == 'pending' then
  -- Counted without trimming: a script's first write must be one Redis refuses when full
  -- (HSET below), or a full Redis would let the rest of the script through. Entries before
  -- `from` (out of the minute, past their deadline) are trimmed after the writes.
  local function full(key, max, name, from, span)
    if max <= 0 or redis.call('ZCOUNT', key, '(' .. from, '+inf') < max then return nil end
    local first = redis.call('ZRANGEBYSCORE', key, '(' .. from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return {4, name, max, math.max(1000, (tonumber(first[2]) or now) + span - now)}
  end
  local refused = full(KEYS[12], tonumber(ARGV[10]), 'proposals_per_minute', now - 60000, 60000)
    or full(KEYS[10], tonumber(ARGV[11]), 'pending', now, 0)
    or (rule_rate > 0 and full(KEYS[13], rule_rate, 'rule.proposals_per_minute', now - 60000, 60000))
    or (rule_pending > 0 and full(KEYS[11], rule_pending, 'rule.pending', now, 0))
  if refused then return refused end
end
-- Checked: from here on nothing fails.
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', ARGV[3], 'status', status, 'agent', ARGV[5])
if idem_ttl > 0 then
  redis.call('SET', KEYS[2], id, 'EX', idem_ttl)
end
if status == 'pending' then
  redis.call('ZADD', KEYS[3], ARGV[6], id)
  redis.call('XADD', KEYS[9], '*', 'p', id)
  if ARGV[17] ~= '' then redis.call('ZADD', KEYS[16], ARGV[17], id) end

  redis.call('ZADD', KEYS[10], ARGV[6], id)
  redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now)
  redis.call('ZADD', KEYS[12], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', now - 60000)
  redis.call('PEXPIRE', KEYS[12], 60000)
  if rule_pending > 0 then
    redis.call('ZADD', KEYS[11], ARGV[6], id)
    redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', now)
  end
  if rule_rate > 0 then
    redis.call('ZADD', KEYS[13], now, id)
    redis.call('ZREMRANGEBYSCORE', KEYS[13], '-inf', now - 60000)
    redis.call('PEXPIRE', KEYS[13], 60000)
  end
end
if aggregated then
  local window = tonumber(ARGV[16])
  redis.call('ZADD', KEYS[14], now, ARGV[15])
  redis.call('ZREMRANGEBYSCORE', KEYS[14], '-inf', '(' .. (now - window))
  redis.call('PEXPIRE', KEYS[14], window)
  redis.call('INCR', KEYS[15])
  redis.call('PEXPIRE', KEYS[15], window)
end
redis.call('HINCRBY', KEYS[4], status, 1)
append_audit_events(KEYS[5], KEYS[6], HEAD + 1)
return {1, id}
