import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisOutageLog, isConnectionDrop } from '../../adapters/redis/outage-log.ts';
import type { Logger } from '../../src/core/ports.ts';

function recorder() {
  const lines: [string, string | undefined][] = [];
  const at = (level: string) => (_obj: object, msg?: string) => void lines.push([level, msg]);
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, logger };
}

describe('the Redis outage log', () => {
  it('tells a dropped connection from a failed command', () => {
    for (const e of ['read ECONNRESET', 'connect ECONNREFUSED 127.0.0.1:6379', 'write EPIPE', 'Connection is closed.']) expect(isConnectionDrop({ error: e })).toBe(true);
    for (const e of ['ERR countersign: the pending set is not a zset', 'NOSCRIPT No matching script']) expect(isConnectionDrop({ error: e })).toBe(false);
    expect(isConnectionDrop({})).toBe(false);
  });

  it("puts a worker's connection-drop error at debug while Redis still looks up, and keeps other errors", () => {
    // A connection that is ready: the drop is seen by the worker before the status changes.
    const ready = { status: 'ready', on: () => ready } as unknown as Redis;
    const { lines, logger } = recorder();
    const log = createRedisOutageLog([ready], { target: '127.0.0.1:6379', logger });
    const quiet = log.quiet(logger);
    quiet.error({ error: 'read ECONNRESET' }, 'queue worker error');
    quiet.error({ error: 'ERR countersign: the pending set is not a zset' }, 'queue worker error');
    quiet.warn({ error: 'slow' }, 'something slow');
    log.stop();
    expect(lines).toEqual([
      ['debug', 'queue worker error'],
      ['error', 'queue worker error'],
      ['warn', 'something slow'],
    ]);
  });
});
