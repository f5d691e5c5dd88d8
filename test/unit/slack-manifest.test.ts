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

describe('adapters/slack/manifest-socket-mode.yaml', () => {
  const manifest = parse(readFileSync(new URL('../../adapters/slack/manifest-socket-mode.yaml', import.meta.url), 'utf8'));
  const http = parse(readFileSync(new URL('../../adapters/slack/manifest.yaml', import.meta.url), 'utf8'));

  it('turns Socket Mode on and names no request URL', () => {
    expect(manifest.settings.socket_mode_enabled).toBe(true);
    expect(manifest.settings.interactivity).toEqual({ is_enabled: true });
    expect(manifest.features.slash_commands).toEqual([expect.objectContaining({ command: '/countersign' })]);
    expect(JSON.stringify(manifest)).not.toMatch(/https?:\/\//);
  });

  it('is the HTTP manifest otherwise: same scopes, command and texts', () => {
    const { url: _url, ...command } = http.features.slash_commands[0];
    expect(manifest.features.slash_commands[0]).toEqual(command);
    expect(manifest.oauth_config).toEqual(http.oauth_config);
    expect(manifest.display_information).toEqual(http.display_information);
  });
});
