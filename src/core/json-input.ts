import { z } from 'zod';
import { UnsupportedMediaTypeError, ValidationError } from './errors.ts';

// What every JSON body countersign reads must be, wherever it arrives (the agent API, a chat
// platform's webhook): JSON in UTF-8, not nested deeper than any real proposal, without a
// "__proto__" key. Linear in a body its reader has already capped.

/** Deeper than any real proposal; shallow enough that no recursive reader downstream (zod, canonical JSON) can overflow. */
export const MAX_JSON_DEPTH = 32;

const PATH_SHOWN = 300;

// fatal: a bad byte is an error, never a U+FFFD; ignoreBOM: true keeps a BOM in the text, so JSON.parse refuses it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `application/json`, optionally with `charset=utf-8`: a form or a text/plain body is not JSON, whatever it holds. */
export function checkJsonMediaType(header: string | undefined): void {
  const [type = '', ...params] = (header ?? '').split(';');
  const charset = params
    .map((p) => p.split('='))
    .find(([name]) => name?.trim().toLowerCase() === 'charset')?.[1]
    ?.trim()
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
  if (type.trim().toLowerCase() === 'application/json' && (charset === undefined || charset === 'utf-8' || charset === 'utf8')) return;
  const got = header === undefined ? 'none' : header.slice(0, 100);
  throw new UnsupportedMediaTypeError(`Content-Type must be application/json (UTF-8); got ${got}`);
}

/** The parsed JSON, or a 400 naming what is wrong (not UTF-8, not JSON, too deep, a "__proto__" key). */
export function parseJsonBytes(raw: Uint8Array): unknown {
  // Decoding would replace a bad byte with U+FFFD: people would approve text the agent never sent.
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new ValidationError('request body is not valid UTF-8', [{ path: '(body)', code: 'invalid_utf8', message: 'the body is not valid UTF-8' }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ValidationError('request body is not valid JSON', [{ path: '(body)', code: 'invalid_json', message: (e as Error).message }]);
  }
  const problem = firstProblem(value);
  if (problem?.kind === 'too_deep') {
    const message = `nested deeper than ${MAX_JSON_DEPTH} levels`;
    throw new ValidationError(`request body is ${message} (at ${problem.path})`, [{ path: problem.path, code: 'too_deep', message }]);
  }
  if (problem?.kind === 'proto') {
    throw new ValidationError(`"__proto__" is not allowed as a key (${problem.path})`, [{ path: problem.path, code: 'forbidden_key', message: '"__proto__" is not allowed as a key' }]);
  }
  return value;
}

interface Visit {
  value: unknown;
  depth: number;
  parent: Visit | null;
  key: string | number | null;
}

function pathOf(visit: Visit): string {
  const keys: (string | number)[] = [];
  for (let v: Visit | null = visit; v !== null && v.key !== null; v = v.parent) keys.unshift(v.key);
  const path = z.core.toDotPath(keys).replace(/^\./, '');
  return path.length > PATH_SHOWN ? `${path.slice(0, PATH_SHOWN)}…` : path;
}

/**
 * The first container (in document order) nested deeper than MAX_JSON_DEPTH, or the first
 * "__proto__" key: JSON.parse keeps that key, but object copies downstream drop it silently,
 * so what people approve would differ from what the agent sent. An explicit stack, not
 * recursion: the depth is what is being checked.
 */
export function firstProblem(root: unknown): { kind: 'too_deep' | 'proto'; path: string } | null {
  const stack: Visit[] = [{ value: root, depth: 1, parent: null, key: null }];
  for (let visit = stack.pop(); visit !== undefined; visit = stack.pop()) {
    const { value, depth } = visit;
    if (visit.key === '__proto__') return { kind: 'proto', path: pathOf(visit) };
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_JSON_DEPTH) return { kind: 'too_deep', path: pathOf(visit) };
    const children: Visit[] = [];
    if (Array.isArray(value)) {
      value.forEach((item: unknown, i) => children.push({ value: item, depth: depth + 1, parent: visit, key: i }));
    } else {
      for (const key of Object.keys(value)) children.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, parent: visit, key });
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return null;
}
