-- One batch of the audit search indexer (adapters/redis/audit-index-store.ts, src/app/index-audit.ts):
-- the batch's entry ids pushed to the index lists they belong in (audit-index.ts), and the index
-- position moved to the batch's last id, in one step. Runs only while the caller holds the audit
-- sealer's lease and only if the position is still the one the batch was read after: a batch
-- written already (a repeated step) or one that retention trimmed past (audit-retention.lua moves
-- the position past what it removes) writes nothing, so no id is pushed twice and none of an
-- entry trimmed before it was indexed is pushed later.
--
-- KEYS[1] sealer lease (string), KEYS[2] audit head (hash: `ix_from`, the first id the index
-- covers; `ix_to`, the position), KEYS[3..] the batch's index lists
-- ARGV[1] owner, ARGV[2] the position the batch was read after ('' when none), ARGV[3] the
-- batch's first id, ARGV[4] its last id, then for each list KEYS[2 + k] in turn: how many ids,
-- and the ids, oldest first (LPUSH puts the last one at the head: lists stay newest first)
-- Returns 1 written, 0 not the owner, -1 the position moved.
--
-- The lease and the head are type-checked before the first write (Redis does not roll a script
-- back). A list of another type is left out, as the index never stops anything: its LPUSH (a
-- pcall) fails with WRONGTYPE and writes nothing, which comes to what a TYPE check per list
-- would do for about a fifth less of the indexer's Redis CPU (a TYPE call per list and batch).
-- Any other failure of a push ends the script; it can only come before the first write (Redis
-- refuses a script's writes at maxmemory up to its first one), so nothing is written then.

local AUDIT_INDEX_CAP = 2000
-- unpack() is bounded by Lua's C stack (8000 values): ids go to LPUSH in slices of this many.
local PUSH_SLICE = 1000

local owner, after, first, last = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

-- Stream ids compared as numbers (ms, then seq): digit strings without leading zeros, the
-- longer is the larger, else the text decides.
local function num_cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function id_cmp(a, b)
  local ams, aseq = string.match(a, '^(%d+)%-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)%-(%d+)$')
  local c = num_cmp(ams, bms)
  if c == 0 then c = num_cmp(aseq, bseq) end
  return c
end

if #ARGV < 4 then return redis.error_reply('ERR countersign: the index batch needs an owner, a position and its first and last ids') end
for _, id in ipairs({ first, last, after ~= '' and after or nil }) do
  if not string.find(id, '^%d+%-%d+$') then return redis.error_reply('ERR countersign: the index batch takes stream ids') end
end
if id_cmp(first, last) > 0 or (after ~= '' and id_cmp(first, after) <= 0) then
  return redis.error_reply('ERR countersign: an index batch must start after its position and end at or after its start')
end
-- The lists' id groups must cover ARGV exactly, one group per list.
local argc = #ARGV
local at, lists = 5, 0
while at <= argc do
  local n = tonumber(ARGV[at])
  if not n or n < 1 or n % 1 ~= 0 or at + n > argc then
    return redis.error_reply('ERR countersign: each index list takes a count and that many ids')
  end
  at = at + n + 1
  lists = lists + 1
end
if lists ~= #KEYS - 2 then return redis.error_reply('ERR countersign: one id group per index list in KEYS') end

local lease_type = redis.call('TYPE', KEYS[1])['ok']
if lease_type ~= 'none' and lease_type ~= 'string' then
  return redis.error_reply('WRONGTYPE countersign: the audit sealer lease is a ' .. lease_type .. ', not a string')
end
-- No head record: no log to index (its writers would have made one).
local head_type = redis.call('TYPE', KEYS[2])['ok']
if head_type ~= 'hash' then
  return redis.error_reply('WRONGTYPE countersign: the audit head record is a ' .. head_type .. ', not a hash')
end
if redis.call('GET', KEYS[1]) ~= owner then return 0 end
if (redis.call('HGET', KEYS[2], 'ix_to') or '') ~= after then return -1 end

at = 5
for k = 3, #KEYS do
  local n = tonumber(ARGV[at])
  local len = 0
  for from = at + 1, at + n, PUSH_SLICE do
    len = redis.pcall('LPUSH', KEYS[k], unpack(ARGV, from, math.min(at + n, from + PUSH_SLICE - 1)))
    if type(len) == 'table' then
      if not string.find(tostring(len.err), '^WRONGTYPE') then return redis.error_reply(tostring(len.err)) end
      break
    end
  end
  -- Trimmed in steps of 100, not at every batch; a list of AUDIT_INDEX_CAP or more may be trimmed.
  if type(len) == 'number' and len > AUDIT_INDEX_CAP + 100 then redis.call('LTRIM', KEYS[k], 0, AUDIT_INDEX_CAP - 1) end
  at = at + n + 1
end
redis.call('HSETNX', KEYS[2], 'ix_from', first)
redis.call('HSET', KEYS[2], 'ix_to', last)
return 1
