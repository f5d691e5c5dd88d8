// Making untrusted text (agent-supplied intent, targets, parameters; people's reasons)
// safe for Slack. Slack parses `<...>` as mentions and links (`<!channel>`, `<@U1>`,
// `<https://x|label>`), so &, < and > are escaped everywhere; in mrkdwn the formatting
// characters are also swapped for look-alikes so an agent cannot bold, strike, quote or
// code-format its own words, and `@channel`-style words are broken so they never ping.

import type { types } from '@slack/bolt';
import { truncate as cutText } from '../../src/core/card.ts';

type PlainText = types.PlainTextElement;
type Mrkdwn = types.MrkdwnElement;

export function escapeEntities(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const MRKDWN_LOOKALIKES: Record<string, string> = {
  '*': '\u2217', // ∗ asterisk operator
  _: '\u02CD', // ˍ modifier letter low macron
  '~': '\u223C', // ∼ tilde operator
  '`': '\u02CB', // ˋ modifier letter grave accent
};

/** For mrkdwn: escapes entities and neutralises formatting, quotes and broadcast words. */
export function neutralize(text: string): string {
  return escapeEntities(text)
    .replace(/[*_~`]/g, (c) => MRKDWN_LOOKALIKES[c] ?? c)
    .replace(/^(\s*)&gt;/gm, '$1\u200B&gt;')
    .replace(/@(channel|here|everyone)\b/gi, '@\u2060$1')
    .replace(/!(channel|here|everyone|subteam)\b/gi, '!\u2060$1');
}

/** Cuts to at most `max` code units, never inside a surrogate pair or an `&...;` entity. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  // Never leave half an escape (`&am…`) behind the cut.
  return `${cutText(text, max).slice(0, -1).replace(/&[a-z]{0,4}$/, '')}…`;
}

/** Escaped and cut to Slack's limit for the field it goes into (limits count the escaped text). */
export function plain(text: string, max = 3000): PlainText {
  const safe = truncate(escapeEntities(text.length > max * 2 ? text.slice(0, max * 2) : text), max);
  return { type: 'plain_text', text: safe.length > 0 ? safe : ' ', emoji: false };
}

/** For mrkdwn written by countersign; interpolate untrusted parts through `neutralize`. */
export function mrkdwn(text: string, max = 3000): Mrkdwn {
  return { type: 'mrkdwn', text: truncate(text, max), verbatim: true };
}

/** Slack's date token renders in each viewer's time zone; the fallback is the ISO time. */
export function slackDate(isoTime: string): string {
  const ms = Date.parse(isoTime);
  if (Number.isNaN(ms)) return neutralize(isoTime);
  const fallback = isoTime.replace(/\.\d{3}Z$/, 'Z');
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|${fallback}>`;
}
