import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SLACK_EVENTS_PATH } from '../../adapters/slack/receiver.ts';

// The manifest people paste into Slack must point both request URLs at the endpoint the
// adapter serves and ask for no more scopes than countersign uses.

describe('adapters/slack/manifest.yaml', () => {
  const manifest = parse(readFileSync(new URL('../../adapters/slack/manifest.yaml', import.meta.url), 'utf8'));

  it('sends interactivity and the slash command to /slack/events', () => {
    expect(new URL(manifest.settings.interactivity.request_url).pathname).toBe(SLACK_EVENTS_PATH);
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(manifest.features.slash_commands).toEqual([expect.objectContaining({ command: '/countersign' })]);
    expect(new URL(manifest.features.slash_commands[0].url).pathname).toBe(SLACK_EVENTS_PATH);
    expect(manifest.settings.socket_mode_enabled).toBe(false);
  });

  it('asks only for the scopes countersign uses', () => {
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual(['chat:write', 'commands']);
  });
});
