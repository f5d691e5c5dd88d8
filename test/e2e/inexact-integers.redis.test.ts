import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

// JSON numbers are doubles here: an agent written in Go, Java or Python that sends a 64-bit id as
// a number (9007199254740993) had it stored as 9007199254740992, shown so to the approver and
// handed back so in the approved action, which then acted on another account than the agent
// named. A whole number beyond 2^53 - 1 is refused at intake, naming the field; as a string it is kept.

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.running.stop());

describe('whole numbers JSON cannot carry exactly', () => {
  it('a parameter beyond 2^53 - 1 is a 400 naming it, and nothing is stored', async () => {
    const body = proposalBody();
    const raw = JSON.stringify(body).replace('"parameters":{', '"parameters":{"account":9007199254740993,"ids":[1,18446744073709551615],');
    const res = await app.billing.request('POST', '/v1/proposals', undefined, { raw });
    expect(res.status).toBe(400);
    expect(res.body.issues.map((i: { path: string }) => i.path)).toEqual(['action.parameters.account', 'action.parameters.ids.1']);
    expect(res.body.issues[0].message).toMatch(/send it as a string/);
    const stored = (await app.admin(`/v1/audit?q=${encodeURIComponent(String(body['intent']))}&limit=10`)).body.events;
    expect(stored).toEqual([]);
  });

  it('the same id as a string, and ordinary numbers (decimals, large amounts), are kept exactly', async () => {
    const body = proposalBody();
    const raw = JSON.stringify(body).replace('"parameters":{', '"parameters":{"account":"9007199254740993","max":9007199254740991,"rate":0.1,');
    const res = await app.billing.request('POST', '/v1/proposals', undefined, { raw });
    expect(res.status).toBe(201);
    const read = await app.billing.request('GET', `/v1/proposals/${res.body.id}`);
    expect(read.body.action.parameters).toMatchObject({ account: '9007199254740993', max: 9007199254740991, rate: 0.1 });
  });
});
