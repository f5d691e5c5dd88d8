import type { HotpathResult, Kind, SeriesResult } from './hotpath.ts';
import { fmt, type Summary } from './lib.ts';
import { sealingLagRow } from './sealing-lag.ts';

// The rows of the hot path phase (hotpath.ts) with issue 16's targets, all ratios to the bare
// server measured in the same run (or, for RSS, read at the same moment).

type RowFn = (metric: string, value: string, baseline?: string, ratio?: string, target?: string) => void;

/** Issue 16's targets, as ratios to the bare server in the same run on this machine. */
export const HOTPATH_TARGETS = {
  allowedP50: 5,
  allowedP99: 4,
  deniedP50: 3,
  pendingIntakeC16: 0.25,
  redisUsPerPending: 300,
  rssVsBare: 2,
};

const x = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN);
const times = (v: number) => `${fmt(v, 2)}x`;
const lat = (s: Summary) => `p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} ms`;
const verdict = (ok: boolean, text: string) => `${ok ? 'met' : 'MISSED'}: ${text}`;
const mb = (bytes: number) => `${fmt(bytes / 1048576, 1)} MB`;

function roundTripTarget(s: SeriesResult): string {
  const t = HOTPATH_TARGETS;
  const p50 = x(s.countersign.lat.p50, s.bare.lat.p50);
  const p99 = x(s.countersign.lat.p99, s.bare.lat.p99);
  const clean = s.countersign.errors === 0;
  if (s.kind === 'allowed' && s.concurrency === 1) return verdict(clean && p50 <= t.allowedP50 && p99 <= t.allowedP99, `p50 <= ${t.allowedP50}x and p99 <= ${t.allowedP99}x bare`);
  if (s.kind === 'denied' && s.concurrency === 1) return verdict(clean && p50 <= t.deniedP50, `p50 <= ${t.deniedP50}x bare`);
  return '';
}

export function hotpathRows(r: HotpathResult, row: RowFn): void {
  const t = HOTPATH_TARGETS;
  const find = (kind: Kind, c: number) => r.series.find((s) => s.kind === kind && s.concurrency === c);
  for (const s of r.series) {
    const { bare: b, countersign: cs } = s;
    const errs = cs.errors > 0 ? `, ${cs.errors} errors` : '';
    row(
      `1. ${s.kind} proposal round trip, c=${s.concurrency} (${cs.done} a side, ${s.rounds} alternating rounds${s.concurrency === 64 ? `, filling to ${r.rss.pending} pending` : ''})`,
      `${lat(cs.lat)}, ${fmt(cs.rps, 0)} req/s${errs}`,
      `bare HMAC server ${lat(b.lat)}, ${fmt(b.rps, 0)} req/s`,
      `p50 ${times(x(cs.lat.p50, b.lat.p50))}, p99 ${times(x(cs.lat.p99, b.lat.p99))}, throughput ${times(x(cs.rps, b.rps))}`,
      roundTripTarget(s),
    );
  }

  // Pending intake (the 201s) and sustained (until the chunk's last card reached the fake Slack).
  const p16 = find('pending', 16);
  const p64 = find('pending', 64);
  if (p16 !== undefined) {
    const rate = (s: SeriesResult) => `c=${s.concurrency}: intake ${fmt(s.countersign.rps, 0)} 201s/s, sustained ${fmt(s.countersign.sustained, 0)} proposals/s`;
    const ratioC16 = x(p16.countersign.rps, p16.bare.rps);
    row(
      '1. pending intake, and sustained until the last card is posted (fake Slack chat.postMessage count)',
      [p16, p64].filter((s) => s !== undefined).map(rate).join('; '),
      [p16, p64].filter((s) => s !== undefined).map((s) => `c=${s.concurrency} bare ${fmt(s.bare.rps, 0)} req/s`).join('; '),
      `intake c=16 ${times(ratioC16)}, sustained c=16 ${times(x(p16.countersign.sustained, p16.bare.rps))}`,
      verdict(ratioC16 >= t.pendingIntakeC16, `intake at c=16 >= ${t.pendingIntakeC16}x bare`),
    );
  }

  // CPU per proposal of each kind, its follow-ups included (card, or execution and outcome).
  for (const kind of ['allowed', 'denied', 'pending'] as const) {
    const s16 = find(kind, 16);
    if (s16 === undefined) continue;
    const s1 = find(kind, 1);
    const s64 = find(kind, 64);
    const cpu = (s: SeriesResult) => `c=${s.concurrency}: countersign ${fmt(s.countersign.nodeUs, 0)} µs, redis-server ${fmt(s.countersign.redisUs, 0)} µs`;
    const follow = kind === 'pending' ? 'card posted' : kind === 'allowed' ? 'executed, outcome recorded' : 'nothing follows';
    row(
      `1. CPU per ${kind} proposal (${follow})`,
      [s16, s1, s64].filter((s) => s !== undefined).map(cpu).join('; '),
      `bare HMAC server c=16 ${fmt(s16.bare.nodeUs, 0)} µs per request`,
      `countersign c=16 ${times(x(s16.countersign.nodeUs, s16.bare.nodeUs))} bare`,
      kind === 'pending' ? verdict(s16.countersign.redisUs <= t.redisUsPerPending, `redis-server <= ${t.redisUsPerPending} µs per pending proposal at c=16, card included`) : '',
    );
  }

  const m = r.rss;
  const rssRatio = x(m.rss, m.bare);
  row(
    `6. countersign RSS at ${m.pending} pending (child process, process.memoryUsage().rss)`,
    `${mb(m.rss)} (heap used ${mb(m.heapUsed)}, of which live after a full GC ${mb(m.heapAfterGc)})`,
    `bare HMAC server ${mb(m.bare)} (after the same requests); idle countersign ${mb(m.idle)}`,
    `${times(rssRatio)} bare, ${times(x(m.rss, m.idle))} idle`,
    verdict(rssRatio <= t.rssVsBare, `<= ${t.rssVsBare}x bare`),
  );
  sealingLagRow(r.sealing, row);
}
