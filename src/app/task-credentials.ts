import { auditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import type { CredentialIssuer, CredentialLedger, SecretSealer } from '../core/credential-ports.ts';
import { isFinal } from '../core/lifecycle.ts';
import type { Proposal } from '../core/proposal.ts';
import type { CommitSubscriber } from './after-commit.ts';
import type { ExecutionDeps } from './execution-deps.ts';
import { replyToEvents } from './notify-platforms.ts';

// Just-in-time credentials (issue 15): a rule's `credentials: {issuer, ttl}` gives an approved
// (or allowed) task a login of its own on a downstream, made by the issuer of the entry's kind.
// - Issued with the execution token (issueExecution), recorded in the ledger BEFORE the issuer
//   runs (a crash mid-issue leaves a record the sweep revokes), its secret sealed until handed
//   over once, the way the token is (the agent's poll read, the callback).
// - Revoked when the task ends (outcome reported, failed, not run, cancelled), when its ttl is
//   up (the sweep, after a restart too), and by the kill switch; each issue and revoke is an
//   audit event and a thread reply, never the secret.

export interface CredentialDeps {
  /** By kind (`postgres`, `redis-acl`). */
  issuers: ReadonlyMap<string, CredentialIssuer>;
  ledger: CredentialLedger;
  sealer: SecretSealer;
}

/** What the agent receives: the issuer's secret (username, password, url), which entry, until when. */
export type HandedCredential = Record<string, string>;

type RevokeReason = 'task_finished' | 'expired' | 'cancelled' | 'not_run' | 'agent_revoked' | 'failed_to_issue';

function issuerOf(x: ExecutionDeps, issuerName: string) {
  const spec = x.app.policy.credentials.get(issuerName);
  const issuer = spec === undefined ? undefined : x.credentials?.issuers.get(spec.kind);
  return spec === undefined || issuer === undefined ? null : { spec, issuer };
}

/**
 * Issues the approved proposal's credential. True when it is issued (or was already, by a
 * replica or an earlier attempt), false when it could not be: then nothing usable is left.
 */
export async function issueTaskCredential(x: ExecutionDeps, p: Proposal): Promise<boolean> {
  const wanted = p.decision.credentials;
  if (wanted === undefined || x.credentials === undefined) return true;
  const { app } = x;
  const found = issuerOf(x, wanted.issuer);
  if (found === null) {
    app.logger.error({ proposal_id: p.id, issuer: wanted.issuer }, 'no credential issuer for this policy entry');
    return false;
  }
  const { spec, issuer } = found;
  const request = { proposal_id: p.id, agent: p.agent, expires_at: app.clock.now() + wanted.ttl_ms };
  const handle = issuer.handleFor(request);
  if (!(await x.credentials.ledger.reserve({ proposal_id: p.id, agent: p.agent, issuer: spec.name, handle, expires_at: request.expires_at }))) {
    return (await x.credentials.ledger.get(p.id))?.state === 'live';
  }
  let issued;
  try {
    issued = await issuer.issue(spec, request);
  } catch (e) {
    app.logger.error({ proposal_id: p.id, issuer: spec.name, error: (e as Error).message }, 'could not issue the task credential');
    // It may exist in part (a reply lost on the way back): removed like any other.
    await revokeTaskCredential(x, p, 'failed_to_issue').catch(() => undefined);
    return false;
  }
  const handed: HandedCredential = { ...issued.secret, issuer: spec.name, expires_at: iso(issued.expires_at) };
  await x.credentials.ledger.savePickup(p.id, x.credentials.sealer.seal(JSON.stringify(handed), p.id));
  // A revocation (kill switch, cancel, sweep) that ran while the login was being made found
  // nothing to drop on the downstream and recorded it revoked: the login just made would
  // outlive its task with no live record for the sweep to find. Dropped here instead.
  if ((await x.credentials.ledger.get(p.id))?.state !== 'live') {
    await issuer.revoke(spec, issued.handle).catch((e: unknown) =>
      app.logger.error({ proposal_id: p.id, issuer: spec.name, handle: issued.handle, error: (e as Error).message }, 'a login made while its credential was being revoked could not be dropped'),
    );
    return false;
  }
  const events = [auditEvent('credential_issued', { at: iso(app.clock.now()), proposal_id: p.id, agent: p.agent, actor: 'system' }, { issuer: spec.name, handle: issued.handle, expires_at: iso(issued.expires_at) })];
  await app.audit.append(events);
  await replyToEvents(app, p, events, 'credential-issued');
  return true;
}

/** The sealed credential for the hand-over: taken (a poll read, once) or read (a callback, dropped once delivered). */
export async function credentialForHandOver(x: ExecutionDeps, p: Proposal, take: boolean): Promise<HandedCredential | null> {
  if (p.decision.credentials === undefined || x.credentials === undefined) return null;
  const sealed = await x.credentials.ledger.pickup(p.id, take);
  if (sealed === null) return null;
  const plain = x.credentials.sealer.open(sealed, p.id);
  return plain === null ? null : (JSON.parse(plain) as HandedCredential);
}

/** Puts back a credential taken by a read that was never written (see returnExecutionToken). */
export async function returnCredential(x: ExecutionDeps, p: Proposal, credential: HandedCredential): Promise<void> {
  if (x.credentials === undefined) return;
  await x.credentials.ledger.savePickup(p.id, x.credentials.sealer.seal(JSON.stringify(credential), p.id));
}

/**
 * Removes the proposal's credential on the downstream (ending its sessions), then records it
 * revoked, once. A downstream that cannot be reached leaves it live: the sweep tries again at
 * its expiry and after.
 */
export async function revokeTaskCredential(x: ExecutionDeps, p: Pick<Proposal, 'id' | 'agent'>, reason: RevokeReason): Promise<boolean> {
  if (x.credentials === undefined) return false;
  const { app } = x;
  const record = await x.credentials.ledger.get(p.id);
  if (record === null || record.state !== 'live') return false;
  const found = issuerOf(x, record.issuer);
  if (found === null) {
    app.logger.error({ proposal_id: p.id, issuer: record.issuer }, 'a live credential has no issuer in the policy in force: it cannot be revoked by countersign');
    return false;
  }
  // With its pick-up there, the issue had finished: the revoke below drops the real login.
  const issueDone = (await x.credentials.ledger.pickup(p.id, false)) !== null;
  await found.issuer.revoke(found.spec, record.handle);
  if (!(await x.credentials.ledger.markRevoked(p.id))) return false;
  if (!issueDone) {
    // An issue in flight may have made the login after the revoke above looked (and found
    // none), and checked the record while it was still live: dropped again, now that the
    // record says revoked (see issueTaskCredential). Idempotent when it is already gone.
    await found.issuer.revoke(found.spec, record.handle).catch((e: unknown) =>
      app.logger.error({ proposal_id: p.id, issuer: record.issuer, handle: record.handle, error: (e as Error).message }, 'a revoked credential could not be dropped a second time'),
    );
  }
  const events = [auditEvent('credential_revoked', { at: iso(app.clock.now()), proposal_id: p.id, agent: record.agent, actor: 'system' }, { issuer: record.issuer, handle: record.handle, reason })];
  await app.audit.append(events);
  const full = await app.store.get(p.id);
  if (full !== null) await replyToEvents(app, full, events, `credential-revoked`);
  return true;
}

function revokeReason(p: Proposal): RevokeReason {
  if (p.status === 'cancelled') return 'cancelled';
  return p.execution?.outcome === 'not_run' ? 'not_run' : 'task_finished';
}

/** After-commit: a task that ended (reported, failed, not run, cancelled) loses its credential. */
export function revokeWhenTaskEnds(x: ExecutionDeps): CommitSubscriber {
  return {
    name: 'revoke-task-credential',
    async onCommitted({ before, after }) {
      if (after.decision.credentials === undefined || !isFinal(after.status) || (before !== null && isFinal(before.status))) return;
      await revokeTaskCredential(x, after, revokeReason(after));
    },
  };
}

/** The sweep: credentials whose ttl is up are revoked (also those a crashed process left). */
export async function sweepCredentials(x: ExecutionDeps, limit = 200): Promise<number> {
  if (x.credentials === undefined) return 0;
  let revoked = 0;
  for (const id of await x.credentials.ledger.due(x.app.clock.now(), limit)) {
    const record = await x.credentials.ledger.get(id);
    try {
      if (await revokeTaskCredential(x, { id, agent: record?.agent ?? '' }, 'expired')) revoked++;
    } catch (e) {
      x.app.logger.warn({ proposal_id: id, error: (e as Error).message }, 'an expired credential could not be revoked yet; the sweep tries again');
    }
  }
  return revoked;
}

/** The kill switch: every live credential of the agent is revoked. */
export async function revokeAgentCredentials(x: ExecutionDeps, agent: string): Promise<number> {
  if (x.credentials === undefined) return 0;
  let revoked = 0;
  for (const id of await x.credentials.ledger.liveOf(agent)) {
    try {
      if (await revokeTaskCredential(x, { id, agent }, 'agent_revoked')) revoked++;
    } catch (e) {
      x.app.logger.error({ proposal_id: id, error: (e as Error).message }, 'a credential of a revoked agent could not be revoked yet; the sweep tries again');
    }
  }
  return revoked;
}
