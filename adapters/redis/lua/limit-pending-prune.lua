-- KEYS: 1 an agent's pending set (or its pending set for a rule: policy/fatigue.ts limits),
--       2.. the proposal hashes of the members to check
-- ARGV: the members' ids, in the order of KEYS[2..]
-- Drops each member whose proposal is no longer pending (or is gone): a commit by a replica
-- from before the limits left it there, where it would count until its deadline. Statuses are
-- all read before the first write. Returns how many were dropped.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'zset' and kind ~= 'none' then
  return redis.error_reply('ERR countersign: the pending set ' .. KEYS[1] .. ' is a ' .. kind .. ', not a zset')
end
local gone = {}
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'status') ~= 'pending' then gone[#gone + 1] = ARGV[i - 1] end
end
local dropped = 0
for _, id in ipairs(gone) do dropped = dropped + redis.call('ZREM', KEYS[1], id) end
return dropped
