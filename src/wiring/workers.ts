// What each queue job runs: the use cases behind the notify / expire workers and the execute /
// callback workers.
import type { ExecutionHandlers } from '../../adapters/bullmq/execution-queues.ts';
import type { Queues, WorkerHandlers } from '../../adapters/bullmq/queues.ts';
import { callbackGaveUp, CallbackImpossibleError, deliverCallback } from '../app/agent-callbacks.ts';
import { deliverNotification, postNewCard, recordCardFailure, type NotifyDeps } from '../app/deliver-notification.ts';
import type { AppDeps } from '../app/deps.ts';
import { sweepCredentials } from '../app/task-credentials.ts';
import { checkTokenExpiry, executionGaveUp, reissueMissingTokens, RetryBeforeSendError, runExecution, sweepExecutions } from '../app/execute-approved.ts';
import type { ExecutionDeps } from '../app/execution-deps.ts';
import { expireOverdue, expireProposal } from '../app/proposals.ts';
import { repairMissingCards } from '../app/repair-cards.ts';
import { nudgeDue } from '../app/escalate.ts';


/**
 * A post job found the card's post claimed by another poster. That may be a worker that died
 * holding the claim (this very job, handed out again after it stalled): completed, the job would
 * never run again, and its id would keep the repair sweep from adding it anew. Failed, the queue
 * retries it: with the default backoff its attempts outlast the claim, and should they not, the
 * later round after card_failed posts it.
 */
export class CardPostClaimedError extends Error {}

export function notifyHandlers(deps: AppDeps, notify: NotifyDeps, queues: Queues): WorkerHandlers {
  return {
    notify: async (job) => {
      if (job.kind !== 'post') return deliverNotification(notify, job);
      if ((await postNewCard(notify, job.proposal_id, job.platform, job.step ?? 0)) === 'busy') {

        throw new CardPostClaimedError(`the ${job.platform} card of ${job.proposal_id} is being posted (its claim is held): tried again later`);
      }
    },
    notifyGaveUp: (job, error) => recordCardFailure(notify, job, error),
    expire: async (id) => void (await expireProposal(deps, id)),
    sweep: async () => {
      await expireOverdue(deps);
      // Escalation steps and reminders of pending proposals, due by the same clock (escalate.ts).
      await nudgeDue(deps);
      // Over-the-limit notices whose count moved since their last update (limit-notices.ts): the last count lands.
      await deps.limitAlerts?.flush();
    },
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
