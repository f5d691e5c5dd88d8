import type { CallbackSender, ExecutionQueue, Executors, TokenLedger, TokenSigner } from '../core/ports.ts';
import type { ToolResultStore } from '../core/mcp-ports.ts';
import type { AppDeps } from './deps.ts';
import type { CredentialDeps } from './task-credentials.ts';

export interface ExecutionTuning {
  /** Slack after the executor's timeout before a claimed execution counts as abandoned. */
  leaseMarginMs: number;
  /** How long an agent that executes itself has, from its start, to report the outcome. */
  agentReportWindowMs: number;
  callbackTimeoutMs: number;
  /** Recovery looks back this far for approvals whose token was never issued (a crash). */
  reconcileWindowMs: number;
  /** …and leaves approvals younger than this to the process that is issuing them. */
  reconcileGraceMs: number;
}

export const DEFAULT_EXECUTION_TUNING: ExecutionTuning = {
  leaseMarginMs: 30_000,
  agentReportWindowMs: 60 * 60_000,
  callbackTimeoutMs: 10_000,
  reconcileWindowMs: 30 * 60_000,
  reconcileGraceMs: 30_000,
};

/** What the execution use cases need beyond AppDeps; `app` is the same object the rest uses. */
export interface ExecutionDeps {
  app: AppDeps;
  signer: TokenSigner;
  ledger: TokenLedger;
  queue: ExecutionQueue;
  /** By kind (`webhook`): the policy's executors entry for the tool says which. */
  executors: Executors;
  callbacks: CallbackSender;
  tokenTtlMs: number;
  tuning: ExecutionTuning;
  /** Where an MCP upstream's result waits for the agent (absent: nothing is kept). */
  results?: ToolResultStore;
  /** Just-in-time credentials (absent: a rule's `credentials` cannot be honoured). */
  credentials?: CredentialDeps;
}
