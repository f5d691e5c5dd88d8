import { performance } from 'node:perf_hooks';
import { start } from '../dist/src/main.js';

// countersign itself, as a child process of the benchmark (so its RSS and CPU are its own).
// Plain JavaScript on the compiled build (`npm run build`; bench/run.ts builds first), as
// `npm start` runs it: no TypeScript loader in the measured process.
// Environment: the countersign variables. It reports over IPC:
//   {kind:'ready', url}            listening
//   {kind:'approved', id, t}       deps.onApproved called (the approval was committed)
//   {kind:'enqueued', id, t}       deps.onApproved finished (token issued, execute job added)
//   {kind:'succeeded', id, t}      the outcome `succeeded` was committed
// and answers {kind:'rss'} with {kind:'rss', rss, heapUsed, ...} and {kind:'cpu'} with {kind:'cpu', ms}.

const wallNow = () => performance.timeOrigin + performance.now();
const send = (m) => {
  if (process.connected) process.send?.(m);
};

const running = await start(process.env, { say: () => undefined });
const deps = running.deps;
const onApproved = deps.onApproved;
deps.onApproved = async (p) => {
  send({ kind: 'approved', id: p.id, t: wallNow() });
  await onApproved(p);
  send({ kind: 'enqueued', id: p.id, t: wallNow() });
};
const onStatusChanged = deps.onStatusChanged;
deps.onStatusChanged = async (p) => {
  if (p.status === 'succeeded' || p.status === 'failed') send({ kind: p.status, id: p.id, t: wallNow() });
  await onStatusChanged?.(p);
};

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
