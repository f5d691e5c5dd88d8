import { truncate } from './card.ts';

// Every chat platform refuses a message over its size limit, and an agent's text (shown with
// its hidden characters spelled out, ten characters for one) can exceed any of them. A renderer
// lays its card out through `fitCard`: whole when it fits, else with the agent's texts cut,
// parameters first, then the intent, then the rest, each as little as makes the card fit. The
// card then says it was cut and links the full proposal.

/** How many characters of the agent's texts a layout shows. */
export interface TextCut {
  parameters: number;
  intent: number;
  /** Every other text the agent (or a person) wrote: target, tool, operation, reasons, context. */
  other: number;
}

export const UNCUT: TextCut = { parameters: Number.POSITIVE_INFINITY, intent: Number.POSITIVE_INFINITY, other: Number.POSITIVE_INFINITY };

/** What each kind keeps before the next kind is cut: a card always says what it is about. */
export const CUT_FLOOR: TextCut = { parameters: 0, intent: 200, other: 100 };

const CUT_ORDER = ['parameters', 'intent', 'other'] as const;

/** Cuts the texts of one layout and remembers whether it cut any, for the card's note. */
export class TextCutter {
  shortened = false;

  constructor(readonly cut: TextCut) {}

  /** `text` cut to what this layout allows for its kind, and to `max` (a limit of the platform's own). */
  text(text: string, kind: keyof TextCut, max = Number.POSITIVE_INFINITY): string {
    const limit = Math.min(this.cut[kind], max);
    if (text.length <= limit) return text;
    this.shortened = true;
    return limit <= 0 ? '' : truncate(text, limit);
  }

  /** For a cut the renderer's markup made (a field's limit counted after escaping). */
  mark(shortened: boolean): void {
    if (shortened) this.shortened = true;
  }
}

/**
 * The layout whole if it fits `budget`, else the one that fits with the least cut, in CUT_ORDER.
 * `size` measures a layout in the platform's unit; cutting a text never makes a layout bigger.
 * With every kind at its floor the layout is returned whatever its size: the renderer's limits
 * on everything else keep that small (its tests check the worst case).
 */
export function fitCard<T>(layout: (cut: TextCut) => T, size: (out: T) => number, budget: number): T {
  const whole = layout(UNCUT);
  const wholeSize = size(whole);
  if (wholeSize <= budget) return whole;
  let cut: TextCut = { ...UNCUT };
  let out = whole;
  for (const kind of CUT_ORDER) {
    const at = (n: number) => layout({ ...cut, [kind]: n });
    const floor = at(CUT_FLOOR[kind]);
    out = floor;
    if (size(floor) > budget) {
      cut = { ...cut, [kind]: CUT_FLOOR[kind] };
      continue;
    }
    // No text is longer than the whole rendered card, so wholeSize bounds the search.
    let fits = CUT_FLOOR[kind];
    let tooBig = wholeSize + 1;
    while (tooBig - fits > 1) {
      const n = Math.floor((fits + tooBig) / 2);
      const candidate = at(n);
      if (size(candidate) <= budget) {
        fits = n;
        out = candidate;
      } else tooBig = n;
    }
    return out;
  }
  return out;
}

/** Bytes of `text` as UTF-8 or as UTF-16, whichever is more: platforms count message sizes either way. */
export function payloadBytes(text: string): number {
  let utf8 = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) utf8 += 1;
    else if (c < 0x800) utf8 += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      utf8 += 4;
      i++;
    } else utf8 += 3;
  }
  return Math.max(utf8, text.length * 2);
}
