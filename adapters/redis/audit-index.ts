import { auditSearchText } from '../../src/core/audit-words.ts';
import type { AuditIndexKeys } from './keys.ts';

// The audit log's search index, beside the stream (same `{prefix}` hash tag; the names are
// built here and in keys.ts). Each index is a capped Redis list of audit entry ids, newest first
// (lists, not streams: a new stream key preallocates a 4 KB node, and most words are rare):
//
//   {prefix}:audit:ix:agent:<agent>       events whose `agent` is exactly <agent>
//   {prefix}:audit:ix:actor:<actor>       events whose `actor` is exactly <actor>
//   {prefix}:audit:ix:proposal:<id>       events of one proposal
//   {prefix}:audit:ix:w:<token>           events whose searchable text contains the word <token>
//   {prefix}:audit:ix:w*                  events with more words than were indexed (always candidates)
//
// The commit scripts do not write it: the indexer does, after the commit, in batches
// (audit-index-store.ts, lua/audit-index.lua, src/app/index-audit.ts). The head record says what
// it covers: `ix_from`, the first id indexed, to `ix_to`, the indexer's position. The index only
// proposes candidates: every candidate is read and checked with the same filters and the same
// whole-word match (core/audit-words.ts) as a scan, so a result is exactly what the scan would
// have returned for it. Each index keeps its newest AUDIT_INDEX_CAP ids (LTRIM). Where the index
// does not reach (entries after `ix_to`, not indexed yet; and below what it covers: trimmed, or
// written before `ix_from`) search scans.

/** Ids kept per index list (trimmed back to this once it is 100 longer); a list this long may have been trimmed. */
export const AUDIT_INDEX_CAP = 2000;
/** Words indexed per event; an event with more goes to the overflow index as well. */
export const MAX_TOKENS_PER_EVENT = 256;
/** Longer words are indexed (and looked up) by their first MAX_TOKEN_LENGTH characters. */
export const MAX_TOKEN_LENGTH = 64;
const MIN_TOKEN_LENGTH = 2;

/**
 * Words in nearly every event (the JSON keys of proposals and decisions, their default values,
 * actor prefixes): not indexed, so a search for one of them alone scans, which finds them
 * at once. Only ever add to this list: a word taken off it would have no index entries for
 * the events written before.
 */
export const UNINDEXED_WORDS: ReadonlySet<string> = new Set([
  'intent', 'action', 'tool', 'operation', 'target', 'parameters', 'context', 'data', 'sensitivity',
  'destination', 'environment', 'reversible', 'value', 'amount', 'currency', 'idempotency', 'key',
  'effect', 'risk', 'rule', 'reasons', 'route', 'approvals', 'required', 'ttl', 'ms', 'approvers',
  'null', 'true', 'false', 'internal', 'external', 'production', 'agent', 'person', 'system',
]);

/**
 * The indexed words of (already lower-cased) text: runs of a-z 0-9, at least 2 long, cut at
 * 64, deduplicated, without UNINDEXED_WORDS. The writer and the search use the same function.
 */
export function searchTokens(lowerText: string): string[] {
  const out = new Set<string>();
  for (const m of lowerText.matchAll(/[a-z0-9]+/g)) {
    const t = m[0];
    if (t.length >= MIN_TOKEN_LENGTH && !UNINDEXED_WORDS.has(t)) out.add(t.length > MAX_TOKEN_LENGTH ? t.slice(0, MAX_TOKEN_LENGTH) : t);
  }
  return [...out];
}

/**
 * The index lists one event goes to: its agent, actor and proposal, the overflow list when it
 * has more words than are indexed, and its words.
 */
export function indexKeys(index: AuditIndexKeys, e: { agent: string | null; actor: string; proposal_id: string | null }, lowerText: string): string[] {
  const keys: string[] = [];
  if (e.agent !== null) keys.push(index.agent(e.agent));
  keys.push(index.actor(e.actor));
  if (e.proposal_id !== null) keys.push(index.proposal(e.proposal_id));
  const tokens = searchTokens(lowerText);
  if (tokens.length > MAX_TOKENS_PER_EVENT) keys.push(index.overflow);
  for (const t of tokens.slice(0, MAX_TOKENS_PER_EVENT)) keys.push(index.word(t));
  return keys;
}

// The names live in keys.ts with every other key; re-exported for the index's readers.
export { auditIndexKeys, type AuditIndexKeys } from './keys.ts';

/**
 * The index lists of a stored entry (XRANGE fields), from its fields as stored: `data` is kept
 * as the writer sent it, so this is the writer's own text. The indexer pushes the entry's id to
 * these lists, and retention pops it from the same ones.
 */
export function entryIndexLists(index: AuditIndexKeys, fields: readonly string[]): string[] {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const v = (name: string) => f.get(name) ?? '';
  const nullable = (name: string) => (v(name) === '' ? null : v(name));
  return indexKeys(index, { agent: nullable('agent'), actor: v('actor'), proposal_id: nullable('proposal_id') }, auditSearchText(v('type'), v('actor'), v('proposal_id'), v('agent'), v('data')));
}
