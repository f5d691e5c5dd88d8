import { Writable } from 'node:stream';

// Waiting on what a running app does (Redis keys, files, its log): tests poll a condition
// instead of sleeping a guessed time; the test's own timeout bounds the wait.

/** Reads until `ok` holds, every 20 ms; returns what satisfied it. */
export async function until<T>(read: () => Promise<T> | T, ok: (v: T) => boolean): Promise<T> {
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A log stream for the app (`start.logStream`) and its lines as parsed JSON. */
export function logSink(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
}
