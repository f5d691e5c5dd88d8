import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The layering of DESIGN.md, checked on every import of the product code (src/ and adapters/):
//   - src/core imports nothing outside itself but its few pure libraries;
//   - src/app imports only src/core (and its own files);
//   - an adapter never imports another adapter (the composition root wires them);
//   - only the composition root (src/main.ts, src/wiring/) imports adapters from src/;
//   - only src/config.ts reads process.env.

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function files(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return files(path);
    return path.endsWith('.ts') ? [path.split(sep).join('/')] : [];
  });
}

interface Import {
  file: string;
  /** `import type` / `export type`: erased at run time. */
  typeOnly: boolean;
  /** The specifier as written. */
  spec: string;
  /** Repository path for relative imports, else null (a package or node: builtin). */
  target: string | null;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(join(root, file), 'utf8');
  const found = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s([^'"]*?)from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)].map((m) => ({
    spec: m[2] ?? m[3] ?? m[4]!,
    typeOnly: m[1] !== undefined && /^type\s/.test(m[1]),
  }));
  return found.map(({ spec, typeOnly }) => ({
    file,
    typeOnly,
    spec,
    target: spec.startsWith('.') ? relative(root, resolve(root, dirname(file), spec)).split(sep).join('/') : null,
  }));
}

const product = [...files('src'), ...files('adapters')];
const all = product.flatMap(importsOf);
const show = (list: Import[]) => list.map((i) => `${i.file} imports ${i.spec}`);

// Pure libraries core may use: schemas, policy language, YAML, canonical JSON, hashing.
const CORE_PACKAGES = new Set(['zod', 'yaml', '@marcbachmann/cel-js', 'canonicalize', 'node:crypto']);
const APP_PACKAGES = new Set(['zod', 'node:crypto']);
const isCompositionRoot = (file: string) => file === 'src/main.ts' || file.startsWith('src/wiring/');
const adapterOf = (path: string) => (path.startsWith('adapters/') ? path.split('/')[1]! : null);

describe('boundaries', () => {
  it('src/core imports only itself and its pure libraries', () => {
    const bad = all.filter((i) => i.file.startsWith('src/core/') && (i.target === null ? !CORE_PACKAGES.has(i.spec) : !i.target.startsWith('src/core/')));
    expect(show(bad)).toEqual([]);
  });

  it('src/app imports only src/core and itself', () => {
    const bad = all.filter(
      (i) => i.file.startsWith('src/app/') && (i.target === null ? !APP_PACKAGES.has(i.spec) : !(i.target.startsWith('src/core/') || i.target.startsWith('src/app/'))),
    );
    expect(show(bad)).toEqual([]);
  });

  it('an adapter never imports another adapter', () => {
    const bad = all.filter((i) => {
      const from = adapterOf(i.file);
      const to = i.target === null ? null : adapterOf(i.target);
      return from !== null && to !== null && from !== to;
    });
    expect(show(bad)).toEqual([]);
  });

  it('an adapter uses from src/ only core, app, and the types of the configuration', () => {
    const bad = all.filter((i) => {
      if (!i.file.startsWith('adapters/') || i.target === null || !i.target.startsWith('src/')) return false;
      if (i.target.startsWith('src/core/') || i.target.startsWith('src/app/')) return false;
      return !(i.target === 'src/config.ts' && i.typeOnly);
    });
    expect(show(bad)).toEqual([]);
  });

  it('only the composition root imports adapters from src/', () => {
    const bad = all.filter((i) => i.file.startsWith('src/') && !isCompositionRoot(i.file) && i.target?.startsWith('adapters/') === true);
    expect(show(bad)).toEqual([]);
  });

  it('only src/config.ts reads process.env', () => {
    const readers = product.filter((f) => f !== 'src/config.ts' && /\bprocess\.env\b/.test(readFileSync(join(root, f), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '')));
    expect(readers).toEqual([]);
  });

  it('sees the imports it checks (a parser that found none would pass everything)', () => {
    expect(all.length).toBeGreaterThan(300);
    expect(all.some((i) => i.file === 'src/main.ts' && i.target?.startsWith('adapters/'))).toBe(true);
    expect(all.some((i) => i.file.startsWith('adapters/teams/') && i.spec === 'botbuilder')).toBe(true);
    expect(all.some((i) => i.file === 'adapters/teams/platform.ts' && i.spec === './teams-adapter.ts')).toBe(true);
  });
});

describe('platforms are data in core and app', () => {
  it('no platform name is written in src/core or src/app outside comments', () => {
    const names = /['"`](slack|teams|console)['"`]|\b(slack|teams|console)\s*:/i;
    const hits = product
      .filter((f) => f.startsWith('src/core/') || f.startsWith('src/app/'))
      .flatMap((f) =>
        readFileSync(join(root, f), 'utf8')
          .split('\n')
          .map((line, n) => ({ line: line.replace(/\/\*.*?\*\//g, '').replace(/\/\/.*$/, ''), at: `${f}:${n + 1}` }))
          .filter(({ line }) => !/^\s*\*/.test(line) && names.test(line))
          .map(({ at, line }) => `${at}: ${line.trim()}`),
      );
    expect(hits).toEqual([]);
  });
});
