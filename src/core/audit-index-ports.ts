// The port of the audit search indexer (src/app/index-audit.ts). The search index only speeds
// `audit search` up (a search returns exactly what a scan would), so it is kept off the commit
// path: the scripts that record a change append its events and nothing else, and one leader
// indexes what they appended afterwards, in batches. What an index holds is the store's business
// (a store without one indexes nothing and still moves its position).

/**
 * `indexed`: how many entries this step indexed (0: none after the position); `fenced`: the
 * caller does not hold the sealer's lease (nothing read or written); `moved`: the position is no
 * longer the one this step read, because the same batch was written already (a step repeated
 * after a lost reply, or by a leader that lost its lease meanwhile) or retention trimmed past it:
 * nothing written, the next step reads from where the position is now.
 */
export type AuditIndexStep = { indexed: number } | 'fenced' | 'moved';

export interface AuditIndexStore {
  /**
   * Indexes up to `count` entries after the position, oldest first, whatever their content (an
   * edited entry is indexed as it reads now: search checks every candidate against its filters),
   * and moves the position to the last of them: in one write, only while `owner` holds the audit
   * sealer's lease and the position is where this step read it, so no entry is indexed twice and
   * none that retention removed before its step is ever indexed.
   */
  indexNext(owner: string, count: number): Promise<AuditIndexStep>;
  /** The store's id of the last entry the index has dealt with (indexed, or removed by retention); null before the first. */
  position(): Promise<string | null>;
}
