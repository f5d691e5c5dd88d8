import { fileURLToPath } from 'node:url';

// The policy used when no policy file exists, so `countersign start` works with zero
// configuration: everything goes to the built-in web console and one demo person decides.
// policy.example.yaml at the repository root is the annotated, Slack/Teams version.
// Its MCP server is examples/mcp-demo-server.mjs, which countersign starts with this Node.

// From the sources this module is src/wiring/example-policy.ts; compiled, it is
// <dist or .build-NAME>/src/wiring/example-policy.js, one folder deeper under the project root
// (bin/build.js writes nowhere else). Either way the demo server is the checkout's own file, so a
// build never runs a stale copy of it.
const FROM_ROOT = import.meta.url.endsWith('.ts') ? '../../' : '../../../';
export const DEMO_MCP_SERVER = fileURLToPath(new URL(`${FROM_ROOT}examples/mcp-demo-server.mjs`, import.meta.url));

// JSON strings are YAML double-quoted strings: any path or program name goes in safely.
const yamlText = (s: string) => JSON.stringify(s);

export const EXAMPLE_POLICY_YAML = `# Built-in example policy (no POLICY_FILE and no ./policy.yaml found).
version: 1
agents:
  - id: demo-agent
    sponsors: [sam]
    secret_env: COUNTERSIGN_DEMO_AGENT_SECRET
    # Its bearer key for POST /mcp (generated and kept in the data dir when unset).
    mcp_key_env: COUNTERSIGN_DEMO_MCP_KEY
people:
  demo: {}
  sam: {}
groups:
  approvers: [demo]
  admins: [demo]
channels:
  ops: { console: true }
mcp:
  servers:
    # Tools the agent sees as billing__list_invoices, billing__refund, billing__delete_customer.
    # Not named "payments": the signed demo proposals use that tool, with context they declare.
    billing:
      command: [${yamlText(process.execPath)}, ${yamlText(DEMO_MCP_SERVER)}]
      # Injected into the server's environment only; redacted from whatever comes back.
      env: { DEMO_PAYMENTS_TOKEN: { env: COUNTERSIGN_DEMO_PAYMENTS_TOKEN } }
      target: invoice
      context: { data_sensitivity: confidential, environment: production }
      tools:
        list_invoices: { context: { destination: internal, reversible: true } }
        refund: { context: { destination: external, reversible: false, value: { amount_argument: amount, currency_argument: currency } } }
        delete_customer: { target: customer, context: { destination: external, reversible: false } }
rules:
  - name: payment-reads
    when: action.tool == "billing" && action.operation == "list_invoices"
    effect: allow
    risk: low
  - name: never-delete-customers
    when: action.tool == "billing" && action.operation == "delete_customer"
    effect: deny
    reason: Deleting customers is never delegated to agents
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
    when: action.tool in ["payments", "billing"] && context.value.amount > 10000.0
    effect: approve
    risk: critical
    route: ops
    approvers: approvers
    ttl: 30m
  - name: payments
    when: action.tool in ["payments", "billing"]
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
