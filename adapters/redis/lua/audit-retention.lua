-- Audit retention's writes (adapters/redis/audit-seals.ts, src/app/audit-retention.ts): the
-- signed cut, the removal of entries up to it (with their search index ids), and of the
-- checkpoints below it. Every operation runs only while the caller holds the sealer's lease
-- (KEYS[1]), checked here in the same step as the write; none takes or extends it. Each is
-- repeatable, so a run cut short anywhere is finished by the next one, on any replica.
--
-- KEYS[1] sealer lease (string), KEYS[2] cut (hash: the cut checkpoint's fields),
-- KEYS[3] audit stream, KEYS[4] checkpoints (stream, ids <seq>-<n>), KEYS[5] audit head (hash:
-- its `ix_to` is the search indexer's position, audit-index.lua), KEYS[6..] search index lists
-- (trim only: every list the batch's entries belong in, audit-index.ts)
-- ARGV[1] operation, ARGV[2] owner
--   cut          ARGV[3..10] v, log, kind, seq, hash, at, kid, sig
--                  -> 1 written, 0 not the owner, -1 a cut at this seq or later is there
--   trim         ARGV[3..] stream ids of entries whose seq is the cut's or lower
--                  -> entries deleted, or -1 not the owner
--   checkpoints  -> checkpoints deleted, -1 not the owner, -2 entries up to the cut remain
--
-- Every key is type-checked before the first write: Redis does not roll a script back.

local op, owner = ARGV[1], ARGV[2]

local function check_type(key, want, what)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE countersign: the audit ' .. what .. ' is a ' .. t .. ', not a ' .. want)
  end
  return nil
end

-- Stream ids compared as numbers (ms, then seq): as text, '9-1' would sort after '10-1'.
-- Digit strings without leading zeros: the longer is the larger, else the text decides.
local function num_cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function id_le(a, b)
  local ams, aseq = string.match(a, '^(%d+)%-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)%-(%d+)$')
  if not ams or not bms then return false end
  local c = num_cmp(ams, bms)
  if c == 0 then c = num_cmp(aseq, bseq) end
  return c <= 0
end

local function field(list, name)
  for i = 1, #list, 2 do
    if list[i] == name then return list[i + 1] end
  end
  return nil
end

local err = check_type(KEYS[1], 'string', 'sealer lease')
  or check_type(KEYS[2], 'hash', 'retention cut')
  or check_type(KEYS[3], 'stream', 'stream')
  or check_type(KEYS[4], 'stream', 'checkpoint stream')
if err then return err end

local cut_seq = tonumber(redis.call('HGET', KEYS[2], 'seq'))

if op == 'cut' then
  local kind, seq, hash = ARGV[5], ARGV[6], ARGV[7]
  if #ARGV ~= 10 or kind ~= 'cut' or not string.find(seq, '^%d+$') or #hash ~= 64 or not string.find(hash, '^%x+$') then
    return redis.error_reply('ERR countersign: a cut needs the fields of a checkpoint, of kind cut, with a seq and a 64-hex hash')
  end
  if redis.call('GET', KEYS[1]) ~= owner then return 0 end
  if cut_seq and cut_seq >= tonumber(seq) then return -1 end
  -- Never beyond what is sealed and signed: a checkpoint at this seq must name this hash. Any
  -- one will do (all at one seq name the same hash), and an idle log may hold many.
  local stored = redis.call('XRANGE', KEYS[4], seq, seq, 'COUNT', 1)[1]
  if not stored or field(stored[2], 'hash') ~= hash then
    return redis.error_reply('ERR countersign: a cut must name the seq and hash of a stored checkpoint')
  end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'v', ARGV[3], 'log', ARGV[4], 'kind', kind, 'seq', seq, 'hash', hash, 'at', ARGV[8], 'kid', ARGV[9], 'sig', ARGV[10])
  return 1
end

if op == 'trim' then
  if #ARGV < 3 then return redis.error_reply('ERR countersign: trim needs the ids of the entries to remove') end
  local bound = ARGV[3]
  for i = 3, #ARGV do
    if not string.find(ARGV[i], '^%d+%-%d+$') then return redis.error_reply('ERR countersign: trim takes stream ids') end
    if id_le(bound, ARGV[i]) then bound = ARGV[i] end
  end
  if redis.call('GET', KEYS[1]) ~= owner then return -1 end
  -- Every entry at or below the batch's last id must be up to the cut: seq grows with the id, so
  -- the newest of them tells.
  local newest = redis.call('XREVRANGE', KEYS[3], bound, '-', 'COUNT', 1)[1]
  if newest then
    local seq = tonumber(field(newest[2], 'seq'))
    if not cut_seq or not seq or seq > cut_seq then
      return redis.error_reply('ERR countersign: trim reaches past the cut (entry ' .. newest[1] .. ')')
    end
  end
  -- A list of another type holds none of our ids: left alone (the index never stops anything),
  -- and so is a head record of another type (the indexer, which needs one, writes nothing then).
  local lists = {}
  for k = 6, #KEYS do
    if redis.call('TYPE', KEYS[k])['ok'] == 'list' then lists[#lists + 1] = KEYS[k] end
  end
  -- Lists hold ids newest first, so the batch's ids (and any older ones left behind) are at the
  -- tail. A list popped empty is deleted by Redis.
  local head_is_hash = redis.call('TYPE', KEYS[5])['ok'] == 'hash'
  for _, key in ipairs(lists) do
    local tail = redis.call('LINDEX', key, -1)
    while tail and id_le(tail, bound) do
      redis.call('RPOP', key)
      tail = redis.call('LINDEX', key, -1)
    end
  end
  -- The indexer may lag behind the cut: its position moves past what is removed here, so a
  -- batch it read before this step is refused (its position moved) and the next one starts
  -- after the removed entries, none of which is ever indexed. No entry up to `bound` is left
  -- (the batch is the oldest entries), so the index misses nothing by skipping to it.
  if head_is_hash then
    local position = redis.call('HGET', KEYS[5], 'ix_to')
    if not position or not id_le(bound, position) then redis.call('HSET', KEYS[5], 'ix_to', bound) end
  end
  return redis.call('XDEL', KEYS[3], unpack(ARGV, 3))
end

if op == 'checkpoints' then
  if redis.call('GET', KEYS[1]) ~= owner then return -1 end
  if not cut_seq then return 0 end
  local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
  if first then
    local seq = tonumber(field(first[2], 'seq'))
    if seq and seq <= cut_seq then return -2 end
  end
  -- Ids are <seq>-<n>: MINID <cut seq>-0 keeps every checkpoint at the cut's seq and after.
  return redis.call('XTRIM', KEYS[4], 'MINID', string.format('%d', cut_seq) .. '-0')
end

return redis.error_reply('ERR countersign: unknown audit retention operation')
