#!/usr/bin/env node
// The `countersign` command. It runs the compiled code in dist/ (`npm run build`, also run
// by `npm install`) while the sources are exactly those it was built from; otherwise, e.g.
// right after an edit, it runs the TypeScript sources through tsx's loader, so no build step
// is ever needed. COUNTERSIGN_RUN_FROM=src|dist forces one.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFingerprint } from './source-fingerprint.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function buildIsCurrent() {
  try {
    return readFileSync(join(root, 'dist', '.built'), 'utf8').trim() === sourceFingerprint(root);
  } catch {
    return false;
  }
}

const forced = process.env.COUNTERSIGN_RUN_FROM;
let runCli;
if (forced === 'dist' || (forced !== 'src' && buildIsCurrent())) {
  try {
    ({ runCli } = await import('../dist/src/cli.js'));
  } catch (e) {
    // A build swapped out from under us (another `npm run build` at this moment): the sources
    // are the same code.
    if (forced === 'dist' || e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
}
if (runCli === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ runCli } = await import('../src/cli.ts'));
}
process.exitCode = await runCli(process.argv.slice(2), process.env);
