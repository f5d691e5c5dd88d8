import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { auditIndexKeys } from '../../adapters/redis/audit-index.ts';
import { assertValidPlatformId, redisKeys } from '../../adapters/redis/keys.ts';

// Key names are a data format: installations upgrade in place, and replicas of two versions
// share one Redis. Every name below is spelled out as the code before keys.ts named it, so a
// change to one fails here.

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const k = redisKeys('acme');

describe('Redis key names', () => {
  it('proposals, audit and its index, idempotency, cards', () => {
    expect([k.tag, k.pattern, k.pending, k.statusCounts, k.audit, k.auditHead]).toEqual([
      '{acme}', '{acme}:*', '{acme}:pending', '{acme}:status_counts', '{acme}:audit', '{acme}:audit:head',
    ]);
    expect(k.proposal('p_01')).toBe('{acme}:proposal:p_01');
    expect(k.idempotency('ops-agent', 'key-1')).toBe(`{acme}:idem:ops-agent:${sha('key-1')}`);
    expect(k.cards('p_01')).toBe('{acme}:cards:p_01');
    expect(k.postingClaim('p_01', 'slack')).toBe('{acme}:cards:p_01:posting:slack');
    const ix = k.auditIndex;
    expect([ix.agent('a'), ix.actor('person:b'), ix.proposal('p_01'), ix.word('db'), ix.overflow]).toEqual([
      '{acme}:audit:ix:agent:a', '{acme}:audit:ix:actor:person:b', '{acme}:audit:ix:proposal:p_01', '{acme}:audit:ix:w:db', '{acme}:audit:ix:w*',
    ]);
    expect(auditIndexKeys(k.audit).word('db')).toBe(ix.word('db'));
  });

  it('token ledger and the development signing key', () => {
    expect([k.token('t_1'), k.proposalToken('p_1'), k.pickup('p_1'), k.agentTokens('ops-agent'), k.executing, k.revokedAgent('ops-agent'), k.restoredAgent('ops-agent'), k.devSigningKey]).toEqual([
      '{acme}:token:t_1', '{acme}:ptoken:p_1', '{acme}:pickup:p_1', '{acme}:agent-tokens:ops-agent', '{acme}:executing', '{acme}:revoked-agent:ops-agent', '{acme}:restored-agent:ops-agent', '{acme}:signing-key',
    ]);
  });

  it('channels, the auth-failure limiter, BullMQ', () => {
    expect(k.changes).toBe('{acme}:changes');
    expect(k.liveUpdates).toBe('{acme}:console:changes');
    expect(k.authFailures('10.0.0.1', 29_000_000)).toBe('{acme}:authfail:10.0.0.1:29000000');
    expect(k.authFailures('::ffff:127.0.0.1', 7)).toBe('{acme}:authfail:::ffff:127.0.0.1:7');
    expect(k.bull).toBe('{acme}:bull');
  });

  it('channel bindings and sign-in: the names the Teams and console adapters used', () => {
    expect([k.channelBindings('teams'), k.boundChannels('teams')]).toEqual(['{acme}:teams:bindings', '{acme}:teams:channels']);
    expect(k.session('sid')).toBe(`{acme}:console:session:${sha('sid')}`);
    expect(k.oneTimeSignIn('tok')).toBe(`{acme}:console:once:${sha('tok')}`);
    expect(k.signInFailures('alice.b_c-1')).toBe('{acme}:console:fail:alice.b_c-1');
  });

  it('platform ids: plain lower-case names only, and none that another store starts its keys with', () => {
    for (const ok of ['slack', 'teams', 'console', 'google-chat', 'x', 'a'.repeat(32)]) expect(() => assertValidPlatformId(ok)).not.toThrow();
    for (const bad of ['', 'Slack', '1slack', '-x', 'a'.repeat(33), 'a:b', 'a}', 'a*', 'a b', 'token', 'agent-tokens', 'revoked-agent', 'restored-agent', 'cards', 'audit', 'bull', 'proposal', 'idem', 'authfail']) {
      expect(() => assertValidPlatformId(bad), bad).toThrow(/invalid platform id/);
    }
    expect(() => k.postingClaim('p_01', 'sla:ck')).toThrow(/invalid platform id/);
  });

  it('a proposal id that would reach another claim in the cards namespace is refused', () => {
    expect(() => k.postingClaim('p_01:posting:teams', 'slack')).toThrow(/invalid proposal id/);
    expect(() => k.postingClaim('', 'slack')).toThrow(/invalid proposal id/);
  });
});
