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
  const broken = (reason: string): ChainVerdict => ({ ok: false, count: verifier.count, seq: lastSeq + 1, id: last?.id ?? '(none)', reason });
  if (head === null) {
    return lastSeq === 0 ? { ok: true, count: 0, head: verifier.head } : broken(`the log ends at seq ${lastSeq} but the head record is missing`);
  }
  if (head.seq > lastSeq) {
    return broken(`the log ends at seq ${lastSeq} but the head records seq ${head.seq}: entries after stream id ${last?.id ?? '(start)'} are missing`);
  }
  if (head.seq < lastSeq) return broken(`the log ends at seq ${lastSeq} but the head records seq ${head.seq}: the head record was moved back`);
  // Only writers of steps 1 and 2 set the head's hash: it is checked while one of them wrote last.
  const legacy = verifier.legacyHead;
  if (legacy !== null && head.hash !== legacy) {
    return { ok: false, count: verifier.count - 1, seq: lastSeq, id: last?.id ?? '(none)', reason: "the head record's hash does not match this entry's (the last): one of them was rewritten" };
  }
  return { ok: true, count: verifier.count, head: verifier.head };
}
