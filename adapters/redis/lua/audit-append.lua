-- Library: appends one sealed audit event to the hash chain. Concatenated after sha256.lua.
-- The writer (Node) computed `digest` over the canonical JSON of the event; here we only
-- chain it, because only inside the script are seq and the previous hash known without a
-- global lock. Fields are copied verbatim: `data` is Node's canonical JSON and must never
-- be re-encoded (cjson escapes "/" and reorders keys, which would break the digest).
local GENESIS_HASH = string.rep('0', 64)

-- Search index (see adapters/redis/audit-index.ts): capped lists beside the audit stream,
-- named from its key (same hash tag), of audit entry ids, newest first. Written with pcall:
-- the index only speeds search up and must never stop an audit write.
local AUDIT_INDEX_CAP = 2000

local function index_add(key, id)
  local n = redis.pcall('LPUSH', key, id)
  -- Trimmed in steps of 100, not at every push; a list of AUDIT_INDEX_CAP or more may be trimmed.
  if type(n) == 'number' and n > AUDIT_INDEX_CAP + 100 then redis.pcall('LTRIM', key, 0, AUDIT_INDEX_CAP - 1) end
end

local function index_event(stream_key, head_key, id, proposal_id, agent, actor, tokens)
  local base = stream_key .. ':ix:'
  redis.call('HSETNX', head_key, 'ix_from', id)
  if agent ~= '' then index_add(base .. 'agent:' .. agent, id) end
  index_add(base .. 'actor:' .. actor, id)
  if proposal_id ~= '' then index_add(base .. 'proposal:' .. proposal_id, id) end
  for token in string.gmatch(tokens, '%S+') do
    if token == '*' then index_add(base .. 'w*', id) else index_add(base .. 'w:' .. token, id) end
  end
end

local function append_audit(stream_key, head_key, ev_type, at, proposal_id, agent, actor, data, digest, tokens)
  local seq = string.format('%d', redis.call('HINCRBY', head_key, 'seq', 1))
  local prev = redis.call('HGET', head_key, 'hash')
  if not prev then prev = GENESIS_HASH end
  local hash = chain_hash(prev, digest, seq)
  -- `chain` names the step (core/audit.ts): entries of logs begun before it have none.
  local id = redis.call('XADD', stream_key, '*',
    'seq', seq, 'at', at, 'type', ev_type, 'proposal_id', proposal_id, 'agent', agent,
    'actor', actor, 'data', data, 'digest', digest, 'prev_hash', prev, 'hash', hash, 'chain', '2')
  redis.call('HSET', head_key, 'hash', hash)
  index_event(stream_key, head_key, id, proposal_id, agent, actor, tokens)
  return id
end

-- Events arrive as flat ARGV groups of 8 starting at `first`:
-- type, at, proposal_id ('' for null), agent ('' for null), actor, data, digest,
-- index words (space-separated; not part of the event, see index_event).
local EVENT_ARITY = 8

-- Checked before a script writes anything: Redis does not undo the writes of a script that
-- fails half-way, so a bad event must stop it before the state change it records.
local function audit_events_error(first)
  if ((#ARGV - first + 1) % EVENT_ARITY) ~= 0 then
    return 'ERR countersign: event arguments must come in groups of 8'
  end
  for i = first, #ARGV, EVENT_ARITY do
    local digest = ARGV[i + 6]
    if #digest ~= 64 or not string.find(digest, '^%x+$') then
      return 'ERR countersign: an audit event digest must be 64 hex digits'
    end
  end
  return nil
end

local function append_audit_events(stream_key, head_key, first)
  local count = 0
  for i = first, #ARGV, EVENT_ARITY do
    append_audit(stream_key, head_key, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
      ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7])
    count = count + 1
  end
  return count
end
