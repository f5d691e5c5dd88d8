import { checkJsonMediaType, parseJsonBytes } from '../../src/core/json-input.ts';
import type { RequestContext } from './router.ts';

// The one way a route reads a JSON body. The caller authenticates the raw bytes first
// (ctx.body(): the signature covers exactly them), so nothing here runs for a forged request
// on a signed route; the checks themselves are core's (src/core/json-input.ts).

/** The parsed body, or a 415 / 400 that names what is wrong. An empty body reads as `{}`. */
export async function readJsonBody(ctx: RequestContext): Promise<unknown> {
  const raw = await ctx.body();
  if (raw.length === 0) return {};
  checkJsonMediaType(ctx.req.headers['content-type']);
  return parseJsonBytes(raw);
}
