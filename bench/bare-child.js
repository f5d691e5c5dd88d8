import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { AGENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../dist/src/core/signing.js';

// Baseline: the limit of a Node HTTP server on this machine for what an agent's request needs
// before any decision. It reads the body, checks the agent's HMAC signature with countersign's
// own code and steps (adapters/http/agent-auth.ts: the agent looked up by its header,
// verifySignature from the compiled src/core/signing.ts, the request's name hashed from the
// signature), JSON.parses the body and answers 201 with a small JSON; 401 and 400 as countersign
// would refuse. Nothing else: no schema, policy, Redis or follow-up work.
// Plain JavaScript on the compiled build, like the countersign child: no TypeScript loader in a
// measured process. Environment: BARE_AGENT_ID, BARE_AGENT_SECRET (the bench agent's).
// IPC: {kind:'rss'} -> {kind:'rss', rss, heapUsed}; {kind:'cpu'} -> {kind:'cpu', ms}.

const agents = new Map([[process.env['BARE_AGENT_ID'] ?? 'bench-agent', process.env['BARE_AGENT_SECRET'] ?? '']]);
const header = (headers, name) => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};
const answer = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const agentId = header(req.headers, AGENT_HEADER);
    const secret = agentId === undefined ? undefined : agents.get(agentId);
    if (secret === undefined) return answer(res, 401, { error: 'unauthorized' });
    const signature = header(req.headers, SIGNATURE_HEADER);
    const check = verifySignature(secret, header(req.headers, TIMESTAMP_HEADER), signature, { method: req.method ?? 'GET', path: req.url ?? '/', body }, Date.now());
    if (!check.ok) return answer(res, 401, { error: 'unauthorized' });
    const key = createHash('sha256').update(`${agentId}\n${signature ?? ''}`).digest('hex').slice(0, 40);
    let doc;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      return answer(res, 400, { error: 'invalid_json' });
    }
    if (typeof doc !== 'object' || doc === null) return answer(res, 400, { error: 'invalid_request' });
    answer(res, 201, { id: `p_${key.slice(0, 20)}`, status: 'received' });
  });
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.send?.({ kind: 'ready', url: `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}` });
});
process.on('message', (m) => {
  if (m.kind === 'rss') process.send?.({ kind: 'rss', rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed });
  else if (m.kind === 'cpu') {
    const u = process.cpuUsage();
    process.send?.({ kind: 'cpu', ms: (u.user + u.system) / 1000 });
  }
});
process.on('disconnect', () => process.exit(0));
