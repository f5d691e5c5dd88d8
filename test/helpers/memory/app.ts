import { createJwtSigner, generateSigningKey } from '../../../adapters/tokens/jwt-signer.ts';
import { callbackGaveUp, deliverCallback } from '../../../src/app/agent-callbacks.ts';
import { createCommitFlow, type CommitSubscriber } from '../../../src/app/after-commit.ts';
import { deliverNotification, type NotifyDeps } from '../../../src/app/deliver-notification.ts';
import type { AppDeps } from '../../../src/app/deps.ts';
import { checkTokenExpiry, runExecution } from '../../../src/app/execute-approved.ts';
import { DEFAULT_EXECUTION_TUNING, type ExecutionDeps, type ExecutionTuning } from '../../../src/app/execution-deps.ts';
import { expireOverdue } from '../../../src/app/proposals.ts';
import { recordDecision, type DecisionResult } from '../../../src/app/record-decision.ts';
import { submitProposal } from '../../../src/app/submit-proposal.ts';
import { relayCards } from '../../../src/app/card-relay.ts';
import type { AuditEventType } from '../../../src/core/audit.ts';
import type { CardModel, CardRef, ThreadReply } from '../../../src/core/card.ts';
import type { PlatformId } from '../../../src/core/platform.ts';
import { loadPolicy } from '../../../src/core/policy/load.ts';
import type { CompiledPolicy } from '../../../src/core/policy/evaluate.ts';
import type { AgentSpec } from '../../../src/core/policy/model.ts';
import type { ChatChannel, NotifyJob, StoredAuditEvent, TokenSigner } from '../../../src/core/ports.ts';
import { parseProposalInput, type Proposal, type Status, type Vote } from '../../../src/core/proposal.ts';
import { afterCommitSubscribers } from '../../../src/wiring/after-commit.ts';
import { POLICY_EXTENSIONS } from '../../../src/wiring/platforms.ts';
import { createMemoryAuditLog, type MemoryAuditLog } from './audit-log.ts';
import { createMemoryFailureLimiter } from './auth-failure-limiter.ts';
import { createMemoryAwayStore } from './away-store.ts';
import { createMemoryCallbackSender, type MemoryCallbackSender } from './callback-sender.ts';
import { createMemoryCardRefStore, type MemoryCardRefStore } from './card-ref-store.ts';
import { createMemoryChangeFeed, type MemoryChangeFeed } from './change-feed.ts';
import { createManualClock, T0, type ManualClock } from './clock.ts';
import { createMemoryExecutionQueue, type MemoryExecutionQueue } from './execution-queue.ts';
import { createScriptedExecutor, type ScriptedExecutor } from './executor.ts';
import { createMemoryJobScheduler, type MemoryJobScheduler } from './job-scheduler.ts';
import { createMemoryLogger, type MemoryLogger } from './logger.ts';
import { createMemoryMetrics, type MemoryMetrics } from './metrics.ts';
import { createMemoryProposalStore, type MemoryProposalStore } from './proposal-store.ts';
import { createMemoryCardOutbox, type MemoryCardOutbox } from './card-outbox.ts';
import { createMemoryTokenLedger, type MemoryTokenLedger } from './token-ledger.ts';

// countersign's use cases wired on the in-memory fakes, the way src/wiring/app-deps.ts wires
// them on Redis and BullMQ: one AppDeps, one ExecutionDeps, the real after-commit flow with
// the real subscribers (src/wiring/after-commit.ts), a policy read by the real loader with the
// real platform and executor keys. Nothing runs in the background: jobs are recorded, and a
// test runs them through their use cases (runNotifyJobs, runExecute, runCallbacks, runDue) as
// the workers in src/wiring/workers.ts would. Time moves only with `clock.advance`.

export const AGENT_SECRETS = {
  AGENT_BILLING_SECRET: 'billing-secret-0123456789abcdef',
  AGENT_OPS_SECRET: 'ops-secret-0123456789abcdef012345',
  AGENT_CALLBACK_SECRET: 'callback-secret-0123456789abcdef',
} as const;

export const CALLBACK_URL = 'https://callback-agent.test/countersign/hook?v=1';
export const EXECUTOR_URL = 'https://executor.test/deploy';
export const PUBLIC_URL = 'https://countersign.test';
export const ALICE_TEAMS = '00000000-0000-0000-0000-0000000a11ce';
export const BOARD_CONVERSATION = '19:board@thread.tacv2';

/**
 * billing-agent polls for its tokens (payments has no executor); ops-agent's deploys run on the
 * deploy executor (webhook, 5s); callback-agent is called back. dana sponsors billing-agent.
 */
export const TEST_POLICY = `
version: 1
agents:
  - id: billing-agent
    sponsors: [dana]
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
  - id: callback-agent
    secret_env: AGENT_CALLBACK_SECRET
    callback_url: ${CALLBACK_URL}
people:
  alice: { slack: U0ALICE, teams: ${ALICE_TEAMS} }
  bob: { slack: U0BOB }
  carol: { slack: U0CAROL }
  dana: { slack: U0DANA }
  erin: { slack: U0ERIN }
groups:
  finance: [alice, bob, dana]
  security: [alice, carol]
  admins: [alice]
channels:
  finance: { slack: C0FINANCE, console: true }
  secops: { slack: C0SECOPS, teams: secops, console: true }
  board: { teams: { conversation: "${BOARD_CONVERSATION}", service_url: "https://smba.test/teams/", tenant: tenant-1 } }
executors:
  deploy: { url: ${EXECUTOR_URL}, timeout: 5s }
rules:
  - name: never-drop-production-databases
    when: action.tool == "postgres" && action.operation == "drop" && context.environment == "production"
    effect: deny
    reason: Dropping production databases is never delegated to agents
  - name: large-payments
    when: action.tool == "payments" && context.value.amount > 10000.0
    effect: approve
    risk: critical
    route: finance
    approvers: finance
    approvals: 2
    ttl: 30m
  - name: payments
    when: action.tool == "payments"
    effect: approve
    risk: high
    route: finance
    approvers: finance
  - name: restarts
    when: action.tool == "deploy" && action.operation == "restart"
    effect: allow
    risk: low
  - name: deploys
    when: action.tool == "deploy"
    effect: approve
    risk: medium
    route: secops
    approvers: security
    ttl: 10m
  - name: minutes
    when: action.tool == "minutes"
    effect: approve
    risk: low
    route: board
    approvers: security
  - name: reversible-internal-tagging
    when: action.operation == "tag" && context.reversible && context.destination == "internal"
    effect: allow
    risk: low
default: { effect: approve, risk: medium, route: secops, approvers: security, approvals: 1, ttl: 15m }
`;

/** A ChatChannel that keeps what it was asked to show; `failNext` makes the next call throw. */
export interface RecordingChannel extends ChatChannel {
  readonly posts: { target: string; card: CardModel; ref: CardRef }[];
  readonly updates: { ref: CardRef; card: CardModel }[];
  readonly replies: { ref: CardRef; reply: ThreadReply }[];
  failNext(error?: Error): void;
}

export function createRecordingChannel(platform: PlatformId): RecordingChannel {
  const posts: RecordingChannel['posts'] = [];
  const updates: RecordingChannel['updates'] = [];
  const replies: RecordingChannel['replies'] = [];
  const failures: Error[] = [];
  const check = () => {
    const e = failures.shift();
    if (e !== undefined) throw e;
  };
  return {
    platform,
    posts,
    updates,
    replies,
    failNext(error = new Error(`${platform} is unavailable`)) {
      failures.push(error);
    },
    async postCard(target, card) {
      check();
      const ref: CardRef = { platform, conversation: target, message: `${platform}-m${posts.length + 1}` };
      posts.push({ target, card: structuredClone(card), ref });
      return ref;
    },
    async updateCard(ref, card) {
      check();
      updates.push({ ref: { ...ref }, card: structuredClone(card) });
    },
    async replyInThread(ref, reply) {
      check();
      replies.push({ ref: { ...ref }, reply: { ...reply } });
    },
  };
}

// Loading a policy compiles its CEL, and a signer imports its key: tens of milliseconds each,
// so tests share them (both are immutable).
const policies = new Map<string, CompiledPolicy>();
let sharedSigner: Promise<TokenSigner> | null = null;

function policyFrom(text: string, env: Record<string, string>): CompiledPolicy {
  const key = JSON.stringify([text, env]);
  let policy = policies.get(key);
  if (policy === undefined) policies.set(key, (policy = loadPolicy(text, 'policy.yaml', env, POLICY_EXTENSIONS)));
  return policy;
}

export interface MemoryAppOptions {
  policy?: string;
  env?: Record<string, string>;
  /** The platforms with an adapter in this process (default: slack, teams, console). */
  platforms?: PlatformId[];
  tokenTtlMs?: number;
  tuning?: Partial<ExecutionTuning>;
  /** Replaces the wired subscribers (after-commit tests); default: afterCommitSubscribers. */
  subscribers?: (deps: AppDeps, x: ExecutionDeps) => CommitSubscriber[];
}

export type MemoryApp = Awaited<ReturnType<typeof createMemoryApp>>;

export type ProposalRequest = { intent?: string; idempotency_key?: string; action?: Record<string, unknown>; context?: Record<string, unknown> };

export async function createMemoryApp(options: MemoryAppOptions = {}) {
  const clock: ManualClock = createManualClock(T0);
  const policy = policyFrom(options.policy ?? TEST_POLICY, { ...AGENT_SECRETS, ...options.env });
  const audit: MemoryAuditLog = createMemoryAuditLog({ clock });
  const ledger: MemoryTokenLedger = createMemoryTokenLedger({ clock });
  // As in Redis, where both read the same keys: the kill switch the ledger keeps is what the store refuses by.
  const outbox: MemoryCardOutbox = createMemoryCardOutbox(() => clock.now());
  // As in Redis, where a delegate's vote is committed against the absences' own hash.
  const away = createMemoryAwayStore({ audit });
  const store: MemoryProposalStore = createMemoryProposalStore({ audit, clock, revocations: { revocation: (agent) => ledger.revocation(agent) }, outbox, absences: (person) => away.stored(person) });
  const jobs: MemoryJobScheduler = createMemoryJobScheduler();
  const changes: MemoryChangeFeed = createMemoryChangeFeed();
  const logger: MemoryLogger = createMemoryLogger();
  const metrics: MemoryMetrics = createMemoryMetrics();
  const cards: MemoryCardRefStore = createMemoryCardRefStore({ clock, store, audit });
  const queue: MemoryExecutionQueue = createMemoryExecutionQueue();
  const executor: ScriptedExecutor = createScriptedExecutor();
  const callbacks: MemoryCallbackSender = createMemoryCallbackSender();
  const channels = new Map<PlatformId, RecordingChannel>((options.platforms ?? ['slack', 'teams', 'console']).map((p) => [p, createRecordingChannel(p)]));
  const commits = createCommitFlow(logger);
  const deps: AppDeps = {
    clock,
    policy,
    store,
    audit,
    jobs,
    changes,
    logger,
    metrics,
    publicUrl: PUBLIC_URL,
    proposalUrl: (id) => `${PUBLIC_URL}/console/proposals/${id}`,
    commits,
    refusalLimiter: createMemoryFailureLimiter(clock),
    away,
  };
  sharedSigner ??= generateSigningKey().then((key) => createJwtSigner(key, () => PUBLIC_URL));
  const signer = await sharedSigner;
  const x: ExecutionDeps = {
    app: deps,
    signer,
    ledger,
    queue,
    executors: new Map([['webhook', executor]]),
    callbacks,
    tokenTtlMs: options.tokenTtlMs ?? 5 * 60_000,
    tuning: { ...DEFAULT_EXECUTION_TUNING, ...options.tuning },
  };
  commits.subscribe((options.subscribers ?? afterCommitSubscribers)(deps, x));
  const notify: NotifyDeps = { store, audit, policy, clock, proposalUrl: deps.proposalUrl, logger, cards, channels };

  // What the tests already ran, so each recorded job runs once.
  const ran = new WeakSet<NotifyJob>();
  const done = { tokenExpiries: new Set<number>(), callbacks: 0 };

  const app = {
    clock, policy, audit, store, jobs, changes, logger, metrics, cards, ledger, queue, executor, callbacks, channels, signer, deps, x, notify, outbox,

    channel(platform: PlatformId): RecordingChannel {
      const c = channels.get(platform);
      if (c === undefined) throw new Error(`no ${platform} channel in this app`);
      return c;
    },

    agent(id: string): AgentSpec {
      const a = policy.agentById(id);
      if (a === undefined) throw new Error(`no agent ${id} in the policy`);
      return a;
    },

    /** Submits as `agent` (billing-agent); the request is completed with the schema's defaults. */
    /** Submits as `agent` (billing-agent), and waits for the follow-ups the 201 does not wait for. */
    async submit(request: ProposalRequest = {}, agent = 'billing-agent', requestKey: string | null = null): Promise<Proposal> {
      const { proposal } = await submitProposal(deps, app.agent(agent), app.input(request), { requestKey });
      await commits.idle();
      return proposal;
    },

    /** What the card relay does with what the outbox holds: cards posted (or queued, on failure); returns the entries left. */
    async relayCards(): Promise<string[]> {
      const entries = await outbox.take('memory-relay', 1000, 0);
      await outbox.done(await relayCards({ ...notify, jobs }, entries));
      return outbox.waiting();
    },

    input(request: ProposalRequest = {}) {
      return parseProposalInput({
        intent: request.intent ?? 'Refund invoice 4711',
        ...(request.idempotency_key === undefined ? {} : { idempotency_key: request.idempotency_key }),
        action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_123', ...request.action },
        context: request.context ?? {},
      });
    },

    async vote(proposalId: string, person: string, vote: Vote = 'approve', reason: string | null = null, platform: PlatformId = 'slack'): Promise<DecisionResult> {
      return recordDecision(deps, { proposalId, person, platform, vote, reason });
    },

    async get(id: string): Promise<Proposal> {
      const p = await store.get(id);
      if (p === null) throw new Error(`no proposal ${id}`);
      return p;
    },

    /** Audit entries, oldest first, of a type and/or about a proposal. */
    events(filter: { type?: AuditEventType; proposal?: string } = {}): StoredAuditEvent[] {
      return audit.entries().filter((e) => (filter.type === undefined || e.type === filter.type) && (filter.proposal === undefined || e.proposal_id === filter.proposal));
    },

    /** The types of a proposal's audit entries, in order. */
    trail(proposalId: string): string[] {
      return app.events({ proposal: proposalId }).map((e) => e.type);
    },

    /** Notify jobs recorded and not yet run by runNotifyJobs. */
    notifyJobs(): NotifyJob[] {
      return jobs.notified.filter((j) => !ran.has(j));
    },

    /** Relays the outbox's new cards, then runs every recorded notify job not yet run, in order (as the notify worker would); returns the failures. */
    async runNotifyJobs(): Promise<{ job: NotifyJob; error: unknown }[]> {
      await app.relayCards();
      const failed: { job: NotifyJob; error: unknown }[] = [];
      for (let next = app.notifyJobs()[0]; next !== undefined; next = app.notifyJobs()[0]) {
        ran.add(next);
        await deliverNotification(notify, next).catch((error: unknown) => failed.push({ job: next!, error }));
      }
      return failed;
    },

    /** The execute job: a worker takes it off the queue (it can no longer be removed), then runExecution. */
    async runExecute(proposalId: string): Promise<void> {
      queue.start(proposalId);
      await runExecution(x, proposalId);
    },

    /** Every callback job recorded and not yet run, through deliverCallback; returns the failures. */
    async runCallbacks(): Promise<{ proposalId: string; status: Status; error: unknown }[]> {
      const failed: { proposalId: string; status: Status; error: unknown }[] = [];
      while (done.callbacks < queue.callbacks.length) {
        const job = queue.callbacks[done.callbacks++]!;
        await deliverCallback(x, job.proposalId, job.status).catch((error: unknown) => failed.push({ ...job, error }));
      }
      return failed;
    },

    /** The callback queue's last word on a job whose retries all failed. */
    async callbackGaveUp(proposalId: string, status: Status, attempts: number, error: unknown): Promise<void> {
      await callbackGaveUp(x, proposalId, status, attempts, error);
    },

    /** Runs what is due now: the expire sweep, then the delayed token expiries. */
    async runDue(): Promise<void> {
      await expireOverdue(deps);
      for (const [i, job] of queue.tokenExpiries.entries()) {
        if (done.tokenExpiries.has(i) || job.at > clock.now()) continue;
        done.tokenExpiries.add(i);
        await checkTokenExpiry(x, job.proposalId);
      }
    },
  };
  return app;
}
