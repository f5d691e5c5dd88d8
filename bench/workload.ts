// What the benchmark submits: proposal bodies that differ per call, and the policy they meet.

let seq = 0;
/** A fresh number for each call: distinct bodies, because identical signed bytes dedupe. */
export const nextSeq = (): number => ++seq;
export function paymentBody(): string {
  const seq = nextSeq();
  return JSON.stringify({
    intent: `Refund invoice ${seq}: the customer was charged twice`,
    action: { tool: 'payments', operation: 'refund', target: `stripe:cus_${seq % 997}`, parameters: { amount: 420, currency: 'EUR' } },
    context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 420, currency: 'EUR' } },
  });
}
export function tagBody(): string {
  const seq = nextSeq();
  return JSON.stringify({
    intent: `Tag ticket ${seq} as duplicate`,
    action: { tool: 'crm', operation: 'tag', target: `ticket:${seq}`, parameters: { tag: 'duplicate' } },
    context: { destination: 'internal', reversible: true },
  });
}

export function benchPolicy(executorUrl: string): string {
  return `
version: 1
agents:
  - id: bench-agent
    secret_env: AGENT_BENCH_SECRET
people:
  alice: { slack: U0ALICE }
  bob: { slack: U0BOB }
groups:
  finance: [alice, bob]
  admins: [alice]
channels:
  finance: { slack: C0FINANCE }
executors:
  payments: { url: "${executorUrl}", timeout: 10s }
  crm: { url: "${executorUrl}", timeout: 10s }
rules:
  - name: reversible-internal-tagging
    when: action.operation == "tag" && context.reversible && context.destination == "internal"
    effect: allow
    risk: low
  - name: payments
    when: action.tool == "payments"
    effect: approve
    risk: high
    route: finance
    approvers: finance
    ttl: 2h
default: { effect: approve, risk: medium, route: finance, approvers: finance, approvals: 1, ttl: 2h }
`;
}

