import { ValidationError } from './errors.ts';
import type { Proposal } from './proposal.ts';
import type { Change, JsonValue } from './revision.ts';

// Approve with edits, in words and form fields: what a card shows of a revision, the fields an
// edit form offers, and how the text typed into one becomes the new values (of the JSON type
// the proposed value had). Pure, so Slack, Teams and the console read and say the same.

/** A field of the edit form: one editable parameter the proposal has, with its value as text. */
export interface EditField {
  key: string;
  /** The value now, as the person edits it (numbers plain, text as is, anything else as JSON). */
  value: string;
  kind: 'number' | 'text' | 'boolean' | 'json';
  /** A long text, or JSON, gets a multi-line input. */
  multiline: boolean;
}

/** An input's label where the platform shows one: the key, and how its text is read ("amount (number)"). */
export function editFieldLabel(f: EditField): string {
  return `${f.key}${f.kind === 'number' ? ' (number)' : f.kind === 'json' ? ' (JSON)' : ''}`;
}

function kindOf(v: unknown): EditField['kind'] {
  return typeof v === 'number' ? 'number' : typeof v === 'string' ? 'text' : typeof v === 'boolean' ? 'boolean' : 'json';
}

function asText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? '';
}

/** The fields people may edit on this proposal now: none unless it is pending and its rule has `editable`. */
export function editFields(p: Pick<Proposal, 'action' | 'decision' | 'status'>): EditField[] {
  if (p.status !== 'pending') return [];
  return (p.decision.editable ?? []).flatMap((key) => {
    if (!Object.hasOwn(p.action.parameters, key)) return [];
    const v = p.action.parameters[key];
    const value = asText(v);
    const kind = kindOf(v);
    return [{ key, value, kind, multiline: kind === 'json' || (kind === 'text' && (value.length > 80 || value.includes('\n'))) }];
  });
}

/**
 * The new values from an edit form's text, by parameter: each read as the type of the value it
 * replaces; a field whose text is the value unchanged is left out. A key the proposal has no
 * parameter of is passed on as text (the edit then refuses it, naming it). Throws a ValidationError naming the key.
 */
export function valuesFromForm(p: Pick<Proposal, 'action'>, fields: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, text] of Object.entries(fields)) {
    if (!Object.hasOwn(p.action.parameters, key)) {
      out[key] = text;
      continue;
    }
    const was = p.action.parameters[key];
    if (text === asText(was)) continue;
    const fail = (message: string): never => {
      throw new ValidationError(`${key}: ${message}`, [{ path: key, code: 'invalid_edit', message }]);
    };
    if (typeof was === 'number') {
      // Group separators only where they group thousands: "1,5" (a decimal comma) is not 15.
      const typed = text.trim();
      if (!/^-?(\d+|\d{1,3}([,_ ]\d{3})+)(\.\d+)?$/.test(typed)) fail('must be a number');
      const n = Number(typed.replace(/[,_ ]/g, ''));
      // Beyond 2^53 - 1 a whole number becomes another one (and past 1e308 Infinity, stored as null).
      if (!Number.isFinite(n) || (Number.isInteger(n) && !Number.isSafeInteger(n))) fail('is too large to keep exactly');
      out[key] = n;
    } else if (typeof was === 'boolean') {
      const t = text.trim().toLowerCase();
      if (t !== 'true' && t !== 'false') fail('must be true or false');
      out[key] = t === 'true';
    } else if (typeof was === 'string') {
      out[key] = text;
    } else {
      try {
        out[key] = JSON.parse(text) as unknown;
      } catch {
        fail('must be JSON');
      }
    }
  }
  // A number typed as it was ("24800.0" for 24800) changes nothing either.
  for (const [key, v] of Object.entries(out)) if (typeof v === 'number' && v === p.action.parameters[key]) delete out[key];
  return out;
}

/** A value as a card shows it: numbers grouped (24,800), text quoted and cut. */
export function shownValue(v: JsonValue, grouped = true): string {
  if (typeof v === 'number') return grouped ? v.toLocaleString('en-US', { maximumFractionDigits: 20 }) : String(v);
  const text = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? 'null';
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** "amount 24,800 → 2,000, memo "a" → "b"". */
export function changesText(changes: readonly Change[], grouped = true): string {
  return changes.map((c) => `${c.key} ${shownValue(c.from, grouped)} → ${shownValue(c.to, grouped)}`).join(', ');
}

/** "amount 24,800 → 2,000 by alice", or null for a proposal nobody edited. */
export function revisionLine(p: Pick<Proposal, 'revision'>): string | null {
  const r = p.revision;
  if (r === undefined) return null;
  return `Edited: ${changesText(r.changes)} by ${r.by}`;
}
