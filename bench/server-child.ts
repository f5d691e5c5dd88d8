import { start } from '../src/main.ts';
import { wallNow } from './lib.ts';

// countersign itself, as a child process of the benchmark (so its RSS and CPU are its own).
// Environment: the countersign variables. It reports over IPC:
//   {kind:'ready', url}            listening
//   {kind:'approved', id, t}       deps.onApproved called (the approval was committed)
//   {kind:'enqueued', id, t}       deps.onApproved finished (token issued, execute job added)
//   {kind:'succeeded', id, t}      the outcome `succeeded` was committed
// and answers {kind:'rss'} with {kind:'rss', rss, heapUsed}.

const send = (m: unknown) => process.send?.(m);

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

process.on('message', (m: { kind: string }) => {
  if (m.kind === 'rss') {
    const mem = process.memoryUsage();
    // With --expose-gc, also what is left after a full collection (live data, not garbage).
    global.gc?.();
    const after = process.memoryUsage();
    send({ kind: 'rss', rss: mem.rss, heapUsed: mem.heapUsed, rssAfterGc: after.rss, heapAfterGc: after.heapUsed, detail: mem });
  } else if (m.kind === 'stop') {
    void running.stop().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => void running.stop().finally(() => process.exit(0)));
send({ kind: 'ready', url: running.url });
