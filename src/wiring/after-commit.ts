// What a committed change triggers. Every change (a proposal received, a click, an expiry, a
// cancel, each step of an execution) goes through this one list; for each commit the
// subscribers run side by side (the numbers are for reading, not an order of execution), and a
// commit one of them makes (the token recorded on an approval) goes through the list next.
// See src/app/after-commit.ts. Two things a new pending proposal needs have no subscriber:
// its expiry (the expire sweep reads the pending set every second) and its cards (the create
// step writes it to the card outbox, which the card relay reads: src/app/card-relay.ts).
import { callAgentBack } from '../app/agent-callbacks.ts';
import { countDecisions, wakeWaiters, type CommitSubscriber } from '../app/after-commit.ts';
import type { AppDeps } from '../app/deps.ts';
import { issueOnApproval } from '../app/execute-approved.ts';
import type { ExecutionDeps } from '../app/execution-deps.ts';
import { notifyPlatforms } from '../app/notify-platforms.ts';
import { revokeWhenTaskEnds } from '../app/task-credentials.ts';

export function afterCommitSubscribers(deps: AppDeps, x: ExecutionDeps): CommitSubscriber[] {
  return [
    wakeWaiters(deps.changes), //      1. long-polls on every replica see the new status
    countDecisions(deps.metrics), //   2. time to a human decision, for /metrics
    notifyPlatforms(deps), //          3. cards updated, thread replies, on every platform of the route (new cards: the card outbox)
    issueOnApproval(x), //             4. approved: the token is minted, then the executor job, the callback or the poll hand-over
    callAgentBack(x), //               5. any later status: a signed callback to the agent
    revokeWhenTaskEnds(x), //          6. a task that ended: its login (rule `credentials`) removed
  ];
}
