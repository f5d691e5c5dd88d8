#!/usr/bin/env node
// `npm run build` (also run by `npm install`, as `prepare`): compiles src/ and adapters/ to
// dist/ with tsc, without type checking (that is `npm run typecheck`'s job, and a type
// error must not break an install), and copies the files the code reads next to itself
// (Lua scripts, the console's static files). bin/countersign.js runs dist/ when it is at
// least as new as every source file, else the sources through tsx: running the compiled
// code saves the loader's ~35 MB and its start-up compile.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// `--out DIR` (inside the project, so that packages resolve): a build elsewhere, for tests.
const outAt = process.argv.indexOf('--out');
const dist = outAt > 0 && process.argv[outAt + 1] !== undefined ? resolve(root, process.argv[outAt + 1]) : join(root, 'dist');
// `--if-possible` (the `prepare` hook): a failed build warns instead of failing `npm install`;
// countersign then runs from the sources.
const lenient = process.argv.includes('--if-possible');
const fail = (why) => {
  rmSync(dist, { recursive: true, force: true });
  console.error(`build: ${why}; countersign will run from the sources (through tsx)`);
  process.exit(lenient ? 0 : 1);
};
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  fail('typescript is not installed (a production install omits it)');
}

rmSync(dist, { recursive: true, force: true });
const run = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--noCheck', '--outDir', dist], { stdio: 'inherit' });
if (run.status !== 0) fail('tsc failed');

function copyAssets(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) copyAssets(path);
    else if (!entry.name.endsWith('.ts') && !entry.name.endsWith('.md')) {
      mkdirSync(join(dist, dir), { recursive: true });
      cpSync(join(root, path), join(dist, path));
    }
  }
}
for (const dir of ['src', 'adapters']) copyAssets(dir);
// Written last: its time says when a complete build finished (bin/countersign.js compares it).
writeFileSync(join(dist, '.built'), `${new Date().toISOString()}\n`);
console.log(`build: ${relative(process.cwd(), dist) || '.'} ready`);
