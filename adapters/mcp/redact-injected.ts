// Every value countersign injects into an upstream (a header, an environment variable) is a
// credential the agent must never see, and an upstream may echo it back anywhere: in a tool's
// text, its structured content, an error message, its stderr. What comes back is scrubbed of
// those values before anything else reads it.

export const REDACTED = '[redacted]';

export interface Redactor {
  /** `text` with every injected value replaced by `[redacted]`. */
  text(text: string): string;
  /** A JSON-like value with every string in it (keys too) redacted: a copy, unless there is nothing to redact. */
  deep<T>(value: T): T;
}

/**
 * A redactor for these values. Each is also looked for as it appears inside JSON text (quotes,
 * backslashes and control characters escaped), since tools commonly answer with JSON. Longer
 * values are replaced first, so `Bearer <token>` goes whole rather than leaving its prefix.
 * Empty values are ignored (they would match everywhere and hide nothing).
 */
export function createRedactor(values: Iterable<string>): Redactor {
  const needles = new Set<string>();
  for (const value of values) {
    if (value === '') continue;
    needles.add(value);
    const escaped = JSON.stringify(value).slice(1, -1);
    if (escaped !== value) needles.add(escaped);
  }
  if (needles.size === 0) return { text: (s) => s, deep: <T>(v: T) => v };
  // One pass over the text: a replacement is never searched again (a short secret inside
  // `[redacted]` would otherwise be replaced there too).
  const ordered = [...needles].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(ordered.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  const text = (input: string): string => input.replace(pattern, REDACTED);
  const deep = (value: unknown): unknown => {
    if (typeof value === 'string') return text(value);
    if (Array.isArray(value)) return value.map(deep);
    // fromEntries defines own properties: a `__proto__` key stays data, not a prototype.
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [text(k), deep(v)]));
    return value;
  };
  return { text, deep: <T>(v: T) => deep(v) as T };
}
