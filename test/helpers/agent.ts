import { signedHeaders } from '../../src/core/signing.ts';

// A test agent that signs requests exactly as DESIGN.md says real agents do.

export interface AgentResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestAgent {
  id: string;
  request<T = any>(method: string, path: string, body?: unknown, options?: { headers?: Record<string, string>; raw?: string; now?: number }): Promise<AgentResponse<T>>;
  propose<T = any>(body: unknown): Promise<AgentResponse<T>>;
}

export function testAgent(baseUrl: string, id: string, secret: string): TestAgent {
  const agent: TestAgent = {
    id,
    async request(method, path, body, options = {}) {
      const raw = options.raw ?? (body === undefined ? '' : JSON.stringify(body));
      const headers = { ...signedHeaders(id, secret, { method, path, body: raw }, options.now ?? Date.now()), ...options.headers };
      const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(method === 'GET' ? {} : { body: raw }) });
      const text = await res.text();
      return { status: res.status, body: text === '' ? null : JSON.parse(text), headers: res.headers };
    },
    propose(body) {
      return agent.request('POST', '/v1/proposals', body);
    },
  };
  return agent;
}

let made = 0;

/**
 * A small valid proposal; override what a test is about. Each default intent is distinct:
 * the same signed bytes within one second are one request (a retry), by design.
 */
export function proposalBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  made += 1;
  return {
    intent: `Refund invoice 4711: the customer was charged twice (#${made})`,
    action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_123', parameters: { amount: 420, currency: 'EUR' } },
    context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 420, currency: 'EUR' } },
    ...overrides,
  };
}
