import { readdirSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { signedHeaders } from '../../src/core/signing.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

// Issue 12, item 4: bodies built to hurt. Every route that reads a JSON body goes through one
// path (authenticate the raw bytes, then media type, UTF-8, JSON, depth): a clear 4xx naming
// what is wrong, nothing stored, no stack trace in the logs.

let app: TestApp;
const logLines: string[] = [];
beforeAll(async () => {
  app = await startTestApp({
    env: { LOG_LEVEL: 'info' },
    start: {
      logStream: new Writable({
        write(chunk, _enc, done) {
          logLines.push(String(chunk));
          done();
        },
      }),
    },
  });
});

const FAKE_ID = `p_${'0'.repeat(26)}`;

async function storedCount(): Promise<number> {
  const counts = await app.running.deps.store.countByStatus();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Events of one type (cards posted by the workers land at any time, so never count them all). */
async function auditCount(type: 'proposal_received' | 'auth_failed'): Promise<number> {
  const res = await app.admin<{ events: { type: string }[] }>('/v1/audit?limit=500');
  return res.body.events.filter((e) => e.type === type).length;
}

/** A request signed over exactly these bytes, as a real agent would sign it. */
async function send(path: string, body: Buffer | string, headers: Record<string, string> = {}, agent: 'billing' | 'ops' = 'billing') {
  const id = agent === 'billing' ? 'billing-agent' : 'ops-agent';
  const signed = signedHeaders(id, app.secrets[agent], { method: 'POST', path, body }, Date.now());
  const res = await fetch(`${app.url}${path}`, { method: 'POST', headers: { ...signed, ...headers }, body });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : (JSON.parse(text) as any), headers: res.headers };
}

function nestedArrays(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

function nestedObjects(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** A proposal whose action.parameters.deep holds `inner` (raw JSON text). */
function proposalWith(inner: string): string {
  return `{"intent":"deep ${Math.random()}","action":{"tool":"payments","operation":"refund","target":"t","parameters":{"deep":${inner}}}}`;
}

describe('deeply nested JSON', () => {
  it.each([
    ['arrays 20,000 deep', nestedArrays(20_000), 'action.parameters.deep[0]'],
    ['objects 2,000 deep', nestedObjects(2_000), 'action.parameters.deep.a'],
  ])('%s: 400 naming the first path that goes too deep, nothing stored', async (_name, inner, pathStart) => {
    const before = { stored: await storedCount(), audit: await auditCount('proposal_received') };
    const res = await send('/v1/proposals', proposalWith(inner));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.issues).toHaveLength(1);
    const issue = res.body.issues[0];
    expect(issue.code).toBe('too_deep');
    expect(issue.path.startsWith(pathStart)).toBe(true);
    // The first container past depth 32 (the body is 1, action 2, parameters 3, deep 4): deep and 29 steps more.
    const steps = issue.path.slice('action.parameters.'.length).match(/\[\d+\]|[A-Za-z_]\w*/g) ?? [];
    expect(steps).toHaveLength(30);
    expect(res.body.message).toMatch(/32/);
    expect(await storedCount()).toBe(before.stored);
    expect(await auditCount('proposal_received')).toBe(before.audit);
  });

  it('accepts nesting up to 32 deep and refuses 33', async () => {
    // body 1, action 2, parameters 3, deep 4: 29 objects from deep on end at depth 32, 30 at 33.
    const ok = await send('/v1/proposals', proposalWith(nestedObjects(29)));
    expect(ok.status).toBe(201);
    const tooDeep = await send('/v1/proposals', proposalWith(nestedObjects(30)));
    expect(tooDeep.status).toBe(400);
    expect(tooDeep.body.issues[0]).toMatchObject({ code: 'too_deep', path: `action.parameters.deep${'.a'.repeat(29)}` });
  });

  it('is refused the same way on cancel, outcome and redeem', async () => {
    const deep = `{"reason":${nestedArrays(20_000)}}`;
    const cancel = await send(`/v1/proposals/${FAKE_ID}/cancel`, deep);
    expect(cancel.status).toBe(400);
    expect(cancel.body.issues[0]).toMatchObject({ code: 'too_deep' });
    expect(cancel.body.issues[0].path.startsWith('reason[0]')).toBe(true);
    const outcome = await send(`/v1/proposals/${FAKE_ID}/outcome`, `{"token":"x","status":"failed","detail":${nestedObjects(2_000)}}`);
    expect(outcome.status).toBe(400);
    expect(outcome.body.issues[0]).toMatchObject({ code: 'too_deep' });
    const redeem = await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"token":${nestedArrays(20_000)}}` });
    expect(redeem.status).toBe(400);
    expect(((await redeem.json()) as any).issues[0]).toMatchObject({ code: 'too_deep' });
  });

  it('is not even looked at before the signature is checked: a forged deep body is 401 and audited', async () => {
    const before = await auditCount('auth_failed');
    const body = proposalWith(nestedArrays(20_000));
    const signed = signedHeaders('billing-agent', 'not-the-secret', { method: 'POST', path: '/v1/proposals', body }, Date.now());
    const res = await fetch(`${app.url}/v1/proposals`, { method: 'POST', headers: signed, body });
    expect(res.status).toBe(401);
    expect(await auditCount('auth_failed')).toBe(before + 1);
  });
});

describe('invalid UTF-8', () => {
  it('in the intent is 400 saying the body is not valid UTF-8, nothing stored', async () => {
    const before = await storedCount();
    const body = Buffer.concat([
      Buffer.from('{"intent":"Refund invoice 4711 '),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
      Buffer.from('","action":{"tool":"payments","operation":"refund","target":"stripe:cus_1"}}'),
    ]);
    const res = await send('/v1/proposals', body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', issues: [{ path: '(body)', code: 'invalid_utf8' }] });
    expect(res.body.message).toMatch(/not valid UTF-8/);
    expect(await storedCount()).toBe(before);
  });

  it('as an encoded surrogate (CESU-8) is refused too', async () => {
    const body = Buffer.concat([Buffer.from('{"intent":"x'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('","action":{"tool":"a","operation":"b","target":"c"}}')]);
    const res = await send('/v1/proposals', body);
    expect(res.status).toBe(400);
    expect(res.body.issues[0].code).toBe('invalid_utf8');
  });
});

describe('media type', () => {
  it.each([
    ['text/plain', 'text/plain;charset=UTF-8'],
    ['form-encoded', 'application/x-www-form-urlencoded'],
    ['JSON in another charset', 'application/json; charset=iso-8859-1'],
    ['a JSON-like type', 'application/jsonx'],
  ])('%s is 415 unsupported_media_type, nothing stored', async (_name, type) => {
    const before = { stored: await storedCount(), audit: await auditCount('proposal_received') };
    const res = await send('/v1/proposals', JSON.stringify(proposalBody()), { 'content-type': type });
    expect(res.status).toBe(415);
    expect(res.body.error).toBe('unsupported_media_type');
    expect(res.body.message).toMatch(/application\/json/);
    expect(await storedCount()).toBe(before.stored);
    expect(await auditCount('proposal_received')).toBe(before.audit);
  });

  it('a body without a Content-Type is 415 as well', async () => {
    const body = JSON.stringify(proposalBody());
    const signed = signedHeaders('billing-agent', app.secrets.billing, { method: 'POST', path: '/v1/proposals', body }, Date.now());
    delete signed['content-type'];
    // fetch adds text/plain to a string body; a Buffer goes out without a type.
    const res = await fetch(`${app.url}/v1/proposals`, { method: 'POST', headers: signed, body: Buffer.from(body) });
    expect(res.status).toBe(415);
  });

  it.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON; Charset="UTF-8"'])('%s is accepted', async (type) => {
    const res = await send('/v1/proposals', JSON.stringify(proposalBody()), { 'content-type': type });
    expect(res.status).toBe(201);
  });

  it('is checked on cancel, outcome and redeem too; an empty body needs no type', async () => {
    const cancel = await send(`/v1/proposals/${FAKE_ID}/cancel`, '{"reason":"x"}', { 'content-type': 'text/plain' });
    expect(cancel.status).toBe(415);
    const outcome = await send(`/v1/proposals/${FAKE_ID}/outcome`, '{"token":"x","status":"failed"}', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(outcome.status).toBe(415);
    const redeem = await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"token":"x"}' });
    expect(redeem.status).toBe(415);
    const { body } = await send('/v1/proposals', JSON.stringify(proposalBody()));
    const emptyCancel = await send(`/v1/proposals/${body.id}/cancel`, Buffer.alloc(0), { 'content-type': 'text/plain' });
    expect(emptyCancel.status).toBe(200);
  });

  it('comes after authentication: a forged text/plain request is 401 and audited', async () => {
    const before = await auditCount('auth_failed');
    const body = JSON.stringify(proposalBody());
    const signed = signedHeaders('billing-agent', 'not-the-secret', { method: 'POST', path: '/v1/proposals', body }, Date.now());
    const res = await fetch(`${app.url}/v1/proposals`, { method: 'POST', headers: { ...signed, 'content-type': 'text/plain' }, body });
    expect(res.status).toBe(401);
    expect(await auditCount('auth_failed')).toBe(before + 1);
  });
});

describe('one path', () => {
  it('no HTTP route parses JSON itself: json-body.ts reads every body through core (so none skips the media type, UTF-8 and depth checks)', () => {
    const dir = new URL('../../adapters/http/', import.meta.url);
    const parsing = readdirSync(dir).filter((f) => f.endsWith('.ts') && /JSON\.parse\(/.test(readFileSync(new URL(f, dir), 'utf8')));
    expect(parsing).toEqual([]);
    const reader = readFileSync(new URL('json-body.ts', dir), 'utf8');
    expect(reader).toMatch(/checkJsonMediaType\(/);
    expect(reader).toMatch(/parseJsonBytes\(/);
  });
});

describe('logs', () => {
  it('hold no stack trace and no error line from any of the above', () => {
    const text = logLines.join('');
    expect(text).not.toMatch(/Maximum call stack/);
    expect(text).not.toMatch(/"stack"/);
    expect(text).not.toMatch(/unhandled error/);
    expect(logLines.filter((l) => JSON.parse(l).level >= 50)).toEqual([]);
  });
});
