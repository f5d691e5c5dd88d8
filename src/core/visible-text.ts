// Characters that change what a person reads without being seen: bidi controls reorder text
// (`stripe:cus_1<U+202E>elif.exe` reads "stripe:cus_1exe.file"), zero-width and other format
// characters hide or join words, control characters and lone surrogates render as nothing or
// as a box. On a card each becomes its code in the open (`⟪U+202E⟫`) so the approver sees
// exactly which characters the agent sent. Display only: what the agent wrote is stored,
// audited and judged by the policy as it came.

const OPEN = '⟪';
const CLOSE = '⟫';

/**
 * C0 controls but \t and \n, DEL and C1; every format character (Cf: bidi controls U+202A–202E,
 * U+2066–2069, U+200E/200F, U+061C, zero-width U+200B–200D, U+2060, U+FEFF, soft hyphen, tags,
 * …); surrogates, which `u` only matches when lone; line and paragraph separators; the other
 * default-ignorable characters that render as nothing (combining grapheme joiner, Hangul fillers,
 * Khmer inherent vowels, unassigned U+FFF0–FFF8, the U+E0000 plane with its variation selectors);
 * and ⟪ ⟫ themselves, so an agent cannot write a fake ⟪U+…⟫ and every mark shown is one we made.
 * Kept as they are: U+FE00–FE0F (emoji presentation) and the Mongolian variation selectors.
 */
const HIDDEN =
  /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\p{Cf}\p{Cs}\u2028\u2029\u034F\u115F\u1160\u17B4\u17B5\u3164\uFFA0\uFFF0-\uFFF8\u{E0000}-\u{E0FFF}\u27EA\u27EB]/gu;

/** Depth beyond which parameters are summarised instead of walked (intake allows far less). */
const MAX_DEPTH = 64;

export function codeOf(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Shows hidden characters as `⟪U+XXXX⟫`, recording each one met in `seen` (for the card's note).
 * Text without any is returned as it is.
 */
export function showHidden(text: string, seen?: Set<string>): string {
  HIDDEN.lastIndex = 0;
  if (!HIDDEN.test(text)) return text;
  return text.replace(HIDDEN, (char) => {
    const code = codeOf(char);
    seen?.add(code);
    return `${OPEN}${code}${CLOSE}`;
  });
}

/** For one line of a terminal or a single-line field: line breaks and tabs shown too, so text cannot fake lines. */
export function showHiddenOneLine(text: string, seen?: Set<string>): string {
  return showHidden(text, seen).replace(/[\n\t]/g, (char) => {
    const code = codeOf(char);
    seen?.add(code);
    return `${OPEN}${code}${CLOSE}`;
  });
}

/** A JSON value with every string, keys included, shown with `showHidden`. */
export function showHiddenInJson(value: unknown, seen?: Set<string>, depth = 0): unknown {
  if (typeof value === 'string') return showHidden(value, seen);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '… (nested too deeply to show)';
  if (Array.isArray(value)) return value.map((v) => showHiddenInJson(v, seen, depth + 1));
  // fromEntries defines own properties, so a key such as "__proto__" stays a key.
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [showHidden(k, seen), showHiddenInJson(v, seen, depth + 1)]));
}

const NOTE_CODES = 6;

/** The line a card carries when it shows hidden characters: what the marks are, and which were met. */
export function hiddenCharactersNote(seen: ReadonlySet<string>): string | null {
  if (seen.size === 0) return null;
  const codes = [...seen].sort();
  const listed = codes.slice(0, NOTE_CODES).join(', ') + (codes.length > NOTE_CODES ? ', …' : '');
  return `Hidden characters in this proposal are shown as ${OPEN}U+…${CLOSE} (here: ${listed}); they may reorder or hide text.`;
}

/** Drops a mark cut in half at the end of a shortened text (`…⟪U+20`), which would read as a different code. */
export function withoutPartialMark(text: string): string {
  const open = text.lastIndexOf(OPEN);
  return open === -1 || text.indexOf(CLOSE, open) !== -1 ? text : text.slice(0, open);
}
