#!/usr/bin/env node
// The `countersign` command. It runs the compiled code in dist/ (`npm run build`, also run
// by `npm install`) when that build is at least as new as every source file; otherwise, e.g.
// right after an edit, it runs the TypeScript sources through tsx's loader, so no build step
// is ever needed. COUNTERSIGN_RUN_FROM=src|dist forces one.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// A directory's own time changes when a file in it is added, removed or renamed.
function newestSource(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function buildIsCurrent() {
  try {
    const built = statSync(join(root, 'dist', '.built')).mtimeMs;
    return ['src', 'adapters'].every((dir) => newestSource(join(root, dir)) <= built);
  } catch {
    return false;
  }
}

const from = process.env.COUNTERSIGN_RUN_FROM ?? (buildIsCurrent() ? 'dist' : 'src');
let runCli;
if (from === 'dist') {
  ({ runCli } = await import('../dist/src/cli.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ runCli } = await import('../src/cli.ts'));
}
process.exitCode = await runCli(process.argv.slice(2), process.env);
