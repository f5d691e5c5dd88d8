import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { recordDecision } from '../../src/app/record-decision.ts';
import type { CardRef, ThreadReply } from '../../src/core/card.ts';
import type { ChatChannel } from '../../src/core/ports.ts';
import { revokeAgent } from '../../src/wiring/cli-commands.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { actionBody, executionPolicy, waitForStatus } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer } from '../helpers/executor-server.ts';

// Execution in the conversation: the approved card's thread hears when the action starts
// and how it ended; the logs and the thread never carry the token. Also the CLI's kill switch.

const replies: ThreadReply[] = [];
const waiters: (() => void)[] = [];
const channel: ChatChannel = {
  platform: 'console',
  async postCard(target, card): Promise<CardRef> {
    return { platform: 'console', conversation: target, message: `m-${card.proposalId}` };
  },
  async updateCard() {},
  async replyInThread(_ref, reply) {
    replies.push(reply);
    waiters.splice(0).forEach((w) => w());
  },
};

async function repliesFor(id: string, count: number): Promise<ThreadReply[]> {
  for (;;) {
    const mine = replies.filter((r) => r.proposalId === id);
    if (mine.length >= count) return mine;
    await new Promise<void>((r) => waiters.push(r));
  }
}

const logLines: string[] = [];
let app: TestApp;
let executor: FakeHttpServer;
let policy: string;

beforeAll(async () => {
  executor = await startFakeHttpServer();
  executor.respond = (req) => req.reply(200, JSON.stringify({ ok: true, token_seen: String(req.headers.authorization) }));
  policy = executionPolicy({ executorUrl: executor.url });
  app = await startTestApp({
    policy,
    env: { LOG_LEVEL: 'trace' },
    start: {
      chatChannels: { console: channel },
      logStream: new Writable({
        write(chunk, _enc, done) {
          logLines.push(String(chunk));
          done();
        },
      }),
    },
  });
});

describe('execution in the thread', () => {
  it('replies when the approved action starts and when it ends, and never shows the token', async () => {
    const { body } = await app.ops.propose(actionBody('deploy', 'threaded', 'approve-me'));
    expect(body.status).toBe('pending');
    await recordDecision(app.running.deps, { proposalId: body.id, person: 'alice', platform: 'console', vote: 'approve' });
    await waitForStatus(app.ops, body.id, (s) => s === 'succeeded');
    const thread = await repliesFor(body.id, 4);
    const kinds = thread.map((r) => r.kind);
    expect(kinds).toEqual(expect.arrayContaining(['approval', 'decided', 'execution_started', 'execution_finished']));
    expect(thread.find((r) => r.kind === 'execution_started')!.text).toBe('Execution started: sent to the deploy executor');
    expect(thread.find((r) => r.kind === 'execution_finished')!.text).toMatch(/^Succeeded in \d+\.\d\d s, HTTP 200/);

    const token = String(executor.requests[0]!.headers.authorization).slice('Bearer '.length);
    expect(token.length).toBeGreaterThan(100);
    const signature = token.split('.')[2]!;
    expect(JSON.stringify(thread)).not.toContain(signature);
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('')).not.toContain(signature);
  });
});

describe('countersign revoke --agent (revokeAgent from main.ts)', () => {
  it('cancels the agent\'s pending proposals against the same Redis', async () => {
    const { body } = await app.billing.propose(actionBody('deploy', 'cli-revoked', 'approve-me'));
    const dir = mkdtempSync(join(tmpdir(), 'countersign-cli-'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, policy);
    const result = await revokeAgent(
      {
        REDIS_URL: inject('redisUrl')!,
        COUNTERSIGN_PREFIX: app.prefix,
        COUNTERSIGN_DATA_DIR: dir,
        POLICY_FILE: policyFile,
        AGENT_BILLING_SECRET: app.secrets.billing,
        AGENT_OPS_SECRET: app.secrets.ops,
        LOG_LEVEL: 'silent',
      },
      'billing-agent',
    );
    expect(result).toMatchObject({ agent: 'billing-agent', cancelled: [body.id] });
    const got = await app.billing.request('GET', `/v1/proposals/${body.id}`);
    expect(got.body).toMatchObject({ status: 'cancelled', resolution: { status: 'cancelled', by: 'admin:cli' } });
    const thread = await repliesFor(body.id, 1);
    expect(thread.find((r) => r.kind === 'cancelled')!.text).toBe('Cancelled by admin:cli: agent billing-agent was revoked');
  });
});
