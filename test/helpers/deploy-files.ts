import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

// Readers for the deployment files (Dockerfile, compose.yaml, deploy/countersign.service), so
// tests can check what they promise and run their commands here: no image can be built on
// these machines. Each reads only the forms those files use; anything else fails loudly.

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const readRoot = (path: string): string => readFileSync(`${ROOT}${path}`, 'utf8');

export interface Instruction {
  keyword: string;
  args: string;
}
export interface Stage {
  base: string;
  name: string | null;
  instructions: Instruction[];
}

/** Stages of a Dockerfile: comments and blank lines dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending !== '') throw new Error('Dockerfile ends inside a continued line');
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (match === null) throw new Error(`Dockerfile: cannot read "${line}"`);
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!;
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (from === null) throw new Error(`Dockerfile: cannot read FROM ${args}`);
      stages.push({ base: from[1]!, name: from[2] ?? null, instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (stage === undefined) throw new Error(`Dockerfile: ${keyword} before FROM`);
      stage.instructions.push({ keyword, args });
    }
  }
  return stages;
}

export const all = (stage: Stage, keyword: string): string[] => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
export const last = (stage: Stage, keyword: string): string | undefined => all(stage, keyword).at(-1);

/** An exec-form argument (a JSON array of strings): CMD, ENTRYPOINT, HEALTHCHECK … CMD. */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not an exec-form array: ${args}`);
  return parsed as string[];
}

/** The stage's ENV, `KEY=value` pairs (no quoted values: the Dockerfile has none). */
export function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of all(stage, 'ENV')) {
    for (const pair of args.split(/\s+/)) {
      const at = pair.indexOf('=');
      if (at <= 0 || /["']/.test(pair)) throw new Error(`ENV: cannot read "${pair}"`);
      env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return env;
}

/** HEALTHCHECK's options (--interval=10s …) and its exec-form command. */
export function healthcheck(args: string): { options: Record<string, string>; command: string[] } {
  const match = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])$/.exec(args);
  if (match === null) throw new Error(`HEALTHCHECK is not "[--options] CMD [exec form]": ${args}`);
  const options = Object.fromEntries(
    match[1]!
      .trim()
      .split(/\s+/)
      .filter((o) => o !== '')
      .map((o) => o.slice(2).split('=') as [string, string]),
  );
  return { options, command: execForm(match[2]!) };
}

export function readDockerfile(): { build: Stage; runtime: Stage; stages: Stage[] } {
  const stages = parseDockerfile(readRoot('Dockerfile'));
  const build = stages.find((s) => s.name === 'build');
  const runtime = stages.at(-1);
  if (build === undefined || runtime === undefined) throw new Error('Dockerfile: expected a "build" stage and a final stage');
  return { build, runtime, stages };
}

// compose.yaml, as far as the tests read it.
export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  user?: string;
  env_file?: string | string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number; start_period?: string };
  restart?: string;
  read_only?: boolean;
  tmpfs?: string[];
  stop_grace_period?: string;
  ports?: string[];
}
export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

export function readCompose(): ComposeFile {
  return parse(readRoot('compose.yaml')) as ComposeFile;
}

/** A systemd unit's settings by section; a key given more than once keeps every value. */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const at = line.indexOf('=');
    if (current === null || at <= 0) throw new Error(`unit: cannot read "${line}"`);
    const key = line.slice(0, at).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(at + 1).trim()]);
  }
  return sections;
}

/** "15s", "1m", "500ms" as milliseconds (the forms compose and systemd files use here). */
export function durationMs(text: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(text.trim());
  if (match === null) throw new Error(`cannot read the duration "${text}"`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}
