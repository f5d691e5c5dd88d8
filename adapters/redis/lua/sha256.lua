-- SHA-256 in pure Lua 5.1 on the `bit` library: Redis scripts only offer redis.sha1hex, and
-- the audit chain step must run inside the same script as the state change it records.
-- A library: scripts.ts concatenates it in front of the scripts that call it.
-- Every bit.* call is a C call, which is what a block costs (~45 µs in Redis 7.0 on the
-- benchmark machine), so the chain step is laid out to hash exactly two blocks (chain_hash).
local band, bor, bxor, rshift, lshift, ror, tobit, tohex = bit.band, bit.bor, bit.bxor, bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex
local byte = string.byte
local K = {
0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2}

local function initial_state()
  return {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
end

-- One block: w[0..15] holds its words (w[16..63] is overwritten); H is updated in place.
local function compress(H, w)
  for i = 16, 63 do
    local x, y = w[i-15], w[i-2]
    w[i] = tobit(w[i-16] + bxor(ror(x,7), ror(x,18), rshift(x,3)) + w[i-7] + bxor(ror(y,17), ror(y,19), rshift(y,10)))
  end
  local a,b,c,d,e,f,g,h = H[1],H[2],H[3],H[4],H[5],H[6],H[7],H[8]
  for i = 0, 63 do
    -- t1 and t2 are left unwrapped: every bit op reduces its operands mod 2^32, and a sum
    -- of five 32-bit words stays far inside a double's 53 exact bits.
    local t1 = h + bxor(ror(e,6), ror(e,11), ror(e,25)) + bxor(g, band(e, bxor(f, g))) + K[i+1] + w[i]
    local t2 = bxor(ror(a,2), ror(a,13), ror(a,22)) + bor(band(a, b), band(c, bor(a, b)))
    h = g; g = f; f = e; e = tobit(d + t1); d = c; c = b; b = a; a = tobit(t1 + t2)
  end
  H[1] = tobit(H[1]+a); H[2] = tobit(H[2]+b); H[3] = tobit(H[3]+c); H[4] = tobit(H[4]+d)
  H[5] = tobit(H[5]+e); H[6] = tobit(H[6]+f); H[7] = tobit(H[7]+g); H[8] = tobit(H[8]+h)
end

-- Big-endian words of the 64 bytes of s from byte index `at` into w[0..15].
local function load_block(w, s, at)
  for i = 0, 15 do
    local p = at + i*4
    local a,b,c,d = byte(s, p, p + 3)
    w[i] = bor(lshift(a,24), lshift(b,16), lshift(c,8), d)
  end
end

-- The 8-byte big-endian bit length that ends the padding.
local function length_bytes(len)
  local bits = len * 8
  local hi, lo = math.floor(bits / 4294967296), bits % 4294967296
  return string.char(band(rshift(hi,24),255), band(rshift(hi,16),255), band(rshift(hi,8),255), band(hi,255),
    band(rshift(lo,24),255), band(rshift(lo,16),255), band(rshift(lo,8),255), band(lo,255))
end

local function hex_of(H)
  return tohex(H[1])..tohex(H[2])..tohex(H[3])..tohex(H[4])..tohex(H[5])..tohex(H[6])..tohex(H[7])..tohex(H[8])
end

-- SHA-256 of any byte string (UTF-8 input gives the same digest as node:crypto).
local function sha256(msg)
  local len = #msg
  local extra = 64 - ((len + 9) % 64)
  if extra == 64 then extra = 0 end
  msg = msg .. '\128' .. string.rep('\0', extra) .. length_bytes(len)
  local H, w = initial_state(), {}
  for at = 1, #msg, 64 do
    load_block(w, msg, at)
    compress(H, w)
  end
  return hex_of(H)
end

-- The audit chain step (src/core/audit.ts chainHash): hex SHA-256 of the 32 bytes of
-- prev_hash, the 32 bytes of digest, then seq in decimal ASCII. Exactly two blocks: the
-- first is the two hashes, read straight from hex; the second is seq and the padding.
local function chain_hash(prev_hex, digest_hex, seq)
  -- tonumber(s, 16) would also take '0x', spaces and signs, which node:crypto reads otherwise.
  if #prev_hex ~= 64 or #digest_hex ~= 64 or not string.find(prev_hex, '^%x+$') or not string.find(digest_hex, '^%x+$')
    or not string.find(seq, '^%d+$') or #seq > 55 then
    error('countersign: chain_hash needs two 64-digit hex hashes and a seq under 56 digits')
  end
  local H, w = initial_state(), {}
  for i = 0, 7 do
    w[i] = tobit(tonumber(string.sub(prev_hex, i*8 + 1, i*8 + 8), 16))
    w[i + 8] = tobit(tonumber(string.sub(digest_hex, i*8 + 1, i*8 + 8), 16))
  end
  compress(H, w)
  load_block(w, seq .. '\128' .. string.rep('\0', 55 - #seq) .. length_bytes(64 + #seq), 1)
  compress(H, w)
  return hex_of(H)
end
