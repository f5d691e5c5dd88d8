-- Library: appends audit events to the stream, after the checks every writing script runs
-- first. Prepended to the scripts that record a change with its events.
--
-- An entry is what the writer (Node) sealed, and its seq: `digest` covers the canonical JSON of
-- the event; the chain over it is computed in Node by whoever reads the log in order (chain
-- step 3, src/core/audit.ts), so no hash is computed here. Fields are copied verbatim: `data`
-- is Node's canonical JSON and must never be re-encoded (cjson escapes "/" and reorders keys,
-- which would break the digest).
--
-- Redis does not undo the writes of a script that fails half-way: every script checks all it
-- is about to write (argument shapes, key types, the fields it counts with) before its first
-- write, and a failed check writes nothing. A key of the wrong type is refused with an error
-- starting STORE_REFUSED, which the store turns into a 503 (scripts.ts).

-- Events arrive as ARGV groups of EVENT_ARITY from a script's first event argument:
-- type, at, proposal_id ('' for null), agent ('' for null), actor, data, digest.
-- Nothing else is written for them here: the search index over them is written after the
-- commit, in batches, by the indexer (audit-index.lua, src/app/index-audit.ts).
local EVENT_ARITY = 7

local function store_refused(what)
  return 'STORE_REFUSED ' .. what .. '; nothing was written'
end

-- Nil when `key` holds nothing or a `want`; else why the script must not write.
local function type_error(key, want, what)
  local t = redis.call('TYPE', key)['ok']
  if t == 'none' or t == want then return nil end
  return store_refused(what .. ' holds a ' .. t .. ', not a ' .. want)
end

-- Nil when `value` (a hash field, false when absent) is a number HINCRBY can add one to.
local function count_error(value, what)
  if value == false or value == '0' then return nil end
  if #value <= 18 and string.find(value, '^-?[1-9]%d*$') then return nil end
  return store_refused(what .. ' is not a whole number')
end

-- Checks the event groups from ARGV[first].
local function audit_events_error(first)
  if ((#ARGV - first + 1) % EVENT_ARITY) ~= 0 then
    return 'ERR countersign: event arguments must come in groups of 7'
  end
  for i = first, #ARGV, EVENT_ARITY do
    local digest = ARGV[i + 6]
    if #digest ~= 64 or not string.find(digest, '^%x+$') then
      return 'ERR countersign: an audit event digest must be 64 hex digits'
    end
  end
  return nil
end

-- The checks of the stream and its head, which every event write goes through.
local function audit_keys_error(stream_key, head_key)
  return type_error(stream_key, 'stream', 'the audit stream')
    or type_error(head_key, 'hash', 'the audit head record')
    or count_error(redis.call('HGET', head_key, 'seq'), "the audit head record's seq")
end

-- Appends the events from ARGV[first]. Returns how many.
local function append_audit_events(stream_key, head_key, first)
  local count = 0
  for i = first, #ARGV, EVENT_ARITY do
    local seq = string.format('%d', redis.call('HINCRBY', head_key, 'seq', 1))
    redis.call('XADD', stream_key, '*',
      'seq', seq, 'at', ARGV[i + 1], 'type', ARGV[i], 'proposal_id', ARGV[i + 2], 'agent', ARGV[i + 3],
      'actor', ARGV[i + 4], 'data', ARGV[i + 5], 'digest', ARGV[i + 6], 'chain', '3')
    count = count + 1
  end
  return count
end
