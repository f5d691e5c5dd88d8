import { ChainVerifier, type ChainVerdict } from '../core/audit.ts';
import type { AuditLog, AuditQuery, StoredAuditEvent } from '../core/ports.ts';
import type { Viewer } from './proposals.ts';

export const MAX_AUDIT_LIMIT = 500;

/** Agents see only their own history, whatever they ask for. */
export async function searchAudit(
  audit: AuditLog,
  viewer: Viewer,
  query: AuditQuery,
): Promise<{ events: StoredAuditEvent[]; next: string | null }> {
  const scoped: AuditQuery = viewer.kind === 'agent' ? { ...query, agent: viewer.id } : query;
  return audit.search({ ...scoped, limit: Math.min(Math.max(1, scoped.limit), MAX_AUDIT_LIMIT) });
}

/** Recomputes the whole chain; names the first entry that does not fit. */
export async function verifyAudit(audit: AuditLog, onProgress?: (count: number) => void): Promise<ChainVerdict> {
  const verifier = new ChainVerifier();
  let last: StoredAuditEvent | null = null;
  for await (const event of audit.scan(1000)) {
    const problem = verifier.check(event);
    if (problem !== null) return { ok: false, count: verifier.count, seq: event.seq, id: event.id, reason: problem };
    if (onProgress !== undefined && verifier.count % 10_000 === 0) onProgress(verifier.count);
    last = event;
  }
  // Deleting the newest entries leaves a chain that holds; the head record says how far it went.
  const head = await audit.head();
  const lastSeq = last?.seq ?? 0;
  if (head !== null && (head.seq !== lastSeq || head.hash !== verifier.head)) {
    return {
      ok: false,
      count: verifier.count,
      seq: lastSeq + 1,
      id: last?.id ?? '(none)',
      reason: `the log ends at seq ${lastSeq} but the head records seq ${head.seq}: entries after stream id ${last?.id ?? '(start)'} are missing`,
    };
  }
  return { ok: true, count: verifier.count, head: verifier.head };
}
