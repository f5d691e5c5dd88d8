-- KEYS: 1 the proposal's card references (hash), 2 its posting claim for the platform (string),
--       3 the proposal (hash)
-- ARGV: 1 the card's field prefix: the platform, or `<platform>#<step>` for an escalation step's
--       card (card-ref-store.ts fieldPrefix), 2 claim token (the poster's own), 3 claim TTL in seconds

-- A poster's first step, in one round trip: whether the card may be posted now and, when it
-- may, the proposal to render. Returns {'claimed', doc} when the claim is now this poster's (for
-- the TTL, or until it finishes or releases), else why not: {'posted'} a card for this platform
-- exists, {'busy'} another poster holds the claim, {'settled'} the proposal is no longer pending,
-- {'missing'} it is gone. Checking the references and claiming in one step is what makes a card
-- post once: a poster that finished (card-post-done.lua) saved its reference in the step that
-- ended its claim.
-- The one write is the claim, so only its key is checked: a card references or proposal key of
-- the wrong type fails the read below, before the write (each TYPE costs a call in the hot path).
local bad = type_error(KEYS[2], 'string', 'the posting claim')
if bad then return redis.error_reply(bad) end
local prefix = ARGV[1] .. ':'
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #prefix) == prefix then return {'posted'} end
end
local p = redis.call('HMGET', KEYS[3], 'status', 'doc')
if not p[1] or not p[2] then return {'missing'} end
if p[1] ~= 'pending' then return {'settled'} end
-- Checked: the one write.
if not redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3], 'NX') then return {'busy'} end
return {'claimed', p[2]}
