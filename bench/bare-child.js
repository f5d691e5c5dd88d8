import { createServer } from 'node:http';

// Baseline: a bare Node HTTP server that reads the body and answers 200, nothing else.
// Plain JavaScript, like the countersign child: no TypeScript loader in a measured process.
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.send?.({ kind: 'ready', url: `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}` });
});
process.on('message', (m) => {
  if (m.kind === 'rss') process.send?.({ kind: 'rss', rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed });
});
process.on('disconnect', () => process.exit(0));
