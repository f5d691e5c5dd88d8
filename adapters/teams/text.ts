// Making untrusted text (agent-supplied intent, targets, parameters; people's reasons) safe
// for Teams. Adaptive Card TextBlocks and FactSet values render a markdown subset (bold,
// italic, strike, lists, headings, quotes, `[label](url)` links, bare URLs) and Teams'
// `{{DATE()}}` / `{{TIME()}}` functions: an agent could fake emphasis, dress a phishing link
// as a label or show a forged date. Formatting characters are swapped for look-alikes, links
// and date functions are broken with invisible characters, and line-start markers are
// shielded, so the text reads the same and renders as written.

import { truncate } from '../../src/core/card.ts';

const LOOKALIKES: Record<string, string> = {
  '*': '\u2217', // ∗ asterisk operator
  _: '\u02CD', // ˍ modifier letter low macron
  '~': '\u223C', // ∼ tilde operator
  '`': '\u02CB', // ˋ modifier letter grave accent
  '[': '\uFF3B', // ［ fullwidth left square bracket
  ']': '\uFF3D', // ］ fullwidth right square bracket
};

const WORD_JOINER = '\u2060';
const ZERO_WIDTH_SPACE = '\u200B';

export function neutralize(text: string): string {
  return (
    text
      .replace(/[*~`[\]]/g, (c) => LOOKALIKES[c] ?? c)
      // An underscore inside a word (snake_case, `cus_123`) formats nothing: keep ids exact.
      .replace(/(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, LOOKALIKES['_']!)
      // Teams' date functions and Adaptive Card template expressions.
      .replace(/\{\{/g, `{${WORD_JOINER}{`)
      .replace(/\$\{/g, `$${WORD_JOINER}{`)
      // Bare URLs would be made clickable.
      .replace(/:\/\//g, `:${WORD_JOINER}//`)
      .replace(/\bwww\./gi, (w) => `${w.slice(0, 3)}${WORD_JOINER}.`)
      // Headings, quotes, list items and rules start a line.
      .replace(/^(\s*)(#|>|-|\+|=|\d+[.)])/gm, `$1${ZERO_WIDTH_SPACE}$2`)
      // Teams mentions are entities, not text; HTML is not rendered. Angle brackets stay visible.
      .replace(/<(\/?)at>/gi, `<${WORD_JOINER}$1at>`)
  );
}

/** Cuts to at most `max` code units, never inside a surrogate pair. */
export { truncate } from '../../src/core/card.ts';

/** Untrusted text for a TextBlock or fact: cut first (on the raw text), then neutralised. */
export function safe(text: string, max = 3000): string {
  const out = neutralize(truncate(text, max));
  return out === '' ? ' ' : out;
}

/** ISO time without milliseconds; countersign's own text, shown as is (no DATE function). */
export function shortTime(isoTime: string): string {
  return isoTime.replace(/(\.\d{3})?Z$/, '').replace('T', ' ');
}
