#!/usr/bin/env node
// `havre` / `npx havre`: runs the TypeScript CLI on Node 24 (which runs TypeScript natively).
// Where the node on PATH is older, re-run with the Node 24 that `npm ci` installed for the project.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'src', 'cli', 'havre.ts');
const [major, minor] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  await import(entry);
} else {
  const pinned = path.join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    console.error(`havre needs Node 22.18 or newer (this is ${process.version}); run \`npm ci\` in ${root} first.`);
    process.exit(1);
  }
  const result = spawnSync(pinned, [entry, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
