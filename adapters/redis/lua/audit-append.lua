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
-- type, at, proposal_id ('' for null), agent ('' for null), actor, data, digest, and how many
-- of the KEYS after the script's own are this event's search index lists (audit-index.ts).
local EVENT_ARITY = 8

-- Search index lists (adapters/redis/audit-index.ts), newest id first. Written with pcall: the
-- index only speeds search up and must never stop an audit write.
local AUDIT_INDEX_CAP = 2000

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

-- Checks the event groups from ARGV[first] and that their index keys are exactly KEYS[first_key..].
local function audit_events_error(first, first_key)
  if ((#ARGV - first + 1) % EVENT_ARITY) ~= 0 then
    return 'ERR countersign: event arguments must come in groups of 8'
  end
  local keys = 0
  for i = first, #ARGV, EVENT_ARITY do
    local digest = ARGV[i + 6]
    if #digest ~= 64 or not string.find(digest, '^%x+$') then
      return 'ERR countersign: an audit event digest must be 64 hex digits'
    end
    if not string.find(ARGV[i + 7], '^%d+$') then
      return 'ERR countersign: an audit event index key count must be a whole number'
    end
    keys = keys + tonumber(ARGV[i + 7])
  end
  if first_key + keys - 1 ~= #KEYS then
    return 'ERR countersign: the index key counts do not add up to the KEYS given'
  end
  return nil
end

-- The checks of the stream and its head, which every event write goes through.
local function audit_keys_error(stream_key, head_key)
  return type_error(stream_key, 'stream', 'the audit stream')
    or type_error(head_key, 'hash', 'the audit head record')
    or count_error(redis.call('HGET', head_key, 'seq'), "the audit head record's seq")
end

local function index_add(key, id)
  local n = redis.pcall('LPUSH', key, id)
  -- Trimmed in steps of 100, not at every push; a list of AUDIT_INDEX_CAP or more may be trimmed.
  if type(n) == 'number' and n > AUDIT_INDEX_CAP + 100 then redis.pcall('LTRIM', key, 0, AUDIT_INDEX_CAP - 1) end
end

-- Appends the events from ARGV[first]; their index keys start at KEYS[first_key]. Returns how many.
local function append_audit_events(stream_key, head_key, first, first_key)
  local count = 0
  local k = first_key
  for i = first, #ARGV, EVENT_ARITY do
    local seq = string.format('%d', redis.call('HINCRBY', head_key, 'seq', 1))
    local id = redis.call('XADD', stream_key, '*',
      'seq', seq, 'at', ARGV[i + 1], 'type', ARGV[i], 'proposal_id', ARGV[i + 2], 'agent', ARGV[i + 3],
      'actor', ARGV[i + 4], 'data', ARGV[i + 5], 'digest', ARGV[i + 6], 'chain', '3')
    -- Where the index begins: search scans below it.
    if count == 0 then redis.call('HSETNX', head_key, 'ix_from', id) end
    local n = tonumber(ARGV[i + 7])
    for j = k, k + n - 1 do index_add(KEYS[j], id) end
    k = k + n
    count = count + 1
  end
  return count
end
