import { ExecutorUnreachableError, type Executor, type ExecutorConnection } from '../../../src/core/execution-ports.ts';
import type { ExecutionResult } from '../../../src/core/execution.ts';

// A scripted executor: each `send` gets the next answer a test set (a response, a timeout, a
// lost connection, or a function of the request), and everything that crossed the line is
// recorded. `unreachable()` makes the next connects fail as a webhook that cannot be reached
// does (ExecutorUnreachableError: nothing was sent). Without a scripted answer, send answers
// 200 with an empty JSON body.

export type SentResult = Extract<ExecutionResult, { kind: 'response' | 'timeout' | 'lost' }>;

export interface SentRequest {
  url: string;
  timeoutMs: number;
  token: string;
  body: string;
}

export type ScriptedAnswer = SentResult | ((request: SentRequest) => SentResult | Promise<SentResult>);

export interface ScriptedExecutor extends Executor {
  /** Queues answers for the next sends, one each, in order. */
  answer(...answers: ScriptedAnswer[]): void;
  /** The next `times` connects throw ExecutorUnreachableError (Infinity: until `reachable()`). */
  unreachable(times?: number): void;
  reachable(): void;
  /** Every connect, whether or not it succeeded. */
  readonly connects: { url: string; timeoutMs: number }[];
  /** Every request sent (token and body as they left). */
  readonly sent: SentRequest[];
  /** Connections opened and not yet closed. */
  open(): number;
}

export const DEFAULT_ANSWER: SentResult = { kind: 'response', status_code: 200, body: '{}', duration_ms: 1 };

export function createScriptedExecutor(): ScriptedExecutor {
  const answers: ScriptedAnswer[] = [];
  const connects: { url: string; timeoutMs: number }[] = [];
  const sent: SentRequest[] = [];
  let failing = 0;
  let open = 0;

  return {
    connects,
    sent,
    answer(...next) {
      answers.push(...next);
    },
    unreachable(times = 1) {
      failing = times;
    },
    reachable() {
      failing = 0;
    },
    open: () => open,
    kind: 'webhook',
    async connect(spec) {
      const url = String(spec.settings['url']);
      const timeoutMs = spec.timeout_ms;
      connects.push({ url, timeoutMs });
      if (failing > 0) {
        failing -= 1;
        throw new ExecutorUnreachableError('cannot reach the executor for this tool (ECONNREFUSED)');
      }
      open += 1;
      let closed = false;
      const connection: ExecutorConnection = {
        async send(token, execution) {
          const body = JSON.stringify(execution);
          if (closed) throw new Error('send on a closed executor connection');
          const request = { url, timeoutMs, token, body };
          sent.push(request);
          const next = answers.shift() ?? DEFAULT_ANSWER;
          return typeof next === 'function' ? next(request) : { ...next };
        },
        close() {
          if (closed) return;
          closed = true;
          open -= 1;
        },
      };
      return connection;
    },
  };
}
