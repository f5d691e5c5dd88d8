import type { Cluster, Redis } from 'ioredis';
import { seal } from '../../src/core/audit.ts';
import { inForce, type Absence } from '../../src/core/away.ts';
import type { AwayStore } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';
import { eventArgs, runWithKeys } from './scripts.ts';

// Who is away: one hash `{prefix}:away`, person -> JSON {delegate, until, set_at}. An entry
// past its `until` reads as absent and stays until its person sets or clears one again (at
// most one field per person of the policy). Setting and ending one are scripts that append
// the audit event in the same step (away-set.lua, away-clear.lua).

/** The stored form: fixed key order, so away-clear.lua can compare it byte for byte with what was read. */
function stored(a: Absence): string {
  return JSON.stringify({ delegate: a.delegate, until: a.until, set_at: a.set_at });
}

function parse(raw: string | null | undefined): Absence | null {
  if (raw === null || raw === undefined) return null;
  try {
    const v = JSON.parse(raw) as Record<string, unknown>;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
    const { delegate, until, set_at } = v;
    if (typeof delegate !== 'string' || typeof until !== 'number' || typeof set_at !== 'number') return null;
    return { delegate, until, set_at };
  } catch {
    return null;
  }
}

export function createRedisAwayStore(redis: Redis | Cluster, opts: { prefix: string }): AwayStore {
  const keys = redisKeys(opts.prefix);
  const scriptKeys = [keys.away, keys.audit, keys.auditHead];
  return {
    async set(person, absence, now, events) {
      const reply = (await runWithKeys(redis, 'countersignAwaySet', scriptKeys, [person, stored(absence), absence.delegate, String(now), ...eventArgs(events.map(seal))])) as string[];
      if (reply[0] === 'delegate_away') return { kind: 'delegate_away', until: Number(reply[1]) };
      return { kind: 'set' };
    },
    async clear(person, absence, events) {
      return (await runWithKeys(redis, 'countersignAwayClear', scriptKeys, [person, stored(absence), ...eventArgs(events.map(seal))])) === 1;
    },
    async get(person, now) {
      const a = parse(await redis.hget(keys.away, person));
      return a !== null && inForce(a, now) ? a : null;
    },
    async list(now) {
      const all = await redis.hgetall(keys.away);
      const out = new Map<string, Absence>();
      for (const person of Object.keys(all).sort()) {
        const a = parse(all[person]);
        if (a !== null && inForce(a, now)) out.set(person, a);
      }
      return out;
    },
  };
}
