// What each queue job runs: the use cases behind the notify / expire workers and the execute /
// callback workers.
import type { ExecutionHandlers } from '../../adapters/bullmq/execution-queues.ts';
import type { Queues, WorkerHandlers } from '../../adapters/bullmq/queues.ts';
import { callbackGaveUp, CallbackImpossibleError, deliverCallback } from '../app/agent-callbacks.ts';
import { deliverNotification, recordCardFailure, type NotifyDeps } from '../app/deliver-notification.ts';
import type { AppDeps } from '../app/deps.ts';
import { sweepCredentials } from '../app/task-credentials.ts';
import { checkTokenExpiry, executionGaveUp, reissueMissingTokens, RetryBeforeSendError, runExecution, sweepExecutions } from '../app/execute-approved.ts';
import type { ExecutionDeps } from '../app/execution-deps.ts';
import { expireOverdue, expireProposal } from '../app/proposals.ts';
import { repairMissingCards } from '../app/repair-cards.ts';

export function notifyHandlers(deps: AppDeps, notify: NotifyDeps, queues: Queues): WorkerHandlers {
  return {
    notify: (job) => deliverNotification(notify, job),
    notifyGaveUp: (job, error) => recordCardFailure(notify, job, error),
    expire: async (id) => void (await expireProposal(deps, id)),
    sweep: async () => void (await expireOverdue(deps)),
    repair: async () => void (await repairMissingCards({ ...notify, jobs: queues })),
  };
}

export function executionHandlers(x: ExecutionDeps): ExecutionHandlers {
  return {
    execute: (id) => runExecution(x, id),
    isRetryable: (e) => e instanceof RetryBeforeSendError,
    executeGaveUp: (id, error) => executionGaveUp(x, id, error),
    tokenExpiry: (id) => checkTokenExpiry(x, id),
    sweep: async () => {
      await sweepExecutions(x);
      await sweepCredentials(x);
    },
    reconcile: async () => void (await reissueMissingTokens(x)),
    callback: (id, status) => deliverCallback(x, id, status),
    isCallbackRetryable: (e) => !(e instanceof CallbackImpossibleError),
    callbackGaveUp: (id, status, attempts, e) => callbackGaveUp(x, id, status, attempts, e),
  };
}
