// What a committed change triggers. Every change (a proposal received, a click, an expiry, a
// cancel, each step of an execution) goes through this one list; for each commit the
// subscribers run side by side (the numbers are for reading, not an order of execution), and a
// commit one of them makes (the token recorded on an approval) goes through the list next.
// See src/app/after-commit.ts.
import { callAgentBack } from '../app/agent-callbacks.ts';
import { countDecisions, scheduleExpiry, wakeWaiters, type CommitSubscriber } from '../app/after-commit.ts';
import type { AppDeps } from '../app/deps.ts';
import { issueOnApproval } from '../app/execute-approved.ts';
import type { ExecutionDeps } from '../app/execution-deps.ts';
import { notifyPlatforms } from '../app/notify-platforms.ts';
import { revokeWhenTaskEnds } from '../app/task-credentials.ts';

export function afterCommitSubscribers(deps: AppDeps, x: ExecutionDeps): CommitSubscriber[] {
  return [
    wakeWaiters(deps.changes), //      1. long-polls on every replica see the new status
    countDecisions(deps.metrics), //   2. time to a human decision, for /metrics
    scheduleExpiry(deps.jobs), //      3. a new pending proposal: a delayed job at its deadline
    notifyPlatforms(deps), //          4. cards posted or updated, thread replies, on every platform of the route
    issueOnApproval(x), //             5. approved: the token is minted, then the executor job, the callback or the poll hand-over
    callAgentBack(x), //               6. any later status: a signed callback to the agent
    revokeWhenTaskEnds(x), //          7. a task that ended: its login (rule `credentials`) removed
  ];
}
