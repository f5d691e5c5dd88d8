import { performance } from 'node:perf_hooks';
import { start } from '../dist/src/main.js';

// countersign itself, as a child process of the benchmark (so its RSS and CPU are its own).
// Plain JavaScript on the compiled build (`npm run build`; bench/run.ts builds first), as
// `npm start` runs it: no TypeScript loader in the measured process.
// Environment: the countersign variables. It reports over IPC:
//   {kind:'ready', url}            listening
//   {kind:'approved', id, t}       the approval was committed
//   {kind:'enqueued', id, t}       its token was recorded and the execute job added (the flow
//                                  dispatches the token's commit once the issue has finished)
//   {kind:'succeeded', id, t}      the outcome `succeeded` (or `failed`) was committed
// and answers {kind:'rss'} with {kind:'rss', rss, heapUsed, ...} and {kind:'cpu'} with {kind:'cpu', ms}.

const wallNow = () => performance.timeOrigin + performance.now();
const send = (m) => {
  if (process.connected) process.send?.(m);
};

// An observer of every commit (src/app/after-commit.ts), after the standard subscribers.
const timing = {
  name: 'bench-timing',
  async onCommitted({ before, after }) {
    if (after.status === 'approved' && before?.status !== 'approved') send({ kind: 'approved', id: after.id, t: wallNow() });
    if (before !== null && before.execution === undefined && after.execution !== undefined) send({ kind: 'enqueued', id: after.id, t: wallNow() });
    if (before !== null && before.status !== after.status && (after.status === 'succeeded' || after.status === 'failed')) send({ kind: after.status, id: after.id, t: wallNow() });
  },
};
// BENCH_TIMING=0: no observer, for a benchmark that times the request itself (its IPC would
// otherwise be inside what is measured, as the gateway's finish commit awaits the observers).
const observers = process.env['BENCH_TIMING'] === '0' ? [] : [timing];
const running = await start(process.env, { say: () => undefined, observers });

process.on('message', (m) => {
  if (m.kind === 'rss') {
    const mem = process.memoryUsage();
    // With --expose-gc, also what is left after a full collection (live data, not garbage).
    global.gc?.();
    const after = process.memoryUsage();
    send({ kind: 'rss', rss: mem.rss, heapUsed: mem.heapUsed, heapAfterGc: after.heapUsed, detail: mem });
  } else if (m.kind === 'cpu') {
    const u = process.cpuUsage();
    send({ kind: 'cpu', ms: (u.user + u.system) / 1000 });
  } else if (m.kind === 'stop') {
    void running.stop().finally(() => process.exit(0));
  }
});
// The benchmark is gone (maybe with its Redis): stop, but never outlive it for long.
process.on('disconnect', () => {
  setTimeout(() => process.exit(0), 5000).unref();
  void running.stop().finally(() => process.exit(0));
});
send({ kind: 'ready', url: running.url });
