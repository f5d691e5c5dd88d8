import { createServer, type IncomingMessage, type Server } from 'node:http';

// A local stand-in for the Bot Connector service countersign's Teams adapter calls
// (serviceUrl = http://127.0.0.1:<port>/): new conversations (a card's thread in a channel),
// activities, replies and updates are recorded and answered as Teams does. Also builds the
// activities Teams sends to countersign's /api/messages (messages, Action.Execute invokes).

export interface ConnectorCall {
  method: string;
  /** `createConversation`, `sendToConversation`, `replyToActivity`, `updateActivity`, `getMember`. */
  op: string;
  /** Conversation id, URL-decoded (for createConversation: the one created). */
  conversation: string | null;
  activityId: string | null;
  body: any;
  authorization: string | null;
}

export interface FakeBotConnector {
  /** The serviceUrl activities carry. */
  serviceUrl: string;
  calls: ConnectorCall[];
  callsTo(op: string): ConnectorCall[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? null : JSON.parse(text);
}

export async function startFakeBotConnector(): Promise<FakeBotConnector> {
  const calls: ConnectorCall[] = [];
  let seq = 1_700_000_000_000;
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const body = await readBody(req);
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const authorization = typeof req.headers['authorization'] === 'string' ? req.headers['authorization'] : null;
    const answer = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    const record = (op: string, conversation: string | null, activityId: string | null) =>
      calls.push({ method: req.method ?? '', op, conversation, activityId, body, authorization });
    // /v3/conversations[/{id}[/activities[/{activityId}]]] and /v3/conversations/{id}/members/{member}
    if (parts[0] !== 'v3' || parts[1] !== 'conversations') return answer(404, { error: { code: 'NotFound' } });
    const conversation = parts[2] === undefined ? null : decodeURIComponent(parts[2]);
    if (req.method === 'POST' && conversation === null) {
      const channel = String(body?.channelData?.channel?.id ?? 'unknown');
      const messageId = String(++seq);
      const id = `${channel};messageid=${messageId}`;
      record('createConversation', id, messageId);
      return answer(201, { id, activityId: messageId, serviceUrl: undefined });
    }
    if (conversation !== null && parts[3] === 'activities') {
      const activityId = parts[4] === undefined ? null : decodeURIComponent(parts[4]);
      if (req.method === 'POST' && activityId === null) {
        const id = String(++seq);
        record('sendToConversation', conversation, id);
        return answer(201, { id });
      }
      if (req.method === 'POST') {
        record('replyToActivity', conversation, activityId);
        return answer(201, { id: String(++seq) });
      }
      if (req.method === 'PUT') {
        record('updateActivity', conversation, activityId);
        return answer(200, { id: activityId });
      }
    }
    if (req.method === 'GET' && conversation !== null && parts[3] === 'members' && parts[4] !== undefined) {
      record('getMember', conversation, null);
      return answer(200, { id: decodeURIComponent(parts[4]), name: 'Someone', aadObjectId: decodeURIComponent(parts[4]) });
    }
    return answer(404, { error: { code: 'NotFound' } });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    serviceUrl: `http://127.0.0.1:${port}/`,
    calls,
    callsTo: (op) => calls.filter((c) => c.op === op),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---- activities as Teams sends them ----

export const TENANT = 'tenant-0000-test';
let activitySeq = 0;

export interface Sender {
  aad: string;
  name?: string;
  tenant?: string;
}

function from(s: Sender) {
  return { id: `29:${s.aad}`, name: s.name ?? 'Someone', aadObjectId: s.aad };
}

/** `@countersign <text>` written in a channel (a new thread of its own, as Teams sends it). */
export function channelMessage(serviceUrl: string, channel: string, sender: Sender, text: string): Record<string, unknown> {
  const id = String(++activitySeq);
  const tenant = sender.tenant ?? TENANT;
  return {
    type: 'message',
    id,
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl,
    from: from(sender),
    recipient: { id: '28:countersign-bot', name: 'countersign' },
    conversation: { id: `${channel};messageid=${id}`, isGroup: true, conversationType: 'channel', tenantId: tenant },
    text: `<at>countersign</at> ${text}`,
    textFormat: 'plain',
    entities: [{ type: 'mention', text: '<at>countersign</at>', mentioned: { id: '28:countersign-bot', name: 'countersign' } }],
    channelData: { teamsChannelId: channel, teamsTeamId: '19:team@thread.tacv2', channel: { id: channel }, team: { id: '19:team@thread.tacv2' }, tenant: { id: tenant } },
  };
}

/** An Action.Execute click on a card posted in `thread` (`<channel>;messageid=<id>`). */
export function cardInvoke(
  serviceUrl: string,
  thread: { conversation: string; message: string },
  sender: Sender,
  verb: string,
  data: Record<string, unknown>,
): Record<string, unknown> {
  const tenant = sender.tenant ?? TENANT;
  const channel = thread.conversation.split(';')[0]!;
  return {
    type: 'invoke',
    name: 'adaptiveCard/action',
    id: `f:${++activitySeq}`,
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl,
    from: from(sender),
    recipient: { id: '28:countersign-bot', name: 'countersign' },
    conversation: { id: thread.conversation, isGroup: true, conversationType: 'channel', tenantId: tenant },
    replyToId: thread.message,
    value: { action: { type: 'Action.Execute', verb, data }, trigger: 'manual' },
    channelData: { channel: { id: channel }, tenant: { id: tenant }, source: { name: 'message' } },
  };
}

export async function postActivity(baseUrl: string, activity: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${baseUrl}/api/messages`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(activity) });
  const text = await res.text();
  let json: any = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}
