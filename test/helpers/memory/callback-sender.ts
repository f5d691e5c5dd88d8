import type { CallbackSender } from '../../../src/core/ports.ts';

// The agent-callback transport as a recorder: every POST is kept (url, headers, body,
// timeout); each answers the next scripted status, or throws the next scripted error (a
// network failure, as fetch throws), or 200 when nothing is scripted.

export interface PostedCallback {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export interface MemoryCallbackSender extends CallbackSender {
  readonly posts: PostedCallback[];
  /** Queues the answers of the next posts: an HTTP status, or an error to throw. */
  answer(...answers: (number | Error)[]): void;
}

export function createMemoryCallbackSender(): MemoryCallbackSender {
  const posts: PostedCallback[] = [];
  const answers: (number | Error)[] = [];
  return {
    posts,
    answer(...next) {
      answers.push(...next);
    },
    async post(url, headers, body, timeoutMs) {
      posts.push({ url, headers: { ...headers }, body, timeoutMs });
      const next = answers.shift() ?? 200;
      if (next instanceof Error) throw next;
      return next;
    },
  };
}
