// What the compiled build in dist/ was made from: every file of src/ and adapters/ and the
// TypeScript configs, by path, size and modification time. bin/build.js records it before
// it compiles; bin/countersign.js runs dist/ only while the sources still give the same
// fingerprint, so an edit during a build, a restored older file or a deleted one all make
// it run the sources instead of stale code.
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const INPUTS = ['src', 'adapters', 'tsconfig.json', 'tsconfig.build.json'];

export function sourceFingerprint(root) {
  const hash = createHash('sha256');
  const add = (rel) => {
    const stat = statSync(join(root, rel));
    if (stat.isDirectory()) {
      for (const name of readdirSync(join(root, rel)).sort()) add(join(rel, name));
    } else {
      hash.update(`${rel}\0${stat.size}\0${stat.mtimeMs}\n`);
    }
  };
  for (const input of INPUTS) add(input);
  return hash.digest('hex');
}
