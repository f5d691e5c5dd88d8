-- The audit sealer's lease and its writes (adapters/redis/audit-seals.ts). One leader among the
-- replicas holds KEYS[1] (its owner id, with a PX expiry); every operation but `acquire` runs
-- only while the caller still holds it, checked here in the same step as the write, so a
-- sealer whose lease ran out (a pause, a partition) and was taken over writes nothing.
--
-- KEYS[1] lease (string), KEYS[2] sealed (hash: seq, hash, id, at, legacy_hash), KEYS[3] checkpoints (stream)
-- ARGV[1] operation, ARGV[2] owner
--   acquire  ARGV[3] ttl ms                      -> 1 held by owner now, 0 held by another
--   renew    ARGV[3] ttl ms                      -> 1 renewed, 0 not the owner
--   release                                      -> 1 released, 0 not the owner
--   seal     ARGV[3] ttl ms, ARGV[4] expected seq ('0' when nothing was sealed),
--            ARGV[5..9] new seq, hash, stream id, at, legacy hash,
--            ARGV[10..17] checkpoint v, log, kind, seq, hash, at, kid, sig (absent: none)
--                                                -> 1 written, 0 not the owner, -1 sealed moved on
--
-- Every key is type-checked before the first write: Redis does not roll a script back.

local op, owner = ARGV[1], ARGV[2]

local function type_of(key)
  return redis.call('TYPE', key)['ok']
end

local function check_type(key, want, what)
  local t = type_of(key)
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE countersign: the audit ' .. what .. ' is a ' .. t .. ', not a ' .. want)
  end
  return nil
end

local err = check_type(KEYS[1], 'string', 'sealer lease')
if err then return err end

if op == 'acquire' then
  if redis.call('SET', KEYS[1], owner, 'NX', 'PX', ARGV[3]) then return 1 end
  if redis.call('GET', KEYS[1]) == owner then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  return 0
end

if redis.call('GET', KEYS[1]) ~= owner then return 0 end

if op == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end

if op == 'release' then
  redis.call('DEL', KEYS[1])
  return 1
end

if op ~= 'seal' then return redis.error_reply('ERR countersign: unknown audit seal operation') end

err = check_type(KEYS[2], 'hash', 'sealed state')
if err then return err end
err = check_type(KEYS[3], 'stream', 'checkpoint stream')
if err then return err end

local function is_hash(h) return #h == 64 and string.find(h, '^%x+$') ~= nil end
local seq, hash, id, at, legacy = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
if not string.find(seq, '^%d+$') or not string.find(id, '^%d+%-%d+$') or not is_hash(hash) or not is_hash(legacy) then
  return redis.error_reply('ERR countersign: a sealed state needs a seq, 64-hex hashes and a stream id')
end
local with_checkpoint = #ARGV >= 17
if with_checkpoint and (ARGV[13] ~= seq or ARGV[14] ~= hash) then
  return redis.error_reply('ERR countersign: a checkpoint must name the seq and hash of the sealed state it is written with')
end

local current = redis.call('HGET', KEYS[2], 'seq') or '0'
if current ~= ARGV[4] then return -1 end
if tonumber(seq) < tonumber(current) then
  return redis.error_reply('ERR countersign: the sealed state never moves back')
end

local checkpoint_id = nil
if with_checkpoint then
  -- Ids are `<seq>-<n>`: a reader finds the checkpoints from any seq with one XRANGE, and a
  -- checkpoint below the newest cannot be added (XADD refuses an id that is not greater).
  local n = 1
  local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
  if last then
    local last_seq, last_n = string.match(last[1], '^(%d+)%-(%d+)$')
    if tonumber(last_seq) > tonumber(seq) then
      return redis.error_reply('ERR countersign: a checkpoint below the newest one')
    end
    if last_seq == seq then n = tonumber(last_n) + 1 end
  end
  checkpoint_id = seq .. '-' .. string.format('%d', n)
end

if checkpoint_id then
  redis.call('XADD', KEYS[3], checkpoint_id,
    'v', ARGV[10], 'log', ARGV[11], 'kind', ARGV[12], 'seq', ARGV[13], 'hash', ARGV[14], 'at', ARGV[15], 'kid', ARGV[16], 'sig', ARGV[17])
end
redis.call('HSET', KEYS[2], 'seq', seq, 'hash', hash, 'id', id, 'at', at, 'legacy_hash', legacy)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
