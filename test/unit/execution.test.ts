import { createHash, generateKeyPairSync } from 'node:crypto';
import { decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { threadReply as executionReply } from '../../src/core/event-text.ts';
import { renderReply as renderSlackReply } from '../../adapters/slack/blocks.ts';
import { renderReply as renderTeamsReply } from '../../adapters/teams/cards.ts';
import {
  actionDigest,
  cancelApproved,
  claimExecution,
  failBeforeStart,
  finishExecution,
  recordTokenIssued,
  redactSecrets,
  responseExcerpt,
  withdrawUnlessStillAuthorised,
} from '../../src/core/execution.ts';
import type { Authority } from '../../src/core/lifecycle.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { createJwtSigner, generateSigningKey, parseSigningKeys } from '../../adapters/tokens/jwt-signer.ts';

const NOW = 1_800_000_000_000;

function approved(overrides: Partial<Proposal> = {}): Proposal {
  return {
    id: 'p_01m860000000000000000000aa',
    agent: 'ops-agent',
    idempotency_key: null,
    intent: 'deploy',
    action: { tool: 'deploy', operation: 'run', target: 'svc', parameters: { b: 1, a: [1, 'x'] } },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    decision: { effect: 'allow', risk: 'low', rule: 'r', reasons: [], route: null, approvers: null, approvals_required: 0, ttl_ms: 0 },
    status: 'approved',
    created_at: NOW,
    expires_at: null,
    approvals: [{ person: 'alice', platform: 'slack', vote: 'approve', reason: null, at: NOW }],
    resolution: { status: 'approved', by: 'alice', reason: null, at: NOW },
    version: 2,
    ...overrides,
  };
}

/** The policy in force lets everyone who approved count. */
const everyone: Authority = { personExists: () => true, isApprover: () => true, isSponsor: () => false, agentExists: () => true };

const issued = (p: Proposal, expiresAt = NOW + 60_000) => recordTokenIssued(p, { mode: 'executor', jti: 't_1', expires_at: expiresAt, audience: 'deploy' }, NOW).next!;

describe('action digest', () => {
  it('is base64url SHA-256 of the RFC 8785 form, whatever the key order', () => {
    const a = { tool: 'deploy', operation: 'run', target: 'svc', parameters: { b: 1, a: [1, 'x'] } };
    const b = { parameters: { a: [1, 'x'], b: 1 }, target: 'svc', operation: 'run', tool: 'deploy' };
    const expected = createHash('sha256').update('{"operation":"run","parameters":{"a":[1,"x"],"b":1},"target":"svc","tool":"deploy"}').digest('base64url');
    expect(actionDigest(a)).toBe(expected);
    expect(actionDigest(b)).toBe(expected);
    expect(expected).not.toMatch(/[=+/]/);
  });
});

describe('redaction', () => {
  it.each([
    ['Authorization: Bearer abc.def-ghi', 'abc.def-ghi'],
    ['token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here', 'eyJhbGciOiJFZERTQSJ9'],
    ['https://x/?key=s3cr3t&x=1', 's3cr3t'],
    ['{"password": "hunter2"}', 'hunter2'],
    ['secret=abc123;', 'abc123'],
    ['id 0123456789abcdef0123456789abcdef01 ok', '0123456789abcdef0123456789abcdef01'],
    ['blob QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZn==', 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZn'],
  ])('removes the secret from %s', (text, secret) => {
    expect(redactSecrets(text)).not.toContain(secret);
  });

  it('keeps ordinary text and cuts the excerpt to 500 characters after redacting', () => {
    expect(redactSecrets('{"done":true,"count":3}')).toBe('{"done":true,"count":3}');
    const long = `${'x '.repeat(249)}Bearer ${'t'.repeat(100)}`;
    const excerpt = responseExcerpt(long);
    expect(excerpt.length).toBeLessThanOrEqual(500);
    expect(excerpt).not.toContain('tttt');
  });
});

describe('execution transitions', () => {
  it('records the token once, without the token itself', () => {
    const step = recordTokenIssued(approved(), { mode: 'executor', jti: 't_1', expires_at: NOW + 1000, audience: 'deploy' }, NOW);
    expect(step.next!.execution).toMatchObject({ mode: 'executor', token_id: 't_1', started_at: null });
    expect(step.events[0]).toMatchObject({ type: 'token_issued', data: { jti: 't_1', approvers: ['alice'] } });
    expect(recordTokenIssued(step.next!, { mode: 'executor', jti: 't_2', expires_at: NOW, audience: 'deploy' }, NOW).next).toBeNull();
  });

  it('claims approved -> executing once, and never with an expired token', () => {
    const p = issued(approved());
    const claim = claimExecution(p, 'system', NOW + 1, everyone);
    expect(claim.next!.status).toBe('executing');
    expect(claim.events.map((e) => e.type)).toEqual(['execution_started']);
    expect(claimExecution(claim.next!, 'system', NOW + 2, everyone).outcome).toEqual({ claimed: false, why: 'already executing', withdrawn: false });
    expect(claimExecution(issued(approved(), NOW + 10), 'system', NOW + 10, everyone).outcome).toEqual({ claimed: false, why: 'token_expired', withdrawn: false });
  });

  it('maps results: 2xx succeeded, other status failed, timeout and lost connections unknown', () => {
    const running = claimExecution(issued(approved()), 'system', NOW, everyone).next!;
    const finish = (r: Parameters<typeof finishExecution>[1]) => finishExecution(running, r, 'system', NOW + 50).next!;
    expect(finish({ kind: 'response', status_code: 204, body: '', duration_ms: 5 })).toMatchObject({ status: 'succeeded', execution: { outcome: 'succeeded', status_code: 204 } });
    expect(finish({ kind: 'response', status_code: 502, body: 'bad', duration_ms: 5 })).toMatchObject({ status: 'failed', execution: { outcome: 'failed', reason: 'http_502' } });
    expect(finish({ kind: 'timeout', duration_ms: 1000 })).toMatchObject({ status: 'failed', execution: { outcome: 'unknown', reason: 'timeout' } });
    expect(finish({ kind: 'lost', error: 'ECONNRESET', duration_ms: 3 })).toMatchObject({ status: 'failed', execution: { outcome: 'unknown', reason: 'connection_lost' } });
    expect(finish({ kind: 'interrupted', why: 'interrupted' })).toMatchObject({ status: 'failed', execution: { outcome: 'unknown', duration_ms: 50 } });
    const done = finish({ kind: 'timeout', duration_ms: 1 });
    expect(finishExecution(done, { kind: 'timeout', duration_ms: 1 }, 'system', NOW).next).toBeNull();
  });

  it('fails or cancels only what has not started, keeping the decision', () => {
    const p = issued(approved());
    expect(failBeforeStart(p, 'token_expired', NOW).next).toMatchObject({ status: 'failed', execution: { outcome: 'not_run', reason: 'token_expired' } });
    const cancelled = cancelApproved(p, 'admin', 'agent revoked', NOW).next!;
    expect(cancelled).toMatchObject({ status: 'cancelled', resolution: { status: 'approved', by: 'alice' }, execution: { outcome: 'not_run' } });
    const running = claimExecution(p, 'system', NOW, everyone).next!;
    expect(failBeforeStart(running, 'x', NOW).next).toBeNull();
    expect(cancelApproved(running, 'admin', 'x', NOW).next).toBeNull();
  });

  it("says what happened in the thread with the executor's words exact; each platform's renderer neutralises them", () => {
    const reply = executionReply(approved(), {
      type: 'execution_finished',
      at: '',
      proposal_id: 'p',
      agent: 'ops-agent',
      actor: 'system',
      data: { status: 'succeeded', outcome: 'succeeded', http_status: 200, duration_ms: 120, response_excerpt: 'refund re_INV-5665\n<!channel> *done* @here' },
    });
    // Core text keeps ids such as re_INV-5665 as they are (the console showed "re INV-5665").
    expect(reply!.text).toBe('Succeeded in 0.12 s, HTTP 200: "refund re_INV-5665 <!channel> *done* @here"');
    const slack = renderSlackReply(reply!).text;
    expect(slack).not.toMatch(/<!channel>|\*done\*|@here/);
    expect(renderTeamsReply(reply!).text).not.toMatch(/\*done\*/);
    expect(renderTeamsReply(reply!).text).toContain('re_INV-5665');
  });
});

describe('approvals withdrawn by the policy in force', () => {
  // Approved by alice (one approval needed); the policy in force no longer has her.
  const byAlice = (overrides: Partial<Proposal> = {}) =>
    issued(approved({ decision: { effect: 'approve', risk: 'high', rule: 'r', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 60_000 }, ...overrides }));
  const withoutAlice: Authority = { personExists: (p) => p !== 'alice', isApprover: (p) => p !== 'alice', isSponsor: () => false, agentExists: () => true };

  it('the claim ends it failed / not_run / approval_withdrawn instead of starting it, keeping the decision', () => {
    const step = claimExecution(byAlice(), 'agent:ops-agent', NOW + 1, withoutAlice);
    expect(step.outcome).toEqual({ claimed: false, why: 'approval_withdrawn', withdrawn: true });
    expect(step.next).toMatchObject({ status: 'failed', resolution: { status: 'approved', by: 'alice' }, execution: { outcome: 'not_run', reason: 'approval_withdrawn', started_at: null } });
    expect(step.events.map((e) => e.type)).toEqual(['approval_void', 'execution_finished']);
    expect(step.events[0]).toMatchObject({ actor: 'policy', data: { person: 'alice', why: 'unknown_person', approvals: 0, required: 1 } });
    expect(step.events[1]).toMatchObject({ data: { status: 'failed', outcome: 'not_run', reason: 'approval_withdrawn', void_approvers: ['alice'] } });
    expect(executionReply(step.next!, step.events[1]!)!.text).toBe('Not run: its approvals no longer make the quorum under the current policy (no longer qualified: alice)');
  });

  it('the claim goes on when the approvals still hold, and for what the policy allowed by itself', () => {
    expect(claimExecution(byAlice(), 'system', NOW + 1, everyone).outcome).toEqual({ claimed: true, why: null, withdrawn: false });
    // approved() is a policy allow (effect allow): nobody's approval to withdraw.
    expect(claimExecution(issued(approved()), 'system', NOW + 1, withoutAlice).outcome).toEqual({ claimed: true, why: null, withdrawn: false });
  });

  it('an execution whose token is out only records the void approvals; one whose token never left ends not_run', () => {
    const running = claimExecution(byAlice(), 'agent:ops-agent', NOW + 1, everyone).next!;
    const out = withdrawUnlessStillAuthorised(running, withoutAlice, NOW + 2, true);
    expect(out.outcome).toEqual({ withdrawn: true });
    expect(out.next).toBeNull();
    expect(out.events.map((e) => e.type)).toEqual(['approval_void']);
    const kept = withdrawUnlessStillAuthorised(running, withoutAlice, NOW + 2, false);
    expect(kept.next).toMatchObject({ status: 'failed', execution: { outcome: 'not_run', reason: 'approval_withdrawn' } });
    expect(withdrawUnlessStillAuthorised(byAlice(), withoutAlice, NOW + 2, true).next).toMatchObject({ status: 'failed' });
    expect(withdrawUnlessStillAuthorised(running, everyone, NOW + 2, true)).toEqual({ outcome: { withdrawn: false }, next: null, events: [] });
    const finished = finishExecution(running, { kind: 'timeout', duration_ms: 1 }, 'system', NOW + 3).next!;
    expect(withdrawUnlessStillAuthorised(finished, withoutAlice, NOW + 4, false)).toEqual({ outcome: { withdrawn: false }, next: null, events: [] });
  });
});

describe('an agent the policy in force no longer names', () => {
  const withoutAgent: Authority = { ...everyone, agentExists: (a) => a !== 'ops-agent' };

  it('the claim ends it failed / not_run / agent_removed, approved by people or allowed by the policy', () => {
    for (const p of [issued(approved()), issued(approved({ decision: { effect: 'approve', risk: 'high', rule: 'r', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 60_000 } }))]) {
      const step = claimExecution(p, 'system', NOW + 1, withoutAgent);
      expect(step.outcome).toEqual({ claimed: false, why: 'agent_removed', withdrawn: true });
      expect(step.next).toMatchObject({ status: 'failed', resolution: { status: 'approved' }, execution: { outcome: 'not_run', reason: 'agent_removed', started_at: null } });
      expect(step.events).toMatchObject([{ type: 'execution_finished', actor: 'policy', data: { status: 'failed', outcome: 'not_run', reason: 'agent_removed' } }]);
      expect(executionReply(step.next!, step.events[0]!)!.text).toBe('Not run: its agent is no longer in the policy');
    }
  });

  it('an execution whose token is out records the token revoked; one whose token never left ends not_run', () => {
    const running = claimExecution(issued(approved()), 'agent:ops-agent', NOW + 1, everyone).next!;
    const out = withdrawUnlessStillAuthorised(running, withoutAgent, NOW + 2, true);
    expect(out).toMatchObject({ outcome: { withdrawn: true }, next: null, events: [{ type: 'token_revoked', actor: 'policy', data: { jti: 't_1', reason: 'agent_removed' } }] });
    expect(executionReply(running, out.events[0]!)!.text).toContain('Execution token revoked: agent ops-agent is no longer in the policy');
    expect(withdrawUnlessStillAuthorised(running, withoutAgent, NOW + 2, false).next).toMatchObject({ status: 'failed', execution: { reason: 'agent_removed' } });
  });
});

describe('TOKEN_SIGNING_KEY formats', () => {
  it('accepts a private JWK, a JWK set for rotation and PKCS8 PEM; publishes public keys only', async () => {
    const dev = await generateSigningKey();
    expect((await parseSigningKeys(dev))[0]!.kid).toMatch(/^dev-/);

    const old = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const oldPublic = { ...(await exportJWK(old.publicKey)), kid: 'old' };
    const set = JSON.stringify({ keys: [{ ...JSON.parse(dev), kid: 'new' }, oldPublic] });
    const signer = await createJwtSigner(set, () => 'https://cs.example');
    expect(signer.jwks().keys.map((k) => k['kid'])).toEqual(['new', 'old']);
    expect(signer.jwks().keys.every((k) => !('d' in k))).toBe(true);
    const claims = { sub: 'a', aud: 'deploy', jti: 't_1', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60, proposal_id: 'p', action_digest: 'd', approvers: [] };
    const token = await signer.sign(claims);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', kid: 'new' });
    expect(await signer.verify(token, Date.now())).toMatchObject({ ...claims, iss: 'https://cs.example' });
    expect(await signer.verify(token, Date.now() + 120_000)).toBeNull();
    expect(await signer.verify(token, Date.now() + 120_000, { ignoreExpiry: true })).not.toBeNull();

    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = `${privateKey.export({ type: 'pkcs8', format: 'pem' }) as string}${publicKey.export({ type: 'spki', format: 'pem' }) as string}`;
    // Two keys from the same pair have the same thumbprint: refused as a duplicate kid.
    await expect(parseSigningKeys(pem)).rejects.toThrow(/two keys have kid/);
    const single = await parseSigningKeys((privateKey.export({ type: 'pkcs8', format: 'pem' }) as string).replace(/\n/g, '\\n'));
    expect(single).toHaveLength(1);
  });

  it('refuses bad keys without echoing them', async () => {
    const secretish = 'super-secret-material-0123456789';
    await expect(parseSigningKeys(secretish)).rejects.toThrow(/^TOKEN_SIGNING_KEY: must be/);
    await expect(parseSigningKeys(secretish)).rejects.not.toThrow(new RegExp(secretish));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(parseSigningKeys(rsa)).rejects.toThrow(/not an Ed25519/);
    const pub = JSON.stringify({ ...(await exportJWK((await generateKeyPair('EdDSA', { crv: 'Ed25519' })).publicKey)) });
    await expect(parseSigningKeys(pub)).rejects.toThrow(/first key signs/);
  });
});
