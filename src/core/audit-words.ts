// What an audit word search means, in one place: every store and every path of a search (an
// index list, the other words of the query, a filter's candidates, a scan, entries older than
// any index) asks these two functions, so a word matches the same whole word everywhere.

const ALNUM = /[a-z0-9]/;

/** The text a word search looks in, lower-cased: type, actor, proposal id, agent and the data's canonical JSON. */
export function auditSearchText(type: string, actor: string, proposalId: string, agent: string, data: string): string {
  return [type, actor, proposalId, agent, data].join('\n').toLowerCase();
}

/**
 * True when `word` (lower-cased) occurs in `text` with no letter or digit glued to either end:
 * `refund` is in "Refund invoice" and "approval_refund", not in "refunds"; `person:alice` is in
 * "person:alice". Only a-z and 0-9 glue, as only they make the index's words (audit-index.ts).
 */
export function hasWord(text: string, word: string): boolean {
  if (word === '') return true;
  const gluedStart = ALNUM.test(word[0]!);
  const gluedEnd = ALNUM.test(word.at(-1)!);
  for (let i = text.indexOf(word); i >= 0; i = text.indexOf(word, i + 1)) {
    const before = text[i - 1];
    const after = text[i + word.length];
    if ((!gluedStart || before === undefined || !ALNUM.test(before)) && (!gluedEnd || after === undefined || !ALNUM.test(after))) return true;
  }
  return false;
}

/** The query's words as every store compares them: trimmed, lower-cased, empty ones dropped. */
export function queryWords(words: readonly string[]): string[] {
  return words.map((w) => w.trim().toLowerCase()).filter((w) => w !== '');
}

/** Every word of the query is in `text`, whole. */
export function hasEveryWord(text: string, words: readonly string[]): boolean {
  return words.every((w) => hasWord(text, w));
}
