#!/usr/bin/env node
// `npm run build` (also run by `npm install`, as `prepare`): compiles src/ and adapters/ to
// dist/ with tsc, without type checking (that is `npm run typecheck`'s job, and a type
// error must not break an install), and copies the files the code reads next to itself
// (Lua scripts, the console's static files). bin/countersign.js runs dist/ only while the
// sources match the fingerprint recorded here (bin/source-fingerprint.js), else the
// sources through tsx: the compiled code saves the loader's ~35 MB and its start-up compile.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFingerprint } from './source-fingerprint.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// `--if-possible` (the `prepare` hook): a failed build warns instead of failing `npm install`.
const lenient = process.argv.includes('--if-possible');
const fail = (why) => {
  console.error(`build: ${why}; countersign will run from the sources (through tsx)`);
  process.exit(lenient ? 0 : 1);
};

// `--out NAME`: another folder of the project root (so that packages resolve), for tests;
// only `dist` or names starting `.build-`, so a typo cannot replace the sources.
const outAt = process.argv.indexOf('--out');
const outName = outAt > 0 ? (process.argv[outAt + 1] ?? '') : 'dist';
if (outName !== 'dist' && !/^\.build-[\w.-]+$/.test(outName)) fail(`--out must be dist or .build-NAME, not "${outName}"`);
const out = join(root, outName);

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // A production install omits TypeScript; a dist/ copied in from elsewhere stays as it is.
  fail('typescript is not installed');
}

// Built in a fresh folder beside the target and swapped in by renames, so that no one ever
// runs a half-written build: the old build is moved aside first (its own fresh name), then
// the new one moved in. When another build got there between the two renames, its build is
// as good as ours: ours is dropped. Only folders this process made are ever deleted.
const staging = mkdtempSync(join(root, '.build-staging-'));
let aside = null;
try {
  const fingerprint = sourceFingerprint(root); // before compiling: an edit during tsc shows as a change
  const run = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--noCheck', '--outDir', staging], { stdio: 'inherit' });
  if (run.status !== 0) throw new Error('tsc failed');
  const copyAssets = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) copyAssets(path);
      else if (!entry.name.endsWith('.ts') && !entry.name.endsWith('.md')) {
        mkdirSync(join(staging, dir), { recursive: true });
        cpSync(join(root, path), join(staging, path));
      }
    }
  };
  for (const dir of ['src', 'adapters']) copyAssets(dir);
  writeFileSync(join(staging, '.built'), `${fingerprint}\n`);
  aside = `${staging}-old`;
  try {
    renameSync(out, aside);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    aside = null;
  }
  try {
    renameSync(staging, out);
  } catch (e) {
    if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    console.error('build: another build finished first; keeping it');
  }
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
} finally {
  rmSync(staging, { recursive: true, force: true });
  if (aside !== null) rmSync(aside, { recursive: true, force: true });
}
console.log(`build: ${relative(process.cwd(), out) || basename(out)} ready`);
