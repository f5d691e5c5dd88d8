import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt } from './lib.ts';

// Reading a .cpuprofile that `node --cpu-prof` wrote (bench/profile.ts, bench/mcp-profile.ts).

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** Microseconds of the monotonic clock (CLOCK_MONOTONIC, as V8's profile timestamps): a window to read. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

interface Loaded {
  byId: Map<number, ProfileNode>;
  self: Map<number, number>;
  parent: Map<number, number>;
}

/** Self time per node, of the samples taken within `window` (monotonic µs) when given. */
function load(folder: string, window?: { fromUs: number; toUs: number }): Loaded | null {
  const file = readdirSync(folder).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return null;
  const prof = JSON.parse(readFileSync(join(folder, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = prof.startTime;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    if (window !== undefined && (t < window.fromUs || t > window.toUs)) return;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  return { byId, self, parent };
}

const shortUrl = (url: string) => (url.includes('node_modules/') ? url.slice(url.lastIndexOf('node_modules/') + 13) : url.replace(process.cwd() + '/', ''));

/**
 * Inclusive time of every function that is not Node's own (packages too), counted once per
 * stack: what each layer costs with everything it calls. Within `window` when given.
 */
export function inclusiveAll(folder: string, top: number, window?: { fromUs: number; toUs: number }): string[] {
  const p = load(folder, window);
  if (p === null) return ['(no cpu profile written)'];
  const total = [...p.self.values()].reduce((a, b) => a + b, 0);
  const inclusive = new Map<string, number>();
  for (const [id, us] of p.self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = p.parent.get(at)) {
      const n = p.byId.get(at);
      if (n === undefined) continue;
      const url = n.callFrame.url.replace(/^file:\/\//, '');
      if (url === '' || url.startsWith('node:')) continue;
      const k = `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(url)}:${n.callFrame.lineNumber + 1}`;
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  return [
    `inclusive time of every non-Node function (${fmt(total / 1000, 0)} ms sampled)`,
    ...[...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => `  ${fmt((us / total) * 100, 1).padStart(5)}% ${k}`),
  ];
}

/** Self time by function and by package from the server's .cpuprofile (within `window` when given). */
export function hottest(folder: string, window?: { fromUs: number; toUs: number }): string[] {
  const loaded = load(folder, window);
  if (loaded === null) return ['(no cpu profile written)'];
  const { byId, self, parent } = loaded;
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (n === undefined) continue;
    const url = n.callFrame.url.replace(/^file:\/\//, '');
    const where = shortUrl(url);
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    const pkg = url === '' ? n.callFrame.functionName : url.includes('node_modules/') ? where.split('/').slice(0, where.startsWith('@') ? 2 : 1).join('/') : url.startsWith('node:') ? 'node internals' : where.split('/').slice(0, 2).join('/');
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
  }
  // Inclusive time of the project's own functions (outermost frame of each name per stack).
  const name = (n: ProfileNode) => {
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(process.cwd() + '/', '');
    return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
  };
  const own = (n: ProfileNode) => /\/(src|adapters)\//.test(n.callFrame.url) && !n.callFrame.url.includes('node_modules');
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (n === undefined || !own(n)) continue;
      const k = name(n);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  // Who started the work: each sample goes to the outermost frame that is not Node's own
  // (async continuations start over at the event loop, so this is the code that resumed).
  const pkgOf = (n: ProfileNode): string | null => {
    const url = n.callFrame.url.replace(/^file:\/\//, '');
    if (url === '' || url.startsWith('node:')) return null;
    if (url.includes('node_modules/')) {
      const w = url.slice(url.lastIndexOf('node_modules/') + 13);
      return w.split('/').slice(0, w.startsWith('@') ? 2 : 1).join('/');
    }
    return url.replace(process.cwd() + '/', '').split('/').slice(0, 2).join('/');
  };
  const started = new Map<string, number>();
  for (const [id, us] of self) {
    let outer: string | null = null;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (n === undefined) continue;
      outer = pkgOf(n) ?? outer;
    }
    const k = outer ?? (byId.get(id)?.callFrame.functionName || 'node internals');
    started.set(k, (started.get(k) ?? 0) + us);
  }
  const pct = (us: number) => `${fmt((us / total) * 100, 1).padStart(5)}%`;
  return [
    'time by the outermost non-Node frame (who resumed the work)',
    ...[...started].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, us]) => `  ${pct(us)} ${k}`),
    '',
    'inclusive time of countersign functions',
    ...[...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40).map(([k, us]) => `  ${pct(us)} ${k}`),
    '',
    `countersign CPU profile (${fmt(total / 1000, 0)} ms sampled, ${window === undefined ? 'whole process life' : 'the measured window'}): self time by package`,
    ...[...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, us]) => `  ${pct(us)} ${k}`),
    '',
    'self time by function',
    ...[...byFn].sort((a, b) => b[1] - a[1]).slice(0, 60).map(([k, us]) => `  ${pct(us)} ${k}`),
  ];
}

/** A cost to name in a profile: a sample is its when a frame of its stack matches. */
export interface CostGroup {
  name: string;
  match(frame: { functionName: string; url: string }): boolean;
}

/**
 * Busy time split into `groups`, each sample once: to the group of the innermost frame of its
 * stack that one matches (the first in the order given, if several), so a package's own code
 * and the Node internals it calls count as that package, and what it calls back into counts as
 * the callee; "other" when none matches. GC apart; idle left out. Within `window` when given.
 */
export function costGroups(folder: string, groups: readonly CostGroup[], window?: { fromUs: number; toUs: number }): { name: string; us: number; share: number }[] {
  const p = load(folder, window);
  if (p === null) return [];
  const totals = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of p.self) {
    const leaf = p.byId.get(id)?.callFrame.functionName ?? '';
    if (leaf === '(idle)' || leaf === '(program)') continue;
    busy += us;
    let name = leaf === '(garbage collector)' ? 'garbage collector' : 'other';
    for (let at: number | undefined = id; name === 'other' && at !== undefined; at = p.parent.get(at)) {
      const n = p.byId.get(at);
      if (n === undefined) continue;
      const frame = { functionName: n.callFrame.functionName, url: n.callFrame.url.replace(/^file:\/\//, '') };
      name = groups.find((g) => g.match(frame))?.name ?? 'other';
    }
    totals.set(name, (totals.get(name) ?? 0) + us);
  }
  return [...totals].map(([name, us]) => ({ name, us, share: us / busy })).sort((a, b) => b.us - a.us);
}
