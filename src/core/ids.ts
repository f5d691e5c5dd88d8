import { randomBytes } from 'node:crypto';

// Time-ordered ids (like ULID): they sort by creation, carry no ":" and are never all
// digits, which BullMQ job ids require.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function encode(value: bigint, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(value % 32n)]! + out;
    value /= 32n;
  }
  return out;
}

export function newId(prefix: string, nowMs: number): string {
  const random = BigInt(`0x${randomBytes(10).toString('hex')}`);
  return `${prefix}_${encode(BigInt(nowMs), 10)}${encode(random, 16)}`;
}

export const PROPOSAL_ID_PATTERN = /^p_[0-9a-z]{26}$/;

// The policy's ids (agents, people, groups, routes) travel in HTTP headers, Redis keys and chat
// buttons: keep them boring. Here, not in policy/schema.ts, so that the schema's parts
// (fatigue-schema.ts, escalation-schema.ts), which schema.ts imports, can use them too.
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const ID_RULE = '1-100 letters, digits, ".", "_" or "-", starting with a letter or digit';
