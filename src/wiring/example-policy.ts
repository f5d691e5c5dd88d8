// The policy used when no policy file exists, so `countersign start` works with zero
// configuration: everything goes to the built-in web console and one demo person decides.
// policy.example.yaml at the repository root is the annotated, Slack/Teams version.

export const EXAMPLE_POLICY_YAML = `# Built-in example policy (no POLICY_FILE and no ./policy.yaml found).
version: 1
agents:
  - id: demo-agent
    sponsors: [sam]
    secret_env: COUNTERSIGN_DEMO_AGENT_SECRET
people:
  demo: {}
  sam: {}
groups:
  approvers: [demo]
  admins: [demo]
channels:
  ops: { console: true }
rules:
  - name: never-drop-production-databases
    when: action.tool == "postgres" && action.operation == "drop" && context.environment == "production"
    effect: deny
    reason: Dropping production databases is never delegated to agents
  - name: production-database-changes
    when: action.tool == "postgres" && context.environment == "production"
    effect: approve
    risk: critical
    route: ops
    approvers: approvers
    ttl: 30m
  - name: large-payments
    when: action.tool == "payments" && context.value.amount > 10000.0
    effect: approve
    risk: critical
    route: ops
    approvers: approvers
    ttl: 30m
  - name: payments
    when: action.tool == "payments"
    effect: approve
    risk: high
    route: ops
    approvers: approvers
  - name: reversible-internal-tagging
    when: action.operation == "tag" && context.reversible && context.destination == "internal"
    effect: allow
    risk: low
  - name: external-email
    when: action.tool == "email" && context.destination == "external"
    effect: approve
    risk: medium
    route: ops
    approvers: approvers
default: { effect: approve, risk: medium, route: ops, approvers: approvers, approvals: 1, ttl: 15m }
`;
