-- KEYS: 1 the notice of an agent and route (hash), 2 notices by window end (zset),
--       3 notices due for an update (zset, score: when the update may go).
-- ARGV: 1 now (ms), 2 the window's end if this refusal starts one (ms), 3 update every (ms),
--       4 agent, 5 route, 6 limit, 7 max, 8 rule, 9 member (`<agent>:<route>`),
--       10 how long a notice is kept after its window ends (ms, for its last update).
-- One refusal for a limit: counted in the window, and what its notice needs claimed in the
-- same step, so that every replica agrees: the window's first refusal posts (and takes over
-- the previous window's last count, if it was never shown), a later one updates the posted
-- message when its last update is old enough, and otherwise the notice is left due for the
-- sweep. Returns JSON: {kind = 'post' | 'update' | 'counted', notice, finish}.
-- Redis does not roll back: a key of the wrong type is refused before the first write.
for i, want in ipairs({'hash', 'zset', 'zset'}) do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('STORE_REFUSED the key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want .. '; nothing was written')
  end
end
local now = tonumber(ARGV[1])
local every = tonumber(ARGV[3])
local member = ARGV[9]

local function state(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local cur = state(KEYS[1])
local ends = tonumber(cur.ends)
if ends ~= nil and now < ends then
  local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
  -- The limit the latest refusal hit is the one the notice names.
  redis.call('HSET', KEYS[1], 'limit', ARGV[6], 'max', ARGV[7], 'rule', ARGV[8])
  -- Still being posted: posted() leaves the moved count due.
  if cur.refs == nil then return cjson.encode({ kind = 'counted' }) end
  local updated = tonumber(cur.updated)
  if now - updated >= every then
    redis.call('HSET', KEYS[1], 'shown', count, 'updated', ARGV[1])
    redis.call('ZREM', KEYS[3], member)
    return cjson.encode({ kind = 'update', notice = state(KEYS[1]) })
  end
  redis.call('ZADD', KEYS[3], updated + every, member)
  return cjson.encode({ kind = 'counted' })
end

-- A new window. The one before it, posted with a count it never showed, is finished by this caller.
local finish = cjson.null
if ends ~= nil and cur.refs ~= nil and tonumber(cur.count) > tonumber(cur.shown) then
  cur.shown = cur.count
  finish = cur
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'agent', ARGV[4], 'route', ARGV[5], 'limit', ARGV[6], 'max', ARGV[7], 'rule', ARGV[8],
  'count', 1, 'shown', 1, 'since', ARGV[1], 'ends', ARGV[2], 'updated', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[10]))
redis.call('ZADD', KEYS[2], ARGV[2], member)
redis.call('ZREM', KEYS[3], member)
-- Notices of windows long over leave the banner's list.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. tostring(now - tonumber(ARGV[10])))
return cjson.encode({ kind = 'post', notice = state(KEYS[1]), finish = finish })
