// The back ends of `countersign audit verify` and `audit export`: the stores, the public keys
// that check checkpoints (AUDIT_SIGNING_KEY's, this data directory's development key, or a
// published JWK set given with --keys), and the outside copy (--against FILE|URL).
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { createAuditKeyVerifier } from '../../adapters/tokens/audit-signer.ts';
import { exportAudit, type ExportAuditOptions } from '../app/export-audit.ts';
import { verifyExportedAudit, verifyStoredAudit, type VerifyAuditOptions } from '../app/verify-audit.ts';
import { loadConfig, type Config } from '../config.ts';
import type { Checkpoint } from '../core/audit-checkpoint.ts';
import type { ExportRecord } from '../core/audit-export.ts';
import type { AuditVerifyReport, CheckpointKeys } from '../core/audit-verifier.ts';
import { ValidationError } from '../core/errors.ts';
import { createLogger } from '../logger.ts';
import { openRedis } from './app-deps.ts';
import { existingAuditSigner } from './audit-sealer.ts';
import { PLATFORMS } from './platforms.ts';

type Env = Readonly<Record<string, string | undefined>>;

const MAX_FETCH_BYTES = 256 * 1024 * 1024;

/** A file's text, or a URL's body (GET, no redirects). */
async function readSource(source: string, what: string): Promise<string> {
  if (/^https?:\/\//i.test(source)) {
    // Named by origin and path only: a URL may carry a credential (user:password@, a token in the query).
    let where = 'the URL';
    let res: Response;
    try {
      const url = new URL(source);
      where = `${url.protocol}//${url.host}${url.pathname}`;
      res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      throw new Error(`${what}: cannot fetch ${where} (${err.cause?.code ?? (err.name === 'TimeoutError' ? 'timeout' : err.name)})`);
    }
    if (!res.ok) throw new Error(`${what}: ${where} answered HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > MAX_FETCH_BYTES) throw new Error(`${what}: more than ${MAX_FETCH_BYTES} bytes`);
    return text;
  }
  try {
    return readFileSync(source, 'utf8');
  } catch (e) {
    throw new Error(`${what}: cannot read ${source} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The keys that check checkpoints: --keys (a JWK set), else AUDIT_SIGNING_KEY or the development key; null when there is none. */
export async function checkpointKeys(config: Config, keysSource: string | undefined): Promise<CheckpointKeys | null> {
  if (keysSource !== undefined) {
    const text = await readSource(keysSource, '--keys');
    let jwks: unknown;
    try {
      jwks = JSON.parse(text);
    } catch {
      throw new Error('--keys: not JSON (give the JWK set of /.well-known/audit-keys.json)');
    }
    return createAuditKeyVerifier(jwks);
  }
  return existingAuditSigner(config);
}

/** The outside copy: checkpoints one JSON object per line (the witness file), or a JSON array of them. */
export async function outsideCheckpoints(source: string): Promise<Checkpoint[]> {
  const text = (await readSource(source, '--against')).trim();
  const fail = (where: string): never => {
    throw new ValidationError(`--against: ${where} is not a checkpoint`, [{ path: '--against', code: 'invalid', message: `${where} is not a checkpoint` }]);
  };
  const items: unknown[] = [];
  if (text.startsWith('[')) {
    try {
      items.push(...(JSON.parse(text) as unknown[]));
    } catch {
      fail('the JSON array');
    }
  } else {
    for (const [i, line] of text.split('\n').entries()) {
      if (line.trim() === '') continue;
      try {
        items.push(JSON.parse(line));
      } catch {
        fail(`line ${i + 1}`);
      }
    }
  }
  return items.map((x, i) => {
    const c = x as Partial<Checkpoint> | null;
    if (c === null || typeof c !== 'object' || typeof c.seq !== 'number' || typeof c.hash !== 'string' || typeof c.sig !== 'string') fail(`item ${i + 1}`);
    return c as Checkpoint;
  });
}

export interface AuditVerifyRequest {
  keys?: string;
  against?: string;
  offline?: string;
  onProgress?: (n: number) => void;
}

export async function auditVerify(env: Env, req: AuditVerifyRequest): Promise<AuditVerifyReport> {
  const config = loadConfig(env, PLATFORMS);
  const o: VerifyAuditOptions = {
    keys: await checkpointKeys(config, req.keys),
    outside: req.against === undefined ? [] : await outsideCheckpoints(req.against),
    now: req.offline === undefined ? Date.now() : null,
    ...(req.onProgress === undefined ? {} : { onProgress: req.onProgress }),
  };
  if (req.offline !== undefined) {
    const lines = createInterface({ input: createReadStream(req.offline, 'utf8'), crlfDelay: Infinity });
    return verifyExportedAudit(lines, o);
  }
  const conns = await openRedis(config, createLogger(config.logLevel, process.stderr), { workers: false });
  try {
    const audit = createRedisAuditLog(conns.redis, { prefix: config.prefix });
    const seals = createRedisAuditSeals(conns.redis, { prefix: config.prefix });
    return await verifyStoredAudit(audit, seals, config.prefix, o);
  } finally {
    await conns.close();
  }
}

/** Streams the export to `write` until it ends (or, with `follow`, until its signal aborts). */
export async function auditExport(env: Env, o: ExportAuditOptions, write: (r: ExportRecord) => Promise<void> | void): Promise<number> {
  const config = loadConfig(env, PLATFORMS);
  const conns = await openRedis(config, createLogger(config.logLevel, process.stderr), { workers: false });
  let n = 0;
  try {
    const audit = createRedisAuditLog(conns.redis, { prefix: config.prefix });
    const seals = createRedisAuditSeals(conns.redis, { prefix: config.prefix });
    for await (const r of exportAudit(audit, seals, config.prefix, o)) {
      await write(r);
      if (r.record === 'entry') n += 1;
    }
    return n;
  } finally {
    await conns.close();
  }
}
